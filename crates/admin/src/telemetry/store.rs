//! The store as the admin service calls it, timed: each call gets a `store` span and a
//! sample in [`STORE_OPERATION_DURATION`] by operation and outcome. The engines stay
//! untouched; this wraps whichever one `--database` opened.
//!
//! Spans carry the operation and numeric ids only: usernames from sign-in forms, topic
//! names from URLs, password and token hashes stay out.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use streamhub_model::api::{AuditEntry, Subscription, Topic, User};
use streamhub_model::{Action, Role};
use streamhub_store::{
    AuditFilter, AuditNote, Counts, Credentials, EventBus, NewTopic, Result, Store,
    SubscribeOutcome, SubscriptionFilter, TopicFilter, TopicRef, TransitionOutcome, UserFilter,
};
use tracing::Instrument;

use super::STORE_OPERATION_DURATION;

/// A [`Store`] that times every call of the one it wraps.
pub(crate) struct TimedStore {
    inner: Arc<dyn Store>,
}

impl TimedStore {
    pub(crate) fn wrap(inner: Arc<dyn Store>) -> Arc<dyn Store> {
        Arc::new(TimedStore { inner })
    }
}

/// Runs `call` in `span`, and records its latency under `operation`.
async fn timed<T>(
    operation: &'static str,
    span: tracing::Span,
    call: impl Future<Output = Result<T>>,
) -> Result<T> {
    let start = Instant::now();
    let result = call.instrument(span).await;
    let outcome = if result.is_ok() { "ok" } else { "error" };
    ::metrics::histogram!(
        STORE_OPERATION_DURATION,
        "operation" => operation,
        "outcome" => outcome,
    )
    .record(start.elapsed().as_secs_f64());
    result
}

/// `timed!(operation, call)` or `timed!(operation, call, field = value, ...)`: the
/// operation's name is the span's `operation` field and the metric's label.
macro_rules! timed {
    ($operation:literal, $call:expr $(, $field:ident = $value:expr)*) => {
        timed(
            $operation,
            tracing::debug_span!("store", operation = $operation $(, $field = $value)*),
            $call,
        )
        .await
    };
}

fn topic_id(topic: &TopicRef) -> Option<i64> {
    match topic {
        TopicRef::Id(id) => Some(*id),
        TopicRef::Name(_) => None,
    }
}

#[async_trait]
impl Store for TimedStore {
    async fn create_topic(&self, actor: &str, topic: NewTopic) -> Result<Topic> {
        timed!("create_topic", self.inner.create_topic(actor, topic))
    }

    async fn create_topic_within(
        &self,
        actor: &str,
        topic: NewTopic,
        max_pending: Option<i64>,
    ) -> Result<Topic> {
        timed!(
            "create_topic",
            self.inner.create_topic_within(actor, topic, max_pending)
        )
    }

    async fn topic(&self, id: i64) -> Result<Topic> {
        timed!("topic", self.inner.topic(id), topic_id = id)
    }

    async fn topic_by_name(&self, name: &str) -> Result<Topic> {
        timed!("topic_by_name", self.inner.topic_by_name(name))
    }

    async fn topics(&self, filter: &TopicFilter) -> Result<Vec<Topic>> {
        timed!("topics", self.inner.topics(filter))
    }

    async fn topic_changes(&self) -> Result<i64> {
        timed!("topic_changes", self.inner.topic_changes())
    }

    async fn transition(
        &self,
        actor: &str,
        topic: TopicRef,
        action: Action,
        reason: Option<String>,
    ) -> Result<TransitionOutcome> {
        let id = topic_id(&topic);
        timed!(
            "transition",
            self.inner.transition(actor, topic, action, reason),
            topic_id = id,
            action = tracing::field::debug(&action)
        )
    }

    async fn provisioning_failed(&self, actor: &str, name: &str, error: &str) -> Result<Topic> {
        timed!(
            "provisioning_failed",
            self.inner.provisioning_failed(actor, name, error)
        )
    }

    async fn subscribe(
        &self,
        actor: &str,
        user_id: &str,
        topic_name: &str,
    ) -> Result<SubscribeOutcome> {
        timed!(
            "subscribe",
            self.inner.subscribe(actor, user_id, topic_name)
        )
    }

    async fn unsubscribe(
        &self,
        actor: &str,
        user_id: &str,
        topic_name: &str,
    ) -> Result<Subscription> {
        timed!(
            "unsubscribe",
            self.inner.unsubscribe(actor, user_id, topic_name)
        )
    }

    async fn subscriptions(&self, filter: &SubscriptionFilter) -> Result<Vec<Subscription>> {
        timed!("subscriptions", self.inner.subscriptions(filter))
    }

    async fn counts(&self) -> Result<Counts> {
        timed!("counts", self.inner.counts())
    }

    async fn create_user(
        &self,
        actor: &str,
        username: &str,
        password_hash: &str,
        role: Role,
    ) -> Result<User> {
        timed!(
            "create_user",
            self.inner.create_user(actor, username, password_hash, role)
        )
    }

    async fn users(&self, filter: &UserFilter) -> Result<Vec<User>> {
        timed!("users", self.inner.users(filter))
    }

    async fn delete_user(&self, actor: &str, username: &str) -> Result<User> {
        timed!("delete_user", self.inner.delete_user(actor, username))
    }

    async fn credentials(&self, username: &str) -> Result<Option<Credentials>> {
        timed!("credentials", self.inner.credentials(username))
    }

    async fn create_token(
        &self,
        username: &str,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        timed!(
            "create_token",
            self.inner.create_token(username, token_hash, expires_at)
        )
    }

    async fn token_user(&self, token_hash: &str, now: DateTime<Utc>) -> Result<Option<User>> {
        timed!("token_user", self.inner.token_user(token_hash, now))
    }

    async fn delete_token(&self, token_hash: &str) -> Result<()> {
        timed!("delete_token", self.inner.delete_token(token_hash))
    }

    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> Result<u64> {
        timed!("purge_expired_tokens", self.inner.purge_expired_tokens(now))
    }

    async fn audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>> {
        timed!("audit", self.inner.audit(filter))
    }

    async fn note(&self, note: &AuditNote<'_>) -> Result<()> {
        timed!("note", self.inner.note(note))
    }

    fn events(&self) -> &EventBus {
        self.inner.events()
    }
}
