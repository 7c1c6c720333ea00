//! Send instants of a traffic profile: seconds after the run's start, in order.
//!
//! Evenly spaced parts (constant, daily, ramp) are taken together: the n-th instant is where
//! their cumulative count reaches n, found by Newton's method on the closed-form integral, so
//! any interval holds the curve's integral to within one message and nothing drifts over a
//! long run. Poisson parts (bursts) are each drawn by thinning: candidates at the part's
//! highest rate, each kept with probability rate(t) / highest. The streams are merged.
//! [`Schedule::seed_pace`] is the seed's pace (one message every 0.5–1.5 s, at random) as a
//! schedule. Deterministic: the same profile, origin and seed give the same instants, so a
//! replay can stamp its events with the original's times.

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use streamhub_model::RatePerSecond;
use streamhub_model::generation::Generation;
use streamhub_model::traffic::{Arrivals, Part, TrafficProfile};

/// How fast a topic publishes: what its generation record says, and what a replay follows.
#[derive(Clone, Debug, PartialEq)]
pub enum Pace {
    PerSecond(RatePerSecond),
    Profile(TrafficProfile),
    /// The seed's producer: one message every 0.5–1.5 s, at random.
    SeedDefault,
}

impl Pace {
    /// The send instants from `origin`.
    pub fn schedule(&self, origin: DateTime<Utc>, seed: u64) -> Schedule {
        match self {
            Pace::PerSecond(rate) => Schedule::new(&TrafficProfile::constant(*rate), origin, seed),
            Pace::Profile(profile) => Schedule::new(profile, origin, seed),
            Pace::SeedDefault => Schedule::seed_pace(origin, seed),
        }
    }

    /// The pace a generation record names (a rate recorded before its bounds is clamped).
    pub fn of(generation: &Generation) -> Pace {
        match (
            &generation.profile,
            generation.rate.and_then(RatePerSecond::clamped),
        ) {
            (Some(profile), _) => Pace::Profile(profile.clone()),
            (None, Some(rate)) => Pace::PerSecond(rate),
            (None, None) => Pace::SeedDefault,
        }
    }

    /// The record's `rate` and `profile`.
    pub fn recorded(&self) -> (Option<f64>, Option<TrafficProfile>) {
        match self {
            Pace::PerSecond(rate) => (Some(rate.get()), None),
            Pace::Profile(profile) => (None, Some(profile.clone())),
            Pace::SeedDefault => (None, None),
        }
    }
}

/// A profile turned into send instants.
pub struct Schedule {
    origin: DateTime<Utc>,
    even: Option<Even>,
    poisson: Vec<Thinning>,
    /// The seed's pace: the generator of the gaps, and the next instant.
    seed_pace: Option<(ChaCha8Rng, f64)>,
}

/// The seed's pace: a gap drawn uniformly in this range, in seconds.
const SEED_PACE_GAP: std::ops::Range<f64> = 0.5..1.5;

struct Even {
    parts: Vec<Part>,
    /// The lowest sum of the parts' rates: bounds how far the next instant can be.
    min_rate: f64,
    /// The next instant and its index (the cumulative count it reaches).
    next: f64,
    n: u64,
}

struct Thinning {
    part: Part,
    max_rate: f64,
    rng: ChaCha8Rng,
    next: f64,
}

impl Schedule {
    /// `origin` is the run's start on the wall clock (the daily cycle's local time follows it).
    pub fn new(profile: &TrafficProfile, origin: DateTime<Utc>, seed: u64) -> Schedule {
        let (even, poisson): (Vec<Part>, Vec<Part>) = profile
            .parts()
            .iter()
            .map(|p| p.fixed_at(origin))
            .partition(|p| p.arrivals() == Arrivals::Even);
        let even = (!even.is_empty()).then(|| Even {
            min_rate: even.iter().map(min_rate).sum(),
            parts: even,
            next: 0.0,
            n: 0,
        });
        let poisson = poisson
            .into_iter()
            .enumerate()
            .map(|(i, part)| {
                let mut t = Thinning {
                    max_rate: part.max_rate(),
                    part,
                    // One stream per part, apart from the generators' (which use the seed as is).
                    rng: ChaCha8Rng::seed_from_u64(
                        seed ^ 0x5EED_7A1F_u64.wrapping_mul(i as u64 + 1),
                    ),
                    next: 0.0,
                };
                t.next = t.after(origin, 0.0);
                t
            })
            .collect();
        Schedule {
            origin,
            even,
            poisson,
            seed_pace: None,
        }
    }

    /// The seed's producer's pace: one message every 0.5–1.5 s at random, the first at once.
    pub fn seed_pace(origin: DateTime<Utc>, seed: u64) -> Schedule {
        Schedule {
            origin,
            even: None,
            poisson: Vec::new(),
            seed_pace: Some((ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_9ACE), 0.0)),
        }
    }

    /// The wall-clock instant that instants are counted from.
    pub fn origin(&self) -> DateTime<Utc> {
        self.origin
    }

    /// The next send instant, seconds after the origin.
    pub fn next_instant(&mut self) -> f64 {
        if let Some((rng, next)) = self.seed_pace.as_mut() {
            let t = *next;
            *next += rng.gen_range(SEED_PACE_GAP);
            return t;
        }
        let mut best: Option<(f64, usize)> = self.even.as_ref().map(|e| (e.next, usize::MAX));
        for (i, p) in self.poisson.iter().enumerate() {
            if best.is_none_or(|(t, _)| p.next < t) {
                best = Some((p.next, i));
            }
        }
        // A profile has at least one part.
        let (t, which) = best.unwrap_or((f64::INFINITY, usize::MAX));
        if which == usize::MAX {
            if let Some(e) = self.even.as_mut() {
                e.advance(self.origin);
            }
        } else {
            let p = &mut self.poisson[which];
            p.next = p.after(self.origin, t);
        }
        t
    }
}

impl Iterator for Schedule {
    type Item = f64;
    fn next(&mut self) -> Option<f64> {
        Some(self.next_instant())
    }
}

fn min_rate(p: &Part) -> f64 {
    match *p {
        Part::Constant { rate } => rate,
        Part::Daily { trough, .. } => trough,
        Part::Ramp { from, to, .. } => from.min(to),
        Part::Bursts { rate, .. } => rate,
    }
}

impl Even {
    fn cumulative(&self, origin: DateTime<Utc>, t: f64) -> f64 {
        self.parts.iter().map(|p| p.cumulative(origin, t)).sum()
    }

    fn rate(&self, origin: DateTime<Utc>, t: f64) -> f64 {
        self.parts.iter().map(|p| p.rate_at(origin, t)).sum()
    }

    /// Moves `next` to where the cumulative count reaches `n + 1`: Newton's method kept
    /// inside a bracket (bisecting when a step leaves it).
    fn advance(&mut self, origin: DateTime<Utc>) {
        self.n += 1;
        let target = self.n as f64;
        let mut lo = self.next;
        // The rate never falls below min_rate, so one more message takes at most 1/min_rate.
        let mut hi = lo + 1.0 / self.min_rate;
        let mut x = (lo + 1.0 / self.rate(origin, lo)).min(hi);
        let tolerance = 1e-9 * target.max(1.0);
        for _ in 0..60 {
            let f = self.cumulative(origin, x) - target;
            if f.abs() <= tolerance {
                break;
            }
            if f < 0.0 {
                lo = x;
            } else {
                hi = x;
            }
            let step = x - f / self.rate(origin, x);
            x = if step > lo && step < hi {
                step
            } else {
                (lo + hi) / 2.0
            };
            if hi - lo <= f64::EPSILON * hi {
                break;
            }
        }
        self.next = x;
    }
}

impl Thinning {
    /// The first accepted candidate after `t`.
    fn after(&mut self, origin: DateTime<Utc>, mut t: f64) -> f64 {
        loop {
            // 1 - u is in (0, 1]: the logarithm is finite.
            let u: f64 = 1.0 - self.rng.r#gen::<f64>();
            t += -u.ln() / self.max_rate;
            if self.rng.r#gen::<f64>() * self.max_rate < self.part.rate_at(origin, t) {
                return t;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> DateTime<Utc> {
        "2026-06-01T09:41:07Z".parse().unwrap()
    }

    fn instants(profile: &str, seed: u64, until: f64) -> Vec<f64> {
        let p: TrafficProfile = profile.parse().unwrap();
        Schedule::new(&p, origin(), seed)
            .take_while(|&t| t < until)
            .collect()
    }

    /// Counts per one-second bucket of `0..seconds`.
    fn buckets(instants: &[f64], seconds: usize) -> Vec<f64> {
        let mut counts = vec![0.0; seconds];
        for &t in instants {
            counts[t as usize] += 1.0;
        }
        counts
    }

    /// The integral of the rate over each second, numerically (independent of the closed form).
    fn expected(profile: &str, seconds: usize) -> Vec<f64> {
        let p: TrafficProfile = profile.parse().unwrap();
        (0..seconds)
            .map(|s| {
                let h = 1e-4;
                (0..10_000)
                    .map(|i| p.rate_at(origin(), s as f64 + (i as f64 + 0.5) * h) * h)
                    .sum()
            })
            .collect()
    }

    #[test]
    fn a_daily_cycle_compressed_to_a_minute_follows_its_curve_per_second() {
        for profile in [
            "daily:peak=200,trough=20,period=60s,tz=+02:00",
            "daily:peak=1000,trough=100,period=60s,tz=-07:00",
        ] {
            let got = buckets(&instants(profile, 1, 60.0), 60);
            let want = expected(profile, 60);
            for (s, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - w).abs() <= 0.05 * w,
                    "{profile}: second {s}: {g} vs {w}"
                );
            }
            // The whole curve is in the run: from near the trough to near the peak.
            let (lo, hi) = want
                .iter()
                .fold((f64::MAX, 0.0f64), |(lo, hi), &w| (lo.min(w), hi.max(w)));
            assert!(hi / lo > 5.0, "{lo}..{hi}");
        }
    }

    #[test]
    fn constant_and_ramp_are_evenly_spaced() {
        let c = instants("constant:4", 0, 10.0);
        assert_eq!(c.len(), 40);
        for (i, t) in c.iter().enumerate() {
            assert!((t - i as f64 * 0.25).abs() < 1e-9, "{i}: {t}");
        }
        let profile = "ramp:from=10,to=500,over=20s";
        let got = buckets(&instants(profile, 0, 30.0), 30);
        for (s, (g, w)) in got.iter().zip(expected(profile, 30)).enumerate() {
            assert!((g - w).abs() <= 1.0, "second {s}: {g} vs {w}");
        }
    }

    #[test]
    fn bursts_are_poisson_and_follow_the_factor() {
        let profile = "bursts:rate=100,factor=10,every=10s,for=1s";
        let all = instants(profile, 3, 1000.0);
        assert!(all.windows(2).all(|w| w[0] <= w[1]));
        let in_burst = all.iter().filter(|t| t.rem_euclid(10.0) < 1.0).count() as f64;
        let outside = all.len() as f64 - in_burst;
        // 100 bursts of 1 s at 1000/s, and 900 s at 100/s: 100,000 and 90,000 expected.
        assert!((in_burst - 100_000.0).abs() < 2_000.0, "{in_burst}");
        assert!((outside - 90_000.0).abs() < 2_000.0, "{outside}");
        // Poisson: gaps outside bursts have a coefficient of variation near 1 (even: 0).
        let gaps: Vec<f64> = all
            .windows(2)
            .filter(|w| {
                w[0].rem_euclid(10.0) > 1.0 && w[1].rem_euclid(10.0) > 1.0 && w[1] - w[0] < 5.0
            })
            .map(|w| w[1] - w[0])
            .collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let sd = (gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64).sqrt();
        assert!((sd / mean - 1.0).abs() < 0.05, "cv {}", sd / mean);
        // The same seed gives the same instants; another seed other ones.
        assert_eq!(instants(profile, 3, 50.0), instants(profile, 3, 50.0));
        assert_ne!(instants(profile, 3, 50.0), instants(profile, 4, 50.0));
    }

    #[test]
    fn the_seed_pace_repeats_per_seed_within_its_gaps() {
        let take = |seed| -> Vec<f64> {
            Schedule::seed_pace(origin(), seed)
                .take_while(|&t| t < 600.0)
                .collect()
        };
        let a = take(5);
        assert_eq!(a[0], 0.0);
        assert!(a.windows(2).all(|w| (0.5..1.5).contains(&(w[1] - w[0]))));
        assert!((a.len() as f64 - 600.0).abs() < 30.0, "{}", a.len());
        assert_eq!(a, take(5));
        assert_ne!(a, take(6));
    }

    #[test]
    fn a_mix_adds_its_parts() {
        let mixed = instants(
            "constant:50+bursts:rate=20,factor=5,every=10s,for=2s",
            9,
            100.0,
        );
        assert!(mixed.windows(2).all(|w| w[0] <= w[1]));
        // 5000 even ones, and Poisson with mean 20 × (8 + 2 × 5) × 10 = 3600.
        assert!(
            (mixed.len() as f64 - 8_600.0).abs() < 300.0,
            "{}",
            mixed.len()
        );
    }
}
