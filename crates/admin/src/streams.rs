//! What the long-lived streams (`GET /api/events` and the topic tails) may hold, and for
//! how long.
//!
//! - Slots: each stream holds a [`StreamSlot`] until it ends. Users and admins are held to
//!   a few each, so one of them cannot take every slot; the producer has a share of the
//!   event streams nobody else may use, so users cannot keep it from watching topics.
//! - Authority: a request is authenticated once, but a stream lives on. [`until_revoked`]
//!   checks the stream's credential against the store every [`RECHECK`], so a stream ends
//!   about a second after its token is revoked (sign-out), expires, its user is deleted or
//!   changes role, or (a tail) its user may no longer read the topic. One indexed read per
//!   stream and second; the store is the only place that knows, with several instances too.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::StatusCode;
use chrono::Utc;
use streamhub_model::Role;
use streamhub_model::api::Topic;
use streamhub_store::SubscriptionFilter;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// How many server-sent event streams may be open at once, the producer's share included.
pub const MAX_EVENT_STREAMS: usize = 256;
/// Event streams kept for principals with the producer role: only they may use them, and
/// they use no others.
pub const PRODUCER_EVENT_STREAMS: usize = 16;
/// Event streams one user or admin may have open at once.
pub const EVENT_STREAMS_PER_USER: usize = 8;
/// Tails open at once in this service; each one is a Kafka consumer.
pub const MAX_TAILS: usize = 16;
/// Tails one user or admin may have open at once.
pub const TAILS_PER_USER: usize = 2;
/// How often an open stream's credential is checked again.
pub const RECHECK: Duration = Duration::from_secs(1);

/// Bounds on open streams; [`StreamLimits::default`] has the constants above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamLimits {
    pub event_streams: usize,
    pub producer_event_streams: usize,
    pub event_streams_per_user: usize,
    pub tails: usize,
    pub tails_per_user: usize,
}

impl Default for StreamLimits {
    fn default() -> Self {
        StreamLimits {
            event_streams: MAX_EVENT_STREAMS,
            producer_event_streams: PRODUCER_EVENT_STREAMS,
            event_streams_per_user: EVENT_STREAMS_PER_USER,
            tails: MAX_TAILS,
            tails_per_user: TAILS_PER_USER,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum StreamKind {
    Events,
    Tail,
}

impl StreamKind {
    /// The open streams of this kind, in `/metrics`.
    fn clients(self) -> ::metrics::Gauge {
        let stream = match self {
            StreamKind::Events => "events",
            StreamKind::Tail => "tail",
        };
        ::metrics::gauge!(crate::telemetry::SSE_CLIENTS, "stream" => stream)
    }
}

#[derive(Default)]
struct Held {
    /// Event streams of users and admins.
    events: usize,
    producer_events: usize,
    tails: usize,
    per_user: HashMap<(StreamKind, String), usize>,
}

/// The open streams of one service.
pub(crate) struct StreamSlots {
    limits: StreamLimits,
    held: Mutex<Held>,
}

impl StreamSlots {
    pub(crate) fn new(limits: StreamLimits) -> Arc<StreamSlots> {
        Arc::new(StreamSlots {
            limits,
            held: Mutex::new(Held::default()),
        })
    }

    fn held(&self) -> MutexGuard<'_, Held> {
        // Plain counters: a panic elsewhere leaves them usable.
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a stream of `kind` opened by `principal`, or 429 when the principal has
    /// its share open already, 503 when the service has.
    pub(crate) fn acquire(
        self: &Arc<Self>,
        kind: StreamKind,
        principal: &Principal,
    ) -> Result<StreamSlot, ApiError> {
        let limits = &self.limits;
        let mut guard = self.held();
        let held = &mut *guard;
        let producer = principal.role == Role::Producer && kind == StreamKind::Events;
        if producer {
            if held.producer_events >= limits.producer_event_streams {
                return Err(too_many(format!(
                    "the producer's {} event streams are open already (the producer's share); close one first",
                    limits.producer_event_streams
                ))
                .retry_after(5));
            }
            held.producer_events += 1;
        } else {
            let (own_limit, what) = match kind {
                StreamKind::Events => (limits.event_streams_per_user, "event streams"),
                StreamKind::Tail => (limits.tails_per_user, "message tails"),
            };
            let key = (kind, principal.username.clone());
            let own = held.per_user.get(&key).copied().unwrap_or(0);
            if own >= own_limit {
                return Err(too_many(format!(
                    "'{}' has {own_limit} {what} open already, the most one user may have; close one first",
                    principal.username
                ))
                .retry_after(5));
            }
            let (total, limit) = match kind {
                StreamKind::Events => (
                    &mut held.events,
                    limits
                        .event_streams
                        .saturating_sub(limits.producer_event_streams),
                ),
                StreamKind::Tail => (&mut held.tails, limits.tails),
            };
            if *total >= limit {
                return Err(ApiError::unavailable(format!(
                    "{limit} {what} of users and admins are open already, the most this service keeps; try again later"
                ))
                .retry_after(5));
            }
            *total += 1;
            *held.per_user.entry(key).or_default() += 1;
        }
        kind.clients().increment(1);
        Ok(StreamSlot {
            slots: self.clone(),
            kind,
            user: (!producer).then(|| principal.username.clone()),
        })
    }
}

fn too_many(message: String) -> ApiError {
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, message)
}

/// Held by an open stream; dropping it (the stream ended) gives the slot back.
pub(crate) struct StreamSlot {
    slots: Arc<StreamSlots>,
    kind: StreamKind,
    /// `None` for the producer's share.
    user: Option<String>,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.kind.clients().decrement(1);
        let mut held = self.slots.held();
        let Some(user) = self.user.take() else {
            held.producer_events = held.producer_events.saturating_sub(1);
            return;
        };
        match self.kind {
            StreamKind::Events => held.events = held.events.saturating_sub(1),
            StreamKind::Tail => held.tails = held.tails.saturating_sub(1),
        }
        let key = (self.kind, user);
        if let Some(n) = held.per_user.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                held.per_user.remove(&key);
            }
        }
    }
}

/// Whether `principal` may read `topic`'s messages live, as [`Role::may_tail`] decides;
/// 403 with the reason when not.
pub(crate) async fn check_tail(
    state: &AppState,
    principal: &Principal,
    topic: &Topic,
) -> Result<(), ApiError> {
    let subscribed = principal.role == Role::User && {
        let own = state
            .store()
            .subscriptions(&SubscriptionFilter {
                user_id: Some(principal.username.clone()),
                ..Default::default()
            })
            .await?;
        own.iter().any(|s| s.topic_name == topic.topic_name)
    };
    if principal.role.may_tail(topic.status, subscribed) {
        return Ok(());
    }
    let why = match principal.role {
        Role::Producer => "the producer does not read topics".to_owned(),
        Role::User if !subscribed => format!("'{}' is not subscribed to it", principal.username),
        Role::Admin | Role::User => format!("it is {}", topic.status),
    };
    Err(ApiError::forbidden(format!(
        "cannot tail topic '{}': {why}",
        topic.topic_name
    )))
}

/// Whether the stream of `principal` may go on: its token still names the same user with
/// the same role, and for a tail of `topic_id`, it may still read that topic.
async fn still_authorized(
    state: &AppState,
    principal: &Principal,
    topic_id: Option<i64>,
) -> Result<bool, ApiError> {
    if let Some(hash) = principal.token_hash() {
        match state.store().token_user(hash, Utc::now()).await? {
            Some(user) if user.username == principal.username && user.role == principal.role => {}
            _ => return Ok(false),
        }
    }
    if let Some(id) = topic_id {
        let topic = state.store().topic(id).await?;
        if !topic.status.is_in_kafka() || check_tail(state, principal, &topic).await.is_err() {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Completes when the stream of `principal` must end: the service stops, or its authority
/// is gone (see the module's notes). `tail` names the topic of a tail. A failed check ends
/// the stream too: the client reconnects and is checked afresh.
pub(crate) fn until_revoked(
    state: &AppState,
    principal: &Principal,
    tail: Option<i64>,
) -> impl Future<Output = ()> + Send + use<> {
    let state = state.clone();
    let principal = principal.clone();
    async move {
        let shutdown = state.inner.shutdown.clone();
        let mut tick = tokio::time::interval(RECHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is now: the request was checked a moment ago.
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match still_authorized(&state, &principal, tail).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(username = %principal.username, "stream ended: its credential or right is gone");
                    return;
                }
                Err(e) => {
                    tracing::warn!(username = %principal.username, error = ?e, "stream ended: cannot check its credential");
                    return;
                }
            }
        }
    }
}
