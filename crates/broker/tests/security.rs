//! A SASL broker with ACLs, driven by librdkafka and by the protocol directly: logins with
//! PLAIN and both SCRAM mechanisms, refused passwords, what each principal may do per the
//! ACLs, credentials and ACLs managed through the admin API and kept across a restart.

mod common;

use std::time::{Duration, Instant};

use common::{HANG_GUARD, RawClient};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use streamhub_broker::{Broker, BrokerConfig, SaslConfig, SaslUser, Security};

const ADMIN_PW: &str = "admin-secret";

fn user(name: &str) -> SaslUser {
    SaslUser {
        name: name.into(),
        password: format!("{name}-pw"),
    }
}

fn sasl_config(dir: &std::path::Path, users: &[&str]) -> BrokerConfig {
    let mut sasl = SaslConfig::new();
    sasl.super_users = vec!["User:admin".into()];
    sasl.users = vec![SaslUser {
        name: "admin".into(),
        password: ADMIN_PW.into(),
    }];
    sasl.users.extend(users.iter().map(|u| user(u)));
    BrokerConfig {
        security: Security::Sasl(sasl),
        ..BrokerConfig::with_data_dir(dir)
    }
}

async fn start(dir: &std::path::Path, users: &[&str]) -> Broker {
    Broker::start(sasl_config(dir, users))
        .await
        .expect("broker starts")
}

fn config(broker: &Broker, mechanism: &str, user: &str, password: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", broker.bootstrap_servers())
        .set("security.protocol", "SASL_PLAINTEXT")
        .set("sasl.mechanism", mechanism)
        .set("sasl.username", user)
        .set("sasl.password", password);
    c
}

fn as_user(broker: &Broker, name: &str) -> ClientConfig {
    config(broker, "SCRAM-SHA-256", name, &format!("{name}-pw"))
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// Topic names the metadata shows `client`, or the error.
async fn visible_topics(client: ClientConfig) -> Result<Vec<String>, KafkaError> {
    metadata_within(client, Duration::from_secs(10)).await
}

/// A refused login surfaces as a metadata request that never completes.
async fn refused(client: ClientConfig) -> bool {
    metadata_within(client, Duration::from_secs(3))
        .await
        .is_err()
}

async fn metadata_within(
    client: ClientConfig,
    timeout: Duration,
) -> Result<Vec<String>, KafkaError> {
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client.create().expect("client");
        consumer.fetch_metadata(None, timeout).map(|m| {
            let mut names: Vec<String> = m
                .topics()
                .iter()
                .filter(|t| t.error().is_none())
                .map(|t| t.name().to_string())
                .collect();
            names.sort();
            names
        })
    })
    .await
    .expect("metadata thread")
}

/// A connection logged in with SASL/PLAIN (handshake v1, SaslAuthenticate v2).
async fn raw_login(
    broker: &Broker,
    user: &str,
    password: &str,
) -> (RawClient, SaslAuthenticateResponse) {
    let mut raw = RawClient::connect(broker).await;
    let hs: SaslHandshakeResponse = raw
        .call(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default().with_mechanism(s("PLAIN")),
        )
        .await;
    assert_eq!(hs.error_code, 0);
    assert!(hs.mechanisms.iter().any(|m| m.as_str() == "SCRAM-SHA-512"));
    let token = format!("\0{user}\0{password}");
    let resp: SaslAuthenticateResponse = raw
        .call(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(token.into_bytes().into()),
        )
        .await;
    (raw, resp)
}

async fn admin_raw(broker: &Broker) -> RawClient {
    let (raw, resp) = raw_login(broker, "admin", ADMIN_PW).await;
    assert_eq!(
        resp.error_code, 0,
        "admin logs in: {:?}",
        resp.error_message
    );
    raw
}

struct Acl<'a> {
    rt: i8,
    name: &'a str,
    pattern: i8,
    principal: &'a str,
    op: i8,
    allow: bool,
}

const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const ALL: i8 = 2;
const READ: i8 = 3;
const WRITE: i8 = 4;
const DESCRIBE: i8 = 8;

async fn create_acls(raw: &mut RawClient, acls: &[Acl<'_>]) {
    let req = CreateAclsRequest::default().with_creations(
        acls.iter()
            .map(|a| {
                AclCreation::default()
                    .with_resource_type(a.rt)
                    .with_resource_name(s(a.name))
                    .with_resource_pattern_type(a.pattern)
                    .with_principal(s(a.principal))
                    .with_host(s("*"))
                    .with_operation(a.op)
                    .with_permission_type(if a.allow { 3 } else { 2 })
            })
            .collect(),
    );
    let resp: CreateAclsResponse = raw.call(ApiKey::CreateAcls, 3, &req).await;
    for r in resp.results {
        assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    }
}

async fn create_topics(broker: &Broker, names: &[&str]) {
    let admin: AdminClient<DefaultClientContext> =
        config(broker, "SCRAM-SHA-512", "admin", ADMIN_PW)
            .create()
            .expect("admin");
    let topics: Vec<NewTopic> = names
        .iter()
        .map(|n| NewTopic::new(n, 1, TopicReplication::Fixed(1)))
        .collect();
    for r in admin
        .create_topics(&topics, &AdminOptions::new())
        .await
        .expect("create topics")
    {
        r.expect("created");
    }
}

/// Sends one message; the error code if it was refused.
async fn produce(client: ClientConfig, topic: &str) -> Result<(), RDKafkaErrorCode> {
    let producer: FutureProducer = client
        .clone()
        .set("message.timeout.ms", "10000")
        .create()
        .expect("producer");
    let delivery = tokio::time::timeout(
        HANG_GUARD,
        producer.send(
            FutureRecord::to(topic).key("k").payload("v"),
            Duration::from_secs(10),
        ),
    )
    .await
    .expect("delivered or refused in time");
    delivery
        .map(|_| ())
        .map_err(|(e, _)| e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Unknown))
}

/// Subscribes as `group` and reads the first message; the error code if refused
/// (librdkafka reports a subscribed topic it may not Describe, and a refused fetch).
async fn consume(client: ClientConfig, group: &str, topic: &str) -> Result<(), RDKafkaErrorCode> {
    let (group, topic) = (group.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client
            .clone()
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "100")
            .create()
            .expect("consumer");
        consumer.subscribe(&[&topic]).expect("subscribe");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(_)) => return Ok(()),
                Some(Err(e)) => {
                    return Err(e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Unknown));
                }
                None => {}
            }
        }
        panic!("neither a message nor an error from {topic}");
    })
    .await
    .expect("consumer thread")
}

/// Commits offset 1 of partition 0 for `group`; the error code if refused.
async fn commit(client: ClientConfig, group: &str, topic: &str) -> Result<(), RDKafkaErrorCode> {
    let (group, topic) = (group.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client
            .clone()
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 0, Offset::Offset(1))
            .expect("partition");
        consumer
            .commit(&tpl, CommitMode::Sync)
            .map_err(|e| e.rdkafka_error_code().unwrap_or(RDKafkaErrorCode::Unknown))
    })
    .await
    .expect("commit thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mechanism_logs_in_and_wrong_passwords_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    for mech in ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] {
        let ok = visible_topics(config(&broker, mech, "admin", ADMIN_PW)).await;
        assert!(ok.is_ok(), "{mech} login: {ok:?}");
        for (user, pw) in [("admin", "wrong"), ("nobody", ADMIN_PW)] {
            assert!(
                refused(config(&broker, mech, user, pw)).await,
                "{mech} {user}/{pw} got in"
            );
        }
    }

    // What the broker answers does not tell an unknown user from a wrong password.
    let (mut wrong, wrong_resp) = raw_login(&broker, "admin", "wrong").await;
    let (mut unknown, unknown_resp) = raw_login(&broker, "nobody", "wrong").await;
    for (raw, resp) in [(&mut wrong, &wrong_resp), (&mut unknown, &unknown_resp)] {
        assert_eq!(
            resp.error_code,
            ResponseError::SaslAuthenticationFailed.code()
        );
        assert!(raw.closed_by_broker().await, "closed after a failed login");
    }
    assert_eq!(wrong_resp.error_message, unknown_resp.error_message);

    // Before authentication only ApiVersions and the SASL requests are answered.
    let mut early = RawClient::connect(&broker).await;
    let v: ApiVersionsResponse = early
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .await;
    for key in [
        ApiKey::SaslAuthenticate,
        ApiKey::DescribeUserScramCredentials,
        ApiKey::AlterUserScramCredentials,
    ] {
        assert!(
            v.api_keys.iter().any(|k| k.api_key == key as i16),
            "{key:?} advertised"
        );
    }
    early
        .send(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    assert!(
        early.closed_by_broker().await,
        "Metadata before login closes"
    );

    // Handshake v0: the tokens travel as bare frames.
    let mut v0 = RawClient::connect(&broker).await;
    let hs: SaslHandshakeResponse = v0
        .call(
            ApiKey::SaslHandshake,
            0,
            &SaslHandshakeRequest::default().with_mechanism(s("PLAIN")),
        )
        .await;
    assert_eq!(hs.error_code, 0);
    use tokio::io::AsyncWriteExt;
    let token = format!("\0admin\0{ADMIN_PW}");
    let mut frame = (token.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(token.as_bytes());
    v0.stream.write_all(&frame).await.unwrap();
    assert_eq!(v0.read_frame().await.expect("token answer").len(), 0);
    let m: MetadataResponse = v0
        .call(ApiKey::Metadata, 12, &MetadataRequest::default())
        .await;
    assert_eq!(m.brokers.len(), 1);

    // An unsupported mechanism: the enabled ones, then the connection closes.
    let mut odd = RawClient::connect(&broker).await;
    let hs: SaslHandshakeResponse = odd
        .call(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default().with_mechanism(s("GSSAPI")),
        )
        .await;
    assert_eq!(
        hs.error_code,
        ResponseError::UnsupportedSaslMechanism.code()
    );
    assert_eq!(hs.mechanisms.len(), 3);
    assert!(odd.closed_by_broker().await);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_decide_per_principal_topic_and_operation() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &["alice", "bob", "carol"]).await;
    create_topics(&broker, &["orders", "orders-eu", "payments"]).await;
    let mut admin = admin_raw(&broker).await;
    create_acls(
        &mut admin,
        &[
            // alice: writes orders, reads everything prefixed "orders", groups "alice-*".
            Acl {
                rt: TOPIC,
                name: "orders",
                pattern: LITERAL,
                principal: "User:alice",
                op: WRITE,
                allow: true,
            },
            Acl {
                rt: TOPIC,
                name: "orders",
                pattern: PREFIXED,
                principal: "User:alice",
                op: READ,
                allow: true,
            },
            Acl {
                rt: GROUP,
                name: "alice-",
                pattern: PREFIXED,
                principal: "User:alice",
                op: READ,
                allow: true,
            },
            // bob: everything on every topic, but writing payments is denied.
            Acl {
                rt: TOPIC,
                name: "*",
                pattern: LITERAL,
                principal: "User:bob",
                op: ALL,
                allow: true,
            },
            Acl {
                rt: TOPIC,
                name: "payments",
                pattern: LITERAL,
                principal: "User:bob",
                op: WRITE,
                allow: false,
            },
            Acl {
                rt: GROUP,
                name: "*",
                pattern: LITERAL,
                principal: "User:bob",
                op: READ,
                allow: true,
            },
            // carol: may only see that orders exists.
            Acl {
                rt: TOPIC,
                name: "orders",
                pattern: LITERAL,
                principal: "User:carol",
                op: DESCRIBE,
                allow: true,
            },
            Acl {
                rt: GROUP,
                name: "carol-",
                pattern: PREFIXED,
                principal: "User:carol",
                op: READ,
                allow: true,
            },
        ],
    )
    .await;
    // Something to read everywhere, written by the super user.
    let admin_client = config(&broker, "SCRAM-SHA-256", "admin", ADMIN_PW);
    for t in ["orders", "orders-eu", "payments"] {
        produce(admin_client.clone(), t)
            .await
            .expect("super user writes");
    }

    use RDKafkaErrorCode::{GroupAuthorizationFailed, TopicAuthorizationFailed};
    let (alice, bob, carol) = (
        as_user(&broker, "alice"),
        as_user(&broker, "bob"),
        as_user(&broker, "carol"),
    );

    // Describe: Metadata lists only what the principal may Describe (Read/Write imply it).
    assert_eq!(
        visible_topics(alice.clone()).await.unwrap(),
        ["orders", "orders-eu"]
    );
    assert_eq!(
        visible_topics(bob.clone()).await.unwrap(),
        ["orders", "orders-eu", "payments"]
    );
    assert_eq!(visible_topics(carol.clone()).await.unwrap(), ["orders"]);

    // Produce.
    assert_eq!(produce(alice.clone(), "orders").await, Ok(()));
    assert_eq!(
        produce(alice.clone(), "orders-eu").await,
        Err(TopicAuthorizationFailed)
    );
    assert_eq!(
        produce(alice.clone(), "payments").await,
        Err(TopicAuthorizationFailed)
    );
    assert_eq!(produce(bob.clone(), "orders-eu").await, Ok(()));
    assert_eq!(
        produce(bob.clone(), "payments").await,
        Err(TopicAuthorizationFailed),
        "DENY wins"
    );
    assert_eq!(
        produce(carol.clone(), "orders").await,
        Err(TopicAuthorizationFailed)
    );

    // Consume.
    assert_eq!(
        consume(alice.clone(), "alice-reader", "orders-eu").await,
        Ok(()),
        "prefixed Read"
    );
    assert_eq!(
        consume(alice.clone(), "alice-reader", "payments").await,
        Err(TopicAuthorizationFailed)
    );
    assert_eq!(
        consume(bob.clone(), "bob-reader", "payments").await,
        Ok(()),
        "DENY Write leaves Read"
    );
    assert_eq!(
        consume(carol.clone(), "carol-reader", "orders").await,
        Err(TopicAuthorizationFailed)
    );

    // Commit: Read on the group and on the topic.
    assert_eq!(commit(alice.clone(), "alice-app", "orders").await, Ok(()));
    // librdkafka cannot find the coordinator of a group it may not Describe; the
    // broker's answers are checked below.
    let other = commit(alice.clone(), "other-app", "orders").await;
    assert!(
        matches!(
            other,
            Err(GroupAuthorizationFailed | RDKafkaErrorCode::WaitingForCoordinator)
        ),
        "{other:?}"
    );
    let (mut raw_alice, r) = raw_login(&broker, "alice", "alice-pw").await;
    assert_eq!(r.error_code, 0);
    let fc: FindCoordinatorResponse = raw_alice
        .call(
            ApiKey::FindCoordinator,
            4,
            &FindCoordinatorRequest::default()
                .with_coordinator_keys(vec![s("other-app"), s("alice-app")]),
        )
        .await;
    let codes: Vec<i16> = fc.coordinators.iter().map(|c| c.error_code).collect();
    assert_eq!(codes, [ResponseError::GroupAuthorizationFailed.code(), 0]);
    let oc: OffsetCommitResponse = raw_alice
        .call(
            ApiKey::OffsetCommit,
            8,
            &OffsetCommitRequest::default()
                .with_group_id(s("other-app").into())
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(s("orders").into())
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(1),
                        ]),
                ]),
        )
        .await;
    assert_eq!(
        oc.topics[0].partitions[0].error_code,
        ResponseError::GroupAuthorizationFailed.code()
    );
    assert_eq!(
        commit(carol.clone(), "carol-app", "orders").await,
        Err(TopicAuthorizationFailed)
    );

    // The super user needs no ACL; the others cannot manage ACLs.
    assert_eq!(produce(admin_client, "payments").await, Ok(()));
    let (mut raw_bob, r) = raw_login(&broker, "bob", "bob-pw").await;
    assert_eq!(r.error_code, 0);
    let d: DescribeAclsResponse = raw_bob
        .call(
            ApiKey::DescribeAcls,
            3,
            &DescribeAclsRequest::default()
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1),
        )
        .await;
    assert_eq!(
        d.error_code,
        ResponseError::ClusterAuthorizationFailed.code()
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_producers_need_write_somewhere() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &["alice", "carol"]).await;
    create_topics(&broker, &["events"]).await;
    let mut admin = admin_raw(&broker).await;
    create_acls(
        &mut admin,
        &[Acl {
            rt: TOPIC,
            name: "ev",
            pattern: PREFIXED,
            principal: "User:alice",
            op: WRITE,
            allow: true,
        }],
    )
    .await;
    let idempotent = |c: ClientConfig| {
        let mut c = c;
        c.set("enable.idempotence", "true");
        c
    };
    assert_eq!(
        produce(idempotent(as_user(&broker, "alice")), "events").await,
        Ok(())
    );
    let (mut carol, r) = raw_login(&broker, "carol", "carol-pw").await;
    assert_eq!(r.error_code, 0);
    let ipid: InitProducerIdResponse = carol
        .call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(-1),
        )
        .await;
    assert_eq!(
        ipid.error_code,
        ResponseError::ClusterAuthorizationFailed.code()
    );
    create_acls(
        &mut admin,
        &[Acl {
            rt: CLUSTER,
            name: "kafka-cluster",
            pattern: LITERAL,
            principal: "User:carol",
            op: 12,
            allow: true,
        }],
    )
    .await;
    let ipid: InitProducerIdResponse = carol
        .call(
            ApiKey::InitProducerId,
            4,
            &InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(-1),
        )
        .await;
    assert_eq!(ipid.error_code, 0, "IdempotentWrite on the cluster");
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_read_stops_the_next_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &["alice"]).await;
    create_topics(&broker, &["feed"]).await;
    let mut admin = admin_raw(&broker).await;
    create_acls(
        &mut admin,
        &[
            Acl {
                rt: TOPIC,
                name: "feed",
                pattern: LITERAL,
                principal: "User:alice",
                op: READ,
                allow: true,
            },
            Acl {
                rt: GROUP,
                name: "alice-",
                pattern: PREFIXED,
                principal: "User:alice",
                op: READ,
                allow: true,
            },
        ],
    )
    .await;
    let writer = config(&broker, "PLAIN", "admin", ADMIN_PW);
    produce(writer.clone(), "feed").await.unwrap();

    let client = as_user(&broker, "alice");
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let reader = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client
            .clone()
            .set("group.id", "alice-feed")
            .set("fetch.wait.max.ms", "100")
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("feed", 0, Offset::Beginning)
            .unwrap();
        consumer.assign(&tpl).unwrap();
        let deadline = Instant::now() + HANG_GUARD;
        // Reading works ...
        loop {
            assert!(
                Instant::now() < deadline,
                "no message before the revocation"
            );
            if let Some(m) = consumer.poll(Duration::from_millis(100)) {
                m.expect("read allowed");
                break;
            }
        }
        tx.send(()).unwrap();
        // ... until the ACL goes: the next fetch fails.
        loop {
            assert!(
                Instant::now() < deadline,
                "fetches still allowed after revocation"
            );
            if let Some(Err(e)) = consumer.poll(Duration::from_millis(50)) {
                return (Instant::now(), e.rdkafka_error_code());
            }
        }
    });
    tokio::task::spawn_blocking(move || rx.recv_timeout(HANG_GUARD))
        .await
        .unwrap()
        .expect("reader got its message");
    let revoked_at = Instant::now();
    let del: DeleteAclsResponse = admin
        .call(
            ApiKey::DeleteAcls,
            3,
            &DeleteAclsRequest::default().with_filters(vec![
                DeleteAclsFilter::default()
                    .with_resource_type_filter(TOPIC)
                    .with_resource_name_filter(Some(s("feed")))
                    .with_pattern_type_filter(LITERAL)
                    .with_principal_filter(Some(s("User:alice")))
                    .with_host_filter(None)
                    .with_operation(1)
                    .with_permission_type(1),
            ]),
        )
        .await;
    assert_eq!(del.filter_results[0].matching_acls.len(), 1);
    let (failed_at, code) = reader.await.unwrap();
    let took = failed_at.duration_since(revoked_at);
    println!("the first fetch after revoking Read failed {took:?} later");
    assert_eq!(code, Some(RDKafkaErrorCode::TopicAuthorizationFailed));
    assert!(took < Duration::from_secs(2), "took {took:?}");
    broker.shutdown().await;
}

/// `SaltedPassword` as a SCRAM client computes it (what AdminClient sends).
fn salted_sha256(password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), salt, iterations, &mut out);
    out.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_acls_are_managed_by_the_admin_api_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &[]).await;
    create_topics(&broker, &["ledger", "secret"]).await;
    let mut admin = admin_raw(&broker).await;
    let salt = b"0123456789abcdef".to_vec();
    let alter: AlterUserScramCredentialsResponse = admin
        .call(
            ApiKey::AlterUserScramCredentials,
            0,
            &AlterUserScramCredentialsRequest::default().with_upsertions(vec![
                ScramCredentialUpsertion::default()
                    .with_name(s("dave"))
                    .with_mechanism(1)
                    .with_iterations(8192)
                    .with_salt(salt.clone().into())
                    .with_salted_password(salted_sha256("dave-pw", &salt, 8192).into()),
                ScramCredentialUpsertion::default()
                    .with_name(s("erin"))
                    .with_mechanism(1)
                    .with_iterations(100)
                    .with_salt(salt.clone().into())
                    .with_salted_password(salted_sha256("erin-pw", &salt, 100).into()),
                // Two changes for one user: refused, as Kafka's controller does.
                ScramCredentialUpsertion::default()
                    .with_name(s("frank"))
                    .with_mechanism(1)
                    .with_iterations(4096)
                    .with_salt(salt.clone().into())
                    .with_salted_password(salted_sha256("frank-pw", &salt, 4096).into()),
                ScramCredentialUpsertion::default()
                    .with_name(s("frank"))
                    .with_mechanism(2)
                    .with_iterations(4096)
                    .with_salt(salt.clone().into())
                    .with_salted_password(vec![1u8; 64].into()),
            ]),
        )
        .await;
    let codes: Vec<(String, i16)> = alter
        .results
        .iter()
        .map(|r| (r.user.to_string(), r.error_code))
        .collect();
    assert_eq!(
        codes,
        [
            ("dave".into(), 0),
            ("erin".into(), ResponseError::UnacceptableCredential.code()),
            ("frank".into(), ResponseError::DuplicateResource.code())
        ]
    );
    create_acls(
        &mut admin,
        &[Acl {
            rt: TOPIC,
            name: "ledger",
            pattern: LITERAL,
            principal: "User:dave",
            op: DESCRIBE,
            allow: true,
        }],
    )
    .await;
    let dave = as_user(&broker, "dave");
    assert_eq!(visible_topics(dave).await.unwrap(), ["ledger"]);
    assert!(refused(as_user(&broker, "erin")).await);
    // Plain and the other SCRAM mechanism: PLAIN checks against the SCRAM-SHA-256 keys;
    // SCRAM-SHA-512 has no credential for dave.
    assert!(
        visible_topics(config(&broker, "PLAIN", "dave", "dave-pw"))
            .await
            .is_ok()
    );
    assert!(refused(config(&broker, "SCRAM-SHA-512", "dave", "dave-pw")).await);
    broker.shutdown().await;

    let raw_file = std::fs::read_to_string(dir.path().join("streamhub-security.json")).unwrap();
    assert!(
        !raw_file.contains("dave-pw") && !raw_file.contains(ADMIN_PW),
        "no password stored"
    );

    let broker = start(dir.path(), &[]).await;
    assert_eq!(
        visible_topics(as_user(&broker, "dave")).await.unwrap(),
        ["ledger"]
    );
    let mut admin = admin_raw(&broker).await;
    let d: DescribeUserScramCredentialsResponse = admin
        .call(
            ApiKey::DescribeUserScramCredentials,
            0,
            &DescribeUserScramCredentialsRequest::default().with_users(None),
        )
        .await;
    let users: Vec<(String, Vec<(i8, i32)>)> = d
        .results
        .iter()
        .map(|r| {
            (
                r.user.to_string(),
                r.credential_infos
                    .iter()
                    .map(|c| (c.mechanism, c.iterations))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        users,
        [
            ("admin".to_string(), vec![(1, 4096), (2, 4096)]),
            ("dave".to_string(), vec![(1, 8192)])
        ]
    );
    let acls: DescribeAclsResponse = admin
        .call(
            ApiKey::DescribeAcls,
            3,
            &DescribeAclsRequest::default()
                .with_resource_type_filter(1)
                .with_resource_name_filter(Some(s("ledger")))
                .with_pattern_type_filter(2)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_operation(1)
                .with_permission_type(1),
        )
        .await;
    assert_eq!(acls.resources.len(), 1);
    assert_eq!(acls.resources[0].acls[0].principal.as_str(), "User:dave");

    // Deleting dave's credential locks him out at once.
    let alter: AlterUserScramCredentialsResponse = admin
        .call(
            ApiKey::AlterUserScramCredentials,
            0,
            &AlterUserScramCredentialsRequest::default().with_deletions(vec![
                ScramCredentialDeletion::default()
                    .with_name(s("dave"))
                    .with_mechanism(1),
            ]),
        )
        .await;
    assert_eq!(alter.results[0].error_code, 0);
    assert!(refused(as_user(&broker, "dave")).await);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_and_group_requests_are_authorized_as_kafka_does() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &["ops", "viewer"]).await;
    create_topics(&broker, &["team-a", "hidden"]).await;
    let mut admin = admin_raw(&broker).await;
    create_acls(
        &mut admin,
        &[
            Acl {
                rt: TOPIC,
                name: "team-",
                pattern: PREFIXED,
                principal: "User:ops",
                op: ALL,
                allow: true,
            },
            Acl {
                rt: GROUP,
                name: "team-",
                pattern: PREFIXED,
                principal: "User:ops",
                op: DESCRIBE,
                allow: true,
            },
            Acl {
                rt: CLUSTER,
                name: "kafka-cluster",
                pattern: LITERAL,
                principal: "User:ops",
                op: DESCRIBE,
                allow: true,
            },
        ],
    )
    .await;
    let (mut ops, r) = raw_login(&broker, "ops", "ops-pw").await;
    assert_eq!(r.error_code, 0);
    let denied = ResponseError::TopicAuthorizationFailed.code();

    // Metadata asked for by name: the hidden topic and a missing one alike are refused;
    // authorized operations are reported.
    let m: MetadataResponse = ops
        .call(
            ApiKey::Metadata,
            10,
            &MetadataRequest::default()
                .with_topics(Some(
                    ["team-a", "hidden", "no-such"]
                        .into_iter()
                        .map(|n| {
                            metadata_request::MetadataRequestTopic::default()
                                .with_name(Some(s(n).into()))
                        })
                        .collect(),
                ))
                .with_include_cluster_authorized_operations(true)
                .with_include_topic_authorized_operations(true),
        )
        .await;
    let codes: Vec<(String, i16)> = m
        .topics
        .iter()
        .map(|t| (t.name.as_ref().unwrap().to_string(), t.error_code))
        .collect();
    assert_eq!(
        codes,
        [
            ("team-a".into(), 0),
            ("hidden".into(), denied),
            ("no-such".into(), denied)
        ]
    );
    // READ(3) WRITE(4) CREATE(5) DELETE(6) ALTER(7) DESCRIBE(8) DESCRIBE_CONFIGS(10) ALTER_CONFIGS(11)
    assert_eq!(m.topics[0].topic_authorized_operations, 0b1101_1111_1000);
    assert_eq!(m.cluster_authorized_operations, 1 << 8);
    let dc: DescribeClusterResponse = ops
        .call(
            ApiKey::DescribeCluster,
            1,
            &DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
        )
        .await;
    assert_eq!(dc.cluster_authorized_operations, 1 << 8);

    // CreateTopics: Create on the prefix suffices without Create on the cluster.
    let ct: CreateTopicsResponse = ops
        .call(
            ApiKey::CreateTopics,
            7,
            &CreateTopicsRequest::default().with_topics(
                ["team-b", "other"]
                    .into_iter()
                    .map(|n| {
                        create_topics_request::CreatableTopic::default()
                            .with_name(s(n).into())
                            .with_num_partitions(1)
                            .with_replication_factor(1)
                    })
                    .collect(),
            ),
        )
        .await;
    let codes: Vec<(String, i16)> = ct
        .topics
        .iter()
        .map(|t| (t.name.to_string(), t.error_code))
        .collect();
    assert_eq!(codes, [("team-b".into(), 0), ("other".into(), denied)]);

    // DeleteTopics, DescribeConfigs: per topic.
    let dt: DeleteTopicsResponse = ops
        .call(
            ApiKey::DeleteTopics,
            5,
            &DeleteTopicsRequest::default()
                .with_topic_names(vec![s("team-b").into(), s("hidden").into()]),
        )
        .await;
    let codes: Vec<i16> = dt.responses.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, [0, denied]);
    let dcf: DescribeConfigsResponse = ops
        .call(
            ApiKey::DescribeConfigs,
            4,
            &DescribeConfigsRequest::default().with_resources(
                ["team-a", "hidden"]
                    .into_iter()
                    .map(|n| {
                        describe_configs_request::DescribeConfigsResource::default()
                            .with_resource_type(2)
                            .with_resource_name(s(n))
                            .with_configuration_keys(None)
                    })
                    .collect(),
            ),
        )
        .await;
    let codes: Vec<i16> = dcf.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, [0, denied]);

    // Groups: JoinGroup needs Read, which Describe does not give; DescribeGroups reports
    // the group's authorized operations.
    let join: JoinGroupResponse = ops
        .call(
            ApiKey::JoinGroup,
            5,
            &JoinGroupRequest::default()
                .with_group_id(s("team-g").into())
                .with_session_timeout_ms(10000)
                .with_rebalance_timeout_ms(10000)
                .with_protocol_type(s("consumer")),
        )
        .await;
    assert_eq!(
        join.error_code,
        ResponseError::GroupAuthorizationFailed.code()
    );
    let dg: DescribeGroupsResponse = ops
        .call(
            ApiKey::DescribeGroups,
            5,
            &DescribeGroupsRequest::default()
                .with_groups(vec![s("team-g").into(), s("other-g").into()])
                .with_include_authorized_operations(true),
        )
        .await;
    let got: Vec<(String, i16, i32)> = dg
        .groups
        .iter()
        .map(|g| {
            (
                g.group_id.to_string(),
                g.error_code,
                g.authorized_operations,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("team-g".into(), 0, 1 << 8),
            (
                "other-g".into(),
                ResponseError::GroupAuthorizationFailed.code(),
                i32::MIN
            )
        ]
    );

    // ListGroups: all groups with Describe on the cluster, else those one may Describe.
    for group in ["team-x", "zzz"] {
        let oc: OffsetCommitResponse = admin
            .call(
                ApiKey::OffsetCommit,
                8,
                &OffsetCommitRequest::default()
                    .with_group_id(s(group).into())
                    .with_generation_id_or_member_epoch(-1)
                    .with_topics(vec![
                        offset_commit_request::OffsetCommitRequestTopic::default()
                            .with_name(s("team-a").into())
                            .with_partitions(vec![
                                offset_commit_request::OffsetCommitRequestPartition::default()
                                    .with_partition_index(0)
                                    .with_committed_offset(0),
                            ]),
                    ]),
            )
            .await;
        assert_eq!(oc.topics[0].partitions[0].error_code, 0);
    }
    create_acls(
        &mut admin,
        &[Acl {
            rt: GROUP,
            name: "team-",
            pattern: PREFIXED,
            principal: "User:viewer",
            op: DESCRIBE,
            allow: true,
        }],
    )
    .await;
    let listed = |r: ListGroupsResponse| {
        let mut ids: Vec<String> = r.groups.iter().map(|g| g.group_id.to_string()).collect();
        ids.sort();
        ids
    };
    let all: ListGroupsResponse = ops
        .call(ApiKey::ListGroups, 4, &ListGroupsRequest::default())
        .await;
    assert_eq!(listed(all), ["team-x", "zzz"]);
    let (mut viewer, r) = raw_login(&broker, "viewer", "viewer-pw").await;
    assert_eq!(r.error_code, 0);
    let some: ListGroupsResponse = viewer
        .call(ApiKey::ListGroups, 4, &ListGroupsRequest::default())
        .await;
    assert_eq!(listed(some), ["team-x"]);

    // acks=0 cannot carry a refusal: the connection closes.
    let records = {
        use kafka_protocol::records::*;
        let mut buf = bytes::BytesMut::new();
        let record = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: 0,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(bytes::Bytes::from_static(b"v")),
            headers: indexmap::IndexMap::new(),
        };
        RecordBatchEncoder::encode(
            &mut buf,
            [record].iter(),
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        buf.freeze()
    };
    ops.send(
        ApiKey::Produce,
        9,
        &ProduceRequest::default()
            .with_transactional_id(None)
            .with_acks(0)
            .with_timeout_ms(1000)
            .with_topic_data(vec![
                produce_request::TopicProduceData::default()
                    .with_name(s("hidden").into())
                    .with_partition_data(vec![
                        produce_request::PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(records)),
                    ]),
            ]),
    )
    .await;
    assert!(ops.closed_by_broker().await, "acks=0 refused write closes");
    broker.shutdown().await;
}

/// A group member that still may Write (so Describe) loses Read while it long-polls: the
/// refusal reaches it with the first fetch answered after the deletion, and it still leaves
/// its group promptly. librdkafka backs a partition off for `10 × fetch.error.backoff.ms`
/// after TOPIC_AUTHORIZATION_FAILED, 10 s here: a refusal seen within 3 s can only come from
/// the first refused fetch (the parked one answers within `fetch.wait.max.ms`, 100 ms).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribed_consumer_is_refused_at_its_first_fetch_after_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let broker = start(dir.path(), &["alice"]).await;
    create_topics(&broker, &["feed"]).await;
    let mut admin = admin_raw(&broker).await;
    let acl = |rt, op, pattern, name| Acl {
        rt,
        name,
        pattern,
        principal: "User:alice",
        op,
        allow: true,
    };
    create_acls(
        &mut admin,
        &[
            acl(TOPIC, READ, LITERAL, "feed"),
            acl(TOPIC, WRITE, LITERAL, "feed"),
            acl(GROUP, READ, LITERAL, "alice-feed"),
        ],
    )
    .await;
    produce(as_user(&broker, "alice"), "feed").await.unwrap();

    let client = as_user(&broker, "alice");
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let reader = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = client
            .clone()
            .set("group.id", "alice-feed")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "100")
            .set("fetch.error.backoff.ms", "1000")
            .create()
            .expect("consumer");
        consumer.subscribe(&["feed"]).unwrap();
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            assert!(
                Instant::now() < deadline,
                "no message before the revocation"
            );
            if let Some(m) = consumer.poll(Duration::from_millis(50)) {
                m.expect("read allowed");
                break;
            }
        }
        tx.send(()).unwrap();
        let refused = loop {
            assert!(
                Instant::now() < deadline,
                "fetches still allowed after revocation"
            );
            match consumer.poll(Duration::from_millis(20)) {
                Some(Err(e)) => break (Instant::now(), e.rdkafka_error_code()),
                Some(Ok(m)) => panic!("a message after the revocation: {m:?}"),
                None => {}
            }
        };
        // Closing leaves the group: answered at once, not after librdkafka's backoff.
        let closing = Instant::now();
        drop(consumer);
        (refused, closing.elapsed())
    });
    tokio::task::spawn_blocking(move || rx.recv_timeout(HANG_GUARD))
        .await
        .unwrap()
        .expect("reader got its message");
    let revoked_at = Instant::now();
    let del: DeleteAclsResponse = admin
        .call(
            ApiKey::DeleteAcls,
            3,
            &DeleteAclsRequest::default().with_filters(vec![
                DeleteAclsFilter::default()
                    .with_resource_type_filter(TOPIC)
                    .with_resource_name_filter(Some(s("feed")))
                    .with_pattern_type_filter(LITERAL)
                    .with_principal_filter(Some(s("User:alice")))
                    .with_host_filter(None)
                    .with_operation(READ)
                    .with_permission_type(3),
            ]),
        )
        .await;
    assert_eq!(del.filter_results[0].matching_acls.len(), 1);
    let ((failed_at, code), close) = reader.await.unwrap();
    let took = failed_at.duration_since(revoked_at);
    println!("refused {took:?} after revoking Read; the consumer closed in {close:?}");
    assert_eq!(code, Some(RDKafkaErrorCode::TopicAuthorizationFailed));
    assert!(took < Duration::from_secs(3), "refused after {took:?}");
    assert!(close < Duration::from_secs(3), "closing took {close:?}");
    broker.shutdown().await;
}
