//! Faults on purpose: the rate of each kind a generated stream carries (`--faults`, and
//! the generation record of a topic). What each fault does is the producer's.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::duration::DurationRange;

const LATE_BY: DurationRange =
    DurationRange::new(Duration::from_millis(1), Duration::from_secs(7 * 86_400));

/// `--faults`: the rate of each fault (0 to 1 each, at most 1 together).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FaultRates {
    pub late: f64,
    pub out_of_order: f64,
    pub duplicate: f64,
    pub poison: f64,
    /// Mean delay of a late event.
    pub late_by: Duration,
}

impl Default for FaultRates {
    fn default() -> Self {
        FaultRates {
            late: 0.0,
            out_of_order: 0.0,
            duplicate: 0.0,
            poison: 0.0,
            late_by: Duration::from_secs(30),
        }
    }
}

impl FaultRates {
    pub fn is_off(&self) -> bool {
        self.late + self.out_of_order + self.duplicate + self.poison == 0.0
    }
}

impl FromStr for FaultRates {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut rates = FaultRates::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let Some((key, value)) = item.split_once('=') else {
                return Err(format!("expected fault=rate, got {item:?}"));
            };
            let (key, value) = (key.trim(), value.trim());
            let slot = match key {
                "late" => &mut rates.late,
                "out-of-order" => &mut rates.out_of_order,
                "duplicate" => &mut rates.duplicate,
                "poison" => &mut rates.poison,
                "late-by" => {
                    rates.late_by = LATE_BY.parse(value).map_err(|e| format!("late-by: {e}"))?;
                    continue;
                }
                _ => {
                    return Err(format!(
                        "unknown fault {key:?}: give late, out-of-order, duplicate, poison (rates) or late-by (a duration)"
                    ));
                }
            };
            *slot = value
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .ok_or_else(|| {
                    format!("{key}: the rate must be a number from 0 to 1, got {value:?}")
                })?;
        }
        let total = rates.late + rates.out_of_order + rates.duplicate + rates.poison;
        if total > 1.0 {
            return Err(format!("the fault rates add up to {total}, above 1"));
        }
        Ok(rates)
    }
}

impl fmt::Display for FaultRates {
    /// The text [`FromStr`] reads: the non-zero rates, and `late-by` when `late` is on.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        for (name, rate) in [
            ("late", self.late),
            ("out-of-order", self.out_of_order),
            ("duplicate", self.duplicate),
            ("poison", self.poison),
        ] {
            if rate > 0.0 {
                write!(f, "{sep}{name}={rate}")?;
                sep = ",";
            }
        }
        if self.late > 0.0 {
            write!(f, ",late-by={}", humantime::format_duration(self.late_by))?;
        }
        Ok(())
    }
}

impl TryFrom<String> for FaultRates {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<FaultRates> for String {
    fn from(r: FaultRates) -> String {
        r.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates_and_refuses_bad_ones() {
        let r: FaultRates = "late=0.01,out-of-order=0.01,duplicate=0.005,poison=0.001"
            .parse()
            .unwrap();
        assert_eq!(
            (r.late, r.out_of_order, r.duplicate, r.poison),
            (0.01, 0.01, 0.005, 0.001)
        );
        assert_eq!(r.late_by, Duration::from_secs(30));
        assert!(!r.is_off());
        assert!("".parse::<FaultRates>().unwrap().is_off());
        let r: FaultRates = "late=1,late-by=2m".parse().unwrap();
        assert_eq!(r.late_by, Duration::from_secs(120));
        for (bad, want) in [
            ("late=2", "0 to 1"),
            ("late=-0.1", "0 to 1"),
            ("late=NaN", "0 to 1"),
            ("slow=0.1", "unknown fault"),
            ("late", "fault=rate"),
            ("late=0.6,poison=0.6", "above 1"),
            ("late-by=0s", "out of range"),
        ] {
            let e = bad.parse::<FaultRates>().unwrap_err();
            assert!(e.contains(want) && e.lines().count() == 1, "{bad}: {e}");
        }
    }

    #[test]
    fn text_and_json_round_trip() {
        for text in ["", "poison=0.001", "late=0.25,duplicate=0.5,late-by=2m 30s"] {
            let r: FaultRates = text.parse().unwrap();
            assert_eq!(r.to_string(), text);
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(serde_json::from_str::<FaultRates>(&json).unwrap(), r);
        }
        assert!(serde_json::from_str::<FaultRates>("\"late=2\"").is_err());
    }
}
