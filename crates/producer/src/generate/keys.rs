//! Which entity (and so which Kafka key) the next event belongs to: `--keys`.
//!
//! Every generator picks its entity through [`KeyChooser::choose`] among its `n` entities;
//! uniform picks as the generators always did (the same random draw, so existing seeds give
//! the same events), Zipf makes a few entities hot (partition skew), sessions keep one
//! entity for a run of consecutive events (a user's visit, in order on one key).

use std::fmt;
use std::str::FromStr;

use rand::Rng;

use super::GenRng;

/// Highest Zipf exponent and session length accepted.
pub const MAX_ZIPF_S: f64 = 10.0;
pub const MAX_SESSION_LENGTH: u32 = 1_000_000;

/// `--keys`: how events are spread over a generator's entities.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum KeyDistribution {
    #[default]
    Uniform,
    /// Entity k (from 0) is picked with weight 1 / (k + 1)^s.
    Zipf { s: f64 },
    /// `length` consecutive events of one uniformly picked entity, then the next entity.
    Sessions { length: u32 },
}

impl FromStr for KeyDistribution {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (kind, params) = s.trim().split_once(':').unwrap_or((s.trim(), ""));
        let param = |key: &str, default: &str| -> Result<String, String> {
            match params.split_once('=') {
                None if params.is_empty() => Ok(default.to_owned()),
                Some((k, v)) if k.trim() == key => Ok(v.trim().to_owned()),
                _ => Err(format!("{kind} takes only {key}=, got {params:?}")),
            }
        };
        match kind {
            "uniform" if params.is_empty() => Ok(KeyDistribution::Uniform),
            "zipf" => {
                let v = param("s", "1.2")?;
                v.parse::<f64>()
                    .ok()
                    .filter(|s| *s > 0.0 && *s <= MAX_ZIPF_S)
                    .map(|s| KeyDistribution::Zipf { s })
                    .ok_or_else(|| {
                        format!("zipf: s must be above 0 and at most {MAX_ZIPF_S}, got {v:?}")
                    })
            }
            "sessions" => {
                let v = param("length", "20")?;
                v.parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_SESSION_LENGTH).contains(n))
                    .map(|length| KeyDistribution::Sessions { length })
                    .ok_or_else(|| {
                        format!("sessions: length must be 1 to {MAX_SESSION_LENGTH}, got {v:?}")
                    })
            }
            _ => Err(format!(
                "unknown key distribution {s:?}: give uniform, zipf[:s=1.2] or sessions[:length=20]"
            )),
        }
    }
}

impl fmt::Display for KeyDistribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyDistribution::Uniform => f.write_str("uniform"),
            KeyDistribution::Zipf { s } => write!(f, "zipf:s={s}"),
            KeyDistribution::Sessions { length } => write!(f, "sessions:length={length}"),
        }
    }
}

/// A [`KeyDistribution`] with its state: the Zipf table, the open session, the last pick.
#[derive(Debug, Default)]
pub struct KeyChooser {
    distribution: KeyDistribution,
    /// Cumulative Zipf weights for `zipf_n` entities, normalized to end at 1.
    zipf_cdf: Vec<f64>,
    session_left: u32,
    last: usize,
    /// The next pick repeats the last one (an out-of-order pair needs two events of one key).
    repeat: bool,
}

impl KeyChooser {
    pub fn new(distribution: KeyDistribution) -> Self {
        KeyChooser {
            distribution,
            ..KeyChooser::default()
        }
    }

    /// The index of the next event's entity among `n` (n ≥ 1).
    pub fn choose(&mut self, rng: &mut GenRng, n: usize) -> usize {
        if std::mem::take(&mut self.repeat) && self.last < n {
            return self.last;
        }
        let i = match self.distribution {
            KeyDistribution::Uniform => rng.gen_range(0..n),
            KeyDistribution::Zipf { s } => {
                if self.zipf_cdf.len() != n {
                    self.zipf_cdf = zipf_cdf(s, n);
                }
                let u: f64 = rng.r#gen();
                self.zipf_cdf.partition_point(|&c| c <= u).min(n - 1)
            }
            KeyDistribution::Sessions { length } => {
                if self.session_left == 0 || self.last >= n {
                    self.last = rng.gen_range(0..n);
                    self.session_left = length;
                }
                self.session_left -= 1;
                self.last
            }
        };
        self.last = i;
        i
    }

    /// Makes the next [`Self::choose`] return the same entity as the last one.
    pub fn repeat_next(&mut self) {
        self.repeat = true;
    }
}

fn zipf_cdf(s: f64, n: usize) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = (1..=n)
        .map(|k| {
            acc += (k as f64).powf(-s);
            acc
        })
        .collect();
    for c in &mut cdf {
        *c /= acc;
    }
    cdf
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert_eq!("uniform".parse(), Ok(KeyDistribution::Uniform));
        assert_eq!("zipf".parse(), Ok(KeyDistribution::Zipf { s: 1.2 }));
        assert_eq!("zipf:s=2".parse(), Ok(KeyDistribution::Zipf { s: 2.0 }));
        assert_eq!(
            "sessions:length=5".parse(),
            Ok(KeyDistribution::Sessions { length: 5 })
        );
        for bad in [
            "",
            "hot",
            "zipf:s=0",
            "zipf:s=x",
            "zipf:q=1",
            "sessions:length=0",
            "uniform:s=1",
        ] {
            let e = bad.parse::<KeyDistribution>().unwrap_err();
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        for d in ["uniform", "zipf:s=1.5", "sessions:length=7"] {
            assert_eq!(d.parse::<KeyDistribution>().unwrap().to_string(), d);
        }
    }

    #[test]
    fn zipf_makes_the_first_entities_hot() {
        let mut rng = GenRng::seed_from_u64(1);
        let mut keys = KeyChooser::new(KeyDistribution::Zipf { s: 1.2 });
        let n = 100;
        let mut hits = vec![0u32; n];
        for _ in 0..100_000 {
            hits[keys.choose(&mut rng, n)] += 1;
        }
        let h = |k: f64| k.powf(-1.2);
        let total: f64 = (1..=n).map(|k| h(k as f64)).sum();
        for k in [0, 1, 9] {
            let want = 100_000.0 * h(k as f64 + 1.0) / total;
            let got = f64::from(hits[k]);
            assert!(
                (got - want).abs() < 0.05 * want,
                "entity {k}: {got} vs {want}"
            );
        }
        assert!(hits[0] > 20 * hits[n - 1], "{} vs {}", hits[0], hits[n - 1]);
    }

    #[test]
    fn sessions_keep_one_entity_for_their_length() {
        let mut rng = GenRng::seed_from_u64(2);
        let mut keys = KeyChooser::new(KeyDistribution::Sessions { length: 20 });
        let picks: Vec<usize> = (0..2_000).map(|_| keys.choose(&mut rng, 50)).collect();
        for chunk in picks.chunks(20) {
            assert!(chunk.iter().all(|&k| k == chunk[0]), "{chunk:?}");
        }
        let distinct: std::collections::HashSet<_> = picks.iter().collect();
        assert!(distinct.len() > 30, "{}", distinct.len());
    }

    #[test]
    fn uniform_draws_as_the_generators_did_and_repeat_repeats() {
        let (mut a, mut b) = (GenRng::seed_from_u64(3), GenRng::seed_from_u64(3));
        let mut keys = KeyChooser::new(KeyDistribution::Uniform);
        for _ in 0..100 {
            assert_eq!(keys.choose(&mut a, 24), b.gen_range(0..24));
        }
        let last = keys.choose(&mut a, 24);
        keys.repeat_next();
        assert_eq!(keys.choose(&mut a, 24), last);
    }

    #[test]
    fn generators_follow_the_distribution_and_stay_deterministic() {
        use crate::generate::Generator;
        use streamhub_model::DataType;

        let keys_of = |data_type, keys: &str, n| -> Vec<String> {
            Generator::new(data_type, 5)
                .with_keys(keys.parse().unwrap())
                .take(n)
                .map(|r| r.key.to_string())
                .collect()
        };
        for data_type in DataType::ALL {
            let zipf = keys_of(data_type, "zipf:s=2", 5_000);
            assert_eq!(zipf, keys_of(data_type, "zipf:s=2", 5_000), "{data_type}");
            let mut counts = std::collections::HashMap::<&str, u32>::new();
            for k in &zipf {
                *counts.entry(k).or_default() += 1;
            }
            // With s = 2 the hottest entity has 1/ζ(2) ≈ 61% of the events, or more with few.
            let hottest = counts.values().max().copied().unwrap_or(0);
            assert!(hottest > 2_900, "{data_type}: {hottest} of 5000");

            let sessions = keys_of(data_type, "sessions:length=10", 1_000);
            for run in sessions.chunks(10) {
                assert!(run.iter().all(|k| *k == run[0]), "{data_type}: {run:?}");
            }
        }
        assert_eq!(
            keys_of(DataType::Sensor, "uniform", 100),
            Generator::new(DataType::Sensor, 5)
                .take(100)
                .map(|r| r.key.to_string())
                .collect::<Vec<_>>()
        );
    }
}
