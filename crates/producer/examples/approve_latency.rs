//! Approve → active latency: embedded broker, admin service and producer in this process;
//! 20 topics approved one after the other, each timed from the approval request until the
//! admin service reports it active. Prints each latency and the median.
//!
//!   cargo run --release -p streamhub-producer --example approve_latency

use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::{Value, json};
use streamhub_admin::{AdminConfig, AdminService, Secret};
use streamhub_kafka::broker::{BrokerConfig, EmbeddedBroker};
use tokio_util::sync::CancellationToken;

const TOPICS: usize = 20;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: streamhub_producer::ProducerArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let broker = EmbeddedBroker::start(BrokerConfig::ephemeral()).await?;
    let dir = tempfile::tempdir()?;
    let mut config = AdminConfig::local(dir.path());
    config.producer_secret = Some(Secret::new("bench-key"));
    config.admin_password = Some(Secret::new("Quartz-Meadow-Bench-42"));
    let admin = AdminService::start(config).await?;
    let url = admin.url().to_owned();
    let args = Cli::parse_from([
        "producer",
        "--admin-url",
        &url,
        "-b",
        &broker.bootstrap_servers(),
        "--producer-secret",
        "bench-key",
        "--rate",
        "10",
    ])
    .args
    .into_config()?;
    let shutdown = CancellationToken::new();
    let producer = tokio::spawn(streamhub_producer::run(args, shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{url}/api/auth/login"))
        .json(&json!({"username": "admin", "password": "Quartz-Meadow-Bench-42"}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["token"].as_str().unwrap_or_default().to_owned();
    let mut latencies = Vec::new();
    for i in 0..TOPICS {
        let name = format!("latency_{i}_{:06x}", rand::random::<u32>() & 0xffffff);
        let created: Value = http
            .post(format!("{url}/api/topics"))
            .bearer_auth(&token)
            .json(&json!({"name": name, "partitions": 3}))
            .send()
            .await?
            .json()
            .await?;
        let id = created["topic_id"].as_i64().unwrap_or_default();
        let start = Instant::now();
        http.post(format!("{url}/api/topics/{id}/approve"))
            .bearer_auth(&token)
            .send()
            .await?
            .error_for_status()?;
        loop {
            let t: Value = http
                .get(format!("{url}/api/topics/{id}"))
                .bearer_auth(&token)
                .send()
                .await?
                .json()
                .await?;
            if t["status"] == "active" {
                break;
            }
            if start.elapsed() > Duration::from_secs(30) {
                anyhow::bail!("{name} not active after 30 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        println!("{name}: {ms:.0} ms");
        latencies.push(ms);
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "approve -> active over {TOPICS} topics: median {:.0} ms, min {:.0} ms, max {:.0} ms",
        latencies[TOPICS / 2],
        latencies[0],
        latencies[TOPICS - 1]
    );
    shutdown.cancel();
    producer.await??;
    admin.stop().await?;
    broker.shutdown().await?;
    Ok(())
}
