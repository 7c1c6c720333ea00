//! Produce-then-consume throughput of one broker, for BENCHMARKS.md.
//!
//!   cargo run --release -p streamhub-kafka --example throughput -- --embedded-dir /tmp/bench
//!   cargo run --release -p streamhub-kafka --example throughput -- --bootstrap 127.0.0.1:19092
//!       [--replication-factor 3]
//!   ... --bootstrap 127.0.0.1:19292 -X security.protocol=sasl_plaintext \
//!       -X sasl.mechanism=SCRAM-SHA-512 -X sasl.username=bench -X sasl.password=... \
//!       --admin-X sasl.username=admin --admin-X sasl.password=... --grant User:bench
//!
//! `-X key=value` sets a librdkafka property of every client; `--admin-X key=value` one of
//! the client that creates the topic only (and grants the ACLs), e.g. a super user's login.
//! `--grant PRINCIPAL` gives that principal, before the run, exactly what the run needs: Write,
//! Read and Describe on the topic and Read on the consumer's group.
//!
//! Produces N messages of about `--size` bytes with the streamhub producer defaults
//! (idempotent, acks=all), awaiting every acknowledgement, then reads them all back with one
//! consumer of a fresh group that stores each offset after "processing" (the at-least-once
//! pattern of streamhub's consumer). Prints messages/s and MB/s for each side, and for the
//! embedded broker (run in this process) the process's peak resident memory and the size of
//! its SQLite files.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use streamhub_kafka::rdkafka::consumer::Consumer;
use streamhub_kafka::rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use streamhub_kafka::rdkafka::producer::FutureRecord;
use streamhub_kafka::{
    KafkaConfig, SecurityAdmin, TopicSpec, commit_stored_offsets, parse_property,
};
use streamhub_model::access::{Acl, Operation, ResourceType};

struct Options {
    bootstrap: Option<String>,
    embedded_dir: Option<std::path::PathBuf>,
    messages: usize,
    size: usize,
    partitions: i32,
    replication_factor: i32,
    concurrent: bool,
    topic: Option<String>,
    properties: Vec<(String, String)>,
    admin_properties: Vec<(String, String)>,
    grant: Option<String>,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        bootstrap: None,
        embedded_dir: None,
        messages: 1_000_000,
        size: 200,
        partitions: 3,
        replication_factor: 1,
        concurrent: false,
        topic: None,
        properties: Vec::new(),
        admin_properties: Vec::new(),
        grant: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--bootstrap" => o.bootstrap = Some(value()?),
            "--embedded-dir" => o.embedded_dir = Some(value()?.into()),
            "--messages" => o.messages = value()?.parse()?,
            "--size" => o.size = value()?.parse()?,
            "--partitions" => o.partitions = value()?.parse()?,
            "--replication-factor" => o.replication_factor = value()?.parse()?,
            "--concurrent" => o.concurrent = true,
            "--topic" => o.topic = Some(value()?),
            "-X" => o
                .properties
                .push(parse_property(&value()?).map_err(anyhow::Error::msg)?),
            "--admin-X" => o
                .admin_properties
                .push(parse_property(&value()?).map_err(anyhow::Error::msg)?),
            "--grant" => o.grant = Some(value()?),
            other => bail!(
                "unknown argument {other}; use --bootstrap HOST:PORT | --embedded-dir DIR, \
                 --messages N, --size BYTES, --partitions P, --replication-factor R, --concurrent, \
                 --topic NAME, -X key=value, --admin-X key=value, --grant User:NAME"
            ),
        }
    }
    if o.bootstrap.is_some() == o.embedded_dir.is_some() {
        bail!("give exactly one of --bootstrap HOST:PORT and --embedded-dir DIR");
    }
    Ok(o)
}

fn status_kb(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Reads `n` messages with a fresh group, storing each offset after handling the message.
/// Returns (messages, payload bytes, seconds from the first message to the last).
async fn consume(
    config: &KafkaConfig,
    topic: &str,
    n: usize,
) -> anyhow::Result<(usize, usize, f64)> {
    let consumer = config.consumer(&format!("{topic}-reader"))?;
    consumer.subscribe(&[topic])?;
    let mut started = None;
    let mut read = 0usize;
    let mut payload_bytes = 0usize;
    while read < n {
        let msg = tokio::time::timeout(Duration::from_secs(60), consumer.recv())
            .await
            .with_context(|| format!("no message for 60 s after {read}"))??;
        started.get_or_insert_with(Instant::now);
        payload_bytes += msg.payload_len();
        consumer.store_offset_from_message(&msg)?;
        read += 1;
    }
    let secs = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    commit_stored_offsets(&consumer)?;
    Ok((read, payload_bytes, secs))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    #[cfg(feature = "embedded-broker")]
    let embedded = match &o.embedded_dir {
        Some(dir) => {
            let dir = std::path::absolute(dir)?;
            std::fs::create_dir_all(&dir)?;
            let broker = streamhub_kafka::broker::EmbeddedBroker::start(
                streamhub_kafka::broker::BrokerConfig::in_dir(dir.join("broker")),
            )
            .await?;
            Some((broker, dir))
        }
        None => None,
    };
    #[cfg(feature = "embedded-broker")]
    let bootstrap = match (&o.bootstrap, &embedded) {
        (Some(b), _) => b.clone(),
        (None, Some((broker, _))) => broker.bootstrap_servers(),
        (None, None) => unreachable!("checked in options()"),
    };
    #[cfg(not(feature = "embedded-broker"))]
    let bootstrap = o
        .bootstrap
        .clone()
        .context("built without the embedded broker: use --bootstrap")?;

    let mut config = KafkaConfig::new(&bootstrap).with_timeout(Duration::from_secs(30));
    for (k, v) in &o.properties {
        config = config.with(k, v);
    }
    let mut admin_config = config.clone();
    for (k, v) in &o.admin_properties {
        admin_config = admin_config.with(k, v);
    }
    let admin = admin_config.admin()?;
    let topic = o
        .topic
        .clone()
        .unwrap_or_else(|| format!("throughput-{:08x}", rand::random::<u32>()));
    admin
        .ensure_topic(&TopicSpec::new(&topic, o.partitions, o.replication_factor))
        .await?;
    if let Some(principal) = &o.grant {
        let group = format!("{topic}-reader");
        let acls = [
            Acl::allow(principal, Operation::Write, ResourceType::Topic, &topic),
            Acl::allow(principal, Operation::Read, ResourceType::Topic, &topic),
            Acl::allow(principal, Operation::Describe, ResourceType::Topic, &topic),
            Acl::allow(principal, Operation::Read, ResourceType::Group, &group),
        ];
        let security = SecurityAdmin::new(&admin_config)?;
        security
            .create_acls(&acls)
            .await
            .context("granting the run's ACLs")?;
        // Apache Kafka's authorizer follows its metadata log by a moment: wait until the
        // broker lists them.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let listed = security.acls().await.unwrap_or_default();
            if acls.iter().all(|a| listed.contains(a)) {
                break;
            }
            if Instant::now() >= deadline {
                bail!("the granted ACLs are not listed after 10 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!(
            "granted {principal}: Write, Read, Describe on topic {topic}, Read on group {group}"
        );
    }
    // Not every broker describes topic configuration: the figure is informative only.
    let min_insync = admin
        .topic_config(&topic)
        .await
        .ok()
        .and_then(|c| c.get("min.insync.replicas").cloned())
        .unwrap_or_else(|| "?".into());
    println!(
        "broker {bootstrap}, topic {topic} ({} partitions, replication factor {}, min.insync.replicas {min_insync}), {} messages of {} bytes, idempotent acks=all",
        o.partitions, o.replication_factor, o.messages, o.size
    );

    // --concurrent: the consumer reads while the producer writes, as streamhub runs; otherwise
    // it starts on the full backlog once everything is acknowledged.
    let consumer_task = if o.concurrent {
        let (config, topic, n) = (config.clone(), topic.clone(), o.messages);
        Some(tokio::spawn(
            async move { consume(&config, &topic, n).await },
        ))
    } else {
        None
    };

    // Produce: keep enqueueing, drain acknowledgements as they come.
    let producer = config.producer()?;
    let payload_tail = "x".repeat(o.size.saturating_sub(40));
    let started = Instant::now();
    let mut pending = FuturesUnordered::new();
    let mut acked = 0usize;
    for i in 0..o.messages {
        let key = format!("sensor-{:04}", i % 1000);
        let value = format!("{{\"seq\":{i:>12},\"v\":\"{payload_tail}\"}}");
        loop {
            match producer.send_result(FutureRecord::to(&topic).key(&key).payload(&value)) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    // Local queue full: wait for an acknowledgement to free room.
                    match pending.next().await {
                        Some(Ok(Ok(_))) => acked += 1,
                        Some(Ok(Err((e, _)))) => bail!("message not acknowledged: {e}"),
                        Some(Err(_)) => bail!("delivery cancelled"),
                        None => tokio::time::sleep(Duration::from_millis(1)).await,
                    }
                }
                Err((e, _)) => bail!("enqueue failed: {e}"),
            }
        }
    }
    while let Some(result) = pending.next().await {
        match result {
            Ok(Ok(_)) => acked += 1,
            Ok(Err((e, _))) => bail!("message not acknowledged: {e}"),
            Err(_) => bail!("delivery cancelled"),
        }
    }
    let produce_secs = started.elapsed().as_secs_f64();
    assert_eq!(acked, o.messages);
    let bytes = (o.messages * o.size) as f64;
    println!(
        "produced {acked} in {produce_secs:.2} s: {:.0} msg/s, {:.1} MB/s",
        acked as f64 / produce_secs,
        bytes / produce_secs / 1e6
    );
    drop(producer);

    let consumed = match consumer_task {
        Some(task) => task.await??,
        None => consume(&config, &topic, o.messages).await?,
    };
    let (read, payload_bytes, consume_secs) = consumed;
    println!(
        "consumed {read} in {consume_secs:.2} s{}: {:.0} msg/s, {:.1} MB/s",
        if o.concurrent {
            " (while producing)"
        } else {
            ""
        },
        read as f64 / consume_secs,
        payload_bytes as f64 / consume_secs / 1e6
    );

    if let (Some(rss), Some(peak)) = (status_kb("VmRSS:"), status_kb("VmHWM:")) {
        println!(
            "this process (clients{}): resident {} MiB, peak {} MiB",
            if o.embedded_dir.is_some() {
                " + embedded broker"
            } else {
                ""
            },
            rss / 1024,
            peak / 1024
        );
    }
    #[cfg(feature = "embedded-broker")]
    if let Some((broker, dir)) = embedded {
        broker.shutdown().await?;
        println!(
            "embedded broker storage {}: {:.1} MiB",
            dir.display(),
            dir_bytes(&dir) as f64 / (1024.0 * 1024.0)
        );
    }
    #[cfg(not(feature = "embedded-broker"))]
    let _ = dir_bytes;
    Ok(())
}
