//! How a producer generated a topic's values: recorded in the audit log when the producer
//! activates the topic, so that `streamhub producer generate --replay` can regenerate the
//! same keys and payloads in the same order.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::DataType;
use crate::faults::FaultRates;
use crate::traffic::TrafficProfile;

/// The longest producer id a record keeps.
pub const MAX_PRODUCER_ID: usize = 200;

/// A topic's generation parameters.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generation {
    /// The generators' version: the same version, data type and seed give the same values.
    pub generator: u32,
    pub data_type: DataType,
    /// The seed of the topic's generator (the producer's `--seed` already mixed with the
    /// topic's name, or a random one).
    pub seed: u64,
    /// The envelopes' `producer_id`.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub producer_id: String,
    /// The `seq` of the first event.
    pub first_seq: u64,
    /// When the producer activated the topic.
    pub started_at: DateTime<Utc>,
    /// Messages per second when the topic had a rate; `None`: the seed's random pace.
    #[serde(default)]
    pub rate: Option<f64>,
    /// The rate curve followed instead of `rate`, when the topic had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub profile: Option<TrafficProfile>,
    /// The faults put in on purpose, when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "duplicate=0.01"))]
    pub faults: Option<FaultRates>,
}

impl Generation {
    /// Checks what serde cannot: a producer id of sensible length, a finite rate.
    pub fn validate(&self) -> Result<(), String> {
        if self.producer_id.is_empty() || self.producer_id.len() > MAX_PRODUCER_ID {
            return Err(format!(
                "generation.producer_id must have 1 to {MAX_PRODUCER_ID} bytes"
            ));
        }
        if self.rate.is_some() && self.profile.is_some() {
            return Err("generation: give rate or profile, not both".into());
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err("generation.rate must be a positive number".into());
        }
        Ok(())
    }

    /// The audit log's detail text of an activation.
    pub fn to_detail(&self) -> String {
        // A struct of plain fields always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads an activation's audit detail; `None` when it holds no generation record.
    pub fn from_detail(detail: &str) -> Option<Generation> {
        serde_json::from_str(detail).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Generation {
        Generation {
            generator: 1,
            data_type: DataType::Payment,
            seed: u64::MAX - 3,
            producer_id: "host-1-ab12".into(),
            first_seq: 40,
            started_at: "2026-12-06T10:00:00.123Z".parse().unwrap(),
            rate: None,
            profile: Some("daily:peak=20,trough=2,tz=Europe/Berlin".parse().unwrap()),
            faults: Some("late=0.1,duplicate=0.01".parse().unwrap()),
        }
    }

    #[test]
    fn survives_the_audit_detail_with_every_bit_of_the_seed() {
        let g = sample();
        assert_eq!(Generation::from_detail(&g.to_detail()), Some(g.clone()));
        assert_eq!(Generation::from_detail("a rejection's reason"), None);
        // A record written before profiles and faults were recorded still reads.
        let mut old = g.clone();
        (old.profile, old.faults) = (None, None);
        let text = old.to_detail();
        assert!(
            !text.contains("profile") && !text.contains("faults"),
            "{text}"
        );
        assert_eq!(Generation::from_detail(&text), Some(old));
    }

    #[test]
    fn refuses_empty_or_long_ids_and_odd_rates() {
        assert!(sample().validate().is_ok());
        let mut g = sample();
        g.producer_id.clear();
        assert!(g.validate().unwrap_err().contains("producer_id"));
        g.producer_id = "x".repeat(MAX_PRODUCER_ID + 1);
        assert!(g.validate().is_err());
        let mut g = sample();
        g.profile = None;
        g.rate = Some(f64::NAN);
        assert!(g.validate().unwrap_err().contains("rate"));
        g.rate = Some(0.0);
        assert!(g.validate().is_err());
    }
}
