//! The SQLite engine, on sqlx.
//!
//! Concurrency: SQLite allows one writer at a time, so every mutation goes through a pool
//! of one writer connection and runs in `BEGIN IMMEDIATE` (which also serialises against
//! other processes on the same file, waiting up to the busy timeout). Reads use a pool of
//! a few read-only connections; in WAL mode they never wait for the writer. A transaction
//! dropped uncommitted (a cancelled request) is rolled back before its connection is used
//! again.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::migrate::{Migrate, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Sqlite, Transaction};
use streamhub_model::account::MAX_TOKENS_PER_USER;
use streamhub_model::api::{AuditEntry, Subscription, Topic, User};
use streamhub_model::{Action, Role, TopicName, TopicStatus, Transition};

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
pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("src/sqlite/migrations");

const READERS: u32 = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests queue for the one writer connection; this bounds the wait of the last.
const WRITER_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(60);
const SQLITE_BUSY: i32 = 5;

static TOPIC_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {TOPIC_COLUMNS} FROM topics WHERE topic_id = ?1"));
static LIVE_TOPIC_BY_NAME: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {TOPIC_COLUMNS} FROM topics WHERE name = ?1 AND status <> 'deleted'")
});
/// The live topic whose name has this collision key; the expression is the unique index's.
const LIVE_NAME_BY_COLLISION_KEY: &str =
    "SELECT name FROM topics WHERE replace(name, '.', '_') = ?1 AND status <> 'deleted'";

pub struct SqliteStore {
    path: PathBuf,
    writer: SqlitePool,
    readers: SqlitePool,
    events: EventBus,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A write transaction on the writer connection; rolls back when dropped uncommitted.
type WriteTx = Transaction<'static, Sqlite>;

/// The stored form of a timestamp: fixed width, so text order is time order.
pub(crate) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn is_busy(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db)
        if db.code().and_then(|c| c.parse::<i32>().ok()).is_some_and(|c| c & 0xff == SQLITE_BUSY))
}

fn connect_options(path: &Path, read_only: bool) -> SqliteConnectOptions {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(!read_only)
        .busy_timeout(BUSY_TIMEOUT)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        // In WAL mode NORMAL is durable against application crashes and fast.
        .synchronous(SqliteSynchronous::Normal);
    if read_only {
        options.pragma("query_only", "ON")
    } else {
        options
    }
}

async fn query_i64(conn: &mut SqliteConnection, sql: &str, value: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(sql).bind(value).fetch_one(conn).await?)
}

async fn bump(conn: &mut SqliteConnection, counter: &str, delta: i64) -> Result<()> {
    sqlx::query("UPDATE counters SET value = value + ?1 WHERE name = ?2")
        .bind(delta)
        .bind(counter)
        .execute(conn)
        .await?;
    Ok(())
}

fn status_counter(status: TopicStatus) -> String {
    format!("topics.{status}")
}

#[allow(clippy::too_many_arguments)]
async fn audit(
    conn: &mut SqliteConnection,
    at: &str,
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
    conn: &mut SqliteConnection,
    at: &str,
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
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
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

/// Refuses `name` when a live topic's name collides with it in Kafka; the same name is
/// left to the duplicate check.
async fn check_collision(conn: &mut SqliteConnection, name: &TopicName) -> Result<()> {
    let existing: Option<String> = sqlx::query_scalar(LIVE_NAME_BY_COLLISION_KEY)
        .bind(name.collision_key())
        .fetch_optional(conn)
        .await?;
    match existing {
        Some(existing) => name
            .check_collision(&existing)
            .map_err(|e| StoreError::Invalid(e.to_string())),
        None => Ok(()),
    }
}

async fn topic_by_id(conn: &mut SqliteConnection, topic_id: i64) -> Result<Option<Topic>> {
    model(
        sqlx::query_as::<_, TopicRow>(&TOPIC_BY_ID)
            .bind(topic_id)
            .fetch_optional(conn)
            .await?,
    )
}

async fn live_topic_by_name(conn: &mut SqliteConnection, name: &str) -> Result<Option<Topic>> {
    model(
        sqlx::query_as::<_, TopicRow>(&LIVE_TOPIC_BY_NAME)
            .bind(name)
            .fetch_optional(conn)
            .await?,
    )
}

async fn subscription_of(
    conn: &mut SqliteConnection,
    user_id: &str,
    topic_id: i64,
) -> Result<Option<Subscription>> {
    model(
        sqlx::query_as::<_, SubscriptionRow>(&format!(
            "{SUBSCRIPTION_SELECT} WHERE s.user_id = ?1 AND s.topic_id = ?2"
        ))
        .bind(user_id)
        .bind(topic_id)
        .fetch_optional(conn)
        .await?,
    )
}

async fn user_by_name(conn: &mut SqliteConnection, username: &str) -> Result<Option<User>> {
    model(
        sqlx::query_as::<_, UserRow>(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE username = ?1"
        ))
        .bind(username)
        .fetch_optional(conn)
        .await?,
    )
}

fn no_such_user(username: &str) -> StoreError {
    StoreError::NotFound(format!("user '{username}' does not exist"))
}

fn no_such_topic(name: &str) -> StoreError {
    StoreError::NotFound(format!("topic '{name}' does not exist"))
}

impl SqliteStore {
    /// Opens (creating) the database file at `path` and applies migrations; see
    /// [`private_database_file`] for its mode.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        let text = path.to_string_lossy();
        if text.is_empty() || text == ":memory:" || text.starts_with("file::memory:") {
            return Err(StoreError::Invalid(
                "the metadata store needs a file: every connection to ':memory:' would see its own empty database".into(),
            ));
        }
        private_database_file(&path)?;
        let cannot_open =
            |e: sqlx::Error| StoreError::Backend(format!("cannot open {}: {e}", path.display()));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(WRITER_ACQUIRE_TIMEOUT)
            .connect_with(connect_options(&path, false))
            .await
            .map_err(cannot_open)?;
        migrate(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(READERS)
            .connect_with(connect_options(&path, true))
            .await
            .map_err(cannot_open)?;
        Ok(SqliteStore {
            path,
            writer,
            readers,
            events: EventBus::default(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `sql` on the writer connection, for tests that alter the schema.
    #[cfg(test)]
    pub(crate) async fn execute_batch(&self, sql: &str) -> Result<()> {
        sqlx::raw_sql(sql).execute(&self.writer).await?;
        Ok(())
    }

    async fn begin(&self) -> Result<WriteTx> {
        let mut attempt = 0;
        loop {
            // Another process may hold the write lock beyond the busy timeout.
            match self.writer.begin_with("BEGIN IMMEDIATE").await {
                Ok(tx) => return Ok(tx),
                Err(e) if is_busy(&e) && attempt < 3 => {
                    attempt += 1;
                    tracing::warn!(attempt, "metadata store is busy; retrying");
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Hands a record of the earlier runner over to sqlx (see [`crate::migrations`]) and
/// applies the migrations, all in one write transaction: processes opening one file at
/// once migrate one after the other.
async fn migrate(writer: &SqlitePool) -> Result<()> {
    let mut tx = writer.begin_with("BEGIN IMMEDIATE").await?;
    let legacy: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1")
            .bind(LEGACY_TABLE)
            .fetch_one(&mut *tx)
            .await?;
    if legacy > 0 {
        let applied: Vec<i64> = sqlx::query_scalar(&format!("SELECT version FROM {LEGACY_TABLE}"))
            .fetch_all(&mut *tx)
            .await?;
        let recorded = legacy_applied(&MIGRATOR, &applied)?;
        tx.ensure_migrations_table().await.map_err(failed)?;
        for migration in &recorded {
            sqlx::query(
                "INSERT OR IGNORE INTO _sqlx_migrations \
                 (version, description, success, checksum, execution_time) \
                 VALUES (?1, ?2, TRUE, ?3, 0)",
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
impl Store for SqliteStore {
    async fn create_topic_within(
        &self,
        actor: &str,
        new: NewTopic,
        max_pending: Option<i64>,
    ) -> Result<Topic> {
        new.validate()?;
        let now = ts(Utc::now());
        let mut tx = self.begin().await?;
        if let Some(max) = max_pending {
            let pending = query_i64(
                &mut tx,
                "SELECT COUNT(*) FROM topics WHERE status = 'pending' AND created_by = ?1",
                &new.created_by,
            )
            .await?;
            if pending >= max {
                return Err(too_many_pending(&new.created_by, pending));
            }
        }
        if live_topic_by_name(&mut tx, new.name.as_str())
            .await?
            .is_some()
        {
            return Err(StoreError::Conflict(format!(
                "a topic named '{}' already exists",
                new.name
            )));
        }
        check_collision(&mut tx, &new.name).await?;
        let inserted = sqlx::query_scalar::<_, i64>(
            "INSERT INTO topics (name, status, partitions, replication_factor, description, \
             data_type, rate_per_second, created_by, created_at, updated_at) \
             VALUES (?1, 'pending', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) RETURNING topic_id",
        )
        .bind(new.name.as_str())
        .bind(new.partitions)
        .bind(new.replication_factor)
        .bind(new.description.as_str())
        .bind(new.data_type.as_str())
        .bind(new.rate_per_second)
        .bind(new.created_by.as_str())
        .bind(now.as_str())
        .fetch_one(&mut *tx)
        .await;
        let topic_id = match inserted {
            Ok(topic_id) => topic_id,
            Err(e) if is_unique_violation(&e) => {
                check_collision(&mut tx, &new.name).await?;
                return Err(StoreError::Conflict(format!(
                    "a topic named '{}' already exists",
                    new.name
                )));
            }
            Err(e) => return Err(e.into()),
        };
        bump(&mut tx, &status_counter(TopicStatus::Pending), 1).await?;
        audit(
            &mut tx,
            &now,
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
        tx.commit().await?;
        self.events.publish(topic_event(None, &topic));
        Ok(topic)
    }

    async fn topic(&self, topic_id: i64) -> Result<Topic> {
        model(
            sqlx::query_as::<_, TopicRow>(&TOPIC_BY_ID)
                .bind(topic_id)
                .fetch_optional(&self.readers)
                .await?,
        )?
        .ok_or_else(|| StoreError::NotFound(format!("topic {topic_id} does not exist")))
    }

    async fn topic_by_name(&self, name: &str) -> Result<Topic> {
        model(
            sqlx::query_as::<_, TopicRow>(&LIVE_TOPIC_BY_NAME)
                .bind(name)
                .fetch_optional(&self.readers)
                .await?,
        )?
        .ok_or_else(|| no_such_topic(name))
    }

    async fn topics(&self, filter: &TopicFilter) -> Result<Vec<Topic>> {
        let limit = filter.limit.unwrap_or(-1);
        let rows = match filter.status {
            Some(status) => {
                sqlx::query_as::<_, TopicRow>(&format!(
                    "SELECT {TOPIC_COLUMNS} FROM topics WHERE status = ?1 \
                     ORDER BY topic_id DESC LIMIT ?2 OFFSET ?3"
                ))
                .bind(status.as_str())
                .bind(limit)
                .bind(filter.offset)
                .fetch_all(&self.readers)
                .await?
            }
            None => {
                sqlx::query_as::<_, TopicRow>(&format!(
                    "SELECT {TOPIC_COLUMNS} FROM topics WHERE status <> 'deleted' \
                     ORDER BY topic_id DESC LIMIT ?1 OFFSET ?2"
                ))
                .bind(limit)
                .bind(filter.offset)
                .fetch_all(&self.readers)
                .await?
            }
        };
        models(rows)
    }

    async fn topic_changes(&self) -> Result<i64> {
        sqlx::query_scalar("SELECT value FROM counters WHERE name = 'topics.changes'")
            .fetch_optional(&self.readers)
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
        let mut tx = self.begin().await?;
        let topic = match &target {
            TopicRef::Id(id) => topic_by_id(&mut tx, *id).await?,
            TopicRef::Name(name) => live_topic_by_name(&mut tx, name).await?,
        }
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
                sqlx::query_scalar("SELECT COUNT(*) FROM subscriptions WHERE topic_id = ?1")
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
        let now = ts(Utc::now());
        let stamp_column = match action {
            Action::Approve => Some("approved_at"),
            Action::Activate | Action::Reactivate => Some("activated_at"),
            Action::Deactivate => Some("deactivated_at"),
            Action::Reject | Action::Delete => None,
        };
        let mut sql = String::from("UPDATE topics SET status = ?1, updated_at = ?2");
        if let Some(column) = stamp_column {
            sql.push_str(&format!(", {column} = ?2"));
        }
        let reason = if action == Action::Reject {
            reason
        } else {
            None
        };
        if reason.is_some() {
            sql.push_str(", rejection_reason = ?5");
        }
        if matches!(action, Action::Activate | Action::Reactivate) {
            sql.push_str(", provisioning_error = NULL");
        }
        // The status condition makes the write itself refuse a topic that moved since
        // it was read, whatever the isolation level of the engine.
        sql.push_str(" WHERE topic_id = ?3 AND status = ?4");
        let mut update = sqlx::query(&sql)
            .bind(to.as_str())
            .bind(now.as_str())
            .bind(topic.topic_id)
            .bind(from.as_str());
        if let Some(reason) = &reason {
            update = update.bind(reason.as_str());
        }
        let updated = update.execute(&mut *tx).await?.rows_affected();
        if updated != 1 {
            return Err(StoreError::Conflict(format!(
                "{target} changed while it was being updated; try again"
            )));
        }
        bump(&mut tx, &status_counter(from), -1).await?;
        bump(&mut tx, &status_counter(to), 1).await?;
        audit_with_detail(
            &mut tx,
            &now,
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
        tx.commit().await?;
        self.events.publish(topic_event(Some(action), &topic));
        Ok(TransitionOutcome {
            topic,
            transition: Transition::To(to),
            from,
        })
    }

    async fn provisioning_failed(&self, actor: &str, name: &str, error: &str) -> Result<Topic> {
        let error = provisioning_error(error)?;
        let mut tx = self.begin().await?;
        let topic = live_topic_by_name(&mut tx, name)
            .await?
            .ok_or_else(|| no_such_topic(name))?;
        if !topic.status.awaits_provisioning() {
            return Err(not_awaiting_provisioning(name, topic.status));
        }
        if topic.provisioning_error.as_deref() == Some(error) {
            return Ok(topic);
        }
        let now = ts(Utc::now());
        let status = topic.status.as_str();
        let updated = sqlx::query(
            "UPDATE topics SET provisioning_error = ?1, updated_at = ?2 \
             WHERE topic_id = ?3 AND status = ?4",
        )
        .bind(error)
        .bind(now.as_str())
        .bind(topic.topic_id)
        .bind(status)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if updated != 1 {
            return Err(StoreError::Conflict(format!(
                "topic '{name}' changed while it was being updated; try again"
            )));
        }
        audit_with_detail(
            &mut tx,
            &now,
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
        tx.commit().await?;
        self.events.publish(topic_event(None, &topic));
        Ok(topic)
    }

    async fn subscribe(
        &self,
        actor: &str,
        user_id: &str,
        topic_name: &str,
    ) -> Result<SubscribeOutcome> {
        validate_user_id(user_id)?;
        let mut tx = self.begin().await?;
        let known = query_i64(
            &mut tx,
            "SELECT COUNT(*) FROM users WHERE username = ?1",
            user_id,
        )
        .await?;
        if known == 0 {
            return Err(no_such_user(user_id));
        }
        let topic = live_topic_by_name(&mut tx, topic_name)
            .await?
            .ok_or_else(|| no_such_topic(topic_name))?;
        if topic.status != TopicStatus::Active {
            return Err(StoreError::Conflict(format!(
                "topic '{topic_name}' is {}; only active topics can be subscribed to",
                topic.status
            )));
        }
        if let Some(existing) = subscription_of(&mut tx, user_id, topic.topic_id).await? {
            return Ok(SubscribeOutcome {
                subscription: existing,
                created: false,
            });
        }
        let now = ts(Utc::now());
        sqlx::query(
            "INSERT INTO subscriptions (user_id, topic_id, subscribed_at, status) \
             VALUES (?1, ?2, ?3, 'active')",
        )
        .bind(user_id)
        .bind(topic.topic_id)
        .bind(now.as_str())
        .execute(&mut *tx)
        .await?;
        bump(&mut tx, "subscriptions", 1).await?;
        audit(
            &mut tx,
            &now,
            actor,
            "subscribe",
            Some(topic.topic_id),
            &format!("{user_id}/{topic_name}"),
            None,
            Some("active"),
        )
        .await?;
        let subscription = subscription_of(&mut tx, user_id, topic.topic_id)
            .await?
            .ok_or_else(|| StoreError::Backend("created subscription vanished".into()))?;
        tx.commit().await?;
        self.events.publish(subscription_event(true, &subscription));
        Ok(SubscribeOutcome {
            subscription,
            created: true,
        })
    }

    async fn unsubscribe(
        &self,
        actor: &str,
        user_id: &str,
        topic_name: &str,
    ) -> Result<Subscription> {
        let mut tx = self.begin().await?;
        let topic = live_topic_by_name(&mut tx, topic_name)
            .await?
            .ok_or_else(|| no_such_topic(topic_name))?;
        let subscription = subscription_of(&mut tx, user_id, topic.topic_id)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "'{user_id}' is not subscribed to topic '{topic_name}'"
                ))
            })?;
        sqlx::query("DELETE FROM subscriptions WHERE subscription_id = ?1")
            .bind(subscription.subscription_id)
            .execute(&mut *tx)
            .await?;
        bump(&mut tx, "subscriptions", -1).await?;
        audit(
            &mut tx,
            &ts(Utc::now()),
            actor,
            "unsubscribe",
            Some(topic.topic_id),
            &format!("{user_id}/{topic_name}"),
            Some("active"),
            None,
        )
        .await?;
        tx.commit().await?;
        self.events
            .publish(subscription_event(false, &subscription));
        Ok(subscription)
    }

    async fn subscriptions(&self, filter: &SubscriptionFilter) -> Result<Vec<Subscription>> {
        let limit = filter.limit.unwrap_or(-1);
        let rows = match &filter.user_id {
            Some(user_id) => {
                sqlx::query_as::<_, SubscriptionRow>(&format!(
                    "{SUBSCRIPTION_SELECT} WHERE s.user_id = ?1 \
                     ORDER BY s.subscription_id LIMIT ?2 OFFSET ?3"
                ))
                .bind(user_id.as_str())
                .bind(limit)
                .bind(filter.offset)
                .fetch_all(&self.readers)
                .await?
            }
            None => {
                sqlx::query_as::<_, SubscriptionRow>(&format!(
                    "{SUBSCRIPTION_SELECT} ORDER BY s.subscription_id LIMIT ?1 OFFSET ?2"
                ))
                .bind(limit)
                .bind(filter.offset)
                .fetch_all(&self.readers)
                .await?
            }
        };
        models(rows)
    }

    async fn counts(&self) -> Result<Counts> {
        let rows = sqlx::query_as::<_, CounterRow>("SELECT name, value FROM counters")
            .fetch_all(&self.readers)
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
        let now = ts(Utc::now());
        let mut tx = self.begin().await?;
        let exists = query_i64(
            &mut tx,
            "SELECT COUNT(*) FROM users WHERE lower(username) = lower(?1)",
            username,
        )
        .await?;
        if exists > 0 {
            return Err(StoreError::Conflict(format!(
                "user '{username}' already exists (usernames are compared ignoring case)"
            )));
        }
        sqlx::query(
            "INSERT INTO users (username, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(username)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now.as_str())
        .execute(&mut *tx)
        .await?;
        bump(&mut tx, "users", 1).await?;
        audit(
            &mut tx,
            &now,
            actor,
            "user.create",
            None,
            username,
            None,
            Some(role.as_str()),
        )
        .await?;
        let user = user_by_name(&mut tx, username)
            .await?
            .ok_or_else(|| StoreError::Backend("created user vanished".into()))?;
        tx.commit().await?;
        Ok(user)
    }

    async fn users(&self, filter: &UserFilter) -> Result<Vec<User>> {
        models(
            sqlx::query_as::<_, UserRow>(&format!(
                "SELECT {USER_COLUMNS} FROM users ORDER BY username LIMIT ?1 OFFSET ?2"
            ))
            .bind(filter.limit.unwrap_or(-1))
            .bind(filter.offset)
            .fetch_all(&self.readers)
            .await?,
        )
    }

    async fn delete_user(&self, actor: &str, username: &str) -> Result<User> {
        let mut tx = self.begin().await?;
        let user = user_by_name(&mut tx, username)
            .await?
            .ok_or_else(|| no_such_user(username))?;
        if user.role == Role::Admin {
            let admins: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin'")
                .fetch_one(&mut *tx)
                .await?;
            if admins <= 1 {
                return Err(StoreError::Conflict(format!(
                    "'{username}' is the last admin and cannot be deleted"
                )));
            }
        }
        // Subscriptions go with the user, or a new account of the same name would
        // inherit them; tokens go by ON DELETE CASCADE.
        let now = ts(Utc::now());
        let gone = sqlx::query_as::<_, GoneSubscriptionRow>(
            "SELECT s.subscription_id, s.user_id, t.name AS topic_name, s.subscribed_at, \
             s.status, s.topic_id FROM subscriptions s JOIN topics t ON t.topic_id = s.topic_id \
             WHERE s.user_id = ?1 ORDER BY s.subscription_id",
        )
        .bind(username)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|row| Ok((row.subscription.into_model()?, row.topic_id)))
        .collect::<Result<Vec<_>>>()?;
        sqlx::query("DELETE FROM subscriptions WHERE user_id = ?1")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        for (subscription, topic_id) in &gone {
            audit(
                &mut tx,
                &now,
                actor,
                "unsubscribe",
                Some(*topic_id),
                &format!("{username}/{}", subscription.topic_name),
                Some("active"),
                None,
            )
            .await?;
        }
        if !gone.is_empty() {
            bump(&mut tx, "subscriptions", -(gone.len() as i64)).await?;
        }
        sqlx::query("DELETE FROM users WHERE username = ?1")
            .bind(username)
            .execute(&mut *tx)
            .await?;
        bump(&mut tx, "users", -1).await?;
        audit(
            &mut tx,
            &now,
            actor,
            "user.delete",
            None,
            username,
            Some(user.role.as_str()),
            None,
        )
        .await?;
        tx.commit().await?;
        for (subscription, _) in &gone {
            self.events.publish(subscription_event(false, subscription));
        }
        Ok(user)
    }

    async fn credentials(&self, username: &str) -> Result<Option<Credentials>> {
        model(
            sqlx::query_as::<_, CredentialsRow>(&format!(
                "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = ?1"
            ))
            .bind(username)
            .fetch_optional(&self.readers)
            .await?,
        )
    }

    async fn create_token(
        &self,
        username: &str,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO tokens (token_hash, user_id, created_at, expires_at) \
             SELECT ?1, user_id, ?2, ?3 FROM users WHERE username = ?4",
        )
        .bind(token_hash)
        .bind(ts(Utc::now()))
        .bind(ts(expires_at))
        .bind(username)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(no_such_user(username));
        }
        // Sign-ins beyond the user's maximum end the oldest ones; the new one stays.
        sqlx::query(
            "DELETE FROM tokens WHERE user_id = (SELECT user_id FROM users WHERE username = ?1) \
             AND token_hash <> ?2 AND token_hash NOT IN (SELECT t.token_hash FROM tokens t \
             JOIN users u ON u.user_id = t.user_id WHERE u.username = ?1 AND t.token_hash <> ?2 \
             ORDER BY t.created_at DESC, t.token_hash LIMIT ?3)",
        )
        .bind(username)
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
                 WHERE t.token_hash = ?1 AND t.expires_at > ?2",
            )
            .bind(token_hash)
            .bind(ts(now))
            .fetch_optional(&self.readers)
            .await?,
        )
    }

    async fn delete_token(&self, token_hash: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM tokens WHERE token_hash = ?1")
            .bind(token_hash)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut tx = self.begin().await?;
        let removed = sqlx::query("DELETE FROM tokens WHERE expires_at <= ?1")
            .bind(ts(now))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(removed)
    }

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        // Only the given filters go into the query, so SQLite can use the index that
        // starts with the filtered column.
        let mut query: QueryBuilder<Sqlite> =
            QueryBuilder::new(format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE 1 = 1"));
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
                .fetch_all(&self.readers)
                .await?,
        )
    }

    fn events(&self) -> &EventBus {
        &self.events
    }
}

#[cfg(test)]
mod tests;

/// Creates the database file for its owner only (0600, in a new directory of mode 0700),
/// and narrows an existing one with its WAL and shared-memory files: the store holds
/// password hashes and token digests. SQLite gives the files it creates beside the
/// database the database file's mode.
fn private_database_file(path: &Path) -> Result<()> {
    let failed = |what: &str, p: &Path, e: std::io::Error| {
        StoreError::Backend(format!("cannot {what} {}: {e}", p.display()))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .map_err(|e| failed("create directory", dir, e))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| failed("create", path, e))?;
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm", "-journal"] {
        use std::os::unix::fs::PermissionsExt;
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = Path::new(&file);
        if file.exists() {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| failed("restrict", file, e))?;
        }
    }
    Ok(())
}
