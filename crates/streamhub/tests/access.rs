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

/// The two topics of a run: sensor data and payments.
type Topics = [&'static str; 2];

type Matrix = BTreeMap<(&'static str, &'static str, Op), bool>;

/// Every cell, as the broker answers it now.
async fn observed(logins: &BTreeMap<&'static str, Login>, topics: Topics) -> Matrix {
    let logins = logins.clone();
    tokio::task::spawn_blocking(move || {
        let mut m = Matrix::new();
        for user in USERS {
            for topic in topics {
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
fn expected(topics: Topics, subscribed: &[(&str, &str)]) -> Matrix {
    let mut m = Matrix::new();
    for user in USERS {
        for topic in topics {
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

/// Apache Kafka's Java client, compiled from `tests/java/AccessCheck.java` against the
/// jars `scripts/kafka fetch` puts in the cache.
struct Java {
    classpath: String,
    _classes: tempfile::TempDir,
}

impl Java {
    fn compile() -> Java {
        let cache = std::env::var_os("STREAMHUB_CACHE")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::PathBuf::from(std::env::var_os("HOME").expect("HOME"))
                    .join(".cache/streamhub")
            });
        let version = std::env::var("STREAMHUB_KAFKA_VERSION").unwrap_or_else(|_| "4.1.1".into());
        let libs = cache.join(format!("kafka-{version}/libs"));
        assert!(
            libs.join(format!("kafka-clients-{version}.jar")).exists(),
            "no Kafka jars in {}: run scripts/kafka fetch",
            libs.display()
        );
        let classes = tempfile::tempdir().unwrap();
        let jars = format!("{}/*", libs.display());
        let status = std::process::Command::new("javac")
            .args(["-cp", &jars, "-d"])
            .arg(classes.path())
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/java/AccessCheck.java"
            ))
            .status()
            .expect("javac runs");
        assert!(status.success(), "javac failed");
        Java {
            classpath: format!("{jars}:{}", classes.path().display()),
            _classes: classes,
        }
    }

    /// Every cell, as the broker answers the Java client.
    async fn observed(&self, logins: &BTreeMap<&'static str, Login>, topics: Topics) -> Matrix {
        let mut m = Matrix::new();
        for user in USERS {
            let login = &logins[user];
            let mut args = vec![
                "-cp".to_owned(),
                self.classpath.clone(),
                "AccessCheck".to_owned(),
                login.bootstrap.clone(),
                login.username.clone(),
                login.password.clone(),
            ];
            args.extend(topics.iter().map(|t| t.to_string()));
            let out = tokio::process::Command::new("java")
                .args(&args)
                .output()
                .await
                .expect("java runs");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "AccessCheck as {user}: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            // The client's own log lines go to stdout too: only the answers count.
            let answers = stdout.lines().filter_map(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                let topic = *topics.iter().find(|t| cols.first() == Some(*t))?;
                (cols.len() == 3 && matches!(cols[2], "allowed" | "denied"))
                    .then_some((topic, cols))
            });
            for (topic, cols) in answers {
                let op = match cols[1] {
                    "produce" => Op::Produce,
                    "consume" => Op::Consume,
                    "commit" => Op::Commit,
                    "describe" => Op::Describe,
                    other => panic!("AccessCheck printed {other}"),
                };
                m.insert((user, topic, op), cols[2] == "allowed");
            }
        }
        m
    }
}

/// Waits until the broker answers every cell as `want` (the reconciler follows each change
/// within a round trip), to librdkafka and, when given, to the Java client; fails with the
/// cells that differ.
async fn converge(
    logins: &BTreeMap<&'static str, Login>,
    topics: Topics,
    want: Matrix,
    step: &str,
    java: Option<&Java>,
) {
    let start = Instant::now();
    loop {
        let got = observed(logins, topics).await;
        let got = match java {
            Some(java) if got == want => java.observed(logins, topics).await,
            _ => got,
        };
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

/// streamhub running against a broker: its dashboard URL and the bootstrap servers users
/// are told, and what to stop.
struct Running {
    url: String,
    bootstrap: String,
    processes: Vec<Up>,
}

/// Starts streamhub (again) on the same data.
trait Launch {
    fn start(&mut self, round: usize) -> Running;
    /// Every log file so far.
    fn logs(&self) -> Vec<std::path::PathBuf>;
}

/// `streamhub up --kafka-security scram`: the embedded broker with SASL and ACLs.
struct EmbeddedUp {
    dir: std::path::PathBuf,
    logs: Vec<std::path::PathBuf>,
}

impl Launch for EmbeddedUp {
    fn start(&mut self, round: usize) -> Running {
        let log = self.dir.join(format!("up{round}.log"));
        let mut cmd = up(&self.dir.join("data"), &log);
        cmd.args(["--kafka-security", "scram", "--rate", "20"]).env(
            "STREAMHUB_ADMIN_PASSWORD",
            streamhub_testkit::ADMIN_PASSWORD,
        );
        let (child, stdout) = start_up(cmd, &log);
        self.logs.push(log);
        let bootstrap = stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("broker"))
            .and_then(|l| l.split_whitespace().next())
            .expect("the broker's address on stdout")
            .to_owned();
        Running {
            url: dashboard_url(&stdout),
            bootstrap,
            processes: vec![Up(child)],
        }
    }

    fn logs(&self) -> Vec<std::path::PathBuf> {
        self.logs.clone()
    }
}

/// `streamhub admin --kafka-security scram` and `streamhub producer`, each logged in with
/// SCRAM, against Apache Kafka with its StandardAuthorizer (scripts/kafka start --sasl).
struct ApacheKafka {
    dir: std::path::PathBuf,
    bootstrap: String,
    admin_password: String,
    producer_password: String,
    port: u16,
    logs: Vec<std::path::PathBuf>,
}

impl ApacheKafka {
    fn kafka_flags<'a>(&'a self, user: &'a str, password: &'a str) -> Vec<&'a str> {
        vec![
            "--bootstrap-servers",
            &self.bootstrap,
            "--security-protocol",
            "sasl_plaintext",
            "--sasl-mechanism",
            "SCRAM-SHA-512",
            "--sasl-username",
            user,
            "--sasl-password",
            password,
        ]
    }
}

impl Launch for ApacheKafka {
    fn start(&mut self, round: usize) -> Running {
        let url = format!("http://127.0.0.1:{}", self.port);
        let spawn = |args: Vec<&str>, log: &std::path::Path| {
            std::process::Command::new(env!("CARGO_BIN_EXE_streamhub"))
                .args(args)
                .env(
                    "STREAMHUB_ADMIN_PASSWORD",
                    streamhub_testkit::ADMIN_PASSWORD,
                )
                .env("PRODUCER_SECRET", common::PRODUCER_SECRET)
                .env("RUST_LOG", "debug")
                .env("NO_COLOR", "1")
                .env_remove("DATABASE_URL")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::fs::File::create(log).unwrap())
                .spawn()
                .unwrap()
        };
        let admin_log = self.dir.join(format!("admin{round}.log"));
        let producer_log = self.dir.join(format!("producer{round}.log"));
        let data = self.dir.join("data");
        let listen = format!("127.0.0.1:{}", self.port);
        let mut admin_args = vec![
            "admin",
            "--listen",
            &listen,
            "--data-dir",
            data.to_str().unwrap(),
            "--kafka-security",
            "scram",
        ];
        admin_args.extend(self.kafka_flags("streamhub-admin", &self.admin_password));
        let admin = Up(spawn(admin_args, &admin_log));
        let mut producer_args = vec!["producer", "--admin-url", &url, "--rate", "20"];
        producer_args.extend(self.kafka_flags("streamhub-producer", &self.producer_password));
        let producer = Up(spawn(producer_args, &producer_log));
        self.logs.extend([admin_log, producer_log]);
        Running {
            url,
            bootstrap: self.bootstrap.clone(),
            processes: vec![producer, admin],
        }
    }

    fn logs(&self) -> Vec<std::path::PathBuf> {
        self.logs.clone()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_embedded_broker_answers_each_user_topic_and_operation_as_streamhubs_state_says() {
    let dir = tempfile::tempdir().unwrap();
    let mut launch = EmbeddedUp {
        dir: dir.path().to_owned(),
        logs: Vec::new(),
    };
    the_broker_answers_as_streamhubs_state_says(&mut launch, None).await;
}

/// The same, and Apache Kafka's Java client gets the same answers from the embedded broker.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs a JDK and the Apache Kafka jars (scripts/kafka fetch)"]
async fn the_embedded_broker_answers_the_java_client_as_streamhubs_state_says() {
    let java = Java::compile();
    let dir = tempfile::tempdir().unwrap();
    let mut launch = EmbeddedUp {
        dir: dir.path().to_owned(),
        logs: Vec::new(),
    };
    the_broker_answers_as_streamhubs_state_says(&mut launch, Some(&java)).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs Apache Kafka with SASL: set STREAMHUB_TEST_KAFKA_SASL (scripts/test does)"]
async fn apache_kafka_answers_each_user_topic_and_operation_as_streamhubs_state_says() {
    let bootstrap = std::env::var("STREAMHUB_TEST_KAFKA_SASL")
        .expect("STREAMHUB_TEST_KAFKA_SASL: Apache Kafka with SASL (scripts/kafka start --sasl)");
    let admin_password = std::env::var("STREAMHUB_TEST_KAFKA_SASL_PASSWORD")
        .unwrap_or_else(|_| "streamhub-admin-secret".into());
    // The producer's principal, as an operator creates it on their cluster.
    let admin_login = streamhub_kafka::KafkaConfig::new(bootstrap.clone())
        .with("security.protocol", "sasl_plaintext")
        .with("sasl.mechanism", "SCRAM-SHA-512")
        .with("sasl.username", "streamhub-admin")
        .with("sasl.password", &admin_password);
    let producer_password = "producer-Walnut-Prism-62".to_owned();
    streamhub_kafka::SecurityAdmin::new(&admin_login)
        .unwrap()
        .set_scram_password(
            "streamhub-producer",
            &streamhub_kafka::Secret::new(producer_password.clone()),
            streamhub_kafka::ScramMechanism::Sha512,
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut launch = ApacheKafka {
        dir: dir.path().to_owned(),
        bootstrap,
        admin_password,
        producer_password,
        port: common::free_port(),
        logs: Vec::new(),
    };
    // librdkafka and Apache Kafka's own Java client, which the ignored run has.
    let java = Java::compile();
    the_broker_answers_as_streamhubs_state_says(&mut launch, Some(&java)).await;
}

async fn the_broker_answers_as_streamhubs_state_says(
    launch: &mut impl Launch,
    java: Option<&Java>,
) {
    let mut running = launch.start(1);
    let url = running.url.clone();
    wait_until("the admin service", GUARD, async || {
        reqwest::get(format!("{url}/api/health"))
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let admin = AdminApi::sign_in(&url).await;
    // Names of this run: a shared broker keeps the topics of earlier runs.
    let suffix = streamhub_testkit::unique("");
    let topics: Topics = [
        Box::leak(format!("sensor_data{suffix}").into_boxed_str()),
        Box::leak(format!("payments{suffix}").into_boxed_str()),
    ];
    let [sensors, payments] = topics;
    for user in USERS {
        admin
            .post(
                "/api/users",
                json!({"username": user, "password": USER_PASSWORD, "role": "user"}),
            )
            .await;
    }
    for topic in topics {
        let id = admin
            .post("/api/topics", json!({"name": topic, "partitions": 1}))
            .await["topic_id"]
            .as_i64()
            .unwrap();
        admin
            .post(&format!("/api/topics/{id}/approve"), json!({}))
            .await;
    }
    wait_until("both topics active", GUARD, async || {
        let active = admin.get("/api/topics/active").await;
        topics.iter().all(|t| {
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
        assert_eq!(login.bootstrap, running.bootstrap);
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
    converge(
        &logins,
        topics,
        expected(topics, &[]),
        "no subscription",
        java,
    )
    .await;

    admin
        .post(
            "/api/subscriptions",
            json!({"user_id": "alice", "topic_name": sensors}),
        )
        .await;
    admin
        .post(
            "/api/subscriptions",
            json!({"user_id": "bob", "topic_name": payments}),
        )
        .await;
    converge(
        &logins,
        topics,
        expected(topics, &[("alice", sensors), ("bob", payments)]),
        "subscribed",
        java,
    )
    .await;

    // Unsubscribed: once the API has answered, the next fetch is refused.
    admin
        .call(
            reqwest::Method::DELETE,
            "/api/subscriptions",
            json!({"user_id": "bob", "topic_name": payments}),
        )
        .await;
    let answered = Instant::now();
    let bob = logins["bob"].clone();
    let refused_after = tokio::task::spawn_blocking(move || {
        loop {
            if !attempt(&bob, Op::Consume, payments).unwrap() {
                return answered.elapsed();
            }
            assert!(answered.elapsed() < GUARD, "still read after unsubscribing");
        }
    })
    .await
    .unwrap();
    println!("unsubscribe answered to refused fetch: {refused_after:?}");
    converge(
        &logins,
        topics,
        expected(topics, &[("alice", sensors)]),
        "unsubscribed",
        java,
    )
    .await;

    // Deactivation takes the producer's Write away; reactivation gives it back. Subscribers
    // of a deactivated topic still read what it holds.
    let payments_id = topic_id(&admin, payments).await;
    let writers = async |id: i64| -> Vec<Value> {
        admin.get(&format!("/api/topics/{id}/kafka-access")).await["writers"]
            .as_array()
            .unwrap()
            .clone()
    };
    admin
        .post(&format!("/api/topics/{payments_id}/deactivate"), json!({}))
        .await;
    assert_eq!(writers(payments_id).await, Vec::<Value>::new());
    admin
        .post(&format!("/api/topics/{payments_id}/reactivate"), json!({}))
        .await;
    assert_eq!(
        writers(payments_id).await,
        [json!("User:streamhub-producer")]
    );

    // After a restart, the same answers.
    for p in &mut running.processes {
        stop(&mut p.0);
    }
    running = launch.start(2);
    let url = running.url.clone();
    wait_until("the admin service again", GUARD, async || {
        reqwest::get(format!("{url}/api/health"))
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    for login in logins.values_mut() {
        login.bootstrap = running.bootstrap.clone();
    }
    converge(
        &logins,
        topics,
        expected(topics, &[("alice", sensors)]),
        "after a restart",
        java,
    )
    .await;

    // Deleting a topic removes every ACL that names it.
    let admin = AdminApi::sign_in(&url).await;
    admin
        .post(&format!("/api/topics/{payments_id}/deactivate"), json!({}))
        .await;
    admin
        .call(
            reqwest::Method::DELETE,
            &format!("/api/topics/{payments_id}"),
            json!({}),
        )
        .await;
    let access = admin
        .get(&format!("/api/topics/{payments_id}/kafka-access"))
        .await;
    assert_eq!(access["acls"], json!([]), "{access}");

    // No credential reached a log.
    for file in launch.logs() {
        let text = std::fs::read_to_string(&file).unwrap();
        for password in &issued {
            assert!(
                !text.contains(password.as_str()),
                "a password in {}",
                file.display()
            );
        }
    }
    for p in &mut running.processes {
        stop(&mut p.0);
    }
}
