//! Connection-level behaviour: pipelining, acks=0, fetch size limits, shutdown.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn batch(records: usize, value_len: usize) -> Bytes {
    let records: Vec<Record> = (0..records)
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
            value: Some(Bytes::from(vec![b'v'; value_len])),
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

fn produce_request(topic: &str, partition: i32, acks: i16, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_transactional_id(None)
        .with_acks(acks)
        .with_timeout_ms(5000)
        .with_topic_data(vec![
            TopicProduceData::default()
                .with_name(name(topic))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(records)),
                ]),
        ])
}

async fn create(raw: &mut RawClient, topic: &str, partitions: i32) {
    let r: CreateTopicsResponse = raw
        .call(
            ApiKey::CreateTopics,
            7,
            &CreateTopicsRequest::default().with_topics(vec![
                CreatableTopic::default()
                    .with_name(name(topic))
                    .with_num_partitions(partitions)
                    .with_replication_factor(1),
            ]),
        )
        .await;
    assert_eq!(r.topics[0].error_code, 0);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_and_acks_0_gets_no_answer() {
    let broker = start().await;
    let mut raw = RawClient::connect(&broker).await;
    create(&mut raw, "pipe", 1).await;
    // Sent back to back before reading anything.
    let a = raw
        .send(
            ApiKey::Produce,
            9,
            &produce_request("pipe", 0, 1, batch(2, 5)),
        )
        .await;
    let silent = raw
        .send(
            ApiKey::Produce,
            9,
            &produce_request("pipe", 0, 0, batch(3, 5)),
        )
        .await;
    let b = raw
        .send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    let c = raw
        .send(
            ApiKey::Produce,
            9,
            &produce_request("pipe", 0, -1, batch(1, 5)),
        )
        .await;
    let mut seen = Vec::new();
    for _ in 0..3 {
        let mut frame = tokio::time::timeout(HANG_GUARD, raw.read_frame())
            .await
            .expect("in time")
            .expect("a response");
        let correlation = i32::from_be_bytes(frame[0..4].try_into().unwrap());
        seen.push(correlation);
        if correlation == c {
            // Header v1 (flexible Produce v9): correlation id, tagged fields.
            let _ = ResponseHeader::decode(&mut frame, 1).unwrap();
            let r = ProduceResponse::decode(&mut frame, 9).unwrap();
            // The acks=0 batch was appended between the two others.
            assert_eq!(r.responses[0].partition_responses[0].base_offset, 5);
        }
    }
    assert_eq!(seen, vec![a, b, c], "no answer for {silent}");
    broker.shutdown().await;
}

async fn fetch(
    raw: &mut RawClient,
    parts: &[(i32, i64)],
    max_bytes: i32,
    partition_max_bytes: i32,
) -> Vec<(i16, usize)> {
    let r: FetchResponse = raw
        .call(
            ApiKey::Fetch,
            12,
            &FetchRequest::default()
                .with_max_wait_ms(0)
                .with_max_bytes(max_bytes)
                .with_topics(vec![
                    FetchTopic::default()
                        .with_topic(name("sizes"))
                        .with_partitions(
                            parts
                                .iter()
                                .map(|&(p, o)| {
                                    FetchPartition::default()
                                        .with_partition(p)
                                        .with_fetch_offset(o)
                                        .with_partition_max_bytes(partition_max_bytes)
                                })
                                .collect(),
                        ),
                ]),
        )
        .await;
    r.responses[0]
        .partitions
        .iter()
        .map(|p| (p.error_code, p.records.as_ref().map_or(0, |r| r.len())))
        .collect()
}

#[tokio::test]
async fn fetch_limits_return_at_least_one_batch_first_and_respect_the_rest() {
    let broker = start().await;
    let mut raw = RawClient::connect(&broker).await;
    create(&mut raw, "sizes", 2).await;
    let big = batch(10, 100);
    let size = big.len();
    for p in 0..2 {
        for _ in 0..3 {
            let r: ProduceResponse = raw
                .call(
                    ApiKey::Produce,
                    9,
                    &produce_request("sizes", p, -1, big.clone()),
                )
                .await;
            assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
        }
    }
    // Plenty of room: everything.
    assert_eq!(
        fetch(&mut raw, &[(0, 0), (1, 0)], 1 << 20, 1 << 20).await,
        vec![(0, 3 * size), (0, 3 * size)]
    );
    // Per-partition limit below one batch: the first partition still gets one batch, the
    // second nothing.
    assert_eq!(
        fetch(&mut raw, &[(0, 0), (1, 0)], 1 << 20, 10).await,
        vec![(0, size), (0, 0)]
    );
    // Response limit of two batches: the first partition fills it.
    assert_eq!(
        fetch(&mut raw, &[(0, 0), (1, 0)], 2 * size as i32, 1 << 20).await,
        vec![(0, 2 * size), (0, 0)]
    );
    // From inside the last batch: that whole batch.
    assert_eq!(
        fetch(&mut raw, &[(1, 25)], 1 << 20, 1 << 20).await,
        vec![(0, size)]
    );
    broker.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_connections_and_frees_the_port() {
    let broker = start().await;
    let addr = broker.listen_addr();
    let mut raw = RawClient::connect(&broker).await;
    let _: ApiVersionsResponse = raw
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    create(&mut raw, "idle", 1).await;
    // A long poll in flight does not hold the shutdown up.
    let _ = raw
        .send(
            ApiKey::Fetch,
            12,
            &FetchRequest::default()
                .with_max_wait_ms(i32::MAX)
                .with_min_bytes(1)
                .with_topics(vec![
                    FetchTopic::default()
                        .with_topic(name("idle"))
                        .with_partitions(vec![
                            FetchPartition::default().with_partition_max_bytes(1 << 20),
                        ]),
                ]),
        )
        .await;
    // Let it reach the broker and start waiting (the test passes either way).
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    tokio::time::timeout(HANG_GUARD, broker.shutdown())
        .await
        .expect("shutdown in time");
    assert!(raw.closed_by_broker().await);
    let listener = std::net::TcpListener::bind(addr).expect("port free again");
    drop(listener);
}

#[tokio::test]
async fn the_background_task_applies_retention() {
    let mut config = streamhub_broker::BrokerConfig::ephemeral();
    config.retention_check_interval = std::time::Duration::from_millis(20);
    let broker = streamhub_broker::Broker::start(config)
        .await
        .expect("start");
    let mut raw = RawClient::connect(&broker).await;
    let r: CreateTopicsResponse = raw
        .call(
            ApiKey::CreateTopics,
            7,
            &CreateTopicsRequest::default().with_topics(vec![
                CreatableTopic::default()
                    .with_name(name("expiring"))
                    .with_num_partitions(1)
                    .with_replication_factor(1)
                    .with_configs(vec![
                        create_topics_request::CreatableTopicConfig::default()
                            .with_name(StrBytes::from_static_str("retention.ms"))
                            .with_value(Some(StrBytes::from_static_str("1000"))),
                        // Smallest segments: each batch can go on its own.
                        create_topics_request::CreatableTopicConfig::default()
                            .with_name(StrBytes::from_static_str("segment.bytes"))
                            .with_value(Some(StrBytes::from_static_str("14"))),
                    ]),
            ]),
        )
        .await;
    assert_eq!(r.topics[0].error_code, 0);
    // Record timestamps from 2023: long expired.
    for _ in 0..3 {
        let r: ProduceResponse = raw
            .call(
                ApiKey::Produce,
                9,
                &produce_request("expiring", 0, -1, batch(2, 5)),
            )
            .await;
        assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    }
    let deadline = tokio::time::Instant::now() + HANG_GUARD;
    loop {
        let r: ListOffsetsResponse = raw
            .call(
                ApiKey::ListOffsets,
                7,
                &ListOffsetsRequest::default().with_topics(vec![
                    list_offsets_request::ListOffsetsTopic::default()
                        .with_name(name("expiring"))
                        .with_partitions(vec![
                            list_offsets_request::ListOffsetsPartition::default()
                                .with_partition_index(0)
                                .with_timestamp(-2),
                        ]),
                ]),
            )
            .await;
        if r.topics[0].partitions[0].offset > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "retention never moved the log start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    broker.shutdown().await;
}
