//! The PostgreSQL engine, on sqlx: the primitives the guards (`guards.rs`) run on.
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
use sqlx::{PgConnection, Postgres};
use streamhub_model::api::{AuditEntry, Event, Subscription, Topic, User};
use streamhub_model::{Action, Role};
use tokio::task::JoinHandle;

use crate::guards::{
    Audit, BUMP_COUNTER, DELETE_USER, Engine, Guarded, INSERT_AUDIT, LIVE_NAME_BY_COLLISION_KEY,
    Lock, PENDING_OF, PRUNE_TOKENS, SET_PROVISIONING_ERROR, SUBSCRIBERS, StatusChange, Tx,
};
use crate::migrations::{LEGACY_TABLE, failed, legacy_applied};
use crate::rows::{
    AuditRow, CounterRow, CredentialsRow, GoneSubscriptionRow, IntoModel, Listings,
    SUBSCRIPTION_SELECT, SubscriptionRow, TOPIC_COLUMNS, TopicRow, USER_COLUMNS, UserRow, model,
    models,
};
use crate::{
    AuditFilter, Credentials, EventBus, NewTopic, PostgresStore, Result, StoreError,
    SubscriptionFilter, TopicFilter, TopicRef, UserFilter,
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

pub struct PostgresEngine {
    pool: PgPool,
    events: EventBus,
    /// Tells this instance's notifications from the others'.
    origin: u64,
    /// Numbers this instance's notifications.
    seq: AtomicU64,
    listening: JoinHandle<()>,
}

impl std::fmt::Debug for PostgresEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let options = self.pool.connect_options();
        f.debug_struct("PostgresStore")
            .field("host", &options.get_host())
            .field("port", &options.get_port())
            .field("database", &options.get_database())
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresEngine {
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

async fn topic_by_id(conn: &mut PgConnection, topic_id: i64) -> Result<Option<Topic>> {
    model(
        sqlx::query_as::<_, TopicRow>(&TOPIC_BY_ID)
            .bind(topic_id)
            .fetch_optional(conn)
            .await?,
    )
}

/// The row lock clause a guard's [`Lock`] stands for.
fn lock_clause(lock: Option<Lock>) -> &'static str {
    match lock {
        None => "",
        Some(Lock::Share) => " FOR SHARE",
        Some(Lock::Update) => " FOR UPDATE",
    }
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
        Ok(Guarded::new(PostgresEngine {
            pool,
            events,
            origin,
            seq: AtomicU64::new(0),
            listening,
        }))
    }

    pub fn pool(&self) -> &PgPool {
        &self.engine.pool
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
impl Engine for PostgresEngine {
    type Db = Postgres;

    fn events(&self) -> &EventBus {
        &self.events
    }

    async fn begin(&self) -> Result<Tx<Self>> {
        Ok(self.pool.begin().await?)
    }

    /// PostgreSQL delivers the notification when `tx` commits, and never if it rolls back.
    async fn announce(&self, tx: &mut Tx<Self>, event: &Event) -> Result<()> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let payload = notice_payload(self.origin, seq, event.clone())?;
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(EVENT_CHANNEL)
            .bind(payload)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn bump(&self, tx: &mut Tx<Self>, counter: &str, delta: i64) -> Result<()> {
        let query = sqlx::query(BUMP_COUNTER).bind(delta).bind(counter);
        query.execute(&mut **tx).await?;
        Ok(())
    }

    async fn insert_audit(&self, tx: &mut Tx<Self>, a: &Audit<'_>) -> Result<()> {
        let query = sqlx::query(INSERT_AUDIT).bind(a.at).bind(a.actor);
        let query = query.bind(a.action).bind(a.topic_id).bind(a.target);
        let query = query.bind(a.before).bind(a.after).bind(a.detail);
        query.execute(&mut **tx).await?;
        Ok(())
    }

    async fn lock_requester(&self, tx: &mut Tx<Self>, created_by: &str) -> Result<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(PENDING_LOCK_SPACE)
            .bind(created_by)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn pending_topics_of(&self, tx: &mut Tx<Self>, created_by: &str) -> Result<i64> {
        Ok(sqlx::query_scalar(PENDING_OF)
            .bind(created_by)
            .fetch_one(&mut **tx)
            .await?)
    }

    async fn insert_topic(
        &self,
        tx: &mut Tx<Self>,
        new: &NewTopic,
        at: DateTime<Utc>,
    ) -> Result<Option<i64>> {
        let insert = sqlx::query_scalar(
            "INSERT INTO topics (name, status, partitions, replication_factor, description, \
             data_type, rate_per_second, traffic_profile, created_by, created_at, updated_at) \
             VALUES ($1, 'pending', $2, $3, $4, $5, $6, $7, $8, $9, $9) \
             ON CONFLICT DO NOTHING RETURNING topic_id",
        );
        let insert = insert.bind(new.name.as_str()).bind(new.partitions);
        let insert = insert.bind(new.replication_factor).bind(&new.description);
        let insert = insert
            .bind(new.data_type.as_str())
            .bind(new.rate_per_second)
            .bind(new.traffic_profile.as_ref().map(ToString::to_string));
        let insert = insert.bind(&new.created_by).bind(at);
        Ok(insert.fetch_optional(&mut **tx).await?)
    }

    async fn live_name_with_key(&self, tx: &mut Tx<Self>, key: &str) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(LIVE_NAME_BY_COLLISION_KEY)
            .bind(key)
            .fetch_optional(&mut **tx)
            .await?)
    }

    async fn topic_in(
        &self,
        tx: &mut Tx<Self>,
        target: &TopicRef,
        lock: Option<Lock>,
    ) -> Result<Option<Topic>> {
        let lock = lock_clause(lock);
        let row = match target {
            TopicRef::Id(id) => {
                let sql = format!("{}{lock}", *TOPIC_BY_ID);
                let query = sqlx::query_as::<_, TopicRow>(&sql).bind(*id);
                query.fetch_optional(&mut **tx).await?
            }
            TopicRef::Name(name) => {
                let sql = format!("{}{lock}", *LIVE_TOPIC_BY_NAME);
                let query = sqlx::query_as::<_, TopicRow>(&sql).bind(name);
                query.fetch_optional(&mut **tx).await?
            }
        };
        model(row)
    }

    async fn subscribers(&self, tx: &mut Tx<Self>, topic_id: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(SUBSCRIBERS)
            .bind(topic_id)
            .fetch_one(&mut **tx)
            .await?)
    }

    async fn update_status(&self, tx: &mut Tx<Self>, change: &StatusChange<'_>) -> Result<u64> {
        let sql = change.sql();
        let update = sqlx::query(&sql).bind(change.to.as_str()).bind(change.at);
        let mut update = update.bind(change.topic_id).bind(change.from.as_str());
        if let Some(reason) = change.rejection_reason {
            update = update.bind(reason);
        }
        Ok(update.execute(&mut **tx).await?.rows_affected())
    }

    async fn set_provisioning_error(
        &self,
        tx: &mut Tx<Self>,
        topic: &Topic,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<u64> {
        let update = sqlx::query(SET_PROVISIONING_ERROR).bind(error).bind(at);
        let update = update.bind(topic.topic_id).bind(topic.status.as_str());
        Ok(update.execute(&mut **tx).await?.rows_affected())
    }

    async fn user_in(
        &self,
        tx: &mut Tx<Self>,
        username: &str,
        lock: Option<Lock>,
    ) -> Result<Option<User>> {
        let lock = lock_clause(lock);
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1{lock}");
        model(
            sqlx::query_as::<_, UserRow>(&sql)
                .bind(username)
                .fetch_optional(&mut **tx)
                .await?,
        )
    }

    async fn lock_admins(&self, tx: &mut Tx<Self>) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT username FROM users WHERE role = 'admin' ORDER BY user_id FOR UPDATE",
        )
        .fetch_all(&mut **tx)
        .await?)
    }

    async fn insert_user(
        &self,
        tx: &mut Tx<Self>,
        username: &str,
        password_hash: &str,
        role: Role,
        at: DateTime<Utc>,
    ) -> Result<Option<User>> {
        let sql = format!(
            "INSERT INTO users (username, password_hash, role, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING {USER_COLUMNS}"
        );
        let insert = sqlx::query_as::<_, UserRow>(&sql).bind(username);
        let insert = insert.bind(password_hash).bind(role.as_str()).bind(at);
        model(insert.fetch_optional(&mut **tx).await?)
    }

    async fn delete_user_row(&self, tx: &mut Tx<Self>, username: &str) -> Result<u64> {
        Ok(sqlx::query(DELETE_USER)
            .bind(username)
            .execute(&mut **tx)
            .await?
            .rows_affected())
    }

    async fn insert_subscription(
        &self,
        tx: &mut Tx<Self>,
        user_id: &str,
        topic_id: i64,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let insert = sqlx::query(
            "INSERT INTO subscriptions (user_id, topic_id, subscribed_at, status) \
             VALUES ($1, $2, $3, 'active') ON CONFLICT (user_id, topic_id) DO NOTHING",
        );
        let insert = insert.bind(user_id).bind(topic_id).bind(at);
        Ok(insert.execute(&mut **tx).await?.rows_affected() == 1)
    }

    async fn subscription_in(
        &self,
        tx: &mut Tx<Self>,
        user_id: &str,
        topic_id: i64,
    ) -> Result<Option<Subscription>> {
        let sql = format!("{SUBSCRIPTION_SELECT} WHERE s.user_id = $1 AND s.topic_id = $2");
        model(
            sqlx::query_as::<_, SubscriptionRow>(&sql)
                .bind(user_id)
                .bind(topic_id)
                .fetch_optional(&mut **tx)
                .await?,
        )
    }

    async fn delete_subscription(
        &self,
        tx: &mut Tx<Self>,
        user_id: &str,
        topic: &Topic,
    ) -> Result<Option<Subscription>> {
        let delete = sqlx::query_as::<_, SubscriptionRow>(
            "DELETE FROM subscriptions WHERE user_id = $1 AND topic_id = $2 \
             RETURNING subscription_id, user_id, $3::TEXT AS topic_name, subscribed_at, status",
        );
        let delete = delete
            .bind(user_id)
            .bind(topic.topic_id)
            .bind(&topic.topic_name);
        model(delete.fetch_optional(&mut **tx).await?)
    }

    async fn delete_subscriptions_of(
        &self,
        tx: &mut Tx<Self>,
        username: &str,
    ) -> Result<Vec<(Subscription, i64)>> {
        let gone = sqlx::query_as::<_, GoneSubscriptionRow>(
            "WITH gone AS (DELETE FROM subscriptions WHERE user_id = $1 \
             RETURNING subscription_id, user_id, topic_id, subscribed_at, status) \
             SELECT g.subscription_id, g.user_id, t.name AS topic_name, g.subscribed_at, \
             g.status, g.topic_id \
             FROM gone g JOIN topics t ON t.topic_id = g.topic_id ORDER BY g.subscription_id",
        )
        .bind(username)
        .fetch_all(&mut **tx)
        .await?;
        gone.into_iter()
            .map(|row| Ok((row.subscription.into_model()?, row.topic_id)))
            .collect()
    }

    async fn insert_token(
        &self,
        tx: &mut Tx<Self>,
        username: &str,
        token_hash: &str,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> sqlx::Result<Option<i64>> {
        let insert = sqlx::query_scalar(
            "INSERT INTO tokens (token_hash, user_id, created_at, expires_at) \
             SELECT $1, user_id, $2, $3 FROM users WHERE username = $4 RETURNING user_id",
        );
        let insert = insert.bind(token_hash).bind(at).bind(expires_at);
        insert.bind(username).fetch_optional(&mut **tx).await
    }

    async fn prune_tokens(
        &self,
        tx: &mut Tx<Self>,
        user_id: i64,
        token_hash: &str,
        others: i64,
    ) -> Result<()> {
        sqlx::query(PRUNE_TOKENS)
            .bind(user_id)
            .bind(token_hash)
            .bind(others)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    async fn topic(&self, topic_id: i64) -> Result<Option<Topic>> {
        let mut conn = self.pool.acquire().await?;
        topic_by_id(&mut conn, topic_id).await
    }

    async fn topic_by_name(&self, name: &str) -> Result<Option<Topic>> {
        model(
            sqlx::query_as::<_, TopicRow>(&LIVE_TOPIC_BY_NAME)
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn topics(&self, filter: &TopicFilter) -> Result<Vec<Topic>> {
        let mut query = Listings::<Postgres>::topics(filter);
        let rows = query
            .build_query_as::<TopicRow>()
            .fetch_all(&self.pool)
            .await?;
        models(rows)
    }

    async fn counter(&self, name: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM counters WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn counters(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query_as::<_, CounterRow>("SELECT name, value FROM counters")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|r| (r.name, r.value)).collect())
    }

    async fn subscriptions(&self, filter: &SubscriptionFilter) -> Result<Vec<Subscription>> {
        let mut query = Listings::<Postgres>::subscriptions(filter);
        let rows = query
            .build_query_as::<SubscriptionRow>()
            .fetch_all(&self.pool)
            .await?;
        models(rows)
    }

    async fn users(&self, filter: &UserFilter) -> Result<Vec<User>> {
        let mut query = Listings::<Postgres>::users(filter);
        let rows = query
            .build_query_as::<UserRow>()
            .fetch_all(&self.pool)
            .await?;
        models(rows)
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
        let mut query = Listings::<Postgres>::audit(filter);
        let rows = query
            .build_query_as::<AuditRow>()
            .fetch_all(&self.pool)
            .await?;
        models(rows)
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
