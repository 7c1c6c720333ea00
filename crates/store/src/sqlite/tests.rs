use std::sync::Arc;

use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnection;
use streamhub_model::{Action, DataType, TopicStatus};

use super::*;
use crate::{Counts, Store, is_unique_violation};

async fn temp_store() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("meta.db")).await.unwrap();
    (dir, Arc::new(store))
}

fn new_topic(name: &str) -> NewTopic {
    NewTopic {
        name: name.parse().unwrap(),
        created_by: "alice".into(),
        partitions: 3,
        replication_factor: 1,
        description: "test".into(),
        data_type: DataType::infer_from_name(name),
        rate_per_second: None,
        traffic_profile: None,
    }
}

async fn active_topic(store: &SqliteStore, name: &str) -> Topic {
    let t = store.create_topic("alice", new_topic(name)).await.unwrap();
    for action in [Action::Approve, Action::Activate] {
        store
            .transition("admin", TopicRef::Id(t.topic_id), action, None)
            .await
            .unwrap();
    }
    store.topic(t.topic_id).await.unwrap()
}

/// Recounts from the tables, to check the maintained counters against.
async fn recount(store: &SqliteStore) -> Counts {
    let n = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&mut *store.engine.readers.get().await)
            .await
            .unwrap()
    };
    Counts {
        pending: n("SELECT COUNT(*) FROM topics WHERE status = 'pending'").await,
        approved: n("SELECT COUNT(*) FROM topics WHERE status = 'approved'").await,
        active: n("SELECT COUNT(*) FROM topics WHERE status = 'active'").await,
        inactive: n("SELECT COUNT(*) FROM topics WHERE status = 'inactive'").await,
        rejected: n("SELECT COUNT(*) FROM topics WHERE status = 'rejected'").await,
        deleted: n("SELECT COUNT(*) FROM topics WHERE status = 'deleted'").await,
        subscriptions: n("SELECT COUNT(*) FROM subscriptions").await,
        users: n("SELECT COUNT(*) FROM users").await,
    }
}

#[tokio::test]
async fn reopening_keeps_everything_and_does_not_reapply_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/meta.db");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store
            .create_user("system", "admin", "h", Role::Admin)
            .await
            .unwrap();
        active_topic(&store, "kept").await;
        store.subscribe("admin", "admin", "kept").await.unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store.topic_by_name("kept").await.unwrap().status,
        TopicStatus::Active
    );
    assert_eq!(
        store
            .users(&crate::UserFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
    let subs = store
        .subscriptions(&SubscriptionFilter::default())
        .await
        .unwrap();
    assert_eq!(subs.len(), 1);
    let audit = store
        .audit(&AuditFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        audit.len(),
        5,
        "user, create, approve, activate, subscribe: {audit:?}"
    );
    assert_eq!(store.counts().await.unwrap(), recount(&store).await);
    let versions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&mut *store.engine.readers.get().await)
        .await
        .unwrap();
    assert_eq!(versions, MIGRATOR.migrations.len() as i64);
}

#[tokio::test]
async fn in_memory_database_is_refused() {
    let r = SqliteStore::open(":memory:").await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
}

#[tokio::test]
async fn every_read_connection_sees_each_commit_at_once() {
    let (_dir, store) = temp_store().await;
    for i in 1..=5 {
        let t = store
            .create_topic("alice", new_topic(&format!("fresh{i}")))
            .await
            .unwrap();
        // More reads than read connections: a statement holding an old snapshot would show.
        for _ in 0..(2 * READERS) {
            assert_eq!(store.counts().await.unwrap().pending, i);
            assert_eq!(store.topic(t.topic_id).await.unwrap().topic_id, t.topic_id);
            assert_eq!(
                store.topics(&TopicFilter::default()).await.unwrap().len() as i64,
                i
            );
        }
    }
}

/// A write by another process shows in the count of topic changes, which the
/// database keeps: a copy of a topic list checked against it cannot go stale.
#[tokio::test]
async fn another_process_writing_a_topic_changes_the_count() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let a = SqliteStore::open(&path).await.unwrap();
    let b = SqliteStore::open(&path).await.unwrap();
    let before = a.topic_changes().await.unwrap();
    let t = b
        .create_topic("alice", new_topic("elsewhere"))
        .await
        .unwrap();
    let created = a.topic_changes().await.unwrap();
    assert!(created > before);
    b.transition(
        "admin",
        TopicRef::Id(t.topic_id),
        Action::Reject,
        Some("no".into()),
    )
    .await
    .unwrap();
    assert!(a.topic_changes().await.unwrap() > created);
}

/// Two stores on one file stand for two admin processes: the write lock of the file,
/// not the in-process mutex, must then decide.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_approving_at_once_make_one_transition() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    let a = Arc::new(SqliteStore::open(&path).await.unwrap());
    let b = Arc::new(SqliteStore::open(&path).await.unwrap());
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(
            a.create_topic("alice", new_topic(&format!("shared{i}")))
                .await
                .unwrap()
                .topic_id,
        );
    }
    let mut tasks = Vec::new();
    for id in ids.iter().copied() {
        for store in [a.clone(), b.clone(), a.clone(), b.clone()] {
            tasks.push(tokio::spawn(async move {
                store
                    .transition("admin", TopicRef::Id(id), Action::Approve, None)
                    .await
                    .unwrap()
                    .changed()
            }));
        }
    }
    let mut changed = 0;
    for task in tasks {
        changed += task.await.unwrap() as usize;
    }
    assert_eq!(changed, ids.len());
    let approvals = b
        .audit(&AuditFilter {
            action: Some("approve".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(approvals.len(), ids.len());
    assert_eq!(b.counts().await.unwrap(), recount(&b).await);
    assert_eq!(a.counts().await.unwrap().approved, ids.len() as i64);
}

/// The unique index refuses names that collide in Kafka, whatever writes the row; a
/// deleted topic frees its key.
#[tokio::test]
async fn the_database_refuses_names_that_collide_in_kafka() {
    let (_dir, store) = temp_store().await;
    let dotted = store
        .create_topic("alice", new_topic("coll.x"))
        .await
        .unwrap();
    let insert = async |name: &str| {
        let mut tx = store.engine.begin().await.unwrap();
        let result = sqlx::query(
            "INSERT INTO topics (name, status, partitions, replication_factor, data_type, \
             created_by, created_at, updated_at) \
             VALUES (?1, 'pending', 1, 1, 'generic', 'x', 'now', 'now')",
        )
        .bind(name)
        .execute(&mut *tx)
        .await;
        tx.commit().await.unwrap();
        result
    };
    let refused = insert("coll_x").await;
    assert!(
        matches!(&refused, Err(e) if is_unique_violation(e)),
        "{refused:?}"
    );
    store
        .transition("admin", TopicRef::Id(dotted.topic_id), Action::Delete, None)
        .await
        .unwrap();
    insert("coll_x").await.unwrap();
}

/// A store as an earlier version left it: the first `applied` migrations (the same files)
/// and their record in its own `schema_version` table, as its hand-written runner kept it.
async fn legacy_store(path: &Path, applied: usize) -> SqliteConnection {
    let mut conn = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .connect()
        .await
        .unwrap();
    sqlx::raw_sql(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    for migration in &MIGRATOR.migrations[..applied] {
        sqlx::raw_sql(&migration.sql)
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, '2026-01-01T00:00:00Z')",
        )
        .bind(migration.version)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    conn
}

/// A store the earlier runner migrated fully opens with its rows as they were, and its
/// record is handed to sqlx with the files' checksums, so later opens apply nothing.
#[tokio::test]
async fn a_store_migrated_by_the_earlier_runner_opens_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    {
        let mut conn = legacy_store(&path, MIGRATOR.migrations.len()).await;
        sqlx::raw_sql(
            "INSERT INTO users (username, password_hash, role, created_at) \
               VALUES ('root', 'h', 'admin', '2026-01-01T00:00:00.000000Z');
             INSERT INTO topics (name, status, partitions, replication_factor, data_type, \
               created_by, created_at, updated_at, approved_at, rejection_reason) \
               VALUES ('old.news', 'rejected', 2, 1, 'generic', 'root', \
               '2026-01-01T00:00:00.000001Z', '2026-01-02T00:00:00.000002Z', NULL, 'late');
             INSERT INTO audit (at, actor, action, topic_id, target, before, after, detail) \
               VALUES ('2026-01-02T00:00:00.000002Z', 'root', 'reject', 1, 'old.news', \
               'pending', 'rejected', 'late');
             UPDATE counters SET value = 1 WHERE name IN ('users', 'topics.rejected');",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
    for _ in 0..2 {
        let store = SqliteStore::open(&path).await.unwrap();
        let topic = store.topic(1).await.unwrap();
        assert_eq!(topic.status, TopicStatus::Rejected);
        assert_eq!(topic.partitions, 2);
        assert_eq!(topic.rejection_reason.as_deref(), Some("late"));
        assert_eq!(
            topic.updated_at,
            "2026-01-02T00:00:00.000002Z"
                .parse::<DateTime<Utc>>()
                .unwrap()
        );
        let audit = store
            .audit(&AuditFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].detail.as_deref(), Some("late"));
        assert!(store.credentials("root").await.unwrap().is_some());
        assert_eq!(store.counts().await.unwrap(), recount(&store).await);
        let recorded: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&mut *store.engine.readers.get().await)
                .await
                .unwrap();
        let expected: Vec<(i64, Vec<u8>)> = MIGRATOR
            .iter()
            .map(|m| (m.version, m.checksum.to_vec()))
            .collect();
        assert_eq!(recorded, expected);
        let legacy: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = 'schema_version'")
                .fetch_one(&mut *store.engine.readers.get().await)
                .await
                .unwrap();
        assert_eq!(legacy, 0, "the earlier record is handed over once");
    }
    // Writes work on the upgraded store.
    let store = SqliteStore::open(&path).await.unwrap();
    store
        .transition("root", TopicRef::Id(1), Action::Delete, None)
        .await
        .unwrap();
    store
        .create_topic("root", new_topic("old.news"))
        .await
        .unwrap();
    assert_eq!(store.counts().await.unwrap(), recount(&store).await);
}

/// A store a newer build migrated is refused, not half-understood.
#[tokio::test]
async fn a_store_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    {
        let mut conn = legacy_store(&path, MIGRATOR.migrations.len()).await;
        sqlx::raw_sql("INSERT INTO schema_version VALUES (99, '2026-01-01T00:00:00Z')")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let r = SqliteStore::open(&path).await;
    assert!(
        matches!(&r, Err(StoreError::Backend(e)) if e.contains("newer than this build")),
        "{r:?}"
    );
    let fresh = dir.path().join("fresh.db");
    drop(SqliteStore::open(&fresh).await.unwrap());
    {
        let mut conn = SqliteConnectOptions::new()
            .filename(&fresh)
            .connect()
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (99, 'future', TRUE, X'00', 0)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let r = SqliteStore::open(&fresh).await;
    assert!(
        matches!(&r, Err(StoreError::Backend(e)) if e.contains("upgrade streamhub")),
        "{r:?}"
    );
}

/// Before usernames were one per case and subscriptions went with their user, a store
/// could hold subscriptions of deleted users: the migration that brings those rules
/// removes them and recounts.
#[tokio::test]
async fn upgrading_removes_the_subscriptions_deleted_users_left() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    {
        // A store as the version before the accounts migration left it.
        let mut conn = legacy_store(&path, 2).await;
        sqlx::raw_sql(
            "INSERT INTO users (username, password_hash, role, created_at) \
               VALUES ('kept', 'h', 'user', '2026-01-01T00:00:00Z');
             INSERT INTO topics (name, status, partitions, replication_factor, data_type, \
               created_by, created_at, updated_at) \
               VALUES ('news', 'active', 1, 1, 'generic', 'x', '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z');
             INSERT INTO subscriptions (user_id, topic_id, subscribed_at) VALUES
               ('kept', 1, '2026-01-01T00:00:00Z'), ('gone', 1, '2026-01-01T00:00:00Z');
             UPDATE counters SET value = 2 WHERE name = 'subscriptions';
             UPDATE counters SET value = 1 WHERE name = 'users';
             UPDATE counters SET value = 1 WHERE name = 'topics.active';",
        )
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    let subs = store
        .subscriptions(&SubscriptionFilter::default())
        .await
        .unwrap();
    let users: Vec<_> = subs.iter().map(|s| s.user_id.as_str()).collect();
    assert_eq!(users, ["kept"]);
    assert_eq!(store.counts().await.unwrap(), recount(&store).await);
    let r = store.create_user("admin", "KEPT", "h", Role::User).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
}
