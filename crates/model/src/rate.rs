use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Messages per second of one topic: what a topic request's `rate_per_second` and the
/// producer's `--rate` may ask for.
///
/// The bounds keep the interval between two messages representable and sensible: at the
/// minimum one message every 1000 s, at the maximum one every 10 µs (more than one
/// producer process publishes; `producer generate --rate 0` has no pace at all).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct RatePerSecond(f64);

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "must be a number of messages per second from {min} to {max}, got {0}",
    min = RatePerSecond::MIN,
    max = RatePerSecond::MAX
)]
pub struct InvalidRate(pub String);

impl RatePerSecond {
    /// One message every 1000 s.
    pub const MIN: f64 = 0.001;
    pub const MAX: f64 = 100_000.0;

    /// The rate, when it is a finite number within [`Self::MIN`]..=[`Self::MAX`].
    pub fn new(rate: f64) -> Result<Self, InvalidRate> {
        if rate.is_finite() && (Self::MIN..=Self::MAX).contains(&rate) {
            Ok(Self(rate))
        } else {
            Err(InvalidRate(format!("{rate:?}")))
        }
    }

    /// A rate stored before the bounds existed, brought within them; `None` when it is not
    /// a positive number (the producer's default pace applies then).
    pub fn clamped(rate: f64) -> Option<Self> {
        (rate > 0.0 && !rate.is_nan()).then(|| Self(rate.clamp(Self::MIN, Self::MAX)))
    }

    pub fn get(self) -> f64 {
        self.0
    }

    /// Time between two messages.
    pub fn interval(self) -> Duration {
        // Within the bounds, 1/rate is between 10 µs and 1000 s: always a Duration.
        Duration::try_from_secs_f64(1.0 / self.0).unwrap_or(Duration::from_secs(1000))
    }
}

impl FromStr for RatePerSecond {
    type Err = InvalidRate;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().parse::<f64>() {
            Ok(rate) => Self::new(rate),
            Err(_) => Err(InvalidRate(format!("{s:?}"))),
        }
    }
}

impl fmt::Display for RatePerSecond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_outside_the_bounds_are_refused() {
        for bad in [
            0.0,
            -1.0,
            1e-20,
            0.000_999,
            100_000.5,
            1e6,
            f64::NAN,
            f64::INFINITY,
        ] {
            assert!(RatePerSecond::new(bad).is_err(), "{bad} accepted");
        }
        for good in [RatePerSecond::MIN, 0.5, 1.0, 20.0, RatePerSecond::MAX] {
            assert_eq!(RatePerSecond::new(good).unwrap().get(), good);
        }
        assert!("1e-20".parse::<RatePerSecond>().is_err());
        assert!("fast".parse::<RatePerSecond>().is_err());
        assert_eq!("20".parse::<RatePerSecond>().unwrap().get(), 20.0);
    }

    #[test]
    fn every_accepted_rate_has_an_interval() {
        assert_eq!(
            RatePerSecond::new(RatePerSecond::MIN).unwrap().interval(),
            Duration::from_secs(1000)
        );
        assert_eq!(
            RatePerSecond::new(RatePerSecond::MAX).unwrap().interval(),
            Duration::from_micros(10)
        );
        assert_eq!(
            RatePerSecond::new(4.0).unwrap().interval(),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn stored_rates_are_brought_within_the_bounds() {
        assert_eq!(
            RatePerSecond::clamped(1e-20).map(RatePerSecond::get),
            Some(RatePerSecond::MIN)
        );
        assert_eq!(
            RatePerSecond::clamped(1e9).map(RatePerSecond::get),
            Some(RatePerSecond::MAX)
        );
        assert_eq!(RatePerSecond::clamped(0.0), None);
        assert_eq!(RatePerSecond::clamped(-3.0), None);
        assert_eq!(RatePerSecond::clamped(f64::NAN), None);
        assert_eq!(
            RatePerSecond::clamped(f64::INFINITY).map(RatePerSecond::get),
            Some(RatePerSecond::MAX)
        );
    }
}
