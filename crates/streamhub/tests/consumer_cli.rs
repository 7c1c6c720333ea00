//! `streamhub consumer read` through the real binary against the embedded broker: the
//! wiring, exit codes, one-line errors and a closed pipe. The consumer crate's own tests
//! (crates/consumer/tests) cover the admin service, SIGKILL and the interactive menu.

#![cfg(feature = "embedded-broker")]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use streamhub_kafka::broker::{BrokerConfig, EmbeddedBroker};
use streamhub_kafka::rdkafka::producer::FutureRecord;
use streamhub_kafka::{KafkaConfig, TopicSpec};

fn streamhub(bootstrap: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_streamhub"));
    cmd.env("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
        .env("NO_COLOR", "1")
        .env_remove("STREAMHUB_USER")
        .env_remove("STREAMHUB_PASSWORD")
        .env_remove("STREAMHUB_TOKEN")
        .stdin(Stdio::null());
    cmd
}

async fn topic_with_messages(kafka: &KafkaConfig, name: &str, count: u64) {
    kafka
        .admin()
        .unwrap()
        .ensure_topic(&TopicSpec::new(name, 1, 1))
        .await
        .unwrap();
    let producer = kafka.producer().unwrap();
    for seq in 0..count {
        let value = format!(
            r#"{{"topic":"{name}","data_type":"generic","timestamp":"2026-11-28T18:00:00Z","producer_id":"p","seq":{seq},"payload":{{}}}}"#
        );
        producer
            .send(
                FutureRecord::to(name).key("k").payload(&value),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn consumer_read_through_the_binary() {
    let broker = EmbeddedBroker::start(BrokerConfig::ephemeral())
        .await
        .unwrap();
    let bootstrap = broker.bootstrap_servers();
    let kafka = KafkaConfig::new(bootstrap.clone());

    // An unknown topic: exit 1, one line on stderr, nothing on stdout.
    let out = streamhub(&bootstrap)
        .args(["consumer", "read", "--direct", "-t", "no_such_topic"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("'no_such_topic' does not exist"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    // JSON lines, stopping at --max-messages with exit 0.
    topic_with_messages(&kafka, "smoke", 5).await;
    let out = streamhub(&bootstrap)
        .args([
            "consumer",
            "read",
            "--direct",
            "-t",
            "smoke",
            "--format",
            "json",
            "--max-messages",
            "5",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 5, "{stdout}");
    for (seq, line) in stdout.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["envelope"]["seq"], seq as u64);
        assert_eq!(v["offset"], seq as u64);
    }

    // --validate: the generic payload `{}` lacks every field; exit 1 with the count.
    let out = streamhub(&bootstrap)
        .args([
            "consumer",
            "read",
            "--direct",
            "-t",
            "smoke",
            "--max-messages",
            "2",
            "--validate",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stdout.contains("✖ invalid: \"id\" is a required property"),
        "{stdout}"
    );
    assert!(
        stderr
            .trim_end()
            .ends_with("error: 2 of 2 messages do not match their data type's schema"),
        "{stderr}"
    );
    // A valid value: exit 0 with the summary.
    let valid = r#"{"topic":"valid","data_type":"generic","timestamp":"2026-11-28T18:00:00Z","producer_id":"p","seq":0,"payload":{"id":"entity-0001","value":1.5,"tags":["beta"]}}"#;
    kafka
        .admin()
        .unwrap()
        .ensure_topic(&TopicSpec::new("valid", 1, 1))
        .await
        .unwrap();
    kafka
        .producer()
        .unwrap()
        .send(
            FutureRecord::to("valid").key("k").payload(valid),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .unwrap();
    let out = streamhub(&bootstrap)
        .args([
            "consumer",
            "read",
            "--direct",
            "-t",
            "valid",
            "-c",
            "1",
            "--validate",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("schema check: 1 message, all valid"),
        "{stderr}"
    );

    // `| head -1`: the closed pipe ends the read with success.
    topic_with_messages(&kafka, "piped", 3000).await;
    let mut child = streamhub(&bootstrap)
        .args([
            "consumer",
            "read",
            "--direct",
            "-t",
            "piped",
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
    assert!(first.contains("\"seq\":0"), "{first}");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?} {stderr}", out.status);
    assert!(!stderr.to_lowercase().contains("error"), "{stderr}");
}
