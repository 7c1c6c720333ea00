//! `consumer read` against a broker (see `common::World`) and the real admin service: every `--from`
//! form, every format, the stop conditions, the subscription check and bad input.

mod common;

use std::io;
use std::time::Duration;

use common::{World, seqs_of_json, unique};
use serde_json::Value;
use streamhub_consumer::{EndedBy, Format, Palette, ReadArgs, ReadSummary, StartFrom, read_to};
use tokio_util::sync::CancellationToken;

async fn read(args: ReadArgs) -> anyhow::Result<(String, String, ReadSummary)> {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let summary = read_to(
        args,
        Palette::PLAIN,
        &mut out,
        &mut err,
        CancellationToken::new(),
    )
    .await?;
    Ok((
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
        summary,
    ))
}

fn direct(world: &World, topic: &str) -> ReadArgs {
    let mut args = ReadArgs::new(world.direct_session(), [topic]);
    args.direct = true;
    args.format = Format::Json;
    args.timeout = Some(Duration::from_secs(3));
    args
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn from_beginning_reads_every_partition_as_json_lines() {
    let world = World::start().await;
    let topic = unique("sensor");
    world.kafka_topic(&topic, 3).await;
    world.produce(&topic, 0..30).await;

    let mut args = direct(&world, &topic);
    args.from = Some(StartFrom::Beginning);
    args.max_messages = Some(30);
    let (out, err, summary) = read(args).await.unwrap();
    assert_eq!(summary.ended_by, EndedBy::MaxMessages);
    assert_eq!(summary.messages, 30);
    assert!(err.is_empty(), "{err}");
    assert_eq!(sorted(seqs_of_json(&out)), (0..30).collect::<Vec<_>>());
    let partitions: std::collections::BTreeSet<i64> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["partition"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert!(
        partitions.len() > 1,
        "keys spread over partitions: {partitions:?}"
    );
    let first: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    for field in [
        "topic",
        "partition",
        "offset",
        "key",
        "timestamp",
        "envelope",
    ] {
        assert!(!first[field].is_null(), "{field} missing in {first}");
    }
    assert_eq!(first["topic"], topic.as_str());
    assert_eq!(first["valid_envelope"], true);
    assert!(first["key"].as_str().unwrap().starts_with("entity-"));
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_ends_an_idle_read_with_everything_shown() {
    let world = World::start().await;
    let topic = unique("sensor");
    world.kafka_topic(&topic, 2).await;
    world.produce(&topic, 0..12).await;

    let mut args = direct(&world, &topic);
    args.timeout = Some(Duration::from_millis(1500));
    let (out, _, summary) = read(args).await.unwrap();
    assert_eq!(summary.ended_by, EndedBy::Idle);
    assert_eq!(summary.messages, 12);
    assert_eq!(sorted(seqs_of_json(&out)), (0..12).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread")]
async fn max_messages_stops_exactly_there() {
    let world = World::start().await;
    let topic = unique("sensor");
    world.kafka_topic(&topic, 1).await;
    world.produce(&topic, 0..20).await;

    let mut args = direct(&world, &topic);
    args.max_messages = Some(5);
    let (out, _, summary) = read(args).await.unwrap();
    assert_eq!(summary.messages, 5);
    assert_eq!(seqs_of_json(&out), vec![0, 1, 2, 3, 4]);
}

#[tokio::test(flavor = "multi_thread")]
async fn from_an_offset_and_from_the_tail() {
    let world = World::start().await;
    let topic = unique("sensor");
    world.kafka_topic(&topic, 1).await;
    world.produce(&topic, 0..10).await;

    let mut args = direct(&world, &topic);
    args.from = Some("4".parse().unwrap());
    let (out, _, _) = read(args).await.unwrap();
    assert_eq!(seqs_of_json(&out), (4..10).collect::<Vec<_>>());
    let first: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(first["offset"], 4);

    let mut args = direct(&world, &topic);
    args.from = Some("-3".parse().unwrap());
    let (out, _, _) = read(args).await.unwrap();
    assert_eq!(seqs_of_json(&out), vec![7, 8, 9]);

    // Past the end: clamped to the end, so only new messages would come.
    let mut args = direct(&world, &topic);
    args.from = Some(StartFrom::Offset(1000));
    args.timeout = Some(Duration::from_millis(1500));
    let (out, _, summary) = read(args).await.unwrap();
    assert_eq!(summary.ended_by, EndedBy::Idle);
    assert_eq!(out, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn from_a_time_starts_at_the_first_message_at_or_after_it() {
    let world = World::start().await;
    let topic = unique("sensor");
    world.kafka_topic(&topic, 2).await;
    world.produce(&topic, 0..5).await;
    // Kafka timestamps have millisecond resolution: step past the last one.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let from = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    world.produce(&topic, 5..10).await;

    let mut args = direct(&world, &topic);
    args.from = Some(from.to_rfc3339().parse().unwrap());
    let (out, _, _) = read(args).await.unwrap();
    assert_eq!(sorted(seqs_of_json(&out)), (5..10).collect::<Vec<_>>());

    // A time after every message: nothing until new messages arrive.
    let mut args = direct(&world, &topic);
    args.from = Some(StartFrom::Time(
        chrono::Utc::now() + chrono::Duration::hours(1),
    ));
    args.timeout = Some(Duration::from_millis(1500));
    let (out, _, _) = read(args).await.unwrap();
    assert_eq!(out, "");
}

#[tokio::test(flavor = "multi_thread")]
async fn from_end_shows_only_what_is_produced_after_the_start() {
    let world = World::start().await;
    let topic = unique("sensor");
    world.kafka_topic(&topic, 2).await;
    world.produce(&topic, 0..10).await;

    let mut args = direct(&world, &topic);
    args.from = Some(StartFrom::End);
    args.max_messages = Some(3);
    args.timeout = Some(Duration::from_secs(30));
    let reader = tokio::spawn(read(args));
    // Keep producing until the reader has its three: however long it takes to be
    // positioned, it must never show one of the first ten.
    let mut seq = 10;
    while !reader.is_finished() {
        world.produce(&topic, seq..seq + 1).await;
        seq += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(seq < 400, "the reader never received three new messages");
    }
    let (out, _, summary) = reader.await.unwrap().unwrap();
    assert_eq!(summary.messages, 3);
    assert!(seqs_of_json(&out).iter().all(|s| *s >= 10), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_resumes_where_the_group_committed() {
    let world = World::start().await;
    let topic = unique("sensor");
    world.kafka_topic(&topic, 1).await;
    world.produce(&topic, 0..10).await;
    let group = unique("group");

    let mut args = direct(&world, &topic);
    args.group = Some(group.clone());
    args.max_messages = Some(4);
    let (out, _, _) = read(args.clone()).await.unwrap();
    assert_eq!(seqs_of_json(&out), vec![0, 1, 2, 3]);

    args.from = Some(StartFrom::Stored);
    args.max_messages = None;
    args.timeout = Some(Duration::from_millis(2000));
    let (out, _, _) = read(args.clone()).await.unwrap();
    assert_eq!(seqs_of_json(&out), (4..10).collect::<Vec<_>>());

    let lag = world
        .kafka
        .admin()
        .unwrap()
        .group_lag(&group, std::slice::from_ref(&topic))
        .await
        .unwrap();
    assert_eq!(lag.iter().map(|p| p.lag).sum::<i64>(), 0, "{lag:?}");

    // A read without a group leaves the group's position alone.
    let mut args = direct(&world, &topic);
    args.from = Some(StartFrom::Beginning);
    read(args).await.unwrap();
    world.produce(&topic, 10..12).await;
    let mut args = direct(&world, &topic);
    args.group = Some(group);
    let (out, _, _) = read(args).await.unwrap();
    assert_eq!(seqs_of_json(&out), vec![10, 11]);
}

#[tokio::test(flavor = "multi_thread")]
async fn stored_without_a_group_is_refused_in_direct_mode() {
    let world = World::start().await;
    let mut args = direct(&world, "anything");
    args.from = Some(StartFrom::Stored);
    let err = read(args).await.unwrap_err().to_string();
    assert!(err.contains("--group"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn raw_and_pretty_formats() {
    let world = World::start().await;
    let topic = unique("sensor");
    world.kafka_topic(&topic, 1).await;
    world.produce_bytes(&topic, Some("k"), b"hello world").await;
    world.produce(&topic, 0..1).await;

    let mut args = direct(&world, &topic);
    args.format = Format::Raw;
    args.max_messages = Some(2);
    let (out, err, _) = read(args).await.unwrap();
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("hello world"));
    let second: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(second["seq"], 0);
    assert!(err.is_empty());

    let mut args = direct(&world, &topic);
    args.format = Format::Pretty;
    args.max_messages = Some(2);
    let (out, _, summary) = read(args).await.unwrap();
    assert_eq!(summary.not_envelopes, 1);
    assert!(
        out.contains(&format!("#1 📨 {topic} [partition 0 · offset 0 · key k]")),
        "{out}"
    );
    assert!(out.contains("⚠ not a streamhub envelope"), "{out}");
    assert!(out.contains("🧾 Raw value: hello world"), "{out}");
    assert!(out.contains(&format!("#2 📨 {topic}")), "{out}");
    assert!(out.contains("📦 Data Type: sensor"), "{out}");
    assert!(out.contains("🧩 Payload: {"), "{out}");
    assert!(!out.contains('\x1b'), "no colour when not asked");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_value_that_is_not_an_envelope_is_kept_and_flagged() {
    let world = World::start().await;
    let topic = unique("sensor");
    world.kafka_topic(&topic, 1).await;
    world.produce_bytes(&topic, None, b"{\"half\": ").await;
    world
        .produce_bytes(&topic, None, &[0xde, 0xad, 0xbe, 0xef])
        .await;
    world.produce(&topic, 0..1).await;

    let mut args = direct(&world, &topic);
    args.max_messages = Some(3);
    let (out, err, summary) = read(args).await.unwrap();
    assert_eq!(summary.messages, 3);
    assert_eq!(summary.not_envelopes, 2);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["valid_envelope"], false);
    assert_eq!(lines[0]["value"], "{\"half\": ");
    assert_eq!(lines[1]["value_hex"], "deadbeef");
    assert_eq!(lines[2]["valid_envelope"], true);
    assert_eq!(err.lines().count(), 2, "one warning per bad value: {err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn reading_goes_through_the_users_subscriptions() {
    let world = World::start().await;
    let mine = unique("sensor");
    let other = unique("payments");
    world.active_topic(&mine, 1).await;
    world.active_topic(&other, 1).await;
    world.add_user("alice").await;
    world.produce(&mine, 0..3).await;
    world.produce(&other, 0..3).await;

    // No subscription yet, no topic named.
    let mut args = ReadArgs::new(world.session("alice"), Vec::<String>::new());
    args.format = Format::Json;
    args.timeout = Some(Duration::from_secs(2));
    let err = read(args.clone()).await.unwrap_err().to_string();
    assert!(err.contains("has no subscriptions"), "{err}");

    world.subscribe_as_admin("alice", &mine).await;
    // All subscribed topics by default.
    let (out, _, _) = read(args.clone()).await.unwrap();
    assert_eq!(seqs_of_json(&out), vec![0, 1, 2]);
    assert!(out.lines().all(|l| l.contains(&mine)));

    // A topic the user is not subscribed to is refused with the reason, in one line.
    args.topics = vec![other.clone()];
    let err = format!("{:#}", read(args.clone()).await.unwrap_err());
    assert!(
        err.contains("not subscribed") && err.contains(&other),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);

    // --direct reads it without the admin service.
    let (out, _, _) = read(direct(&world, &other)).await.unwrap();
    assert_eq!(seqs_of_json(&out), vec![0, 1, 2]);

    // A wrong password is the admin service's reason.
    let mut bad = args.clone();
    bad.session.password = Some(streamhub_model::Secret::new("wrong-password"));
    let err = format!("{:#}", read(bad).await.unwrap_err());
    assert!(err.contains("cannot sign in as 'alice'"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_services_and_unknown_topics_are_one_line_errors() {
    let world = World::start().await;

    let err = format!(
        "{:#}",
        read(direct(&world, "no_such_topic")).await.unwrap_err()
    );
    assert!(err.contains("'no_such_topic' does not exist"), "{err}");

    let mut args = direct(&world, "t");
    args.session =
        streamhub_consumer::SessionArgs::new("http://127.0.0.1:9".parse().unwrap(), "127.0.0.1:9")
            .unwrap();
    args.session.kafka.timeout = Duration::from_secs(2);
    let err = format!("{:#}", read(args).await.unwrap_err());
    assert!(err.contains("cannot reach Kafka at 127.0.0.1:9"), "{err}");
    assert_eq!(err.lines().count(), 1);

    let mut args = ReadArgs::new(
        streamhub_consumer::SessionArgs::new(
            "http://127.0.0.1:9".parse().unwrap(),
            &world.bootstrap,
        )
        .unwrap()
        .with_login("alice", "x"),
        ["t"],
    );
    args.format = Format::Json;
    let err = format!("{:#}", read(args).await.unwrap_err());
    assert!(
        err.contains("cannot reach the admin service at http://127.0.0.1:9/"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);

    let mut args = direct(&world, "bad topic");
    args.topics = vec!["bad topic".into()];
    let err = format!("{:#}", read(args).await.unwrap_err());
    assert!(err.contains("--topic bad topic"), "{err}");
}

/// A reader that went away (`| head`) ends the read quietly.
#[tokio::test(flavor = "multi_thread")]
async fn a_closed_output_ends_the_read_without_an_error() {
    struct Closed;
    impl io::Write for Closed {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
        fn flush(&mut self) -> io::Result<()> {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        }
    }
    let world = World::start().await;
    let topic = unique("sensor");
    world.kafka_topic(&topic, 1).await;
    world.produce(&topic, 0..3).await;
    let summary = read_to(
        direct(&world, &topic),
        Palette::PLAIN,
        &mut Closed,
        &mut Vec::new(),
        CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(summary.ended_by, EndedBy::OutputClosed);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_ends_a_read_that_would_wait_forever() {
    let world = World::start().await;
    let topic = unique("sensor");
    world.kafka_topic(&topic, 1).await;
    let mut args = direct(&world, &topic);
    args.timeout = None;
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    let task = tokio::spawn(async move {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        read_to(args, Palette::PLAIN, &mut out, &mut err, stop).await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    shutdown.cancel();
    let summary = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the read stops")
        .unwrap()
        .unwrap();
    assert_eq!(summary.ended_by, EndedBy::Shutdown);
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_fires_on_a_live_topic_when_from_is_a_future_time() {
    let world = World::start().await;
    let topic = unique("sensor");
    world.kafka_topic(&topic, 1).await;
    world.produce(&topic, 0..3).await;

    // The topic keeps receiving messages, all before the start time: passed over, they
    // must not keep the read busy.
    let stop = CancellationToken::new();
    let producing = {
        let kafka = world.kafka.clone();
        let (topic, stop) = (topic.clone(), stop.clone());
        tokio::spawn(async move {
            let p = common::Producer::new(kafka);
            let mut seq = 3;
            while !stop.is_cancelled() {
                p.send(&topic, seq..seq + 1).await;
                seq += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            seq
        })
    };

    let mut args = direct(&world, &topic);
    args.from = Some(StartFrom::Time(
        chrono::Utc::now() + chrono::Duration::hours(1),
    ));
    args.timeout = Some(Duration::from_secs(2));
    let outcome = tokio::time::timeout(Duration::from_secs(60), read(args)).await;
    stop.cancel();
    let produced = producing.await.unwrap();
    let (out, _, summary) = outcome
        .expect("--timeout 2 ends the read while passed-over messages keep arriving")
        .unwrap();
    assert!(produced > 3, "the topic received messages during the read");
    assert_eq!(summary.ended_by, EndedBy::Idle);
    assert_eq!(summary.messages, 0);
    assert_eq!(out, "");
}

/// A commit waits for the broker's answer. On a single-threaded runtime that also serves
/// the (embedded) broker, a synchronous commit on the runtime's thread stalls the broker
/// it waits for.
#[test]
fn sync_commit_does_not_block_the_async_worker() {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let outcome = runtime.block_on(async {
            let world = World::start().await;
            let topic = unique("sensor");
            world.kafka_topic(&topic, 1).await;
            world.produce(&topic, 0..5).await;

            let group = unique("group");
            let mut args = direct(&world, &topic);
            args.group = Some(group.clone());
            args.from = Some(StartFrom::Beginning);
            args.max_messages = Some(5);
            let (first, _, _) = read(args).await?;
            // The group resumes after what the first read committed.
            world.produce(&topic, 5..8).await;
            let mut args = direct(&world, &topic);
            args.group = Some(group);
            args.max_messages = Some(3);
            let (second, _, _) = read(args).await?;
            anyhow::Ok((seqs_of_json(&first), seqs_of_json(&second)))
        });
        let _ = done.send(outcome.map_err(|e| format!("{e:#}")));
    });
    let outcome = finished
        .recv_timeout(Duration::from_secs(60))
        .expect("the read with a commit finished");
    assert_eq!(outcome, Ok((vec![0, 1, 2, 3, 4], vec![5, 6, 7])));
}

/// `--validate`: a payload that breaks its data type's schema is reported at its field,
/// and so is a value that is no envelope; a valid one is not.
#[tokio::test(flavor = "multi_thread")]
async fn validate_reports_invalid_values_per_field() {
    let world = World::start().await;
    let topic = unique("payments");
    world.kafka_topic(&topic, 1).await;
    let payment = |amount: f64, extra: bool| {
        let mut payload = serde_json::json!({
            "transaction_id": "txn-0123456789abcdef0123", "account": "acct-12345678",
            "amount": amount, "currency": "EUR", "merchant": "IKEA", "category": "home",
            "method": "card", "status": "completed", "failure_reason": null,
        });
        if extra {
            payload["note"] = "x".into();
        }
        serde_json::to_vec(&serde_json::json!({
            "topic": topic, "data_type": "payment", "timestamp": "2026-11-28T18:00:00Z",
            "producer_id": "p", "seq": 0, "payload": payload,
        }))
        .unwrap()
    };
    world
        .produce_bytes(&topic, Some("a"), &payment(12.5, false))
        .await;
    world
        .produce_bytes(&topic, Some("b"), &payment(-3.0, true))
        .await;
    world.produce_bytes(&topic, Some("c"), b"not json").await;

    let mut args = direct(&world, &topic);
    args.validate = true;
    args.max_messages = Some(3);
    let (out, err, summary) = read(args.clone()).await.unwrap();
    assert_eq!((summary.messages, summary.invalid), (3, 2));
    assert!(summary.check().is_err());
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["schema_errors"], serde_json::json!([]));
    let errors: Vec<String> = lines[1]["schema_errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}: {}", e["path"], e["message"]))
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors.iter().any(|e| e.starts_with("\"/amount\": ")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("\"\": ") && e.contains("note")),
        "{errors:?}"
    );
    assert_eq!(lines[2]["valid_envelope"], false);
    assert!(!lines[2]["schema_errors"][0]["message"].is_null());
    assert!(!err.contains("all valid"), "{err}");

    args.format = Format::Pretty;
    let (out, _, _) = read(args.clone()).await.unwrap();
    assert!(
        out.contains("✖ invalid: /amount: -3.0 is less than or equal to the minimum of 0"),
        "{out}"
    );

    // Only the valid message: a summary, no error.
    args.max_messages = Some(1);
    let (_, err, summary) = read(args).await.unwrap();
    assert_eq!(summary.invalid, 0);
    assert!(summary.check().is_ok());
    assert!(err.contains("schema check: 1 message, all valid"), "{err}");
}
