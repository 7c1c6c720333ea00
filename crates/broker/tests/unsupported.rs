//! What the broker does not implement gets the protocol's error, never a dropped connection:
//! SASL (no mechanism), ACLs (SECURITY_DISABLED, as Apache Kafka without an authorizer),
//! transactions and KIP-848 groups (UNSUPPORTED_VERSION), at every version the codec knows;
//! the same connection goes on serving. Real clients are checked too: librdkafka's
//! transactional producer fails its start with the broker's error, not a timeout.

mod common;

use std::time::Duration;

use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};

fn text(s: &'static str) -> StrBytes {
    StrBytes::from_static_str(s)
}

fn code(e: ResponseError) -> i16 {
    e.code()
}

/// The connection still answers a plain request after a refused one.
async fn still_serving(raw: &mut RawClient) {
    let r: MetadataResponse = raw
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(None),
        )
        .await;
    assert_eq!(r.brokers.len(), 1, "the connection still serves");
}

async fn advertised(raw: &mut RawClient, key: ApiKey) -> Option<(i16, i16)> {
    let r: ApiVersionsResponse = raw
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    r.api_keys
        .iter()
        .find(|k| k.api_key == key as i16)
        .map(|k| (k.min_version, k.max_version))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_and_acls_are_answered_as_kafka_does_with_neither_enabled() {
    let broker = start().await;
    let mut raw = RawClient::connect(&broker).await;

    assert_eq!(
        advertised(&mut raw, ApiKey::SaslHandshake).await,
        Some((0, 1))
    );
    for v in 0..=1 {
        let r: SaslHandshakeResponse = raw
            .call(
                ApiKey::SaslHandshake,
                v,
                &SaslHandshakeRequest::default().with_mechanism(text("PLAIN")),
            )
            .await;
        assert_eq!(r.error_code, code(ResponseError::UnsupportedSaslMechanism));
        assert!(r.mechanisms.is_empty(), "no mechanism is enabled");
        still_serving(&mut raw).await;
    }
    assert_eq!(advertised(&mut raw, ApiKey::SaslAuthenticate).await, None);
    for v in 0..=2 {
        let r: SaslAuthenticateResponse = raw
            .call(
                ApiKey::SaslAuthenticate,
                v,
                &SaslAuthenticateRequest::default(),
            )
            .await;
        assert_eq!(r.error_code, code(ResponseError::IllegalSaslState));
        assert!(r.error_message.is_some_and(|m| m.contains("SASL")));
        still_serving(&mut raw).await;
    }

    for key in [ApiKey::DescribeAcls, ApiKey::CreateAcls, ApiKey::DeleteAcls] {
        assert_eq!(advertised(&mut raw, key).await, Some((1, 3)), "{key:?}");
    }
    for v in 1..=3 {
        let r: DescribeAclsResponse = raw
            .call(
                ApiKey::DescribeAcls,
                v,
                &DescribeAclsRequest::default()
                    .with_resource_type_filter(1)
                    .with_pattern_type_filter(1)
                    .with_operation(1)
                    .with_permission_type(1),
            )
            .await;
        assert_eq!(r.error_code, code(ResponseError::SecurityDisabled));
        assert!(r.error_message.is_some_and(|m| m.contains("Authorizer")));

        let r: CreateAclsResponse = raw
            .call(
                ApiKey::CreateAcls,
                v,
                &CreateAclsRequest::default().with_creations(vec![
                    AclCreation::default()
                        .with_resource_type(2)
                        .with_resource_name(text("orders"))
                        .with_resource_pattern_type(3)
                        .with_principal(text("User:alice"))
                        .with_host(text("*"))
                        .with_operation(3)
                        .with_permission_type(3);
                    2
                ]),
            )
            .await;
        assert_eq!(r.results.len(), 2, "one result per creation");
        assert!(
            r.results
                .iter()
                .all(|c| c.error_code == code(ResponseError::SecurityDisabled))
        );

        let r: DeleteAclsResponse = raw
            .call(
                ApiKey::DeleteAcls,
                v,
                &DeleteAclsRequest::default().with_filters(vec![
                    DeleteAclsFilter::default()
                        .with_resource_type_filter(1)
                        .with_pattern_type_filter(1)
                        .with_operation(1)
                        .with_permission_type(1),
                ]),
            )
            .await;
        assert_eq!(r.filter_results.len(), 1, "one result per filter");
        assert_eq!(
            r.filter_results[0].error_code,
            code(ResponseError::SecurityDisabled)
        );
        still_serving(&mut raw).await;
    }
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_and_kip_848_groups_get_unsupported_version_not_a_closed_connection() {
    let broker = start().await;
    let mut raw = RawClient::connect(&broker).await;
    let unsupported = code(ResponseError::UnsupportedVersion);
    for key in [
        ApiKey::AddPartitionsToTxn,
        ApiKey::AddOffsetsToTxn,
        ApiKey::EndTxn,
        ApiKey::TxnOffsetCommit,
        ApiKey::ConsumerGroupHeartbeat,
        ApiKey::ConsumerGroupDescribe,
    ] {
        assert_eq!(
            advertised(&mut raw, key).await,
            None,
            "{key:?} is advertised"
        );
    }
    let txn = TransactionalId(text("txn-1"));

    for v in 0..=5 {
        let topics = vec![
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(text("orders")))
                .with_partitions(vec![0, 1]),
        ];
        let request = if v <= 3 {
            AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(txn.clone())
                .with_v3_and_below_topics(topics)
        } else {
            AddPartitionsToTxnRequest::default().with_transactions(vec![
                AddPartitionsToTxnTransaction::default()
                    .with_transactional_id(txn.clone())
                    .with_topics(topics),
            ])
        };
        let r: AddPartitionsToTxnResponse = raw.call(ApiKey::AddPartitionsToTxn, v, &request).await;
        let results = if v <= 3 {
            r.results_by_topic_v3_and_below
        } else {
            assert_eq!(r.error_code, unsupported, "AddPartitionsToTxn v{v}");
            r.results_by_transaction
                .into_iter()
                .flat_map(|t| t.topic_results)
                .collect()
        };
        let partitions: Vec<_> = results
            .iter()
            .flat_map(|t| &t.results_by_partition)
            .collect();
        assert_eq!(
            partitions.len(),
            2,
            "AddPartitionsToTxn v{v}: each partition"
        );
        assert!(
            partitions
                .iter()
                .all(|p| p.partition_error_code == unsupported)
        );

        let r: EndTxnResponse = raw
            .call(
                ApiKey::EndTxn,
                v,
                &EndTxnRequest::default().with_transactional_id(txn.clone()),
            )
            .await;
        assert_eq!(r.error_code, unsupported, "EndTxn v{v}");

        let r: TxnOffsetCommitResponse = raw
            .call(
                ApiKey::TxnOffsetCommit,
                v,
                &TxnOffsetCommitRequest::default()
                    .with_transactional_id(txn.clone())
                    .with_group_id(GroupId(text("g")))
                    .with_topics(vec![
                        TxnOffsetCommitRequestTopic::default()
                            .with_name(TopicName(text("orders")))
                            .with_partitions(vec![
                                TxnOffsetCommitRequestPartition::default()
                                    .with_partition_index(3)
                                    .with_committed_offset(10),
                            ]),
                    ]),
            )
            .await;
        assert_eq!(r.topics[0].partitions[0].partition_index, 3);
        assert_eq!(r.topics[0].partitions[0].error_code, unsupported);
        still_serving(&mut raw).await;
    }
    for v in 0..=4 {
        let r: AddOffsetsToTxnResponse = raw
            .call(
                ApiKey::AddOffsetsToTxn,
                v,
                &AddOffsetsToTxnRequest::default().with_transactional_id(txn.clone()),
            )
            .await;
        assert_eq!(r.error_code, unsupported, "AddOffsetsToTxn v{v}");
    }

    for v in 0..=1 {
        let r: ConsumerGroupHeartbeatResponse = raw
            .call(
                ApiKey::ConsumerGroupHeartbeat,
                v,
                &ConsumerGroupHeartbeatRequest::default().with_group_id(GroupId(text("g"))),
            )
            .await;
        assert_eq!(r.error_code, unsupported);
        assert!(
            r.error_message
                .is_some_and(|m| m.contains("group.protocol=classic"))
        );
        let r: ConsumerGroupDescribeResponse = raw
            .call(
                ApiKey::ConsumerGroupDescribe,
                v,
                &ConsumerGroupDescribeRequest::default()
                    .with_group_ids(vec![GroupId(text("a")), GroupId(text("b"))]),
            )
            .await;
        assert_eq!(r.groups.len(), 2);
        assert!(r.groups.iter().all(|g| g.error_code == unsupported));
        still_serving(&mut raw).await;
    }
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_librdkafka_transactional_producer_fails_to_start_with_an_error() {
    let broker = start().await;
    let bs = broker.bootstrap_servers();
    let result = tokio::task::spawn_blocking(move || {
        let producer: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", &bs)
            .set("transactional.id", "streamhub-test-txn")
            .create()
            .expect("producer");
        // librdkafka retries InitProducerId until this timeout, then gives the last error.
        producer.init_transactions(Duration::from_secs(5))
    })
    .await
    .expect("producer thread");
    let error = result.expect_err("transactions are refused").to_string();
    assert!(
        error.contains("API version not supported"),
        "the broker's answer, not a timeout: {error}"
    );
    broker.shutdown().await;
}
