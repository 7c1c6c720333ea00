//! Fills a metadata store with 10,000 topics and 100,000 subscriptions, then serves the
//! admin service on it for a load generator, and prints the commands to run:
//!
//!     cargo run --release -p streamhub-admin --example seed_load -- <data-dir> [listen]
//!
//! The store is filled once; a second run on the same directory only serves. Topics
//! are `load_00000` … `load_09999` (9,000 active, the rest pending/approved/inactive);
//! users `user_0000` … `user_9999` subscribe to 10 active topics each.

use std::time::Instant;

use anyhow::Context;
use streamhub_admin::{AdminConfig, AdminService, Secret};
use streamhub_model::{Action, DataType, Role};
use streamhub_store::{NewTopic, TopicRef};

const TOPICS: usize = 10_000;
const ACTIVE: usize = 9_000;
const USERS: usize = 10_000;
const SUBSCRIPTIONS_PER_USER: usize = 10;
const PASSWORD: &str = "Quartz-Meadow-Load-42";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .context("usage: seed_load <data-dir> [listen address]")?;
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:5000".into());
    let config = AdminConfig {
        listen,
        admin_password: Some(Secret::new(PASSWORD)),
        producer_secret: Some(Secret::new("load-test-producer-secret")),
        ..AdminConfig::local(&dir)
    };
    // Another engine (`postgres://…`) for comparisons; the data directory keeps the script.
    let config = match std::env::var("STREAMHUB_BENCH_DATABASE") {
        Ok(database) => AdminConfig {
            database: database.into(),
            ..config
        },
        Err(_) => config,
    };
    let handle = AdminService::start(config).await?;
    let store = handle.store().clone();

    let counts = store.counts().await?;
    if counts.live_topics() == 0 {
        let started = Instant::now();
        for i in 0..TOPICS {
            let name = format!("load_{i:05}");
            let topic = store
                .create_topic(
                    "admin",
                    NewTopic {
                        name: name.parse()?,
                        created_by: "admin".into(),
                        partitions: 3,
                        replication_factor: 1,
                        description: format!("load test topic {i}"),
                        data_type: DataType::ALL[i % DataType::ALL.len()],
                        rate_per_second: None,
                        traffic_profile: None,
                    },
                )
                .await?;
            let actions: &[Action] = match i {
                i if i < ACTIVE => &[Action::Approve, Action::Activate],
                i if i % 3 == 0 => &[Action::Approve],
                i if i % 3 == 1 => &[Action::Approve, Action::Activate, Action::Deactivate],
                _ => &[],
            };
            for action in actions {
                store
                    .transition("admin", TopicRef::Id(topic.topic_id), *action, None)
                    .await?;
            }
        }
        println!("{TOPICS} topics in {:.1?}", started.elapsed());
        let started = Instant::now();
        for u in 0..USERS {
            let user = format!("user_{u:04}");
            // Subscriptions belong to existing users; these never sign in.
            store
                .create_user("admin", &user, "not-a-password-hash", Role::User)
                .await?;
            for k in 0..SUBSCRIPTIONS_PER_USER {
                // Spread users over the active topics.
                let topic = (u * 7 + k * 901) % ACTIVE;
                store
                    .subscribe("admin", &user, &format!("load_{topic:05}"))
                    .await?;
            }
        }
        println!(
            "{} subscriptions in {:.1?}",
            USERS * SUBSCRIPTIONS_PER_USER,
            started.elapsed()
        );
    }
    let counts = store.counts().await?;
    println!(
        "store: {} topics ({} active), {} subscriptions",
        counts.live_topics(),
        counts.active,
        counts.subscriptions
    );

    let login: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/api/auth/login", handle.url()))
        .json(&serde_json::json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = login["token"].as_str().context("no token")?;

    let script = std::path::Path::new(&dir).join("subscribe.lua");
    std::fs::write(
        &script,
        format!(
            r#"-- POST /api/subscriptions with random users and active topics.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
request = function()
  local body = string.format('{{"user_id":"bench_%d","topic_name":"load_%05d"}}',
    math.random(0, 999999), math.random(0, {last}))
  return wrk.format(nil, "/api/subscriptions", nil, body)
end
"#,
            last = ACTIVE - 1
        ),
    )?;
    let url = handle.url();
    println!(
        "serving on {url} (pid {}); Ctrl-C stops",
        std::process::id()
    );
    println!("  wrk -t2 -c64 -d20s --latency -H 'Authorization: Bearer {token}' {url}/api/stats");
    println!(
        "  wrk -t2 -c64 -d20s --latency -H 'Authorization: Bearer {token}' '{url}/api/topics?limit=100'"
    );
    println!(
        "  wrk -t2 -c64 -d20s --latency -s {} {url}",
        script.display()
    );
    tokio::signal::ctrl_c().await?;
    handle.stop().await
}
