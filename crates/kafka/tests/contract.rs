//! Broker contract: one scenario, run against the embedded broker and against Apache Kafka.
//!
//! `cargo test` runs it against the embedded broker. `apache_kafka_contract` needs a running
//! Apache Kafka: `STREAMHUB_TEST_KAFKA=$(scripts/kafka start) cargo test -p streamhub-kafka
//! --test contract -- --ignored`; `apache_kafka_three_broker_contract` a three-broker one
//! (`STREAMHUB_TEST_KAFKA3=$(scripts/kafka start --brokers 3 --dir DIR)`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::future::join_all;
#[cfg(feature = "embedded-broker")]
use streamhub_kafka::broker::{BrokerConfig, EmbeddedBroker, Storage};
use streamhub_kafka::rdkafka::Message;
use streamhub_kafka::rdkafka::consumer::{Consumer, StreamConsumer};
use streamhub_kafka::rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use streamhub_kafka::rdkafka::producer::FutureRecord;
use streamhub_kafka::{Created, KafkaConfig, KafkaError, TopicSpec, commit_stored_offsets};

const MESSAGES: usize = 10_000;
const KEYS: usize = 97;
const PARTITIONS: i32 = 3;
/// Bound on reading a whole topic; generous for a loaded two-core machine.
const READ_DEADLINE: Duration = Duration::from_secs(120);

fn random_name(prefix: &str) -> String {
    format!("{prefix}-{:016x}", rand::random::<u64>())
}

/// A message as the scenario wrote it: key `k<n>`, value `<key>:<seq>` with `seq` counting
/// per key from 0.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Record {
    partition: i32,
    offset: i64,
    key: String,
    seq: u64,
}

fn parse(msg: &impl Message) -> Record {
    let key = String::from_utf8(msg.key().expect("message has a key").to_vec()).expect("utf-8 key");
    let value = std::str::from_utf8(msg.payload().expect("message has a value")).expect("utf-8");
    let (value_key, seq) = value.split_once(':').expect("value is key:seq");
    assert_eq!(value_key, key, "value belongs to its key");
    Record {
        partition: msg.partition(),
        offset: msg.offset(),
        key,
        seq: seq.parse().expect("numeric seq"),
    }
}

/// Produces the scenario's messages, all enqueued first and their deliveries awaited together.
/// Returns what each acknowledgement said.
async fn produce(config: &KafkaConfig, topic: &str) -> Vec<Record> {
    let producer = config.producer().expect("producer");
    let mut seqs = vec![0u64; KEYS];
    let mut pending = Vec::with_capacity(MESSAGES);
    for i in 0..MESSAGES {
        let k = (i * 31) % KEYS;
        let key = format!("k{k}");
        let seq = seqs[k];
        seqs[k] += 1;
        let value = format!("{key}:{seq}");
        loop {
            let record = FutureRecord::to(topic).key(&key).payload(&value);
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push((key.clone(), seq, delivery));
                    break;
                }
                // The bounded local queue is full: let deliveries drain it.
                Err((RdError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => panic!("enqueueing message {i} failed: {e}"),
            }
        }
    }
    let (keys, futures): (Vec<_>, Vec<_>) = pending
        .into_iter()
        .map(|(key, seq, delivery)| ((key, seq), delivery))
        .unzip();
    let results = join_all(futures).await;
    keys.into_iter()
        .zip(results)
        .map(|((key, seq), result)| {
            let delivery = result
                .expect("delivery future not cancelled")
                .unwrap_or_else(|(e, _)| panic!("message {key}:{seq} not acknowledged: {e}"));
            Record {
                partition: delivery.partition,
                offset: delivery.offset,
                key,
                seq,
            }
        })
        .collect()
}

/// Reads from `consumer` until `want` messages arrived (or the deadline), storing the offset
/// of every message for which `store` says so, the way an at-least-once consumer stores after
/// processing.
async fn read(
    consumer: &StreamConsumer,
    want: usize,
    mut store: impl FnMut(usize) -> bool,
) -> Vec<Record> {
    let deadline = Instant::now() + READ_DEADLINE;
    let mut got = Vec::with_capacity(want);
    while got.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(msg)) => msg,
            Ok(Err(e)) => panic!("consumer error after {} messages: {e}", got.len()),
            Err(_) => panic!(
                "only {} of {want} messages within {READ_DEADLINE:?}",
                got.len()
            ),
        };
        if store(got.len()) {
            consumer
                .store_offset_from_message(&msg)
                .expect("store offset");
        }
        got.push(parse(&msg));
    }
    got
}

/// Every produced message exactly once, each key's messages in production order.
fn assert_exactly_once_in_order(produced: &[Record], consumed: &[Record], who: &str) {
    assert_eq!(consumed.len(), produced.len(), "{who}: message count");
    let distinct: HashSet<(i32, i64)> = consumed.iter().map(|r| (r.partition, r.offset)).collect();
    assert_eq!(distinct.len(), consumed.len(), "{who}: duplicates");
    let mut want: Vec<&Record> = produced.iter().collect();
    let mut have: Vec<&Record> = consumed.iter().collect();
    want.sort();
    have.sort();
    assert_eq!(
        want, have,
        "{who}: consumed messages differ from acknowledged ones"
    );
    let mut next_seq: HashMap<&str, u64> = HashMap::new();
    for r in consumed {
        let next = next_seq.entry(&r.key).or_insert(0);
        assert_eq!(r.seq, *next, "{who}: key {} out of order", r.key);
        *next += 1;
    }
}

async fn subscribed(config: &KafkaConfig, group: &str, topic: &str) -> StreamConsumer {
    let consumer = config.consumer(group).expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// What the scenario leaves behind for the restart check of the embedded broker.
#[cfg_attr(not(feature = "embedded-broker"), allow(dead_code))]
struct Outcome {
    topic: String,
    produced: Vec<Record>,
    /// Group that read everything and committed.
    group: String,
}

/// The broker contract, against whatever broker `bootstrap` names.
async fn scenario(bootstrap: &str) -> Outcome {
    let config = KafkaConfig::new(bootstrap).with_timeout(Duration::from_secs(15));
    let admin = config.admin().expect("admin client");
    let brokers = admin.broker_count().await.expect("broker count");
    assert!(brokers >= 1);

    // Topic creation: idempotent, replication factor bounded by the broker count.
    let topic = random_name("contract");
    let spec = TopicSpec::new(&topic, PARTITIONS, 1);
    assert_eq!(
        admin.ensure_topic(&spec).await.expect("create"),
        Created::New
    );
    assert_eq!(
        admin.ensure_topic(&spec).await.expect("create again"),
        Created::AlreadyExisted
    );
    assert_eq!(
        admin.partition_count(&topic).await.unwrap(),
        Some(PARTITIONS)
    );
    let too_many = TopicSpec::new(random_name("contract-rf"), 1, brokers as i32 + 1);
    match admin.ensure_topic(&too_many).await {
        Err(KafkaError::ReplicationFactor { asked, brokers: b }) => {
            assert_eq!((asked, b), (brokers as i32 + 1, brokers));
        }
        other => panic!("replication factor above broker count: {other:?}"),
    }
    assert_eq!(admin.partition_count(&too_many.name).await.unwrap(), None);
    if brokers >= 3 {
        // Replicated topics keep accepting acks=all writes with one broker down.
        let replicated = TopicSpec::new(random_name("contract-rf3"), 2, 3);
        assert_eq!(admin.ensure_topic(&replicated).await.unwrap(), Created::New);
        let config = admin.topic_config(&replicated.name).await.expect("config");
        assert_eq!(
            config.get("min.insync.replicas").map(String::as_str),
            Some("2")
        );
    }

    // Produce: every message acknowledged, keyed messages stay in one partition.
    let produced = produce(&config, &topic).await;
    assert_eq!(produced.len(), MESSAGES);
    let mut partition_of_key: HashMap<&str, i32> = HashMap::new();
    for r in &produced {
        let p = *partition_of_key.entry(&r.key).or_insert(r.partition);
        assert_eq!(p, r.partition, "key {} spread over partitions", r.key);
    }

    // Watermarks match the acknowledgements.
    let marks = admin.watermarks(&topic).await.expect("watermarks");
    assert_eq!(marks.len(), PARTITIONS as usize);
    for m in &marks {
        let acked: Vec<i64> = produced
            .iter()
            .filter(|r| r.partition == m.partition)
            .map(|r| r.offset)
            .collect();
        assert_eq!(m.low, 0, "partition {} low", m.partition);
        assert_eq!(m.high, acked.len() as i64, "partition {} high", m.partition);
        let distinct: HashSet<i64> = acked.iter().copied().collect();
        assert_eq!(distinct.len(), acked.len(), "offsets acknowledged twice");
        assert!(acked.iter().all(|o| (0..m.high).contains(o)));
    }
    let totals = admin
        .message_totals(&[topic.clone(), random_name("absent")])
        .await
        .expect("totals");
    assert_eq!(totals.len(), 1, "absent topic left out: {totals:?}");
    assert_eq!(totals[&topic], MESSAGES as i64);

    // Lag of a group that never read: everything.
    let idle = admin
        .group_lag(&random_name("idle"), std::slice::from_ref(&topic))
        .await
        .expect("lag of idle group");
    assert_eq!(idle.len(), PARTITIONS as usize);
    for l in &idle {
        assert_eq!(l.committed, None);
        assert_eq!(l.lag, l.high);
    }

    // Group A reads everything exactly once, in order per key, then commits.
    let group_a = random_name("group-a");
    let a = subscribed(&config, &group_a, &topic).await;
    let read_a = read(&a, MESSAGES, |_| true).await;
    assert_exactly_once_in_order(&produced, &read_a, "group A");
    commit_stored_offsets(&a).expect("commit group A");
    drop(a);
    for l in admin
        .group_lag(&group_a, std::slice::from_ref(&topic))
        .await
        .expect("lag A")
    {
        assert_eq!(l.committed, Some(l.high), "group A committed {l:?}");
        assert_eq!(l.lag, 0, "group A lag {l:?}");
    }

    // Group B reads the same messages independently.
    let group_b = random_name("group-b");
    let b = subscribed(&config, &group_b, &topic).await;
    let read_b = read(&b, MESSAGES, |_| true).await;
    assert_exactly_once_in_order(&produced, &read_b, "group B");
    drop(b);

    // Group C: processes 4,000 messages, receives 150 more it does not process, stops;
    // a restarted consumer resumes at the committed offsets: no gap, and only the
    // unprocessed tail is read again.
    let group_c = random_name("group-c");
    let processed_first = 4_000;
    let c1 = subscribed(&config, &group_c, &topic).await;
    let first = read(&c1, processed_first + 150, |i| i < processed_first).await;
    commit_stored_offsets(&c1).expect("commit group C");
    drop(c1);
    let (processed, unprocessed) = first.split_at(processed_first);
    let mut expected_commit: BTreeMap<i32, i64> = BTreeMap::new();
    for r in processed {
        let e = expected_commit.entry(r.partition).or_insert(0);
        *e = (*e).max(r.offset + 1);
    }
    let lag_c = admin
        .group_lag(&group_c, std::slice::from_ref(&topic))
        .await
        .expect("lag C");
    let mut remaining = 0;
    for l in &lag_c {
        assert_eq!(
            l.committed,
            expected_commit.get(&l.partition).copied(),
            "group C committed offset of partition {}",
            l.partition
        );
        assert_eq!(l.lag, l.high - l.committed.unwrap_or(0));
        remaining += l.lag as usize;
    }
    assert_eq!(remaining, MESSAGES - processed_first);

    let c2 = subscribed(&config, &group_c, &topic).await;
    let second = read(&c2, remaining, |_| true).await;
    commit_stored_offsets(&c2).expect("commit group C again");
    drop(c2);
    let mut first_offset: BTreeMap<i32, i64> = BTreeMap::new();
    for r in &second {
        first_offset.entry(r.partition).or_insert(r.offset);
    }
    for (partition, offset) in &first_offset {
        assert_eq!(
            *offset,
            expected_commit.get(partition).copied().unwrap_or(0),
            "restart of group C did not resume at the commit of partition {partition}"
        );
    }
    let processed_set: HashSet<&Record> = processed.iter().collect();
    assert!(
        second.iter().all(|r| !processed_set.contains(r)),
        "group C re-read a processed message"
    );
    let reread: HashSet<&Record> = second.iter().filter(|r| first.contains(r)).collect();
    assert_eq!(
        reread,
        unprocessed.iter().collect::<HashSet<_>>(),
        "group C re-read something other than its unprocessed tail"
    );
    let mut all: Vec<Record> = processed.to_vec();
    all.extend(second);
    all.sort_by_key(|r| (r.partition, r.offset));
    let mut produced_sorted = produced.clone();
    produced_sorted.sort_by_key(|r| (r.partition, r.offset));
    assert_eq!(
        all, produced_sorted,
        "group C: gap or duplicate across the restart"
    );
    for l in admin
        .group_lag(&group_c, std::slice::from_ref(&topic))
        .await
        .expect("lag C after")
    {
        assert_eq!(l.lag, 0, "group C lag after restart {l:?}");
    }

    // Deletion: the topic goes, deleting it again says it is unknown, and the other topic
    // keeps every message.
    let doomed = random_name("contract-del");
    admin
        .ensure_topic(&TopicSpec::new(&doomed, 1, 1))
        .await
        .expect("create doomed");
    admin.delete_topic(&doomed).await.expect("delete");
    assert_eq!(admin.partition_count(&doomed).await.unwrap(), None);
    match admin.watermarks(&doomed).await {
        Err(KafkaError::UnknownTopic(name)) => assert_eq!(name, doomed),
        other => panic!("watermarks of deleted topic: {other:?}"),
    }
    match admin.delete_topic(&doomed).await {
        Err(KafkaError::UnknownTopic(name)) => assert_eq!(name, doomed),
        other => panic!("deleting a deleted topic: {other:?}"),
    }
    let totals = admin
        .message_totals(std::slice::from_ref(&topic))
        .await
        .expect("totals after a delete");
    assert_eq!(totals.get(&topic), Some(&(MESSAGES as i64)), "{totals:?}");
    assert_eq!(
        admin.partition_count(&topic).await.unwrap(),
        Some(PARTITIONS),
        "deleting another topic left this one alone"
    );

    Outcome {
        topic,
        produced,
        group: group_a,
    }
}

#[cfg(feature = "embedded-broker")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_broker_contract() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("data").join("broker");
    assert!(db.is_absolute());
    let started = Instant::now();
    let broker = EmbeddedBroker::start(BrokerConfig::in_dir(&db))
        .await
        .expect("start embedded broker");
    eprintln!(
        "embedded broker on {} ready in {:?}",
        broker.bootstrap_servers(),
        started.elapsed()
    );
    assert!(db.is_dir(), "storage at the absolute path {db:?}");
    let listen = broker.listen_addr();

    let outcome = scenario(&broker.bootstrap_servers()).await;

    // Restart on the same storage: acknowledged messages and commits are all there.
    broker.shutdown().await.expect("shutdown");
    let broker = EmbeddedBroker::start(BrokerConfig {
        listen,
        ..BrokerConfig::in_dir(&db)
    })
    .await
    .expect("restart embedded broker");
    let config = KafkaConfig::new(broker.bootstrap_servers());
    let admin = config.admin().unwrap();
    let topics = vec![outcome.topic.clone()];
    let totals = admin.message_totals(&topics).await.expect("totals");
    assert_eq!(totals.get(&outcome.topic), Some(&(MESSAGES as i64)));
    for l in admin.group_lag(&outcome.group, &topics).await.expect("lag") {
        assert_eq!(l.committed, Some(l.high), "commit survived restart: {l:?}");
    }
    let consumer = subscribed(&config, &random_name("after-restart"), &outcome.topic).await;
    let reread = read(&consumer, MESSAGES, |_| true).await;
    assert_exactly_once_in_order(&outcome.produced, &reread, "after restart");
    drop(consumer);
    broker.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Apache Kafka: set STREAMHUB_TEST_KAFKA (scripts/test does)"]
async fn apache_kafka_contract() {
    let bootstrap = std::env::var("STREAMHUB_TEST_KAFKA").expect(
        "STREAMHUB_TEST_KAFKA must name the bootstrap servers of a running Apache Kafka \
         (STREAMHUB_TEST_KAFKA=$(scripts/kafka start))",
    );
    scenario(&bootstrap).await;
}

/// The contract on a three-broker cluster (`scripts/kafka start --brokers 3`), plus what
/// replication adds: topics get the replication factor asked for, with every replica in sync,
/// and `min.insync.replicas` 2 at a factor of 3 (1 at a factor of 1, whose writes the
/// cluster's default of 2 would otherwise refuse).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a three-broker Apache Kafka: set STREAMHUB_TEST_KAFKA3 (scripts/test does)"]
async fn apache_kafka_three_broker_contract() {
    let bootstrap = match std::env::var("STREAMHUB_TEST_KAFKA3") {
        Ok(b) if !b.trim().is_empty() => b,
        _ => panic!(
            "STREAMHUB_TEST_KAFKA3 must name the bootstrap servers of a running three-broker \
             Apache Kafka (STREAMHUB_TEST_KAFKA3=$(scripts/kafka start --brokers 3 --dir DIR))"
        ),
    };
    let config = KafkaConfig::new(&bootstrap).with_timeout(Duration::from_secs(15));
    let admin = config.admin().expect("admin client");
    assert_eq!(admin.broker_count().await.expect("broker count"), 3);
    for (rf, isr) in [(3, "2"), (1, "1")] {
        let spec = TopicSpec::new(random_name(&format!("replicated-rf{rf}")), 4, rf);
        assert_eq!(admin.ensure_topic(&spec).await.unwrap(), Created::New);
        let topic_config = admin.topic_config(&spec.name).await.expect("config");
        assert_eq!(
            topic_config.get("min.insync.replicas").map(String::as_str),
            Some(isr),
            "min.insync.replicas of a topic with replication factor {rf}"
        );
        let replicas = replica_counts(&config, &spec.name).await;
        assert_eq!(
            replicas,
            vec![(rf as usize, rf as usize); 4],
            "(replicas, in sync) by partition"
        );
    }
    scenario(&bootstrap).await;
}

/// (replicas, in-sync replicas) of each partition of `topic`, by partition, once the
/// in-sync set is complete (bounded).
async fn replica_counts(config: &KafkaConfig, topic: &str) -> Vec<(usize, usize)> {
    use streamhub_kafka::rdkafka::consumer::BaseConsumer;
    let metadata: BaseConsumer = config.client_config().create().expect("client");
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let md = metadata
                .fetch_metadata(Some(&topic), Duration::from_secs(10))
                .expect("metadata");
            let mut counts: Vec<(i32, usize, usize)> = md.topics()[0]
                .partitions()
                .iter()
                .map(|p| (p.id(), p.replicas().len(), p.isr().len()))
                .collect();
            counts.sort_unstable();
            let done = counts.iter().all(|(_, r, i)| r == i);
            if done || Instant::now() >= deadline {
                return counts.into_iter().map(|(_, r, i)| (r, i)).collect();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await
    .expect("metadata task")
}

/// A port nobody listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr.to_string()
}

#[tokio::test]
async fn unreachable_broker_fails_within_bound() {
    let bootstrap = closed_port();
    let timeout = Duration::from_secs(2);
    let admin = KafkaConfig::new(&bootstrap)
        .with_timeout(timeout)
        .admin()
        .unwrap();
    let started = Instant::now();
    let err = admin.broker_count().await.expect_err("nothing listens");
    let elapsed = started.elapsed();
    assert!(err.is_unreachable(), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&bootstrap), "names the servers: {text}");
    // A bound, not a speed figure: the call must not hang.
    assert!(elapsed < timeout * 5, "took {elapsed:?}");

    let err = admin
        .ensure_topic(&TopicSpec::new(random_name("t"), 1, 1))
        .await
        .expect_err("nothing listens");
    assert!(err.is_unreachable(), "{err:?}");
}

#[tokio::test]
async fn invalid_topic_input_is_refused_before_kafka() {
    // Nothing listens here: anything that reached Kafka would fail as unreachable instead.
    let admin = KafkaConfig::new(closed_port())
        .with_timeout(Duration::from_secs(1))
        .admin()
        .unwrap();
    for bad in ["", "has space", "..", "é", &"x".repeat(250)] {
        match admin.ensure_topic(&TopicSpec::new(bad, 3, 1)).await {
            Err(KafkaError::InvalidTopic { name, .. }) => assert_eq!(name, bad),
            other => panic!("topic {bad:?}: {other:?}"),
        }
        assert!(matches!(
            admin.watermarks(bad).await,
            Err(KafkaError::InvalidTopic { .. })
        ));
        assert!(matches!(
            admin.delete_topic(bad).await,
            Err(KafkaError::InvalidTopic { .. })
        ));
    }
    for partitions in [0, -1, 1001] {
        match admin
            .ensure_topic(&TopicSpec::new("fine", partitions, 1))
            .await
        {
            Err(KafkaError::InvalidPartitions(p)) => assert_eq!(p, partitions),
            other => panic!("{partitions} partitions: {other:?}"),
        }
    }
    assert!(matches!(
        admin.ensure_topic(&TopicSpec::new("fine", 1, 0)).await,
        Err(KafkaError::InvalidReplicationFactor(0))
    ));
}

#[cfg(feature = "embedded-broker")]
#[tokio::test]
async fn port_in_use_is_a_one_line_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = EmbeddedBroker::start(BrokerConfig {
        listen: addr,
        ..BrokerConfig::ephemeral()
    })
    .await
    .expect_err("port is taken");
    assert_eq!(err.to_string(), format!("{addr} is already in use"));
}

#[cfg(feature = "embedded-broker")]
#[tokio::test]
async fn storage_parses() {
    assert_eq!("memory://".parse::<Storage>().unwrap(), Storage::Memory);
    assert_eq!(
        "/var/lib/streamhub/broker".parse::<Storage>().unwrap(),
        Storage::Dir("/var/lib/streamhub/broker".into())
    );
    assert_eq!(
        "data/broker".parse::<Storage>().unwrap(),
        Storage::Dir("data/broker".into())
    );
    for bad in ["postgres://x", "sqlite:///var/lib/broker.db", ""] {
        assert!(bad.parse::<Storage>().is_err(), "{bad}");
    }
}

#[cfg(feature = "embedded-broker")]
#[test]
fn flush_policies_parse() {
    use streamhub_kafka::broker::{FlushPolicy, parse_flush};
    assert_eq!(parse_flush("os"), Ok(FlushPolicy::Os));
    assert_eq!(parse_flush("batch"), Ok(FlushPolicy::EveryBatch));
    assert_eq!(
        parse_flush("250ms"),
        Ok(FlushPolicy::Interval(Duration::from_millis(250)))
    );
    assert_eq!(
        parse_flush("2s"),
        Ok(FlushPolicy::Interval(Duration::from_secs(2)))
    );
    // The one duration syntax: bare seconds and any humantime unit.
    assert_eq!(
        parse_flush("0.5"),
        Ok(FlushPolicy::Interval(Duration::from_millis(500)))
    );
    assert_eq!(
        parse_flush("1m"),
        Ok(FlushPolicy::Interval(Duration::from_secs(60)))
    );
    for bad in ["", "0s", "500us", "fast", "-1s", "10parsecs"] {
        let err = parse_flush(bad).unwrap_err();
        assert!(err.contains("os or batch"), "{bad}: {err}");
    }
}

#[cfg(feature = "embedded-broker")]
#[tokio::test]
async fn a_second_broker_on_the_same_storage_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let first = EmbeddedBroker::start(BrokerConfig::in_dir(dir.path()))
        .await
        .expect("first");
    let err = EmbeddedBroker::start(BrokerConfig::in_dir(dir.path()))
        .await
        .expect_err("second on the same directory");
    assert!(err.to_string().contains("in use"), "{err}");
    first.shutdown().await.unwrap();
}

#[cfg(feature = "embedded-broker")]
#[tokio::test]
async fn memory_broker_starts_on_a_free_port() {
    let broker = EmbeddedBroker::start(BrokerConfig::ephemeral())
        .await
        .expect("start");
    let admin = KafkaConfig::new(broker.bootstrap_servers())
        .admin()
        .unwrap();
    assert_eq!(admin.broker_count().await.unwrap(), 1);
    assert!(admin.is_embedded_broker().await.unwrap());

    // The only topic can be deleted; then it is unknown.
    let topic = random_name("only");
    admin
        .ensure_topic(&TopicSpec::new(&topic, 2, 1))
        .await
        .unwrap();
    admin
        .delete_topic(&topic)
        .await
        .expect("delete the only topic");
    assert_eq!(admin.partition_count(&topic).await.unwrap(), None);
    match admin.delete_topic(&topic).await {
        Err(KafkaError::UnknownTopic(name)) => assert_eq!(name, topic),
        other => panic!("deleting a deleted topic: {other:?}"),
    }
    broker.shutdown().await.unwrap();
}

#[cfg(feature = "embedded-broker")]
#[tokio::test]
async fn broker_command_runs_until_cancelled() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        broker: streamhub_kafka::broker::BrokerArgs,
    }
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli::try_parse_from([
        "broker",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ])
    .unwrap();
    let token = tokio_util::sync::CancellationToken::new();
    let run = tokio::spawn(streamhub_kafka::broker::run(cli.broker, token.clone()));
    let db = dir.path().join("broker");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !db.is_dir() {
        assert!(Instant::now() < deadline, "no storage at {db:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    token.cancel();
    tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("stops when cancelled")
        .unwrap()
        .expect("clean stop");
}

#[cfg(feature = "embedded-broker")]
#[tokio::test]
async fn broker_command_reports_port_in_use() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        broker: streamhub_kafka::broker::BrokerArgs,
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let cli = Cli::try_parse_from(["broker", "--listen", &addr, "--storage", "memory://"]).unwrap();
    let err = streamhub_kafka::broker::run(cli.broker, Default::default())
        .await
        .expect_err("port taken");
    assert_eq!(format!("{err:#}"), format!("{addr} is already in use"));
}
