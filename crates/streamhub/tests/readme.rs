//! README.md's first steps as written: its `streamhub up` line starts the system, and
//! every `streamhub consumer read` command of its shell blocks runs against it with only
//! the addresses given through the environment. README and command line cannot drift
//! apart unnoticed.

#![cfg(feature = "embedded-broker")]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use streamhub_kafka::KafkaConfig;
use streamhub_kafka::rdkafka::producer::FutureRecord;
use streamhub_testkit::{ADMIN_PASSWORD, AdminApi};

use common::{Up, free_port};

/// The commands of README.md's `sh` blocks that start with `prefix`, split into words
/// (a trailing `# comment` dropped).
fn readme_commands(prefix: &str) -> Vec<Vec<String>> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let mut in_sh = false;
    let mut commands = Vec::new();
    for line in readme.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_sh = !in_sh && trimmed == "```sh";
            continue;
        }
        if !in_sh || !trimmed.starts_with(prefix) {
            continue;
        }
        let command = trimmed.split(" #").next().unwrap_or_default();
        assert!(
            !command.contains(['\'', '"', '\\', '$']),
            "README command needs a shell to split: {command}"
        );
        commands.push(command.split_whitespace().map(str::to_owned).collect());
    }
    commands
}

/// The body README's REST API section sends to create alice: her password is the one a
/// reader would use, and it must pass the service's password rules.
fn readme_alice() -> Value {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let line = readme
        .lines()
        .find(|l| l.contains(r#"-d '{"username":"alice""#))
        .expect("README creates alice with POST /api/users");
    let body = line
        .split_once("-d '")
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(body, _)| body)
        .expect("a quoted JSON body");
    serde_json::from_str(body).expect("README's body for alice is JSON")
}

/// Runs `argv` (without its leading `streamhub`) to its end, within a hang guard.
fn run(argv: &[String], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_streamhub"));
    cmd.args(&argv[1..])
        .env("NO_COLOR", "1")
        .env_remove("STREAMHUB_USER")
        .env_remove("STREAMHUB_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("streamhub runs");
    let pid = child.id();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => output.expect("output"),
        Err(_) => {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            panic!("`{}` did not end within 60 s", argv.join(" "));
        }
    };
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn readme_first_steps_work_as_written() {
    let ups = readme_commands("streamhub up");
    let up = ups
        .iter()
        .find(|c| c.iter().any(|a| a == "--sample-topics"))
        .unwrap_or_else(|| panic!("README starts `streamhub up` with sample topics: {ups:?}"));
    let reads = readme_commands("streamhub consumer read");
    assert!(reads.len() >= 3, "{reads:?}");

    let dir = tempfile::tempdir().unwrap();
    let (admin_port, broker_port) = (free_port(), free_port());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_streamhub"));
    // The data where the test keeps it, the addresses free ports; and a slow producer,
    // so that a read with --timeout sees the topics go quiet.
    cmd.args(&up[1..])
        .arg(format!("--data-dir={}", dir.path().display()))
        .arg(format!("--listen=127.0.0.1:{admin_port}"))
        .arg(format!("--broker-listen=127.0.0.1:{broker_port}"))
        .args(["--ephemeral", "--rate=0.1"])
        .env("STREAMHUB_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut up = Up(cmd.spawn().expect("streamhub up runs"));
    let stdout = up.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    loop {
        let line = lines
            .next()
            .expect("streamhub up announces itself")
            .unwrap();
        if line.contains("streamhub is up") {
            break;
        }
    }
    let admin_url = format!("http://127.0.0.1:{admin_port}");
    let bootstrap = format!("127.0.0.1:{broker_port}");

    // The sample topics become active once the producer has provisioned them.
    let api = AdminApi::sign_in(&admin_url).await;
    let start = Instant::now();
    loop {
        let active = api.get("/api/topics/active").await;
        let names: Vec<&str> = active
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["topic_name"].as_str())
            .collect();
        if [
            "sensor_data",
            "payments",
            "weather",
            "logs",
            "user_activity",
        ]
        .iter()
        .all(|n| names.contains(n))
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the sample topics are not active: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Enough messages for every documented read, without waiting for the slow producer.
    let producer = KafkaConfig::new(bootstrap.clone()).producer().unwrap();
    for seq in 0..12 {
        let value = json!({"topic": "sensor_data", "data_type": "sensor",
            "timestamp": chrono::Utc::now().to_rfc3339(), "producer_id": "readme-test",
            "seq": seq, "payload": {"sensor_id": "s1", "temperature": 20.5}})
        .to_string();
        producer
            .send(
                FutureRecord::to("sensor_data").key("s1").payload(&value),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .expect("message acknowledged");
    }
    // alice, as README's REST API section creates and subscribes her.
    let alice = readme_alice();
    let alice_password = alice["password"].as_str().expect("a password").to_owned();
    api.post("/api/users", alice).await;
    api.post(
        "/api/subscriptions",
        json!({"user_id": "alice", "topic_name": "sensor_data"}),
    )
    .await;

    let env = [
        ("STREAMHUB_ADMIN_URL", admin_url.as_str()),
        ("KAFKA_BOOTSTRAP_SERVERS", bootstrap.as_str()),
        ("STREAMHUB_PASSWORD", alice_password.as_str()),
    ];
    for read in &reads {
        let (code, stdout, stderr) = run(read, &env);
        let command = read.join(" ");
        assert_eq!(code, 0, "`{command}`: {stderr}");
        assert!(!stdout.is_empty(), "`{command}` showed nothing: {stderr}");
        if read.windows(2).any(|w| w == ["--format", "json"]) {
            for line in stdout.lines() {
                let v: serde_json::Value = serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("`{command}`: {e}: {line}"));
                assert_eq!(v["topic"], "sensor_data", "`{command}`: {line}");
            }
        }
    }
}
