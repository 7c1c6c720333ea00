use std::collections::HashMap;

use async_trait::async_trait;

/// Figures read from the Kafka cluster. Without one the API says Kafka figures are off.
#[async_trait]
pub trait ClusterInfo: Send + Sync {
    /// Messages currently held per topic (sum over partitions of high − low watermark).
    /// Topics missing from the map are unknown to the cluster.
    async fn topic_message_totals(&self, topics: &[String])
    -> Result<HashMap<String, i64>, String>;
}
