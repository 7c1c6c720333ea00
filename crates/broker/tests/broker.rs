//! The broker against real clients: librdkafka through rdkafka, and raw protocol requests
//! for what a well-behaved client never sends.

mod common;

use std::time::Duration;

use common::*;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::ClientConfig;
use rdkafka::admin::AdminOptions;
use rdkafka::consumer::{BaseConsumer, Consumer};
use streamhub_broker::{Broker, BrokerConfig, BrokerError};

fn topics_of(bootstrap: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("consumer");
    let metadata = consumer.fetch_metadata(None, HANG_GUARD).expect("metadata");
    let mut names: Vec<String> = metadata
        .topics()
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    names.sort();
    names
}

fn watermarks(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("consumer");
    consumer
        .fetch_watermarks(topic, partition, HANG_GUARD)
        .expect("watermarks")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_one_topic_keeps_the_other_and_its_messages() {
    let broker = start().await;
    let bs = broker.bootstrap_servers();
    let (doomed, kept) = (topic_name("doomed"), topic_name("kept"));
    create_topic(&bs, &doomed, 2).await;
    create_topic(&bs, &kept, 1).await;
    let producer = producer(&bs);
    send_all(&producer, &doomed, 0, &payloads("d", 10)).await;
    let sent = payloads("k", 25);
    send_all(&producer, &kept, 0, &sent).await;

    let mut expected = vec![doomed.clone(), kept.clone()];
    expected.sort();
    assert_eq!(topics_of(&bs), expected);

    let results = admin(&bs)
        .delete_topics(&[doomed.as_str()], &AdminOptions::new())
        .await
        .expect("delete request");
    for r in results {
        r.expect("deleted");
    }
    assert_eq!(topics_of(&bs), vec![kept.clone()]);
    let read = read(&bs, &kept, 0, 0, sent.len()).await;
    let payloads: Vec<String> = read.iter().map(|(_, p)| p.clone()).collect();
    assert_eq!(payloads, sent);
    assert_eq!(watermarks(&bs, &kept, 0), (0, 25));
    assert!(
        !broker.data_dir().join(format!("{doomed}-0")).exists(),
        "the deleted topic's log directory is gone"
    );
    assert!(broker.data_dir().join(format!("{kept}-0")).exists());
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_producer_s_messages_are_read_back_exactly() {
    let broker = start().await;
    let bs = broker.bootstrap_servers();
    let topic = topic_name("exact");
    create_topic(&bs, &topic, 3).await;
    let producer = producer(&bs);
    let sent = payloads("m", 500);
    let offsets = send_all(&producer, &topic, 1, &sent).await;
    assert_eq!(offsets, (0..500).collect::<Vec<i64>>());

    let read = read(&bs, &topic, 1, 0, sent.len()).await;
    assert_eq!(
        read.iter().map(|(o, _)| *o).collect::<Vec<_>>(),
        (0..500).collect::<Vec<i64>>()
    );
    assert_eq!(read.into_iter().map(|(_, p)| p).collect::<Vec<_>>(), sent);
    // Nothing reached the other partitions.
    assert_eq!(watermarks(&bs, &topic, 0), (0, 0));
    assert_eq!(watermarks(&bs, &topic, 2), (0, 0));
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watermarks_are_right_after_multi_message_batches() {
    let broker = start().await;
    let bs = broker.bootstrap_servers();
    let topic = topic_name("marks");
    create_topic(&bs, &topic, 1).await;
    let producer = producer(&bs);
    send_all(&producer, &topic, 0, &payloads("a", 50)).await;
    assert_eq!(watermarks(&bs, &topic, 0), (0, 50));
    send_all(&producer, &topic, 0, &payloads("b", 1)).await;
    assert_eq!(watermarks(&bs, &topic, 0), (0, 51));
    send_all(&producer, &topic, 0, &payloads("c", 149)).await;
    assert_eq!(watermarks(&bs, &topic, 0), (0, 200));
    // Reading from the middle of a batch starts at the asked offset.
    let read = read(&bs, &topic, 0, 120, 80).await;
    assert_eq!(read.first().map(|(o, _)| *o), Some(120));
    assert_eq!(read.last().map(|(o, _)| *o), Some(199));
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_batches_are_stored_and_served_as_sent() {
    let broker = start().await;
    let bs = broker.bootstrap_servers();
    let topic = topic_name("lz4");
    create_topic(&bs, &topic, 1).await;
    let producer: rdkafka::producer::FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &bs)
        .set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        .set("linger.ms", "20")
        .create()
        .expect("producer");
    let sent = payloads("compressed-payload-compressed-payload", 300);
    let offsets = send_all(&producer, &topic, 0, &sent).await;
    assert_eq!(offsets, (0..300).collect::<Vec<i64>>());
    assert_eq!(watermarks(&bs, &topic, 0), (0, 300));
    let read = read(&bs, &topic, 0, 0, sent.len()).await;
    assert_eq!(read.into_iter().map(|(_, p)| p).collect::<Vec<_>>(), sent);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_answers_as_soon_as_data_arrives() {
    let broker = start().await;
    let bs = broker.bootstrap_servers();
    let topic = topic_name("poll");
    create_topic(&bs, &topic, 1).await;

    let mut raw = RawClient::connect(&broker).await;
    // Far longer than the hang guard: an answer before it proves the append woke the fetch.
    let max_wait_ms = 10 * HANG_GUARD.as_millis() as i32;
    let request = FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![
            FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.clone())))
                .with_partitions(vec![
                    FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20),
                ]),
        ]);
    let version = 12;
    let fetch = async {
        let response: FetchResponse = raw.call(ApiKey::Fetch, version, &request).await;
        response
    };
    let produce = async {
        // Give the fetch time to reach the broker first; correctness does not depend on it.
        tokio::time::sleep(Duration::from_millis(300)).await;
        send_all(&producer(&bs), &topic, 0, &payloads("late", 1)).await
    };
    let (response, offsets) = tokio::join!(fetch, produce);
    assert_eq!(offsets, vec![0]);
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    assert_eq!(partition.high_watermark, 1);
    assert!(
        partition.records.as_ref().is_some_and(|r| !r.is_empty()),
        "the fetch carries the new record"
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_the_same_data_dir_keeps_topics_and_messages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let topic = topic_name("durable");
    let sent = payloads("p", 40);
    let first_producer_id;
    let first_cluster_id = {
        let broker = Broker::start(BrokerConfig::with_data_dir(dir.path()))
            .await
            .expect("first start");
        let bs = broker.bootstrap_servers();
        create_topic(&bs, &topic, 2).await;
        send_all(&producer(&bs), &topic, 1, &sent).await;
        let id = cluster_id(&broker).await;
        first_producer_id = producer_id(&broker).await;
        broker.shutdown().await;
        id
    };
    let broker = Broker::start(BrokerConfig::with_data_dir(dir.path()))
        .await
        .expect("second start");
    let bs = broker.bootstrap_servers();
    assert_eq!(topics_of(&bs), vec![topic.clone()]);
    assert_eq!(cluster_id(&broker).await, first_cluster_id);
    assert!(
        producer_id(&broker).await > first_producer_id,
        "producer ids are not reused after a restart"
    );
    assert_eq!(watermarks(&bs, &topic, 1), (0, 40));
    let read = read(&bs, &topic, 1, 0, 40).await;
    assert_eq!(read.into_iter().map(|(_, p)| p).collect::<Vec<_>>(), sent);
    // New messages continue after the old ones.
    let offsets = send_all(&producer(&bs), &topic, 1, &payloads("q", 2)).await;
    assert_eq!(offsets, vec![40, 41]);
    broker.shutdown().await;
}

async fn producer_id(broker: &Broker) -> i64 {
    let mut raw = RawClient::connect(broker).await;
    let response: InitProducerIdResponse = raw
        .call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000),
        )
        .await;
    assert_eq!(response.error_code, 0);
    response.producer_id.0
}

async fn cluster_id(broker: &Broker) -> String {
    let mut raw = RawClient::connect(broker).await;
    let response: MetadataResponse = raw
        .call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(Some(vec![])),
        )
        .await;
    response.cluster_id.expect("cluster id").to_string()
}

#[tokio::test]
async fn a_configured_cluster_id_is_kept_and_checked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = BrokerConfig::with_data_dir(dir.path());
    config.cluster_id = Some("streamhub".into());
    let broker = Broker::start(config.clone()).await.expect("start");
    assert_eq!(cluster_id(&broker).await, "streamhub");
    broker.shutdown().await;
    // Without a configured id, the stored one stays.
    let broker = Broker::start(BrokerConfig::with_data_dir(dir.path()))
        .await
        .expect("restart");
    assert_eq!(cluster_id(&broker).await, "streamhub");
    broker.shutdown().await;
    config.cluster_id = Some("other".into());
    let refused = Broker::start(config).await;
    assert!(
        matches!(refused, Err(BrokerError::Storage(_))),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_broker_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = Broker::start(BrokerConfig::with_data_dir(dir.path()))
        .await
        .expect("first start");
    let second = Broker::start(BrokerConfig::with_data_dir(dir.path())).await;
    assert!(matches!(second, Err(BrokerError::Locked(_))), "{second:?}");
    first.shutdown().await;
    // Once the first is gone, the directory is free again.
    let again = Broker::start(BrokerConfig::with_data_dir(dir.path()))
        .await
        .expect("start after stop");
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_frame_closes_only_its_own_connection() {
    let broker = start().await;
    let bs = broker.bootstrap_servers();
    let topic = topic_name("robust");
    create_topic(&bs, &topic, 1).await;

    let mut healthy = RawClient::connect(&broker).await;
    let _: ApiVersionsResponse = healthy
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;

    // Unknown API key.
    let mut bad = RawClient::connect(&broker).await;
    use tokio::io::AsyncWriteExt;
    bad.stream
        .write_all(&[0, 0, 0, 8, 0x7f, 0x7f, 0, 0, 0, 0, 0, 1])
        .await
        .unwrap();
    assert!(bad.closed_by_broker().await);
    // A frame larger than the limit.
    let mut huge = RawClient::connect(&broker).await;
    huge.stream
        .write_all(&i32::MAX.to_be_bytes())
        .await
        .unwrap();
    assert!(huge.closed_by_broker().await);
    // A Metadata request whose body is garbage.
    let mut garbage = RawClient::connect(&broker).await;
    garbage
        .stream
        .write_all(&[0, 0, 0, 12, 0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff])
        .await
        .unwrap();
    assert!(garbage.closed_by_broker().await);

    // Element counts far beyond the bytes sent (CreateTopics v2 with i32::MAX topics,
    // Metadata v9 flexible with a compact array of u32::MAX - 1 topics): a decode error that
    // closes the connection, never an allocation that would take the process down.
    let mut huge_count = RawClient::connect(&broker).await;
    huge_count
        .stream
        .write_all(&[
            0, 0, 0, 14, 0, 19, 0, 2, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff,
        ])
        .await
        .unwrap();
    assert!(huge_count.closed_by_broker().await);
    let mut huge_compact = RawClient::connect(&broker).await;
    huge_compact
        .stream
        .write_all(&[
            0, 0, 0, 16, 0, 3, 0, 9, 0, 0, 0, 2, 0xff, 0xff, 0, 0xff, 0xff, 0xff, 0xff, 0x0f,
        ])
        .await
        .unwrap();
    assert!(huge_compact.closed_by_broker().await);

    // The others are still served.
    let response: MetadataResponse = healthy
        .call(
            ApiKey::Metadata,
            9,
            &MetadataRequest::default().with_topics(Some(vec![
                MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(topic.clone())))),
            ])),
        )
        .await;
    assert_eq!(response.topics.len(), 1);
    assert_eq!(response.topics[0].error_code, 0);
    let offsets = send_all(&producer(&bs), &topic, 0, &payloads("ok", 3)).await;
    assert_eq!(offsets, vec![0, 1, 2]);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_versions_at_an_unknown_version_answers_v0_with_unsupported_version() {
    let broker = start().await;
    let mut raw = RawClient::connect(&broker).await;
    // Sent as v3 is encoded, but announced as v99: the broker answers in v0.
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::ApiVersions as i16)
        .with_request_api_version(99)
        .with_correlation_id(5);
    use bytes::BufMut;
    use kafka_protocol::protocol::{Decodable, Encodable};
    let mut buf = bytes::BytesMut::new();
    header.encode(&mut buf, 2).unwrap();
    ApiVersionsRequest::default().encode(&mut buf, 3).unwrap();
    let mut frame = bytes::BytesMut::new();
    frame.put_i32(buf.len() as i32);
    frame.extend_from_slice(&buf);
    use tokio::io::AsyncWriteExt;
    raw.stream.write_all(&frame).await.unwrap();
    let mut response = raw.read_frame().await.expect("a response");
    let header = ResponseHeader::decode(&mut response, 0).unwrap();
    assert_eq!(header.correlation_id, 5);
    let body = ApiVersionsResponse::decode(&mut response, 0).unwrap();
    assert_eq!(body.error_code, 35);
    let fetch = body
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::Fetch as i16)
        .expect("fetch advertised");
    assert!(fetch.min_version <= 4 && fetch.max_version >= 12);
    assert!(
        !body
            .api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::EndTxn as i16),
        "transactions are not advertised"
    );
    broker.shutdown().await;
}
