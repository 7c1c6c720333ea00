//! The SQLite engine, on libsql (the SQLite the embedded broker links too).
//!
//! Concurrency: SQLite allows one writer at a time, so every mutation goes through one
//! writer connection behind an async mutex and runs in `BEGIN IMMEDIATE` (which also
//! serialises against other processes on the same file, waiting up to the busy timeout).
//! Reads use a few separate connections; in WAL mode they never wait for the writer.
//! libsql's local calls complete without yielding, so a transaction is never left
//! half-done by a cancelled request.

mod rows;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use libsql::{Connection, Database, TransactionBehavior, Value, params};
use streamhub_model::account::MAX_TOKENS_PER_USER;
use streamhub_model::api::{AuditEntry, Subscription, Topic, User};
use streamhub_model::{Action, Role, TopicName, TopicStatus, Transition};
use tokio::sync::{Mutex, MutexGuard};

use crate::events::{subscription_event, topic_event};
use crate::{
    AuditFilter, Counts, Credentials, EventBus, NewTopic, Result, Store, StoreError,
    SubscribeOutcome, SubscriptionFilter, TopicFilter, TopicRef, TransitionOutcome, UserFilter,
    not_awaiting_provisioning, provisioning_error, too_many_pending, validate_user_id,
    validate_username,
};
use rows::{audit_from_row, subscription_from_row, topic_from_row, ts, user_from_row};

/// Embedded migrations, applied in order at open; `schema_version` records each.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("migrations/0001_initial.sql")),
    (2, include_str!("migrations/0002_topic_changes.sql")),
    (3, include_str!("migrations/0003_accounts.sql")),
    (4, include_str!("migrations/0004_kafka_topic_rules.sql")),
];

const READERS: usize = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
const SQLITE_BUSY: i32 = 5;

const TOPIC_COLUMNS: &str = "topic_id, name, status, partitions, replication_factor, \
     description, data_type, rate_per_second, created_by, created_at, updated_at, \
     approved_at, activated_at, deactivated_at, rejection_reason, provisioning_error";

static TOPIC_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {TOPIC_COLUMNS} FROM topics WHERE topic_id = ?1"));
static LIVE_TOPIC_BY_NAME: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {TOPIC_COLUMNS} FROM topics WHERE name = ?1 AND status <> 'deleted'")
});
/// The live topic whose name has this collision key; the expression is the unique index's.
const LIVE_NAME_BY_COLLISION_KEY: &str =
    "SELECT name FROM topics WHERE replace(name, '.', '_') = ?1 AND status <> 'deleted'";

const SUBSCRIPTION_SELECT: &str = "SELECT s.subscription_id, s.user_id, t.name, \
     s.subscribed_at, s.status FROM subscriptions s JOIN topics t ON t.topic_id = s.topic_id";

pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Reader>>,
    next_reader: AtomicUsize,
    events: EventBus,
    // Dropped last: the connections above belong to it.
    _db: Database,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A read connection with its prepared statements: preparing costs more than running
/// the small queries of the API, so each connection keeps the ones it has run.
struct Reader {
    conn: Connection,
    statements: HashMap<String, libsql::Statement>,
}

impl Reader {
    async fn all<T>(
        &mut self,
        sql: &str,
        params: impl libsql::params::IntoParams,
        map: fn(&libsql::Row) -> Result<T>,
    ) -> Result<Vec<T>> {
        if !self.statements.contains_key(sql) {
            let statement = self.conn.prepare(sql).await?;
            self.statements.insert(sql.to_owned(), statement);
        }
        let statement = &self.statements[sql];
        statement.reset();
        let result = async {
            let mut rows = statement.query(params).await?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().await? {
                out.push(map(&row)?);
            }
            Ok(out)
        }
        .await;
        // A statement left mid-way would hold its read snapshot (and block checkpoints).
        statement.reset();
        result
    }

    async fn opt<T>(
        &mut self,
        sql: &str,
        params: impl libsql::params::IntoParams,
        map: fn(&libsql::Row) -> Result<T>,
    ) -> Result<Option<T>> {
        Ok(self.all(sql, params, map).await?.into_iter().next())
    }
}

/// A write transaction holding the writer connection; rolls back when dropped uncommitted.
struct WriteTx<'a> {
    tx: libsql::Transaction,
    _writer: MutexGuard<'a, Connection>,
}

impl WriteTx<'_> {
    async fn commit(self) -> Result<()> {
        self.tx.commit().await?;
        Ok(())
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.tx
    }
}

impl From<libsql::Error> for StoreError {
    fn from(e: libsql::Error) -> Self {
        StoreError::Backend(e.to_string())
    }
}

fn is_busy(e: &libsql::Error) -> bool {
    matches!(e, libsql::Error::SqliteFailure(code, _) if code & 0xff == SQLITE_BUSY)
}

fn is_unique_violation(e: &libsql::Error) -> bool {
    matches!(e, libsql::Error::SqliteFailure(_, msg) if msg.contains("UNIQUE constraint failed"))
}

async fn configure(conn: &Connection, read_only: bool) -> Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // PRAGMAs that answer with a row must go through `query`.
    conn.query("PRAGMA journal_mode = WAL", ()).await?;
    conn.execute("PRAGMA foreign_keys = ON", ()).await?;
    // In WAL mode NORMAL is durable against application crashes and fast.
    conn.execute("PRAGMA synchronous = NORMAL", ()).await?;
    if read_only {
        conn.execute("PRAGMA query_only = ON", ()).await?;
    }
    Ok(())
}

async fn query_opt<T>(
    conn: &Connection,
    sql: &str,
    params: impl libsql::params::IntoParams,
    map: fn(&libsql::Row) -> Result<T>,
) -> Result<Option<T>> {
    let mut rows = conn.query(sql, params).await?;
    match rows.next().await? {
        Some(row) => Ok(Some(map(&row)?)),
        None => Ok(None),
    }
}

async fn query_i64(
    conn: &Connection,
    sql: &str,
    params: impl libsql::params::IntoParams,
) -> Result<i64> {
    query_opt(conn, sql, params, |r| Ok(r.get::<i64>(0)?))
        .await?
        .ok_or_else(|| StoreError::Backend(format!("no row from: {sql}")))
}

async fn bump(conn: &Connection, counter: &str, delta: i64) -> Result<()> {
    conn.execute(
        "UPDATE counters SET value = value + ?1 WHERE name = ?2",
        params![delta, counter],
    )
    .await?;
    Ok(())
}

fn status_counter(status: TopicStatus) -> String {
    format!("topics.{status}")
}

#[allow(clippy::too_many_arguments)]
async fn audit(
    conn: &Connection,
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
    conn: &Connection,
    at: &str,
    actor: &str,
    action: &str,
    topic_id: Option<i64>,
    target: &str,
    before: Option<&str>,
    after: Option<&str>,
    detail: Option<&str>,
) -> Result<()> {
    conn.execute(
        "INSERT INTO audit (at, actor, action, topic_id, target, before, after, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![at, actor, action, topic_id, target, before, after, detail],
    )
    .await?;
    Ok(())
}

/// Refuses `name` when a live topic's name collides with it in Kafka; the same name is
/// left to the duplicate check.
async fn check_collision(conn: &Connection, name: &TopicName) -> Result<()> {
    let existing = query_opt(
        conn,
        LIVE_NAME_BY_COLLISION_KEY,
        params![name.collision_key()],
        |r| Ok(r.get::<String>(0)?),
    )
    .await?;
    match existing {
        Some(existing) => name
            .check_collision(&existing)
            .map_err(|e| StoreError::Invalid(e.to_string())),
        None => Ok(()),
    }
}

async fn topic_by_id(conn: &Connection, topic_id: i64) -> Result<Option<Topic>> {
    query_opt(conn, &TOPIC_BY_ID, params![topic_id], topic_from_row).await
}

async fn live_topic_by_name(conn: &Connection, name: &str) -> Result<Option<Topic>> {
    query_opt(conn, &LIVE_TOPIC_BY_NAME, params![name], topic_from_row).await
}

fn no_such_user(username: &str) -> StoreError {
    StoreError::NotFound(format!("user '{username}' does not exist"))
}

fn no_such_topic(name: &str) -> StoreError {
    StoreError::NotFound(format!("topic '{name}' does not exist"))
}

impl SqliteStore {
    /// Opens (creating if needed) the SQLite file at `path` and applies migrations.
    /// Opens (creating) the database file; see [`private_database_file`] for its mode.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        let text = path.to_string_lossy();
        if text.is_empty() || text == ":memory:" || text.starts_with("file::memory:") {
            return Err(StoreError::Invalid(
                "the metadata store needs a file: every connection to ':memory:' would see its own empty database".into(),
            ));
        }
        private_database_file(&path)?;
        let db = libsql::Builder::new_local(&path)
            .build()
            .await
            .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
        let writer = db.connect()?;
        configure(&writer, false).await?;
        migrate(&writer).await?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let conn = db.connect()?;
            configure(&conn, true).await?;
            readers.push(Mutex::new(Reader {
                conn,
                statements: HashMap::new(),
            }));
        }
        Ok(SqliteStore {
            path,
            writer: Mutex::new(writer),
            readers,
            next_reader: AtomicUsize::new(0),
            events: EventBus::default(),
            _db: db,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `sql` on the writer connection, for tests that alter the schema.
    #[cfg(test)]
    pub(crate) async fn execute_batch(&self, sql: &str) -> Result<()> {
        self.writer.lock().await.execute_batch(sql).await?;
        Ok(())
    }

    async fn reader(&self) -> MutexGuard<'_, Reader> {
        let n = self.readers.len();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Ok(conn) = self.readers[(start + i) % n].try_lock() {
                return conn;
            }
        }
        self.readers[start % n].lock().await
    }

    async fn begin(&self) -> Result<WriteTx<'_>> {
        let writer = self.writer.lock().await;
        let mut attempt = 0;
        loop {
            // Another process may hold the write lock beyond the busy timeout.
            match writer
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .await
            {
                Ok(tx) => {
                    return Ok(WriteTx {
                        tx,
                        _writer: writer,
                    });
                }
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

async fn migrate(conn: &Connection) -> Result<()> {
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
        (),
    )
    .await?;
    for (version, sql) in MIGRATIONS {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .await?;
        let applied = query_i64(
            &tx,
            "SELECT COUNT(*) FROM schema_version WHERE version = ?1",
            params![*version],
        )
        .await?;
        if applied == 0 {
            tx.execute_batch(sql)
                .await
                .map_err(|e| StoreError::Backend(format!("migration {version} failed: {e}")))?;
            tx.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
                params![*version, ts(Utc::now())],
            )
            .await?;
            tracing::info!(version, "applied metadata store migration");
        }
        tx.commit().await?;
    }
    let newest = query_i64(
        conn,
        "SELECT COALESCE(MAX(version), 0) FROM schema_version",
        (),
    )
    .await?;
    let known = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if newest > known {
        return Err(StoreError::Backend(format!(
            "the database has schema version {newest}, newer than this build knows ({known}); upgrade streamhub"
        )));
    }
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
        let tx = self.begin().await?;
        if let Some(max) = max_pending {
            let pending = query_i64(
                &tx,
                "SELECT COUNT(*) FROM topics WHERE status = 'pending' AND created_by = ?1",
                params![new.created_by.as_str()],
            )
            .await?;
            if pending >= max {
                return Err(too_many_pending(&new.created_by, pending));
            }
        }
        if live_topic_by_name(&tx, new.name.as_str()).await?.is_some() {
            return Err(StoreError::Conflict(format!(
                "a topic named '{}' already exists",
                new.name
            )));
        }
        check_collision(&tx, &new.name).await?;
        let inserted = tx
            .query(
                "INSERT INTO topics (name, status, partitions, replication_factor, description, \
                 data_type, rate_per_second, created_by, created_at, updated_at) \
                 VALUES (?1, 'pending', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) RETURNING topic_id",
                params![
                    new.name.as_str(),
                    new.partitions,
                    new.replication_factor,
                    new.description.as_str(),
                    new.data_type.as_str(),
                    new.rate_per_second,
                    new.created_by.as_str(),
                    now.as_str()
                ],
            )
            .await;
        let mut rows = match inserted {
            Ok(rows) => rows,
            Err(e) if is_unique_violation(&e) => {
                check_collision(&tx, &new.name).await?;
                return Err(StoreError::Conflict(format!(
                    "a topic named '{}' already exists",
                    new.name
                )));
            }
            Err(e) => return Err(e.into()),
        };
        let topic_id: i64 = rows
            .next()
            .await?
            .ok_or_else(|| StoreError::Backend("insert returned no id".into()))?
            .get(0)?;
        drop(rows);
        bump(&tx, &status_counter(TopicStatus::Pending), 1).await?;
        audit(
            &tx,
            &now,
            actor,
            "create",
            Some(topic_id),
            new.name.as_str(),
            None,
            Some("pending"),
        )
        .await?;
        let topic = topic_by_id(&tx, topic_id)
            .await?
            .ok_or_else(|| StoreError::Backend("created topic vanished".into()))?;
        tx.commit().await?;
        self.events.publish(topic_event(None, &topic));
        Ok(topic)
    }

    async fn topic(&self, topic_id: i64) -> Result<Topic> {
        self.reader()
            .await
            .opt(&TOPIC_BY_ID, params![topic_id], topic_from_row)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("topic {topic_id} does not exist")))
    }

    async fn topic_by_name(&self, name: &str) -> Result<Topic> {
        self.reader()
            .await
            .opt(&LIVE_TOPIC_BY_NAME, params![name], topic_from_row)
            .await?
            .ok_or_else(|| no_such_topic(name))
    }

    async fn topics(&self, filter: &TopicFilter) -> Result<Vec<Topic>> {
        let limit = filter.limit.unwrap_or(-1);
        let mut conn = self.reader().await;
        match filter.status {
            Some(status) => {
                conn.all(
                    &format!(
                        "SELECT {TOPIC_COLUMNS} FROM topics WHERE status = ?1 \
                         ORDER BY topic_id DESC LIMIT ?2 OFFSET ?3"
                    ),
                    params![status.as_str(), limit, filter.offset],
                    topic_from_row,
                )
                .await
            }
            None => {
                conn.all(
                    &format!(
                        "SELECT {TOPIC_COLUMNS} FROM topics WHERE status <> 'deleted' \
                         ORDER BY topic_id DESC LIMIT ?1 OFFSET ?2"
                    ),
                    params![limit, filter.offset],
                    topic_from_row,
                )
                .await
            }
        }
    }

    async fn topic_changes(&self) -> Result<i64> {
        let mut conn = self.reader().await;
        conn.opt(
            "SELECT value FROM counters WHERE name = 'topics.changes'",
            (),
            |r| Ok(r.get::<i64>(0)?),
        )
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
        let tx = self.begin().await?;
        let topic = match &target {
            TopicRef::Id(id) => topic_by_id(&tx, *id).await?,
            TopicRef::Name(name) => live_topic_by_name(&tx, name).await?,
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
            let subscribers = query_i64(
                &tx,
                "SELECT COUNT(*) FROM subscriptions WHERE topic_id = ?1",
                params![topic.topic_id],
            )
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
        let mut values: Vec<Value> = vec![
            to.as_str().into(),
            now.as_str().into(),
            topic.topic_id.into(),
            from.as_str().into(),
        ];
        if let Some(reason) = &reason {
            values.push(reason.clone().into());
        }
        let updated = tx.execute(&sql, values).await?;
        if updated != 1 {
            return Err(StoreError::Conflict(format!(
                "{target} changed while it was being updated; try again"
            )));
        }
        bump(&tx, &status_counter(from), -1).await?;
        bump(&tx, &status_counter(to), 1).await?;
        audit_with_detail(
            &tx,
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
        let topic = topic_by_id(&tx, topic.topic_id)
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
        let tx = self.begin().await?;
        let topic = live_topic_by_name(&tx, name)
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
        let updated = tx
            .execute(
                "UPDATE topics SET provisioning_error = ?1, updated_at = ?2 \
                 WHERE topic_id = ?3 AND status = ?4",
                params![error, now.as_str(), topic.topic_id, status],
            )
            .await?;
        if updated != 1 {
            return Err(StoreError::Conflict(format!(
                "topic '{name}' changed while it was being updated; try again"
            )));
        }
        audit_with_detail(
            &tx,
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
        let topic = topic_by_id(&tx, topic.topic_id)
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
        let tx = self.begin().await?;
        let known = query_i64(
            &tx,
            "SELECT COUNT(*) FROM users WHERE username = ?1",
            params![user_id],
        )
        .await?;
        if known == 0 {
            return Err(no_such_user(user_id));
        }
        let topic = live_topic_by_name(&tx, topic_name)
            .await?
            .ok_or_else(|| no_such_topic(topic_name))?;
        if topic.status != TopicStatus::Active {
            return Err(StoreError::Conflict(format!(
                "topic '{topic_name}' is {}; only active topics can be subscribed to",
                topic.status
            )));
        }
        let by_user_and_topic =
            format!("{SUBSCRIPTION_SELECT} WHERE s.user_id = ?1 AND s.topic_id = ?2");
        if let Some(existing) = query_opt(
            &tx,
            &by_user_and_topic,
            params![user_id, topic.topic_id],
            subscription_from_row,
        )
        .await?
        {
            return Ok(SubscribeOutcome {
                subscription: existing,
                created: false,
            });
        }
        let now = ts(Utc::now());
        tx.execute(
            "INSERT INTO subscriptions (user_id, topic_id, subscribed_at, status) VALUES (?1, ?2, ?3, 'active')",
            params![user_id, topic.topic_id, now.as_str()],
        )
        .await?;
        bump(&tx, "subscriptions", 1).await?;
        audit(
            &tx,
            &now,
            actor,
            "subscribe",
            Some(topic.topic_id),
            &format!("{user_id}/{topic_name}"),
            None,
            Some("active"),
        )
        .await?;
        let subscription = query_opt(
            &tx,
            &by_user_and_topic,
            params![user_id, topic.topic_id],
            subscription_from_row,
        )
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
        let tx = self.begin().await?;
        let topic = live_topic_by_name(&tx, topic_name)
            .await?
            .ok_or_else(|| no_such_topic(topic_name))?;
        let subscription = query_opt(
            &tx,
            &format!("{SUBSCRIPTION_SELECT} WHERE s.user_id = ?1 AND s.topic_id = ?2"),
            params![user_id, topic.topic_id],
            subscription_from_row,
        )
        .await?
        .ok_or_else(|| {
            StoreError::NotFound(format!(
                "'{user_id}' is not subscribed to topic '{topic_name}'"
            ))
        })?;
        tx.execute(
            "DELETE FROM subscriptions WHERE subscription_id = ?1",
            params![subscription.subscription_id],
        )
        .await?;
        bump(&tx, "subscriptions", -1).await?;
        audit(
            &tx,
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
        let mut conn = self.reader().await;
        match &filter.user_id {
            Some(user_id) => {
                conn.all(
                    &format!(
                        "{SUBSCRIPTION_SELECT} WHERE s.user_id = ?1 \
                         ORDER BY s.subscription_id LIMIT ?2 OFFSET ?3"
                    ),
                    params![user_id.as_str(), limit, filter.offset],
                    subscription_from_row,
                )
                .await
            }
            None => {
                conn.all(
                    &format!("{SUBSCRIPTION_SELECT} ORDER BY s.subscription_id LIMIT ?1 OFFSET ?2"),
                    params![limit, filter.offset],
                    subscription_from_row,
                )
                .await
            }
        }
    }

    async fn counts(&self) -> Result<Counts> {
        let mut conn = self.reader().await;
        let pairs = conn
            .all("SELECT name, value FROM counters", (), |r| {
                Ok((r.get::<String>(0)?, r.get::<i64>(1)?))
            })
            .await?;
        Ok(Counts::from_counters(pairs))
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
        let tx = self.begin().await?;
        let exists = query_i64(
            &tx,
            "SELECT COUNT(*) FROM users WHERE lower(username) = lower(?1)",
            params![username],
        )
        .await?;
        if exists > 0 {
            return Err(StoreError::Conflict(format!(
                "user '{username}' already exists (usernames are compared ignoring case)"
            )));
        }
        tx.execute(
            "INSERT INTO users (username, password_hash, role, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![username, password_hash, role.as_str(), ts(now)],
        )
        .await?;
        bump(&tx, "users", 1).await?;
        audit(
            &tx,
            &ts(now),
            actor,
            "user.create",
            None,
            username,
            None,
            Some(role.as_str()),
        )
        .await?;
        let user = query_opt(
            &tx,
            "SELECT username, role, created_at FROM users WHERE username = ?1",
            params![username],
            user_from_row,
        )
        .await?
        .ok_or_else(|| StoreError::Backend("created user vanished".into()))?;
        tx.commit().await?;
        Ok(user)
    }

    async fn users(&self, filter: &UserFilter) -> Result<Vec<User>> {
        self.reader()
            .await
            .all(
                "SELECT username, role, created_at FROM users ORDER BY username LIMIT ?1 OFFSET ?2",
                params![filter.limit.unwrap_or(-1), filter.offset],
                user_from_row,
            )
            .await
    }

    async fn delete_user(&self, actor: &str, username: &str) -> Result<User> {
        let tx = self.begin().await?;
        let user = query_opt(
            &tx,
            "SELECT username, role, created_at FROM users WHERE username = ?1",
            params![username],
            user_from_row,
        )
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("user '{username}' does not exist")))?;
        if user.role == Role::Admin {
            let admins =
                query_i64(&tx, "SELECT COUNT(*) FROM users WHERE role = 'admin'", ()).await?;
            if admins <= 1 {
                return Err(StoreError::Conflict(format!(
                    "'{username}' is the last admin and cannot be deleted"
                )));
            }
        }
        // Subscriptions go with the user, or a new account of the same name would
        // inherit them; tokens go by ON DELETE CASCADE.
        let now = ts(Utc::now());
        let gone = {
            let mut rows = tx
                .query(
                    "SELECT s.subscription_id, s.user_id, t.name, s.subscribed_at, s.status, \
                     s.topic_id FROM subscriptions s JOIN topics t ON t.topic_id = s.topic_id \
                     WHERE s.user_id = ?1 ORDER BY s.subscription_id",
                    params![username],
                )
                .await?;
            let mut gone = Vec::new();
            while let Some(row) = rows.next().await? {
                gone.push((subscription_from_row(&row)?, row.get::<i64>(5)?));
            }
            gone
        };
        tx.execute(
            "DELETE FROM subscriptions WHERE user_id = ?1",
            params![username],
        )
        .await?;
        for (subscription, topic_id) in &gone {
            audit(
                &tx,
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
            bump(&tx, "subscriptions", -(gone.len() as i64)).await?;
        }
        tx.execute("DELETE FROM users WHERE username = ?1", params![username])
            .await?;
        bump(&tx, "users", -1).await?;
        audit(
            &tx,
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
        self.reader()
            .await
            .opt(
                "SELECT username, role, created_at, password_hash FROM users WHERE username = ?1",
                params![username],
                |r| {
                    Ok(Credentials {
                        user: user_from_row(r)?,
                        password_hash: r.get(3)?,
                    })
                },
            )
            .await
    }

    async fn create_token(
        &self,
        username: &str,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let tx = self.begin().await?;
        let inserted = tx
            .execute(
                "INSERT INTO tokens (token_hash, user_id, created_at, expires_at) \
                 SELECT ?1, user_id, ?2, ?3 FROM users WHERE username = ?4",
                params![token_hash, ts(Utc::now()), ts(expires_at), username],
            )
            .await?;
        if inserted == 0 {
            return Err(no_such_user(username));
        }
        // Sign-ins beyond the user's maximum end the oldest ones; the new one stays.
        tx.execute(
            "DELETE FROM tokens WHERE user_id = (SELECT user_id FROM users WHERE username = ?1) \
             AND token_hash <> ?2 AND token_hash NOT IN (SELECT t.token_hash FROM tokens t \
             JOIN users u ON u.user_id = t.user_id WHERE u.username = ?1 AND t.token_hash <> ?2 \
             ORDER BY t.created_at DESC, t.token_hash LIMIT ?3)",
            params![username, token_hash, MAX_TOKENS_PER_USER - 1],
        )
        .await?;
        tx.commit().await
    }

    async fn token_user(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<User>> {
        self.reader()
            .await
            .opt(
                "SELECT u.username, u.role, u.created_at FROM tokens t \
             JOIN users u ON u.user_id = t.user_id \
             WHERE t.token_hash = ?1 AND t.expires_at > ?2",
                params![token_hash, ts(now)],
                user_from_row,
            )
            .await
    }

    async fn delete_token(&self, token_hash: &str) -> Result<()> {
        let tx = self.begin().await?;
        tx.execute(
            "DELETE FROM tokens WHERE token_hash = ?1",
            params![token_hash],
        )
        .await?;
        tx.commit().await
    }

    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> Result<u64> {
        let tx = self.begin().await?;
        let removed = tx
            .execute(
                "DELETE FROM tokens WHERE expires_at <= ?1",
                params![ts(now)],
            )
            .await?;
        tx.commit().await?;
        Ok(removed)
    }

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        // Only the given filters go into the query, so SQLite can use the index that
        // starts with the filtered column.
        let mut sql = String::from(
            "SELECT audit_id, at, actor, action, topic_id, target, before, after, detail \
             FROM audit WHERE 1 = 1",
        );
        let mut values: Vec<Value> = Vec::new();
        if let Some(actor) = &filter.actor {
            values.push(actor.clone().into());
            sql.push_str(&format!(" AND actor = ?{}", values.len()));
        }
        if let Some(topic_id) = filter.topic_id {
            values.push(topic_id.into());
            sql.push_str(&format!(" AND topic_id = ?{}", values.len()));
        }
        if let Some(name) = &filter.topic_name {
            values.push(name.clone().into());
            sql.push_str(&format!(
                " AND topic_id IN (SELECT topic_id FROM topics WHERE name = ?{})",
                values.len()
            ));
        }
        if let Some(action) = &filter.action {
            values.push(action.clone().into());
            sql.push_str(&format!(" AND action = ?{}", values.len()));
        }
        values.push(filter.limit.into());
        values.push(filter.offset.into());
        sql.push_str(&format!(
            " ORDER BY audit_id DESC LIMIT ?{} OFFSET ?{}",
            values.len() - 1,
            values.len()
        ));
        self.reader().await.all(&sql, values, audit_from_row).await
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
