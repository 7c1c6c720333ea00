//! The consumer as a process: exit codes and one-line errors, a closed pipe, at-least-once
//! delivery across SIGKILL, and the interactive menu driven through a pseudo-terminal.
//!
//! The binary is `streamhub consumer`; [`consumer`] is the one place that names it. The
//! world (admin service, broker, users) is the consumer crate's test set-up.

#![cfg(feature = "embedded-broker")]

#[path = "../../consumer/tests/common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{USER_PASSWORD, World, unique};
use expectrl::process::unix::WaitStatus;
use expectrl::session::OsSession;
use expectrl::{Eof, Expect, Session};
use serde_json::Value;

/// `streamhub consumer` with a clean environment pointing at `world`.
fn consumer(world: &World) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_streamhub"));
    cmd.arg("consumer");
    for var in [
        "STREAMHUB_USER",
        "STREAMHUB_PASSWORD",
        "STREAMHUB_TOKEN",
        "KAFKA_BOOTSTRAP_SERVERS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("STREAMHUB_ADMIN_URL", world.admin.url())
        .env("KAFKA_BOOTSTRAP_SERVERS", &world.bootstrap)
        .env("NO_COLOR", "1");
    cmd
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_are_one_line_with_a_non_zero_exit() {
    let world = World::start().await;
    let output = consumer(&world)
        .args([
            "read",
            "--direct",
            "-t",
            "no_such_topic",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("'no_such_topic' does not exist"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());

    world.add_user("bob").await;
    let output = consumer(&world)
        .args(["read", "-t", "whatever", "--user", "bob"])
        .env("STREAMHUB_PASSWORD", "wrong-password")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("cannot sign in as 'bob'"), "{stderr}");

    let output = consumer(&world)
        .args(["read", "-t", "whatever", "--user", "bob"])
        .env("STREAMHUB_ADMIN_URL", "http://127.0.0.1:9")
        .env("STREAMHUB_PASSWORD", USER_PASSWORD)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot reach the admin service"),
        "{stderr}"
    );

    // No password and no terminal to ask on.
    let output = consumer(&world)
        .args(["read", "-t", "whatever", "--user", "bob"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("STREAMHUB_PASSWORD"), "{stderr}");
}

/// `streamhub consumer read ... | head -1`: the closed pipe ends the read with success.
#[tokio::test(flavor = "multi_thread")]
async fn a_closed_pipe_is_a_quiet_success() {
    let world = World::start().await;
    let topic = unique("sensor");
    world.kafka_topic(&topic, 1).await;
    world.produce(&topic, 0..3000).await;
    let mut child = consumer(&world)
        .args([
            "read",
            "--direct",
            "-t",
            &topic,
            "--format",
            "json",
            "--timeout",
            "20",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is dropped here, closing the pipe.
    assert!(first.contains("\"seq\":0"), "{first}");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?} {stderr}", output.status);
    assert!(stderr.is_empty(), "{stderr}");
}

/// Reads `read --format json` lines of a child until it ends, with the moment each arrived.
fn collect_json_lines(stdout: std::process::ChildStdout) -> Vec<Value> {
    BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .map(|l| serde_json::from_str(&l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// A consumer killed with SIGKILL mid-stream and started again shows every `seq`: the
/// only repeats are messages shown after the last commit.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_mid_stream_loses_nothing() {
    const TOTAL: u64 = 3000;
    let world = World::start().await;
    let topic = unique("sensor");
    world.active_topic(&topic, 3).await;
    world.add_user("carol").await;
    world.subscribe_as_admin("carol", &topic).await;
    let group = unique("group");

    // A stream that goes on while the first consumer runs and is killed.
    let producer = {
        let kafka = world.kafka.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            let p = common::Producer::new(kafka);
            // One record per batch (see `World::produce` on the embedded broker's
            // high watermark).
            for seq in 0..TOTAL {
                p.send(&topic, seq..seq + 1).await;
                if seq % 50 == 49 {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        })
    };

    // A static member id lets the restarted consumer take over the killed one's
    // partitions at once. Without it the group waits for the dead member's session to
    // expire (45 s by default), and the embedded broker sometimes never moves them.
    let instance = format!("group.instance.id={group}-1");
    let args = [
        "read", "-t", &topic, "--user", "carol", "--group", &group, "--format", "json", "-X",
        &instance,
    ];
    let mut first = consumer(&world)
        .args(args)
        .env("STREAMHUB_PASSWORD", USER_PASSWORD)
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = first.stdout.take().unwrap();
    let reader = std::thread::spawn(move || collect_json_lines(stdout));

    // Kill once the group has committed something and the stream is still flowing.
    let admin = world.kafka.admin().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let lag = admin
            .group_lag(&group, std::slice::from_ref(&topic))
            .await
            .unwrap();
        let committed: i64 = lag.iter().filter_map(|p| p.committed).sum();
        if committed > 300 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the group never committed: {lag:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!producer.is_finished(), "the stream ended before the kill");
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let before = reader.join().unwrap();
    producer.await.unwrap();

    let second = consumer(&world)
        .args(args)
        .args(["--timeout", "5"])
        .env("STREAMHUB_PASSWORD", USER_PASSWORD)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let after: Vec<Value> = String::from_utf8(second.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();

    let seq = |v: &Value| v["envelope"]["seq"].as_u64().unwrap();
    let seen_before: BTreeSet<u64> = before.iter().map(seq).collect();
    let seen_after: BTreeSet<u64> = after.iter().map(seq).collect();
    let all: BTreeSet<u64> = seen_before.union(&seen_after).copied().collect();
    let missing: Vec<u64> = (0..TOTAL).filter(|s| !all.contains(s)).collect();
    eprintln!(
        "before: {} (max seq {:?}), after: {} (min seq {:?}), stderr after: {}",
        before.len(),
        seen_before.last(),
        after.len(),
        seen_after.first(),
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(
        missing.is_empty(),
        "lost {} messages: {missing:?}",
        missing.len()
    );
    let repeated = seen_before.intersection(&seen_after).count();

    // Repeats are only the tail shown after the last commit: in every partition the
    // second run starts inside or right after what the first one showed, and repeats
    // nothing before that point.
    let mut last_before: BTreeMap<i64, i64> = BTreeMap::new();
    for v in &before {
        let e = last_before
            .entry(v["partition"].as_i64().unwrap())
            .or_insert(-1);
        *e = (*e).max(v["offset"].as_i64().unwrap());
    }
    let mut first_after: BTreeMap<i64, i64> = BTreeMap::new();
    for v in &after {
        let e = first_after
            .entry(v["partition"].as_i64().unwrap())
            .or_insert(i64::MAX);
        *e = (*e).min(v["offset"].as_i64().unwrap());
    }
    for (partition, first) in &first_after {
        let last = last_before.get(partition).copied().unwrap_or(-1);
        assert!(
            *first <= last + 1,
            "gap in partition {partition}: {last} then {first}"
        );
    }
    assert!(
        repeated < before.len(),
        "the second run started from scratch: nothing was committed"
    );
    eprintln!(
        "at least once: {TOTAL} messages, {} shown before SIGKILL, {} after, {repeated} repeated (uncommitted tail), 0 lost",
        before.len(),
        after.len()
    );
}

/// Reads the pty until `needle` appears or the time is up; the screen so far on failure.
fn expect(session: &mut OsSession, needle: &str) {
    if let Err(e) = session.expect(needle) {
        panic!("did not see {needle:?} on the terminal: {e}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_interactive_menu_through_a_terminal() {
    let world = World::start().await;
    let first = unique("sensor");
    let second = unique("weather");
    world.active_topic(&first, 3).await;
    world.active_topic(&second, 1).await;
    world.add_user("dave").await;
    world.produce(&first, 0..3).await;

    // Where the first topic sits in the subscribe list, to reach it with the arrow keys.
    let active = world.api.get("/api/topics/active").await;
    let index = active
        .as_array()
        .expect("a list")
        .iter()
        .position(|t| t["topic_name"] == first.as_str())
        .unwrap();

    let mut cmd = consumer(&world);
    cmd.env("STREAMHUB_USER", "dave").env("TERM", "xterm");
    let mut session = Session::spawn(cmd).expect("spawn on a pty");
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    let _ = session.get_process_mut().set_window_size(120, 40);

    let (stop_producing, producing) = {
        let kafka = world.kafka.clone();
        let first = first.clone();
        let second = second.clone();
        let stop = tokio_util::sync::CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let p = common::Producer::new(kafka);
            let mut seq = 3;
            while !stopped.is_cancelled() {
                p.send(&first, seq..seq + 1).await;
                p.send(&second, seq..seq + 1).await;
                seq += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        (stop, task)
    };

    let admin_url = world.admin.url().to_owned();
    let admin_token = common::admin_token(&world);
    let (first_, second_) = (first.clone(), second.clone());
    let runtime = tokio::runtime::Handle::current();
    let drive = tokio::task::spawn_blocking(move || {
        let (first, second) = (first_, second_);
        expect(&mut session, "Password for dave:");
        session.send_line(USER_PASSWORD).unwrap();
        expect(&mut session, "signed in as dave");
        expect(&mut session, "6. Exit");

        // 1: the active topics, with data type and partitions.
        session.send("1").unwrap();
        expect(&mut session, "Available topics (2):");
        expect(
            &mut session,
            &format!("{first}  (sensor · 3 partitions) — {first} for tests"),
        );

        // 3: subscribe, picking the topic with the arrow keys.
        expect(&mut session, "6. Exit");
        session.send("3").unwrap();
        expect(&mut session, "Subscribe to which topic?");
        for _ in 0..index {
            session.send("\x1b[B").unwrap();
        }
        session.send("\r").unwrap();
        expect(&mut session, &format!("Subscribed to {first}"));

        // 2: it is listed.
        expect(&mut session, "6. Exit");
        session.send("2").unwrap();
        expect(&mut session, "My subscriptions (1):");
        expect(&mut session, &first);

        // 5: consume; old and new messages arrive with a running count.
        expect(&mut session, "6. Exit");
        session.send("5").unwrap();
        expect(
            &mut session,
            &format!("Consuming {first} as group streamhub-dave"),
        );
        expect(&mut session, &format!("#1 📨 {first}"));
        expect(&mut session, "📦 Data Type: sensor");
        expect(&mut session, "🧩 Payload: {");
        expect(&mut session, &format!("#5 📨 {first}"));

        // A subscription added elsewhere takes effect without a restart.
        let status = runtime.block_on(async {
            reqwest::Client::new()
                .post(format!("{admin_url}/api/subscriptions"))
                .bearer_auth(&admin_token)
                .json(&serde_json::json!({"user_id": "dave", "topic_name": second}))
                .send()
                .await
                .unwrap()
                .status()
        });
        assert!(status.is_success(), "{status}");
        expect(&mut session, &format!("subscriptions changed (+{second})"));
        expect(&mut session, &format!("📨 {second}"));

        // Ctrl-C leaves the live view for the menu, with the position committed.
        session.send("\x03").unwrap();
        expect(&mut session, "position committed for group streamhub-dave");
        expect(&mut session, "6. Exit");

        // 4: unsubscribe from the first of the two (a digit selects at once).
        session.send("4").unwrap();
        expect(&mut session, "Unsubscribe from which topic?");
        session.send("1").unwrap();
        expect(&mut session, "Unsubscribed from");

        expect(&mut session, "6. Exit");
        session.send("6").unwrap();
        expect(&mut session, "Goodbye.");
        session.expect(Eof).ok();
        session.get_process().wait().unwrap()
    });
    let status = drive.await.unwrap();
    stop_producing.cancel();
    producing.await.unwrap();
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
}

/// Output that nobody reads blocks the consumer once the pipe is full, while librdkafka has
/// fetched far ahead: the group's committed offset must never pass what reached the pipe.
/// The check holds at every moment, so it cannot fail from slowness; the SIGKILL test
/// above only catches a commit of unwritten messages when the kill happens to land there.
#[tokio::test(flavor = "multi_thread")]
async fn committed_offsets_never_pass_output_that_blocks() {
    use std::io::Read;
    let world = World::start().await;
    let topic = unique("sensor");
    world.active_topic(&topic, 1).await;
    world.add_user("dave").await;
    world.subscribe_as_admin("dave", &topic).await;
    let group = unique("group");
    let admin = world.kafka.admin().unwrap();
    let committed = async || -> i64 {
        let lag = admin
            .group_lag(&group, std::slice::from_ref(&topic))
            .await
            .unwrap();
        lag.iter().filter_map(|p| p.committed).sum()
    };

    // A few messages the consumer writes and commits while the pipe still has room.
    const FIRST: u64 = 50;
    world.produce(&topic, 0..FIRST).await;
    let mut child = consumer(&world)
        .args([
            "read", "-t", &topic, "--user", "dave", "--group", &group, "--format", "json",
        ])
        .env("STREAMHUB_PASSWORD", USER_PASSWORD)
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while committed().await < FIRST as i64 {
        assert!(
            Instant::now() < deadline,
            "the first {FIRST} messages were never committed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Then far more than a pipe holds (64 KiB, a few hundred lines): the output blocks.
    // In batches: the embedded broker's high watermark may hide the last batch's tail,
    // which only means fewer messages to fetch ahead.
    const TOTAL: u64 = 5000;
    common::Producer::new(world.kafka.clone())
        .send(&topic, FIRST..TOTAL)
        .await;
    // Longer than librdkafka's auto-commit interval (5 s): whatever the consumer stored
    // while blocked has been committed by now.
    let mut highest = 0;
    for _ in 0..80 {
        highest = highest.max(committed().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    highest = highest.max(committed().await);

    let mut written = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut written)
        .unwrap();
    // A line cut by the kill did not reach its reader whole: it does not count.
    let lines: Vec<Value> = written
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let next_unwritten = lines
        .iter()
        .map(|v| v["offset"].as_i64().unwrap() + 1)
        .max()
        .unwrap_or(0);
    eprintln!(
        "{} of {TOTAL} messages reached the pipe; committed {highest}",
        lines.len()
    );
    assert!(
        (lines.len() as u64) < TOTAL,
        "the output never blocked: the pipe took all {TOTAL} messages"
    );
    assert!(
        highest <= next_unwritten,
        "committed offset {highest} passes the {next_unwritten} messages written"
    );
    assert!(highest >= FIRST as i64, "nothing was committed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_menu_taller_than_the_terminal_is_paged() {
    let world = World::start().await;
    let mut names = Vec::new();
    for i in 0..12 {
        let name = unique(&format!("paged{i}"));
        world.active_topic(&name, 1).await;
        names.push(name);
    }
    world.add_user("erin").await;
    let active = world.api.get("/api/topics/active").await;
    let order: Vec<String> = active
        .as_array()
        .expect("a list")
        .iter()
        .map(|t| t["topic_name"].as_str().unwrap().to_owned())
        .filter(|n| names.contains(n))
        .collect();
    assert_eq!(order.len(), 12);

    let mut cmd = consumer(&world);
    cmd.env("STREAMHUB_USER", "erin")
        .env("STREAMHUB_PASSWORD", USER_PASSWORD)
        .env("TERM", "xterm");
    let mut session = Session::spawn(cmd).expect("spawn on a pty");
    session.set_expect_timeout(Some(Duration::from_secs(30)));
    // Eight rows: the prompt and seven lines, of which five are topics.
    session
        .get_process_mut()
        .set_window_size(100, 8)
        .expect("a small terminal");
    let chosen = order[8].clone();
    let drive = tokio::task::spawn_blocking(move || {
        expect(&mut session, "6. Exit");
        session.send("3").unwrap();
        expect(&mut session, "Subscribe to which topic?");
        expect(&mut session, "↓ 7 more");
        // Down past the window's end: it scrolls with the selection.
        for _ in 0..8 {
            session.send("\x1b[B").unwrap();
        }
        expect(&mut session, "↑ 4 more");
        expect(&mut session, "↓ 3 more");
        session.send("\r").unwrap();
        expect(&mut session, &format!("Subscribed to {chosen}"));
        expect(&mut session, "6. Exit");
        session.send("6").unwrap();
        expect(&mut session, "Goodbye.");
        session.expect(Eof).ok();
        session.get_process().wait().unwrap()
    });
    let status = drive.await.unwrap();
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
}
