//! The SQLite engine, on sqlx: the primitives the guards (`guards.rs`) run on.
//!
//! Concurrency: SQLite allows one writer at a time, so every mutation goes through a pool
//! of one writer connection and runs in `BEGIN IMMEDIATE` (which also serialises against
//! other processes on the same file, waiting up to the busy timeout). The row locks the
//! guards ask for are therefore already held, and cost nothing here. Reads use a pool of
//! a few read-only connections; in WAL mode they never wait for the writer. A transaction
//! dropped uncommitted (a cancelled request) is rolled back before its connection is used
//! again.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use sqlx::migrate::{Migrate, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Sqlite};
use streamhub_model::Role;
use streamhub_model::api::{AuditEntry, Event, Subscription, Topic, User};
use tokio::sync::{Mutex, MutexGuard};

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
    AuditFilter, Credentials, EventBus, NewTopic, Result, SqliteStore, StoreError,
    SubscriptionFilter, TopicFilter, TopicRef, UserFilter,
};

/// Embedded migrations, applied in order at open.
pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("src/sqlite/migrations");

const READERS: usize = 4;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Requests queue for the one writer connection; this bounds the wait of the last.
const WRITER_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(60);
const SQLITE_BUSY: i32 = 5;

static TOPIC_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {TOPIC_COLUMNS} FROM topics WHERE topic_id = ?1"));
static LIVE_TOPIC_BY_NAME: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {TOPIC_COLUMNS} FROM topics WHERE name = ?1 AND status <> 'deleted'")
});

pub struct SqliteEngine {
    path: PathBuf,
    writer: SqlitePool,
    pub(crate) readers: Readers,
    events: EventBus,
}

impl std::fmt::Debug for SqliteEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The read-only connections, each taken for one statement. sqlx's pool would test every
/// connection it takes back with a ping, a round trip to the connection's thread that costs
/// as much as a small read; these need none: a read leaves no state behind, and a read
/// cancelled midway ends its statement when its rows can no longer be delivered.
pub(crate) struct Readers {
    connections: Vec<Mutex<SqliteConnection>>,
    next: AtomicUsize,
}

impl Readers {
    async fn open(options: &SqliteConnectOptions) -> std::result::Result<Readers, sqlx::Error> {
        let mut connections = Vec::new();
        for _ in 0..READERS {
            connections.push(Mutex::new(options.connect().await?));
        }
        Ok(Readers {
            connections,
            next: AtomicUsize::new(0),
        })
    }

    /// A free connection if there is one, else the next in turn once it is free.
    pub(crate) async fn get(&self) -> MutexGuard<'_, SqliteConnection> {
        let n = self.connections.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Ok(connection) = self.connections[(start + i) % n].try_lock() {
                return connection;
            }
        }
        self.connections[start % n].lock().await
    }
}

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

impl SqliteStore {
    /// Opens (creating) the database file at `path` and applies migrations; see
    /// `private_database_file` for its mode.
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
            // A local file needs no liveness ping, and each one is a hand-off to the
            // connection's thread and back.
            .test_before_acquire(false)
            .acquire_timeout(WRITER_ACQUIRE_TIMEOUT)
            .connect_with(connect_options(&path, false))
            .await
            .map_err(cannot_open)?;
        migrate(&writer).await?;
        let readers = Readers::open(&connect_options(&path, true))
            .await
            .map_err(cannot_open)?;
        Ok(Guarded::new(SqliteEngine {
            path,
            writer,
            readers,
            events: EventBus::default(),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.engine.path
    }

    /// Runs `sql` on the writer connection, for tests that alter the schema.
    #[cfg(test)]
    pub(crate) async fn execute_batch(&self, sql: &str) -> Result<()> {
        sqlx::raw_sql(sql).execute(&self.engine.writer).await?;
        Ok(())
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
impl Engine for SqliteEngine {
    type Db = Sqlite;

    fn events(&self) -> &EventBus {
        &self.events
    }

    async fn begin(&self) -> Result<Tx<Self>> {
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

    /// Only this process reaches the file's writer: its events are all local.
    async fn announce(&self, _tx: &mut Tx<Self>, _event: &Event) -> Result<()> {
        Ok(())
    }

    async fn bump(&self, tx: &mut Tx<Self>, counter: &str, delta: i64) -> Result<()> {
        let query = sqlx::query(BUMP_COUNTER).bind(delta).bind(counter);
        query.execute(&mut **tx).await?;
        Ok(())
    }

    async fn insert_audit(&self, tx: &mut Tx<Self>, a: &Audit<'_>) -> Result<()> {
        sqlx::query(INSERT_AUDIT)
            .bind(ts(a.at))
            .bind(a.actor)
            .bind(a.action)
            .bind(a.topic_id)
            .bind(a.target)
            .bind(a.before)
            .bind(a.after)
            .bind(a.detail)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// The write lock already makes every request take its turn.
    async fn lock_requester(&self, _tx: &mut Tx<Self>, _created_by: &str) -> Result<()> {
        Ok(())
    }

    async fn pending_topics_of(&self, tx: &mut Tx<Self>, created_by: &str) -> Result<i64> {
        let query = sqlx::query_scalar(PENDING_OF).bind(created_by);
        Ok(query.fetch_one(&mut **tx).await?)
    }

    async fn insert_topic(
        &self,
        tx: &mut Tx<Self>,
        new: &NewTopic,
        at: DateTime<Utc>,
    ) -> Result<Option<i64>> {
        Ok(sqlx::query_scalar(
            "INSERT INTO topics (name, status, partitions, replication_factor, description, \
             data_type, rate_per_second, traffic_profile, created_by, created_at, updated_at) \
             VALUES (?1, 'pending', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) \
             ON CONFLICT DO NOTHING RETURNING topic_id",
        )
        .bind(new.name.as_str())
        .bind(new.partitions)
        .bind(new.replication_factor)
        .bind(new.description.as_str())
        .bind(new.data_type.as_str())
        .bind(new.rate_per_second)
        .bind(new.traffic_profile.as_ref().map(ToString::to_string))
        .bind(new.created_by.as_str())
        .bind(ts(at))
        .fetch_optional(&mut **tx)
        .await?)
    }

    async fn live_name_with_key(&self, tx: &mut Tx<Self>, key: &str) -> Result<Option<String>> {
        let query = sqlx::query_scalar(LIVE_NAME_BY_COLLISION_KEY).bind(key);
        Ok(query.fetch_optional(&mut **tx).await?)
    }

    async fn topic_in(
        &self,
        tx: &mut Tx<Self>,
        target: &TopicRef,
        _lock: Option<Lock>,
    ) -> Result<Option<Topic>> {
        let query = match target {
            TopicRef::Id(id) => sqlx::query_as::<_, TopicRow>(&TOPIC_BY_ID).bind(*id),
            TopicRef::Name(name) => sqlx::query_as(&LIVE_TOPIC_BY_NAME).bind(name.as_str()),
        };
        model(query.fetch_optional(&mut **tx).await?)
    }

    async fn subscribers(&self, tx: &mut Tx<Self>, topic_id: i64) -> Result<i64> {
        let query = sqlx::query_scalar(SUBSCRIBERS).bind(topic_id);
        Ok(query.fetch_one(&mut **tx).await?)
    }

    async fn update_status(&self, tx: &mut Tx<Self>, change: &StatusChange<'_>) -> Result<u64> {
        let sql = change.sql();
        let mut update = sqlx::query(&sql)
            .bind(change.to.as_str())
            .bind(ts(change.at))
            .bind(change.topic_id)
            .bind(change.from.as_str());
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
        let update = sqlx::query(SET_PROVISIONING_ERROR)
            .bind(error)
            .bind(ts(at))
            .bind(topic.topic_id)
            .bind(topic.status.as_str());
        Ok(update.execute(&mut **tx).await?.rows_affected())
    }

    async fn user_in(
        &self,
        tx: &mut Tx<Self>,
        username: &str,
        _lock: Option<Lock>,
    ) -> Result<Option<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?1");
        let query = sqlx::query_as::<_, UserRow>(&sql).bind(username);
        model(query.fetch_optional(&mut **tx).await?)
    }

    async fn lock_admins(&self, tx: &mut Tx<Self>) -> Result<Vec<String>> {
        let query =
            sqlx::query_scalar("SELECT username FROM users WHERE role = 'admin' ORDER BY user_id");
        Ok(query.fetch_all(&mut **tx).await?)
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
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING RETURNING {USER_COLUMNS}"
        );
        let query = sqlx::query_as::<_, UserRow>(&sql)
            .bind(username)
            .bind(password_hash)
            .bind(role.as_str())
            .bind(ts(at));
        model(query.fetch_optional(&mut **tx).await?)
    }

    async fn delete_user_row(&self, tx: &mut Tx<Self>, username: &str) -> Result<u64> {
        let query = sqlx::query(DELETE_USER).bind(username);
        Ok(query.execute(&mut **tx).await?.rows_affected())
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
             VALUES (?1, ?2, ?3, 'active') ON CONFLICT (user_id, topic_id) DO NOTHING",
        )
        .bind(user_id)
        .bind(topic_id)
        .bind(ts(at));
        Ok(insert.execute(&mut **tx).await?.rows_affected() == 1)
    }

    async fn subscription_in(
        &self,
        tx: &mut Tx<Self>,
        user_id: &str,
        topic_id: i64,
    ) -> Result<Option<Subscription>> {
        let sql = format!("{SUBSCRIPTION_SELECT} WHERE s.user_id = ?1 AND s.topic_id = ?2");
        let query = sqlx::query_as::<_, SubscriptionRow>(&sql)
            .bind(user_id)
            .bind(topic_id);
        model(query.fetch_optional(&mut **tx).await?)
    }

    async fn delete_subscription(
        &self,
        tx: &mut Tx<Self>,
        user_id: &str,
        topic: &Topic,
    ) -> Result<Option<Subscription>> {
        let delete = sqlx::query_as::<_, SubscriptionRow>(
            "DELETE FROM subscriptions WHERE user_id = ?1 AND topic_id = ?2 \
             RETURNING subscription_id, user_id, ?3 AS topic_name, subscribed_at, status",
        )
        .bind(user_id)
        .bind(topic.topic_id)
        .bind(topic.topic_name.as_str());
        model(delete.fetch_optional(&mut **tx).await?)
    }

    async fn delete_subscriptions_of(
        &self,
        tx: &mut Tx<Self>,
        username: &str,
    ) -> Result<Vec<(Subscription, i64)>> {
        // SQLite's RETURNING can neither join nor order: read first, then delete.
        let gone = sqlx::query_as::<_, GoneSubscriptionRow>(
            "SELECT s.subscription_id, s.user_id, t.name AS topic_name, s.subscribed_at, \
             s.status, s.topic_id FROM subscriptions s JOIN topics t ON t.topic_id = s.topic_id \
             WHERE s.user_id = ?1 ORDER BY s.subscription_id",
        )
        .bind(username)
        .fetch_all(&mut **tx)
        .await?;
        sqlx::query("DELETE FROM subscriptions WHERE user_id = ?1")
            .bind(username)
            .execute(&mut **tx)
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
        sqlx::query_scalar(
            "INSERT INTO tokens (token_hash, user_id, created_at, expires_at) \
             SELECT ?1, user_id, ?2, ?3 FROM users WHERE username = ?4 RETURNING user_id",
        )
        .bind(token_hash)
        .bind(ts(at))
        .bind(ts(expires_at))
        .bind(username)
        .fetch_optional(&mut **tx)
        .await
    }

    async fn prune_tokens(
        &self,
        tx: &mut Tx<Self>,
        user_id: i64,
        token_hash: &str,
        others: i64,
    ) -> Result<()> {
        let prune = sqlx::query(PRUNE_TOKENS).bind(user_id).bind(token_hash);
        prune.bind(others).execute(&mut **tx).await?;
        Ok(())
    }

    async fn topic(&self, topic_id: i64) -> Result<Option<Topic>> {
        let query = sqlx::query_as::<_, TopicRow>(&TOPIC_BY_ID).bind(topic_id);
        model(query.fetch_optional(&mut *self.readers.get().await).await?)
    }

    async fn topic_by_name(&self, name: &str) -> Result<Option<Topic>> {
        let query = sqlx::query_as::<_, TopicRow>(&LIVE_TOPIC_BY_NAME).bind(name);
        model(query.fetch_optional(&mut *self.readers.get().await).await?)
    }

    async fn topics(&self, filter: &TopicFilter) -> Result<Vec<Topic>> {
        let mut query = Listings::<Sqlite>::topics(filter);
        let rows = query
            .build_query_as::<TopicRow>()
            .fetch_all(&mut *self.readers.get().await)
            .await?;
        models(rows)
    }

    async fn counter(&self, name: &str) -> Result<Option<i64>> {
        let query = sqlx::query_scalar("SELECT value FROM counters WHERE name = ?1").bind(name);
        Ok(query.fetch_optional(&mut *self.readers.get().await).await?)
    }

    async fn counters(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query_as::<_, CounterRow>("SELECT name, value FROM counters")
            .fetch_all(&mut *self.readers.get().await)
            .await?;
        Ok(rows.into_iter().map(|r| (r.name, r.value)).collect())
    }

    async fn subscriptions(&self, filter: &SubscriptionFilter) -> Result<Vec<Subscription>> {
        let mut query = Listings::<Sqlite>::subscriptions(filter);
        let rows = query
            .build_query_as::<SubscriptionRow>()
            .fetch_all(&mut *self.readers.get().await)
            .await?;
        models(rows)
    }

    async fn users(&self, filter: &UserFilter) -> Result<Vec<User>> {
        let mut query = Listings::<Sqlite>::users(filter);
        let rows = query
            .build_query_as::<UserRow>()
            .fetch_all(&mut *self.readers.get().await)
            .await?;
        models(rows)
    }

    async fn credentials(&self, username: &str) -> Result<Option<Credentials>> {
        model(
            sqlx::query_as::<_, CredentialsRow>(&format!(
                "SELECT {USER_COLUMNS}, password_hash FROM users WHERE username = ?1"
            ))
            .bind(username)
            .fetch_optional(&mut *self.readers.get().await)
            .await?,
        )
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
            .fetch_optional(&mut *self.readers.get().await)
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
        let mut query = Listings::<Sqlite>::audit(filter);
        let rows = query
            .build_query_as::<AuditRow>()
            .fetch_all(&mut *self.readers.get().await)
            .await?;
        models(rows)
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
