//! The consumer's use of Kafka: one place that builds the rdkafka consumer.

use anyhow::Context;
use rdkafka::consumer::StreamConsumer;
use rdkafka::message::Message;
pub use streamhub_kafka::{KafkaArgs, KafkaConfig};

use crate::render::Record;

/// A consumed message as the renderer takes it.
pub(crate) fn record_of<M: Message>(message: &M) -> Record<'_> {
    Record {
        topic: message.topic(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key(),
        timestamp_ms: message.timestamp().to_millis(),
        value: message.payload(),
    }
}

/// Whether the consumer records its progress in the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Offsets are stored by the caller once a message is shown, and committed
    /// (every second, on rebalance, and synchronously on leaving): at least once.
    Commit,
    /// Nothing is committed: a look at the data that leaves no trace in the group.
    Nothing,
}

/// librdkafka's read-ahead for `consumer read` and the live view, where a property is not
/// given with `-X`.
///
/// The defaults (64 MB and 100,000 messages queued, 1 MB per partition per fetch) let the
/// queue and the decompressed batches it pins grow past 100 MB; a few fetches of read-ahead
/// keep the output just as busy. With a small queue the next fetch must not wait the
/// default second once the queue was full, or the reader idles.
pub const READ_AHEAD: &[(&str, &str)] = &[
    ("queued.max.messages.kbytes", "8192"),
    ("fetch.message.max.bytes", "262144"),
    ("fetch.queue.backoff.ms", "10"),
];

/// `config` with [`READ_AHEAD`] where it sets none of its own.
pub fn with_read_ahead(mut config: KafkaConfig) -> KafkaConfig {
    for (key, value) in READ_AHEAD {
        let alias = match *key {
            "fetch.message.max.bytes" => Some("max.partition.fetch.bytes"),
            _ => None,
        };
        let given =
            config.property(key).is_some() || alias.is_some_and(|a| config.property(a).is_some());
        if !given {
            config = config.with(key, value);
        }
    }
    config
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_ahead_keeps_what_the_user_set() {
        let config = with_read_ahead(
            KafkaConfig::new("127.0.0.1:9092").with("queued.max.messages.kbytes", "1024"),
        );
        assert_eq!(config.property("queued.max.messages.kbytes"), Some("1024"));
        assert_eq!(config.property("fetch.message.max.bytes"), Some("262144"));
        assert_eq!(config.property("fetch.queue.backoff.ms"), Some("10"));

        let config = with_read_ahead(
            KafkaConfig::new("127.0.0.1:9092").with("max.partition.fetch.bytes", "65536"),
        );
        assert_eq!(config.property("fetch.message.max.bytes"), None);
    }
}
