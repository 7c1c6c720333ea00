//! Replay at scale: embedded broker, admin service and the running producer in this
//! process. The producer fills a topic at its top rate until it holds N events (default
//! 1,000,000); `generate --replay` regenerates them into other topics, timed beside a
//! plain `generate` of N events of the same data type (twice each, in the order plain,
//! replay, replay, plain). The replay keeps the original event times (`--timestamps keep`);
//! both topics are read back and every event's key and value bytes compared by seq, the
//! value's `topic` aside (it names the topic it is in).
//!
//!   cargo run --release -p streamhub-producer --example replay_bench [-- N]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::json;
use streamhub_admin::{AdminConfig, AdminService, Secret};
use streamhub_kafka::KafkaConfig;
use streamhub_kafka::broker::{BrokerConfig, EmbeddedBroker};
use streamhub_kafka::rdkafka::consumer::{Consumer, StreamConsumer};
use streamhub_kafka::rdkafka::{Message, Offset, TopicPartitionList};
use streamhub_model::Envelope;
use streamhub_producer::{GenerateArgs, ProducerArgs};
use tokio_util::sync::CancellationToken;

const PARTITIONS: i32 = 3;
const PASSWORD: &str = "Quartz-Meadow-Replay-42";

#[derive(Parser)]
struct RunCli {
    #[command(flatten)]
    args: ProducerArgs,
}

#[derive(Parser)]
struct GenerateCli {
    #[command(flatten)]
    args: GenerateArgs,
}

/// An event as bytes: its key, and its value with the name of its topic taken out.
type Event = (Vec<u8>, Vec<u8>);

/// Every event of `topic` with a seq below `n`, by seq.
async fn read_back(bootstrap: &str, topic: &str, n: u64) -> anyhow::Result<HashMap<u64, Event>> {
    let consumer: StreamConsumer = KafkaConfig::new(bootstrap).consumer("replay-bench")?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let mut events = HashMap::with_capacity(n as usize);
    let named = format!("\"topic\":\"{topic}\"");
    while (events.len() as u64) < n {
        match tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await {
            Ok(m) => {
                let m = m?;
                let value = m.payload().context("a message without a value")?;
                let envelope = Envelope::parse(value).context("a value that is no envelope")?;
                if envelope.seq < n {
                    let at = find(value, named.as_bytes()).context("no topic")?;
                    let mut unnamed = value[..at].to_vec();
                    unnamed.extend_from_slice(&value[at + named.len()..]);
                    events.insert(
                        envelope.seq,
                        (m.key().unwrap_or_default().to_vec(), unnamed),
                    );
                }
            }
            Err(_) => bail!(
                "{topic}: {} of {n} events, then nothing for 30 s",
                events.len()
            ),
        }
    }
    Ok(events)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: u64 = match std::env::args().nth(1) {
        Some(n) => n.parse().context("usage: replay_bench [N]")?,
        None => 1_000_000,
    };
    let broker = EmbeddedBroker::start(BrokerConfig::ephemeral()).await?;
    let bootstrap = broker.bootstrap_servers();
    let dir = tempfile::tempdir()?;
    let mut config = AdminConfig::local(dir.path());
    config.producer_secret = Some(Secret::new("bench-key"));
    config.admin_password = Some(Secret::new(PASSWORD));
    let admin = AdminService::start(config).await?;
    let url = admin.url().to_owned();
    let http = reqwest::Client::new();
    let login: serde_json::Value = http
        .post(format!("{url}/api/auth/login"))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = login["token"].as_str().context("no token")?.to_owned();

    // The source: the running producer at its top rate, with a seed it draws itself.
    let run = RunCli::parse_from([
        "producer",
        "--admin-url",
        &url,
        "-b",
        &bootstrap,
        "--producer-secret",
        "bench-key",
        "--rate",
        "100000",
    ])
    .args
    .into_config()?;
    let shutdown = CancellationToken::new();
    let producer = tokio::spawn(streamhub_producer::run(run, shutdown.clone()));
    let source = "replay_source_payments";
    let created: serde_json::Value = http
        .post(format!("{url}/api/topics"))
        .bearer_auth(&token)
        .json(&json!({"name": source, "partitions": PARTITIONS, "description": "replay benchmark"}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = created["topic_id"].as_i64().context("no topic id")?;
    http.post(format!("{url}/api/topics/{id}/approve"))
        .bearer_auth(&token)
        .send()
        .await?
        .error_for_status()?;
    let filling = Instant::now();
    let original = read_back(&bootstrap, source, n).await?;
    shutdown.cancel();
    producer.await??;
    println!(
        "source: {n} events from the running producer in {:.1} s",
        filling.elapsed().as_secs_f64()
    );

    let generate = |extra: &[&str]| {
        let mut argv = vec!["generate", "--count"];
        let count = n.to_string();
        argv.push(&count);
        argv.extend_from_slice(&["--partitions", "3", "-b", &bootstrap, "--admin-url", &url]);
        argv.extend_from_slice(extra);
        GenerateCli::parse_from(argv).args
    };
    // Plain, replay, replay, plain: neither side gains from going first or last.
    let never = CancellationToken::new();
    let mut rates = [Vec::new(), Vec::new()];
    for (round, replaying) in [false, true, true, false].into_iter().enumerate() {
        let to = format!("{}_{round}", if replaying { "replayed" } else { "plain" });
        let args = if replaying {
            generate(&[
                "--replay",
                source,
                "--to",
                &to,
                "--token",
                &token,
                "--timestamps",
                "keep",
            ])
        } else {
            generate(&["--topic", &to, "--seed", "1", "--data-type", "payment"])
        };
        let summary = streamhub_producer::publish_burst(&args, &never).await?;
        rates[usize::from(replaying)].push(summary.messages_per_second);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (plain, replay) = (mean(&rates[0]), mean(&rates[1]));
    println!(
        "generate: {:.0} msg/s ({:.0}, {:.0}); generate --replay: {:.0} msg/s ({:.0}, {:.0}); replay / generate: {:.2}",
        plain,
        rates[0][0],
        rates[0][1],
        replay,
        rates[1][0],
        rates[1][1],
        replay / plain
    );

    let again = read_back(&bootstrap, "replayed_1", n).await?;
    let differ: Vec<u64> = (0..n)
        .filter(|seq| original.get(seq) != again.get(seq))
        .collect();
    let bytes: usize = original.values().map(|(k, v)| k.len() + v.len()).sum();
    println!(
        "compared {n} events by seq ({:.0} MB of keys and values): {} differ{}",
        bytes as f64 / 1e6,
        differ.len(),
        match differ.first() {
            Some(seq) => format!(", the first at seq {seq}"),
            None => String::new(),
        }
    );
    let differ = differ.len();
    broker.shutdown().await?;
    if differ > 0 {
        bail!("{differ} replayed events differ from the original");
    }
    Ok(())
}
