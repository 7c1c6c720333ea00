//! Helpers shared by the broker's integration tests: a broker on a free loopback port,
//! rdkafka clients, and a raw protocol client for what rdkafka cannot send.

#![allow(dead_code)]

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use streamhub_broker::{Broker, BrokerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bound on anything that should finish quickly: only catches hangs.
pub const HANG_GUARD: Duration = Duration::from_secs(60);

pub async fn start() -> Broker {
    Broker::start(BrokerConfig::ephemeral())
        .await
        .expect("broker starts")
}

pub fn topic_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

pub fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("admin client")
}

pub async fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    let admin = admin(bootstrap);
    let results = admin
        .create_topics(
            &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("create topics request");
    for r in results {
        r.expect("topic created");
    }
}

pub fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "20")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer")
}

/// Sends `payloads` to one partition all at once (so that they travel in multi-message
/// batches) and returns the offsets the broker assigned.
pub async fn send_all(
    producer: &FutureProducer,
    topic: &str,
    partition: i32,
    payloads: &[String],
) -> Vec<i64> {
    let futures: Vec<_> = payloads
        .iter()
        .map(|p| {
            producer
                .send_result(
                    FutureRecord::to(topic)
                        .partition(partition)
                        .key(p.as_str())
                        .payload(p.as_str()),
                )
                .map_err(|(e, _)| e)
                .expect("queued")
        })
        .collect();
    let mut offsets = Vec::new();
    for f in futures {
        let delivery = tokio::time::timeout(HANG_GUARD, f)
            .await
            .expect("delivered in time")
            .expect("not cancelled")
            .map_err(|(e, _)| e)
            .expect("delivered");
        offsets.push(delivery.offset);
    }
    offsets
}

pub fn payloads(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Reads `count` messages from `offset` of one partition with an assigned consumer.
pub async fn read(
    bootstrap: &str,
    topic: &str,
    partition: i32,
    offset: i64,
    count: usize,
) -> Vec<(i64, String)> {
    let bootstrap = bootstrap.to_string();
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", "unused-assign-only")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "100")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, partition, Offset::Offset(offset))
            .expect("partition");
        consumer.assign(&tpl).expect("assign");
        let deadline = std::time::Instant::now() + HANG_GUARD;
        let mut out = Vec::new();
        while out.len() < count {
            assert!(
                std::time::Instant::now() < deadline,
                "only {} of {count} messages read",
                out.len()
            );
            if let Some(m) = consumer.poll(Duration::from_millis(200)) {
                let m = m.expect("message");
                let payload =
                    String::from_utf8(m.payload().unwrap_or_default().to_vec()).expect("utf-8");
                out.push((m.offset(), payload));
            }
        }
        out
    })
    .await
    .expect("reader thread")
}

/// A connection speaking the protocol directly.
pub struct RawClient {
    pub stream: TcpStream,
    correlation: i32,
}

impl RawClient {
    pub async fn connect(broker: &Broker) -> RawClient {
        RawClient {
            stream: TcpStream::connect(broker.listen_addr())
                .await
                .expect("connect"),
            correlation: 0,
        }
    }

    pub async fn send<R: Encodable>(&mut self, key: ApiKey, version: i16, body: &R) -> i32 {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("raw-test")));
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, key.request_header_version(version))
            .expect("header");
        body.encode(&mut buf, version)
            .unwrap_or_else(|e| panic!("encoding {key:?} v{version}: {e}"));
        let mut frame = BytesMut::new();
        frame.put_i32(buf.len() as i32);
        frame.extend_from_slice(&buf);
        self.stream.write_all(&frame).await.expect("write");
        self.correlation
    }

    /// The next response frame (without its length), `None` if the broker closed.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let mut len = [0u8; 4];
        if self.stream.read_exact(&mut len).await.is_err() {
            return None;
        }
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        self.stream.read_exact(&mut body).await.ok()?;
        Some(Bytes::from(body))
    }

    pub async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        body: &Req,
    ) -> Resp {
        let correlation = self.send(key, version, body).await;
        let mut frame = tokio::time::timeout(HANG_GUARD, self.read_frame())
            .await
            .expect("response in time")
            .expect("response");
        let header = ResponseHeader::decode(&mut frame, key.response_header_version(version))
            .expect("response header");
        assert_eq!(header.correlation_id, correlation);
        Resp::decode(&mut frame, version).expect("response body")
    }

    /// True once the broker has closed this connection.
    pub async fn closed_by_broker(&mut self) -> bool {
        let mut buf = [0u8; 64];
        loop {
            match tokio::time::timeout(HANG_GUARD, self.stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }
}
