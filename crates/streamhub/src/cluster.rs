//! The admin service's view of Kafka, read through the Kafka layer. The admin crate
//! defines what it needs ([`ClusterInfo`]); this file is the only place the two meet.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use streamhub_admin::{ClusterInfo, TailMessage};
use streamhub_kafka::rdkafka::consumer::{Consumer, StreamConsumer};
use streamhub_kafka::rdkafka::message::Message;
use streamhub_kafka::rdkafka::{Offset, TopicPartitionList};
use streamhub_kafka::{Admin, KafkaConfig};

pub struct KafkaCluster {
    config: KafkaConfig,
    admin: Admin,
}

impl KafkaCluster {
    pub fn connect(config: &KafkaConfig) -> anyhow::Result<Arc<dyn ClusterInfo>> {
        Ok(Arc::new(KafkaCluster {
            config: config.clone(),
            admin: config.admin()?,
        }))
    }
}

#[async_trait]
impl ClusterInfo for KafkaCluster {
    async fn topic_message_totals(
        &self,
        topics: &[String],
    ) -> Result<HashMap<String, i64>, String> {
        self.admin
            .message_totals(topics)
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

        // The consumer lives in a task; dropping the stream closes the channel and ends it.
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            let mut stream = consumer.stream();
            while let Some(next) = stream.next().await {
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
