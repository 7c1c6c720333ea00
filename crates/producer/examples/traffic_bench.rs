//! Traffic profiles: CPU per event, and how closely a compressed daily cycle is followed.
//!
//!   traffic_bench cpu [--events N]
//!   traffic_bench cycle [--profile P] [--seconds S]
//!
//! `cpu` times, without Kafka, N events of each data type through the generator with a key
//! distribution, the schedule of a traffic profile and the fault plan, in this one thread,
//! and prints the process's CPU time (user + system, /proc/self/stat) per event for each
//! combination. `cycle` starts an embedded broker in this process, runs
//! `producer generate --profile P` (default: a daily cycle compressed to 60 s) for the events
//! of S seconds, reads the Kafka timestamps back and compares the messages in each second
//! (from the first message) with the profile's integral over that second: wall clock,
//! measured, so it includes the runtime's and the broker's scheduling.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::Parser;
use streamhub_kafka::KafkaConfig;
use streamhub_kafka::broker::{BrokerConfig, EmbeddedBroker};
use streamhub_kafka::rdkafka::consumer::{Consumer, StreamConsumer};
use streamhub_kafka::rdkafka::{Message, Offset, TopicPartitionList};
use streamhub_model::DataType;
use streamhub_model::traffic::TrafficProfile;
use streamhub_producer::GenerateArgs;
use streamhub_producer::faults::{FaultInjector, FaultRates};
use streamhub_producer::generate::{Generator, KeyDistribution};
use streamhub_producer::schedule::Schedule;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
enum Cli {
    /// CPU per event of generation + keys + profile (+ faults), no Kafka.
    Cpu {
        #[arg(long, default_value = "2000000")]
        events: u64,
    },
    /// A compressed daily cycle through the embedded broker, per-second error.
    Cycle {
        #[arg(long, default_value = "daily:peak=200,trough=20,period=60s")]
        profile: TrafficProfile,
        #[arg(long, default_value = "60")]
        seconds: u32,
    },
}

#[derive(Parser)]
struct GenerateCli {
    #[command(flatten)]
    args: GenerateArgs,
}

/// User + system CPU time of this process.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the ')'. 100 Hz.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn cpu(events: u64) {
    let profile: TrafficProfile =
        "daily:peak=2000,trough=200,period=60s+bursts:rate=100,factor=10,every=10s,for=1s"
            .parse()
            .unwrap();
    let faults: FaultRates = "late=0.01,out-of-order=0.01,duplicate=0.005,poison=0.001"
        .parse()
        .unwrap();
    let origin: DateTime<Utc> = Utc::now();
    let cases: [(&str, KeyDistribution, bool, bool); 5] = [
        (
            "generation only (uniform keys)",
            KeyDistribution::Uniform,
            false,
            false,
        ),
        (
            "+ profile (daily + bursts mix)",
            KeyDistribution::Uniform,
            true,
            false,
        ),
        (
            "+ profile, zipf:s=1.2 keys",
            KeyDistribution::Zipf { s: 1.2 },
            true,
            false,
        ),
        (
            "+ profile, sessions:length=20",
            KeyDistribution::Sessions { length: 20 },
            true,
            false,
        ),
        (
            "+ profile, zipf keys, fault plan",
            KeyDistribution::Zipf { s: 1.2 },
            true,
            true,
        ),
    ];
    for (name, keys, with_profile, with_faults) in cases {
        let mut per_type = Vec::new();
        for data_type in DataType::ALL {
            let mut generator = Generator::new(data_type, 1).with_keys(keys);
            let mut schedule = Schedule::new(&profile, origin, 1);
            let mut injector = FaultInjector::new(faults, 1);
            let (mut sink, mut last) = (0usize, 0.0f64);
            let before = cpu_time();
            for _ in 0..events {
                let record = generator.next_record();
                sink = sink.wrapping_add(record.key.len());
                if with_profile {
                    last = schedule.next_instant();
                }
                if with_faults && injector.plan() != streamhub_producer::faults::Plan::Clean {
                    sink = sink.wrapping_add(1);
                }
            }
            let used = cpu_time() - before;
            std::hint::black_box((sink, last));
            per_type.push((data_type, used.as_nanos() as f64 / events as f64));
        }
        let mean = per_type.iter().map(|(_, ns)| ns).sum::<f64>() / per_type.len() as f64;
        let detail: Vec<String> = per_type
            .iter()
            .map(|(d, ns)| format!("{d} {ns:.0}"))
            .collect();
        println!("{name}: mean {mean:.0} ns/event ({})", detail.join(", "));
    }
}

async fn cycle(profile: TrafficProfile, seconds: u32) -> anyhow::Result<()> {
    let broker = EmbeddedBroker::start(BrokerConfig::ephemeral()).await?;
    let bootstrap = broker.bootstrap_servers();
    let topic = "traffic_cycle";
    // Instants fall where the integral reaches 0, 1, 2 ...: those before the end.
    let count = profile
        .cumulative(Utc::now(), f64::from(seconds))
        .ceil()
        .to_string();
    let text = profile.to_string();
    let args = GenerateCli::parse_from([
        "generate",
        "--topic",
        topic,
        "--count",
        &count,
        "--partitions",
        "1",
        "--seed",
        "1",
        "--profile",
        &text,
        "-b",
        &bootstrap,
    ])
    .args;
    let summary = streamhub_producer::publish_burst(&args, &CancellationToken::new()).await?;
    eprintln!("{}", summary.line());

    let consumer: StreamConsumer = KafkaConfig::new(&bootstrap).consumer("traffic-bench")?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&tpl)?;
    let mut stamps = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (stamps.len() as u64) < summary.acknowledged && Instant::now() < deadline {
        if let Ok(m) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await {
            stamps.push(m?.timestamp().to_millis().unwrap_or(0));
        }
    }
    let first = *stamps.iter().min().unwrap_or(&0);
    let origin = DateTime::<Utc>::from_timestamp_millis(first).unwrap_or_default();
    let mut counts = vec![0.0; seconds as usize];
    for ms in stamps {
        let s = ((ms - first) / 1000) as usize;
        if let Some(c) = counts.get_mut(s) {
            *c += 1.0;
        }
    }
    let mut errors: Vec<f64> = (0..seconds as usize)
        .map(|s| {
            let want =
                profile.cumulative(origin, s as f64 + 1.0) - profile.cumulative(origin, s as f64);
            (counts[s] - want).abs() / want
        })
        .collect();
    errors.sort_by(f64::total_cmp);
    let pct = |q: f64| 100.0 * errors[((errors.len() - 1) as f64 * q) as usize];
    println!(
        "{text}: {} messages over {seconds} one-second buckets; error per bucket: median {:.1}%, p90 {:.1}%, max {:.1}%",
        summary.acknowledged,
        pct(0.5),
        pct(0.9),
        pct(1.0)
    );
    broker.shutdown().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse() {
        Cli::Cpu { events } => {
            cpu(events);
            Ok(())
        }
        Cli::Cycle { profile, seconds } => cycle(profile, seconds).await,
    }
}
