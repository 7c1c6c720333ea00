//! What only a store shared by several processes shows: events between instances, and
//! instances opening one database at once. Needs `STREAMHUB_TEST_POSTGRES`.

use std::time::{Duration, Instant};

use streamhub_model::DataType;
use streamhub_model::api::Event;

use super::testing::{fresh_database_url, terminate_listeners};
use super::*;
use crate::Store;
use streamhub_model::TopicStatus;

fn new_topic(name: &str, description: String) -> NewTopic {
    NewTopic {
        name: name.parse().unwrap(),
        created_by: "alice".into(),
        partitions: 1,
        replication_factor: 1,
        description,
        data_type: DataType::Generic,
        rate_per_second: None,
        traffic_profile: None,
    }
}

async fn two_instances() -> (PostgresStore, PostgresStore) {
    let url = fresh_database_url().await.unwrap_or_else(|e| panic!("{e}"));
    // Both migrate at once: the advisory lock makes one wait for the other.
    let (a, b) = tokio::join!(PostgresStore::open(&url), PostgresStore::open(&url));
    (a.unwrap(), b.unwrap())
}

/// The next event, or `None` after a hang guard far above any delivery time.
async fn next_event(receiver: &mut tokio::sync::broadcast::Receiver<Event>) -> Option<Event> {
    tokio::time::timeout(Duration::from_secs(30), receiver.recv())
        .await
        .ok()
        .map(|e| e.unwrap())
}

/// An event that arrives within a second, or `None`: for asserting that none comes. A slow
/// machine can only make such a check pass, never fail wrongly.
async fn event_within_a_second(
    receiver: &mut tokio::sync::broadcast::Receiver<Event>,
) -> Option<Event> {
    tokio::time::timeout(Duration::from_secs(1), receiver.recv())
        .await
        .ok()
        .map(|e| e.unwrap())
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set STREAMHUB_TEST_POSTGRES (scripts/test does)"]
async fn a_change_reaches_the_other_instance_once_and_is_not_echoed() {
    let (a, b) = two_instances().await;
    let mut on_a = a.events().subscribe();
    let mut on_b = b.events().subscribe();
    let topic = a
        .create_topic("alice", new_topic("relayed", "small".into()))
        .await
        .unwrap();
    let event = Event::Topic {
        action: None,
        topic,
    };
    assert_eq!(next_event(&mut on_b).await, Some(event.clone()));
    assert_eq!(next_event(&mut on_a).await, Some(event));
    assert_eq!(
        event_within_a_second(&mut on_a).await,
        None,
        "echoed back to its sender"
    );
    assert_eq!(
        event_within_a_second(&mut on_b).await,
        None,
        "delivered twice"
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set STREAMHUB_TEST_POSTGRES (scripts/test does)"]
async fn a_change_rolled_back_is_announced_to_nobody() {
    let (a, b) = two_instances().await;
    let mut on_b = b.events().subscribe();
    let topic = a
        .create_topic("alice", new_topic("undone", String::new()))
        .await
        .unwrap();
    assert!(next_event(&mut on_b).await.is_some());
    // The announcement goes out with the transaction that makes the change; here the
    // transaction is rolled back after announcing, as a crash before COMMIT would.
    let mut tx = a.pool().begin().await.unwrap();
    let event = Event::Topic {
        action: Some(Action::Approve),
        topic: topic.clone(),
    };
    a.engine.announce(&mut tx, &event).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(
        event_within_a_second(&mut on_b).await,
        None,
        "a rolled-back change was announced"
    );
    // The same announcement committed arrives.
    let mut tx = a.pool().begin().await.unwrap();
    a.engine.announce(&mut tx, &event).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(next_event(&mut on_b).await, Some(event));
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set STREAMHUB_TEST_POSTGRES (scripts/test does)"]
async fn an_event_too_large_for_notify_is_read_back_from_the_database() {
    let (a, b) = two_instances().await;
    let mut on_b = b.events().subscribe();
    // 4,096 three-byte characters: about 12 kB of JSON, over NOTIFY's 8 kB.
    let topic = a
        .create_topic("alice", new_topic("verbose", "€".repeat(4096)))
        .await
        .unwrap();
    assert_eq!(
        next_event(&mut on_b).await,
        Some(Event::Topic {
            action: None,
            topic: topic.clone()
        })
    );
    let approved = a
        .transition("admin", TopicRef::Id(topic.topic_id), Action::Approve, None)
        .await
        .unwrap()
        .topic;
    assert_eq!(
        next_event(&mut on_b).await,
        Some(Event::Topic {
            action: Some(Action::Approve),
            topic: approved
        })
    );
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set STREAMHUB_TEST_POSTGRES (scripts/test does)"]
async fn events_keep_their_order_between_instances() {
    let (a, b) = two_instances().await;
    let mut on_b = b.events().subscribe();
    let mut created = Vec::new();
    for i in 0..200 {
        let topic = a
            .create_topic("alice", new_topic(&format!("ordered_{i}"), String::new()))
            .await
            .unwrap();
        created.push(Event::Topic {
            action: None,
            topic,
        });
    }
    for event in &created {
        assert_eq!(next_event(&mut on_b).await.as_ref(), Some(event));
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set STREAMHUB_TEST_POSTGRES (scripts/test does)"]
async fn reopening_keeps_everything_and_does_not_reapply_migrations() {
    let url = fresh_database_url().await.unwrap_or_else(|e| panic!("{e}"));
    {
        let store = PostgresStore::open(&url).await.unwrap();
        store
            .create_topic("alice", new_topic("kept", String::new()))
            .await
            .unwrap();
    }
    let store = PostgresStore::open(&url).await.unwrap();
    assert_eq!(store.counts().await.unwrap().pending, 1);
    assert_eq!(
        store.topic_by_name("kept").await.unwrap().topic_name,
        "kept"
    );
    let versions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(versions, MIGRATOR.migrations.len() as i64);
}

/// A database the earlier hand-written runner migrated (its `schema_version` record, the
/// same files) opens with its rows, in two instances at once; its record is handed to sqlx
/// with the files' checksums once.
#[tokio::test]
#[ignore = "needs PostgreSQL: set STREAMHUB_TEST_POSTGRES (scripts/test does)"]
async fn a_database_migrated_by_the_earlier_runner_opens_with_its_data() {
    use sqlx::Connection;
    let url = fresh_database_url().await.unwrap_or_else(|e| panic!("{e}"));
    {
        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE schema_version (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        for migration in MIGRATOR.iter() {
            sqlx::raw_sql(&migration.sql)
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query("INSERT INTO schema_version (version, applied_at) VALUES ($1, now())")
                .bind(migration.version)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        sqlx::raw_sql(
            "INSERT INTO users (username, password_hash, role, created_at) \
               VALUES ('root', 'h', 'admin', '2026-01-01T00:00:00Z');
             INSERT INTO topics (name, status, partitions, replication_factor, data_type, \
               created_by, created_at, updated_at, rejection_reason) \
               VALUES ('old.news', 'rejected', 2, 1, 'generic', 'root', \
               '2026-01-01T00:00:00Z', '2026-01-02T00:00:00.000002Z', 'late');
             UPDATE counters SET value = 1 WHERE name IN ('users', 'topics.rejected');",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
    }
    let (a, b) = tokio::join!(PostgresStore::open(&url), PostgresStore::open(&url));
    let (a, b) = (a.unwrap(), b.unwrap());
    for store in [&a, &b] {
        let topic = store.topic_by_name("old.news").await.unwrap();
        assert_eq!(topic.status, TopicStatus::Rejected);
        assert_eq!(topic.partitions, 2);
        assert_eq!(topic.rejection_reason.as_deref(), Some("late"));
        assert_eq!(
            topic.updated_at,
            "2026-01-02T00:00:00.000002Z"
                .parse::<DateTime<Utc>>()
                .unwrap()
        );
        assert!(store.credentials("root").await.unwrap().is_some());
        assert_eq!(store.counts().await.unwrap().rejected, 1);
    }
    let recorded: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
            .fetch_all(a.pool())
            .await
            .unwrap();
    let expected: Vec<(i64, Vec<u8>)> = MIGRATOR
        .iter()
        .map(|m| (m.version, m.checksum.to_vec()))
        .collect();
    assert_eq!(recorded, expected);
    let legacy: bool = sqlx::query_scalar("SELECT to_regclass('schema_version') IS NOT NULL")
        .fetch_one(a.pool())
        .await
        .unwrap();
    assert!(!legacy, "the earlier record is handed over once");
    a.transition(
        "root",
        TopicRef::Name("old.news".into()),
        Action::Delete,
        None,
    )
    .await
    .unwrap();
    drop((a, b));
    let reopened = PostgresStore::open(&url).await.unwrap();
    assert_eq!(reopened.counts().await.unwrap().deleted, 1);
}

/// A database a newer build migrated is refused, whichever record says so.
#[tokio::test]
#[ignore = "needs PostgreSQL: set STREAMHUB_TEST_POSTGRES (scripts/test does)"]
async fn a_database_from_a_newer_build_is_refused() {
    let url = fresh_database_url().await.unwrap_or_else(|e| panic!("{e}"));
    let store = PostgresStore::open(&url).await.unwrap();
    sqlx::raw_sql(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99, 'future', TRUE, '\\x00', 0)",
    )
    .execute(store.pool())
    .await
    .unwrap();
    drop(store);
    let r = PostgresStore::open(&url).await;
    assert!(
        matches!(&r, Err(StoreError::Backend(e)) if e.contains("upgrade streamhub")),
        "{r:?}"
    );
}

#[tokio::test]
async fn a_bad_url_or_pool_size_is_refused_as_invalid() {
    let err = PostgresStore::open("postgres://[::1").await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    let err = PostgresStore::open_with_pool("postgres://127.0.0.1:1/x", 1)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set STREAMHUB_TEST_POSTGRES (scripts/test does)"]
async fn the_pool_size_bounds_the_connections_to_the_database() {
    let url = fresh_database_url().await.unwrap_or_else(|e| panic!("{e}"));
    // Two: the event listener's and one for queries, which six queries then share.
    let store = PostgresStore::open_with_pool(&url, 2).await.unwrap();
    let mut queries = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let pool = store.pool().clone();
        queries.spawn(async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM pg_stat_activity, pg_sleep(0.1) \
                 WHERE datname = current_database()",
            )
            .fetch_one(&pool)
            .await
        });
    }
    let seen: Vec<i64> = queries
        .join_all()
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(seen.len(), 6);
    assert!(seen.iter().all(|&n| n <= 2), "connections seen: {seen:?}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set STREAMHUB_TEST_POSTGRES (scripts/test does)"]
async fn the_listener_reconnects_after_its_connection_is_killed() {
    let (a, b) = two_instances().await;
    let mut on_b = b.events().subscribe();
    a.create_topic("alice", new_topic("resilient", String::new()))
        .await
        .unwrap();
    assert!(
        next_event(&mut on_b).await.is_some(),
        "heard before the kill"
    );
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND query LIKE 'LISTEN%'",
    )
    .fetch_all(a.pool())
    .await
    .unwrap();
    assert_eq!(killed, [true, true], "both instances' listeners");
    // Events sent while a listener is away are missed; keep sending until one arrives.
    let deadline = Instant::now() + Duration::from_secs(15);
    for attempt in 0.. {
        a.create_topic(
            "alice",
            new_topic(&format!("resilient_{attempt}"), String::new()),
        )
        .await
        .unwrap();
        if let Ok(Ok(received)) =
            tokio::time::timeout(Duration::from_millis(300), on_b.recv()).await
        {
            assert!(
                matches!(&received, Event::Topic { topic, .. } if topic.topic_name.starts_with("resilient_")),
                "{received:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no event after the listener was killed"
        );
    }
}

/// The variable naming the test server's certificate (`scripts/postgres ca`).
const CA_ENV: &str = "STREAMHUB_TEST_POSTGRES_CA";

#[tokio::test]
#[ignore = "needs PostgreSQL with TLS: set STREAMHUB_TEST_POSTGRES and STREAMHUB_TEST_POSTGRES_CA (scripts/test does)"]
async fn tls_to_the_database_is_verified_and_used() {
    let ca = std::env::var(CA_ENV).unwrap_or_else(|_| {
        panic!("{CA_ENV} must name the server's certificate: {CA_ENV}=$(scripts/postgres ca)")
    });
    let url = fresh_database_url().await.unwrap_or_else(|e| panic!("{e}"));
    let sep = if url.contains('?') { '&' } else { '?' };

    // Verified against the server's certificate: the store works, over TLS.
    let verified = format!("{url}{sep}sslmode=verify-full&sslrootcert={ca}");
    let store = PostgresStore::open(&verified).await.unwrap();
    store
        .create_topic("alice", new_topic("over_tls", "small".into()))
        .await
        .unwrap();
    let (encrypted,): (bool,) =
        sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(store.pool())
            .await
            .unwrap();
    assert!(encrypted, "the connection is not encrypted");

    // Without the certificate the self-signed server is not trusted: refused, in one line.
    let err = match PostgresStore::open(&format!("{url}{sep}sslmode=verify-full")).await {
        Ok(_) => panic!("a server with an unknown certificate was trusted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("cannot connect to PostgreSQL"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set STREAMHUB_TEST_POSTGRES (scripts/test does)"]
async fn a_lost_listener_announces_a_resync_and_listens_again() {
    let url = fresh_database_url().await.unwrap_or_else(|e| panic!("{e}"));
    let a = PostgresStore::open(&url).await.unwrap();
    let b = PostgresStore::open(&url).await.unwrap();
    let mut resyncs = b.events().resyncs();
    let mut on_b = b.events().subscribe();
    assert!(terminate_listeners(&url).await.unwrap() >= 1);
    tokio::time::timeout(Duration::from_secs(30), resyncs.changed())
        .await
        .expect("no resync after the listener's connection was lost")
        .unwrap();
    // Listening again: the next change of the other instance arrives.
    let topic = a
        .create_topic("alice", new_topic("after_the_gap", String::new()))
        .await
        .unwrap();
    let event = tokio::time::timeout(Duration::from_secs(30), on_b.recv())
        .await
        .expect("no event after the resync")
        .unwrap();
    assert_eq!(
        event,
        Event::Topic {
            action: None,
            topic
        }
    );
}
