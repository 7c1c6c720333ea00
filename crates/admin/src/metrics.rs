//! Kafka figures for the dashboard's pictures, read through [`ClusterInfo`]:
//!
//! - `GET /api/metrics/topics`: message totals of the active and inactive topics. The page samples it every few seconds and turns the totals
//!   into messages per second itself.
//! - `GET /api/metrics/rates`: messages per second per topic over the last 15 minutes,
//!   sampled here every few seconds from the first time a dashboard asks for figures
//!   (or from [`start_rate_sampler`]), so a page opened now shows the recent past too.
//! - `GET /api/metrics/lag`: how far each subscription's consumer group is behind.
//! - `GET /api/topics/{id}/tail`: the newest messages of a topic as server-sent events.
//!
//! Without a cluster (no `--bootstrap-servers`) each says so plainly: `enabled: false`
//! with a `note`, and the tail sends one `status` event saying the same.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream;
use serde::Serialize;
use streamhub_model::api::ErrorBody;
use streamhub_model::{Role, TopicStatus};
use streamhub_store::{SubscriptionFilter, TopicFilter};
use tokio::sync::Mutex;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Principal;
use crate::cluster::ClusterInfo;
use crate::error::ApiError;
use crate::state::AppState;
use crate::streams::{StreamKind, check_tail, until_revoked};

/// How long one answer from Kafka is reused: a hundred open dashboards sampling every
/// few seconds then cost Kafka one watermark round per second, not a hundred.
const FIGURES_TTL: Duration = Duration::from_secs(1);
/// Bound on every call into the cluster reader.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(3);
/// Messages sent to a new tail before the live ones.
const TAIL_BACKLOG: usize = 20;
/// How often the rate history samples the totals, and how much of it is kept.
const RATE_INTERVAL: Duration = Duration::from_secs(5);
const RATE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The routes, to be nested under `/api` beside the other endpoints.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(topic_figures))
        .routes(routes!(rate_history))
        .routes(routes!(lag_figures))
        .routes(routes!(tail))
}

/// The consumer group of a user's consumer, as `streamhub consumer` names it.
pub fn consumer_group_of(user: &str) -> String {
    format!("streamhub-{user}")
}

fn off_note() -> String {
    "Kafka figures are off: start the admin service with --bootstrap-servers".into()
}

fn cluster(state: &AppState) -> Option<Arc<dyn ClusterInfo>> {
    state.inner.cluster.clone()
}

// ---------------------------------------------------------------- topic figures

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TopicFigures {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub topics: Vec<TopicTotal>,
    /// When Kafka was asked: rates are computed between two such instants.
    pub timestamp: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TopicTotal {
    pub topic_name: String,
    /// Messages held: the sum over partitions of high minus low watermark.
    pub total_messages: i64,
}

/// How long a good answer stands in for a failed Kafka round. A round that misses its
/// bound once (a busy machine, a leader moving) does not turn every open dashboard's
/// figures off; a Kafka that stays away does, once this has passed.
const FIGURES_GRACE: Duration = Duration::from_secs(10);

/// Per application state (tests run several at once): the last answer given, and the
/// last one Kafka gave.
#[derive(Default)]
struct CachedFigures {
    latest: Option<(Instant, TopicFigures)>,
    good: Option<(Instant, TopicFigures)>,
}

impl CachedFigures {
    /// Records a fresh round read at `now` and returns the answer to give: the round
    /// itself, or when it failed, the last good answer if it is younger than the grace.
    /// That answer keeps its own timestamp, so a page sees the same answer again and
    /// measures no rate from it.
    fn answer(&mut self, fresh: TopicFigures, now: Instant) -> TopicFigures {
        let answer = if fresh.enabled {
            self.good = Some((now, fresh.clone()));
            fresh
        } else {
            match &self.good {
                Some((at, good)) if now.duration_since(*at) < FIGURES_GRACE => good.clone(),
                _ => fresh,
            }
        };
        self.latest = Some((now, answer.clone()));
        answer
    }
}

static FIGURES_CACHE: LazyLock<Mutex<HashMap<usize, CachedFigures>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// `GET /api/metrics/topics`, for every signed-in principal.
#[utoipa::path(
    get,
    path = "/metrics/topics",
    tag = "metrics",
    security(("bearer" = []), ("session_cookie" = []), ("producer_key" = [])),
    responses((status = 200, description = "Message totals per topic in Kafka, or why there are none", body = TopicFigures)),
)]
async fn topic_figures(
    State(state): State<AppState>,
    _principal: Principal,
) -> Result<Json<TopicFigures>, ApiError> {
    let Some(cluster) = cluster(&state) else {
        return Ok(Json(TopicFigures {
            enabled: false,
            note: Some(off_note()),
            topics: Vec::new(),
            timestamp: Utc::now(),
        }));
    };
    start_rate_sampler(&state);
    let key = Arc::as_ptr(&state.inner) as usize;
    // Held across the Kafka round, so concurrent requests wait for one answer.
    let mut cache = FIGURES_CACHE.lock().await;
    if let Some((at, figures)) = cache.get(&key).and_then(|c| c.latest.as_ref())
        && at.elapsed() < FIGURES_TTL
    {
        return Ok(Json(figures.clone()));
    }
    let names = kafka_topic_names(&state).await?;
    let fresh = read_topic_figures(cluster.as_ref(), &names).await;
    // States of services that stopped are dropped once nobody asked for a minute.
    cache.retain(|_, c| {
        c.latest
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < FIGURES_TTL * 60)
    });
    Ok(Json(
        cache.entry(key).or_default().answer(fresh, Instant::now()),
    ))
}

/// Topics that exist in Kafka: the producer created them before activating.
async fn kafka_topic_names(state: &AppState) -> Result<Vec<String>, ApiError> {
    let mut names = Vec::new();
    for status in [TopicStatus::Active, TopicStatus::Inactive] {
        let topics = state
            .store()
            .topics(&TopicFilter {
                status: Some(status),
                ..Default::default()
            })
            .await?;
        names.extend(topics.into_iter().map(|t| t.topic_name));
    }
    Ok(names)
}

async fn read_topic_figures(cluster: &dyn ClusterInfo, names: &[String]) -> TopicFigures {
    let timestamp = Utc::now();
    let failed = |note: String| TopicFigures {
        enabled: false,
        note: Some(note),
        topics: Vec::new(),
        timestamp,
    };
    if names.is_empty() {
        return TopicFigures {
            enabled: true,
            note: None,
            topics: Vec::new(),
            timestamp,
        };
    }
    let totals =
        match tokio::time::timeout(KAFKA_TIMEOUT, cluster.topic_message_totals(names)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read topic watermarks from Kafka");
                return failed("Kafka did not answer; see the admin service log".into());
            }
            Err(_) => return failed("Kafka did not answer within 3 seconds".into()),
        };
    let mut topics: Vec<TopicTotal> = names
        .iter()
        .filter_map(|name| {
            Some(TopicTotal {
                topic_name: name.clone(),
                total_messages: *totals.get(name)?,
            })
        })
        .collect();
    topics.sort_by(|a, b| a.topic_name.cmp(&b.topic_name));
    TopicFigures {
        enabled: true,
        note: None,
        topics,
        timestamp,
    }
}

// ---------------------------------------------------------------- rate history

/// Rates of one application state: per topic, `(unix ms, messages per second)`.
#[derive(Default)]
struct RateHistory {
    rates: HashMap<String, VecDeque<(i64, f64)>>,
    last: HashMap<String, (DateTime<Utc>, i64)>,
    note: Option<String>,
}

static RATE_HISTORIES: LazyLock<std::sync::Mutex<HashMap<usize, RateHistory>>> =
    LazyLock::new(|| std::sync::Mutex::new(HashMap::new()));

fn histories() -> std::sync::MutexGuard<'static, HashMap<usize, RateHistory>> {
    // A panic while holding the lock leaves plain data behind: keep using it.
    RATE_HISTORIES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts sampling message totals into the 15-minute rate history, once per application
/// state, until the service stops. Does nothing without a cluster.
pub fn start_rate_sampler(state: &AppState) {
    if cluster(state).is_none() {
        return;
    }
    let key = Arc::as_ptr(&state.inner) as usize;
    {
        let mut all = histories();
        if all.contains_key(&key) {
            return;
        }
        all.insert(key, RateHistory::default());
    }
    let state = state.clone();
    tokio::spawn(async move {
        let shutdown = state.inner.shutdown.clone();
        let mut tick = tokio::time::interval(RATE_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            let Some(cluster) = cluster(&state) else {
                break;
            };
            let figures = match kafka_topic_names(&state).await {
                Ok(names) => read_topic_figures(cluster.as_ref(), &names).await,
                Err(e) => {
                    tracing::warn!(error = ?e, "cannot list topics for the rate history");
                    continue;
                }
            };
            if let Some(history) = histories().get_mut(&key) {
                history.record(&figures);
            }
        }
        histories().remove(&key);
    });
}

impl RateHistory {
    fn record(&mut self, figures: &TopicFigures) {
        if !figures.enabled {
            self.note = figures.note.clone();
            return;
        }
        self.note = None;
        let at = figures.timestamp;
        let oldest =
            (at - chrono::Duration::from_std(RATE_WINDOW).unwrap_or_default()).timestamp_millis();
        for t in &figures.topics {
            let previous = self
                .last
                .insert(t.topic_name.clone(), (at, t.total_messages));
            let Some((then, total)) = previous else {
                continue;
            };
            let ms = (at - then).num_milliseconds();
            if ms <= 0 {
                continue;
            }
            // A smaller total means the topic was recreated: count from zero again.
            let rate = if t.total_messages >= total {
                (t.total_messages - total) as f64 * 1000.0 / ms as f64
            } else {
                0.0
            };
            let points = self.rates.entry(t.topic_name.clone()).or_default();
            points.push_back((at.timestamp_millis(), rate));
        }
        let present: std::collections::HashSet<&str> = figures
            .topics
            .iter()
            .map(|t| t.topic_name.as_str())
            .collect();
        self.last.retain(|name, _| present.contains(name.as_str()));
        self.rates.retain(|name, points| {
            while points.front().is_some_and(|&(ms, _)| ms < oldest) {
                points.pop_front();
            }
            present.contains(name.as_str()) || !points.is_empty()
        });
    }
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct RateFigures {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub interval_seconds: u64,
    pub topics: Vec<TopicRates>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TopicRates {
    pub topic_name: String,
    /// `[unix ms, messages per second]`, oldest first.
    #[schema(value_type = Vec<Vec<f64>>)]
    pub points: Vec<(i64, f64)>,
}

/// `GET /api/metrics/rates`, for every signed-in principal.
#[utoipa::path(
    get,
    path = "/metrics/rates",
    tag = "metrics",
    security(("bearer" = []), ("session_cookie" = []), ("producer_key" = [])),
    responses((status = 200, description = "Messages per second per topic over the last 15 minutes", body = RateFigures)),
)]
async fn rate_history(
    State(state): State<AppState>,
    _principal: Principal,
) -> Result<Json<RateFigures>, ApiError> {
    if cluster(&state).is_none() {
        return Ok(Json(RateFigures {
            enabled: false,
            note: Some(off_note()),
            interval_seconds: RATE_INTERVAL.as_secs(),
            topics: Vec::new(),
        }));
    }
    start_rate_sampler(&state);
    let key = Arc::as_ptr(&state.inner) as usize;
    let all = histories();
    let history = all.get(&key);
    let mut topics: Vec<TopicRates> = history
        .map(|h| {
            h.rates
                .iter()
                .map(|(name, points)| TopicRates {
                    topic_name: name.clone(),
                    points: points.iter().copied().collect(),
                })
                .collect()
        })
        .unwrap_or_default();
    topics.sort_by(|a, b| a.topic_name.cmp(&b.topic_name));
    let note = history.and_then(|h| h.note.clone());
    Ok(Json(RateFigures {
        enabled: note.is_none(),
        note,
        interval_seconds: RATE_INTERVAL.as_secs(),
        topics,
    }))
}

// ---------------------------------------------------------------- consumer lag

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct LagFigures {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub subscriptions: Vec<SubscriptionLag>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionLag {
    pub user_id: String,
    pub topic_name: String,
    /// Messages the user's consumer group has not committed yet.
    pub lag: i64,
}

/// `GET /api/metrics/lag`: every subscription for admins, a user's own for a user.
#[utoipa::path(
    get,
    path = "/metrics/lag",
    tag = "metrics",
    security(("bearer" = []), ("session_cookie" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Consumer lag per subscription", body = LagFigures),
        (status = 403, description = "The producer", body = ErrorBody),
    ),
)]
async fn lag_figures(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<LagFigures>, ApiError> {
    principal.require(&[Role::Admin, Role::User])?;
    let Some(cluster) = cluster(&state) else {
        return Ok(Json(LagFigures {
            enabled: false,
            note: Some(off_note()),
            subscriptions: Vec::new(),
        }));
    };
    let subscriptions = state
        .store()
        .subscriptions(&SubscriptionFilter {
            user_id: (principal.role == Role::User).then(|| principal.username.clone()),
            ..Default::default()
        })
        .await?;
    let mut by_user: HashMap<String, Vec<String>> = HashMap::new();
    for s in &subscriptions {
        by_user
            .entry(s.user_id.clone())
            .or_default()
            .push(s.topic_name.clone());
    }
    let mut out = Vec::with_capacity(subscriptions.len());
    for (user, topics) in by_user {
        let group = consumer_group_of(&user);
        let lag =
            match tokio::time::timeout(KAFKA_TIMEOUT, cluster.group_lag(&group, &topics)).await {
                Ok(Ok(lag)) => lag,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, group, "cannot read consumer lag from Kafka");
                    return Ok(Json(LagFigures {
                        enabled: false,
                        note: Some("Kafka did not answer; see the admin service log".into()),
                        subscriptions: Vec::new(),
                    }));
                }
                Err(_) => {
                    return Ok(Json(LagFigures {
                        enabled: false,
                        note: Some("Kafka did not answer within 3 seconds".into()),
                        subscriptions: Vec::new(),
                    }));
                }
            };
        for topic in topics {
            if let Some(&lag) = lag.get(&topic) {
                out.push(SubscriptionLag {
                    user_id: user.clone(),
                    topic_name: topic,
                    lag,
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.user_id, &a.topic_name).cmp(&(&b.user_id, &b.topic_name)));
    Ok(Json(LagFigures {
        enabled: true,
        note: None,
        subscriptions: out,
    }))
}

// ---------------------------------------------------------------- live tail

#[derive(Serialize, utoipa::ToSchema)]
struct TailStatus {
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

fn status_event(enabled: bool, note: Option<String>) -> SseEvent {
    SseEvent::default()
        .event("status")
        .json_data(TailStatus { enabled, note })
        .unwrap_or_else(|_| SseEvent::default().event("status").data("{}"))
}

/// `GET /api/topics/{id}/tail`: server-sent events. First a `status` event
/// (`{"enabled":true}`, or `false` with a `note` when Kafka figures are off, after which
/// the stream ends), then one `message` event per message, newest last. An admin may tail
/// any topic in Kafka; a user only an active topic they subscribe to. The stream ends
/// within about a second of that no longer holding, or of its token being revoked or
/// expiring, or its user being deleted.
#[utoipa::path(
    get,
    path = "/topics/{id}/tail",
    tag = "events",
    params(("id" = i64, Path, description = "Topic id")),
    security(("bearer" = []), ("session_cookie" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Server-sent events: first `status` (a TailStatus), then one `message` per Kafka message", content_type = "text/event-stream", body = TailStatus),
        (status = 403, description = "The producer; a user not subscribed to the topic, or the topic is not active", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
        (status = 409, description = "The topic is not in Kafka (neither active nor inactive)", body = ErrorBody),
        (status = 429, description = "The caller has its share of tails open already (2 per user or admin)", body = ErrorBody),
        (status = 503, description = "All tails of the service are taken (16 in all)", body = ErrorBody),
    ),
)]
async fn tail(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    principal.require(&[Role::Admin, Role::User])?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("'{id}' is not a topic id")))?;
    let topic = state.store().topic(id).await?;
    if !matches!(topic.status, TopicStatus::Active | TopicStatus::Inactive) {
        return Err(ApiError::conflict(format!(
            "topic '{}' is {}: it has no messages in Kafka",
            topic.topic_name, topic.status
        )));
    }
    check_tail(&state, &principal, &topic).await?;
    let Some(cluster) = cluster(&state) else {
        return Ok(once_status(Some(off_note())));
    };
    let slot = state.inner.streams.acquire(StreamKind::Tail, &principal)?;
    let revoked = until_revoked(&state, &principal, Some(topic.topic_id));
    let messages =
        match tokio::time::timeout(KAFKA_TIMEOUT, cluster.tail(&topic.topic_name, TAIL_BACKLOG))
            .await
        {
            Ok(Ok(messages)) => messages,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, topic = %topic.topic_name, "cannot tail topic");
                let note = Some(format!(
                    "cannot read '{}' from Kafka: {e}",
                    topic.topic_name
                ));
                return Ok(once_status(note));
            }
            Err(_) => {
                let note = Some("Kafka did not answer within 3 seconds".to_owned());
                return Ok(once_status(note));
            }
        };
    let events = messages.map(move |item| {
        // The slot is given back when the client goes away and the stream is dropped.
        let _slot = &slot;
        Ok::<_, Infallible>(match item {
            Ok(message) => SseEvent::default()
                .event("message")
                .json_data(&message)
                .unwrap_or_else(|_| status_event(true, None)),
            Err(e) => status_event(false, Some(e)),
        })
    });
    // Also ends the stream when the service stops.
    let body = stream::once(async { Ok::<_, Infallible>(status_event(true, None)) })
        .chain(events)
        .take_until(revoked);
    Ok(Sse::new(body)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// A stream of one `status` event saying the tail is off, and why.
fn once_status(note: Option<String>) -> Response {
    let once = stream::once(async move { Ok::<_, Infallible>(status_event(false, note)) });
    Sse::new(once).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AdminConfig, AdminHandle, AdminService, Secret, TailMessage};
    use futures::stream::BoxStream;
    use serde_json::{Value, json};

    /// A cluster reader with fixed figures: the handlers' mapping is under test here,
    /// the Kafka side in the kafka crate and the browser test under `streamhub up`.
    struct FixedCluster {
        totals: HashMap<String, i64>,
        lag: HashMap<(String, String), i64>,
    }

    #[async_trait::async_trait]
    impl ClusterInfo for FixedCluster {
        async fn topic_message_totals(
            &self,
            topics: &[String],
        ) -> Result<HashMap<String, i64>, String> {
            Ok(topics
                .iter()
                .filter_map(|t| Some((t.clone(), *self.totals.get(t)?)))
                .collect())
        }

        async fn group_lag(
            &self,
            group: &str,
            topics: &[String],
        ) -> Result<HashMap<String, i64>, String> {
            Ok(topics
                .iter()
                .filter_map(|t| Some((t.clone(), *self.lag.get(&(group.to_owned(), t.clone()))?)))
                .collect())
        }

        async fn tail(
            &self,
            topic: &str,
            _backlog: usize,
        ) -> Result<BoxStream<'static, Result<TailMessage, String>>, String> {
            let message = TailMessage {
                partition: 0,
                offset: 41,
                timestamp: None,
                key: Some("sensor-1".into()),
                value: json!({"topic": topic, "payload": {"t": 21.5}}),
            };
            Ok(stream::iter([Ok(message)]).chain(stream::pending()).boxed())
        }
    }

    struct Service {
        handle: AdminHandle,
        http: reqwest::Client,
        admin: String,
        _dir: tempfile::TempDir,
    }

    const PRODUCER_KEY: &str = "producer-key-for-tests";

    async fn start(cluster: Option<Arc<dyn ClusterInfo>>) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let handle = AdminService::start(AdminConfig {
            admin_password: Some(Secret::new("Quartz-Meadow-Tidal-42")),
            producer_secret: Some(Secret::new(PRODUCER_KEY)),
            cluster,
            ..AdminConfig::local(dir.path())
        })
        .await
        .unwrap();
        let http = reqwest::Client::new();
        let admin = login(&http, handle.url(), "admin", "Quartz-Meadow-Tidal-42").await;
        Service {
            handle,
            http,
            admin,
            _dir: dir,
        }
    }

    async fn login(http: &reqwest::Client, url: &str, user: &str, password: &str) -> String {
        let res: Value = http
            .post(format!("{url}/api/auth/login"))
            .json(&json!({"username": user, "password": password}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        res["token"].as_str().unwrap().to_owned()
    }

    impl Service {
        async fn call(
            &self,
            method: &str,
            path: &str,
            token: &str,
            body: Option<Value>,
        ) -> (u16, Value) {
            let url = format!("{}{path}", self.handle.url());
            let mut req = self
                .http
                .request(method.parse().unwrap(), url)
                .bearer_auth(token);
            if let Some(body) = body {
                req = req.json(&body);
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json().await.unwrap_or(Value::Null))
        }

        /// A topic taken to active the way the producer does it; returns its id.
        async fn active_topic(&self, name: &str) -> i64 {
            let (s, created) = self
                .call(
                    "POST",
                    "/api/topics",
                    &self.admin,
                    Some(json!({"name": name})),
                )
                .await;
            assert_eq!(s, 201, "{created}");
            let id = created["topic_id"].as_i64().unwrap();
            let (s, _) = self
                .call(
                    "POST",
                    &format!("/api/topics/{id}/approve"),
                    &self.admin,
                    None,
                )
                .await;
            assert_eq!(s, 200);
            let res = self
                .http
                .post(format!("{}/api/topics/activate_by_name", self.handle.url()))
                .header("X-Producer-Key", PRODUCER_KEY)
                .json(&json!({"topic_name": name}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            id
        }

        /// The first `limit` bytes of an event stream.
        async fn sse_head(&self, path: &str, limit: usize) -> (u16, String, String) {
            let mut res = self
                .http
                .get(format!("{}{path}", self.handle.url()))
                .bearer_auth(&self.admin)
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let ty = res
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let mut body = Vec::new();
            while body.len() < limit {
                match tokio::time::timeout(Duration::from_secs(5), res.chunk()).await {
                    Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
                    _ => break,
                }
            }
            (status, ty, String::from_utf8_lossy(&body).into_owned())
        }
    }

    fn figures_at(seconds: i64, totals: &[(&str, i64)]) -> TopicFigures {
        TopicFigures {
            enabled: true,
            note: None,
            topics: totals
                .iter()
                .map(|&(name, total)| TopicTotal {
                    topic_name: name.to_owned(),
                    total_messages: total,
                })
                .collect(),
            timestamp: DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap(),
        }
    }

    #[test]
    fn a_failed_round_gives_the_last_good_answer_for_the_grace_only() {
        let start = Instant::now();
        let good = figures_at(0, &[("sensor", 100)]);
        let failed = TopicFigures {
            enabled: false,
            note: Some("Kafka did not answer within 3 seconds".into()),
            topics: Vec::new(),
            timestamp: good.timestamp + chrono::Duration::seconds(5),
        };
        let mut cache = CachedFigures::default();
        // Nothing good yet: the failure is the answer.
        assert!(!cache.answer(failed.clone(), start).enabled);
        assert!(cache.answer(good.clone(), start).enabled);
        // Within the grace: the good answer, with its own timestamp.
        let within = cache.answer(failed.clone(), start + FIGURES_GRACE / 2);
        assert!(within.enabled);
        assert_eq!(within.timestamp, good.timestamp);
        assert_eq!(within.topics[0].total_messages, 100);
        assert_eq!(cache.latest.as_ref().unwrap().1.timestamp, good.timestamp);
        // Past it: Kafka figures are off, and the note says why.
        let past = cache.answer(failed.clone(), start + FIGURES_GRACE);
        assert!(!past.enabled);
        assert_eq!(past.note, failed.note);
    }

    #[test]
    fn rate_history_turns_totals_into_rates_over_the_window() {
        let mut h = RateHistory::default();
        h.record(&figures_at(0, &[("a", 100), ("b", 7)]));
        assert!(h.rates.is_empty(), "one sample has no rate yet");
        h.record(&figures_at(5, &[("a", 150), ("b", 7)]));
        assert_eq!(h.rates["a"].back().unwrap().1, 10.0);
        assert_eq!(h.rates["b"].back().unwrap().1, 0.0);
        // Recreated topic: the total dropped, the rate is zero, not negative.
        h.record(&figures_at(10, &[("a", 20), ("b", 7)]));
        assert_eq!(h.rates["a"].back().unwrap().1, 0.0);
        // Kafka off: the note is kept and the points stay.
        h.record(&TopicFigures {
            enabled: false,
            note: Some("Kafka did not answer".into()),
            ..figures_at(15, &[])
        });
        assert_eq!(h.note.as_deref(), Some("Kafka did not answer"));
        assert_eq!(h.rates["a"].len(), 2);
        // Sixteen minutes on, the old points are gone; b left Kafka and is forgotten.
        h.record(&figures_at(970, &[("a", 30)]));
        h.record(&figures_at(975, &[("a", 40)]));
        assert_eq!(h.note, None);
        // Across the gap the rate is the average: 10 messages in 960 s.
        let rates: Vec<f64> = h.rates["a"].iter().map(|p| p.1).collect();
        assert_eq!(rates.len(), 2, "{rates:?}");
        assert!((rates[0] - 10.0 / 960.0).abs() < 1e-9, "{rates:?}");
        assert_eq!(rates[1], 2.0);
        assert!(!h.rates.contains_key("b") && !h.last.contains_key("b"));
    }

    #[tokio::test]
    async fn figures_say_plainly_when_kafka_is_off() {
        let svc = start(None).await;
        let id = svc.active_topic("sensor_off").await;
        for path in [
            "/api/metrics/topics",
            "/api/metrics/rates",
            "/api/metrics/lag",
        ] {
            let (s, body) = svc.call("GET", path, &svc.admin, None).await;
            assert_eq!(s, 200, "{path}");
            assert_eq!(body["enabled"], false, "{path}: {body}");
            assert!(
                body["note"]
                    .as_str()
                    .unwrap()
                    .contains("--bootstrap-servers"),
                "{path}: {body}"
            );
        }
        let (s, ty, text) = svc.sse_head(&format!("/api/topics/{id}/tail"), 1).await;
        assert_eq!(s, 200);
        assert!(ty.starts_with("text/event-stream"), "{ty}");
        assert!(text.contains("event: status"), "{text}");
        assert!(text.contains("\"enabled\":false"), "{text}");
        svc.handle.stop().await.unwrap();
    }

    #[tokio::test]
    async fn figures_come_from_the_cluster_and_users_see_their_own_lag() {
        let cluster = FixedCluster {
            totals: HashMap::from([("sensor_a".to_owned(), 1200), ("sensor_b".to_owned(), 5)]),
            lag: HashMap::from([
                (("streamhub-alice".to_owned(), "sensor_a".to_owned()), 17),
                (("streamhub-bob".to_owned(), "sensor_a".to_owned()), 3),
            ]),
        };
        let svc = start(Some(Arc::new(cluster))).await;
        svc.active_topic("sensor_a").await;
        svc.active_topic("sensor_b").await;
        // Pending topics are not in Kafka yet and are not asked about.
        svc.call(
            "POST",
            "/api/topics",
            &svc.admin,
            Some(json!({"name": "sensor_c"})),
        )
        .await;

        let (s, figures) = svc
            .call("GET", "/api/metrics/topics", &svc.admin, None)
            .await;
        assert_eq!(s, 200);
        assert_eq!(figures["enabled"], true, "{figures}");
        assert_eq!(
            figures["topics"],
            json!([
                {"topic_name": "sensor_a", "total_messages": 1200},
                {"topic_name": "sensor_b", "total_messages": 5},
            ])
        );
        assert!(figures["timestamp"].is_string());
        let (s, rates) = svc
            .call("GET", "/api/metrics/rates", &svc.admin, None)
            .await;
        assert_eq!(s, 200);
        assert_eq!(rates["enabled"], true, "{rates}");
        assert_eq!(rates["interval_seconds"], 5);
        assert!(rates["topics"].is_array());

        for user in ["alice", "bob"] {
            let (s, _) = svc
                .call(
                    "POST",
                    "/api/users",
                    &svc.admin,
                    Some(json!({"username": user, "password": "Lantern-Orbit-Kettle-57", "role": "user"})),
                )
                .await;
            assert_eq!(s, 201);
            let (s, _) = svc
                .call(
                    "POST",
                    "/api/subscriptions",
                    &svc.admin,
                    Some(json!({"user_id": user, "topic_name": "sensor_a"})),
                )
                .await;
            assert_eq!(s, 201);
        }
        let (_, lag) = svc.call("GET", "/api/metrics/lag", &svc.admin, None).await;
        assert_eq!(
            lag["subscriptions"],
            json!([
                {"user_id": "alice", "topic_name": "sensor_a", "lag": 17},
                {"user_id": "bob", "topic_name": "sensor_a", "lag": 3},
            ])
        );
        let alice = login(
            &svc.http,
            svc.handle.url(),
            "alice",
            "Lantern-Orbit-Kettle-57",
        )
        .await;
        let (_, own) = svc.call("GET", "/api/metrics/lag", &alice, None).await;
        assert_eq!(
            own["subscriptions"],
            json!([{"user_id": "alice", "topic_name": "sensor_a", "lag": 17}])
        );
        svc.handle.stop().await.unwrap();
    }

    #[tokio::test]
    async fn tail_streams_messages_of_topics_in_kafka_only() {
        let cluster = FixedCluster {
            totals: HashMap::new(),
            lag: HashMap::new(),
        };
        let svc = start(Some(Arc::new(cluster))).await;
        let id = svc.active_topic("sensor_tail").await;
        let (s, ty, text) = svc.sse_head(&format!("/api/topics/{id}/tail"), 120).await;
        assert_eq!(s, 200);
        assert!(ty.starts_with("text/event-stream"), "{ty}");
        assert!(
            text.contains("event: status\ndata: {\"enabled\":true}"),
            "{text}"
        );
        assert!(text.contains("event: message"), "{text}");
        assert!(text.contains("\"offset\":41"), "{text}");

        let (_, pending) = svc
            .call(
                "POST",
                "/api/topics",
                &svc.admin,
                Some(json!({"name": "sensor_pending"})),
            )
            .await;
        let pending = pending["topic_id"].as_i64().unwrap();
        let (s, body) = svc
            .call(
                "GET",
                &format!("/api/topics/{pending}/tail"),
                &svc.admin,
                None,
            )
            .await;
        assert_eq!(s, 409, "{body}");
        let (s, _) = svc
            .call("GET", "/api/topics/99999/tail", &svc.admin, None)
            .await;
        assert_eq!(s, 404);
        let (s, body) = svc
            .call("GET", "/api/topics/abc/tail", &svc.admin, None)
            .await;
        assert_eq!(s, 400, "{body}");
        assert!(body["error"].is_string());
        let (s, _) = svc
            .call("GET", "/api/metrics/topics", "not-a-token", None)
            .await;
        assert_eq!(s, 401);
        svc.handle.stop().await.unwrap();
    }
}
