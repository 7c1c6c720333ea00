//! Metadata store of streamhub: topics, subscriptions, users, tokens and the audit log.
//!
//! Handlers see only the [`Store`] trait, so a second engine (PostgreSQL) can be added
//! without touching them. The rules are written once, in the guard layer ([`Guarded`],
//! `guards.rs`), over primitives each engine provides; so every engine keeps these
//! promises:
//!
//! - every mutation and its audit row commit in one transaction;
//! - lifecycle changes are decided by [`Topic::decide`] inside that transaction and
//!   written with a conditional update, so two concurrent approvals of one topic make
//!   exactly one transition and one audit row; [`Transition::Unchanged`] writes nothing;
//! - one live (non-deleted) topic per name, and none whose name differs from a live one's
//!   only in `.` and `_` ([`TopicName::collision_key`], refused as invalid), enforced by a
//!   unique index; one subscription per user and topic;
//! - one account per username whatever its case; subscriptions only of existing users;
//! - [`Store::counts`] reads maintained counters and never scans a table.

mod error;
mod events;
mod guards;
mod migrations;
pub mod postgres;
mod rows;
#[cfg(test)]
mod scenarios;
pub mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use streamhub_model::api::{AuditEntry, Subscription, Topic, User};
use streamhub_model::traffic::TrafficProfile;
use streamhub_model::{Action, DataType, Role, TopicName, TopicStatus, Transition, topic_limits};

pub use error::StoreError;
pub(crate) use error::is_unique_violation;
pub use events::EventBus;
pub use guards::Guarded;

/// The store on SQLite: the guards over the SQLite engine.
pub type SqliteStore = Guarded<sqlite::SqliteEngine>;
/// The store on PostgreSQL: the guards over the PostgreSQL engine.
pub type PostgresStore = Guarded<postgres::PostgresEngine>;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A topic request, validated by the caller (see [`NewTopic::validate`]).
#[derive(Clone, Debug, PartialEq)]
pub struct NewTopic {
    pub name: TopicName,
    pub created_by: String,
    pub partitions: i32,
    pub replication_factor: i32,
    pub description: String,
    pub data_type: DataType,
    pub rate_per_second: Option<f64>,
    pub traffic_profile: Option<TrafficProfile>,
}

impl NewTopic {
    /// Checks the figures a topic name's parser cannot (the bounds live in
    /// [`streamhub_model::topic_limits`]): the store refuses what Kafka or the producer
    /// could not honour.
    pub fn validate(&self) -> Result<()> {
        topic_limits::check(
            self.partitions,
            self.replication_factor,
            &self.description,
            self.rate_per_second,
            self.traffic_profile.is_some(),
        )
        .map_err(StoreError::Invalid)?;
        if self.created_by.trim().is_empty() {
            return Err(StoreError::Invalid("created_by must not be empty".into()));
        }
        Ok(())
    }
}

/// Which topic a lifecycle request names.
#[derive(Clone, Debug, PartialEq)]
pub enum TopicRef {
    /// Any topic, deleted ones included.
    Id(i64),
    /// The live (non-deleted) topic of that name.
    Name(String),
}

impl std::fmt::Display for TopicRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TopicRef::Id(id) => write!(f, "topic {id}"),
            TopicRef::Name(name) => write!(f, "topic '{name}'"),
        }
    }
}

/// The result of an allowed lifecycle request.
#[derive(Clone, Debug, PartialEq)]
pub struct TransitionOutcome {
    /// The topic after the request.
    pub topic: Topic,
    pub transition: Transition,
    /// The status before the request.
    pub from: TopicStatus,
}

impl TransitionOutcome {
    pub fn changed(&self) -> bool {
        matches!(self.transition, Transition::To(_))
    }
}

/// The result of a subscription request: `created` is false when it already existed.
#[derive(Clone, Debug, PartialEq)]
pub struct SubscribeOutcome {
    pub subscription: Subscription,
    pub created: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TopicFilter {
    /// `None` lists every topic but deleted ones.
    pub status: Option<TopicStatus>,
    pub limit: Option<i64>,
    pub offset: i64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubscriptionFilter {
    pub user_id: Option<String>,
    pub limit: Option<i64>,
    pub offset: i64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserFilter {
    pub limit: Option<i64>,
    pub offset: i64,
}

/// Audit rows newest first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub topic_id: Option<i64>,
    /// Every topic that had this name, deleted ones included.
    pub topic_name: Option<String>,
    pub action: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// Maintained counts: reading them costs the same whatever the size of the store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: i64,
    pub approved: i64,
    pub active: i64,
    pub inactive: i64,
    pub rejected: i64,
    pub deleted: i64,
    pub subscriptions: i64,
    pub users: i64,
}

impl Counts {
    /// From the rows of the `counters` table (`name`, `value`), as both engines keep it;
    /// names it does not know are skipped.
    pub(crate) fn from_counters(rows: impl IntoIterator<Item = (String, i64)>) -> Counts {
        let mut counts = Counts::default();
        for (name, value) in rows {
            let slot = match name.as_str() {
                "topics.pending" => &mut counts.pending,
                "topics.approved" => &mut counts.approved,
                "topics.active" => &mut counts.active,
                "topics.inactive" => &mut counts.inactive,
                "topics.rejected" => &mut counts.rejected,
                "topics.deleted" => &mut counts.deleted,
                "subscriptions" => &mut counts.subscriptions,
                "users" => &mut counts.users,
                _ => continue,
            };
            *slot = value;
        }
        counts
    }

    /// Topics that are not deleted.
    pub fn live_topics(&self) -> i64 {
        self.pending + self.approved + self.active + self.inactive + self.rejected
    }
}

/// A user with the hash of their password, for sign-in only.
#[derive(Clone, PartialEq)]
pub struct Credentials {
    pub user: User,
    pub password_hash: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password_hash", &"<redacted>")
            .finish()
    }
}

/// An audit row of [`Store::note`].
#[derive(Clone, Debug, PartialEq)]
pub struct AuditNote<'a> {
    pub actor: &'a str,
    /// `kafka.acl-drift`, `kafka.credentials`, ...
    pub action: &'a str,
    pub topic_id: Option<i64>,
    pub target: &'a str,
    pub detail: Option<&'a str>,
}

/// The metadata store. `actor` is the principal a mutation is audited under.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // Topics.
    async fn create_topic(&self, actor: &str, topic: NewTopic) -> Result<Topic> {
        self.create_topic_within(actor, topic, None).await
    }
    /// [`Store::create_topic`], refused with [`StoreError::Conflict`] when the topic's
    /// `created_by` already has `max_pending` pending topics. Counted in the creating
    /// transaction, so parallel requests cannot overshoot.
    async fn create_topic_within(
        &self,
        actor: &str,
        topic: NewTopic,
        max_pending: Option<i64>,
    ) -> Result<Topic>;
    /// Any topic by id, deleted ones included.
    async fn topic(&self, topic_id: i64) -> Result<Topic>;
    /// The live topic of that name.
    async fn topic_by_name(&self, name: &str) -> Result<Topic>;
    /// Newest first.
    async fn topics(&self, filter: &TopicFilter) -> Result<Vec<Topic>>;
    /// How many times topic rows were written, counted in the writing transaction by the
    /// database itself: while it stays the same, so does every list of topics.
    async fn topic_changes(&self) -> Result<i64>;
    /// Applies `action` through [`Topic::decide`]. `reason` is kept on the topic for
    /// `Reject`; a rejection's reason or an activation's generation record
    /// ([`streamhub_model::generation::Generation`]) goes to the audit row. Activation
    /// clears a reported provisioning failure.
    async fn transition(
        &self,
        actor: &str,
        topic: TopicRef,
        action: Action,
        reason: Option<String>,
    ) -> Result<TransitionOutcome>;
    /// Records on the live topic `name`, which must await provisioning
    /// ([`TopicStatus::awaits_provisioning`]), why the producer cannot create it in Kafka,
    /// with an audit row. The error it already has again writes nothing.
    async fn provisioning_failed(&self, actor: &str, name: &str, error: &str) -> Result<Topic>;

    // Subscriptions.
    /// Subscribes the existing user `user_id` to the live topic `topic_name`, which must
    /// be active.
    async fn subscribe(
        &self,
        actor: &str,
        user_id: &str,
        topic_name: &str,
    ) -> Result<SubscribeOutcome>;
    async fn unsubscribe(
        &self,
        actor: &str,
        user_id: &str,
        topic_name: &str,
    ) -> Result<Subscription>;
    async fn subscriptions(&self, filter: &SubscriptionFilter) -> Result<Vec<Subscription>>;

    async fn counts(&self) -> Result<Counts>;

    // Users and tokens.
    /// Refuses a username another account has in any case (409), or that the model
    /// does not allow (422).
    async fn create_user(
        &self,
        actor: &str,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User>;
    /// By username.
    async fn users(&self, filter: &UserFilter) -> Result<Vec<User>>;
    /// Deletes a user with their tokens and subscriptions; refuses to delete the last admin.
    async fn delete_user(&self, actor: &str, username: &str) -> Result<User>;
    async fn credentials(&self, username: &str) -> Result<Option<Credentials>>;
    /// Stores a token by its hash (the token itself is never stored). A user keeps at most
    /// [`MAX_TOKENS_PER_USER`](streamhub_model::account::MAX_TOKENS_PER_USER) tokens:
    /// the oldest beyond it are removed.
    async fn create_token(
        &self,
        username: &str,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
    /// The user a token belongs to, if it exists and has not expired at `now`.
    async fn token_user(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<User>>;
    async fn delete_token(&self, token_hash: &str) -> Result<()>;
    /// Removes tokens expired at `now`; returns how many.
    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> Result<u64>;

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>>;
    /// Writes an audit row of what the service saw or did outside the store's own rows: a
    /// drift of the broker's ACLs corrected, Kafka credentials handed out.
    async fn note(&self, note: &AuditNote<'_>) -> Result<()>;

    /// Live events of every service instance sharing this store: SQLite's reach this
    /// process only, PostgreSQL's every process connected to the same database.
    fn events(&self) -> &EventBus;
}

/// Connections to PostgreSQL one service instance keeps at most, unless told otherwise.
pub const DEFAULT_POOL_SIZE: u32 = 16;

/// Opens the store a `--database` value names: `postgres://…` or `postgresql://…` (an
/// existing database), or `sqlite://<path>`, `sqlite:<path>` or a plain file path (created
/// with its directory). Applies migrations.
pub async fn open(database: &str) -> Result<Arc<dyn Store>> {
    open_with_pool(database, DEFAULT_POOL_SIZE).await
}

/// [`open`], with at most `pool_size` connections to PostgreSQL. SQLite ignores it: it has
/// one writer connection and readers as needed.
pub async fn open_with_pool(database: &str, pool_size: u32) -> Result<Arc<dyn Store>> {
    if database.starts_with("postgres://") || database.starts_with("postgresql://") {
        return Ok(Arc::new(
            PostgresStore::open_with_pool(database, pool_size).await?,
        ));
    }
    let path = database
        .strip_prefix("sqlite://")
        .or_else(|| database.strip_prefix("sqlite:"))
        .unwrap_or(database);
    Ok(Arc::new(SqliteStore::open(path).await?))
}
