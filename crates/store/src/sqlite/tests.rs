use std::sync::Arc;

use chrono::Duration as ChronoDuration;
use streamhub_model::DataType;

use super::*;

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
    let conn = store.reader().await;
    let n = |sql: &'static str| {
        let conn = &conn;
        async move { query_i64(&conn.conn, sql, ()).await.unwrap() }
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
async fn created_topic_is_pending_with_an_audit_row() {
    let (_dir, store) = temp_store().await;
    let t = store
        .create_topic("alice", new_topic("sensor_data"))
        .await
        .unwrap();
    assert_eq!(t.status, TopicStatus::Pending);
    assert_eq!(t.data_type, DataType::Sensor);
    let audit = store
        .audit(&AuditFilter {
            topic_id: Some(t.topic_id),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "create");
    assert_eq!(audit[0].actor, "alice");
    assert_eq!(audit[0].after.as_deref(), Some("pending"));
}

#[tokio::test]
async fn one_live_topic_per_name_and_deletion_frees_the_name() {
    let (_dir, store) = temp_store().await;
    let t = store
        .create_topic("alice", new_topic("orders"))
        .await
        .unwrap();
    let dup = store.create_topic("bob", new_topic("orders")).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    store
        .transition("admin", TopicRef::Id(t.topic_id), Action::Delete, None)
        .await
        .unwrap();
    let again = store
        .create_topic("bob", new_topic("orders"))
        .await
        .unwrap();
    assert_ne!(again.topic_id, t.topic_id);
    assert_eq!(
        store.topic(t.topic_id).await.unwrap().status,
        TopicStatus::Deleted
    );
    assert_eq!(
        store.topic_by_name("orders").await.unwrap().topic_id,
        again.topic_id
    );
}

#[tokio::test]
async fn invalid_figures_are_refused_before_writing() {
    let (_dir, store) = temp_store().await;
    for bad in [
        NewTopic {
            partitions: 0,
            ..new_topic("a")
        },
        NewTopic {
            partitions: 1001,
            ..new_topic("a")
        },
        NewTopic {
            replication_factor: 0,
            ..new_topic("a")
        },
        NewTopic {
            rate_per_second: Some(f64::NAN),
            ..new_topic("a")
        },
        NewTopic {
            rate_per_second: Some(0.0),
            ..new_topic("a")
        },
        NewTopic {
            rate_per_second: Some(100_001.0),
            ..new_topic("a")
        },
    ] {
        let r = store.create_topic("alice", bad).await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    }
    assert_eq!(store.counts().await.unwrap(), Counts::default());
}

#[tokio::test]
async fn lifecycle_stamps_times_and_keeps_the_rejection_reason() {
    let (_dir, store) = temp_store().await;
    let t = active_topic(&store, "weather").await;
    assert!(t.approved_at.is_some() && t.activated_at.is_some());
    let out = store
        .transition("admin", TopicRef::Id(t.topic_id), Action::Deactivate, None)
        .await
        .unwrap();
    assert_eq!(out.from, TopicStatus::Active);
    assert_eq!(out.topic.status, TopicStatus::Inactive);
    assert!(out.topic.deactivated_at.is_some());

    let r = store.create_topic("bob", new_topic("junk")).await.unwrap();
    let out = store
        .transition(
            "admin",
            TopicRef::Id(r.topic_id),
            Action::Reject,
            Some("duplicate of weather".into()),
        )
        .await
        .unwrap();
    assert_eq!(out.topic.status, TopicStatus::Rejected);
    assert_eq!(
        out.topic.rejection_reason.as_deref(),
        Some("duplicate of weather")
    );
}

#[tokio::test]
async fn repeated_request_changes_nothing_and_writes_no_audit_row() {
    let (_dir, store) = temp_store().await;
    let t = store
        .create_topic("alice", new_topic("clicks"))
        .await
        .unwrap();
    let first = store
        .transition("admin", TopicRef::Id(t.topic_id), Action::Approve, None)
        .await
        .unwrap();
    assert!(first.changed());
    let second = store
        .transition("admin", TopicRef::Id(t.topic_id), Action::Approve, None)
        .await
        .unwrap();
    assert!(!second.changed());
    let rows = store
        .audit(&AuditFilter {
            action: Some("approve".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
}

#[tokio::test]
async fn invalid_transition_is_refused_and_changes_nothing() {
    let (_dir, store) = temp_store().await;
    let t = store
        .create_topic("alice", new_topic("clicks"))
        .await
        .unwrap();
    let r = store
        .transition(
            "producer",
            TopicRef::Name("clicks".into()),
            Action::Activate,
            None,
        )
        .await;
    assert!(matches!(r, Err(StoreError::Transition(_))), "{r:?}");
    assert_eq!(
        store.topic(t.topic_id).await.unwrap().status,
        TopicStatus::Pending
    );
    let r = store
        .transition("admin", TopicRef::Id(999), Action::Approve, None)
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
}

#[tokio::test]
async fn concurrent_approvals_make_one_transition_and_one_audit_row() {
    let (_dir, store) = temp_store().await;
    let t = store
        .create_topic("alice", new_topic("race"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .transition(
                    &format!("admin{i}"),
                    TopicRef::Id(t.topic_id),
                    Action::Approve,
                    None,
                )
                .await
                .unwrap()
                .changed()
        }));
    }
    let mut changed = 0;
    for task in tasks {
        changed += task.await.unwrap() as usize;
    }
    assert_eq!(changed, 1);
    let rows = store
        .audit(&AuditFilter {
            action: Some("approve".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(store.counts().await.unwrap(), recount(&store).await);
}

#[tokio::test]
async fn subscribing_needs_an_active_topic_and_is_idempotent() {
    let (_dir, store) = temp_store().await;
    store
        .create_topic("alice", new_topic("pending_one"))
        .await
        .unwrap();
    let r = store.subscribe("u1", "u1", "pending_one").await;
    assert!(
        matches!(&r, Err(StoreError::Conflict(m)) if m.contains("pending")),
        "{r:?}"
    );
    let r = store.subscribe("u1", "u1", "missing").await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");

    active_topic(&store, "live").await;
    let first = store.subscribe("u1", "u1", "live").await.unwrap();
    assert!(first.created);
    assert_eq!(first.subscription.topic_name, "live");
    assert_eq!(first.subscription.status, "active");
    let second = store.subscribe("u1", "u1", "live").await.unwrap();
    assert!(!second.created);
    assert_eq!(
        second.subscription.subscription_id,
        first.subscription.subscription_id
    );
    assert_eq!(store.counts().await.unwrap().subscriptions, 1);

    let removed = store.unsubscribe("u1", "u1", "live").await.unwrap();
    assert_eq!(removed.subscription_id, first.subscription.subscription_id);
    let r = store.unsubscribe("u1", "u1", "live").await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    assert_eq!(store.counts().await.unwrap(), recount(&store).await);
}

#[tokio::test]
async fn deleting_a_subscribed_topic_is_refused() {
    let (_dir, store) = temp_store().await;
    let t = active_topic(&store, "busy").await;
    store.subscribe("u1", "u1", "busy").await.unwrap();
    let r = store
        .transition("admin", TopicRef::Id(t.topic_id), Action::Delete, None)
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    store.unsubscribe("u1", "u1", "busy").await.unwrap();
    store
        .transition("admin", TopicRef::Id(t.topic_id), Action::Delete, None)
        .await
        .unwrap();
    assert_eq!(store.counts().await.unwrap().deleted, 1);
}

#[tokio::test]
async fn listing_filters_by_status_and_pages_newest_first() {
    let (_dir, store) = temp_store().await;
    for i in 0..5 {
        store
            .create_topic("alice", new_topic(&format!("t{i}")))
            .await
            .unwrap();
    }
    let gone = store
        .create_topic("alice", new_topic("gone"))
        .await
        .unwrap();
    store
        .transition("admin", TopicRef::Id(gone.topic_id), Action::Delete, None)
        .await
        .unwrap();
    let all = store.topics(&TopicFilter::default()).await.unwrap();
    assert_eq!(all.len(), 5, "deleted topics are hidden by default");
    let page = store
        .topics(&TopicFilter {
            limit: Some(2),
            offset: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    let names: Vec<_> = page.iter().map(|t| t.topic_name.as_str()).collect();
    assert_eq!(names, ["t3", "t2"], "newest first");
    let deleted = store
        .topics(&TopicFilter {
            status: Some(TopicStatus::Deleted),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(deleted.len(), 1);
}

#[tokio::test]
async fn tokens_expire_and_go_with_their_user() {
    let (_dir, store) = temp_store().await;
    store
        .create_user("system", "admin", "h1", Role::Admin)
        .await
        .unwrap();
    store
        .create_user("admin", "bob", "h2", Role::User)
        .await
        .unwrap();
    let now = Utc::now();
    store
        .create_token("bob", "live", now + ChronoDuration::hours(1))
        .await
        .unwrap();
    store
        .create_token("bob", "old", now - ChronoDuration::seconds(1))
        .await
        .unwrap();
    assert_eq!(
        store
            .token_user("live", now)
            .await
            .unwrap()
            .unwrap()
            .username,
        "bob"
    );
    assert!(store.token_user("old", now).await.unwrap().is_none());
    assert_eq!(store.purge_expired_tokens(now).await.unwrap(), 1);
    store.delete_user("admin", "bob").await.unwrap();
    assert!(store.token_user("live", now).await.unwrap().is_none());
    let r = store.create_token("bob", "x", now).await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
}

#[tokio::test]
async fn the_last_admin_cannot_be_deleted() {
    let (_dir, store) = temp_store().await;
    store
        .create_user("system", "admin", "h", Role::Admin)
        .await
        .unwrap();
    let r = store.delete_user("admin", "admin").await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    let r = store.create_user("admin", "admin", "h", Role::User).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    let r = store
        .create_user("admin", "bad name", "h", Role::User)
        .await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    assert_eq!(store.counts().await.unwrap().users, 1);
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
        store.subscribe("u1", "u1", "kept").await.unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        store.topic_by_name("kept").await.unwrap().status,
        TopicStatus::Active
    );
    assert_eq!(store.users().await.unwrap().len(), 1);
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
    let versions = query_i64(
        &store.reader().await.conn,
        "SELECT COUNT(*) FROM schema_version",
        (),
    )
    .await
    .unwrap();
    assert_eq!(versions, MIGRATIONS.len() as i64);
}

#[tokio::test]
async fn in_memory_database_is_refused() {
    let r = SqliteStore::open(":memory:").await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
}

#[tokio::test]
async fn audit_by_topic_name_covers_deleted_topics_of_that_name() {
    let (_dir, store) = temp_store().await;
    let first = store
        .create_topic("alice", new_topic("reused"))
        .await
        .unwrap();
    store
        .transition("admin", TopicRef::Id(first.topic_id), Action::Delete, None)
        .await
        .unwrap();
    store
        .create_topic("bob", new_topic("reused"))
        .await
        .unwrap();
    store.create_topic("bob", new_topic("other")).await.unwrap();
    let rows = store
        .audit(&AuditFilter {
            topic_name: Some("reused".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let actions: Vec<_> = rows
        .iter()
        .map(|r| (r.actor.as_str(), r.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        [("bob", "create"), ("admin", "delete"), ("alice", "create")]
    );
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
