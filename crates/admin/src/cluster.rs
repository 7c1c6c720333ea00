use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

/// One message of a topic, as the dashboard's tail shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TailMessage {
    pub partition: i32,
    pub offset: i64,
    /// The message's Kafka timestamp, when it has one.
    pub timestamp: Option<DateTime<Utc>>,
    pub key: Option<String>,
    /// The value as JSON; a value that is not JSON comes as a JSON string.
    pub value: serde_json::Value,
}

/// Figures read from the Kafka cluster. Without one the API says Kafka figures are off.
/// Only `topic_message_totals` is required; a reader without the others makes their
/// endpoints answer that Kafka did not give the figure.
#[async_trait]
pub trait ClusterInfo: Send + Sync {
    /// Messages currently held per topic (sum over partitions of high − low watermark).
    /// Topics missing from the map are unknown to the cluster.
    async fn topic_message_totals(&self, topics: &[String])
    -> Result<HashMap<String, i64>, String>;

    /// Brokers the cluster reports: no topic can have more replicas.
    async fn broker_count(&self) -> Result<usize, String> {
        Err("this cluster reader does not count brokers".into())
    }

    /// The partition count of `topic` in the cluster, `None` when it does not exist there.
    async fn partition_count(&self, topic: &str) -> Result<Option<i32>, String> {
        let _ = topic;
        Err("this cluster reader does not read partition counts".into())
    }

    /// How many messages the consumer group `group` has yet to read, per topic.
    async fn group_lag(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<HashMap<String, i64>, String> {
        let _ = (group, topics);
        Err("this cluster reader does not read consumer lag".into())
    }

    /// Deletes `topic` and its messages from the cluster: `false` when it was not there.
    async fn delete_topic(&self, topic: &str) -> Result<bool, String> {
        let _ = topic;
        Err("this cluster reader does not delete topics".into())
    }

    /// The newest `backlog` messages of `topic`, then the live ones as they arrive.
    async fn tail(
        &self,
        topic: &str,
        backlog: usize,
    ) -> Result<BoxStream<'static, Result<TailMessage, String>>, String> {
        let _ = (topic, backlog);
        Err("this cluster reader does not tail topics".into())
    }
}
