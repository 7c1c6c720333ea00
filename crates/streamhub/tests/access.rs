//! Subscriptions that bind: `streamhub up --kafka-security scram`, and for each user ×
//! topic × operation (produce, consume, commit, describe) the broker answers allowed or
//! denied exactly as streamhub's state says ([`streamhub_model::access::granted`]), after
//! each lifecycle step and after a restart. The clients are librdkafka's, logged in with
//! the credentials each user fetched once from the API; no credential is in the log or in
//! any other answer.

#![cfg(feature = "embedded-broker")]

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde_json::{Value, json};
use streamhub_testkit::AdminApi;

use common::{GUARD, Up, dashboard_url, start_up, stop, up, wait_until};

const USER_PASSWORD: &str = "Saffron-Glacier-Lantern-47";
const USERS: [&str; 2] = ["alice", "bob"];
const TOPICS: [&str; 2] = ["sensor_data", "payments"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Produce,
    Consume,
    Commit,
    Describe,
}
const OPS: [Op; 4] = [Op::Produce, Op::Consume, Op::Commit, Op::Describe];

/// A user's Kafka login, as the API handed it out.
#[derive(Clone)]
struct Login {
    bootstrap: String,
    username: String,
    password: String,
}

impl Login {
    fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap)
            .set("security.protocol", "sasl_plaintext")
            .set("sasl.mechanism", "SCRAM-SHA-512")
            .set("sasl.username", &self.username)
            .set("sasl.password", &self.password)
            .set("socket.timeout.ms", "10000")
            .set("log_level", "0");
        c
    }
}

/// A refusal by the broker.
fn denied(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::GroupAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
        )
    )
}

/// What the broker answers `login` doing `op` on `topic`: true allowed, false denied.
/// Blocking (librdkafka's calls); run off the runtime.
fn attempt(login: &Login, op: Op, topic: &str) -> Result<bool, String> {
    let timeout = Duration::from_secs(10);
    match op {
        Op::Describe => {
            let consumer: BaseConsumer = login.client().create().map_err(|e| e.to_string())?;
            let md = consumer
                .fetch_metadata(Some(topic), timeout)
                .map_err(|e| e.to_string())?;
            let t = md.topics().first().ok_or("no topic in the answer")?;
            match t.error() {
                None => Ok(true),
                Some(e)
                    if RDKafkaErrorCode::from(e) == RDKafkaErrorCode::TopicAuthorizationFailed =>
                {
                    Ok(false)
                }
                Some(e) => Err(format!("describe {topic}: {:?}", RDKafkaErrorCode::from(e))),
            }
        }
        Op::Produce => {
            let producer: BaseProducer<Report> = login
                .client()
                .set("message.timeout.ms", "10000")
                .set("enable.idempotence", "false")
                .create_with_context(Report::default())
                .map_err(|e| e.to_string())?;
            let record = BaseRecord::<str, str>::to(topic).payload("{}").key("k");
            producer.send(record).map_err(|(e, _)| e.to_string())?;
            let deadline = Instant::now() + timeout;
            while Instant::now() < deadline {
                producer.poll(Duration::from_millis(100));
                if let Some(outcome) = producer.context().0.lock().unwrap().take() {
                    return match outcome {
                        Ok(()) => Ok(true),
                        Err(e) if denied(&e) => Ok(false),
                        Err(e) => Err(format!("produce to {topic}: {e}")),
                    };
                }
            }
            Err(format!(
                "produce to {topic}: no delivery report in {timeout:?}"
            ))
        }
        Op::Consume => {
            // Without Describe the topic is hidden; with it, a fetch says the rest.
            if !attempt(login, Op::Describe, topic)? {
                return Ok(false);
            }
            // Its own group, assigned rather than joined: a fetch, no commit.
            let consumer: BaseConsumer = login
                .client()
                .set("group.id", format!("streamhub-{}", login.username))
                .set("enable.auto.commit", "false")
                .create()
                .map_err(|e| e.to_string())?;
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, 0, Offset::Beginning)
                .map_err(|e| e.to_string())?;
            consumer.assign(&tpl).map_err(|e| e.to_string())?;
            let deadline = Instant::now() + timeout;
            while Instant::now() < deadline {
                match consumer.poll(Duration::from_millis(200)) {
                    Some(Ok(m)) if m.topic() == topic => return Ok(true),
                    Some(Err(e)) if denied(&e) => return Ok(false),
                    _ => {}
                }
            }
            Err(format!(
                "consume {topic}: neither a message nor a refusal in {timeout:?}"
            ))
        }
        Op::Commit => {
            let consumer: BaseConsumer<Errors> = login
                .client()
                .set("group.id", format!("streamhub-{}", login.username))
                .set("enable.auto.commit", "false")
                // A commit waiting for a coordinator gives up after the session timeout.
                .set("session.timeout.ms", "3000")
                .create_with_context(Errors::default())
                .map_err(|e| e.to_string())?;
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, 0, Offset::Offset(0))
                .map_err(|e| e.to_string())?;
            // The coordinator is found in the background: until then a commit waits for it.
            // For a group the user may not use, FindCoordinator answers
            // GROUP_AUTHORIZATION_FAILED and librdkafka goes on waiting without saying so:
            // still waiting after 3 s on loopback counts as refused. A slow coordinator read
            // as a refusal only makes `converge` look again; an allowed commit cannot pass
            // for a refused one.
            let deadline = Instant::now() + Duration::from_secs(3);
            loop {
                match consumer.commit(&tpl, CommitMode::Sync) {
                    Ok(()) => return Ok(true),
                    Err(e) if denied(&e) => return Ok(false),
                    Err(e)
                        if e.rdkafka_error_code()
                            == Some(RDKafkaErrorCode::WaitingForCoordinator)
                            && Instant::now() < deadline =>
                    {
                        let _ = consumer.poll(Duration::from_millis(100));
                        if consumer.context().0.lock().unwrap().iter().any(denied) {
                            return Ok(false);
                        }
                    }
                    Err(e)
                        if e.rdkafka_error_code()
                            == Some(RDKafkaErrorCode::WaitingForCoordinator) =>
                    {
                        return Ok(false);
                    }
                    Err(e) => return Err(format!("commit {topic}: {e}")),
                }
            }
        }
    }
}

/// The errors librdkafka reports beside any call's result.
#[derive(Default)]
struct Errors(Mutex<Vec<KafkaError>>);

impl ClientContext for Errors {
    fn error(&self, error: KafkaError, _reason: &str) {
        self.0.lock().unwrap().push(error);
    }
}

impl rdkafka::consumer::ConsumerContext for Errors {}

/// The delivery report of the one message a produce attempt sends.
#[derive(Default)]
struct Report(Mutex<Option<Result<(), KafkaError>>>);

impl ClientContext for Report {}

impl ProducerContext for Report {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let outcome = result.as_ref().map(|_| ()).map_err(|(e, _)| e.clone());
        *self.0.lock().unwrap() = Some(outcome);
    }
}

type Matrix = BTreeMap<(&'static str, &'static str, Op), bool>;

/// Every cell, as the broker answers it now.
async fn observed(logins: &BTreeMap<&'static str, Login>) -> Matrix {
    let logins = logins.clone();
    tokio::task::spawn_blocking(move || {
        let mut m = Matrix::new();
        for user in USERS {
            for topic in TOPICS {
                for op in OPS {
                    let started = Instant::now();
                    let allowed = attempt(&logins[user], op, topic)
                        .unwrap_or_else(|e| panic!("{user} {op:?} {topic}: {e}"));
                    if started.elapsed() > Duration::from_secs(2) {
                        println!(
                            "{user} {op:?} {topic}: {allowed} after {:?}",
                            started.elapsed()
                        );
                    }
                    m.insert((user, topic, op), allowed);
                }
            }
        }
        m
    })
    .await
    .unwrap()
}

/// What streamhub's state says: a subscriber reads, commits and describes its topic;
/// nobody but the producer writes.
fn expected(subscribed: &[(&str, &str)]) -> Matrix {
    let mut m = Matrix::new();
    for user in USERS {
        for topic in TOPICS {
            for op in OPS {
                let reads = subscribed.contains(&(user, topic));
                m.insert((user, topic, op), op != Op::Produce && reads);
            }
        }
    }
    m
}

async fn credentials(url: &str, user: &str) -> (Login, String) {
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{url}/api/auth/login"))
        .json(&json!({"username": user, "password": USER_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap().to_owned();
    let res = http
        .post(format!("{url}/api/users/{user}/kafka-credentials"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let c: Value = res.json().await.unwrap();
    assert_eq!(c["sasl_mechanism"], "SCRAM-SHA-512");
    let login = Login {
        bootstrap: c["bootstrap_servers"].as_str().unwrap().to_owned(),
        username: c["username"].as_str().unwrap().to_owned(),
        password: c["password"].as_str().unwrap().to_owned(),
    };
    (login, token)
}

async fn topic_id(admin: &AdminApi, name: &str) -> i64 {
    admin
        .get("/api/topics")
        .await
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["topic_name"] == name)
        .and_then(|t| t["topic_id"].as_i64())
        .unwrap()
}

/// Waits until the broker answers every cell as `want` (the reconciler follows each change
/// within a round trip), failing with the cells that differ.
async fn converge(logins: &BTreeMap<&'static str, Login>, want: Matrix, step: &str) {
    let start = Instant::now();
    loop {
        let got = observed(logins).await;
        if got == want {
            println!("{step}: the broker agrees after {:?}", start.elapsed());
            return;
        }
        if start.elapsed() > GUARD {
            let differ: Vec<_> = want.iter().filter(|(k, v)| got.get(k) != Some(v)).collect();
            panic!("{step}: the broker disagrees with streamhub's state on {differ:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_broker_answers_each_user_topic_and_operation_as_streamhubs_state_says() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("up.log");
    let start = |log: &std::path::Path| {
        let mut cmd = up(&data, log);
        cmd.args([
            "--kafka-security",
            "scram",
            "--sample-topics",
            "--rate",
            "20",
        ])
        .env(
            "STREAMHUB_ADMIN_PASSWORD",
            streamhub_testkit::ADMIN_PASSWORD,
        );
        start_up(cmd, log)
    };
    let (child, stdout) = start(&log);
    let mut running = Up(child);
    let url = dashboard_url(&stdout);
    let admin = AdminApi::sign_in(&url).await;
    for user in USERS {
        admin
            .post(
                "/api/users",
                json!({"username": user, "password": USER_PASSWORD, "role": "user"}),
            )
            .await;
    }
    wait_until("the sample topics active", GUARD, async || {
        let active = admin.get("/api/topics/active").await;
        TOPICS.iter().all(|t| {
            active
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["topic_name"] == *t)
        })
    })
    .await;
    let mut logins = BTreeMap::new();
    let mut issued = Vec::new();
    for user in USERS {
        let (login, token) = credentials(&url, user).await;
        issued.push(login.password.clone());
        // The user's page shows their principal, and no password.
        let page = reqwest::Client::new()
            .get(format!("{url}/api/users/{user}/kafka-access"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains(&format!("User:{user}")), "{page}");
        assert!(!page.contains(&login.password));
        logins.insert(user, login);
    }

    // Nobody reads anything before subscribing.
    converge(&logins, expected(&[]), "no subscription").await;

    admin
        .post(
            "/api/subscriptions",
            json!({"user_id": "alice", "topic_name": "sensor_data"}),
        )
        .await;
    admin
        .post(
            "/api/subscriptions",
            json!({"user_id": "bob", "topic_name": "payments"}),
        )
        .await;
    converge(
        &logins,
        expected(&[("alice", "sensor_data"), ("bob", "payments")]),
        "subscribed",
    )
    .await;

    // Unsubscribed: the next fetch is refused.
    let unsubscribed = Instant::now();
    admin
        .call(
            reqwest::Method::DELETE,
            "/api/subscriptions",
            json!({"user_id": "bob", "topic_name": "payments"}),
        )
        .await;
    let bob = logins["bob"].clone();
    let refused_after = tokio::task::spawn_blocking(move || {
        loop {
            if !attempt(&bob, Op::Consume, "payments").unwrap() {
                return unsubscribed.elapsed();
            }
            assert!(
                unsubscribed.elapsed() < GUARD,
                "still read after unsubscribing"
            );
        }
    })
    .await
    .unwrap();
    println!("unsubscribe to refused fetch: {refused_after:?}");
    converge(
        &logins,
        expected(&[("alice", "sensor_data")]),
        "unsubscribed",
    )
    .await;

    // Deactivation takes the producer's Write away; reactivation gives it back. Subscribers
    // of a deactivated topic still read what it holds.
    let payments = topic_id(&admin, "payments").await;
    let writers = async |id: i64| -> Vec<Value> {
        admin.get(&format!("/api/topics/{id}/kafka-access")).await["writers"]
            .as_array()
            .unwrap()
            .clone()
    };
    admin
        .post(&format!("/api/topics/{payments}/deactivate"), json!({}))
        .await;
    wait_until("the producer's Write revoked", GUARD, async || {
        writers(payments).await.is_empty()
    })
    .await;
    admin
        .post(&format!("/api/topics/{payments}/reactivate"), json!({}))
        .await;
    wait_until("the producer's Write granted again", GUARD, async || {
        writers(payments).await == [json!("User:streamhub-producer")]
    })
    .await;

    // After a restart, the same answers.
    stop(&mut running.0);
    let log2 = dir.path().join("up2.log");
    let (child, stdout) = start(&log2);
    running = Up(child);
    let url = dashboard_url(&stdout);
    for login in logins.values_mut() {
        // Same broker address (the same --broker-listen is not kept): follow the new one.
        login.bootstrap = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("broker"))
            .and_then(|l| l.split_whitespace().next())
            .unwrap()
            .to_owned();
    }
    let _admin = AdminApi::sign_in(&url).await;
    converge(
        &logins,
        expected(&[("alice", "sensor_data")]),
        "after a restart",
    )
    .await;

    // Deleting a topic removes every ACL that names it.
    let admin = AdminApi::sign_in(&url).await;
    let payments = topic_id(&admin, "payments").await;
    admin
        .post(&format!("/api/topics/{payments}/deactivate"), json!({}))
        .await;
    admin
        .call(
            reqwest::Method::DELETE,
            &format!("/api/topics/{payments}"),
            json!({}),
        )
        .await;
    let access = admin
        .get(&format!("/api/topics/{payments}/kafka-access"))
        .await;
    assert_eq!(access["acls"], json!([]), "{access}");

    // No credential reached a log.
    for file in [&log, &log2] {
        let text = std::fs::read_to_string(file).unwrap();
        for password in &issued {
            assert!(
                !text.contains(password.as_str()),
                "a password in {}",
                file.display()
            );
        }
    }
    stop(&mut running.0);
}
