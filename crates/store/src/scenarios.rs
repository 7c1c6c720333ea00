//! Store behaviour every engine must show, written once and run on each engine this
//! build has (SQLite on a temporary file, PostgreSQL in a fresh database per test).

use std::sync::Arc;

use chrono::{Duration as ChronoDuration, Utc};
use streamhub_model::api::Topic;
use streamhub_model::traffic::TrafficProfile;
use streamhub_model::{Action, DataType, RatePerSecond, Role, TopicStatus};

use crate::*;

/// Keeps an engine's temporary resources alive for the test's duration.
type Guard = Box<dyn std::any::Any + Send>;

async fn sqlite() -> (Guard, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(dir.path().join("meta.db")).await.unwrap();
    (Box::new(dir) as Guard, Arc::new(sqlite) as Arc<dyn Store>)
}

async fn postgres() -> (Guard, Arc<dyn Store>) {
    let store = crate::postgres::testing::fresh_database().await;
    (Box::new(()) as Guard, Arc::new(store) as Arc<dyn Store>)
}

/// Runs each scenario on every engine. The PostgreSQL runs are ignored by plain
/// `cargo test`, which needs no server; `cargo test -- --ignored` runs them and fails
/// each one that finds no server to run on.
macro_rules! on_every_engine {
    ($($scenario:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let (_guard, store) = super::sqlite().await;
                    super::$scenario(store).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test]
                #[ignore = "needs PostgreSQL: set STREAMHUB_TEST_POSTGRES (scripts/test does)"]
                async fn $scenario() {
                    let (_guard, store) = super::postgres().await;
                    super::$scenario(store).await;
                }
            )*
        }
    };
}

on_every_engine!(
    created_topic_is_pending_with_an_audit_row,
    one_live_topic_per_name_and_deletion_frees_the_name,
    invalid_figures_are_refused_before_writing,
    lifecycle_stamps_times_and_keeps_the_rejection_reason,
    repeated_request_changes_nothing_and_writes_no_audit_row,
    invalid_transition_is_refused_and_changes_nothing,
    concurrent_approvals_make_one_transition_and_one_audit_row,
    subscribing_needs_an_active_topic_and_is_idempotent,
    deleting_a_subscribed_topic_is_refused,
    listing_filters_by_status_and_pages_newest_first,
    tokens_expire_and_go_with_their_user,
    the_last_admin_cannot_be_deleted,
    audit_by_topic_name_covers_deleted_topics_of_that_name,
    concurrent_creates_of_one_name_make_one_topic,
    concurrent_subscriptions_of_one_pair_make_one_row,
    concurrent_deletions_of_two_admins_keep_one,
    committed_changes_reach_each_subscriber_once,
    every_topic_write_counts_as_a_change_and_nothing_else_does,
    names_that_collide_in_kafka_are_refused_as_invalid,
    a_reported_provisioning_failure_is_kept_audited_and_lets_an_admin_reject,
    the_reject_reason_is_in_the_audit_log,
    an_activations_generation_record_is_in_the_audit_log_only,
    a_deleted_users_subscriptions_go_with_them,
    unknown_users_cannot_be_subscribed,
    usernames_differing_only_in_case_are_one_and_reserved_names_are_refused,
    a_user_keeps_only_the_newest_tokens,
    a_requesters_pending_topics_are_capped,
    refused_requests_say_what_is_wrong_and_write_nothing,
    a_note_is_an_audit_row_and_changes_nothing_else,
);

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

async fn user(store: &Arc<dyn Store>, name: &str) {
    store
        .create_user("system", name, "hash", Role::User)
        .await
        .unwrap();
}

async fn active_topic(store: &Arc<dyn Store>, name: &str) -> Topic {
    let t = store.create_topic("alice", new_topic(name)).await.unwrap();
    for action in [Action::Approve, Action::Activate] {
        store
            .transition("admin", TopicRef::Id(t.topic_id), action, None)
            .await
            .unwrap();
    }
    store.topic(t.topic_id).await.unwrap()
}

/// Recounts through the listing methods, to check the maintained counters against.
async fn recount(store: &Arc<dyn Store>) -> Counts {
    let n = |status: TopicStatus| async move {
        store
            .topics(&TopicFilter {
                status: Some(status),
                ..Default::default()
            })
            .await
            .unwrap()
            .len() as i64
    };
    Counts {
        pending: n(TopicStatus::Pending).await,
        approved: n(TopicStatus::Approved).await,
        active: n(TopicStatus::Active).await,
        inactive: n(TopicStatus::Inactive).await,
        rejected: n(TopicStatus::Rejected).await,
        deleted: n(TopicStatus::Deleted).await,
        subscriptions: store
            .subscriptions(&SubscriptionFilter::default())
            .await
            .unwrap()
            .len() as i64,
        users: store.users(&UserFilter::default()).await.unwrap().len() as i64,
    }
}

async fn created_topic_is_pending_with_an_audit_row(store: Arc<dyn Store>) {
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
    assert_eq!(t.traffic_profile, None);

    let profile: TrafficProfile = "daily:peak=200,trough=20,peak_at=09:30,tz=Europe/Berlin+bursts:rate=1,factor=5,every=1m,for=2s"
        .parse()
        .unwrap();
    let shaped = store
        .create_topic(
            "alice",
            NewTopic {
                traffic_profile: Some(profile.clone()),
                ..new_topic("shaped")
            },
        )
        .await
        .unwrap();
    assert_eq!(shaped.traffic_profile.as_ref(), Some(&profile));
    assert_eq!(
        store.topic(shaped.topic_id).await.unwrap().traffic_profile,
        Some(profile)
    );
}

async fn one_live_topic_per_name_and_deletion_frees_the_name(store: Arc<dyn Store>) {
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

async fn invalid_figures_are_refused_before_writing(store: Arc<dyn Store>) {
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
        // A profile sets the rate: both would leave the producer to guess.
        NewTopic {
            rate_per_second: Some(5.0),
            traffic_profile: Some(TrafficProfile::constant(RatePerSecond::new(5.0).unwrap())),
            ..new_topic("a")
        },
        // Too small for the producer to pace: 1/rate is no Duration.
        NewTopic {
            rate_per_second: Some(1e-20),
            ..new_topic("a")
        },
    ] {
        let r = store.create_topic("alice", bad).await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    }
    assert_eq!(store.counts().await.unwrap(), Counts::default());
}

async fn lifecycle_stamps_times_and_keeps_the_rejection_reason(store: Arc<dyn Store>) {
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

async fn repeated_request_changes_nothing_and_writes_no_audit_row(store: Arc<dyn Store>) {
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

async fn invalid_transition_is_refused_and_changes_nothing(store: Arc<dyn Store>) {
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

async fn concurrent_approvals_make_one_transition_and_one_audit_row(store: Arc<dyn Store>) {
    let t = store
        .create_topic("alice", new_topic("race"))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..50 {
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

async fn subscribing_needs_an_active_topic_and_is_idempotent(store: Arc<dyn Store>) {
    user(&store, "u1").await;
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

async fn deleting_a_subscribed_topic_is_refused(store: Arc<dyn Store>) {
    let t = active_topic(&store, "busy").await;
    user(&store, "u1").await;
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

async fn listing_filters_by_status_and_pages_newest_first(store: Arc<dyn Store>) {
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

async fn tokens_expire_and_go_with_their_user(store: Arc<dyn Store>) {
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

async fn the_last_admin_cannot_be_deleted(store: Arc<dyn Store>) {
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

async fn audit_by_topic_name_covers_deleted_topics_of_that_name(store: Arc<dyn Store>) {
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

async fn concurrent_creates_of_one_name_make_one_topic(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.create_topic("alice", new_topic("contested")).await })
        })
        .collect();
    let (mut created, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => created += 1,
            Err(StoreError::Conflict(_)) => refused += 1,
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!((created, refused), (1, 19));
    let creates = store
        .audit(&AuditFilter {
            action: Some("create".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(creates.len(), 1);
    assert_eq!(store.counts().await.unwrap(), recount(&store).await);
}

async fn concurrent_subscriptions_of_one_pair_make_one_row(store: Arc<dyn Store>) {
    active_topic(&store, "popular").await;
    user(&store, "u1").await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.subscribe("u1", "u1", "popular").await.unwrap() })
        })
        .collect();
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        let outcome = task.await.unwrap();
        created += outcome.created as usize;
        ids.insert(outcome.subscription.subscription_id);
    }
    assert_eq!((created, ids.len()), (1, 1));
    let rows = store
        .audit(&AuditFilter {
            action: Some("subscribe".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(store.counts().await.unwrap(), recount(&store).await);
}

async fn concurrent_deletions_of_two_admins_keep_one(store: Arc<dyn Store>) {
    for name in ["root1", "root2"] {
        store
            .create_user("system", name, "h", Role::Admin)
            .await
            .unwrap();
    }
    let tasks: Vec<_> = ["root1", "root2"]
        .into_iter()
        .map(|name| {
            let store = store.clone();
            tokio::spawn(async move { store.delete_user("system", name).await })
        })
        .collect();
    let mut deleted = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => deleted += 1,
            Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(deleted, 1);
    let users = store.users(&UserFilter::default()).await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].role, Role::Admin);
    assert_eq!(store.counts().await.unwrap(), recount(&store).await);
}

async fn committed_changes_reach_each_subscriber_once(store: Arc<dyn Store>) {
    use streamhub_model::api::Event;
    user(&store, "bob").await;
    let mut first = store.events().subscribe();
    let mut second = store.events().subscribe();
    let mut expected = Vec::new();

    let topic = store
        .create_topic("alice", new_topic("announced"))
        .await
        .unwrap();
    expected.push(Event::Topic {
        action: None,
        topic: topic.clone(),
    });
    let id = TopicRef::Id(topic.topic_id);
    // Refused and repeated changes commit nothing and announce nothing.
    store
        .subscribe("admin", "bob", "announced")
        .await
        .unwrap_err();
    for action in [Action::Approve, Action::Approve, Action::Activate] {
        let outcome = store
            .transition("admin", id.clone(), action, None)
            .await
            .unwrap();
        if outcome.changed() {
            expected.push(Event::Topic {
                action: Some(action),
                topic: outcome.topic,
            });
        }
    }
    let subscribed = store.subscribe("admin", "bob", "announced").await.unwrap();
    assert!(subscribed.created);
    expected.push(Event::Subscription {
        subscribed: true,
        subscription: subscribed.subscription,
    });
    assert!(
        !store
            .subscribe("admin", "bob", "announced")
            .await
            .unwrap()
            .created
    );
    let unsubscribed = store
        .unsubscribe("admin", "bob", "announced")
        .await
        .unwrap();
    expected.push(Event::Subscription {
        subscribed: false,
        subscription: unsubscribed,
    });

    assert_eq!(expected.len(), 5);
    for receiver in [&mut first, &mut second] {
        for event in &expected {
            assert_eq!(&receiver.recv().await.unwrap(), event);
        }
        // Nothing else arrives: in particular no echo of its own notification.
        let again =
            tokio::time::timeout(std::time::Duration::from_millis(300), receiver.recv()).await;
        assert!(again.is_err(), "a second delivery: {again:?}");
    }
}

async fn every_topic_write_counts_as_a_change_and_nothing_else_does(store: Arc<dyn Store>) {
    user(&store, "bob").await;
    let changes = || async { store.topic_changes().await.unwrap() };
    let before = changes().await;
    let t = store
        .create_topic("alice", new_topic("counted"))
        .await
        .unwrap();
    let created = changes().await;
    assert!(created > before, "{before} -> {created}");
    let id = || TopicRef::Id(t.topic_id);

    let mut last = created;
    for action in [Action::Approve, Action::Activate] {
        store.transition("admin", id(), action, None).await.unwrap();
        let now = changes().await;
        assert!(now > last, "{action:?}: {last} -> {now}");
        last = now;
    }
    // What writes no topic row leaves the count alone: a repeated or refused request,
    // a subscription, a user, a failed creation.
    store
        .transition("admin", id(), Action::Reject, None)
        .await
        .unwrap_err();
    for action in [Action::Approve, Action::Activate] {
        store.transition("admin", id(), action, None).await.unwrap();
    }
    store.subscribe("admin", "bob", "counted").await.unwrap();
    store.unsubscribe("admin", "bob", "counted").await.unwrap();
    store
        .create_user("admin", "carol", "hash", Role::User)
        .await
        .unwrap();
    store
        .create_topic("alice", new_topic("counted"))
        .await
        .unwrap_err();
    assert_eq!(changes().await, last);

    for action in [Action::Deactivate, Action::Delete] {
        store.transition("admin", id(), action, None).await.unwrap();
        let now = changes().await;
        assert!(now > last, "{action:?}: {last} -> {now}");
        last = now;
    }
}

async fn names_that_collide_in_kafka_are_refused_as_invalid(store: Arc<dyn Store>) {
    let dotted = store
        .create_topic("alice", new_topic("coll.x"))
        .await
        .unwrap();
    let refused = store.create_topic("bob", new_topic("coll_x")).await;
    match &refused {
        Err(StoreError::Invalid(m)) => {
            assert!(m.contains("'coll.x'") && m.contains("'.' and '_'"), "{m}")
        }
        other => panic!("expected invalid, got {other:?}"),
    }
    // A plain duplicate stays a conflict; unrelated names are not touched.
    let dup = store.create_topic("bob", new_topic("coll.x")).await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    store
        .create_topic("bob", new_topic("coll-x"))
        .await
        .unwrap();
    assert_eq!(recount(&store).await.pending, 2);
    // Deleting the topic frees every name that collided with it.
    store
        .transition("admin", TopicRef::Id(dotted.topic_id), Action::Delete, None)
        .await
        .unwrap();
    store
        .create_topic("bob", new_topic("coll_x"))
        .await
        .unwrap();
    let refused = store.create_topic("bob", new_topic("coll.x")).await;
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );
}

async fn a_reported_provisioning_failure_is_kept_audited_and_lets_an_admin_reject(
    store: Arc<dyn Store>,
) {
    let t = store
        .create_topic("alice", new_topic("too_replicated"))
        .await
        .unwrap();
    // Only an approved topic awaits provisioning.
    let early = store
        .provisioning_failed("producer", "too_replicated", "no")
        .await;
    assert!(matches!(early, Err(StoreError::Conflict(_))), "{early:?}");
    let id = || TopicRef::Id(t.topic_id);
    store
        .transition("admin", id(), Action::Approve, None)
        .await
        .unwrap();
    // Until the producer reports a failure, an approved topic cannot be rejected.
    let refused = store
        .transition("admin", id(), Action::Reject, Some("no".into()))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Transition(_))),
        "{refused:?}"
    );
    for blank in ["", "  "] {
        let r = store
            .provisioning_failed("producer", "too_replicated", blank)
            .await;
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    }
    let unknown = store.provisioning_failed("producer", "nope", "x").await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound(_))),
        "{unknown:?}"
    );

    let error = "replication factor 3 is more than the 1 broker(s) of the cluster";
    let mut events = store.events().subscribe();
    let failed = store
        .provisioning_failed("producer", "too_replicated", error)
        .await
        .unwrap();
    assert_eq!(failed.status, TopicStatus::Approved);
    assert_eq!(failed.provisioning_error.as_deref(), Some(error));
    assert_eq!(
        store
            .topic(t.topic_id)
            .await
            .unwrap()
            .provisioning_error
            .as_deref(),
        Some(error)
    );
    match events.recv().await.unwrap() {
        streamhub_model::api::Event::Topic { topic, .. } => {
            assert_eq!(topic.provisioning_error.as_deref(), Some(error))
        }
        other => panic!("expected a topic event, got {other:?}"),
    }
    // The same report again writes nothing.
    store
        .provisioning_failed("producer", "too_replicated", error)
        .await
        .unwrap();
    let audited = store
        .audit(&AuditFilter {
            action: Some("provisioning_failed".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0].actor, "producer");
    assert_eq!(audited[0].topic_id, Some(t.topic_id));
    assert_eq!(audited[0].detail.as_deref(), Some(error));

    let out = store
        .transition(
            "admin",
            id(),
            Action::Reject,
            Some("needs 3 brokers".into()),
        )
        .await
        .unwrap();
    assert_eq!(out.from, TopicStatus::Approved);
    assert_eq!(out.topic.status, TopicStatus::Rejected);
    assert_eq!(
        out.topic.rejection_reason.as_deref(),
        Some("needs 3 brokers")
    );

    // A failure the producer later overcomes (a broker was added) ends with activation.
    let later = store
        .create_topic("alice", new_topic("fixed_later"))
        .await
        .unwrap();
    let later = TopicRef::Id(later.topic_id);
    store
        .transition("admin", later.clone(), Action::Approve, None)
        .await
        .unwrap();
    store
        .provisioning_failed("producer", "fixed_later", error)
        .await
        .unwrap();
    let active = store
        .transition("producer", later, Action::Activate, None)
        .await
        .unwrap();
    assert_eq!(active.topic.status, TopicStatus::Active);
    assert_eq!(active.topic.provisioning_error, None);
    assert_eq!(recount(&store).await, store.counts().await.unwrap());
}

async fn the_reject_reason_is_in_the_audit_log(store: Arc<dyn Store>) {
    let t = store
        .create_topic("alice", new_topic("unwanted"))
        .await
        .unwrap();
    store
        .transition(
            "admin",
            TopicRef::Id(t.topic_id),
            Action::Reject,
            Some("duplicate of orders".into()),
        )
        .await
        .unwrap();
    let rows = store
        .audit(&AuditFilter {
            action: Some("reject".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].after.as_deref(), Some("rejected"));
    assert_eq!(rows[0].detail.as_deref(), Some("duplicate of orders"));
}

async fn an_activations_generation_record_is_in_the_audit_log_only(store: Arc<dyn Store>) {
    let t = store
        .create_topic("alice", new_topic("replayable"))
        .await
        .unwrap();
    let record = r#"{"seed":7}"#;
    for action in [Action::Approve, Action::Activate, Action::Deactivate] {
        store
            .transition(
                "producer",
                TopicRef::Id(t.topic_id),
                action,
                Some(record.into()),
            )
            .await
            .unwrap();
    }
    let rows = store
        .audit(&AuditFilter {
            topic_id: Some(t.topic_id),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let details: Vec<(&str, Option<&str>)> = rows
        .iter()
        .map(|r| (r.action.as_str(), r.detail.as_deref()))
        .collect();
    assert!(details.contains(&("activate", Some(record))), "{details:?}");
    assert!(details.contains(&("approve", None)), "{details:?}");
    assert!(details.contains(&("deactivate", None)), "{details:?}");
    // Only a rejection's reason is kept on the topic itself.
    let topic = store.topic(t.topic_id).await.unwrap();
    assert_eq!(topic.rejection_reason, None);
}

async fn a_deleted_users_subscriptions_go_with_them(store: Arc<dyn Store>) {
    for name in ["first", "second"] {
        active_topic(&store, name).await;
    }
    user(&store, "dora").await;
    user(&store, "eve").await;
    for name in ["first", "second"] {
        store.subscribe("admin", "dora", name).await.unwrap();
    }
    store.subscribe("admin", "eve", "first").await.unwrap();
    let mut events = store.events().subscribe();

    store.delete_user("admin", "dora").await.unwrap();
    let left = store
        .subscriptions(&SubscriptionFilter::default())
        .await
        .unwrap();
    let left: Vec<_> = left.iter().map(|s| s.user_id.as_str()).collect();
    assert_eq!(left, ["eve"], "only the other user's subscription stays");
    assert_eq!(store.counts().await.unwrap(), recount(&store).await);
    let unsubscribes = store
        .audit(&AuditFilter {
            action: Some("unsubscribe".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(unsubscribes.len(), 2, "{unsubscribes:?}");
    for name in ["first", "second"] {
        match events.recv().await.unwrap() {
            streamhub_model::api::Event::Subscription {
                subscribed: false,
                subscription,
            } => assert_eq!(
                (
                    subscription.user_id.as_str(),
                    subscription.topic_name.as_str()
                ),
                ("dora", name)
            ),
            other => panic!("unexpected event: {other:?}"),
        }
    }

    // A new account of the same name starts with nothing.
    user(&store, "dora").await;
    let inherited = store
        .subscriptions(&SubscriptionFilter {
            user_id: Some("dora".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(inherited.is_empty(), "{inherited:?}");
    // Nothing blocks the topics' deletion any more but the other user's subscription.
    let second = store.topic_by_name("second").await.unwrap();
    for action in [Action::Deactivate, Action::Delete] {
        store
            .transition("admin", TopicRef::Id(second.topic_id), action, None)
            .await
            .unwrap();
    }
}

async fn unknown_users_cannot_be_subscribed(store: Arc<dyn Store>) {
    active_topic(&store, "open").await;
    let r = store.subscribe("admin", "ghost", "open").await;
    assert!(
        matches!(&r, Err(StoreError::NotFound(m)) if m.contains("ghost")),
        "{r:?}"
    );
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.subscriptions, 0);
    assert_eq!(counts, recount(&store).await);
    // A user differing only in case is not the same user for a subscription.
    user(&store, "frank").await;
    let r = store.subscribe("admin", "FRANK", "open").await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    assert!(
        store
            .subscribe("admin", "frank", "open")
            .await
            .unwrap()
            .created
    );
}

async fn usernames_differing_only_in_case_are_one_and_reserved_names_are_refused(
    store: Arc<dyn Store>,
) {
    store
        .create_user("system", "admin", "h", Role::Admin)
        .await
        .unwrap();
    for taken in ["ADMIN", "Admin", "aDmIn"] {
        let r = store.create_user("admin", taken, "h", Role::Admin).await;
        assert!(matches!(r, Err(StoreError::Conflict(_))), "{taken}: {r:?}");
    }
    for reserved in ["producer", "Producer", "SYSTEM"] {
        let r = store.create_user("admin", reserved, "h", Role::User).await;
        assert!(
            matches!(&r, Err(StoreError::Invalid(m)) if m.contains("reserved")),
            "{reserved}: {r:?}"
        );
    }
    let users = store.users(&UserFilter::default()).await.unwrap();
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(store.counts().await.unwrap().users, 1);
}

async fn a_user_keeps_only_the_newest_tokens(store: Arc<dyn Store>) {
    use streamhub_model::account::MAX_TOKENS_PER_USER;
    user(&store, "gina").await;
    user(&store, "hal").await;
    let expires = Utc::now() + ChronoDuration::hours(1);
    store
        .create_token("hal", "hal-token", expires)
        .await
        .unwrap();
    let total = MAX_TOKENS_PER_USER + 5;
    for i in 0..total {
        store
            .create_token("gina", &format!("gina-{i:03}"), expires)
            .await
            .unwrap();
        // The newest always works, whatever the clock's resolution.
        let newest = store
            .token_user(&format!("gina-{i:03}"), Utc::now())
            .await
            .unwrap();
        assert!(newest.is_some(), "token {i} was removed at once");
    }
    let mut live = 0;
    for i in 0..total {
        if store
            .token_user(&format!("gina-{i:03}"), Utc::now())
            .await
            .unwrap()
            .is_some()
        {
            live += 1;
        }
    }
    assert_eq!(live, MAX_TOKENS_PER_USER);
    let oldest = store.token_user("gina-000", Utc::now()).await.unwrap();
    assert!(oldest.is_none(), "the oldest token still works");
    // Another user's sign-ins are not touched.
    assert!(
        store
            .token_user("hal-token", Utc::now())
            .await
            .unwrap()
            .is_some()
    );
}

/// A change and its audit row commit together or not at all: with every insert into the
/// audit table failing, each kind of mutation is refused and leaves rows, counters, the
/// count of topic changes and the event stream as they were.
async fn a_change_whose_audit_row_fails_is_not_made(
    store: Arc<dyn Store>,
    fail_audit_inserts: impl AsyncFnOnce(),
) {
    store
        .create_user("system", "admin", "h", Role::Admin)
        .await
        .unwrap();
    user(&store, "bob").await;
    active_topic(&store, "shared").await;
    active_topic(&store, "open").await;
    store
        .create_topic("alice", new_topic("waiting"))
        .await
        .unwrap();
    let ready = store
        .create_topic("alice", new_topic("ready"))
        .await
        .unwrap();
    store
        .transition("admin", TopicRef::Id(ready.topic_id), Action::Approve, None)
        .await
        .unwrap();
    store.subscribe("admin", "bob", "shared").await.unwrap();

    let snapshot = || async {
        let mut topics = Vec::new();
        for status in TopicStatus::ALL {
            topics.extend(
                store
                    .topics(&TopicFilter {
                        status: Some(status),
                        ..Default::default()
                    })
                    .await
                    .unwrap(),
            );
        }
        let audit = store
            .audit(&AuditFilter {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        (
            topics,
            store.counts().await.unwrap(),
            store.topic_changes().await.unwrap(),
            store
                .subscriptions(&SubscriptionFilter::default())
                .await
                .unwrap(),
            store.users(&UserFilter::default()).await.unwrap(),
            audit,
        )
    };
    let before = snapshot().await;
    let mut events = store.events().subscribe();
    fail_audit_inserts().await;

    let refused = |what: &str, r: Result<(), StoreError>| {
        assert!(matches!(r, Err(StoreError::Backend(_))), "{what}: {r:?}");
    };
    let waiting = || TopicRef::Name("waiting".into());
    refused(
        "create a topic",
        store
            .create_topic("alice", new_topic("fresh"))
            .await
            .map(drop),
    );
    refused(
        "approve",
        store
            .transition("admin", waiting(), Action::Approve, None)
            .await
            .map(drop),
    );
    refused(
        "reject with a reason",
        store
            .transition("admin", waiting(), Action::Reject, Some("no".into()))
            .await
            .map(drop),
    );
    refused(
        "delete a topic",
        store
            .transition("admin", waiting(), Action::Delete, None)
            .await
            .map(drop),
    );
    refused(
        "activate",
        store
            .transition(
                "producer",
                TopicRef::Name("ready".into()),
                Action::Activate,
                None,
            )
            .await
            .map(drop),
    );
    refused(
        "report a provisioning failure",
        store
            .provisioning_failed("producer", "ready", "no brokers")
            .await
            .map(drop),
    );
    refused(
        "deactivate",
        store
            .transition(
                "admin",
                TopicRef::Name("open".into()),
                Action::Deactivate,
                None,
            )
            .await
            .map(drop),
    );
    refused(
        "subscribe",
        store.subscribe("admin", "bob", "open").await.map(drop),
    );
    refused(
        "unsubscribe",
        store.unsubscribe("admin", "bob", "shared").await.map(drop),
    );
    refused(
        "create a user",
        store
            .create_user("admin", "carol", "h", Role::User)
            .await
            .map(drop),
    );
    refused(
        "delete a subscribed user",
        store.delete_user("admin", "bob").await.map(drop),
    );

    assert_eq!(snapshot().await, before);
    assert_eq!(store.counts().await.unwrap(), recount(&store).await);
    assert!(
        matches!(
            events.try_recv(),
            Err(tokio::sync::broadcast::error::TryRecvError::Empty)
        ),
        "a refused change was announced"
    );
}

mod when_the_audit_insert_fails {
    use std::sync::Arc;

    use crate::{SqliteStore, Store};

    #[tokio::test]
    async fn on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite = Arc::new(SqliteStore::open(dir.path().join("meta.db")).await.unwrap());
        let store: Arc<dyn Store> = sqlite.clone();
        super::a_change_whose_audit_row_fails_is_not_made(store, async || {
            sqlite
                .execute_batch(
                    "CREATE TRIGGER audit_refused BEFORE INSERT ON audit \
                     BEGIN SELECT RAISE(ABORT, 'audit refused'); END;",
                )
                .await
                .unwrap();
        })
        .await;
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL: set STREAMHUB_TEST_POSTGRES (scripts/test does)"]
    async fn on_postgres() {
        let postgres = Arc::new(crate::postgres::testing::fresh_database().await);
        let store: Arc<dyn Store> = postgres.clone();
        super::a_change_whose_audit_row_fails_is_not_made(store, async || {
            sqlx::raw_sql(
                "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN RAISE EXCEPTION 'audit refused'; END $$; \
                 CREATE TRIGGER audit_refused BEFORE INSERT ON audit \
                 FOR EACH ROW EXECUTE FUNCTION refuse_audit();",
            )
            .execute(postgres.pool())
            .await
            .unwrap();
        })
        .await;
    }
}

async fn a_requesters_pending_topics_are_capped(store: Arc<dyn Store>) {
    let request = |name: &str, by: &str| NewTopic {
        created_by: by.into(),
        ..new_topic(name)
    };
    let max = 3;
    // In parallel too: the count and the insert are one transaction.
    let tasks: Vec<_> = (0..2 * max)
        .map(|i| {
            let store = store.clone();
            let topic = request(&format!("asked_{i}"), "alice");
            tokio::spawn(async move { store.create_topic_within("alice", topic, Some(max)).await })
        })
        .collect();
    let mut created = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(topic) => created.push(topic),
            Err(StoreError::Conflict(m)) => assert!(m.contains("pending"), "{m}"),
            Err(e) => panic!("unexpected error: {e}"),
        }
    }
    assert_eq!(created.len() as i64, max);
    // Another requester has their own quota; without a quota nothing is counted.
    store
        .create_topic_within("bob", request("bobs", "bob"), Some(max))
        .await
        .unwrap();
    store
        .create_topic("admin", request("unlimited", "alice"))
        .await
        .unwrap();
    // A decision frees a place.
    let r = store
        .create_topic_within("alice", request("one_more", "alice"), Some(max))
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    store
        .transition(
            "admin",
            TopicRef::Id(created[0].topic_id),
            Action::Approve,
            None,
        )
        .await
        .unwrap();
    store
        .transition(
            "admin",
            TopicRef::Name("unlimited".into()),
            Action::Reject,
            None,
        )
        .await
        .unwrap();
    store
        .create_topic_within("alice", request("one_more", "alice"), Some(max))
        .await
        .unwrap();
    assert_eq!(store.counts().await.unwrap(), recount(&store).await);
}

/// The guards no other scenario reaches: each refusal has its kind, and none writes an
/// audit row or moves a counter.
async fn refused_requests_say_what_is_wrong_and_write_nothing(store: Arc<dyn Store>) {
    store
        .create_user("system", "root", "h", Role::Admin)
        .await
        .unwrap();
    store
        .create_user("root", "deputy", "h", Role::Admin)
        .await
        .unwrap();
    user(&store, "bob").await;
    active_topic(&store, "open").await;
    store
        .create_token("bob", "t1", Utc::now() + ChronoDuration::hours(1))
        .await
        .unwrap();
    let audit_rows = async || {
        store
            .audit(&AuditFilter {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap()
            .len()
    };
    let before = audit_rows().await;

    let r = store.delete_user("root", "ghost").await;
    assert!(
        matches!(&r, Err(StoreError::NotFound(m)) if m.contains("ghost")),
        "{r:?}"
    );
    let r = store.unsubscribe("root", "bob", "nowhere").await;
    assert!(
        matches!(&r, Err(StoreError::NotFound(m)) if m.contains("nowhere")),
        "{r:?}"
    );
    let r = store.subscribe("root", "  ", "open").await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    let r = store.subscribe("root", "bob", "nowhere").await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    let r = store
        .transition(
            "root",
            TopicRef::Name("nowhere".into()),
            Action::Approve,
            None,
        )
        .await;
    assert!(matches!(r, Err(StoreError::NotFound(_))), "{r:?}");
    let r = store
        .create_token("bob", "t1", Utc::now() + ChronoDuration::hours(1))
        .await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    assert_eq!(audit_rows().await, before);
    assert_eq!(store.counts().await.unwrap(), recount(&store).await);

    // Of two admins one may go, and then the other is the last.
    store.delete_user("root", "deputy").await.unwrap();
    let r = store.delete_user("root", "root").await;
    assert!(matches!(r, Err(StoreError::Conflict(m)) if m.contains("last admin")));
    assert_eq!(audit_rows().await, before + 1);
    assert_eq!(store.counts().await.unwrap(), recount(&store).await);
}

async fn a_note_is_an_audit_row_and_changes_nothing_else(store: Arc<dyn Store>) {
    let t = active_topic(&store, "noted").await;
    let changes = store.topic_changes().await.unwrap();
    let counts = store.counts().await.unwrap();
    let mut events = store.events().subscribe();
    store
        .note(&AuditNote {
            actor: "admin-service",
            action: "kafka.acl-drift",
            topic_id: Some(t.topic_id),
            target: "noted",
            detail: Some("removed by hand, granted again: Allow User:alice Read on Topic:noted"),
        })
        .await
        .unwrap();
    let rows = store
        .audit(&AuditFilter {
            action: Some("kafka.acl-drift".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].topic_id, Some(t.topic_id));
    assert_eq!(rows[0].actor, "admin-service");
    assert!(rows[0].detail.as_deref().unwrap().contains("granted again"));
    assert_eq!(store.topic_changes().await.unwrap(), changes);
    assert_eq!(store.counts().await.unwrap(), counts);
    assert!(events.try_recv().is_err(), "a note is no event");
}
