//! The PostgreSQL engine, on sqlx.
//!
//! Concurrency: several service instances may share one database, so nothing relies on
//! being the only writer. Transactions run at READ COMMITTED; a lifecycle change locks its
//! topic row (`SELECT ... FOR UPDATE`), so concurrent requests on one topic queue and each
//! decides on the state the previous one committed. Subscribing takes a share lock on the
//! topic, which keeps a topic from being deleted or deactivated under a new subscription.
//! Locks are always taken in the same order (topic or user rows, then counters in name
//! order), so transactions never deadlock each other.
//!
//! Events: each change announces itself with `pg_notify` inside its own transaction, so
//! the other instances hear of it exactly when it commits, even if this instance dies right
//! after. Each instance LISTENs on one channel and tags its notifications with its own id
//! so it does not deliver its own events twice.

use std::hash::{BuildHasher, Hasher};
use std::str::FromStr;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::migrate::{Migrate, Migrator};
use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Postgres, QueryBuilder};
use streamhub_model::account::MAX_TOKENS_PER_USER;
use streamhub_model::api::{AuditEntry, Event, Subscription, Topic, User};
use streamhub_model::{Action, Role, TopicName, TopicStatus, Transition};
use tokio::task::JoinHandle;

use crate::events::{subscription_event, topic_event};
use crate::migrations::{LEGACY_TABLE, failed, legacy_applied};
use crate::rows::{
    AUDIT_COLUMNS, AuditRow, CounterRow, CredentialsRow, GoneSubscriptionRow, IntoModel,
    SUBSCRIPTION_SELECT, SubscriptionRow, TOPIC_COLUMNS, TopicRow, USER_COLUMNS, UserRow, model,
    models,
};
use crate::{
    AuditFilter, Counts, Credentials, EventBus, NewTopic, Result, Store, StoreError,
    SubscribeOutcome, SubscriptionFilter, TopicFilter, TopicRef, TransitionOutcome, UserFilter,
    is_unique_violation, not_awaiting_provisioning, provisioning_error, too_many_pending,
    validate_user_id, validate_username,
};

/// Embedded migrations, applied in order at open.
pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("src/postgres/migrations");

/// Held while migrating, so instances starting together migrate one after the other.
const MIGRATION_LOCK: i64 = 0x5354_5245_414d_4855; // "STREAMHU"
/// The first key of the advisory locks that serialise one requester's topic requests.
const PENDING_LOCK_SPACE: i32 = 0x5348; // "SH"
const EVENT_CHANNEL: &str = "streamhub_events";
/// NOTIFY refuses payloads of 8000 bytes or more.
const MAX_NOTIFY_PAYLOAD: usize = 7900;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

static TOPIC_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {TOPIC_COLUMNS} FROM topics WHERE topic_id = $1"));
static LIVE_TOPIC_BY_NAME: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {TOPIC_COLUMNS} FROM topics WHERE name = $1 AND status <> 'deleted'")
});
/// The live topic whose name has this collision key; the expression is the unique index's.
const LIVE_NAME_BY_COLLISION_KEY: &str =
    "SELECT name FROM topics WHERE replace(name, '.', '_') = $1 AND status <> 'deleted'";

pub struct PostgresStore {
    pool: PgPool,
    events: EventBus,
    /// Tells this instance's notifications from the others'.
    origin: u64,
    /// Numbers this instance's notifications.
    seq: AtomicU64,
    listening: JoinHandle<()>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let options = self.pool.connect_options();
        f.debug_struct("PostgresStore")
            .field("host", &options.get_host())
            .field("port", &options.get_port())
            .field("database", &options.get_database())
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listening.abort();
    }
}

/// What travels in a notification: the event, or for an event too large for NOTIFY the
/// topic it is about, which receivers read back from the database.
#[derive(Serialize, Deserialize)]
struct Notice {
    origin: u64,
    /// Numbers this instance's notices: PostgreSQL folds identical payloads sent in one
    /// transaction into one.
    seq: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event: Option<Event>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    topic: Option<TopicNotice>,
}

#[derive(Serialize, Deserialize)]
struct TopicNotice {
    action: Option<Action>,
    topic_id: i64,
}

fn notice_payload(origin: u64, seq: u64, event: Event) -> Result<String> {
    let topic = match &event {
        Event::Topic { action, topic } => Some(TopicNotice {
            action: *action,
            topic_id: topic.topic_id,
        }),
        Event::Subscription { .. } => None,
    };
    let full = serde_json::to_string(&Notice {
        origin,
        seq,
        event: Some(event),
        topic: None,
    })
    .map_err(|e| StoreError::Backend(format!("cannot encode event: {e}")))?;
    if full.len() < MAX_NOTIFY_PAYLOAD {
        return Ok(full);
    }
    let short = Notice {
        origin,
        seq,
        event: None,
        topic,
    };
    serde_json::to_string(&short)
        .map_err(|e| StoreError::Backend(format!("cannot encode event: {e}")))
}

/// An id for this instance, unique enough to tell instances apart on one channel.
fn instance_id() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish()
}

fn status_counter(status: TopicStatus) -> String {
    format!("topics.{status}")
}

/// Adds the deltas to the counters, in name order (see the module comment on locks).
/// Every transaction of a kind updates the same counter rows, so they wait on each other
/// from here to their commit: callers bump last.
async fn bump(conn: &mut PgConnection, deltas: &[(&str, i64)]) -> Result<()> {
    let mut deltas = deltas.to_vec();
    deltas.sort_by(|a, b| a.0.cmp(b.0));
    for (name, delta) in deltas {
        sqlx::query("UPDATE counters SET value = value + $1 WHERE name = $2")
            .bind(delta)
            .bind(name)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn audit(
    conn: &mut PgConnection,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    topic_id: Option<i64>,
    target: &str,
    before: Option<&str>,
    after: Option<&str>,
) -> Result<()> {
    audit_with_detail(
        conn, at, actor, action, topic_id, target, before, after, None,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn audit_with_detail(
    conn: &mut PgConnection,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    topic_id: Option<i64>,
    target: &str,
    before: Option<&str>,
    after: Option<&str>,
    detail: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit (at, actor, action, topic_id, target, before, after, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(at)
    .bind(actor)
    .bind(action)
    .bind(topic_id)
    .bind(target)
    .bind(before)
    .bind(after)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

/// Why `name` could not be inserted: a live topic whose name collides with it in Kafka
/// (invalid), or one of the same name (a conflict).
async fn refused_name(conn: &mut PgConnection, name: &TopicName) -> StoreError {
    let existing: Result<Option<String>> = sqlx::query_scalar(LIVE_NAME_BY_COLLISION_KEY)
        .bind(name.collision_key())
        .fetch_optional(conn)
        .await
        .map_err(StoreError::from);
    match existing {
        Ok(Some(existing)) => match name.check_collision(&existing) {
            Err(collision) => StoreError::Invalid(collision.to_string()),
            Ok(()) => StoreError::Conflict(format!("a topic named '{name}' already exists")),
        },
        // The other topic went away meanwhile: the name is free now.
        Ok(None) => StoreError::Conflict(format!(
            "a topic named like '{name}' was being created or deleted at the same time; try again"
        )),
        Err(e) => e,
    }
}

async fn topic_by_id(conn: &mut PgConnection, topic_id: i64) -> Result<Option<Topic>> {
    model(
        sqlx::query_as::<_, TopicRow>(&TOPIC_BY_ID)
            .bind(topic_id)
            .fetch_optional(conn)
            .await?,
    )
}

/// The topic `target` names, locked until the transaction ends (`lock` is `FOR UPDATE`
/// or `FOR SHARE`).
async fn locked_topic(
    conn: &mut PgConnection,
    target: &TopicRef,
    lock: &str,
) -> Result<Option<Topic>> {
    let row = match target {
        TopicRef::Id(id) => {
            sqlx::query_as::<_, TopicRow>(&format!("{} {lock}", *TOPIC_BY_ID))
                .bind(*id)
                .fetch_optional(conn)
                .await?
        }
        TopicRef::Name(name) => {
            sqlx::query_as::<_, TopicRow>(&format!("{} {lock}", *LIVE_TOPIC_BY_NAME))
                .bind(name)
                .fetch_optional(conn)
                .await?
        }
    };
    model(row)
}

fn no_such_user(username: &str) -> StoreError {
    StoreError::NotFound(format!("user '{username}' does not exist"))
}

fn no_such_topic(name: &str) -> StoreError {
    StoreError::NotFound(format!("topic '{name}' does not exist"))
}

impl PostgresStore {
    /// Connects to the database a `postgres://` or `postgresql://` URL names, applies
    /// migrations and starts listening for other instances' events.
    pub async fn open(url: &str) -> Result<PostgresStore> {
        Self::open_with_pool(url, crate::DEFAULT_POOL_SIZE).await
    }

    /// [`PostgresStore::open`] with at most `pool_size` connections (at least 2: one
    /// listens for the other instances' events).
    pub async fn open_with_pool(url: &str, pool_size: u32) -> Result<PostgresStore> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Invalid(format!("bad PostgreSQL URL: {e}")))?;
        Self::open_with(options, pool_size).await
    }

    pub async fn open_with(options: PgConnectOptions, pool_size: u32) -> Result<PostgresStore> {
        if pool_size < 2 {
            return Err(StoreError::Invalid(format!(
                "a PostgreSQL pool needs at least 2 connections, not {pool_size}"
            )));
        }
        let pool = PgPoolOptions::new()
            .max_connections(pool_size)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot connect to PostgreSQL: {e}")))?;
        migrate(&pool).await?;

        let origin = instance_id();
        let events = EventBus::default();
        // Listening before the first request is served: a change another instance
        // commits once this returns reaches this one.
        let mut listener = PgListener::connect_with(&pool).await?;
        listener.listen(EVENT_CHANNEL).await?;
        let listening = tokio::spawn(deliver_from_others(
            pool.clone(),
            origin,
            listener,
            events.clone(),
        ));
        Ok(PostgresStore {
            pool,
            events,
            origin,
            seq: AtomicU64::new(0),
            listening,
        })
    }

    /// Announces `event` to the other instances as part of `tx`: PostgreSQL delivers the
    /// notification when `tx` commits, and never if it rolls back.
    async fn announce(&self, tx: &mut PgConnection, event: &Event) -> Result<()> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let payload = notice_payload(self.origin, seq, event.clone())?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(EVENT_CHANNEL)
            .bind(payload)
            .execute(tx)
            .await?;
        Ok(())
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

/// Feeds other instances' events to this instance's subscribers. Notifications sent while
/// the listening connection is lost are gone for good, so once it listens again the bus
/// announces a resync: its clients reload what they show.
async fn deliver_from_others(pool: PgPool, origin: u64, mut listener: PgListener, bus: EventBus) {
    let mut failures = 0u32;
    // The connection was lost and the listener is not known to listen again yet.
    let mut lost = false;
    loop {
        if lost {
            // Reconnects and listens again if the connection is gone; on a dead
            // connection it fails, and `try_recv` below drops that connection.
            if sqlx::query("SELECT 1").execute(&mut listener).await.is_ok() {
                lost = false;
                tracing::info!("listening to other instances again; clients reload");
                bus.resync();
            }
        }
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                failures = 0;
                if std::mem::take(&mut lost) {
                    bus.resync();
                }
                deliver(&pool, origin, &bus, notification.payload()).await;
            }
            Ok(None) => {
                // Lost, and (eager reconnection) listening again already.
                failures = 0;
                lost = false;
                tracing::warn!(
                    "lost the PostgreSQL event listener and reconnected; clients reload"
                );
                bus.resync();
            }
            Err(e) => {
                failures += 1;
                lost = true;
                tracing::warn!(error = %e, "lost the PostgreSQL event listener; reconnecting");
                let backoff = Duration::from_millis(100 * u64::from(failures.min(50)));
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

/// Publishes the event of one notification, unless this instance sent it.
async fn deliver(pool: &PgPool, origin: u64, bus: &EventBus, payload: &str) {
    let notice: Notice = match serde_json::from_str(payload) {
        Ok(notice) => notice,
        Err(e) => {
            tracing::warn!(error = %e, "ignoring an event notification that does not parse");
            return;
        }
    };
    if notice.origin == origin {
        return;
    }
    if let Some(event) = notice.event {
        bus.publish(event);
    } else if let Some(TopicNotice { action, topic_id }) = notice.topic {
        let topic = match pool.acquire().await {
            Ok(mut conn) => topic_by_id(&mut conn, topic_id).await,
            Err(e) => Err(e.into()),
        };
        match topic {
            Ok(Some(topic)) => bus.publish(Event::Topic { action, topic }),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the topic of an event"),
        }
    }
}

/// Hands a record of the earlier runner over to sqlx (see [`crate::migrations`]) and
/// applies the migrations, all in one transaction under an advisory lock: instances
/// starting together migrate one after the other.
async fn migrate(pool: &PgPool) -> Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await?;
    let legacy: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
        .bind(LEGACY_TABLE)
        .fetch_one(&mut *tx)
        .await?;
    if legacy {
        let applied: Vec<i64> = sqlx::query_scalar(&format!("SELECT version FROM {LEGACY_TABLE}"))
            .fetch_all(&mut *tx)
            .await?;
        let recorded = legacy_applied(&MIGRATOR, &applied)?;
        tx.ensure_migrations_table().await.map_err(failed)?;
        for migration in &recorded {
            sqlx::query(
                "INSERT INTO _sqlx_migrations \
                 (version, description, success, checksum, execution_time) \
                 VALUES ($1, $2, TRUE, $3, 0) ON CONFLICT DO NOTHING",
            )
            .bind(migration.version)
            .bind(&*migration.description)
            .bind(&*migration.checksum)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(&format!("DROP TABLE {LEGACY_TABLE}"))
            .execute(&mut *tx)
            .await?;
        tracing::info!(
            migrations = recorded.len(),
            "handed the metadata store's migration record over to sqlx"
        );
    }
    MIGRATOR.run_direct(&mut *tx).await.map_err(failed)?;
    tx.commit().await?;
    Ok(())
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_topic_within(
        &self,
        actor: &str,
        new: NewTopic,
        max_pending: Option<i64>,
    ) -> Result<Topic> {
        new.validate()?;
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        if let Some(max) = max_pending {
            // Requests of one requester take turns, so each counts the others' rows.
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
                .bind(PENDING_LOCK_SPACE)
                .bind(new.created_by.as_str())
                .execute(&mut *tx)
                .await?;
            let pending: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM topics WHERE status = 'pending' AND created_by = $1",
            )
            .bind(new.created_by.as_str())
            .fetch_one(&mut *tx)
            .await?;
            if pending >= max {
                return Err(too_many_pending(&new.created_by, pending));
            }
        }
        // A concurrent create of the same name waits on the unique index, then conflicts.
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO topics (name, status, partitions, replication_factor, description, \
             data_type, rate_per_second, created_by, created_at, updated_at) \
             VALUES ($1, 'pending', $2, $3, $4, $5, $6, $7, $8, $8) \
             ON CONFLICT DO NOTHING RETURNING topic_id",
        )
        .bind(new.name.as_str())
        .bind(new.partitions)
        .bind(new.replication_factor)
        .bind(new.description.as_str())
        .bind(new.data_type.as_str())
        .bind(new.rate_per_second)
        .bind(new.created_by.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(topic_id) = inserted else {
            return Err(refused_name(&mut tx, &new.name).await);
        };
        audit(
            &mut tx,
            now,
            actor,
            "create",
            Some(topic_id),
            new.name.as_str(),
            None,
            Some("pending"),
        )
        .await?;
        let topic = topic_by_id(&mut tx, topic_id)
            .await?
            .ok_or_else(|| StoreError::Backend("created topic vanished".into()))?;
        bump(&mut tx, &[(&status_counter(TopicStatus::Pending), 1)]).await?;
        let event = topic_event(None, &topic);
        self.announce(&mut tx, &event).await?;
        tx.commit().await?;
        self.events.publish(event);
        Ok(topic)
    }

    async fn topic(&self, topic_id: i64) -> Result<Topic> {
        let mut conn = self.pool.acquire().await?;
        topic_by_id(&mut conn, topic_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("topic {topic_id} does not exist")))
    }

    async fn topic_by_name(&self, name: &str) -> Result<Topic> {
        model(
            sqlx::query_as::<_, TopicRow>(&LIVE_TOPIC_BY_NAME)
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )?
        .ok_or_else(|| no_such_topic(name))
    }

    async fn topics(&self, filter: &TopicFilter) -> Result<Vec<Topic>> {
        let rows = match filter.status {
            Some(status) => {
                sqlx::query_as::<_, TopicRow>(&format!(
                    "SELECT {TOPIC_COLUMNS} FROM topics WHERE status = $1 \
                     ORDER BY topic_id DESC LIMIT $2 OFFSET $3"
                ))
                .bind(status.as_str())
                .bind(filter.limit)
                .bind(filter.offset)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query_as::<_, TopicRow>(&format!(
                    "SELECT {TOPIC_COLUMNS} FROM topics WHERE status <> 'deleted' \
                     ORDER BY topic_id DESC LIMIT $1 OFFSET $2"
                ))
                .bind(filter.limit)
                .bind(filter.offset)
                .fetch_all(&self.pool)
                .await?
            }
        };
        models(rows)
    }

    async fn topic_changes(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT value FROM counters WHERE name = 'topics.changes'")
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::Backend("the topics.changes counter is missing".into()))
    }

    async fn transition(
        &self,
        actor: &str,
        target: TopicRef,
        action: Action,
        reason: Option<String>,
    ) -> Result<TransitionOutcome> {
        let mut tx = self.pool.begin().await?;
        // Concurrent requests on this topic wait here and then see what this one commits.
        let topic = locked_topic(&mut tx, &target, "FOR UPDATE")
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("{target} does not exist")))?;
        let from = topic.status;
        let to = match topic.decide(action)? {
            Transition::Unchanged => {
                return Ok(TransitionOutcome {
                    topic,
                    transition: Transition::Unchanged,
                    from,
                });
            }
            Transition::To(to) => to,
        };
        if action == Action::Delete {
            let subscribers: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM subscriptions WHERE topic_id = $1")
                    .bind(topic.topic_id)
                    .fetch_one(&mut *tx)
                    .await?;
            if subscribers > 0 {
                return Err(StoreError::Conflict(format!(
                    "topic '{}' has {subscribers} subscription(s); they must be removed before it can be deleted",
                    topic.topic_name
                )));
            }
        }
        let now = Utc::now();
        let stamp_column = match action {
            Action::Approve => Some("approved_at"),
            Action::Activate | Action::Reactivate => Some("activated_at"),
            Action::Deactivate => Some("deactivated_at"),
            Action::Reject | Action::Delete => None,
        };
        let reason = if action == Action::Reject {
            reason
        } else {
            None
        };
        let mut sql = String::from("UPDATE topics SET status = $1, updated_at = $2");
        if let Some(column) = stamp_column {
            sql.push_str(&format!(", {column} = $2"));
        }
        if reason.is_some() {
            sql.push_str(", rejection_reason = $5");
        }
        if matches!(action, Action::Activate | Action::Reactivate) {
            sql.push_str(", provisioning_error = NULL");
        }
        // Redundant with the row lock, and kept: the write itself refuses a topic that
        // moved since it was read.
        sql.push_str(" WHERE topic_id = $3 AND status = $4");
        let mut update = sqlx::query(&sql)
            .bind(to.as_str())
            .bind(now)
            .bind(topic.topic_id)
            .bind(from.as_str());
        if let Some(reason) = &reason {
            update = update.bind(reason.clone());
        }
        let updated = update.execute(&mut *tx).await?.rows_affected();
        if updated != 1 {
            return Err(StoreError::Conflict(format!(
                "{target} changed while it was being updated; try again"
            )));
        }
        audit_with_detail(
            &mut tx,
            now,
            actor,
            action.as_str(),
            Some(topic.topic_id),
            &topic.topic_name,
            Some(from.as_str()),
            Some(to.as_str()),
            reason.as_deref(),
        )
        .await?;
        let topic = topic_by_id(&mut tx, topic.topic_id)
            .await?
            .ok_or_else(|| StoreError::Backend("updated topic vanished".into()))?;
        bump(
            &mut tx,
            &[(&status_counter(from), -1), (&status_counter(to), 1)],
        )
        .await?;
        let event = topic_event(Some(action), &topic);
        self.announce(&mut tx, &event).await?;
        tx.commit().await?;
        self.events.publish(event);
        Ok(TransitionOutcome {
            topic,
            transition: Transition::To(to),
            from,
        })
    }

    async fn provisioning_failed(&self, actor: &str, name: &str, error: &str) -> Result<Topic> {
        let error = provisioning_error(error)?;
        let mut tx = self.pool.begin().await?;
        let topic = locked_topic(&mut tx, &TopicRef::Name(name.into()), "FOR UPDATE")
            .await?
            .ok_or_else(|| no_such_topic(name))?;
        if !topic.status.awaits_provisioning() {
            return Err(not_awaiting_provisioning(name, topic.status));
        }
        if topic.provisioning_error.as_deref() == Some(error) {
            return Ok(topic);
        }
        let now = Utc::now();
        let status = topic.status.as_str();
        sqlx::query(
            "UPDATE topics SET provisioning_error = $1, updated_at = $2 WHERE topic_id = $3",
        )
        .bind(error)
        .bind(now)
        .bind(topic.topic_id)
        .execute(&mut *tx)
        .await?;
        audit_with_detail(
            &mut tx,
            now,
            actor,
            "provisioning_failed",
            Some(topic.topic_id),
            name,
            Some(status),
            Some(status),
            Some(error),
        )
        .await?;
        let topic = topic_by_id(&mut tx, topic.topic_id)
            .await?
            .ok_or_else(|| StoreError::Backend("updated topic vanished".into()))?;
        let event = topic_event(None, &topic);
        self.announce(&mut tx, &event).await?;
        tx.commit().await?;
        self.events.publish(event);
        Ok(topic)
    }

    async fn subscribe(
        &self,
        actor: &str,
        user_id: &str,
        topic_name: &str,
    ) -> Result<SubscribeOutcome> {
        validate_user_id(user_id)?;
        let mut tx = self.pool.begin().await?;
        // The share lock keeps the user until this commits: a concurrent deletion of the
        // user waits, then removes this subscription with the user.
        let user: Option<i64> =
            sqlx::query_scalar("SELECT user_id FROM users WHERE username = $1 FOR SHARE")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        if user.is_none() {
            return Err(no_such_user(user_id));
        }
        // The share lock keeps the topic active (and undeleted) until this commits.
        let topic = locked_topic(&mut tx, &TopicRef::Name(topic_name.into()), "FOR SHARE")
            .await?
            .ok_or_else(|| no_such_topic(topic_name))?;
        if topic.status != TopicStatus::Active {
            return Err(StoreError::Conflict(format!(
                "topic '{topic_name}' is {}; only active topics can be subscribed to",
                topic.status
            )));
        }
        let by_user_and_topic =
            format!("{SUBSCRIPTION_SELECT} WHERE s.user_id = $1 AND s.topic_id = $2");
        let now = Utc::now();
        // A concurrent subscribe of the same pair waits on the unique key, then inserts
        // nothing and answers with the row the other one committed.
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO subscriptions (user_id, topic_id, subscribed_at, status) \
             VALUES ($1, $2, $3, 'active') ON CONFLICT (user_id, topic_id) DO NOTHING \
             RETURNING subscription_id",
        )
        .bind(user_id)
        .bind(topic.topic_id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let created = inserted.is_some();
        if created {
            audit(
                &mut tx,
                now,
                actor,
                "subscribe",
                Some(topic.topic_id),
                &format!("{user_id}/{topic_name}"),
                None,
                Some("active"),
            )
            .await?;
        }
        let subscription = model(
            sqlx::query_as::<_, SubscriptionRow>(&by_user_and_topic)
                .bind(user_id)
                .bind(topic.topic_id)
                .fetch_optional(&mut *tx)
                .await?,
        )?
        .ok_or_else(|| StoreError::Backend("subscription vanished".into()))?;
        let event = created.then(|| subscription_event(true, &subscription));
        if let Some(event) = &event {
            bump(&mut tx, &[("subscriptions", 1)]).await?;
            self.announce(&mut tx, event).await?;
        }
        tx.commit().await?;
        if let Some(event) = event {
            self.events.publish(event);
        }
        Ok(SubscribeOutcome {
            subscription,
            created,
        })
    }

    async fn unsubscribe(
        &self,
        actor: &str,
        user_id: &str,
        topic_name: &str,
    ) -> Result<Subscription> {
        let mut tx = self.pool.begin().await?;
        let topic = model(
            sqlx::query_as::<_, TopicRow>(&LIVE_TOPIC_BY_NAME)
                .bind(topic_name)
                .fetch_optional(&mut *tx)
                .await?,
        )?
        .ok_or_else(|| no_such_topic(topic_name))?;
        // Of two concurrent requests, the second deletes nothing and is told so.
        let subscription = model(
            sqlx::query_as::<_, SubscriptionRow>(
                "DELETE FROM subscriptions WHERE user_id = $1 AND topic_id = $2 \
                 RETURNING subscription_id, user_id, $3::TEXT AS topic_name, subscribed_at, status",
            )
            .bind(user_id)
            .bind(topic.topic_id)
            .bind(topic_name)
            .fetch_optional(&mut *tx)
            .await?,
        )?
        .ok_or_else(|| {
            StoreError::NotFound(format!(
                "'{user_id}' is not subscribed to topic '{topic_name}'"
            ))
        })?;
        audit(
            &mut tx,
            Utc::now(),
            actor,
            "unsubscribe",
            Some(topic.topic_id),
            &format!("{user_id}/{topic_name}"),
            Some("active"),
            None,
        )
        .await?;
        bump(&mut tx, &[("subscriptions", -1)]).await?;
        let event = subscription_event(false, &subscription);
        self.announce(&mut tx, &event).await?;
        tx.commit().await?;
        self.events.publish(event);
        Ok(subscription)
    }

    async fn subscriptions(&self, filter: &SubscriptionFilter) -> Result<Vec<Subscription>> {
        let rows = match &filter.user_id {
            Some(user_id) => {
                sqlx::query_as::<_, SubscriptionRow>(&format!(
                    "{SUBSCRIPTION_SELECT} WHERE s.user_id = $1 \
                     ORDER BY s.subscription_id LIMIT $2 OFFSET $3"
                ))
                .bind(user_id)
                .bind(filter.limit)
                .bind(filter.offset)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query_as::<_, SubscriptionRow>(&format!(
                    "{SUBSCRIPTION_SELECT} ORDER BY s.subscription_id LIMIT $1 OFFSET $2"
                ))
                .bind(filter.limit)
                .bind(filter.offset)
                .fetch_all(&self.pool)
                .await?
            }
        };
        models(rows)
    }

    async fn counts(&self) -> Result<Counts> {
        let rows = sqlx::query_as::<_, CounterRow>("SELECT name, value FROM counters")
            .fetch_all(&self.pool)
            .await?;
        Ok(Counts::from_counters(
            rows.into_iter().map(|r| (r.name, r.value)),
        ))
    }

    async fn create_user(
        &self,
        actor: &str,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User> {
        validate_username(username)?;
        let now = Utc::now();
        let mut tx = self.pool.begin().await?;
        // Any unique index refuses the name: the username's, or its case-folded one.
        let inserted = sqlx::query_as::<_, UserRow>(&format!(
            "INSERT INTO users (username, password_hash, role, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING {USER_COLUMNS}"
        ))
        .bind(username)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = inserted else {
            return Err(StoreError::Conflict(format!(
                "user '{username}' already exists (usernames are compared ignoring case)"
            )));
        };
        let user = row.into_model()?;
        audit(
            &mut tx,
            now,
            actor,
            "user.create",
            None,
            username,
            None,
            Some(role.as_str()),
        )
        .await?;
        bump(&mut tx, &[("users", 1)]).await?;
        tx.commit().await?;
        Ok(user)
    }

    async fn users(&self, filter: &UserFilter) -> Result<Vec<User>> {
        models(
            sqlx::query_as::<_, UserRow>(&format!(
                "SELECT {USER_COLUMNS} FROM users ORDER BY username LIMIT $1 OFFSET $2"
            ))
            .bind(filter.limit)
            .bind(filter.offset)
            .fetch_all(&self.pool)
            .await?,
        )
    }

    async fn delete_user(&self, actor: &str, username: &str) -> Result<User> {
        let mut tx = self.pool.begin().await?;
        let find = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
        let user = model(
            sqlx::query_as::<_, UserRow>(&find)
                .bind(username)
                .fetch_optional(&mut *tx)
                .await?,
        )?
        .ok_or_else(|| StoreError::NotFound(format!("user '{username}' does not exist")))?;
        let still_there = if user.role == Role::Admin {
            // Deleting an admin locks every admin, in one order, so two concurrent
            // deletions cannot each leave the other as the last admin and remove both.
            let admins: Vec<String> = sqlx::query_scalar(
                "SELECT username FROM users WHERE role = 'admin' ORDER BY user_id FOR UPDATE",
            )
            .fetch_all(&mut *tx)
            .await?;
            if admins.iter().any(|a| a == username) && admins.len() <= 1 {
                return Err(StoreError::Conflict(format!(
                    "'{username}' is the last admin and cannot be deleted"
                )));
            }
            admins.iter().any(|a| a == username)
        } else {
            sqlx::query(&format!("{find} FOR UPDATE"))
                .bind(username)
                .fetch_optional(&mut *tx)
                .await?
                .is_some()
        };
        if !still_there {
            return Err(StoreError::NotFound(format!(
                "user '{username}' does not exist"
            )));
        }
        // Subscriptions go with the user, or a new account of the same name would
        // inherit them; tokens go by ON DELETE CASCADE.
        let gone = sqlx::query_as::<_, GoneSubscriptionRow>(
            "WITH gone AS (DELETE FROM subscriptions WHERE user_id = $1 \
             RETURNING subscription_id, user_id, topic_id, subscribed_at, status) \
             SELECT g.subscription_id, g.user_id, t.name AS topic_name, g.subscribed_at, \
             g.status, g.topic_id \
             FROM gone g JOIN topics t ON t.topic_id = g.topic_id ORDER BY g.subscription_id",
        )
        .bind(username)
        .fetch_all(&mut *tx)
        .await?;
        let now = Utc::now();
        let mut events = Vec::with_capacity(gone.len());
        for row in gone {
            let topic_id = row.topic_id;
            let subscription = row.subscription.into_model()?;
            audit(
                &mut tx,
                now,
                actor,
                "unsubscribe",
                Some(topic_id),
                &format!("{username}/{}", subscription.topic_name),
                Some("active"),
                None,
            )
            .await?;
            let event = subscription_event(false, &subscription);
            self.announce(&mut tx, &event).await?;
            events.push(event);
        }
        if !events.is_empty() {
            bump(&mut tx, &[("subscriptions", -(events.len() as i64))]).await?;
        }
        let deleted = sqlx::query("DELETE FROM users WHERE username = $1")
            .bind(username)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted != 1 {
            return Err(StoreError::NotFound(format!(
                "user '{username}' does not exist"
            )));
        }
        audit(
            &mut tx,
            now,
            actor,
            "user.delete",
            None,
            username,
            Some(user.role.as_str()),
            None,
        )
        .await?;
        bump(&mut tx, &[("users", -1)]).await?;
        tx.commit().await?;
        for event in events {
            self.events.publish(event);
        }
        Ok(user)
    }

    async fn credentials(&self, username: &str) -> Result<Option<Credentials>> {
        model(
            sqlx::query_as::<_, CredentialsRow>(&format!(
                "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = $1"
            ))
            .bind(username)
            .fetch_optional(&self.pool)
            .await?,
        )
    }

    async fn create_token(
        &self,
        username: &str,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query_scalar::<_, i64>(
            "INSERT INTO tokens (token_hash, user_id, created_at, expires_at) \
             SELECT $1, user_id, $2, $3 FROM users WHERE username = $4 RETURNING user_id",
        )
        .bind(token_hash)
        .bind(Utc::now())
        .bind(expires_at)
        .bind(username)
        .fetch_optional(&mut *tx)
        .await;
        let user_id = match inserted {
            Ok(Some(user_id)) => user_id,
            Ok(None) => {
                return Err(StoreError::NotFound(format!(
                    "user '{username}' does not exist"
                )));
            }
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict("token exists already".into()));
            }
            Err(e) => return Err(e.into()),
        };
        // Sign-ins beyond the user's maximum end the oldest ones; the new one stays.
        sqlx::query(
            "DELETE FROM tokens WHERE user_id = $1 AND token_hash <> $2 AND token_hash NOT IN \
             (SELECT token_hash FROM tokens WHERE user_id = $1 AND token_hash <> $2 \
              ORDER BY created_at DESC, token_hash LIMIT $3)",
        )
        .bind(user_id)
        .bind(token_hash)
        .bind(MAX_TOKENS_PER_USER - 1)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn token_user(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<User>> {
        model(
            sqlx::query_as::<_, UserRow>(
                "SELECT u.username, u.role, u.created_at FROM tokens t \
                 JOIN users u ON u.user_id = t.user_id \
                 WHERE t.token_hash = $1 AND t.expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?,
        )
    }

    async fn delete_token(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM tokens WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM tokens WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        let mut query: QueryBuilder<Postgres> =
            QueryBuilder::new(format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE TRUE"));
        if let Some(actor) = &filter.actor {
            query.push(" AND actor = ").push_bind(actor);
        }
        if let Some(topic_id) = filter.topic_id {
            query.push(" AND topic_id = ").push_bind(topic_id);
        }
        if let Some(name) = &filter.topic_name {
            query
                .push(" AND topic_id IN (SELECT topic_id FROM topics WHERE name = ")
                .push_bind(name)
                .push(")");
        }
        if let Some(action) = &filter.action {
            query.push(" AND action = ").push_bind(action);
        }
        query
            .push(" ORDER BY audit_id DESC LIMIT ")
            .push_bind(filter.limit)
            .push(" OFFSET ")
            .push_bind(filter.offset);
        models(
            query
                .build_query_as::<AuditRow>()
                .fetch_all(&self.pool)
                .await?,
        )
    }

    fn events(&self) -> &EventBus {
        &self.events
    }
}

/// Support for tests that run on a real PostgreSQL server.
#[doc(hidden)]
pub mod testing {
    use std::str::FromStr;
    use std::sync::atomic::{AtomicU64, Ordering};

    use sqlx::Connection;
    use sqlx::postgres::{PgConnectOptions, PgConnection};

    use super::{PostgresStore, instance_id};
    use crate::{Result, StoreError};

    /// The variable naming the test server, e.g. `postgres://user@127.0.0.1:5432/postgres`.
    pub const ENV: &str = "STREAMHUB_TEST_POSTGRES";

    /// Creates an empty database on the server `STREAMHUB_TEST_POSTGRES` names and returns
    /// its URL, so tests run in parallel without seeing each other's rows.
    pub async fn fresh_database_url() -> Result<String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let base = std::env::var(ENV).map_err(|_| {
            StoreError::Invalid(format!(
                "{ENV} is not set: this test needs a PostgreSQL server. Run scripts/test, or \
                 `export {ENV}=$(scripts/postgres start)` first"
            ))
        })?;
        let options = PgConnectOptions::from_str(&base)
            .map_err(|e| StoreError::Invalid(format!("{ENV} is not a PostgreSQL URL: {e}")))?;
        let name = format!(
            "streamhub_test_{:016x}_{}",
            instance_id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot connect to {ENV} ({base}): {e}")))?;
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let mut url = url_without_database(&base);
        url.push('/');
        url.push_str(&name);
        if let Some(query) = base.split_once('?').map(|(_, q)| q) {
            url.push('?');
            url.push_str(query);
        }
        Ok(url)
    }

    /// Ends every connection listening for events on the database `url` names, as a lost
    /// connection would end it; returns how many were ended.
    pub async fn terminate_listeners(url: &str) -> Result<usize> {
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Invalid(format!("bad PostgreSQL URL: {e}")))?;
        let mut conn = PgConnection::connect_with(&options).await?;
        let ended: Vec<bool> = sqlx::query_scalar(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND query LIKE 'LISTEN %'",
        )
        .fetch_all(&mut conn)
        .await?;
        conn.close().await?;
        Ok(ended.into_iter().filter(|ended| *ended).count())
    }

    /// A store on a fresh database; panics with the reason when there is no server.
    pub async fn fresh_database() -> PostgresStore {
        let url = fresh_database_url().await.unwrap_or_else(|e| panic!("{e}"));
        PostgresStore::open(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"))
    }

    /// `scheme://authority` of a URL, without path or query.
    fn url_without_database(url: &str) -> String {
        let without_query = url.split_once('?').map(|(u, _)| u).unwrap_or(url);
        let (scheme, rest) = without_query
            .split_once("://")
            .unwrap_or(("postgres", without_query));
        let authority = rest.split_once('/').map(|(a, _)| a).unwrap_or(rest);
        format!("{scheme}://{authority}")
    }
}

#[cfg(test)]
mod tests;
