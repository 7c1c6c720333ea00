//! Producer throughput and CPU per message: `generate` against a plain rdkafka producer.
//!
//!   producer_bench plain    -b HOST:PORT --topic T --count N [--size BYTES]
//!   producer_bench generate -b HOST:PORT --topic T --count N [--data-type D]
//!
//! `plain` sends 1024 pre-built sensor envelopes, cycled (or `--size` bytes of padding),
//! with the same producer settings (idempotent, acks=all), keeping
//! deliveries in a bounded window like `generate` does. `generate` runs exactly what
//! `streamhub producer generate --rate 0` runs. Each prints one JSON line with the wall
//! time since the process started, messages/s, the process's CPU time (user + system,
//! from /proc/self/stat) per message and its peak resident memory (VmHWM). Run each in
//! its own process against the same broker.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::json;
use streamhub_kafka::rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use streamhub_kafka::rdkafka::producer::{FutureRecord, Producer};
use streamhub_kafka::{KafkaArgs, TopicSpec};
use streamhub_model::DataType;
use streamhub_producer::GenerateArgs;
use streamhub_producer::generate::Generator;
use tokio_util::sync::CancellationToken;

// Parsed once: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Parser)]
enum Cli {
    /// A plain rdkafka producer sending pre-built payloads.
    Plain {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        count: u64,
        /// Padding payloads of this many bytes instead of pre-built sensor envelopes.
        #[arg(long)]
        size: Option<usize>,
        #[arg(long, default_value = "3")]
        partitions: i32,
        #[command(flatten)]
        kafka: KafkaArgs,
    },
    /// `streamhub producer generate --rate 0`.
    Generate(GenerateArgs),
}

const WINDOW: usize = 32_768;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let (mode, count, failed) = match Cli::parse() {
        Cli::Plain {
            topic,
            count,
            size,
            partitions,
            kafka,
        } => {
            let failed = plain(&topic, count, size, partitions, &kafka).await?;
            ("plain", count, failed)
        }
        Cli::Generate(args) => {
            let count = args.count;
            let summary =
                streamhub_producer::publish_burst(&args, &CancellationToken::new()).await?;
            ("generate", count, summary.failed)
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let (user, system) = cpu_seconds()?;
    println!(
        "{}",
        json!({
            "mode": mode,
            "count": count,
            "failed": failed,
            "seconds": seconds,
            "messages_per_second": count as f64 / seconds,
            "cpu_user_s": user,
            "cpu_system_s": system,
            "cpu_us_per_message": (user + system) * 1e6 / count as f64,
            "peak_rss_mb": peak_rss_kb()? as f64 / 1024.0,
        })
    );
    if failed > 0 {
        bail!("{failed} deliveries failed");
    }
    Ok(())
}

async fn plain(
    topic: &str,
    count: u64,
    size: Option<usize>,
    partitions: i32,
    kafka: &KafkaArgs,
) -> anyhow::Result<u64> {
    let config = kafka.config();
    config
        .admin()?
        .ensure_topic(&TopicSpec::new(topic, partitions, 1))
        .await?;
    let producer = config.producer()?;
    // 1024 distinct pre-built payloads and keys, cycled: real sensor envelopes by default
    // (same size and compressibility as `generate`'s), or `--size` bytes of padding.
    let payloads: Vec<(String, Vec<u8>)> = match size {
        None => sensor_envelopes(1024),
        Some(size) => (0..1024)
            .map(|i| {
                let mut p = format!("{{\"i\":{i},\"pad\":\"").into_bytes();
                p.resize(size.saturating_sub(2).max(p.len()), b'x');
                p.extend_from_slice(b"\"}");
                (format!("sensor-{:03}", i % 24), p)
            })
            .collect(),
    };
    let mut in_flight = FuturesUnordered::new();
    let mut failed = 0u64;
    for i in 0..count as usize {
        while in_flight.len() >= WINDOW {
            if let Some(Ok(Err(_))) | Some(Err(_)) = in_flight.next().await {
                failed += 1;
            }
        }
        let (key, payload) = &payloads[i % payloads.len()];
        let mut record = FutureRecord::to(topic)
            .key(key.as_bytes())
            .payload(&payload[..]);
        loop {
            match producer.send_result(record) {
                Ok(d) => {
                    in_flight.push(d);
                    break;
                }
                Err((RdKafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    if let Some(Ok(Err(_))) | Some(Err(_)) = in_flight.next().await {
                        failed += 1;
                    }
                }
                Err((e, _)) => return Err(e).context("send refused"),
            }
        }
    }
    while let Some(r) = in_flight.next().await {
        if !matches!(r, Ok(Ok(_))) {
            failed += 1;
        }
    }
    producer.flush(Duration::from_secs(10))?;
    Ok(failed)
}

/// Sensor envelopes as `generate` writes them, with their keys.
fn sensor_envelopes(n: usize) -> Vec<(String, Vec<u8>)> {
    let mut g = Generator::new(DataType::Sensor, 1);
    (0..n)
        .map(|seq| {
            let r = g.next_record();
            let value = serde_json::to_vec(&json!({
                "topic": "bench_sensor_data",
                "data_type": "sensor",
                "timestamp": "2026-01-01T00:00:00.123Z",
                "producer_id": "benchhost-12345-abcd",
                "seq": 100_000 + seq,
                "payload": r.payload,
            }))
            .unwrap_or_default();
            (r.key.to_string(), value)
        })
        .collect()
}

/// User and system CPU seconds of this process so far.
fn cpu_seconds() -> anyhow::Result<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("read /proc/self/stat")?;
    // Fields after the parenthesized command name; utime and stime are the 14th and 15th.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("parse /proc/self/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = 100.0; // USER_HZ on Linux
    let utime: f64 = fields[11].parse()?;
    let stime: f64 = fields[12].parse()?;
    Ok((utime / ticks, stime / ticks))
}

fn peak_rss_kb() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmHWM in /proc/self/status")
}
