//! The streamhub producer: watches the admin service for approved topics, creates them
//! in Kafka, activates them and publishes generated events to every active topic.
//!
//! - [`generate`]: one realistic generator per data type, reproducible with a seed.
//! - [`publish`]: the envelope, `seq`, bulk-awaited and counted deliveries.
//! - [`run`]: `streamhub producer`, the long-running producer.
//! - [`generate()`](fn@burst::generate): `streamhub producer generate`, N events straight to Kafka.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

mod args;
mod burst;
pub mod faults;
pub mod generate;
pub mod kafka_producer;
pub mod publish;
mod replay;
pub mod resume;
pub mod schedule;
pub mod status_line;
mod watch;

pub use args::{
    GenerateArgs, ProducerArgs, ProducerCommand, ProducerConfig, ProducerSubcommand, Timestamps,
    parse_rate,
};
pub use burst::{Summary, generate, publish_burst};

/// Bound on the final flush of librdkafka's queue at shutdown.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// `streamhub producer [generate ...]`.
pub async fn main(cmd: ProducerCommand, shutdown: CancellationToken) -> anyhow::Result<()> {
    match cmd.command {
        Some(ProducerSubcommand::Generate(args)) => generate(args, shutdown).await.map(|_| ()),
        None => run(cmd.run.into_config()?, shutdown).await,
    }
}

/// `streamhub producer`: runs until `shutdown`, then flushes what is in flight and logs
/// the totals. A producer key the admin service refuses is an error; an unreachable admin
/// service or broker is waited for.
pub async fn run(config: ProducerConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    // A generated id is new, so its seq starts at 0; a given one may have published before.
    let resume_seq = config.producer_id.is_some();
    let producer_id: Arc<str> = config
        .producer_id
        .clone()
        .unwrap_or_else(default_producer_id)
        .into();
    let kafka_config = config.kafka.clone();
    tracing::info!(
        producer_id = %producer_id,
        admin_url = %config.admin_url,
        bootstrap_servers = kafka_config.bootstrap_servers(),
        "producer starting"
    );
    let admin = streamhub_client::Client::with_ca_cert(
        config.admin_url.clone(),
        config.admin_ca_cert.as_deref(),
    )?
    .with_producer_key(&config.producer_secret)?;
    match watch::wait_for_admin(&admin, &shutdown).await {
        Ok(Some(())) => {}
        Ok(None) => return Ok(()),
        Err(e) if e.is_unauthorized() => {
            // The server's wording adds nothing when it only repeats that the key is wrong.
            let detail = e.to_string();
            if detail.is_empty() || detail == "wrong X-Producer-Key" {
                anyhow::bail!("the admin service refused the producer key (401)");
            }
            anyhow::bail!("the admin service refused the producer key (401): {detail}");
        }
        Err(e) => return Err(e.into()),
    }
    let kafka = kafka_config
        .admin()
        .context("cannot create the Kafka admin client")?;
    let mut attempts = 0;
    loop {
        match kafka.broker_count().await {
            Ok(n) => {
                tracing::info!(brokers = n, "connected to Kafka");
                break;
            }
            Err(e) if e.is_unreachable() => {
                attempts += 1;
                let delay = watch::RETRY.delay(attempts);
                tracing::warn!(error = %e, retry_in = ?delay, "waiting for Kafka");
                if watch::sleep_or_shutdown(delay, &shutdown).await {
                    return Ok(());
                }
            }
            Err(e) => return Err(e).context("cannot reach Kafka"),
        }
    }
    let producer = kafka_producer::SharedProducer::new(&kafka_config)
        .context("cannot create the Kafka producer")?;
    let ctx = watch::Context {
        admin,
        kafka: Arc::new(kafka),
        kafka_config,
        resume_seq,
        producer: producer.clone(),
        producer_id,
        rate: config.rate,
        seed: config.seed,
        faults: config.faults,
        poll_interval: config.poll_interval,
    };
    let totals = watch::supervise(ctx, shutdown).await;
    // The producer in use now: a fatal error may have replaced the first.
    let (producer, _) = producer.current();
    if let Err(e) = publish::flush(&producer, FLUSH_TIMEOUT).await {
        tracing::warn!(error = %e, "flush at shutdown did not complete");
    }
    let mut failed = 0;
    for (topic, t) in &totals {
        failed += t.failed;
        tracing::info!(
            topic,
            sent = t.sent,
            acknowledged = t.acknowledged,
            failed = t.failed,
            "totals"
        );
    }
    tracing::info!(topics = totals.len(), failed, "producer stopped");
    Ok(())
}

/// `<hostname>-<pid>-<4 random hex digits>`: stable for the process, distinct between
/// producers on one machine and across restarts.
pub fn default_producer_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "producer".to_owned());
    format!(
        "{host}-{}-{:04x}",
        std::process::id(),
        rand::random::<u16>()
    )
}

/// The generator seed of one topic under `--seed`: distinct topics get distinct streams,
/// the same seed and topic always the same one (FNV-1a of the name, stable everywhere).
pub fn topic_seed(seed: u64, topic: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in topic.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    seed ^ h
}

/// Opens `--log-file` for appending, creating it and its directory.
pub fn open_log_file(path: &Path) -> anyhow::Result<std::fs::File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the log directory {}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the log file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_seeds_differ_per_topic_and_repeat() {
        assert_eq!(topic_seed(7, "a"), topic_seed(7, "a"));
        assert_ne!(topic_seed(7, "a"), topic_seed(7, "b"));
        assert_ne!(topic_seed(7, "a"), topic_seed(8, "a"));
    }

    #[test]
    fn producer_ids_are_distinct() {
        let a = default_producer_id();
        assert!(a.contains(&std::process::id().to_string()));
        // Two ids differ in their random part most of the time; ten tries make a
        // collision of all of them practically impossible.
        assert!((0..10).any(|_| default_producer_id() != a));
    }
}
