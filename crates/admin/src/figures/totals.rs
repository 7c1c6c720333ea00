//! Message totals per topic, as the last round read them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::Round;

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

impl TopicFigures {
    pub(crate) fn off(note: String) -> TopicFigures {
        TopicFigures {
            enabled: false,
            note: Some(note),
            topics: Vec::new(),
            timestamp: Utc::now(),
        }
    }

    /// The totals of `round`, by topic name; topics Kafka does not have are left out.
    pub(crate) fn of(round: &Round) -> TopicFigures {
        match &round.totals {
            Err(note) => TopicFigures {
                timestamp: round.at,
                ..TopicFigures::off(note.clone())
            },
            Ok(totals) => TopicFigures {
                enabled: true,
                note: None,
                // `asked.topics` is sorted.
                topics: round
                    .asked
                    .topics
                    .iter()
                    .filter_map(|name| {
                        Some(TopicTotal {
                            topic_name: name.clone(),
                            total_messages: *totals.get(name)?,
                        })
                    })
                    .collect(),
                timestamp: round.at,
            },
        }
    }
}
