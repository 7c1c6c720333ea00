//! Consumer lag per subscription: the last round's, and its last 15 minutes.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use super::{Round, SAMPLE_INTERVAL, window_start};

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

impl LagFigures {
    pub(crate) fn off(note: String) -> LagFigures {
        LagFigures {
            enabled: false,
            note: Some(note),
            subscriptions: Vec::new(),
        }
    }

    /// The lag of `round`, of `user`'s subscriptions only when given.
    pub(crate) fn of(round: &Round, user: Option<&str>) -> LagFigures {
        match &round.lag {
            Err(note) => LagFigures::off(note.clone()),
            Ok(lag) => LagFigures {
                enabled: true,
                note: None,
                subscriptions: lag
                    .iter()
                    .filter(|((u, _), _)| user.is_none_or(|user| user == u))
                    .map(|((user_id, topic_name), &lag)| SubscriptionLag {
                        user_id: user_id.clone(),
                        topic_name: topic_name.clone(),
                        lag,
                    })
                    .collect(),
            },
        }
    }
}

/// Per `(user, topic)` subscription, `(unix ms, lag)`, oldest first.
#[derive(Default)]
pub(super) struct LagHistory {
    pub(super) points: BTreeMap<(String, String), VecDeque<(i64, i64)>>,
    pub(super) note: Option<String>,
}

impl LagHistory {
    /// Adds the lag of `round` and sets the `streamhub_consumer_lag` gauge of each
    /// subscription. A round seen already (a failed round's stand-in) adds nothing.
    pub(super) fn record(&mut self, round: &Round) {
        let lag = match &round.lag {
            Err(note) => {
                self.note = Some(note.clone());
                return;
            }
            Ok(lag) => lag,
        };
        self.note = None;
        let at = round.at.timestamp_millis();
        for ((user, topic), &n) in lag {
            let points = self
                .points
                .entry((user.clone(), topic.clone()))
                .or_default();
            if points.back().is_some_and(|&(ms, _)| ms >= at) {
                continue;
            }
            points.push_back((at, n));
            metrics::gauge!("streamhub_consumer_lag", "user" => user.clone(), "topic" => topic.clone())
                .set(n as f64);
        }
        let oldest = window_start(round.at);
        // Unsubscribed subscriptions keep their points until these age out.
        self.points.retain(|key, points| {
            while points.front().is_some_and(|&(ms, _)| ms < oldest) {
                points.pop_front();
            }
            lag.contains_key(key) || !points.is_empty()
        });
    }

    /// The answer of `GET /api/metrics/lag/history`, of `user`'s subscriptions only
    /// when given.
    pub(super) fn figures(&self, user: Option<&str>) -> LagHistoryFigures {
        LagHistoryFigures {
            enabled: self.note.is_none(),
            note: self.note.clone(),
            interval_seconds: SAMPLE_INTERVAL.as_secs(),
            subscriptions: self
                .points
                .iter()
                .filter(|((u, _), _)| user.is_none_or(|user| user == u))
                .map(|((user_id, topic_name), points)| SubscriptionLagHistory {
                    user_id: user_id.clone(),
                    topic_name: topic_name.clone(),
                    points: points.iter().copied().collect(),
                })
                .collect(),
        }
    }
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct LagHistoryFigures {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub interval_seconds: u64,
    /// Sorted by user, then topic.
    pub subscriptions: Vec<SubscriptionLagHistory>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionLagHistory {
    pub user_id: String,
    pub topic_name: String,
    /// `[unix ms, messages behind]`, oldest first.
    #[schema(value_type = Vec<Vec<i64>>)]
    pub points: Vec<(i64, i64)>,
}

impl LagHistoryFigures {
    pub(crate) fn off(note: String) -> LagHistoryFigures {
        LagHistoryFigures {
            enabled: false,
            note: Some(note),
            interval_seconds: SAMPLE_INTERVAL.as_secs(),
            subscriptions: Vec::new(),
        }
    }
}
