//! The baseline for `streamhub consumer read`: a plain rdkafka consumer that counts messages.
//!
//!   plain_consumer -b HOST:PORT --topic T --max-messages N
//!
//! It builds its consumer with the same librdkafka settings as `streamhub consumer read
//! --direct` (`KafkaConfig::consumer`, a fresh group, auto-commit off, `read`'s read-ahead
//! unless `--librdkafka-read-ahead`), assigns every partition of the topic at its
//! beginning, and receives until it has counted N messages, on the same multi-threaded
//! tokio runtime. Nothing is parsed or written; one JSON summary line goes to stderr (wall
//! time since `main` started, messages/s, peak RSS).

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use rdkafka::consumer::Consumer;
use rdkafka::{Offset, TopicPartitionList};
use streamhub_kafka::KafkaArgs;

#[derive(Parser)]
struct Cli {
    #[arg(short = 't', long)]
    topic: String,
    #[arg(short = 'c', long)]
    max_messages: u64,
    /// Give up after this many seconds without a message.
    #[arg(long, default_value = "30")]
    idle_timeout: u64,
    /// Keep librdkafka's own read-ahead defaults instead of `read`'s.
    #[arg(long)]
    librdkafka_read_ahead: bool,
    #[command(flatten)]
    kafka: KafkaArgs,
}

fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    let count = runtime.block_on(consume(&cli))?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{}",
        serde_json::json!({
            "mode": if cli.librdkafka_read_ahead { "plain-librdkafka-read-ahead" } else { "plain" },
            "messages": count,
            "seconds": seconds,
            "messages_per_second": count as f64 / seconds,
            "peak_rss_kb": peak_rss_kb(),
        })
    );
    if count < cli.max_messages {
        bail!(
            "only {count} of {} messages arrived before {} idle seconds",
            cli.max_messages,
            cli.idle_timeout
        );
    }
    Ok(())
}

async fn consume(cli: &Cli) -> anyhow::Result<u64> {
    let mut config = cli.kafka.config().with("enable.auto.commit", "false");
    if !cli.librdkafka_read_ahead {
        config = streamhub_consumer::kafka::with_read_ahead(config);
    }
    let group = format!("plain-consumer-{}", std::process::id());
    let consumer = config
        .consumer(&group)
        .context("cannot create the consumer")?;
    let metadata = consumer
        .fetch_metadata(Some(&cli.topic), config.timeout())
        .context("cannot fetch the topic's metadata")?;
    let Some(topic) = metadata.topics().iter().find(|t| t.name() == cli.topic) else {
        bail!("topic '{}' does not exist", cli.topic);
    };
    if topic.error().is_some() || topic.partitions().is_empty() {
        bail!("topic '{}' does not exist", cli.topic);
    }
    let mut tpl = TopicPartitionList::new();
    for p in topic.partitions() {
        tpl.add_partition_offset(&cli.topic, p.id(), Offset::Beginning)?;
    }
    consumer
        .assign(&tpl)
        .context("cannot assign the partitions")?;

    let idle = Duration::from_secs(cli.idle_timeout);
    let mut count = 0u64;
    while count < cli.max_messages {
        match tokio::time::timeout(idle, consumer.recv()).await {
            Ok(Ok(_message)) => count += 1,
            Ok(Err(e)) => eprintln!("warning: {e}"),
            Err(_) => break,
        }
    }
    Ok(count)
}

/// Peak resident set size (VmHWM) in KB, when /proc tells.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}
