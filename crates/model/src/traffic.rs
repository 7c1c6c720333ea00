//! Traffic profiles: how a generated stream's rate changes over time.
//!
//! One syntax, used by `producer generate --profile` and (as a JSON string) by the API:
//!
//! - `constant:50` (or `constant:rate=50`): 50 messages/s, evenly spaced.
//! - `daily:peak=200,trough=20[,peak_at=14:00][,period=24h][,tz=Europe/Berlin]`: a raised
//!   cosine between trough and peak, highest at `peak_at` (default 14:00) and lowest 12 hours
//!   away, local time. `tz` is an IANA zone name or a UTC offset (`+02:00`, default `Z`); a
//!   named zone's offset is the one in force at the run's start. A shorter `period`
//!   compresses the day: it starts at the local time of the run's start and runs
//!   `24h / period` times faster. Evenly spaced.
//! - `ramp:from=10,to=500,over=5m`: linear from `from` to `to`, then stays at `to`. Evenly
//!   spaced.
//! - `bursts:rate=50,factor=10,every=30s,for=2s`: Poisson arrivals at `rate`, at
//!   `rate × factor` for `for` at the start of every `every`.
//! - A mix joins parts with `+` (`daily:peak=200,trough=20+bursts:rate=5,factor=20,every=1m,for=5s`):
//!   the rates add, each part keeping its own arrivals.
//!
//! Every rate, and the sum of the parts' highest rates, stays within [`RatePerSecond`]'s
//! bounds. Time `t` is seconds since the run's start.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::RatePerSecond;
use crate::duration::DurationRange;

/// Default local time of the daily cycle's peak (its trough is 12 hours away), seconds
/// after midnight.
const DAILY_PEAK_AT: u32 = 14 * 3600;
const DAY: f64 = 86_400.0;
/// Parts in one mix: a bound so that a profile stays cheap to evaluate per event.
pub const MAX_PARTS: usize = 8;
/// Longest profile text: far beyond what eight parts need, short enough to store and log.
pub const MAX_TEXT: usize = 1000;
/// Highest burst factor.
pub const MAX_BURST_FACTOR: f64 = 1000.0;

const PERIOD: DurationRange =
    DurationRange::new(Duration::from_secs(1), Duration::from_secs(30 * 86_400));
const RAMP_OVER: DurationRange =
    DurationRange::new(Duration::from_millis(1), Duration::from_secs(30 * 86_400));
const BURST_EVERY: DurationRange =
    DurationRange::new(Duration::from_millis(10), Duration::from_secs(86_400));

/// A traffic profile: one part, or a mix whose rates add. Serializes as its text form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrafficProfile {
    parts: Vec<Part>,
}

/// How a part's messages are spread over time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrivals {
    /// At the instants where the part's cumulative count reaches each whole number.
    Even,
    /// A Poisson process with the part's (time-varying) rate.
    Poisson,
}

/// One part of a profile.
#[derive(Clone, Debug, PartialEq)]
pub enum Part {
    Constant {
        rate: f64,
    },
    Daily {
        peak: f64,
        trough: f64,
        period: Duration,
        /// Local time of the peak, seconds after midnight.
        peak_at: u32,
        tz: Zone,
    },
    Ramp {
        from: f64,
        to: f64,
        over: Duration,
    },
    Bursts {
        rate: f64,
        factor: f64,
        every: Duration,
        length: Duration,
    },
}

/// The time zone of a daily cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Zone {
    /// A fixed offset, seconds east of UTC.
    Offset(i32),
    /// An IANA zone: its offset follows daylight saving time.
    Named(chrono_tz::Tz),
}

impl Zone {
    /// Seconds east of UTC at `at`.
    pub fn offset_at(self, at: DateTime<Utc>) -> i32 {
        use chrono::Offset;
        use chrono::TimeZone;
        match self {
            Zone::Offset(seconds) => seconds,
            Zone::Named(tz) => tz
                .offset_from_utc_datetime(&at.naive_utc())
                .fix()
                .local_minus_utc(),
        }
    }
}

/// Why a profile text was refused; one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid traffic profile: {0}")]
pub struct InvalidProfile(pub String);

fn invalid(msg: impl Into<String>) -> InvalidProfile {
    InvalidProfile(msg.into())
}

impl TrafficProfile {
    /// A constant rate (already within bounds).
    pub fn constant(rate: RatePerSecond) -> Self {
        TrafficProfile {
            parts: vec![Part::Constant { rate: rate.get() }],
        }
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// Messages per second at `t` seconds after `origin`, the run's start.
    pub fn rate_at(&self, origin: DateTime<Utc>, t: f64) -> f64 {
        self.parts.iter().map(|p| p.rate_at(origin, t)).sum()
    }

    /// Messages expected from the start to `t`: the integral of [`Self::rate_at`].
    pub fn cumulative(&self, origin: DateTime<Utc>, t: f64) -> f64 {
        self.parts.iter().map(|p| p.cumulative(origin, t)).sum()
    }

    fn check(parts: Vec<Part>) -> Result<Self, InvalidProfile> {
        if parts.is_empty() {
            return Err(invalid("give at least one part"));
        }
        if parts.len() > MAX_PARTS {
            return Err(invalid(format!("at most {MAX_PARTS} parts in a mix")));
        }
        let max: f64 = parts.iter().map(Part::max_rate).sum();
        if max > RatePerSecond::MAX {
            return Err(invalid(format!(
                "the parts' highest rates add up to {max}, above {}",
                RatePerSecond::MAX
            )));
        }
        Ok(TrafficProfile { parts })
    }
}

/// Seconds after local midnight at `origin` in `zone`.
fn local_time_of_day(origin: DateTime<Utc>, zone: Zone) -> f64 {
    let secs = origin.timestamp() as f64
        + f64::from(origin.timestamp_subsec_nanos()) * 1e-9
        + f64::from(zone.offset_at(origin));
    secs.rem_euclid(DAY)
}

impl Part {
    pub fn arrivals(&self) -> Arrivals {
        match self {
            Part::Bursts { .. } => Arrivals::Poisson,
            _ => Arrivals::Even,
        }
    }

    /// The part with a named zone replaced by its offset at `origin`: the same curve for a
    /// run from `origin`, without a zone lookup per evaluation.
    pub fn fixed_at(&self, origin: DateTime<Utc>) -> Part {
        match *self {
            Part::Daily {
                peak,
                trough,
                period,
                peak_at,
                tz: tz @ Zone::Named(_),
            } => Part::Daily {
                peak,
                trough,
                period,
                peak_at,
                tz: Zone::Offset(tz.offset_at(origin)),
            },
            ref other => other.clone(),
        }
    }

    /// The highest rate the part reaches.
    pub fn max_rate(&self) -> f64 {
        match *self {
            Part::Constant { rate } => rate,
            Part::Daily { peak, .. } => peak,
            Part::Ramp { from, to, .. } => from.max(to),
            Part::Bursts { rate, factor, .. } => rate * factor,
        }
    }

    /// The daily cycle's phase (radians, 0 at the peak) at `t`, and its angular speed.
    fn daily_phase(
        origin: DateTime<Utc>,
        period: Duration,
        peak_at: u32,
        tz: Zone,
        t: f64,
    ) -> (f64, f64) {
        let omega = std::f64::consts::TAU / period.as_secs_f64();
        let start =
            std::f64::consts::TAU * (local_time_of_day(origin, tz) - f64::from(peak_at)) / DAY;
        (start + omega * t, omega)
    }

    pub fn rate_at(&self, origin: DateTime<Utc>, t: f64) -> f64 {
        match *self {
            Part::Constant { rate } => rate,
            Part::Daily {
                peak,
                trough,
                period,
                peak_at,
                tz,
            } => {
                let (phase, _) = Self::daily_phase(origin, period, peak_at, tz, t);
                trough + (peak - trough) * (1.0 + phase.cos()) / 2.0
            }
            Part::Ramp { from, to, over } => {
                from + (to - from) * (t / over.as_secs_f64()).clamp(0.0, 1.0)
            }
            Part::Bursts {
                rate,
                factor,
                every,
                length,
            } => {
                if t.rem_euclid(every.as_secs_f64()) < length.as_secs_f64() {
                    rate * factor
                } else {
                    rate
                }
            }
        }
    }

    /// The integral of [`Self::rate_at`] from 0 to `t`, in closed form.
    pub fn cumulative(&self, origin: DateTime<Utc>, t: f64) -> f64 {
        match *self {
            Part::Constant { rate } => rate * t,
            Part::Daily {
                peak,
                trough,
                period,
                peak_at,
                tz,
            } => {
                let (phase, omega) = Self::daily_phase(origin, period, peak_at, tz, t);
                let start = phase - omega * t;
                (peak + trough) / 2.0 * t
                    + (peak - trough) / 2.0 * (phase.sin() - start.sin()) / omega
            }
            Part::Ramp { from, to, over } => {
                let over = over.as_secs_f64();
                if t < over {
                    from * t + (to - from) * t * t / (2.0 * over)
                } else {
                    (from + to) / 2.0 * over + to * (t - over)
                }
            }
            Part::Bursts {
                rate,
                factor,
                every,
                length,
            } => {
                let (every, length) = (every.as_secs_f64(), length.as_secs_f64());
                let cycles = (t / every).floor();
                let rest = t - cycles * every;
                let extra = (factor - 1.0) * rate;
                cycles * (rate * every + extra * length) + rate * rest + extra * rest.min(length)
            }
        }
    }

    fn parse(text: &str) -> Result<Part, InvalidProfile> {
        let (kind, params) = text.split_once(':').unwrap_or((text, ""));
        let kind = kind.trim();
        let mut fields = Fields::parse(kind, params)?;
        let part = match kind {
            "constant" => {
                let rate = match fields.positional.take() {
                    Some(v) => rate_value(kind, "rate", &v)?,
                    None => fields.rate("rate")?,
                };
                Part::Constant { rate }
            }
            "daily" => {
                let peak = fields.rate("peak")?;
                let trough = fields.rate("trough")?;
                if trough > peak {
                    return Err(invalid(format!(
                        "daily: trough={trough} is above peak={peak}"
                    )));
                }
                let period = fields
                    .duration_or("period", PERIOD)?
                    .unwrap_or(Duration::from_secs(86_400));
                let peak_at = match fields.take("peak_at") {
                    Some(v) => parse_time_of_day(&v)?,
                    None => DAILY_PEAK_AT,
                };
                let tz = match fields.take("tz") {
                    Some(v) => parse_tz(&v)?,
                    None => Zone::Offset(0),
                };
                Part::Daily {
                    peak,
                    trough,
                    period,
                    peak_at,
                    tz,
                }
            }
            "ramp" => Part::Ramp {
                from: fields.rate("from")?,
                to: fields.rate("to")?,
                over: fields.duration("over", RAMP_OVER)?,
            },
            "bursts" => {
                let rate = fields.rate("rate")?;
                let factor_text = fields.required("factor")?;
                let factor: f64 = factor_text
                    .parse()
                    .ok()
                    .filter(|f: &f64| f.is_finite() && (1.0..=MAX_BURST_FACTOR).contains(f))
                    .ok_or_else(|| {
                        invalid(format!(
                            "bursts: factor must be a number from 1 to {MAX_BURST_FACTOR}, got {factor_text:?}"
                        ))
                    })?;
                let every = fields.duration("every", BURST_EVERY)?;
                let length = fields.duration("for", BURST_EVERY)?;
                if length >= every {
                    return Err(invalid(format!(
                        "bursts: for={} must be shorter than every={}",
                        humantime::format_duration(length),
                        humantime::format_duration(every)
                    )));
                }
                if rate * factor > RatePerSecond::MAX {
                    return Err(invalid(format!(
                        "bursts: rate × factor = {} is above {}",
                        rate * factor,
                        RatePerSecond::MAX
                    )));
                }
                Part::Bursts {
                    rate,
                    factor,
                    every,
                    length,
                }
            }
            "" => {
                return Err(invalid(
                    "a part has no kind: give constant, daily, ramp or bursts",
                ));
            }
            other => {
                return Err(invalid(format!(
                    "unknown kind {other:?}: give constant, daily, ramp or bursts"
                )));
            }
        };
        fields.finish(kind)?;
        Ok(part)
    }
}

/// `key=value` pairs of one part, taken one by one so that leftovers can be refused.
struct Fields {
    positional: Option<String>,
    pairs: Vec<(String, String)>,
    kind: String,
}

impl Fields {
    fn parse(kind: &str, params: &str) -> Result<Fields, InvalidProfile> {
        let mut fields = Fields {
            positional: None,
            pairs: Vec::new(),
            kind: kind.to_owned(),
        };
        for item in params.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.split_once('=') {
                Some((k, v)) => {
                    let k = k.trim().to_owned();
                    if fields.pairs.iter().any(|(seen, _)| *seen == k) {
                        return Err(invalid(format!("{kind}: {k} is given twice")));
                    }
                    fields.pairs.push((k, v.trim().to_owned()));
                }
                None if fields.positional.is_none() && fields.pairs.is_empty() => {
                    fields.positional = Some(item.to_owned());
                }
                None => return Err(invalid(format!("{kind}: expected key=value, got {item:?}"))),
            }
        }
        Ok(fields)
    }

    fn take(&mut self, key: &str) -> Option<String> {
        let i = self.pairs.iter().position(|(k, _)| k == key)?;
        Some(self.pairs.remove(i).1)
    }

    fn required(&mut self, key: &str) -> Result<String, InvalidProfile> {
        self.take(key)
            .ok_or_else(|| invalid(format!("{}: {key}= is required", self.kind)))
    }

    fn rate(&mut self, key: &str) -> Result<f64, InvalidProfile> {
        let v = self.required(key)?;
        rate_value(&self.kind, key, &v)
    }

    fn duration(&mut self, key: &str, range: DurationRange) -> Result<Duration, InvalidProfile> {
        let v = self.required(key)?;
        range
            .parse(&v)
            .map_err(|e| invalid(format!("{}: {key}: {e}", self.kind)))
    }

    fn duration_or(
        &mut self,
        key: &str,
        range: DurationRange,
    ) -> Result<Option<Duration>, InvalidProfile> {
        self.take(key)
            .map(|v| {
                range
                    .parse(&v)
                    .map_err(|e| invalid(format!("{}: {key}: {e}", self.kind)))
            })
            .transpose()
    }

    fn finish(self, kind: &str) -> Result<(), InvalidProfile> {
        if let Some(p) = self.positional {
            return Err(invalid(format!("{kind}: expected key=value, got {p:?}")));
        }
        if let Some((k, _)) = self.pairs.first() {
            return Err(invalid(format!("{kind}: unknown parameter {k:?}")));
        }
        Ok(())
    }
}

fn rate_value(kind: &str, key: &str, v: &str) -> Result<f64, InvalidProfile> {
    v.parse::<RatePerSecond>()
        .map(RatePerSecond::get)
        .map_err(|e| invalid(format!("{kind}: {key} {e}")))
}

/// `HH:MM` (or `HH`), from 00:00 to 23:59: seconds after midnight.
fn parse_time_of_day(text: &str) -> Result<u32, InvalidProfile> {
    let bad = || {
        invalid(format!(
            "daily: peak_at must be a time of day such as 14:00, got {text:?}"
        ))
    };
    let (h, m) = text.split_once(':').unwrap_or((text, "0"));
    let digits = |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h >= 24 || m >= 60 {
        return Err(bad());
    }
    Ok(h * 3600 + m * 60)
}

/// An IANA zone name (`Europe/Berlin`), or `Z`, `UTC`, `+02:00`, `-05:30` or `+2`: an
/// offset of at most 14 hours.
fn parse_tz(text: &str) -> Result<Zone, InvalidProfile> {
    let bad = || {
        invalid(format!(
            "daily: tz must be a zone name such as Europe/Berlin or a UTC offset such as +02:00, got {text:?}"
        ))
    };
    if text.eq_ignore_ascii_case("z") || text.eq_ignore_ascii_case("utc") {
        return Ok(Zone::Offset(0));
    }
    let sign = match text.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return text.parse().map(Zone::Named).map_err(|_| bad()),
    };
    let (h, m) = text[1..].split_once(':').unwrap_or((&text[1..], "0"));
    let digits = |s: &str| !s.is_empty() && s.len() <= 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) {
        return Err(bad());
    }
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m >= 60 || h * 60 + m > 14 * 60 {
        return Err(bad());
    }
    Ok(Zone::Offset(sign * (h * 3600 + m * 60)))
}

impl FromStr for TrafficProfile {
    type Err = InvalidProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_TEXT {
            return Err(invalid(format!("longer than {MAX_TEXT} bytes")));
        }
        // Parts are joined by `+` before a kind's name; a `+` before a digit is a UTC offset.
        let bytes = s.as_bytes();
        let mut parts = Vec::new();
        let mut begin = 0;
        for i in 0..bytes.len() {
            if bytes[i] == b'+' && bytes.get(i + 1).is_some_and(u8::is_ascii_alphabetic) {
                parts.push(Part::parse(&s[begin..i])?);
                begin = i + 1;
            }
        }
        parts.push(Part::parse(&s[begin..])?);
        TrafficProfile::check(parts)
    }
}

impl TryFrom<String> for TrafficProfile {
    type Error = InvalidProfile;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<TrafficProfile> for String {
    fn from(p: TrafficProfile) -> String {
        p.to_string()
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = humantime::format_duration;
        match *self {
            Part::Constant { rate } => write!(f, "constant:{rate}"),
            Part::Daily {
                peak,
                trough,
                period,
                peak_at,
                tz,
            } => {
                write!(
                    f,
                    "daily:peak={peak},trough={trough},peak_at={:02}:{:02},period={},tz=",
                    peak_at / 3600,
                    peak_at % 3600 / 60,
                    d(period),
                )?;
                match tz {
                    Zone::Named(name) => write!(f, "{name}"),
                    Zone::Offset(seconds) => {
                        let sign = if seconds < 0 { '-' } else { '+' };
                        let abs = seconds.unsigned_abs();
                        write!(f, "{sign}{:02}:{:02}", abs / 3600, abs % 3600 / 60)
                    }
                }
            }
            Part::Ramp { from, to, over } => write!(f, "ramp:from={from},to={to},over={}", d(over)),
            Part::Bursts {
                rate,
                factor,
                every,
                length,
            } => write!(
                f,
                "bursts:rate={rate},factor={factor},every={},for={}",
                d(every),
                d(length)
            ),
        }
    }
}

impl fmt::Display for TrafficProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.parts.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            p.fmt(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(hms: &str) -> DateTime<Utc> {
        format!("2026-06-01T{hms}Z").parse().unwrap()
    }

    fn err(text: &str) -> String {
        let e = text.parse::<TrafficProfile>().unwrap_err().to_string();
        assert_eq!(e.lines().count(), 1, "{e}");
        e
    }

    #[test]
    fn parses_every_kind_and_a_mix() {
        let p: TrafficProfile = "constant:50".parse().unwrap();
        assert_eq!(p.parts(), &[Part::Constant { rate: 50.0 }]);
        assert_eq!(p, "constant:rate=50".parse().unwrap());
        let p: TrafficProfile = "daily:peak=200,trough=20,period=24h,tz=+02:00+bursts:rate=50,factor=10,every=30s,for=2s"
            .parse()
            .unwrap();
        assert_eq!(
            p.parts(),
            &[
                Part::Daily {
                    peak: 200.0,
                    trough: 20.0,
                    period: Duration::from_secs(86_400),
                    peak_at: 14 * 3600,
                    tz: Zone::Offset(7200)
                },
                Part::Bursts {
                    rate: 50.0,
                    factor: 10.0,
                    every: Duration::from_secs(30),
                    length: Duration::from_secs(2)
                }
            ]
        );
        let p: TrafficProfile = "ramp:from=10,to=500,over=5m".parse().unwrap();
        assert_eq!(
            p.parts(),
            &[Part::Ramp {
                from: 10.0,
                to: 500.0,
                over: Duration::from_secs(300)
            }]
        );
        let p: TrafficProfile = "daily:peak=5,trough=1,tz=-05:30".parse().unwrap();
        assert!(
            matches!(p.parts()[0], Part::Daily { tz: Zone::Offset(-19_800), period, .. } if period == Duration::from_secs(86_400))
        );
    }

    #[test]
    fn text_and_json_round_trip() {
        for text in [
            "constant:0.5",
            "daily:peak=200,trough=20,period=1m,tz=-05:30+bursts:rate=5,factor=20,every=1m,for=5s",
            "daily:peak=9,trough=1,peak_at=19:30,tz=America/New_York",
            "ramp:from=10,to=500,over=5m",
        ] {
            let p: TrafficProfile = text.parse().unwrap();
            assert_eq!(
                p.to_string().parse::<TrafficProfile>().unwrap(),
                p,
                "{text}"
            );
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<TrafficProfile>(&json).unwrap(), p);
        }
        let bad = serde_json::from_str::<TrafficProfile>("\"constant:0\"").unwrap_err();
        assert!(bad.to_string().contains("0.001"), "{bad}");
    }

    #[test]
    fn bad_profiles_get_one_line_reasons() {
        let cases = [
            ("", "no kind"),
            ("steady:5", "unknown kind"),
            ("constant:0", "0.001 to 100000"),
            ("constant:fast", "0.001 to 100000"),
            ("constant:rate=5,rate=6", "twice"),
            ("constant:5,burst=2", "unknown parameter"),
            ("daily:peak=20,trough=200", "above peak"),
            ("daily:peak=20", "trough= is required"),
            ("daily:peak=20,trough=2,period=0.1s", "out of range"),
            ("daily:peak=20,trough=2,tz=Europe/Atlantis", "zone name"),
            ("daily:peak=20,trough=2,peak_at=24:00", "time of day"),
            ("daily:peak=20,trough=2,peak_at=noon", "time of day"),
            ("daily:peak=20,trough=2,tz=+15:00", "UTC offset"),
            ("ramp:from=1,to=2,over=soon", "not a duration"),
            ("bursts:rate=50,factor=0.5,every=30s,for=2s", "factor"),
            ("bursts:rate=50,factor=10,every=2s,for=2s", "shorter"),
            (
                "bursts:rate=50000,factor=10,every=30s,for=2s",
                "above 100000",
            ),
            ("constant:60000+constant:60000", "add up"),
            ("constant:5+", "got \"5+\""),
        ];
        for (text, want) in cases {
            let e = err(text);
            assert!(e.contains(want), "{text}: {e}");
        }
        let nine = ["constant:1"; MAX_PARTS + 1].join("+");
        assert!(err(&nine).contains("at most"));
        let padded = format!("constant:5,{}", " ".repeat(MAX_TEXT));
        assert!(err(&padded).contains("longer than 1000"));
    }

    #[test]
    fn the_daily_cycle_peaks_at_14h_local() {
        let p: TrafficProfile = "daily:peak=200,trough=20,tz=+02:00".parse().unwrap();
        // 12:00 UTC is 14:00 at +02:00.
        assert!((p.rate_at(origin("12:00:00"), 0.0) - 200.0).abs() < 1e-9);
        assert!((p.rate_at(origin("00:00:00"), 0.0) - 20.0).abs() < 1e-9);
        assert!((p.rate_at(origin("00:00:00"), 12.0 * 3600.0) - 200.0).abs() < 1e-9);
        // Compressed to a minute: the day runs 1440 times faster from the start's local time.
        let fast: TrafficProfile = "daily:peak=200,trough=20,period=60s,tz=+02:00"
            .parse()
            .unwrap();
        assert!((fast.rate_at(origin("00:00:00"), 30.0) - 200.0).abs() < 1e-9);
        assert!((fast.rate_at(origin("00:00:00"), 60.0) - 20.0).abs() < 1e-9);
    }

    #[test]
    fn a_named_zone_follows_daylight_saving_and_the_peak_hour_moves() {
        let p: TrafficProfile = "daily:peak=100,trough=1,peak_at=09:00,tz=Europe/Berlin"
            .parse()
            .unwrap();
        // 09:00 in Berlin is 07:00 UTC in summer (CEST) and 08:00 UTC in winter (CET).
        let summer: DateTime<Utc> = "2026-07-01T07:00:00Z".parse().unwrap();
        let winter: DateTime<Utc> = "2026-01-15T08:00:00Z".parse().unwrap();
        assert!((p.rate_at(summer, 0.0) - 100.0).abs() < 1e-9);
        assert!((p.rate_at(winter, 0.0) - 100.0).abs() < 1e-9);
        assert!(p.rate_at(winter, -3600.0) < 100.0 - 1.0);
        assert!(p.to_string().contains("tz=Europe/Berlin"), "{p}");
        for origin in [summer, winter] {
            let fixed = p.parts()[0].fixed_at(origin);
            for t in [0.0, 3600.0, 40_000.0] {
                assert_eq!(fixed.rate_at(origin, t), p.rate_at(origin, t));
                assert_eq!(fixed.cumulative(origin, t), p.cumulative(origin, t));
            }
        }
    }

    /// The closed-form integrals agree with a numerical one of `rate_at`.
    #[test]
    fn cumulative_is_the_integral_of_the_rate() {
        let o = origin("07:13:21");
        for text in [
            "constant:7",
            "daily:peak=200,trough=20,period=60s,tz=+05:45",
            "daily:peak=200,trough=20,peak_at=03:15,period=60s,tz=Asia/Tokyo",
            "ramp:from=10,to=500,over=17s",
            "ramp:from=500,to=10,over=17s",
            "bursts:rate=50,factor=10,every=3s,for=0.5s",
        ] {
            let p: TrafficProfile = text.parse().unwrap();
            let steps = 400_000;
            let end = 41.3;
            let h = end / steps as f64;
            let mut sum = 0.0;
            for i in 0..steps {
                sum += p.rate_at(o, (i as f64 + 0.5) * h) * h;
            }
            let exact = p.cumulative(o, end);
            assert!(
                (sum - exact).abs() < 1e-3 * exact.max(1.0),
                "{text}: {sum} vs {exact}"
            );
            assert!(p.cumulative(o, 0.0).abs() < 1e-9, "{text}");
        }
    }
}
