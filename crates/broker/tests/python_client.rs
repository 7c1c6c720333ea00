//! kafka-python against the broker: a group of two consumers and a later member resuming
//! from their commits; SCRAM credentials and ACLs managed on a SASL broker. Needs `python3` with kafka-python (`python3 -m pip install
//! kafka-python`); run with `cargo test -p streamhub-broker --test python_client -- --ignored`.

mod common;

use std::path::PathBuf;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3 with kafka-python (python3 -m pip install kafka-python)"]
async fn kafka_python_produces_and_consumes_in_a_group() {
    let importable = Command::new("python3")
        .args(["-c", "import kafka"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        importable,
        "python3 cannot import kafka: python3 -m pip install kafka-python"
    );
    let broker = common::start().await;
    let bootstrap = broker.bootstrap_servers();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/group_check.py");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(bootstrap)
            .output()
            .expect("python3 runs")
    })
    .await
    .expect("python thread");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("ALL OK"),
        "kafka-python check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs python3 with kafka-python (python3 -m pip install kafka-python)"]
async fn kafka_python_authenticates_and_manages_credentials_and_acls() {
    use streamhub_broker::{Broker, BrokerConfig, SaslConfig, SaslUser, Security};
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
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/security_check.py");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script)
            .arg(bootstrap)
            .arg("admin-secret")
            .output()
            .expect("python3 runs")
    })
    .await
    .expect("python thread");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert!(
        output.status.success() && stdout.contains("ALL OK"),
        "kafka-python security check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    broker.shutdown().await;
}
