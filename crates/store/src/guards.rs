//! The store's rules, written once for every engine.
//!
//! Design: an engine ([`Engine`]) knows its database and nothing of the rules. It offers
//! primitives inside a sqlx transaction (read a row, optionally locked; insert, update or
//! delete one; bump counters; insert an audit row; announce an event) and the plain reads.
//! [`Guarded`] wraps an engine and implements [`Store`] once over it: every mutation begins
//! a transaction, checks its guards (lifecycle by [`Topic::decide`], subscribability,
//! quotas, duplicates, the last admin, provisioning states), writes the change with its
//! audit row and counters, announces it, commits, and only then tells this process's
//! subscribers. [`SqliteStore`](crate::SqliteStore) and
//! [`PostgresStore`](crate::PostgresStore) are `Guarded` over their engine.
//!
//! The engines differ only where their databases do: SQLite has one writer, so its locks
//! are no-ops; PostgreSQL locks rows (`FOR UPDATE`, `FOR SHARE`) and serialises one
//! requester's topic requests with an advisory lock. The guards ask for the lock a check
//! needs, so the same code is race-free on both. Statements without a timestamp are shared
//! (`$n` placeholders, which both engines accept); engines bind what they store times as.
//! A small trait over sqlx's own transaction type was preferred to `sqlx::Any`, which
//! would lose the engines' column types (SQLite keeps times as text). Listings are built
//! once too ([`crate::rows::Listings`]); the other reads are one statement each.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use streamhub_model::account::MAX_TOKENS_PER_USER;
use streamhub_model::api::{AuditEntry, Event, Subscription, Topic, User};
use streamhub_model::{Action, Role, TopicName, TopicStatus, Transition};

use crate::events::{subscription_event, topic_event};
use crate::{
    AuditFilter, AuditNote, Counts, Credentials, EventBus, NewTopic, Result, Store, StoreError,
    SubscribeOutcome, SubscriptionFilter, TopicFilter, TopicRef, TransitionOutcome, UserFilter,
    is_unique_violation,
};

/// An engine's write transaction; dropped uncommitted, it rolls back.
pub(crate) type Tx<E> = sqlx::Transaction<'static, <E as Engine>::Db>;

/// A row lock a guard needs until its transaction ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lock {
    /// Keeps the row as it is (no update, no delete by others).
    Share,
    /// Makes other writers of the row wait.
    Update,
}

/// An audit row, written in the transaction of the change it records.
pub(crate) struct Audit<'a> {
    pub at: DateTime<Utc>,
    pub actor: &'a str,
    pub action: &'a str,
    pub topic_id: Option<i64>,
    pub target: &'a str,
    pub before: Option<&'a str>,
    pub after: Option<&'a str>,
    pub detail: Option<&'a str>,
}

/// Binds `$1` to `$8` in field order; `$1` is `at`, as the engine stores times.
pub(crate) const INSERT_AUDIT: &str = "INSERT INTO audit \
     (at, actor, action, topic_id, target, before, after, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub(crate) const BUMP_COUNTER: &str = "UPDATE counters SET value = value + $1 WHERE name = $2";
pub(crate) const PENDING_OF: &str =
    "SELECT COUNT(*) FROM topics WHERE status = 'pending' AND created_by = $1";
/// The live topic whose name has this collision key; the expression is the unique index's.
pub(crate) const LIVE_NAME_BY_COLLISION_KEY: &str =
    "SELECT name FROM topics WHERE replace(name, '.', '_') = $1 AND status <> 'deleted'";
pub(crate) const SUBSCRIBERS: &str = "SELECT COUNT(*) FROM subscriptions WHERE topic_id = $1";
/// `$1` error, `$2` time, `$3` topic id, `$4` the status it was read in.
pub(crate) const SET_PROVISIONING_ERROR: &str = "UPDATE topics SET provisioning_error = $1, \
     updated_at = $2 WHERE topic_id = $3 AND status = $4";
pub(crate) const DELETE_USER: &str = "DELETE FROM users WHERE username = $1";
/// `$1` user id, `$2` the new token, `$3` how many others the user keeps.
pub(crate) const PRUNE_TOKENS: &str = "DELETE FROM tokens WHERE user_id = $1 \
     AND token_hash <> $2 AND token_hash NOT IN (SELECT token_hash FROM tokens \
     WHERE user_id = $1 AND token_hash <> $2 ORDER BY created_at DESC, token_hash LIMIT $3)";

/// A lifecycle change the guards allowed, for [`Engine::update_status`].
pub(crate) struct StatusChange<'a> {
    pub topic_id: i64,
    pub from: TopicStatus,
    pub to: TopicStatus,
    pub at: DateTime<Utc>,
    /// The column that records when the topic reached `to`, if one does.
    pub stamp: Option<&'static str>,
    pub rejection_reason: Option<&'a str>,
    /// Activation clears a reported provisioning failure.
    pub clears_provisioning_error: bool,
}

impl StatusChange<'_> {
    /// The update, binding `$1` status, `$2` time, `$3` topic id, `$4` status read and,
    /// with a reason, `$5` the reason. The status condition makes the write itself refuse
    /// a topic that moved since it was read, whatever the engine's isolation.
    pub fn sql(&self) -> String {
        let mut sql = String::from("UPDATE topics SET status = $1, updated_at = $2");
        if let Some(column) = self.stamp {
            sql.push_str(&format!(", {column} = $2"));
        }
        if self.rejection_reason.is_some() {
            sql.push_str(", rejection_reason = $5");
        }
        if self.clears_provisioning_error {
            sql.push_str(", provisioning_error = NULL");
        }
        sql.push_str(" WHERE topic_id = $3 AND status = $4");
        sql
    }
}

/// What a database offers the guards. Methods taking a transaction run in it; the others
/// are reads (and token upkeep) that no rule governs, which [`Guarded`] passes through.
#[async_trait]
pub(crate) trait Engine: Send + Sync + 'static {
    type Db: sqlx::Database;

    fn events(&self) -> &EventBus;
    async fn begin(&self) -> Result<Tx<Self>>;
    /// Tells the other processes sharing the database of `event` when `tx` commits (and
    /// never if it rolls back). An engine only this process reaches does nothing.
    async fn announce(&self, tx: &mut Tx<Self>, event: &Event) -> Result<()>;
    async fn bump(&self, tx: &mut Tx<Self>, counter: &str, delta: i64) -> Result<()>;
    async fn insert_audit(&self, tx: &mut Tx<Self>, audit: &Audit<'_>) -> Result<()>;

    /// Makes the topic requests of `created_by` take turns until `tx` ends.
    async fn lock_requester(&self, tx: &mut Tx<Self>, created_by: &str) -> Result<()>;
    async fn pending_topics_of(&self, tx: &mut Tx<Self>, created_by: &str) -> Result<i64>;
    /// A new pending topic's id, or `None` when the unique index refused its name.
    async fn insert_topic(
        &self,
        tx: &mut Tx<Self>,
        topic: &NewTopic,
        at: DateTime<Utc>,
    ) -> Result<Option<i64>>;
    async fn live_name_with_key(&self, tx: &mut Tx<Self>, key: &str) -> Result<Option<String>>;
    async fn topic_in(
        &self,
        tx: &mut Tx<Self>,
        target: &TopicRef,
        lock: Option<Lock>,
    ) -> Result<Option<Topic>>;
    async fn subscribers(&self, tx: &mut Tx<Self>, topic_id: i64) -> Result<i64>;
    /// Rows updated: 0 when the topic is no longer in `change.from`.
    async fn update_status(&self, tx: &mut Tx<Self>, change: &StatusChange<'_>) -> Result<u64>;
    /// [`SET_PROVISIONING_ERROR`]; rows updated.
    async fn set_provisioning_error(
        &self,
        tx: &mut Tx<Self>,
        topic: &Topic,
        error: &str,
        at: DateTime<Utc>,
    ) -> Result<u64>;

    async fn user_in(
        &self,
        tx: &mut Tx<Self>,
        username: &str,
        lock: Option<Lock>,
    ) -> Result<Option<User>>;
    /// Every admin's username, locked for update in one order.
    async fn lock_admins(&self, tx: &mut Tx<Self>) -> Result<Vec<String>>;
    /// The new user, or `None` when the name is taken in any case.
    async fn insert_user(
        &self,
        tx: &mut Tx<Self>,
        username: &str,
        password_hash: &str,
        role: Role,
        at: DateTime<Utc>,
    ) -> Result<Option<User>>;
    /// [`DELETE_USER`]; rows deleted.
    async fn delete_user_row(&self, tx: &mut Tx<Self>, username: &str) -> Result<u64>;

    /// False when the pair already has one.
    async fn insert_subscription(
        &self,
        tx: &mut Tx<Self>,
        user_id: &str,
        topic_id: i64,
        at: DateTime<Utc>,
    ) -> Result<bool>;
    async fn subscription_in(
        &self,
        tx: &mut Tx<Self>,
        user_id: &str,
        topic_id: i64,
    ) -> Result<Option<Subscription>>;
    /// The deleted subscription, if there was one.
    async fn delete_subscription(
        &self,
        tx: &mut Tx<Self>,
        user_id: &str,
        topic: &Topic,
    ) -> Result<Option<Subscription>>;
    /// The user's deleted subscriptions, in id order, with their topic ids.
    async fn delete_subscriptions_of(
        &self,
        tx: &mut Tx<Self>,
        username: &str,
    ) -> Result<Vec<(Subscription, i64)>>;

    /// The owner's user id, or `None` when there is no such user. The database's own
    /// error is kept, so that a unique violation can be told apart.
    async fn insert_token(
        &self,
        tx: &mut Tx<Self>,
        username: &str,
        token_hash: &str,
        at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> sqlx::Result<Option<i64>>;
    /// [`PRUNE_TOKENS`].
    async fn prune_tokens(
        &self,
        tx: &mut Tx<Self>,
        user_id: i64,
        token_hash: &str,
        others: i64,
    ) -> Result<()>;

    async fn topic(&self, topic_id: i64) -> Result<Option<Topic>>;
    async fn topic_by_name(&self, name: &str) -> Result<Option<Topic>>;
    async fn topics(&self, filter: &TopicFilter) -> Result<Vec<Topic>>;
    async fn counter(&self, name: &str) -> Result<Option<i64>>;
    async fn counters(&self) -> Result<Vec<(String, i64)>>;
    async fn subscriptions(&self, filter: &SubscriptionFilter) -> Result<Vec<Subscription>>;
    async fn users(&self, filter: &UserFilter) -> Result<Vec<User>>;
    async fn credentials(&self, username: &str) -> Result<Option<Credentials>>;
    async fn token_user(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<User>>;
    async fn delete_token(&self, token_hash: &str) -> Result<()>;
    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> Result<u64>;
    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>>;
}

/// A [`Store`]: the guards over an engine.
pub struct Guarded<E> {
    pub(crate) engine: E,
}

/// Shows the engine: the guards hold nothing else.
impl<E: std::fmt::Debug> std::fmt::Debug for Guarded<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.engine.fmt(f)
    }
}

impl<E> Guarded<E> {
    pub(crate) fn new(engine: E) -> Self {
        Guarded { engine }
    }
}

/// Adds the deltas to the counters in name order, so that transactions never wait on
/// each other's counters in a cycle. Counter rows are the most contended, so the guards
/// bump last, just before committing.
async fn bump<E: Engine>(engine: &E, tx: &mut Tx<E>, deltas: &[(&str, i64)]) -> Result<()> {
    let mut deltas = deltas.to_vec();
    deltas.sort_by(|a, b| a.0.cmp(b.0));
    for (counter, delta) in deltas {
        engine.bump(tx, counter, delta).await?;
    }
    Ok(())
}

/// Announces `events` with `tx`, commits it, then delivers them to this process.
async fn commit<E: Engine>(engine: &E, mut tx: Tx<E>, events: Vec<Event>) -> Result<()> {
    for event in &events {
        engine.announce(&mut tx, event).await?;
    }
    tx.commit().await?;
    for event in events {
        engine.events().publish(event);
    }
    Ok(())
}

async fn reread<E: Engine>(engine: &E, tx: &mut Tx<E>, topic_id: i64) -> Result<Topic> {
    engine
        .topic_in(tx, &TopicRef::Id(topic_id), None)
        .await?
        .ok_or_else(|| StoreError::Backend("written topic vanished".into()))
}

/// Why `name` could not be inserted: a live topic whose name collides with it in Kafka
/// (invalid), or one of the same name (a conflict).
async fn refused_name<E: Engine>(engine: &E, tx: &mut Tx<E>, name: &TopicName) -> StoreError {
    match engine.live_name_with_key(tx, &name.collision_key()).await {
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

/// The column stamped when `action` succeeds.
fn stamp_column(action: Action) -> Option<&'static str> {
    match action {
        Action::Approve => Some("approved_at"),
        Action::Activate | Action::Reactivate => Some("activated_at"),
        Action::Deactivate => Some("deactivated_at"),
        Action::Reject | Action::Delete => None,
    }
}

fn status_counter(status: TopicStatus) -> String {
    format!("topics.{status}")
}

fn no_such_user(username: &str) -> StoreError {
    StoreError::NotFound(format!("user '{username}' does not exist"))
}

fn no_such_topic(name: &str) -> StoreError {
    StoreError::NotFound(format!("topic '{name}' does not exist"))
}

/// The refusal of a request to record a provisioning failure on a topic in `status`.
fn not_awaiting_provisioning(name: &str, status: TopicStatus) -> StoreError {
    StoreError::Conflict(format!(
        "topic '{name}' is {status}: only an approved topic awaits provisioning"
    ))
}

/// A provisioning error as stored: trimmed, not empty, within the API's bound.
fn provisioning_error(error: &str) -> Result<&str> {
    let error = error.trim();
    if error.is_empty() {
        return Err(StoreError::Invalid("error must not be empty".into()));
    }
    let max = streamhub_model::api::ProvisioningFailure::MAX_ERROR_CHARS;
    if error.chars().count() > max {
        return Err(StoreError::Invalid(format!(
            "error is longer than {max} characters"
        )));
    }
    Ok(error)
}

/// A subscription's owner: any non-blank id (the admin service checks who may name whom).
fn validate_user_id(user_id: &str) -> Result<()> {
    if user_id.trim().is_empty() {
        return Err(StoreError::Invalid("user_id must not be empty".into()));
    }
    Ok(())
}

fn too_many_pending(created_by: &str, pending: i64) -> StoreError {
    StoreError::Conflict(format!(
        "'{created_by}' already has {pending} pending topic requests; wait until an admin has decided on some"
    ))
}

/// The rule is the model's; the store applies it to every account it creates.
fn validate_username(username: &str) -> Result<()> {
    streamhub_model::account::check_username(username).map_err(|e| StoreError::Invalid(e.0))
}

#[async_trait]
impl<E: Engine> Store for Guarded<E> {
    async fn create_topic_within(
        &self,
        actor: &str,
        new: NewTopic,
        max_pending: Option<i64>,
    ) -> Result<Topic> {
        new.validate()?;
        let now = Utc::now();
        let mut tx = self.engine.begin().await?;
        if let Some(max) = max_pending {
            // Requests of one requester take turns, so each counts the others' rows.
            self.engine.lock_requester(&mut tx, &new.created_by).await?;
            let pending = self
                .engine
                .pending_topics_of(&mut tx, &new.created_by)
                .await?;
            if pending >= max {
                return Err(too_many_pending(&new.created_by, pending));
            }
        }
        // A concurrent create of the same name waits on the unique index, then is refused.
        let Some(topic_id) = self.engine.insert_topic(&mut tx, &new, now).await? else {
            return Err(refused_name(&self.engine, &mut tx, &new.name).await);
        };
        let audit = Audit {
            at: now,
            actor,
            action: "create",
            topic_id: Some(topic_id),
            target: new.name.as_str(),
            before: None,
            after: Some(TopicStatus::Pending.as_str()),
            detail: None,
        };
        self.engine.insert_audit(&mut tx, &audit).await?;
        let topic = reread(&self.engine, &mut tx, topic_id).await?;
        bump(
            &self.engine,
            &mut tx,
            &[(&status_counter(TopicStatus::Pending), 1)],
        )
        .await?;
        commit(&self.engine, tx, vec![topic_event(None, &topic)]).await?;
        Ok(topic)
    }

    async fn topic(&self, topic_id: i64) -> Result<Topic> {
        self.engine
            .topic(topic_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("topic {topic_id} does not exist")))
    }

    async fn topic_by_name(&self, name: &str) -> Result<Topic> {
        self.engine
            .topic_by_name(name)
            .await?
            .ok_or_else(|| no_such_topic(name))
    }

    async fn topics(&self, filter: &TopicFilter) -> Result<Vec<Topic>> {
        self.engine.topics(filter).await
    }

    async fn topic_changes(&self) -> Result<i64> {
        self.engine
            .counter("topics.changes")
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
        let mut tx = self.engine.begin().await?;
        // Concurrent requests on this topic wait here and then see what this one commits.
        let topic = self
            .engine
            .topic_in(&mut tx, &target, Some(Lock::Update))
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
            let subscribers = self.engine.subscribers(&mut tx, topic.topic_id).await?;
            if subscribers > 0 {
                return Err(StoreError::Conflict(format!(
                    "topic '{}' has {subscribers} subscription(s); they must be removed before it can be deleted",
                    topic.topic_name
                )));
            }
        }
        let change = StatusChange {
            topic_id: topic.topic_id,
            from,
            to,
            at: Utc::now(),
            stamp: stamp_column(action),
            rejection_reason: reason.as_deref().filter(|_| action == Action::Reject),
            clears_provisioning_error: matches!(action, Action::Activate | Action::Reactivate),
        };
        if self.engine.update_status(&mut tx, &change).await? != 1 {
            return Err(StoreError::Conflict(format!(
                "{target} changed while it was being updated; try again"
            )));
        }
        let audit = Audit {
            at: change.at,
            actor,
            action: action.as_str(),
            topic_id: Some(topic.topic_id),
            target: &topic.topic_name,
            before: Some(from.as_str()),
            after: Some(to.as_str()),
            detail: reason
                .as_deref()
                .filter(|_| matches!(action, Action::Reject | Action::Activate)),
        };
        self.engine.insert_audit(&mut tx, &audit).await?;
        let topic = reread(&self.engine, &mut tx, topic.topic_id).await?;
        bump(
            &self.engine,
            &mut tx,
            &[(&status_counter(from), -1), (&status_counter(to), 1)],
        )
        .await?;
        commit(&self.engine, tx, vec![topic_event(Some(action), &topic)]).await?;
        Ok(TransitionOutcome {
            topic,
            transition: Transition::To(to),
            from,
        })
    }

    async fn provisioning_failed(&self, actor: &str, name: &str, error: &str) -> Result<Topic> {
        let error = provisioning_error(error)?;
        let mut tx = self.engine.begin().await?;
        let topic = self
            .engine
            .topic_in(&mut tx, &TopicRef::Name(name.into()), Some(Lock::Update))
            .await?
            .ok_or_else(|| no_such_topic(name))?;
        if !topic.status.awaits_provisioning() {
            return Err(not_awaiting_provisioning(name, topic.status));
        }
        if topic.provisioning_error.as_deref() == Some(error) {
            return Ok(topic);
        }
        let now = Utc::now();
        let updated = self
            .engine
            .set_provisioning_error(&mut tx, &topic, error, now)
            .await?;
        if updated != 1 {
            return Err(StoreError::Conflict(format!(
                "topic '{name}' changed while it was being updated; try again"
            )));
        }
        let status = topic.status.as_str();
        let audit = Audit {
            at: now,
            actor,
            action: "provisioning_failed",
            topic_id: Some(topic.topic_id),
            target: name,
            before: Some(status),
            after: Some(status),
            detail: Some(error),
        };
        self.engine.insert_audit(&mut tx, &audit).await?;
        let topic = reread(&self.engine, &mut tx, topic.topic_id).await?;
        commit(&self.engine, tx, vec![topic_event(None, &topic)]).await?;
        Ok(topic)
    }

    async fn subscribe(
        &self,
        actor: &str,
        user_id: &str,
        topic_name: &str,
    ) -> Result<SubscribeOutcome> {
        validate_user_id(user_id)?;
        let mut tx = self.engine.begin().await?;
        // The share lock keeps the user until this commits: a concurrent deletion of the
        // user waits, then removes this subscription with the user.
        if self
            .engine
            .user_in(&mut tx, user_id, Some(Lock::Share))
            .await?
            .is_none()
        {
            return Err(no_such_user(user_id));
        }
        // The share lock keeps the topic active (and undeleted) until this commits.
        let topic = self
            .engine
            .topic_in(
                &mut tx,
                &TopicRef::Name(topic_name.into()),
                Some(Lock::Share),
            )
            .await?
            .ok_or_else(|| no_such_topic(topic_name))?;
        if topic.status != TopicStatus::Active {
            return Err(StoreError::Conflict(format!(
                "topic '{topic_name}' is {}; only active topics can be subscribed to",
                topic.status
            )));
        }
        let now = Utc::now();
        // A concurrent subscribe of the same pair waits on the unique key, then inserts
        // nothing and answers with the row the other one committed.
        let created = self
            .engine
            .insert_subscription(&mut tx, user_id, topic.topic_id, now)
            .await?;
        let target = format!("{user_id}/{topic_name}");
        if created {
            let audit = Audit {
                at: now,
                actor,
                action: "subscribe",
                topic_id: Some(topic.topic_id),
                target: &target,
                before: None,
                after: Some("active"),
                detail: None,
            };
            self.engine.insert_audit(&mut tx, &audit).await?;
        }
        let subscription = self
            .engine
            .subscription_in(&mut tx, user_id, topic.topic_id)
            .await?
            .ok_or_else(|| StoreError::Backend("subscription vanished".into()))?;
        let mut events = Vec::new();
        if created {
            bump(&self.engine, &mut tx, &[("subscriptions", 1)]).await?;
            events.push(subscription_event(true, &subscription));
        }
        commit(&self.engine, tx, events).await?;
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
        let mut tx = self.engine.begin().await?;
        let topic = self
            .engine
            .topic_in(&mut tx, &TopicRef::Name(topic_name.into()), None)
            .await?
            .ok_or_else(|| no_such_topic(topic_name))?;
        // Of two concurrent requests, the second deletes nothing and is told so.
        let subscription = self
            .engine
            .delete_subscription(&mut tx, user_id, &topic)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "'{user_id}' is not subscribed to topic '{topic_name}'"
                ))
            })?;
        let audit = Audit {
            at: Utc::now(),
            actor,
            action: "unsubscribe",
            topic_id: Some(topic.topic_id),
            target: &format!("{user_id}/{topic_name}"),
            before: Some("active"),
            after: None,
            detail: None,
        };
        self.engine.insert_audit(&mut tx, &audit).await?;
        bump(&self.engine, &mut tx, &[("subscriptions", -1)]).await?;
        commit(
            &self.engine,
            tx,
            vec![subscription_event(false, &subscription)],
        )
        .await?;
        Ok(subscription)
    }

    async fn subscriptions(&self, filter: &SubscriptionFilter) -> Result<Vec<Subscription>> {
        self.engine.subscriptions(filter).await
    }

    async fn counts(&self) -> Result<Counts> {
        Ok(Counts::from_counters(self.engine.counters().await?))
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
        let mut tx = self.engine.begin().await?;
        // Any unique index refuses the name: the username's, or its case-folded one.
        let Some(user) = self
            .engine
            .insert_user(&mut tx, username, password_hash, role, now)
            .await?
        else {
            return Err(StoreError::Conflict(format!(
                "user '{username}' already exists (usernames are compared ignoring case)"
            )));
        };
        let audit = Audit {
            at: now,
            actor,
            action: "user.create",
            topic_id: None,
            target: username,
            before: None,
            after: Some(role.as_str()),
            detail: None,
        };
        self.engine.insert_audit(&mut tx, &audit).await?;
        bump(&self.engine, &mut tx, &[("users", 1)]).await?;
        commit(&self.engine, tx, Vec::new()).await?;
        Ok(user)
    }

    async fn users(&self, filter: &UserFilter) -> Result<Vec<User>> {
        self.engine.users(filter).await
    }

    async fn delete_user(&self, actor: &str, username: &str) -> Result<User> {
        let mut tx = self.engine.begin().await?;
        let user = self
            .engine
            .user_in(&mut tx, username, None)
            .await?
            .ok_or_else(|| no_such_user(username))?;
        let still_there = if user.role == Role::Admin {
            // Deleting an admin locks every admin, in one order, so two concurrent
            // deletions cannot each leave the other as the last admin and remove both.
            let admins = self.engine.lock_admins(&mut tx).await?;
            let listed = admins.iter().any(|a| a == username);
            if listed && admins.len() <= 1 {
                return Err(StoreError::Conflict(format!(
                    "'{username}' is the last admin and cannot be deleted"
                )));
            }
            listed
        } else {
            self.engine
                .user_in(&mut tx, username, Some(Lock::Update))
                .await?
                .is_some()
        };
        if !still_there {
            return Err(no_such_user(username));
        }
        // Subscriptions go with the user, or a new account of the same name would
        // inherit them; tokens go by ON DELETE CASCADE.
        let gone = self
            .engine
            .delete_subscriptions_of(&mut tx, username)
            .await?;
        let now = Utc::now();
        let mut events = Vec::with_capacity(gone.len());
        for (subscription, topic_id) in &gone {
            let audit = Audit {
                at: now,
                actor,
                action: "unsubscribe",
                topic_id: Some(*topic_id),
                target: &format!("{username}/{}", subscription.topic_name),
                before: Some("active"),
                after: None,
                detail: None,
            };
            self.engine.insert_audit(&mut tx, &audit).await?;
            events.push(subscription_event(false, subscription));
        }
        if self.engine.delete_user_row(&mut tx, username).await? != 1 {
            return Err(no_such_user(username));
        }
        let audit = Audit {
            at: now,
            actor,
            action: "user.delete",
            topic_id: None,
            target: username,
            before: Some(user.role.as_str()),
            after: None,
            detail: None,
        };
        self.engine.insert_audit(&mut tx, &audit).await?;
        let mut deltas = vec![("users", -1)];
        if !gone.is_empty() {
            deltas.push(("subscriptions", -(gone.len() as i64)));
        }
        bump(&self.engine, &mut tx, &deltas).await?;
        commit(&self.engine, tx, events).await?;
        Ok(user)
    }

    async fn credentials(&self, username: &str) -> Result<Option<Credentials>> {
        self.engine.credentials(username).await
    }

    async fn create_token(
        &self,
        username: &str,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        let mut tx = self.engine.begin().await?;
        let inserted = self
            .engine
            .insert_token(&mut tx, username, token_hash, Utc::now(), expires_at)
            .await;
        let user_id = match inserted {
            Ok(Some(user_id)) => user_id,
            Ok(None) => return Err(no_such_user(username)),
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict("token exists already".into()));
            }
            Err(e) => return Err(e.into()),
        };
        // Sign-ins beyond the user's maximum end the oldest ones; the new one stays.
        self.engine
            .prune_tokens(&mut tx, user_id, token_hash, MAX_TOKENS_PER_USER - 1)
            .await?;
        commit(&self.engine, tx, Vec::new()).await
    }

    async fn token_user(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<User>> {
        self.engine.token_user(token_hash, now).await
    }

    async fn delete_token(&self, token_hash: &str) -> Result<()> {
        self.engine.delete_token(token_hash).await
    }

    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> Result<u64> {
        self.engine.purge_expired_tokens(now).await
    }

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        self.engine.audit(filter).await
    }

    async fn note(&self, note: &AuditNote<'_>) -> Result<()> {
        let mut tx = self.engine.begin().await?;
        let audit = Audit {
            at: Utc::now(),
            actor: note.actor,
            action: note.action,
            topic_id: note.topic_id,
            target: note.target,
            before: None,
            after: None,
            detail: note.detail,
        };
        self.engine.insert_audit(&mut tx, &audit).await?;
        commit(&self.engine, tx, Vec::new()).await
    }

    fn events(&self) -> &EventBus {
        self.engine.events()
    }
}
