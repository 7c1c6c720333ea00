//! Apache Kafka's own Java client against the broker. Needs `java`, `javac` and the jars
//! `scripts/kafka fetch` puts in `${STREAMHUB_CACHE:-~/.cache/streamhub}/kafka-<version>/libs`;
//! run with `cargo test -p streamhub-broker --test java_client -- --ignored`.

mod common;

use std::path::PathBuf;
use std::process::Command;

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
