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

/// One round of the figures the dashboard shows, read together: see [`ClusterInfo::figures`].
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterFigures {
    /// As [`ClusterInfo::topic_message_totals`] gives them.
    pub totals: HashMap<String, i64>,
    /// Per consumer group, per topic: messages the group has yet to read. Topics missing
    /// from the cluster are left out. An error when the reader cannot read lag.
    pub lag: Result<HashMap<String, HashMap<String, i64>>, String>,
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

    /// Message totals of `topics` and the lag of each `(group, topics)` pair, in one
    /// round. The default asks [`Self::topic_message_totals`] and [`Self::group_lag`] one
    /// group after the other; a reader that can share the metadata and watermark reads
    /// between them should.
    async fn figures(
        &self,
        topics: &[String],
        groups: &[(String, Vec<String>)],
    ) -> Result<ClusterFigures, String> {
        let totals = self.topic_message_totals(topics).await?;
        let mut lag = HashMap::new();
        for (group, topics) in groups {
            match self.group_lag(group, topics).await {
                Ok(per_topic) => {
                    lag.insert(group.clone(), per_topic);
                }
                Err(e) => {
                    return Ok(ClusterFigures {
                        totals,
                        lag: Err(e),
                    });
                }
            }
        }
        Ok(ClusterFigures {
            totals,
            lag: Ok(lag),
        })
    }

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
