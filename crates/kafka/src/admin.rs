use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::metadata::Metadata;
use rdkafka::{Offset, TopicPartitionList};
use streamhub_model::{TopicName, topic_limits};

use crate::config::KafkaConfig;
use crate::error::KafkaError;

/// Cluster id of streamhub's embedded broker, as its metadata reports it.
pub const EMBEDDED_CLUSTER_ID: &str = "streamhub";

/// A topic to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
    /// Topic-level configuration (`retention.ms`, `cleanup.policy` ...).
    pub config: Vec<(String, String)>,
}

impl TopicSpec {
    pub fn new(name: impl Into<String>, partitions: i32, replication_factor: i32) -> Self {
        TopicSpec {
            name: name.into(),
            partitions,
            replication_factor,
            config: Vec::new(),
        }
    }

    /// Checks what can be checked without Kafka: the name, the partition count and the
    /// replication factor's lower bound.
    pub fn validate(&self) -> Result<(), KafkaError> {
        validate_topic_name(&self.name)?;
        if topic_limits::check_partitions(self.partitions).is_err() {
            return Err(KafkaError::InvalidPartitions(self.partitions));
        }
        if self.replication_factor < 1 {
            return Err(KafkaError::InvalidReplicationFactor(
                self.replication_factor,
            ));
        }
        Ok(())
    }
}

/// Whether [`Admin::ensure_topic`] created the topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Created {
    New,
    AlreadyExisted,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionWatermarks {
    pub partition: i32,
    /// Offset of the oldest message still stored.
    pub low: i64,
    /// Offset the next message will get.
    pub high: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// The group's committed offset (next message it will read), `None` if it never committed.
    pub committed: Option<i64>,
    pub high: i64,
    /// Messages the group has not consumed yet: `high - committed`, or `high - low` without
    /// a commit (the group starts at the earliest message).
    pub lag: i64,
}

/// A group coordinator that is moving or still loading: the request can simply be repeated.
fn coordinator_not_ready(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode::*;
    matches!(
        e.rdkafka_error_code(),
        Some(NotCoordinator | CoordinatorLoadInProgress | CoordinatorNotAvailable)
    )
}

fn validate_topic_name(name: &str) -> Result<TopicName, KafkaError> {
    name.parse::<TopicName>()
        .map_err(|e| KafkaError::InvalidTopic {
            name: name.to_owned(),
            reason: e.to_string(),
        })
}

/// Topic administration and offset figures. Every call is bounded by the configured timeout.
pub struct Admin {
    config: KafkaConfig,
    client: Arc<AdminClient<DefaultClientContext>>,
    /// Metadata and watermarks (blocking librdkafka calls, run off the async runtime).
    metadata: Arc<BaseConsumer>,
}

impl Admin {
    pub(crate) fn new(config: KafkaConfig) -> Result<Admin, KafkaError> {
        let client: AdminClient<DefaultClientContext> = config.client_config().create()?;
        let metadata: BaseConsumer = config.client_config().create()?;
        Ok(Admin {
            config,
            client: Arc::new(client),
            metadata: Arc::new(metadata),
        })
    }

    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    fn timeout(&self) -> Duration {
        self.config.timeout()
    }

    /// Turns "could not reach a broker" errors into [`KafkaError::Unreachable`].
    fn classify(&self, err: rdkafka::error::KafkaError) -> KafkaError {
        match err.rdkafka_error_code() {
            Some(
                RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::Resolve
                | RDKafkaErrorCode::NetworkException,
            ) => KafkaError::Unreachable {
                bootstrap: self.config.bootstrap_servers().to_owned(),
                timeout: self.timeout(),
                reason: err.to_string(),
            },
            _ => KafkaError::Client(err),
        }
    }

    /// Runs a blocking librdkafka call on the blocking pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T, KafkaError>
    where
        T: Send + 'static,
        F: FnOnce(&BaseConsumer, Duration) -> Result<T, rdkafka::error::KafkaError>
            + Send
            + 'static,
    {
        let consumer = Arc::clone(&self.metadata);
        let timeout = self.timeout();
        tokio::task::spawn_blocking(move || f(&consumer, timeout))
            .await
            .map_err(|e| KafkaError::Broker(format!("metadata task failed: {e}")))?
            .map_err(|e| self.classify(e))
    }

    async fn metadata(&self, topic: Option<String>) -> Result<Metadata, KafkaError> {
        self.blocking(move |c, timeout| c.fetch_metadata(topic.as_deref(), timeout))
            .await
    }

    /// The cluster id the brokers report.
    pub async fn cluster_id(&self) -> Result<Option<String>, KafkaError> {
        // fetch_cluster_id gives no reason on failure: check reachability with metadata first.
        self.broker_count().await?;
        let client = Arc::clone(&self.client);
        let timeout = self.timeout();
        tokio::task::spawn_blocking(move || client.inner().fetch_cluster_id(timeout))
            .await
            .map_err(|e| KafkaError::Broker(format!("metadata task failed: {e}")))
    }

    /// True when the cluster is streamhub's embedded broker.
    pub async fn is_embedded_broker(&self) -> Result<bool, KafkaError> {
        Ok(self.cluster_id().await?.as_deref() == Some(EMBEDDED_CLUSTER_ID))
    }

    /// Brokers the cluster reports in its metadata.
    pub async fn broker_count(&self) -> Result<usize, KafkaError> {
        Ok(self.metadata(None).await?.brokers().len())
    }

    /// Topic names of the cluster, internal ones (`__consumer_offsets` ...) left out, sorted.
    pub async fn list_topics(&self) -> Result<Vec<String>, KafkaError> {
        let metadata = self.metadata(None).await?;
        let mut names: Vec<String> = metadata
            .topics()
            .iter()
            .filter(|t| t.error().is_none() && !t.name().starts_with("__"))
            .map(|t| t.name().to_owned())
            .collect();
        names.sort();
        Ok(names)
    }

    /// The partition count of a topic, `None` if Kafka does not have it.
    pub async fn partition_count(&self, topic: &str) -> Result<Option<i32>, KafkaError> {
        validate_topic_name(topic)?;
        Ok(self.partitions(topic).await?.map(|p| p.len() as i32))
    }

    /// Partition ids of `topic` and whether each has a leader; `None` for an unknown topic.
    async fn partitions(&self, topic: &str) -> Result<Option<Vec<(i32, bool)>>, KafkaError> {
        let metadata = self.metadata(Some(topic.to_owned())).await?;
        Ok(partitions_in(&metadata, topic))
    }

    /// [`Admin::partitions`] as each broker of the cluster sees it. Brokers learn of a new
    /// or deleted topic one after the other, and a client's metadata request goes to any one
    /// of them: a change is complete only once every broker reports it. Each broker is asked
    /// by a client bootstrapped on it alone (librdkafka connects to other brokers only when
    /// it needs them, so the request goes to that broker).
    async fn partitions_on_every_broker(
        &self,
        topic: &str,
    ) -> Result<Vec<Option<Vec<(i32, bool)>>>, KafkaError> {
        let metadata = self.metadata(None).await?;
        if metadata.brokers().len() <= 1 {
            return Ok(vec![partitions_in(
                &self.metadata(Some(topic.to_owned())).await?,
                topic,
            )]);
        }
        let addresses: Vec<String> = metadata
            .brokers()
            .iter()
            .map(|b| match b.host().contains(':') {
                true => format!("[{}]:{}", b.host(), b.port()),
                false => format!("{}:{}", b.host(), b.port()),
            })
            .collect();
        let config = self.config.clone();
        let topic = topic.to_owned();
        let timeout = self.timeout();
        tokio::task::spawn_blocking(move || {
            addresses
                .iter()
                .map(|address| {
                    let mut client_config = config.client_config();
                    client_config.set("bootstrap.servers", address);
                    let broker: BaseConsumer = client_config.create()?;
                    let metadata = broker.fetch_metadata(Some(&topic), timeout)?;
                    Ok(partitions_in(&metadata, &topic))
                })
                .collect::<Result<Vec<_>, rdkafka::error::KafkaError>>()
        })
        .await
        .map_err(|e| KafkaError::Broker(format!("metadata task failed: {e}")))?
        .map_err(|e| self.classify(e))
    }

    /// Creates the topic unless it exists. Idempotent: an existing topic is
    /// [`Created::AlreadyExisted`] whatever its partition count. Returns once every partition
    /// has a leader, so producing right after works.
    pub async fn ensure_topic(&self, spec: &TopicSpec) -> Result<Created, KafkaError> {
        spec.validate()?;
        let brokers = self.broker_count().await?;
        if spec.replication_factor as usize > brokers {
            return Err(KafkaError::ReplicationFactor {
                asked: spec.replication_factor,
                brokers,
            });
        }
        if self.partitions(&spec.name).await?.is_some() {
            return Ok(Created::AlreadyExisted);
        }

        let mut config = spec.config.clone();
        if !config.iter().any(|(k, _)| k == "min.insync.replicas") {
            match spec.replication_factor {
                // With acks=all, a write is on two replicas before it is acknowledged, and
                // one broker may be down while writes still succeed.
                3.. => config.push(("min.insync.replicas".into(), "2".into())),
                // A single replica can never satisfy a cluster default above 1 (a cluster
                // set up for replicated topics): every acks=all write would be refused.
                1 => config.push(("min.insync.replicas".into(), "1".into())),
                // Two replicas: the cluster's own default stands.
                _ => {}
            }
        }
        let mut new_topic = NewTopic::new(
            &spec.name,
            spec.partitions,
            TopicReplication::Fixed(spec.replication_factor),
        );
        for (key, value) in &config {
            new_topic = new_topic.set(key, value);
        }
        let results = self.admin_call("create topic", |client, opts| {
            client.create_topics([&new_topic], opts)
        });
        let results = results.await?;
        let mut created = Created::New;
        for result in results {
            match result {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => created = Created::AlreadyExisted,
                Err((name, code)) => {
                    return Err(KafkaError::Broker(format!(
                        "creating topic {name:?} failed: {code}"
                    )));
                }
            }
        }
        self.wait_until(
            &format!("topic {:?} to have partition leaders", spec.name),
            || async {
                let everywhere = self.partitions_on_every_broker(&spec.name).await?;
                Ok(everywhere.iter().all(|partitions| {
                    matches!(partitions,
                Some(p) if p.len() as i32 >= spec.partitions && p.iter().all(|(_, led)| *led))
                }))
            },
        )
        .await?;
        Ok(created)
    }

    /// Deletes a topic. An unknown topic is [`KafkaError::UnknownTopic`].
    /// Returns once no broker of the cluster lists the topic (bounded by the timeout).
    pub async fn delete_topic(&self, name: &str) -> Result<(), KafkaError> {
        validate_topic_name(name)?;
        let results = self
            .admin_call("delete topic", |client, opts| {
                client.delete_topics(&[name], opts)
            })
            .await?;
        for result in results {
            match result {
                Ok(_) => {}
                Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                    return Err(KafkaError::UnknownTopic(name.to_owned()));
                }
                Err((topic, code)) => {
                    return Err(KafkaError::Broker(format!(
                        "deleting topic {topic:?} failed: {code}"
                    )));
                }
            }
        }
        self.wait_until(&format!("topic {name:?} to disappear"), || async {
            let everywhere = self.partitions_on_every_broker(name).await?;
            Ok(everywhere.iter().all(Option::is_none))
        })
        .await
    }

    /// The configuration of a topic as the brokers report it (defaults included).
    ///
    /// Right after a topic is created, a broker of a multi-broker cluster that has not applied
    /// the new metadata yet describes no configuration at all: an empty answer is asked again
    /// until the configured timeout (an existing topic always has entries).
    pub async fn topic_config(&self, topic: &str) -> Result<HashMap<String, String>, KafkaError> {
        validate_topic_name(topic)?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            let config = self.describe_topic_config(topic).await?;
            if !config.is_empty() || started.elapsed() >= self.timeout() {
                return Ok(config);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    async fn describe_topic_config(
        &self,
        topic: &str,
    ) -> Result<HashMap<String, String>, KafkaError> {
        let resource = ResourceSpecifier::Topic(topic);
        let results = self
            .admin_call("describe topic configuration", |client, opts| {
                client.describe_configs([&resource], opts)
            })
            .await?;
        let mut config = HashMap::new();
        for result in results {
            match result {
                Ok(resource) => {
                    for entry in resource.entries {
                        if let Some(value) = entry.value {
                            config.insert(entry.name, value);
                        }
                    }
                }
                Err(RDKafkaErrorCode::UnknownTopicOrPartition) => {
                    return Err(KafkaError::UnknownTopic(topic.to_owned()));
                }
                Err(code) => {
                    return Err(KafkaError::Broker(format!(
                        "describing topic {topic:?} failed: {code}"
                    )));
                }
            }
        }
        Ok(config)
    }

    /// Low and high watermarks of every partition of `topic`, by partition.
    pub async fn watermarks(&self, topic: &str) -> Result<Vec<PartitionWatermarks>, KafkaError> {
        validate_topic_name(topic)?;
        let partitions = self
            .partitions(topic)
            .await?
            .ok_or_else(|| KafkaError::UnknownTopic(topic.to_owned()))?;
        let topic = topic.to_owned();
        self.blocking(move |c, timeout| {
            partitions
                .iter()
                .map(|&(partition, _)| {
                    let (low, high) = c.fetch_watermarks(&topic, partition, timeout)?;
                    Ok(PartitionWatermarks {
                        partition,
                        low,
                        high,
                    })
                })
                .collect()
        })
        .await
    }

    /// Messages stored per topic (sum of `high - low` over its partitions). Topics Kafka does
    /// not have are left out of the map.
    pub async fn message_totals(
        &self,
        topics: &[String],
    ) -> Result<HashMap<String, i64>, KafkaError> {
        let mut totals = HashMap::new();
        for topic in topics {
            match self.watermarks(topic).await {
                Ok(marks) => {
                    totals.insert(topic.clone(), marks.iter().map(|m| m.high - m.low).sum());
                }
                Err(KafkaError::UnknownTopic(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(totals)
    }

    /// Committed offset and lag of `group` on every partition of `topics`.
    pub async fn group_lag(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<Vec<PartitionLag>, KafkaError> {
        if group.trim().is_empty() {
            return Err(KafkaError::Config(
                "consumer group id must not be empty".into(),
            ));
        }
        let mut marks = Vec::new();
        for topic in topics {
            for m in self.watermarks(topic).await? {
                marks.push((topic.clone(), m));
            }
        }
        let mut tpl = TopicPartitionList::new();
        for (topic, m) in &marks {
            tpl.add_partition(topic, m.partition);
        }
        // Offsets are read with the group's id, without joining the group.
        let mut config = self.config.client_config();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false");
        let group_client: BaseConsumer = config.create()?;
        // Right after a cluster starts, or while a group's coordinator moves, the broker
        // answers "not coordinator" or "loading": retriable, so ask again within the bound.
        let committed = self
            .blocking(move |_, timeout| {
                let deadline = std::time::Instant::now() + timeout;
                loop {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    match group_client.committed_offsets(tpl.clone(), left) {
                        Err(e) if coordinator_not_ready(&e) && !left.is_zero() => {
                            std::thread::sleep(Duration::from_millis(200));
                        }
                        other => return other,
                    }
                }
            })
            .await?;
        Ok(marks
            .into_iter()
            .map(|(topic, m)| {
                let committed = committed
                    .find_partition(&topic, m.partition)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(n) => Some(n),
                        _ => None,
                    });
                let lag = (m.high - committed.unwrap_or(m.low)).max(0);
                PartitionLag {
                    topic,
                    partition: m.partition,
                    committed,
                    high: m.high,
                    lag,
                }
            })
            .collect())
    }

    /// Runs an admin request with the configured timeout on both the request and the
    /// operation, plus a hard outer bound.
    async fn admin_call<'a, T, Fut>(
        &'a self,
        what: &str,
        call: impl FnOnce(&'a AdminClient<DefaultClientContext>, &AdminOptions) -> Fut,
    ) -> Result<T, KafkaError>
    where
        Fut: std::future::Future<Output = Result<T, rdkafka::error::KafkaError>>,
    {
        let timeout = self.timeout();
        let opts = AdminOptions::new()
            .request_timeout(Some(timeout))
            .operation_timeout(Some(timeout));
        match tokio::time::timeout(timeout + Duration::from_secs(2), call(&self.client, &opts))
            .await
        {
            Ok(result) => result.map_err(|e| self.classify(e)),
            Err(_) => Err(KafkaError::Timeout {
                what: format!("{what} at {}", self.config.bootstrap_servers()),
                timeout,
            }),
        }
    }

    /// Polls `check` until it is true, bounded by the configured timeout.
    async fn wait_until<F, Fut>(&self, what: &str, mut check: F) -> Result<(), KafkaError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<bool, KafkaError>>,
    {
        let started = Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            if check().await? {
                return Ok(());
            }
            if started.elapsed() >= self.timeout() {
                return Err(KafkaError::Timeout {
                    what: what.to_owned(),
                    timeout: self.timeout(),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }
}

/// Partition ids of `topic` in `metadata` and whether each has a leader; `None` when the
/// metadata does not list the topic.
fn partitions_in(metadata: &Metadata, topic: &str) -> Option<Vec<(i32, bool)>> {
    let t = metadata.topics().iter().find(|t| t.name() == topic)?;
    if t.error().is_some() || t.partitions().is_empty() {
        return None;
    }
    let mut partitions: Vec<(i32, bool)> = t
        .partitions()
        .iter()
        .map(|p| (p.id(), p.error().is_none() && p.leader() >= 0))
        .collect();
    partitions.sort_unstable();
    Some(partitions)
}
