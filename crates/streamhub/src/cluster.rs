//! The admin service's view of Kafka, read through the Kafka layer. The admin crate
//! defines what it needs ([`ClusterInfo`]); this file is the only place the two meet.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use streamhub_admin::ClusterInfo;
use streamhub_kafka::{Admin, KafkaConfig};

pub struct KafkaCluster {
    admin: Admin,
}

impl KafkaCluster {
    pub fn connect(config: &KafkaConfig) -> anyhow::Result<Arc<dyn ClusterInfo>> {
        Ok(Arc::new(KafkaCluster {
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
}
