//! Where `consumer read` starts in each partition: `--from`.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

/// The forms `--from` accepts, as kcat users expect them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartFrom {
    /// The first message still kept in each partition.
    Beginning,
    /// Only messages produced after the start.
    End,
    /// The group's committed offsets; the beginning where the group has none.
    Stored,
    /// This absolute offset in every partition, clamped into what the partition keeps.
    Offset(i64),
    /// This many messages before the end of each partition (`--from -10`).
    Tail(i64),
    /// The first message whose timestamp is at or after this time.
    Time(DateTime<Utc>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid start '{0}': expected beginning, end, stored, an offset (42, or -10 for the last ten), or an RFC 3339 time (2026-11-28T18:00:00Z)"
)]
pub struct InvalidStart(String);

impl FromStr for StartFrom {
    type Err = InvalidStart;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        match t.to_ascii_lowercase().as_str() {
            "beginning" | "earliest" | "start" => return Ok(StartFrom::Beginning),
            "end" | "latest" => return Ok(StartFrom::End),
            "stored" | "committed" => return Ok(StartFrom::Stored),
            _ => {}
        }
        if let Ok(n) = t.parse::<i64>() {
            return Ok(if n < 0 {
                StartFrom::Tail(n.checked_neg().unwrap_or(i64::MAX))
            } else {
                StartFrom::Offset(n)
            });
        }
        DateTime::parse_from_rfc3339(t)
            .map(|d| StartFrom::Time(d.with_timezone(&Utc)))
            .map_err(|_| InvalidStart(s.to_owned()))
    }
}

impl fmt::Display for StartFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartFrom::Beginning => f.write_str("beginning"),
            StartFrom::End => f.write_str("end"),
            StartFrom::Stored => f.write_str("stored"),
            StartFrom::Offset(n) => write!(f, "{n}"),
            StartFrom::Tail(n) => write!(f, "-{n}"),
            StartFrom::Time(t) => write!(f, "{}", t.to_rfc3339()),
        }
    }
}

/// The offset to start a partition at, given its watermarks (`low` = first kept offset,
/// `high` = next offset to be written).
pub(crate) fn clamp_offset(wanted: i64, low: i64, high: i64) -> i64 {
    wanted.clamp(low, high.max(low))
}

/// The offset `n` messages before the end of a partition, never before its first message.
pub(crate) fn tail_offset(n: i64, low: i64, high: i64) -> i64 {
    high.saturating_sub(n).max(low)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!("beginning".parse(), Ok(StartFrom::Beginning));
        assert_eq!("EARLIEST".parse(), Ok(StartFrom::Beginning));
        assert_eq!("end".parse(), Ok(StartFrom::End));
        assert_eq!("stored".parse(), Ok(StartFrom::Stored));
        assert_eq!("42".parse(), Ok(StartFrom::Offset(42)));
        assert_eq!("0".parse(), Ok(StartFrom::Offset(0)));
        assert_eq!("-10".parse(), Ok(StartFrom::Tail(10)));
        let t: StartFrom = "2026-11-28T18:00:00+01:00".parse().unwrap();
        assert_eq!(
            t,
            StartFrom::Time("2026-11-28T17:00:00Z".parse::<DateTime<Utc>>().unwrap())
        );
    }

    #[test]
    fn refuses_nonsense_with_the_accepted_forms() {
        let err = "yesterday".parse::<StartFrom>().unwrap_err().to_string();
        assert!(err.contains("beginning, end, stored"), "{err}");
        assert!("2026-13-01T00:00:00Z".parse::<StartFrom>().is_err());
        assert!("".parse::<StartFrom>().is_err());
    }

    #[test]
    fn offsets_stay_inside_the_partition() {
        assert_eq!(clamp_offset(5, 0, 10), 5);
        assert_eq!(clamp_offset(50, 0, 10), 10);
        assert_eq!(clamp_offset(1, 3, 10), 3);
        assert_eq!(tail_offset(3, 0, 10), 7);
        assert_eq!(tail_offset(30, 2, 10), 2);
        assert_eq!(tail_offset(i64::MAX, 0, 10), 0);
    }
}
