//! The consumer's use of Kafka: one place that builds the rdkafka consumer.

use anyhow::Context;
use rdkafka::consumer::StreamConsumer;
pub use streamhub_kafka::{KafkaArgs, KafkaConfig};

/// Whether the consumer records its progress in the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Offsets are stored by the caller once a message is shown, and committed
    /// (every second, on rebalance, and synchronously on leaving): at least once.
    Commit,
    /// Nothing is committed: a look at the data that leaves no trace in the group.
    Nothing,
}

pub fn consumer(
    config: &KafkaConfig,
    group: &str,
    progress: Progress,
) -> anyhow::Result<StreamConsumer> {
    let config = match progress {
        Progress::Commit => config.clone(),
        Progress::Nothing => config.clone().with("enable.auto.commit", "false"),
    };
    config.consumer(group).with_context(|| {
        format!(
            "cannot create a Kafka consumer for {}",
            config.bootstrap_servers()
        )
    })
}
