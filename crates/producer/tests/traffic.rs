//! `producer generate` with a traffic profile, a key distribution and faults, against the
//! embedded broker: every faulty message is marked by its header and is the fault it says.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use clap::Parser;
use streamhub_kafka::KafkaConfig;
use streamhub_kafka::broker::{BrokerConfig, EmbeddedBroker};
use streamhub_kafka::rdkafka::consumer::{Consumer, StreamConsumer};
use streamhub_kafka::rdkafka::message::Headers;
use streamhub_kafka::rdkafka::{Message, Offset, TopicPartitionList};
use streamhub_model::Envelope;
use streamhub_producer::GenerateArgs;
use streamhub_producer::faults::{FAULT_HEADER, LATE_MS_HEADER};
use streamhub_testkit::unique;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct GenerateCli {
    #[command(flatten)]
    args: GenerateArgs,
}

/// One message as read back: key, value, Kafka timestamp (ms) and headers.
struct Read {
    key: String,
    value: Vec<u8>,
    kafka_ms: i64,
    headers: HashMap<String, String>,
}

/// Reads `n` messages of partition 0 from the beginning (hang guard: 60 s).
async fn read(bootstrap: &str, topic: &str, n: usize) -> Vec<Read> {
    let consumer: StreamConsumer = KafkaConfig::new(bootstrap)
        .consumer(&unique("reader"))
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::with_capacity(n);
    while out.len() < n && Instant::now() < deadline {
        let Ok(m) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await else {
            continue;
        };
        let m = m.expect("consume");
        let headers = m
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| {
                        let value = String::from_utf8(h.value.unwrap_or_default().to_vec());
                        (h.key.to_owned(), value.unwrap())
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.push(Read {
            key: String::from_utf8(m.key().unwrap().to_vec()).unwrap(),
            value: m.payload().unwrap_or_default().to_vec(),
            kafka_ms: m.timestamp().to_millis().expect("a timestamp"),
            headers,
        });
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn generated_faults_are_marked_and_are_what_they_say() {
    let broker = EmbeddedBroker::start(BrokerConfig::ephemeral())
        .await
        .expect("embedded broker starts");
    let bootstrap = broker.bootstrap_servers();
    let topic = unique("sensor_faults");
    let count = 3000u64;
    let args = GenerateCli::parse_from([
        "generate",
        "--topic",
        &topic,
        "--count",
        &count.to_string(),
        "--partitions",
        "1",
        "--seed",
        "8",
        "--profile",
        "bursts:rate=2000,factor=5,every=1s,for=200ms",
        "--keys",
        "sessions:length=4",
        "--faults",
        "late=0.03,out-of-order=0.03,duplicate=0.03,poison=0.02,late-by=5s",
        "-b",
        &bootstrap,
    ])
    .args;
    let summary = streamhub_producer::publish_burst(&args, &CancellationToken::new())
        .await
        .unwrap();
    let f = summary.faults;
    assert_eq!(summary.failed, 0);
    assert!(
        f.late > 30 && f.out_of_order > 30 && f.duplicate > 30 && f.poison() > 20,
        "{f:?}"
    );
    assert!(
        f.poison_json > 0 && f.poison_type > 0 && f.poison_missing > 0 && f.poison_oversize > 0,
        "{f:?}"
    );
    let total = count + f.extra_messages();
    assert_eq!(summary.acknowledged, total);

    let messages = read(&bootstrap, &topic, total as usize).await;
    assert_eq!(messages.len() as u64, total);
    let mut seen_seqs = HashSet::new();
    let mut originals: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut marked: HashMap<String, u64> = HashMap::new();
    // The last envelope of each key before the current message.
    let mut last_of_key: HashMap<String, u64> = HashMap::new();
    let mut previous: Option<(String, u64)> = None;
    for m in &messages {
        let fault = m.headers.get(FAULT_HEADER).cloned();
        if let Some(fault) = &fault {
            *marked.entry(fault.clone()).or_default() += 1;
        }
        let envelope = Envelope::parse(&m.value);
        match fault.as_deref() {
            Some(poison) if poison.starts_with("poison-") => {
                assert!(envelope.is_none(), "{poison} parses as an envelope");
                if poison == "poison-oversize" {
                    assert!(m.value.len() > 512 * 1024);
                }
                continue;
            }
            _ => {}
        }
        let envelope = envelope.expect("an unmarked or non-poison message is an envelope");
        assert_eq!(envelope.topic, topic);
        match fault.as_deref() {
            None => {
                assert!(seen_seqs.insert(envelope.seq), "seq {} twice", envelope.seq);
                originals.insert(envelope.seq, m.value.clone());
            }
            Some("late") => {
                assert!(seen_seqs.insert(envelope.seq));
                let late_ms: i64 = m.headers[LATE_MS_HEADER].parse().unwrap();
                assert!(late_ms >= 1);
                // Event time (envelope) = processing time (Kafka timestamp) − the delay.
                assert_eq!(envelope.timestamp.timestamp_millis(), m.kafka_ms - late_ms);
                originals.insert(envelope.seq, m.value.clone());
            }
            Some("duplicate") => {
                assert_eq!(
                    originals.get(&envelope.seq),
                    Some(&m.value),
                    "seq {}",
                    envelope.seq
                );
            }
            Some("out-of-order") => {
                assert!(seen_seqs.insert(envelope.seq));
                // It follows the next event of its own key, which went out just before
                // (unless it was the last event: then it goes out at the end).
                if envelope.seq + 1 < count {
                    assert_eq!(previous, Some((m.key.clone(), envelope.seq + 1)));
                    assert!(last_of_key[&m.key] > envelope.seq);
                }
            }
            Some(other) => panic!("unknown fault header {other:?}"),
        }
        if fault.as_deref() != Some("out-of-order") {
            last_of_key.insert(m.key.clone(), envelope.seq);
        }
        previous = Some((m.key.clone(), envelope.seq));
    }
    // Every seq arrived exactly once apart from marked duplicates.
    assert_eq!(seen_seqs, (0..count).collect::<HashSet<_>>());
    let get = |k: &str| marked.get(k).copied().unwrap_or(0);
    assert_eq!(get("late"), f.late);
    assert_eq!(get("out-of-order"), f.out_of_order);
    assert_eq!(get("duplicate"), f.duplicate);
    assert_eq!(get("poison-json"), f.poison_json);
    assert_eq!(get("poison-type"), f.poison_type);
    assert_eq!(get("poison-missing"), f.poison_missing);
    assert_eq!(get("poison-oversize"), f.poison_oversize);
    broker.shutdown().await.unwrap();
}
