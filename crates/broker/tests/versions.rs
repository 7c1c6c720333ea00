//! Every advertised version of every API this crate implements (the group APIs aside),
//! exercised with raw requests: the response must decode at that version and say what the
//! request did.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use uuid::Uuid;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn batch(values: &[&str]) -> Bytes {
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // offset - sequence constant: the encoder keeps the records in one batch.
            sequence: i as i32,
            timestamp: 1_700_000_000_000 + i as i64,
            key: None,
            value: Some(Bytes::from(v.to_string())),
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
    .expect("encode batch");
    buf.freeze()
}

async fn topic_id(raw: &mut RawClient, topic: &str) -> Uuid {
    let r: MetadataResponse = raw
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name(topic))),
            ])),
        )
        .await;
    r.topics[0].topic_id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_advertised_version_answers() {
    let broker = start().await;
    let mut raw = RawClient::connect(&broker).await;

    // ApiVersions, every version; remember what is advertised.
    let mut advertised: Vec<(i16, i16, i16)> = Vec::new();
    for v in 0..=4 {
        let r: ApiVersionsResponse = raw
            .call(ApiKey::ApiVersions, v, &ApiVersionsRequest::default())
            .await;
        assert_eq!(r.error_code, 0, "ApiVersions v{v}");
        let list = r
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        advertised = list;
    }
    let versions = |key: ApiKey| {
        let &(_, min, max) = advertised
            .iter()
            .find(|(k, _, _)| *k == key as i16)
            .unwrap_or_else(|| panic!("{key:?} is not advertised"));
        min..=max
    };

    // CreateTopics, one topic per version, with a config.
    let mut created = Vec::new();
    for v in versions(ApiKey::CreateTopics) {
        let topic = topic_name(&format!("v{v}"));
        let r: CreateTopicsResponse = raw
            .call(
                ApiKey::CreateTopics,
                v,
                &CreateTopicsRequest::default()
                    .with_timeout_ms(5000)
                    .with_topics(vec![
                        CreatableTopic::default()
                            .with_name(name(&topic))
                            .with_num_partitions(2)
                            .with_replication_factor(1)
                            .with_configs(vec![
                                CreatableTopicConfig::default()
                                    .with_name(StrBytes::from_static_str("retention.ms"))
                                    .with_value(Some(StrBytes::from_static_str("3600000"))),
                            ]),
                    ]),
            )
            .await;
        assert_eq!(
            r.topics[0].error_code, 0,
            "CreateTopics v{v}: {:?}",
            r.topics[0]
        );
        if v >= 5 {
            assert_eq!(r.topics[0].num_partitions, 2);
            let configs = r.topics[0].configs.as_ref().expect("configs");
            assert!(configs.iter().any(
                |c| c.name.as_str() == "retention.ms" && c.value.as_deref() == Some("3600000")
            ));
        }
        created.push(topic);
    }
    let topic = created[0].clone();
    let id = topic_id(&mut raw, &topic).await;
    assert_ne!(id, Uuid::nil());

    // Metadata.
    for v in versions(ApiKey::Metadata) {
        let wanted = MetadataRequestTopic::default().with_name(Some(name(&topic)));
        let r: MetadataResponse = raw
            .call(
                ApiKey::Metadata,
                v,
                &MetadataRequest::default().with_topics(Some(vec![wanted])),
            )
            .await;
        assert_eq!(r.brokers.len(), 1, "Metadata v{v}");
        assert_eq!(r.brokers[0].port, broker.listen_addr().port() as i32);
        assert_eq!(r.topics.len(), 1);
        assert_eq!(r.topics[0].error_code, 0);
        assert_eq!(r.topics[0].partitions.len(), 2);
        if v >= 10 {
            assert_eq!(r.topics[0].topic_id, id);
        }
    }

    // Produce: one batch of two records per version, offsets follow on.
    let mut next = 0;
    for v in versions(ApiKey::Produce) {
        let mut data = TopicProduceData::default().with_partition_data(vec![
            PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(&["a", "b"]))),
        ]);
        if v >= 13 {
            data = data.with_topic_id(id);
        } else {
            data = data.with_name(name(&topic));
        }
        let r: ProduceResponse = raw
            .call(
                ApiKey::Produce,
                v,
                &ProduceRequest::default()
                    .with_acks(-1)
                    .with_timeout_ms(5000)
                    .with_topic_data(vec![data]),
            )
            .await;
        let p = &r.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 0, "Produce v{v}: {p:?}");
        assert_eq!(p.base_offset, next, "Produce v{v}");
        if v >= 5 {
            assert_eq!(p.log_start_offset, 0);
        }
        next += 2;
    }

    // Fetch from offset 1 (inside the first batch): whole batches, at once (max wait 0).
    for v in versions(ApiKey::Fetch) {
        let mut ft = FetchTopic::default().with_partitions(vec![
            FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(1)
                .with_partition_max_bytes(1 << 20),
        ]);
        if v >= 13 {
            ft = ft.with_topic_id(id);
        } else {
            ft = ft.with_topic(name(&topic));
        }
        let r: FetchResponse = raw
            .call(
                ApiKey::Fetch,
                v,
                &FetchRequest::default()
                    .with_max_wait_ms(0)
                    .with_min_bytes(1)
                    .with_max_bytes(1 << 20)
                    .with_session_epoch(-1)
                    .with_topics(vec![ft]),
            )
            .await;
        assert_eq!(r.error_code, 0, "Fetch v{v}");
        assert_eq!(r.session_id, 0);
        let p = &r.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "Fetch v{v}");
        assert_eq!(p.high_watermark, next);
        let mut records = p.records.clone().expect("records");
        let sets = RecordBatchDecoder::decode_all(&mut records).expect("batches decode");
        assert_eq!(sets.len() as i64, next / 2, "one batch per produce");
        let offsets: Vec<i64> = sets
            .iter()
            .flat_map(|s| s.records.iter().map(|r| r.offset))
            .collect();
        assert_eq!(offsets, (0..next).collect::<Vec<_>>(), "Fetch v{v}");
    }

    // Fetch by an unknown topic id.
    let r: FetchResponse = raw
        .call(
            ApiKey::Fetch,
            13,
            &FetchRequest::default().with_topics(vec![
                FetchTopic::default()
                    .with_topic_id(Uuid::new_v4())
                    .with_partitions(vec![FetchPartition::default()]),
            ]),
        )
        .await;
    assert_eq!(
        r.responses[0].partitions[0].error_code, 100,
        "UNKNOWN_TOPIC_ID"
    );

    // ListOffsets: latest, earliest, by time.
    for v in versions(ApiKey::ListOffsets) {
        let ask = |ts: i64| {
            ListOffsetsRequest::default()
                .with_replica_id((-1).into())
                .with_topics(vec![
                    ListOffsetsTopic::default()
                        .with_name(name(&topic))
                        .with_partitions(vec![
                            ListOffsetsPartition::default()
                                .with_partition_index(0)
                                .with_timestamp(ts),
                        ]),
                ])
        };
        let latest: ListOffsetsResponse = raw.call(ApiKey::ListOffsets, v, &ask(-1)).await;
        assert_eq!(
            latest.topics[0].partitions[0].error_code, 0,
            "ListOffsets v{v}"
        );
        assert_eq!(
            latest.topics[0].partitions[0].offset, next,
            "ListOffsets v{v}"
        );
        let earliest: ListOffsetsResponse = raw.call(ApiKey::ListOffsets, v, &ask(-2)).await;
        assert_eq!(
            earliest.topics[0].partitions[0].offset, 0,
            "ListOffsets v{v}"
        );
        let future: ListOffsetsResponse = raw
            .call(ApiKey::ListOffsets, v, &ask(4_000_000_000_000))
            .await;
        assert_eq!(
            future.topics[0].partitions[0].offset, -1,
            "ListOffsets v{v}"
        );
    }

    // OffsetForLeaderEpoch: epoch 0 ends at the log end.
    for v in versions(ApiKey::OffsetForLeaderEpoch) {
        use kafka_protocol::messages::offset_for_leader_epoch_request::{
            OffsetForLeaderPartition, OffsetForLeaderTopic,
        };
        let ask = |epoch: i32| {
            OffsetForLeaderEpochRequest::default()
                .with_replica_id(if v >= 3 { (-1).into() } else { (-2).into() })
                .with_topics(vec![
                    OffsetForLeaderTopic::default()
                        .with_topic(name(&topic))
                        .with_partitions(vec![
                            OffsetForLeaderPartition::default()
                                .with_partition(0)
                                .with_current_leader_epoch(0)
                                .with_leader_epoch(epoch),
                        ]),
                ])
        };
        let r: OffsetForLeaderEpochResponse =
            raw.call(ApiKey::OffsetForLeaderEpoch, v, &ask(0)).await;
        let p = &r.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.leader_epoch, p.end_offset),
            (0, 0, next),
            "v{v}"
        );
        let r: OffsetForLeaderEpochResponse =
            raw.call(ApiKey::OffsetForLeaderEpoch, v, &ask(7)).await;
        let p = &r.topics[0].partitions[0];
        assert_eq!(
            (p.error_code, p.leader_epoch, p.end_offset),
            (0, -1, -1),
            "v{v}"
        );
    }

    // InitProducerId: distinct ids.
    let mut ids = Vec::new();
    for v in versions(ApiKey::InitProducerId) {
        let r: InitProducerIdResponse = raw
            .call(
                ApiKey::InitProducerId,
                v,
                &InitProducerIdRequest::default()
                    .with_transactional_id(None)
                    .with_transaction_timeout_ms(60000)
                    .with_producer_id((-1).into())
                    .with_producer_epoch(-1),
            )
            .await;
        assert_eq!(r.error_code, 0, "InitProducerId v{v}");
        assert_eq!(r.producer_epoch, 0);
        ids.push(r.producer_id.0);
    }
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), ids.len());

    // FindCoordinator.
    for v in versions(ApiKey::FindCoordinator) {
        let req = if v >= 4 {
            FindCoordinatorRequest::default()
                .with_coordinator_keys(vec![StrBytes::from_static_str("g1")])
        } else {
            FindCoordinatorRequest::default().with_key(StrBytes::from_static_str("g1"))
        };
        let r: FindCoordinatorResponse = raw.call(ApiKey::FindCoordinator, v, &req).await;
        if v >= 4 {
            assert_eq!(r.coordinators.len(), 1);
            assert_eq!(r.coordinators[0].key.as_str(), "g1");
            assert_eq!(r.coordinators[0].node_id.0, 0);
            assert_eq!(r.coordinators[0].port, broker.listen_addr().port() as i32);
        } else {
            assert_eq!(r.error_code, 0);
            assert_eq!(r.port, broker.listen_addr().port() as i32);
        }
    }

    // DescribeCluster.
    for v in versions(ApiKey::DescribeCluster) {
        let r: DescribeClusterResponse = raw
            .call(
                ApiKey::DescribeCluster,
                v,
                &DescribeClusterRequest::default(),
            )
            .await;
        assert_eq!(r.error_code, 0, "DescribeCluster v{v}");
        assert_eq!(r.brokers.len(), 1);
        assert!(!r.cluster_id.is_empty());
    }

    // DescribeConfigs: the topic's override and a default.
    for v in versions(ApiKey::DescribeConfigs) {
        let r: DescribeConfigsResponse = raw
            .call(
                ApiKey::DescribeConfigs,
                v,
                &DescribeConfigsRequest::default()
                    .with_include_synonyms(true)
                    .with_resources(vec![
                        DescribeConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(StrBytes::from_string(topic.clone()))
                            .with_configuration_keys(None),
                        DescribeConfigsResource::default()
                            .with_resource_type(4)
                            .with_resource_name(StrBytes::from_static_str("0"))
                            .with_configuration_keys(None),
                    ]),
            )
            .await;
        assert_eq!(r.results[0].error_code, 0, "DescribeConfigs v{v}");
        let retention = r.results[0]
            .configs
            .iter()
            .find(|c| c.name.as_str() == "retention.ms")
            .expect("retention.ms");
        assert_eq!(retention.value.as_deref(), Some("3600000"));
        assert_eq!(retention.config_source, 1);
        let policy = r.results[0]
            .configs
            .iter()
            .find(|c| c.name.as_str() == "cleanup.policy")
            .expect("cleanup.policy");
        assert_eq!(policy.value.as_deref(), Some("delete"));
        assert_eq!(policy.config_source, 5);
        assert_eq!(r.results[1].error_code, 0);
        assert!(
            r.results[1]
                .configs
                .iter()
                .any(|c| c.name.as_str() == "broker.id")
        );
    }

    // IncrementalAlterConfigs: set, then read back; an unsupported value is refused.
    for v in versions(ApiKey::IncrementalAlterConfigs) {
        let value = format!("{}", 1000 + v);
        let alter = |key: &'static str, value: &str| {
            IncrementalAlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(StrBytes::from_string(topic.clone()))
                    .with_configs(vec![
                        AlterableConfig::default()
                            .with_name(StrBytes::from_static_str(key))
                            .with_config_operation(0)
                            .with_value(Some(StrBytes::from_string(value.to_string()))),
                    ]),
            ])
        };
        let r: IncrementalAlterConfigsResponse = raw
            .call(
                ApiKey::IncrementalAlterConfigs,
                v,
                &alter("retention.bytes", &value),
            )
            .await;
        assert_eq!(r.responses[0].error_code, 0, "IncrementalAlterConfigs v{v}");
        let r: IncrementalAlterConfigsResponse = raw
            .call(
                ApiKey::IncrementalAlterConfigs,
                v,
                &alter("cleanup.policy", "compact"),
            )
            .await;
        assert_eq!(r.responses[0].error_code, 40, "INVALID_CONFIG");
        let d: DescribeConfigsResponse = raw
            .call(
                ApiKey::DescribeConfigs,
                4,
                &DescribeConfigsRequest::default().with_resources(vec![
                    DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(StrBytes::from_string(topic.clone()))
                        .with_configuration_keys(Some(vec![StrBytes::from_static_str(
                            "retention.bytes",
                        )])),
                ]),
            )
            .await;
        assert_eq!(d.results[0].configs.len(), 1);
        assert_eq!(
            d.results[0].configs[0].value.as_deref(),
            Some(value.as_str())
        );
    }

    // CreatePartitions: 2 -> 3 -> ...
    let mut partitions = 2;
    for v in versions(ApiKey::CreatePartitions) {
        partitions += 1;
        let r: CreatePartitionsResponse = raw
            .call(
                ApiKey::CreatePartitions,
                v,
                &CreatePartitionsRequest::default()
                    .with_timeout_ms(5000)
                    .with_topics(vec![
                        CreatePartitionsTopic::default()
                            .with_name(name(&topic))
                            .with_count(partitions)
                            .with_assignments(None),
                    ]),
            )
            .await;
        assert_eq!(
            r.results[0].error_code, 0,
            "CreatePartitions v{v}: {:?}",
            r.results[0]
        );
    }
    let m: MetadataResponse = raw
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(name(&topic))),
            ])),
        )
        .await;
    assert_eq!(m.topics[0].partitions.len() as i32, partitions);

    // DeleteRecords: the low watermark moves up.
    let mut low = 0;
    for v in versions(ApiKey::DeleteRecords) {
        low += 1;
        let r: DeleteRecordsResponse = raw
            .call(
                ApiKey::DeleteRecords,
                v,
                &DeleteRecordsRequest::default()
                    .with_timeout_ms(5000)
                    .with_topics(vec![
                        DeleteRecordsTopic::default()
                            .with_name(name(&topic))
                            .with_partitions(vec![
                                DeleteRecordsPartition::default()
                                    .with_partition_index(0)
                                    .with_offset(low),
                            ]),
                    ]),
            )
            .await;
        let p = &r.topics[0].partitions[0];
        assert_eq!(p.error_code, 0, "DeleteRecords v{v}");
        assert_eq!(p.low_watermark, low);
    }

    // DeleteTopics: one created topic per version, by name or (v6) by id.
    let doomed: Vec<String> = created[1..].to_vec();
    let mut doomed = doomed.into_iter();
    for v in versions(ApiKey::DeleteTopics) {
        let Some(victim) = doomed.next() else { break };
        let req = if v >= 6 {
            let id = topic_id(&mut raw, &victim).await;
            DeleteTopicsRequest::default()
                .with_topics(vec![DeleteTopicState::default().with_topic_id(id)])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![name(&victim)])
        };
        let r: DeleteTopicsResponse = raw.call(ApiKey::DeleteTopics, v, &req).await;
        assert_eq!(r.responses[0].error_code, 0, "DeleteTopics v{v}");
        assert_eq!(
            r.responses[0].name.as_deref().map(|n| n.as_str()),
            Some(victim.as_str())
        );
    }
    broker.shutdown().await;
}
