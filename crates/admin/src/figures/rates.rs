//! Messages per second per topic over the last 15 minutes, from the sampled totals.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::Serialize;
use streamhub_model::traffic::TrafficProfile;

use super::{SAMPLE_INTERVAL, TopicFigures, window_start};

/// Per topic, `(unix ms, messages per second)`, oldest first.
#[derive(Default)]
pub(super) struct RateHistory {
    pub(super) rates: HashMap<String, VecDeque<(i64, f64)>>,
    pub(super) last: HashMap<String, (DateTime<Utc>, i64)>,
    pub(super) note: Option<String>,
}

impl RateHistory {
    pub(super) fn record(&mut self, figures: &TopicFigures) {
        if !figures.enabled {
            self.note = figures.note.clone();
            return;
        }
        self.note = None;
        let at = figures.timestamp;
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
        let present: HashSet<&str> = figures
            .topics
            .iter()
            .map(|t| t.topic_name.as_str())
            .collect();
        let oldest = window_start(at);
        self.last.retain(|name, _| present.contains(name.as_str()));
        self.rates.retain(|name, points| {
            while points.front().is_some_and(|&(ms, _)| ms < oldest) {
                points.pop_front();
            }
            present.contains(name.as_str()) || !points.is_empty()
        });
    }

    /// The answer of `GET /api/metrics/rates`.
    pub(super) fn figures(&self) -> RateFigures {
        let mut topics: Vec<TopicRates> = self
            .rates
            .iter()
            .map(|(name, points)| TopicRates {
                topic_name: name.clone(),
                points: points.iter().copied().collect(),
                expected: None,
            })
            .collect();
        topics.sort_by(|a, b| a.topic_name.cmp(&b.topic_name));
        RateFigures {
            enabled: self.note.is_none(),
            note: self.note.clone(),
            interval_seconds: SAMPLE_INTERVAL.as_secs(),
            topics,
        }
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
    /// What the active topic's traffic profile (or fixed rate) asks for at the same
    /// instants, averaged over the same intervals as `points`; absent when it has neither.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Vec<f64>>>)]
    pub expected: Option<Vec<(i64, f64)>>,
}

impl TopicRates {
    /// Sets `expected` from the curve the producer follows since `origin`, the topic's
    /// activation. Each point's measured rate is the count between the previous sample and
    /// this one over that time, so the curve is averaged over the same interval: a burst
    /// shorter than a sample reads the same on both lines.
    pub(crate) fn expect(&mut self, profile: &TrafficProfile, origin: DateTime<Utc>) {
        let interval_ms = SAMPLE_INTERVAL.as_millis() as i64;
        let mut previous: Option<i64> = None;
        let expected = self
            .points
            .iter()
            .map(|&(ms, _)| {
                let from = previous.unwrap_or(ms - interval_ms);
                previous = Some(ms);
                let seconds = |at: i64| (at - origin.timestamp_millis()) as f64 / 1000.0;
                let (a, b) = (seconds(from).max(0.0), seconds(ms).max(0.0));
                let rate = if b > a {
                    (profile.cumulative(origin, b) - profile.cumulative(origin, a))
                        / ((ms - from) as f64 / 1000.0)
                } else {
                    0.0
                };
                (ms, rate)
            })
            .collect();
        self.expected = Some(expected);
    }
}

impl RateFigures {
    pub(crate) fn off(note: String) -> RateFigures {
        RateFigures {
            enabled: false,
            note: Some(note),
            interval_seconds: SAMPLE_INTERVAL.as_secs(),
            topics: Vec::new(),
        }
    }
}
