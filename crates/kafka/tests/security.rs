//! SCRAM credentials and ACLs managed with `SecurityAdmin`, checked by what librdkafka clients
//! of the managed user may then do: on the embedded broker in SASL mode, and (ignored
//! unless configured) on Apache Kafka with SASL:
//! `STREAMHUB_TEST_KAFKA_SASL=$(scripts/kafka start --sasl) cargo test -p streamhub-kafka
//! --test security -- --ignored` (password in STREAMHUB_TEST_KAFKA_SASL_PASSWORD, default
//! that of scripts/kafka).

use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
#[cfg(feature = "embedded-broker")]
use streamhub_kafka::broker::{BrokerConfig, EmbeddedBroker, SaslConfig, SaslUser, Security};
use streamhub_kafka::{KafkaConfig, KafkaError, ScramMechanism, SecurityAdmin, TopicSpec};
use streamhub_model::Secret;
use streamhub_model::access::{Acl, Operation, ResourceType, principal_of};
use streamhub_model::consumer_group_of;

const ADMIN: &str = "streamhub-admin";
/// scripts/kafka's default for STREAMHUB_KAFKA_ADMIN_PASSWORD.
const DEFAULT_KAFKA_ADMIN_PASSWORD: &str = "streamhub-admin-secret";

fn sasl(bootstrap: &str, mechanism: &str, user: &str, password: &str) -> KafkaConfig {
    KafkaConfig::new(bootstrap)
        .with("security.protocol", "sasl_plaintext")
        .with("sasl.mechanism", mechanism)
        .with("sasl.username", user)
        .with("sasl.password", password)
        .with_timeout(Duration::from_secs(10))
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

/// A producer that fails fast: no idempotence (which would need IDEMPOTENT_WRITE on the
/// cluster), one attempt per message within a few seconds.
fn producer(config: &KafkaConfig) -> FutureProducer {
    let mut c: ClientConfig = config.client_config();
    c.set("enable.idempotence", "false")
        .set("acks", "all")
        .set("message.timeout.ms", "5000")
        .set("topic.metadata.refresh.interval.ms", "500");
    c.create().expect("producer")
}

async fn produce(producer: &FutureProducer, topic: &str, payload: &str) -> Result<(), RdError> {
    producer
        .send(
            FutureRecord::<(), str>::to(topic).payload(payload),
            Duration::from_secs(5),
        )
        .await
        .map(|_| ())
        .map_err(|(e, _)| e)
}

/// A consumer of `topic` from the start in the user's group (librdkafka reports a topic it
/// may not describe for subscriptions only).
fn consumer(config: &KafkaConfig, group: &str, topic: &str) -> BaseConsumer {
    let mut c: ClientConfig = config.client_config();
    c.set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("topic.metadata.refresh.interval.ms", "500")
        .set("fetch.wait.max.ms", "100");
    c.set("auto.offset.reset", "earliest");
    let consumer: BaseConsumer = c.create().expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    consumer
}

/// Polls until a message arrives (Ok(payload)) or an error does, within `within`.
async fn next(consumer: BaseConsumer, within: Duration) -> (BaseConsumer, Result<String, String>) {
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + within;
        let outcome = loop {
            if Instant::now() >= deadline {
                break Err("nothing within the bound".to_owned());
            }
            match consumer.poll(Duration::from_millis(200)) {
                None => continue,
                Some(Ok(m)) => {
                    use rdkafka::Message;
                    break Ok(String::from_utf8_lossy(m.payload().unwrap_or_default()).into());
                }
                Some(Err(e)) => break Err(format!("{e:?}")),
            }
        };
        (consumer, outcome)
    })
    .await
    .expect("poll thread")
}

fn is_topic_authorization_failed(e: &RdError) -> bool {
    e.rdkafka_error_code() == Some(RDKafkaErrorCode::TopicAuthorizationFailed)
}

/// Whether `config` can log in: metadata within a few seconds.
async fn can_log_in(config: &KafkaConfig) -> bool {
    let client: BaseConsumer = config.client_config().create().expect("client");
    tokio::task::spawn_blocking(move || client.fetch_metadata(None, Duration::from_secs(4)).is_ok())
        .await
        .expect("metadata thread")
}

/// The ACLs of `principal` once they are `expected`, or as they are after 10 s: Apache
/// Kafka answers DescribeAcls from the broker's copy of the metadata, which follows the
/// controller's by a moment.
async fn acls_of(admin: &SecurityAdmin, principal: &str, expected: &[Acl]) -> Vec<Acl> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mine: Vec<Acl> = admin
            .acls()
            .await
            .expect("ACLs")
            .into_iter()
            .filter(|a| a.principal == principal)
            .collect();
        if mine == expected || Instant::now() >= deadline {
            return mine;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The whole scenario against a SASL cluster whose super user is `ADMIN`.
async fn scenario(bootstrap: &str, admin_password: &str) {
    let admin_config = sasl(bootstrap, "SCRAM-SHA-512", ADMIN, admin_password);
    let admin = SecurityAdmin::new(&admin_config).expect("security admin");
    // The admin's own login first: a wrong password fails here with its own message.
    admin.scram_users().await.expect("the admin logs in");
    let topic = unique("secured");
    admin_config
        .admin()
        .expect("topic admin")
        .ensure_topic(&TopicSpec::new(&topic, 1, 1))
        .await
        .expect("topic created by the super user");

    // A user's credentials, both mechanisms.
    let user = unique("alice");
    let password = Secret::new(format!("{user}-pw"));
    for mechanism in ScramMechanism::ALL {
        admin
            .set_scram_password(&user, &password, mechanism)
            .await
            .expect("credential set");
    }
    let users = admin.scram_users().await.expect("users");
    assert!(
        users.contains(&(user.clone(), ScramMechanism::ALL.to_vec())),
        "{users:?}"
    );
    assert!(users.iter().any(|(u, _)| u == ADMIN), "{users:?}");
    let as_user = sasl(bootstrap, "SCRAM-SHA-256", &user, password.expose());
    let principal = principal_of(&user);
    let group = consumer_group_of(&user);
    let group_read = Acl::allow(&principal, Operation::Read, ResourceType::Group, &group);
    admin
        .create_acls(std::slice::from_ref(&group_read))
        .await
        .expect("group ACL created");

    // Logged in, but no ACL on the topic: writes and reads are refused.
    let producer = producer(&as_user);
    let err = produce(&producer, &topic, "refused")
        .await
        .expect_err("no ACL yet: produce refused");
    assert!(is_topic_authorization_failed(&err), "{err:?}");
    let (_, read) = next(consumer(&as_user, &group, &topic), Duration::from_secs(10)).await;
    let read_err = read.expect_err("no ACL yet: fetch refused");
    assert!(read_err.contains("TopicAuthorizationFailed"), "{read_err}");

    // Granted: both work.
    let write = Acl::allow(&principal, Operation::Write, ResourceType::Topic, &topic);
    let read = Acl::allow(&principal, Operation::Read, ResourceType::Topic, &topic);
    admin
        .create_acls(&[write.clone(), read.clone()])
        .await
        .expect("ACLs created");
    let mut expected = vec![write.clone(), read.clone(), group_read.clone()];
    expected.sort();
    assert_eq!(acls_of(&admin, &principal, &expected).await, expected);

    // Each refused ACL is named; the others are created.
    let bad = Acl {
        principal: user.clone(),
        ..read.clone()
    };
    let extra = Acl::allow(&principal, Operation::Describe, ResourceType::Topic, &topic);
    match admin.create_acls(&[extra.clone(), bad.clone()]).await {
        Err(KafkaError::Acls { total, failures }) => {
            assert_eq!(total, 2);
            assert_eq!(failures.len(), 1, "{failures:?}");
            assert_eq!(failures[0].acl, bad);
            assert_eq!(failures[0].name, "INVALID_REQUEST", "{failures:?}");
        }
        other => panic!("a principal without a type is refused: {other:?}"),
    }
    assert_eq!(
        admin
            .delete_acls(std::slice::from_ref(&extra))
            .await
            .expect("extra deleted"),
        1
    );

    // Kafka's authorizer picks the new ACLs up from its metadata: allow a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match produce(&producer, &topic, "allowed").await {
            Ok(()) => break,
            Err(e) if Instant::now() < deadline && is_topic_authorization_failed(&e) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("produce after the write ACL: {e:?}"),
        }
    }
    let (consumer, read_back) =
        next(consumer(&as_user, &group, &topic), Duration::from_secs(10)).await;
    assert_eq!(read_back.as_deref(), Ok("allowed"));

    // Revoked: the consumer's next fetch fails.
    assert_eq!(
        admin
            .delete_acls(std::slice::from_ref(&read))
            .await
            .expect("deleted"),
        1
    );
    let revoked = Instant::now();
    let (consumer, after) = next(consumer, Duration::from_secs(15)).await;
    // Read before the consumer goes: closing it waits for its group to be left.
    let refused_after = revoked.elapsed();
    let after = after.expect_err("fetch after the read ACL was deleted");
    assert!(after.contains("TopicAuthorizationFailed"), "{after}");
    eprintln!("fetch refused {refused_after:?} after the READ ACL was deleted");
    // Closed off the runtime, which may be the in-process broker's too.
    tokio::task::spawn_blocking(move || drop(consumer))
        .await
        .unwrap();
    // Deleting what is not there deletes nothing and is no error.
    assert_eq!(
        admin
            .delete_acls(std::slice::from_ref(&read))
            .await
            .expect("no-op"),
        0
    );
    let mut expected = vec![write.clone(), group_read.clone()];
    expected.sort();
    assert_eq!(acls_of(&admin, &principal, &expected).await, expected);

    // Credentials deleted: the user can no longer log in; deleting again is no error.
    assert!(
        can_log_in(&as_user).await,
        "the user logs in before deletion"
    );
    admin.delete_scram_user(&user).await.expect("user deleted");
    admin
        .delete_scram_user(&user)
        .await
        .expect("deleting a user without credentials");
    let users = admin.scram_users().await.expect("users");
    assert!(!users.iter().any(|(u, _)| *u == user), "{users:?}");
    assert!(!can_log_in(&as_user).await, "login refused after deletion");

    // A wrong admin password: a one-line authentication error without the password.
    let wrong = SecurityAdmin::new(&sasl(bootstrap, "SCRAM-SHA-512", ADMIN, "not-the-password"))
        .expect("security admin");
    let err = wrong.acls().await.expect_err("wrong password");
    assert!(matches!(err, KafkaError::Authentication { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("SASL_AUTHENTICATION_FAILED") && text.contains(ADMIN),
        "{text}"
    );
    assert!(
        !text.contains("not-the-password") && !text.contains('\n'),
        "{text}"
    );
    assert!(!format!("{wrong:?} {err:?}").contains("not-the-password"));

    // Leave the shared cluster as found.
    assert_eq!(
        admin
            .delete_acls(&[write, group_read])
            .await
            .expect("cleanup"),
        2
    );
    admin_config
        .admin()
        .expect("topic admin")
        .delete_topic(&topic)
        .await
        .expect("topic deleted");
}

#[cfg(feature = "embedded-broker")]
#[tokio::test(flavor = "multi_thread")]
async fn embedded_broker_credentials_and_acls() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SaslConfig::new();
    config.super_users = vec![principal_of(ADMIN)];
    config.users = vec![SaslUser {
        name: ADMIN.into(),
        password: "embedded-admin-pw".into(),
    }];
    let broker = EmbeddedBroker::start_with_security(
        BrokerConfig::in_dir(dir.path()),
        Security::Sasl(config),
    )
    .await
    .expect("SASL broker");
    let bootstrap = broker.bootstrap_servers();
    scenario(&bootstrap, "embedded-admin-pw").await;

    // The other login mechanisms of the admin client.
    for mechanism in ["SCRAM-SHA-256", "PLAIN"] {
        let admin =
            SecurityAdmin::new(&sasl(&bootstrap, mechanism, ADMIN, "embedded-admin-pw")).unwrap();
        admin
            .acls()
            .await
            .unwrap_or_else(|e| panic!("{mechanism}: {e}"));
    }
    // A plaintext client on a SASL listener: refused, not hung.
    let plaintext = SecurityAdmin::new(
        &KafkaConfig::new(bootstrap.clone()).with_timeout(Duration::from_secs(3)),
    )
    .unwrap();
    let err = plaintext.acls().await.expect_err("no login").to_string();
    assert!(
        err.contains("does the listener expect SASL?") && !err.contains('\n'),
        "{err}"
    );
    broker.shutdown().await.unwrap();
}

/// A broker that went away between calls: the next call reconnects (once) and succeeds.
#[cfg(feature = "embedded-broker")]
#[tokio::test]
async fn reconnects_after_a_broker_restart() {
    let dir = tempfile::tempdir().unwrap();
    let security = || {
        let mut config = SaslConfig::new();
        config.super_users = vec![principal_of(ADMIN)];
        config.users = vec![SaslUser {
            name: ADMIN.into(),
            password: "pw".into(),
        }];
        Security::Sasl(config)
    };
    let broker = EmbeddedBroker::start_with_security(BrokerConfig::in_dir(dir.path()), security())
        .await
        .unwrap();
    let listen = broker.listen_addr();
    let admin = SecurityAdmin::new(&sasl(
        &broker.bootstrap_servers(),
        "SCRAM-SHA-256",
        ADMIN,
        "pw",
    ))
    .unwrap();
    admin
        .set_scram_password("bob", &Secret::new("bob-pw"), ScramMechanism::Sha512)
        .await
        .unwrap();
    broker.shutdown().await.unwrap();
    let broker = EmbeddedBroker::start_with_security(
        BrokerConfig {
            listen,
            ..BrokerConfig::in_dir(dir.path())
        },
        security(),
    )
    .await
    .unwrap();
    let users = admin.scram_users().await.expect("reconnected");
    assert!(
        users.contains(&("bob".to_owned(), vec![ScramMechanism::Sha512])),
        "{users:?}"
    );
    broker.shutdown().await.unwrap();
}

/// A server that accepts connections and never answers: the call ends at its bound.
#[tokio::test]
async fn silent_broker_is_a_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let admin = SecurityAdmin::new(
        &sasl(&addr.to_string(), "SCRAM-SHA-512", ADMIN, "pw")
            .with_timeout(Duration::from_millis(500)),
    )
    .unwrap();
    let started = Instant::now();
    let err = admin.acls().await.expect_err("no answer");
    assert!(matches!(err, KafkaError::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn unreachable_broker_is_a_bounded_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let admin = SecurityAdmin::new(
        &sasl(&format!("127.0.0.1:{port}"), "SCRAM-SHA-512", ADMIN, "pw")
            .with_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    let started = Instant::now();
    let err = admin.scram_users().await.expect_err("nobody listens");
    assert!(err.is_unreachable(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
#[ignore = "needs Apache Kafka with SASL: set STREAMHUB_TEST_KAFKA_SASL (scripts/test does)"]
async fn apache_kafka_credentials_and_acls() {
    let bootstrap = std::env::var("STREAMHUB_TEST_KAFKA_SASL").expect(
        "STREAMHUB_TEST_KAFKA_SASL must name the bootstrap servers of Apache Kafka with SASL \
         (STREAMHUB_TEST_KAFKA_SASL=$(scripts/kafka start --sasl))",
    );
    let password = std::env::var("STREAMHUB_TEST_KAFKA_SASL_PASSWORD")
        .unwrap_or_else(|_| DEFAULT_KAFKA_ADMIN_PASSWORD.to_owned());
    scenario(&bootstrap, &password).await;
}

/// `streamhub broker --super-user NAME` (password from the environment) takes SASL logins
/// only, with that super user; without the password it refuses to start; without the flag
/// it is open.
#[tokio::test]
async fn the_broker_command_turns_sasl_on_with_its_super_user() {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        broker: streamhub_kafka::broker::BrokerArgs,
    }
    let parse = |args: &[&str]| Cli::try_parse_from(args).unwrap().broker;
    let open = parse(&["broker"]);
    assert!(matches!(open.security().unwrap(), Security::Open));
    let no_password = parse(&["broker", "--super-user", "streamhub-admin"]);
    let e = no_password.security().unwrap_err().to_string();
    assert!(e.contains("STREAMHUB_BROKER_SUPER_USER_PASSWORD"), "{e}");

    let mut args = parse(&["broker", "--super-user", "streamhub-admin"]);
    args.super_user_password = Some(Secret::new("broker-super-secret"));
    let broker =
        EmbeddedBroker::start_with_security(BrokerConfig::ephemeral(), args.security().unwrap())
            .await
            .unwrap();
    let bootstrap = broker.bootstrap_servers();
    let admin = SecurityAdmin::new(&sasl(
        &bootstrap,
        "SCRAM-SHA-512",
        "streamhub-admin",
        "broker-super-secret",
    ))
    .unwrap();
    assert_eq!(admin.acls().await.unwrap(), Vec::<Acl>::new());
    assert!(
        !can_log_in(&KafkaConfig::new(bootstrap.clone())).await,
        "open to a plaintext client"
    );
    broker.shutdown().await.unwrap();
}
