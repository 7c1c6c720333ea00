//! Kafka's rules and error codes for topics, produce and fetch, with raw requests.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use streamhub_broker::{Broker, BrokerConfig};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn topic(n: &str, partitions: i32, replication: i16) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(name(n))
        .with_num_partitions(partitions)
        .with_replication_factor(replication)
}

fn config(key: &str, value: &str) -> CreatableTopicConfig {
    CreatableTopicConfig::default()
        .with_name(StrBytes::from_string(key.to_string()))
        .with_value(Some(StrBytes::from_string(value.to_string())))
}

async fn create(raw: &mut RawClient, topics: Vec<CreatableTopic>, validate_only: bool) -> Vec<i16> {
    let r: CreateTopicsResponse = raw
        .call(
            ApiKey::CreateTopics,
            7,
            &CreateTopicsRequest::default()
                .with_timeout_ms(5000)
                .with_validate_only(validate_only)
                .with_topics(topics),
        )
        .await;
    r.topics.iter().map(|t| t.error_code).collect()
}

async fn partitions_of(raw: &mut RawClient, topic: &str) -> Result<usize, i16> {
    let r: MetadataResponse = raw
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name(topic))),
            ])),
        )
        .await;
    match r.topics[0].error_code {
        0 => Ok(r.topics[0].partitions.len()),
        e => Err(e),
    }
}

fn batch_of(values: usize, value_len: usize) -> Bytes {
    let records: Vec<Record> = (0..values)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from(vec![b'x'; value_len])),
            headers: indexmap::IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode");
    buf.freeze()
}

async fn produce(raw: &mut RawClient, topic: &str, partition: i32, records: Bytes) -> (i16, i64) {
    let r: ProduceResponse = raw
        .call(
            ApiKey::Produce,
            9,
            &ProduceRequest::default()
                .with_transactional_id(None)
                .with_acks(-1)
                .with_timeout_ms(5000)
                .with_topic_data(vec![
                    TopicProduceData::default()
                        .with_name(name(topic))
                        .with_partition_data(vec![
                            PartitionProduceData::default()
                                .with_index(partition)
                                .with_records(Some(records)),
                        ]),
                ]),
        )
        .await;
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

const INVALID_TOPIC: i16 = ResponseError::InvalidTopicException.code();

#[tokio::test]
async fn topic_names_follow_kafka_s_rules() {
    let broker = start().await;
    let mut raw = RawClient::connect(&broker).await;
    let long = "x".repeat(250);
    for bad in ["bad name", "..", ".", "a/b", "é", long.as_str()] {
        assert_eq!(
            create(&mut raw, vec![topic(bad, 1, 1)], false).await,
            vec![INVALID_TOPIC],
            "{bad:?}"
        );
    }
    let max = "y".repeat(249);
    assert_eq!(
        create(&mut raw, vec![topic(&max, 1, 1)], false).await,
        vec![0]
    );
    assert_eq!(
        create(&mut raw, vec![topic("a.b", 1, 1)], false).await,
        vec![0]
    );
    assert_eq!(
        create(&mut raw, vec![topic("a.b", 1, 1)], false).await,
        vec![ResponseError::TopicAlreadyExists.code()]
    );
    assert_eq!(
        create(&mut raw, vec![topic("a_b", 1, 1)], false).await,
        vec![INVALID_TOPIC],
        "a_b collides with a.b"
    );
    assert_eq!(
        create(
            &mut raw,
            vec![topic("dup", 1, 1), topic("dup", 1, 1)],
            false
        )
        .await,
        vec![ResponseError::InvalidRequest.code(); 2]
    );
    assert_eq!(
        partitions_of(&mut raw, "dup").await,
        Err(ResponseError::UnknownTopicOrPartition.code())
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn create_topics_checks_partitions_replication_and_configs() {
    let mut settings = BrokerConfig::ephemeral();
    settings.default_partitions = 3;
    let broker = Broker::start(settings).await.expect("start");
    let mut raw = RawClient::connect(&broker).await;
    assert_eq!(
        create(&mut raw, vec![topic("rf3", 1, 3)], false).await,
        vec![ResponseError::InvalidReplicationFactor.code()]
    );
    assert_eq!(
        create(&mut raw, vec![topic("zero", 0, 1)], false).await,
        vec![ResponseError::InvalidPartitions.code()]
    );
    assert_eq!(
        create(
            &mut raw,
            vec![topic("compact", 1, 1).with_configs(vec![config("cleanup.policy", "compact")])],
            false
        )
        .await,
        vec![ResponseError::InvalidConfig.code()]
    );
    assert_eq!(
        create(
            &mut raw,
            vec![topic("unknown-config", 1, 1).with_configs(vec![config("no.such", "1")])],
            false
        )
        .await,
        vec![ResponseError::InvalidConfig.code()]
    );
    // validate_only creates nothing.
    assert_eq!(
        create(&mut raw, vec![topic("dry", 2, 1)], true).await,
        vec![0]
    );
    assert_eq!(
        partitions_of(&mut raw, "dry").await,
        Err(ResponseError::UnknownTopicOrPartition.code())
    );
    // -1 partitions and replication factor: the broker's defaults.
    assert_eq!(
        create(&mut raw, vec![topic("defaults", -1, -1)], false).await,
        vec![0]
    );
    assert_eq!(partitions_of(&mut raw, "defaults").await, Ok(3));

    // CreatePartitions only grows.
    let r: CreatePartitionsResponse = raw
        .call(
            ApiKey::CreatePartitions,
            3,
            &CreatePartitionsRequest::default().with_topics(vec![
                CreatePartitionsTopic::default()
                    .with_name(name("defaults"))
                    .with_count(2)
                    .with_assignments(None),
            ]),
        )
        .await;
    assert_eq!(
        r.results[0].error_code,
        ResponseError::InvalidPartitions.code()
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn delete_topics_deletes_exactly_the_named_topics() {
    let broker = start().await;
    let mut raw = RawClient::connect(&broker).await;
    assert_eq!(
        create(
            &mut raw,
            vec![topic("one", 1, 1), topic("two", 1, 1), topic("three", 1, 1)],
            false
        )
        .await,
        vec![0, 0, 0]
    );
    let r: DeleteTopicsResponse = raw
        .call(
            ApiKey::DeleteTopics,
            6,
            &DeleteTopicsRequest::default().with_topics(vec![
                DeleteTopicState::default().with_name(Some(name("two"))),
                DeleteTopicState::default().with_name(Some(name("missing"))),
                DeleteTopicState::default().with_topic_id(uuid::Uuid::new_v4()),
            ]),
        )
        .await;
    let codes: Vec<i16> = r.responses.iter().map(|t| t.error_code).collect();
    assert_eq!(
        codes,
        vec![
            0,
            ResponseError::UnknownTopicOrPartition.code(),
            ResponseError::UnknownTopicId.code()
        ]
    );
    assert_eq!(partitions_of(&mut raw, "one").await, Ok(1));
    assert_eq!(partitions_of(&mut raw, "three").await, Ok(1));
    assert!(partitions_of(&mut raw, "two").await.is_err());
    // The name is free again, with a fresh, empty log.
    assert_eq!(
        create(&mut raw, vec![topic("two", 1, 1)], false).await,
        vec![0]
    );
    let fetch = fetch_at(&mut raw, "two", 0, 0).await;
    assert_eq!((fetch.error_code, fetch.high_watermark), (0, 0));
    broker.shutdown().await;
}

async fn fetch_at(
    raw: &mut RawClient,
    topic: &str,
    partition: i32,
    offset: i64,
) -> fetch_response::PartitionData {
    let r: FetchResponse = raw
        .call(
            ApiKey::Fetch,
            12,
            &FetchRequest::default()
                .with_max_wait_ms(0)
                .with_max_bytes(1 << 20)
                .with_topics(vec![
                    FetchTopic::default()
                        .with_topic(name(topic))
                        .with_partitions(vec![
                            FetchPartition::default()
                                .with_partition(partition)
                                .with_fetch_offset(offset)
                                .with_partition_max_bytes(1 << 20),
                        ]),
                ]),
        )
        .await;
    r.responses[0].partitions[0].clone()
}

#[tokio::test]
async fn produce_and_fetch_errors_are_kafka_s() {
    let broker = start().await;
    let mut raw = RawClient::connect(&broker).await;
    assert_eq!(
        create(
            &mut raw,
            vec![topic("small", 2, 1).with_configs(vec![config("max.message.bytes", "1000")])],
            false
        )
        .await,
        vec![0]
    );
    assert_eq!(produce(&mut raw, "small", 0, batch_of(3, 10)).await, (0, 0));
    assert_eq!(produce(&mut raw, "small", 0, batch_of(2, 10)).await, (0, 3));
    assert_eq!(
        produce(&mut raw, "small", 0, batch_of(1, 2000)).await.0,
        ResponseError::MessageTooLarge.code()
    );
    assert_eq!(
        produce(&mut raw, "small", 5, batch_of(1, 10)).await.0,
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        produce(&mut raw, "nowhere", 0, batch_of(1, 10)).await.0,
        ResponseError::UnknownTopicOrPartition.code()
    );
    let mut corrupt = BytesMut::from(&batch_of(1, 10)[..]);
    corrupt.truncate(corrupt.len() - 3);
    assert_eq!(
        produce(&mut raw, "small", 0, corrupt.freeze()).await.0,
        ResponseError::CorruptMessage.code()
    );

    let p = fetch_at(&mut raw, "small", 0, 5).await;
    assert_eq!((p.error_code, p.high_watermark), (0, 5));
    assert!(
        p.records.unwrap_or_default().is_empty(),
        "nothing past the end"
    );
    let p = fetch_at(&mut raw, "small", 0, 6).await;
    assert_eq!(p.error_code, ResponseError::OffsetOutOfRange.code());
    let p = fetch_at(&mut raw, "small", 9, 0).await;
    assert_eq!(p.error_code, ResponseError::UnknownTopicOrPartition.code());
    broker.shutdown().await;
}

#[tokio::test]
async fn acks_all_needs_as_many_in_sync_replicas_as_the_topic_asks() {
    let broker = start().await;
    let mut raw = RawClient::connect(&broker).await;
    let with =
        |n: &str, min: &str| topic(n, 1, 1).with_configs(vec![config("min.insync.replicas", min)]);
    assert_eq!(
        create(
            &mut raw,
            vec![with("one", "1"), with("two", "2"), with("zero", "0")],
            false
        )
        .await,
        vec![0, 0, ResponseError::InvalidConfig.code()]
    );
    assert_eq!(produce(&mut raw, "one", 0, batch_of(2, 10)).await, (0, 0));
    assert_eq!(
        produce(&mut raw, "two", 0, batch_of(2, 10)).await.0,
        ResponseError::NotEnoughReplicas.code()
    );
    let p = fetch_at(&mut raw, "two", 0, 0).await;
    assert_eq!((p.error_code, p.high_watermark), (0, 0), "nothing appended");
    broker.shutdown().await;
}

#[tokio::test]
async fn a_leftover_partition_directory_does_not_bring_old_records_back() {
    let old = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(BrokerConfig::with_data_dir(old.path()))
        .await
        .expect("start");
    let mut raw = RawClient::connect(&broker).await;
    assert_eq!(
        create(&mut raw, vec![topic("stale", 1, 1)], false).await,
        vec![0]
    );
    assert_eq!(produce(&mut raw, "stale", 0, batch_of(3, 10)).await, (0, 0));
    broker.shutdown().await;

    // The partition directory without the metadata naming its topic.
    let fresh = tempfile::tempdir().expect("temp dir");
    let target = fresh.path().join("stale-0");
    std::fs::create_dir(&target).unwrap();
    for entry in std::fs::read_dir(old.path().join("stale-0")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
    }
    let broker = Broker::start(BrokerConfig::with_data_dir(fresh.path()))
        .await
        .expect("start");
    let mut raw = RawClient::connect(&broker).await;
    assert_eq!(
        create(&mut raw, vec![topic("stale", 1, 1)], false).await,
        vec![0]
    );
    let p = fetch_at(&mut raw, "stale", 0, 0).await;
    assert_eq!((p.error_code, p.high_watermark), (0, 0));
    broker.shutdown().await;
}
