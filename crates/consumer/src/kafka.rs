//! The consumer's use of Kafka: one place that builds the rdkafka consumer.

use anyhow::Context;
use rdkafka::ClientConfig;
use rdkafka::consumer::StreamConsumer;

/// Kafka connection flags (temporary stand-in until streamhub-kafka's `KafkaArgs` lands).
#[derive(clap::Args, Debug, Clone)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, host:port[,host:port...].
    #[arg(
        short = 'b',
        long = "bootstrap-servers",
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_servers: String,
    /// Extra librdkafka property, key=value (repeatable).
    #[arg(short = 'X', value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
}

impl KafkaArgs {
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            properties: Vec::new(),
        }
    }

    pub fn describe(&self) -> String {
        self.bootstrap_servers.clone()
    }
}

/// Whether the consumer records its progress in the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Progress {
    /// Offsets are stored by the caller once a message is shown, and committed
    /// (periodically, on rebalance, and synchronously on leaving): at least once.
    Commit,
    /// Nothing is committed: a look at the data that leaves no trace in the group.
    Nothing,
}

pub fn consumer(
    args: &KafkaArgs,
    group: &str,
    progress: Progress,
) -> anyhow::Result<StreamConsumer> {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", &args.bootstrap_servers)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.offset.store", "false")
        .set(
            "enable.auto.commit",
            if progress == Progress::Commit {
                "true"
            } else {
                "false"
            },
        );
    for p in &args.properties {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("-X {p}: expected KEY=VALUE"))?;
        config.set(k.trim(), v.trim());
    }
    config.create().with_context(|| {
        format!(
            "cannot create a Kafka consumer for {}",
            args.bootstrap_servers
        )
    })
}
