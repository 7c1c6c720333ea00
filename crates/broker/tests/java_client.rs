//! Apache Kafka's own Java client and command-line tools (kafka-consumer-groups --describe,
//! --list and --delete-offsets, kafka-get-offsets, kafka-consumer-perf-test) against the
//! broker, open and with SASL and ACLs. Needs `java`, `javac`
//! and the jars `scripts/kafka fetch` puts in
//! `${STREAMHUB_CACHE:-~/.cache/streamhub}/kafka-<version>/libs`; run with
//! `cargo test -p streamhub-broker --test java_client -- --ignored`.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

fn kafka_libs() -> PathBuf {
    let cache = std::env::var_os("STREAMHUB_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/streamhub")
        });
    let version = std::env::var("STREAMHUB_KAFKA_VERSION").unwrap_or_else(|_| "4.1.1".into());
    let libs = cache.join(format!("kafka-{version}/libs"));
    assert!(
        libs.join(format!("kafka-clients-{version}.jar")).exists(),
        "no Kafka jars in {}: run scripts/kafka fetch",
        libs.display()
    );
    libs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a JDK and the Apache Kafka jars (scripts/kafka fetch)"]
async fn the_java_client_produces_consumes_and_administers() {
    let libs = kafka_libs();
    let classes = tempfile::tempdir().expect("temp dir");
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/java/ClientCheck.java");
    let classpath = format!("{}/*", libs.display());
    let status = Command::new("javac")
        .arg("-cp")
        .arg(&classpath)
        .arg("-d")
        .arg(classes.path())
        .arg(&source)
        .status()
        .expect("javac runs");
    assert!(status.success(), "javac failed");

    let broker = common::start().await;
    let bootstrap = broker.bootstrap_servers();
    let run_classpath = format!("{classpath}:{}", classes.path().display());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("java")
            .arg("-cp")
            .arg(run_classpath)
            .arg("ClientCheck")
            .arg(bootstrap)
            .output()
            .expect("java runs")
    })
    .await
    .expect("java thread");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("ALL OK"),
        "Java client check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    broker.shutdown().await;
}

/// Runs a Kafka tool's main class with the Kafka jars, off the async runtime.
async fn run_tool(libs: &std::path::Path, class: &str, args: &[&str]) -> Output {
    let classpath = format!("{}/*", libs.display());
    let class = class.to_string();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new("java")
            .arg("-cp")
            .arg(classpath)
            .arg(&class)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("java {class} runs: {e}"))
    })
    .await
    .expect("java thread")
}

/// The tool's standard output, after checking that it succeeded.
fn succeeded(what: &str, output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// kafka-consumer-groups --describe of a group without members: partition to
/// (CURRENT-OFFSET, LOG-END-OFFSET, LAG) of `topic`, and what it printed.
async fn describe(
    libs: &std::path::Path,
    bs: &str,
    group: &str,
    topic: &str,
) -> (BTreeMap<i32, (String, String, String)>, String) {
    let out = run_tool(
        libs,
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        &["--bootstrap-server", bs, "--describe", "--group", group],
    )
    .await;
    let stdout = succeeded("kafka-consumer-groups --describe", &out);
    let rows = stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cols| cols.len() >= 6 && cols[0] == group && cols[1] == topic)
        .map(|cols| {
            (
                cols[2].parse().expect("partition"),
                (cols[3].into(), cols[4].into(), cols[5].into()),
            )
        })
        .collect();
    (rows, stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a JDK and the Apache Kafka jars (scripts/kafka fetch)"]
async fn kafka_s_tools_describe_groups_offsets_and_consume() {
    let libs = kafka_libs();
    let broker = common::start().await;
    let bs = broker.bootstrap_servers();
    let topic = common::topic_name("tools");
    let group = common::topic_name("tools-group");
    common::create_topic(&bs, &topic, 3).await;
    let producer = common::producer(&bs);
    for p in 0..3 {
        common::send_all(
            &producer,
            &topic,
            p,
            &common::payloads(&format!("p{p}"), 30),
        )
        .await;
    }
    // The group committed part of the topic: 10 of partition 0, all of 1, none of 2.
    let committed = [(0, 10i64), (1, 30), (2, 0)];
    {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bs)
            .set("group.id", &group)
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for (p, o) in committed {
            tpl.add_partition_offset(&topic, p, Offset::Offset(o))
                .expect("partition");
        }
        consumer.commit(&tpl, CommitMode::Sync).expect("commit");
    }

    // kafka-consumer-groups --describe: CURRENT-OFFSET, LOG-END-OFFSET and LAG per partition.
    let expected: BTreeMap<i32, (String, String, String)> = committed
        .iter()
        .map(|&(p, o)| (p, (o.to_string(), "30".into(), (30 - o).to_string())))
        .collect();
    let (rows, stdout) = describe(&libs, &bs, &group, &topic).await;
    assert_eq!(
        rows, expected,
        "kafka-consumer-groups --describe printed:\n{stdout}"
    );

    // kafka-consumer-groups --delete-offsets (OffsetDelete) of partition 0.
    let out = run_tool(
        &libs,
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        &[
            "--bootstrap-server",
            &bs,
            "--delete-offsets",
            "--group",
            &group,
            "--topic",
            &format!("{topic}:0"),
        ],
    )
    .await;
    let stdout = succeeded("kafka-consumer-groups --delete-offsets", &out);
    assert!(
        stdout.contains("Request succeeded") && !stdout.contains("Error"),
        "kafka-consumer-groups --delete-offsets printed:\n{stdout}"
    );
    let (rows, stdout) = describe(&libs, &bs, &group, &topic).await;
    let mut expected = expected;
    expected.remove(&0);
    assert_eq!(rows, expected, "after --delete-offsets:\n{stdout}");

    // kafka-consumer-groups --list names the group.
    let out = run_tool(
        &libs,
        "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
        &["--bootstrap-server", &bs, "--list"],
    )
    .await;
    let stdout = succeeded("kafka-consumer-groups --list", &out);
    assert!(
        stdout.lines().any(|l| l.trim() == group),
        "kafka-consumer-groups --list printed:\n{stdout}"
    );

    // kafka-get-offsets: the end offsets, then the earliest.
    for (time, want) in [("-1", 30), ("-2", 0)] {
        let out = run_tool(
            &libs,
            "org.apache.kafka.tools.GetOffsetShell",
            &["--bootstrap-server", &bs, "--topic", &topic, "--time", time],
        )
        .await;
        let stdout = succeeded("kafka-get-offsets", &out);
        let mut lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
        lines.sort();
        let expected: Vec<String> = (0..3).map(|p| format!("{topic}:{p}:{want}")).collect();
        assert_eq!(
            lines, expected,
            "kafka-get-offsets --time {time} printed:\n{stdout}"
        );
    }

    // kafka-consumer-perf-test: a group consumer reads all 90 messages.
    let perf_group = format!("{group}-perf");
    let out = run_tool(
        &libs,
        "org.apache.kafka.tools.ConsumerPerformance",
        &[
            "--bootstrap-server",
            &bs,
            "--topic",
            &topic,
            "--group",
            &perf_group,
            "--messages",
            "90",
            "--timeout",
            "60000",
        ],
    )
    .await;
    let stdout = succeeded("kafka-consumer-perf-test", &out);
    // start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, ...
    let consumed: Vec<i64> = stdout
        .lines()
        .filter_map(|l| l.split(',').nth(4))
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    assert_eq!(
        consumed,
        vec![90],
        "kafka-consumer-perf-test printed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs a JDK and the Apache Kafka jars (scripts/kafka fetch)"]
async fn the_java_client_authenticates_and_manages_credentials_and_acls() {
    use streamhub_broker::{Broker, BrokerConfig, SaslConfig, SaslUser, Security};
    let libs = kafka_libs();
    let classes = tempfile::tempdir().expect("temp dir");
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/java/SecurityCheck.java");
    let classpath = format!("{}/*", libs.display());
    let status = Command::new("javac")
        .arg("-cp")
        .arg(&classpath)
        .arg("-d")
        .arg(classes.path())
        .arg(&source)
        .status()
        .expect("javac runs");
    assert!(status.success(), "javac failed");

    let mut sasl = SaslConfig::new();
    sasl.super_users = vec!["User:admin".into()];
    sasl.users = vec![SaslUser {
        name: "admin".into(),
        password: "admin-secret".into(),
    }];
    let broker = Broker::start(BrokerConfig {
        security: Security::Sasl(sasl),
        ..BrokerConfig::ephemeral()
    })
    .await
    .expect("broker starts");
    let bootstrap = broker.bootstrap_servers();
    let run_classpath = format!("{classpath}:{}", classes.path().display());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("java")
            .arg("-cp")
            .arg(run_classpath)
            .arg("SecurityCheck")
            .arg(bootstrap)
            .arg("admin-secret")
            .output()
            .expect("java runs")
    })
    .await
    .expect("java thread");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("ALL OK"),
        "Java security check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    broker.shutdown().await;
}
