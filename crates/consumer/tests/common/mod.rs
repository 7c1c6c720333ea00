//! A world for consumer tests: a broker, the real admin service on a temporary SQLite
//! store, users, topics in every lifecycle state, and sequenced messages.
//!
//! The broker is the embedded one, or the Apache Kafka named by `STREAMHUB_TEST_KAFKA`
//! (the full test suite runs these tests on both). Topic names are unique per test, so
//! a shared cluster needs no cleaning.

#![allow(dead_code)]

use std::time::Duration;

use rdkafka::producer::FutureRecord;
use serde_json::{Value, json};
use streamhub_admin::AdminHandle;
use streamhub_consumer::SessionArgs;
use streamhub_kafka::broker::{BrokerConfig, EmbeddedBroker};
use streamhub_kafka::{KafkaConfig, TopicSpec};
use streamhub_testkit::{AdminApi, admin_service};

pub const USER_PASSWORD: &str = "Lantern-Orbit-Kettle-57";

pub struct World {
    /// The embedded broker, when no Apache Kafka is named.
    pub broker: Option<EmbeddedBroker>,
    pub bootstrap: String,
    pub admin: AdminHandle,
    pub kafka: KafkaConfig,
    /// The admin API, signed in as `admin`.
    pub api: AdminApi,
    _dir: tempfile::TempDir,
}

pub use streamhub_testkit::unique;

impl World {
    pub async fn start() -> World {
        let (broker, bootstrap) = match std::env::var("STREAMHUB_TEST_KAFKA") {
            Ok(apache) if !apache.trim().is_empty() => (None, apache),
            _ => {
                let broker = EmbeddedBroker::start(BrokerConfig::ephemeral())
                    .await
                    .expect("embedded broker starts");
                let bootstrap = broker.bootstrap_servers();
                (Some(broker), bootstrap)
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let admin = admin_service(dir.path()).await;
        let api = AdminApi::sign_in(admin.url()).await;
        let kafka = KafkaConfig::new(&bootstrap);
        World {
            broker,
            bootstrap,
            admin,
            kafka,
            api,
            _dir: dir,
        }
    }

    pub fn admin_url(&self) -> url::Url {
        self.admin.url().parse().unwrap()
    }

    /// Session flags for `user`, signed in with [`USER_PASSWORD`].
    pub fn session(&self, user: &str) -> SessionArgs {
        SessionArgs::new(self.admin_url(), &self.bootstrap)
            .unwrap()
            .with_login(user, USER_PASSWORD)
    }

    /// Session flags that reach no admin service (for `--direct`).
    pub fn direct_session(&self) -> SessionArgs {
        SessionArgs::new("http://127.0.0.1:9".parse().unwrap(), &self.bootstrap).unwrap()
    }

    pub async fn add_user(&self, name: &str) {
        self.api
            .post(
                "/api/users",
                json!({"username": name, "password": USER_PASSWORD, "role": "user"}),
            )
            .await;
    }

    /// Requests a topic and returns its id; it stays pending.
    pub async fn pending_topic(&self, name: &str, partitions: i32) -> i64 {
        let body = self.api.post("/api/topics",
                json!({"name": name, "partitions": partitions, "description": format!("{name} for tests")}),
            )
            .await;
        body["topic_id"].as_i64().expect("topic id")
    }

    /// A topic that is active in the admin service and exists in Kafka.
    pub async fn active_topic(&self, name: &str, partitions: i32) -> i64 {
        let id = self.pending_topic(name, partitions).await;
        self.api
            .post(&format!("/api/topics/{id}/approve"), json!({}))
            .await;
        self.kafka_topic(name, partitions).await;
        self.api
            .post("/api/topics/activate_by_name", json!({"topic_name": name}))
            .await;
        id
    }

    /// A topic in Kafka only, unknown to the admin service.
    pub async fn kafka_topic(&self, name: &str, partitions: i32) {
        self.kafka
            .admin()
            .unwrap()
            .ensure_topic(&TopicSpec::new(name, partitions, 1))
            .await
            .expect("topic created in Kafka");
    }

    pub async fn deactivate(&self, id: i64) {
        self.api
            .post(&format!("/api/topics/{id}/deactivate"), json!({}))
            .await;
    }

    pub async fn subscribe_as_admin(&self, user: &str, topic: &str) {
        self.api
            .post(
                "/api/subscriptions",
                json!({"user_id": user, "topic_name": topic}),
            )
            .await;
    }

    /// Publishes envelopes with `seq` in `seqs`, all acknowledged on return. They go out
    /// together, in multi-record batches: the high watermark must cover every record of a
    /// batch for `--from <offset>`, `--from -N` and resumed groups to see them all.
    pub async fn produce(&self, topic: &str, seqs: std::ops::Range<u64>) {
        Producer::new(self.kafka.clone()).send(topic, seqs).await;
    }

    pub async fn produce_bytes(&self, topic: &str, key: Option<&str>, value: &[u8]) {
        let producer = self.kafka.producer().unwrap();
        let mut record = FutureRecord::<str, [u8]>::to(topic).payload(value);
        if let Some(k) = key {
            record = record.key(k);
        }
        producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .expect("message acknowledged");
    }
}

pub fn admin_token(world: &World) -> String {
    world.api.token().to_owned()
}

/// Publishes sequenced envelopes.
pub struct Producer {
    producer: rdkafka::producer::FutureProducer,
}

impl Producer {
    pub fn new(kafka: KafkaConfig) -> Self {
        Self {
            producer: kafka.producer().unwrap(),
        }
    }

    /// Publishes envelopes with `seq` in `seqs`, keyed so they spread over partitions,
    /// and waits for every acknowledgement.
    pub async fn send(&self, topic: &str, seqs: std::ops::Range<u64>) {
        let sends: Vec<_> = seqs
            .map(|seq| {
                let value = envelope(topic, seq);
                let key = format!("entity-{}", seq % 7);
                self.producer
                    .send_result(FutureRecord::to(topic).key(&key).payload(&value))
                    .unwrap_or_else(|(e, _)| panic!("cannot queue seq {seq}: {e}"))
            })
            .collect();
        for delivery in sends {
            delivery
                .await
                .expect("delivery reported")
                .map_err(|(e, _)| e)
                .expect("message acknowledged");
        }
    }
}

pub fn envelope(topic: &str, seq: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "topic": topic,
        "data_type": "sensor",
        "timestamp": chrono::Utc::now().to_rfc3339(),
        "producer_id": "test-producer",
        "seq": seq,
        "payload": {"sensor_id": format!("s{}", seq % 7), "temperature": 20.5}
    }))
    .unwrap()
}

/// The `seq` of every JSON line of `read --format json`.
pub fn seqs_of_json(output: &str) -> Vec<u64> {
    output
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            v["envelope"]["seq"]
                .as_u64()
                .unwrap_or_else(|| panic!("no seq in {l}"))
        })
        .collect()
}
