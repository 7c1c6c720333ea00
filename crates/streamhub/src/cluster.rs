//! The admin service's view of Kafka, read through the Kafka layer. The admin crate
//! defines what it needs ([`ClusterInfo`]); this file is the only place the two meet.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use streamhub_admin::{ClusterFigures, ClusterInfo, TailMessage};
use streamhub_kafka::rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use streamhub_kafka::rdkafka::message::Message;
use streamhub_kafka::rdkafka::types::RDKafkaErrorCode;
use streamhub_kafka::rdkafka::{Offset, TopicPartitionList};
use streamhub_kafka::{Admin, KafkaConfig, KafkaError};

pub struct KafkaCluster {
    config: KafkaConfig,
    admin: Admin,
    /// Metadata and watermarks of the figures rounds (blocking calls, safe from any thread).
    reader: Arc<BaseConsumer>,
    /// A client per consumer group whose committed offsets the rounds read, kept from one
    /// round to the next while the group is asked about.
    groups: Mutex<HashMap<String, Arc<BaseConsumer>>>,
    /// Tail consumers alive now.
    live_tails: Arc<AtomicUsize>,
}

impl KafkaCluster {
    pub fn connect(config: &KafkaConfig) -> anyhow::Result<Arc<dyn ClusterInfo>> {
        Ok(Arc::new(Self::new(config)?))
    }

    fn new(config: &KafkaConfig) -> anyhow::Result<KafkaCluster> {
        Ok(KafkaCluster {
            config: config.clone(),
            admin: config.admin()?,
            reader: Arc::new(config.client_config().create()?),
            groups: Mutex::default(),
            live_tails: Arc::default(),
        })
    }

    /// The clients of `groups`, made when missing; clients of other groups are closed.
    fn group_clients(
        &self,
        groups: &[(String, Vec<String>)],
    ) -> Result<Vec<Arc<BaseConsumer>>, String> {
        let mut clients = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        let asked: HashSet<&str> = groups.iter().map(|(g, _)| g.as_str()).collect();
        clients.retain(|group, _| asked.contains(group.as_str()));
        groups
            .iter()
            .map(|(group, _)| {
                if let Some(client) = clients.get(group) {
                    return Ok(client.clone());
                }
                // Offsets are read with the group's id, without joining the group.
                let mut config = self.config.client_config();
                config
                    .set("group.id", group)
                    .set("enable.auto.commit", "false");
                let client: Arc<BaseConsumer> =
                    Arc::new(config.create().map_err(|e| e.to_string())?);
                clients.insert(group.clone(), client.clone());
                Ok(client)
            })
            .collect()
    }

    /// Tail consumers alive now: each one is closed once its reader is gone.
    #[cfg(test)]
    fn live_tails(&self) -> usize {
        self.live_tails.load(Ordering::SeqCst)
    }
}

/// Runs a blocking librdkafka call on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, streamhub_kafka::rdkafka::error::KafkaError> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("Kafka task failed: {e}"))?
        .map_err(|e| e.to_string())
}

/// The committed offsets of `client`'s group on `partitions`. A coordinator that is
/// moving or still loading answers "not ready": asked again within `timeout`.
fn committed_offsets(
    client: &BaseConsumer,
    partitions: TopicPartitionList,
    timeout: Duration,
) -> Result<TopicPartitionList, streamhub_kafka::rdkafka::error::KafkaError> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match client.committed_offsets(partitions.clone(), left) {
            Err(e)
                if !left.is_zero()
                    && matches!(
                        e.rdkafka_error_code(),
                        Some(
                            RDKafkaErrorCode::NotCoordinator
                                | RDKafkaErrorCode::CoordinatorLoadInProgress
                                | RDKafkaErrorCode::CoordinatorNotAvailable
                        )
                    ) =>
            {
                std::thread::sleep(Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

/// Counts a live tail consumer until dropped.
struct LiveTail(Arc<AtomicUsize>);

impl LiveTail {
    fn new(count: &Arc<AtomicUsize>) -> LiveTail {
        count.fetch_add(1, Ordering::SeqCst);
        LiveTail(count.clone())
    }
}

impl Drop for LiveTail {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl ClusterInfo for KafkaCluster {
    async fn topic_message_totals(
        &self,
        topics: &[String],
    ) -> Result<HashMap<String, i64>, String> {
        // A round without groups: one metadata request, watermarks read concurrently.
        Ok(self.figures(topics, &[]).await?.totals)
    }

    /// One metadata request for the round, the watermarks of every partition read
    /// concurrently, then each group's committed offsets, concurrently too.
    async fn figures(
        &self,
        topics: &[String],
        groups: &[(String, Vec<String>)],
    ) -> Result<ClusterFigures, String> {
        let timeout = self.config.timeout();
        let reader = self.reader.clone();
        let metadata = blocking(move || reader.fetch_metadata(None, timeout)).await?;
        // Topics missing from the cluster (deleted there, or not yet created) have
        // neither total nor lag rather than making the round an error.
        let wanted: HashSet<&str> = topics
            .iter()
            .chain(groups.iter().flat_map(|(_, t)| t))
            .map(String::as_str)
            .collect();
        let partitions: Vec<(String, i32)> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && wanted.contains(t.name()))
            .flat_map(|t| t.partitions().iter().map(|p| (t.name().to_owned(), p.id())))
            .collect();
        let marks = futures::future::try_join_all(partitions.into_iter().map(|(topic, p)| {
            let reader = self.reader.clone();
            async move {
                let name = topic.clone();
                let (low, high) =
                    blocking(move || reader.fetch_watermarks(&name, p, timeout)).await?;
                Ok::<_, String>(((topic, p), (low, high)))
            }
        }))
        .await?;
        let marks: HashMap<(String, i32), (i64, i64)> = marks.into_iter().collect();
        let mut totals = HashMap::new();
        let asked: HashSet<&str> = topics.iter().map(String::as_str).collect();
        for ((topic, _), (low, high)) in &marks {
            if asked.contains(topic.as_str()) {
                *totals.entry(topic.clone()).or_insert(0) += high - low;
            }
        }

        let lag = async {
            let marks = &marks;
            let clients = self.group_clients(groups)?;
            let reads = groups.iter().zip(clients).map(|((group, topics), client)| {
                let mut tpl = TopicPartitionList::new();
                for ((topic, p), _) in marks.iter().filter(|((t, _), _)| topics.contains(t)) {
                    tpl.add_partition(topic, *p);
                }
                async move {
                    let committed = if tpl.count() == 0 {
                        tpl
                    } else {
                        blocking(move || committed_offsets(&client, tpl, timeout)).await?
                    };
                    let mut per_topic: HashMap<String, i64> = HashMap::new();
                    for e in committed.elements() {
                        let Some(&(low, high)) = marks.get(&(e.topic().to_owned(), e.partition()))
                        else {
                            continue;
                        };
                        // Without a commit the group starts at the earliest message.
                        let from = match e.offset() {
                            Offset::Offset(n) => n,
                            _ => low,
                        };
                        *per_topic.entry(e.topic().to_owned()).or_insert(0) += (high - from).max(0);
                    }
                    Ok::<_, String>((group.clone(), per_topic))
                }
            });
            Ok::<_, String>(
                futures::future::try_join_all(reads)
                    .await?
                    .into_iter()
                    .collect(),
            )
        }
        .await;
        Ok(ClusterFigures { totals, lag })
    }

    async fn broker_count(&self) -> Result<usize, String> {
        self.admin.broker_count().await.map_err(|e| e.to_string())
    }

    async fn delete_topic(&self, topic: &str) -> Result<bool, String> {
        match self.admin.delete_topic(topic).await {
            Ok(()) => Ok(true),
            Err(KafkaError::UnknownTopic(_)) => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn partition_count(&self, topic: &str) -> Result<Option<i32>, String> {
        self.admin
            .partition_count(topic)
            .await
            .map_err(|e| e.to_string())
    }

    async fn group_lag(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<HashMap<String, i64>, String> {
        // A subscribed topic may be missing from Kafka (deleted there, or not yet created):
        // it has no lag rather than making the whole answer an error.
        let existing = self.admin.list_topics().await.map_err(|e| e.to_string())?;
        let topics: Vec<String> = topics
            .iter()
            .filter(|t| existing.contains(t))
            .cloned()
            .collect();
        let partitions = self
            .admin
            .group_lag(group, &topics)
            .await
            .map_err(|e| e.to_string())?;
        let mut per_topic = HashMap::new();
        for p in partitions {
            *per_topic.entry(p.topic).or_insert(0) += p.lag;
        }
        Ok(per_topic)
    }

    /// Reads without a consumer group of its own mattering: offsets are assigned, never
    /// committed, so watching a tail changes nobody's position.
    async fn tail(
        &self,
        topic: &str,
        backlog: usize,
    ) -> Result<BoxStream<'static, Result<TailMessage, String>>, String> {
        let marks = self
            .admin
            .watermarks(topic)
            .await
            .map_err(|e| e.to_string())?;
        let per_partition = (backlog / marks.len().max(1)).max(1) as i64;
        let mut assignment = TopicPartitionList::new();
        for m in &marks {
            let start = (m.high - per_partition).max(m.low);
            assignment
                .add_partition_offset(topic, m.partition, Offset::Offset(start))
                .map_err(|e| e.to_string())?;
        }
        let consumer: StreamConsumer = self
            .config
            .clone()
            .with("enable.auto.commit", "false")
            .with("enable.auto.offset.store", "false")
            .consumer("streamhub-dashboard-tail")
            .map_err(|e| e.to_string())?;
        consumer.assign(&assignment).map_err(|e| e.to_string())?;

        // The consumer lives in a task; dropping the stream closes the channel and ends
        // it, at once: a quiet topic may send nothing for ever.
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let live = LiveTail::new(&self.live_tails);
        tokio::spawn(async move {
            // Declared first, dropped last: counts the consumer until it is closed.
            let _live = live;
            let consumer = consumer;
            let mut stream = consumer.stream();
            loop {
                let next = tokio::select! {
                    _ = tx.closed() => break,
                    next = stream.next() => next,
                };
                let Some(next) = next else { break };
                let item = next.map(|m| to_tail(&m)).map_err(|e| e.to_string());
                if tx.send(item).await.is_err() {
                    break;
                }
            }
        });
        Ok(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .boxed())
    }
}

fn to_tail(m: &impl Message) -> TailMessage {
    let value = match m.payload() {
        None => serde_json::Value::Null,
        Some(bytes) => serde_json::from_slice(bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(bytes).into())),
    };
    TailMessage {
        partition: m.partition(),
        offset: m.offset(),
        timestamp: m
            .timestamp()
            .to_millis()
            .and_then(chrono::DateTime::from_timestamp_millis),
        key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
        value,
    }
}

#[cfg(all(test, feature = "embedded-broker"))]
mod tests {
    use std::time::Duration;

    use reqwest::StatusCode;
    use serde_json::{Value, json};
    use streamhub_admin::{AdminConfig, AdminService, Secret};
    use streamhub_kafka::TopicSpec;
    use streamhub_kafka::broker::{BrokerConfig, EmbeddedBroker};
    use streamhub_testkit::{ADMIN_PASSWORD, AdminApi};

    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_closed_tail_of_a_quiet_topic_closes_its_consumer() {
        let broker = EmbeddedBroker::start(BrokerConfig::ephemeral())
            .await
            .unwrap();
        let config = KafkaConfig::new(broker.bootstrap_servers());
        let cluster = KafkaCluster::new(&config).unwrap();
        cluster
            .admin
            .ensure_topic(&TopicSpec::new("quiet", 1, 1))
            .await
            .unwrap();
        let tail = cluster.tail("quiet", 20).await.unwrap();
        assert_eq!(cluster.live_tails(), 1);
        // Nothing is ever published to the topic: only the reader leaving can end it.
        drop(tail);
        tokio::time::timeout(Duration::from_secs(30), async {
            while cluster.live_tails() > 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await
        .expect("the tail's consumer outlived its reader");
    }

    /// One round gives totals and every group's lag; topics missing from Kafka have
    /// neither, and a group that never committed starts at the earliest message.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_round_reads_totals_and_the_lag_of_every_group() {
        use streamhub_kafka::rdkafka::consumer::CommitMode;
        use streamhub_kafka::rdkafka::producer::FutureRecord;

        let broker = EmbeddedBroker::start(BrokerConfig::ephemeral())
            .await
            .unwrap();
        let config = KafkaConfig::new(broker.bootstrap_servers());
        let cluster = KafkaCluster::new(&config).unwrap();
        cluster
            .admin
            .ensure_topic(&TopicSpec::new("counted", 2, 1))
            .await
            .unwrap();
        let producer = config.producer().unwrap();
        for i in 0..30 {
            producer
                .send(
                    FutureRecord::to("counted")
                        .partition(0)
                        .key(&format!("k{i}"))
                        .payload("{}"),
                    Duration::from_secs(10),
                )
                .await
                .map_err(|(e, _)| e)
                .unwrap();
        }
        let mut committer = config.client_config();
        committer
            .set("group.id", "streamhub-dave")
            .set("enable.auto.commit", "false");
        let committer: BaseConsumer = committer.create().unwrap();
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset("counted", 0, Offset::Offset(10))
            .unwrap();
        committer.commit(&offsets, CommitMode::Sync).unwrap();

        let topics = ["counted".to_owned(), "absent".to_owned()];
        let groups = [
            ("streamhub-dave".to_owned(), topics.to_vec()),
            ("streamhub-erin".to_owned(), vec!["counted".to_owned()]),
        ];
        let figures = cluster.figures(&topics, &groups).await.unwrap();
        assert_eq!(figures.totals, HashMap::from([("counted".to_owned(), 30)]));
        let lag = figures.lag.unwrap();
        assert_eq!(
            lag["streamhub-dave"],
            HashMap::from([("counted".to_owned(), 20)])
        );
        assert_eq!(
            lag["streamhub-erin"],
            HashMap::from([("counted".to_owned(), 30)])
        );
        // The next round keeps the clients of the groups still asked about only.
        cluster.figures(&topics, &groups[1..]).await.unwrap();
        assert_eq!(
            cluster.groups.lock().unwrap().keys().collect::<Vec<_>>(),
            ["streamhub-erin"]
        );
        broker.shutdown().await.unwrap();
    }

    /// The embedded broker is one broker: a topic with two replicas cannot be created on it,
    /// and a topic it already has with another partition count would be shown wrong.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn approval_is_refused_when_the_replication_factor_exceeds_the_broker_count() {
        let broker = EmbeddedBroker::start(BrokerConfig::ephemeral())
            .await
            .unwrap();
        let kafka = KafkaConfig::new(broker.bootstrap_servers());
        kafka
            .admin()
            .unwrap()
            .ensure_topic(&TopicSpec::new("legacy", 1, 1))
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = AdminConfig::local(dir.path());
        config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
        config.cluster = Some(KafkaCluster::connect(&kafka).unwrap());
        let admin = AdminService::start(config).await.unwrap();
        let api = AdminApi::sign_in(admin.url()).await;
        let http = reqwest::Client::new();
        let approve = async |name: &str, body: Value| {
            let mut body = body;
            body["name"] = json!(name);
            let id = api.post("/api/topics", body).await["topic_id"]
                .as_i64()
                .unwrap();
            let res = http
                .post(format!("{}/api/topics/{id}/approve", admin.url()))
                .bearer_auth(api.token())
                .send()
                .await
                .unwrap();
            let status = res.status();
            let body: Value = res.json().await.unwrap();
            (id, status, body)
        };

        let (id, status, body) = approve("replicated", json!({"replication_factor": 2})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let message = body["error"].as_str().unwrap();
        assert!(
            message.contains("replication factor 2") && message.contains("1 broker(s)"),
            "{message}"
        );
        assert_eq!(api.topic(id).await["status"], "pending");

        let (id, status, body) = approve("legacy", json!({"partitions": 3})).await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("1 partition(s)"),
            "{body}"
        );
        assert_eq!(api.topic(id).await["status"], "pending");

        let (id, status, body) = approve("fits", json!({"partitions": 2})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(api.topic(id).await["status"], "approved");

        admin.stop().await.unwrap();
        broker.shutdown().await.unwrap();
    }

    /// Deleting a topic in streamhub deletes it in Kafka, and only it: the other topic
    /// keeps every message.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_topic_deleted_in_streamhub_is_deleted_in_kafka_and_only_it() {
        let broker = EmbeddedBroker::start(BrokerConfig::ephemeral())
            .await
            .unwrap();
        let kafka = KafkaConfig::new(broker.bootstrap_servers());
        let kafka_admin = kafka.admin().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = AdminConfig::local(dir.path());
        config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
        config.cluster = Some(KafkaCluster::connect(&kafka).unwrap());
        let admin = AdminService::start(config).await.unwrap();
        let api = AdminApi::sign_in(admin.url()).await;

        let mut ids = Vec::new();
        for name in ["kept", "doomed"] {
            let id = api
                .post("/api/topics", json!({"name": name, "partitions": 2}))
                .await["topic_id"]
                .as_i64()
                .unwrap();
            api.post(&format!("/api/topics/{id}/approve"), json!({}))
                .await;
            // What the producer does once a topic is approved.
            kafka_admin
                .ensure_topic(&TopicSpec::new(name, 2, 1))
                .await
                .unwrap();
            api.post("/api/topics/activate_by_name", json!({"topic_name": name}))
                .await;
            ids.push(id);
        }
        let producer = kafka.producer().unwrap();
        for topic in ["kept", "doomed"] {
            for i in 0..50 {
                producer
                    .send(
                        streamhub_kafka::rdkafka::producer::FutureRecord::to(topic)
                            .key(&format!("k{i}"))
                            .payload("{}"),
                        Duration::from_secs(10),
                    )
                    .await
                    .map_err(|(e, _)| e)
                    .unwrap();
            }
        }

        let res = reqwest::Client::new()
            .delete(format!("{}/api/topics/{}", admin.url(), ids[1]))
            .bearer_auth(api.token())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(api.topic(ids[1]).await["status"], "deleted");
        assert_eq!(kafka_admin.partition_count("doomed").await.unwrap(), None);
        let totals = kafka_admin
            .message_totals(&["kept".to_owned()])
            .await
            .unwrap();
        assert_eq!(totals.get("kept"), Some(&50), "{totals:?}");

        admin.stop().await.unwrap();
        broker.shutdown().await.unwrap();
    }
}
