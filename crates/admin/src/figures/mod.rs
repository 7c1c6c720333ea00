//! Kafka figures for the dashboard, read through [`ClusterInfo`] by one service per
//! application state ([`FiguresService`]):
//!
//! - `GET /api/metrics/topics`: message totals of the active and inactive topics.
//! - `GET /api/metrics/rates`: messages per second per topic over the last 15 minutes.
//! - `GET /api/metrics/lag`: how far each subscription's consumer group is behind.
//! - `GET /api/metrics/lag/history`: that lag over the last 15 minutes.
//! - `GET /api/topics/{id}/tail`: the newest messages of a topic as server-sent events.
//!
//! The service reads the cluster in rounds: every [`SAMPLE_INTERVAL`] for the histories,
//! and when a request finds the last round older than [`ROUND_TTL`] or asked about other
//! topics or subscriptions. A round is one [`ClusterInfo::figures`] call for every topic
//! and every consumer group, so a hundred open dashboards cost Kafka what one does.
//!
//! Without a cluster (no `--bootstrap-servers`) each endpoint says so plainly:
//! `enabled: false` with a `note`, and the tail sends one `status` event saying the same.

mod http;
mod lag;
mod rates;
mod tail;
mod totals;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use streamhub_model::consumer_group_of;
use streamhub_store::{Store, StoreError, SubscriptionFilter, TopicFilter};
use tokio_util::sync::CancellationToken;

use crate::cluster::ClusterInfo;

pub use http::routes;
pub use lag::{LagFigures, LagHistoryFigures, SubscriptionLag, SubscriptionLagHistory};
pub use rates::{RateFigures, TopicRates};
pub use totals::{TopicFigures, TopicTotal};

use lag::LagHistory;
use rates::RateHistory;

/// A round younger than this answers requests that ask about the same topics and
/// subscriptions.
const ROUND_TTL: Duration = Duration::from_secs(1);
/// How long a good round stands in for a failed one. A round that misses its bound once
/// (a busy machine, a leader moving) does not turn every open dashboard's figures off; a
/// Kafka that stays away does, once this has passed.
const ROUND_GRACE: Duration = Duration::from_secs(10);
/// Bound on every call into the cluster reader.
const KAFKA_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the histories are sampled, and how much of them is kept.
pub(crate) const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);
const HISTORY_WINDOW: Duration = Duration::from_secs(15 * 60);

fn off_note() -> String {
    "Kafka figures are off: start the admin service with --bootstrap-servers".into()
}

/// The oldest instant, in unix ms, a history keeps beside a sample taken `at`.
fn window_start(at: DateTime<Utc>) -> i64 {
    (at - chrono::Duration::from_std(HISTORY_WINDOW).unwrap_or_default()).timestamp_millis()
}

/// What a round asks the cluster about, both sorted: the topics in Kafka (active and
/// inactive: the producer created them before activating) and every `(user, topic)`
/// subscription.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Asked {
    topics: Vec<String>,
    subscriptions: Vec<(String, String)>,
}

/// One reading of the cluster.
#[derive(Clone, Debug)]
pub(crate) struct Round {
    asked: Asked,
    /// When Kafka was asked: rates are computed between two such instants.
    at: DateTime<Utc>,
    /// Message totals per topic in Kafka, or why there are none.
    totals: Result<HashMap<String, i64>, String>,
    /// Lag per `(user, topic)` subscription whose topic is in Kafka, or why there is none.
    lag: Result<BTreeMap<(String, String), i64>, String>,
}

/// The last round read, and the last one Kafka answered.
#[derive(Default)]
struct Rounds {
    latest: Option<(Instant, Round)>,
    good: Option<(Instant, Round)>,
}

impl Rounds {
    /// Records a round read at `now` and returns the answer to give: the round itself,
    /// or when Kafka failed it, the last good round if it is younger than the grace. That
    /// round keeps its own timestamp, so no rate is measured across it twice.
    fn answer(&mut self, fresh: Round, now: Instant) -> Round {
        let answer = if fresh.totals.is_ok() {
            self.good = Some((now, fresh.clone()));
            fresh
        } else {
            match &self.good {
                Some((at, good))
                    if now.duration_since(*at) < ROUND_GRACE && good.asked == fresh.asked =>
                {
                    good.clone()
                }
                _ => fresh,
            }
        };
        self.latest = Some((now, answer.clone()));
        answer
    }
}

/// The histories, sampled every [`SAMPLE_INTERVAL`].
#[derive(Default)]
struct Histories {
    rates: RateHistory,
    lag: LagHistory,
}

/// The Kafka figures of one admin service: owned by its application state, sampling
/// from the service's start until it stops. Nothing is shared between two services.
pub struct FiguresService {
    store: Arc<dyn Store>,
    cluster: Option<Arc<dyn ClusterInfo>>,
    /// Held across a round, so concurrent requests wait for one answer.
    rounds: tokio::sync::Mutex<Rounds>,
    histories: std::sync::Mutex<Histories>,
}

impl FiguresService {
    pub(crate) fn new(store: Arc<dyn Store>, cluster: Option<Arc<dyn ClusterInfo>>) -> Arc<Self> {
        Arc::new(FiguresService {
            store,
            cluster,
            rounds: Default::default(),
            histories: Default::default(),
        })
    }

    /// Samples the histories every [`SAMPLE_INTERVAL`] until `shutdown` is cancelled or
    /// the service is dropped. Does nothing without a cluster.
    pub(crate) fn start(self: &Arc<Self>, shutdown: CancellationToken) {
        if self.cluster.is_none() {
            return;
        }
        let service: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let Some(service) = service.upgrade() else {
                    break;
                };
                if let Err(e) = service.sample().await {
                    tracing::warn!(error = %e, "cannot list topics for the Kafka figures");
                }
            }
        });
    }

    pub(crate) fn enabled(&self) -> bool {
        self.cluster.is_some()
    }

    /// Reads a round and records it in the histories.
    pub(crate) async fn sample(&self) -> Result<(), StoreError> {
        let Some(round) = self.round(false).await? else {
            return Ok(());
        };
        let mut histories = self.histories();
        histories.rates.record(&TopicFigures::of(&round));
        histories.lag.record(&round);
        Ok(())
    }

    /// The current round: `None` without a cluster. A fresh enough round asking the same
    /// is reused when `reuse` is set.
    async fn round(&self, reuse: bool) -> Result<Option<Round>, StoreError> {
        let Some(cluster) = &self.cluster else {
            return Ok(None);
        };
        let asked = self.asked().await?;
        let mut rounds = self.rounds.lock().await;
        if reuse
            && let Some((read, round)) = &rounds.latest
            && read.elapsed() < ROUND_TTL
            && round.asked == asked
        {
            return Ok(Some(round.clone()));
        }
        let fresh = read_round(cluster.as_ref(), asked).await;
        Ok(Some(rounds.answer(fresh, Instant::now())))
    }

    /// The round that answers a request.
    pub(crate) async fn current(&self) -> Result<Option<Round>, StoreError> {
        self.round(true).await
    }

    async fn asked(&self) -> Result<Asked, StoreError> {
        let mut topics: Vec<String> = self
            .store
            .topics(&TopicFilter::default())
            .await?
            .into_iter()
            .filter(|t| t.status.is_in_kafka())
            .map(|t| t.topic_name)
            .collect();
        topics.sort();
        let mut subscriptions: Vec<(String, String)> = self
            .store
            .subscriptions(&SubscriptionFilter::default())
            .await?
            .into_iter()
            .map(|s| (s.user_id, s.topic_name))
            .collect();
        subscriptions.sort();
        subscriptions.dedup();
        Ok(Asked {
            topics,
            subscriptions,
        })
    }

    fn histories(&self) -> std::sync::MutexGuard<'_, Histories> {
        // A panic while holding the lock leaves plain data behind: keep using it.
        self.histories
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Asks the cluster about everything in `asked` at once, within [`KAFKA_TIMEOUT`].
async fn read_round(cluster: &dyn ClusterInfo, asked: Asked) -> Round {
    let at = Utc::now();
    if asked.topics.is_empty() && asked.subscriptions.is_empty() {
        return Round {
            asked,
            at,
            totals: Ok(HashMap::new()),
            lag: Ok(BTreeMap::new()),
        };
    }
    let mut by_user: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (user, topic) in &asked.subscriptions {
        by_user.entry(user).or_default().push(topic.clone());
    }
    let groups: Vec<(String, Vec<String>)> = by_user
        .iter()
        .map(|(user, topics)| (consumer_group_of(user), topics.clone()))
        .collect();
    let failed = |note: String| (Err(note.clone()), Err(note));
    let (totals, lag) =
        match tokio::time::timeout(KAFKA_TIMEOUT, cluster.figures(&asked.topics, &groups)).await {
            Ok(Ok(figures)) => {
                let lag = figures
                    .lag
                    .map(|per_group| {
                        let mut lag = BTreeMap::new();
                        for (user, topics) in &by_user {
                            let Some(of_group) = per_group.get(&consumer_group_of(user)) else {
                                continue;
                            };
                            for topic in topics {
                                if let Some(&n) = of_group.get(topic) {
                                    lag.insert(((*user).to_owned(), topic.clone()), n);
                                }
                            }
                        }
                        lag
                    })
                    .map_err(|e| {
                        tracing::warn!(error = %e, "cannot read consumer lag from Kafka");
                        "Kafka did not give consumer lag; see the admin service log".to_owned()
                    });
                (Ok(figures.totals), lag)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read figures from Kafka");
                failed("Kafka did not answer; see the admin service log".into())
            }
            Err(_) => failed(format!(
                "Kafka did not answer within {} seconds",
                KAFKA_TIMEOUT.as_secs()
            )),
        };
    Round {
        asked,
        at,
        totals,
        lag,
    }
}

#[cfg(test)]
mod tests;
