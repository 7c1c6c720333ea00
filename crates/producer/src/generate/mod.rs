//! Realistic event generators, one module per [`DataType`].
//!
//! A [`Generator`] is created from a data type and a seed and yields [`Record`]s: the
//! Kafka key (the entity id, so per-entity order holds on a partition) and a typed
//! payload that serializes to JSON without an intermediate `serde_json::Value`.
//!
//! Determinism: every random choice comes from a ChaCha8 stream seeded with the seed,
//! whose output is fixed by its specification (unlike `StdRng`, which may change between
//! `rand` releases). Payloads carry no wall-clock time, so the same seed and data type
//! give the same sequence of records on every machine; the publish time travels in the
//! envelope's `timestamp`, outside the payload.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Serialize, Serializer};
use streamhub_model::DataType;

pub mod generic;
pub mod keys;
pub mod logs;
pub mod payment;
pub mod sensor;
pub mod user_activity;
pub mod weather;

pub use generic::GenericItem;
pub use keys::{KeyChooser, KeyDistribution};
pub use logs::LogLine;
pub use payment::Payment;
pub use sensor::SensorReading;
pub use user_activity::UserActivity;
pub use weather::WeatherObservation;

/// The random stream behind every generator.
pub type GenRng = ChaCha8Rng;

/// The generators' version, recorded with a topic's seed for replay: raised whenever a
/// generator's output for a given seed changes.
pub const GENERATOR_VERSION: u32 = 1;

/// An entity id shared between a generator's state, the record key and the payload
/// without copying the text for each event.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EntityId(Arc<str>);

impl EntityId {
    pub fn new(s: impl Into<Arc<str>>) -> Self {
        Self(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for EntityId {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl Serialize for EntityId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// One generated event's payload. Serializes as the bare object of its variant.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Payload {
    Sensor(SensorReading),
    Payment(Payment),
    Weather(WeatherObservation),
    Logs(LogLine),
    UserActivity(UserActivity),
    Generic(GenericItem),
}

impl Payload {
    pub fn data_type(&self) -> DataType {
        match self {
            Payload::Sensor(_) => DataType::Sensor,
            Payload::Payment(_) => DataType::Payment,
            Payload::Weather(_) => DataType::Weather,
            Payload::Logs(_) => DataType::Logs,
            Payload::UserActivity(_) => DataType::UserActivity,
            Payload::Generic(_) => DataType::Generic,
        }
    }

    /// The payload as a JSON value, for callers that want to inspect or re-shape it.
    pub fn to_value(&self) -> serde_json::Value {
        // Serializing plain structs of strings and finite numbers cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// A generated event: the Kafka key and the payload.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub key: EntityId,
    pub payload: Payload,
}

/// A generator of one data type, with the per-entity state that makes values drift
/// realistically from one event to the next.
pub struct Generator {
    rng: GenRng,
    kind: Kind,
    keys: KeyChooser,
}

enum Kind {
    Sensor(sensor::SensorFleet),
    Payment(payment::PaymentStream),
    Weather(weather::StationNetwork),
    Logs(logs::LogStream),
    UserActivity(user_activity::ActivityStream),
    Generic(generic::GenericStream),
}

impl Generator {
    pub fn new(data_type: DataType, seed: u64) -> Self {
        let mut rng = GenRng::seed_from_u64(seed);
        let kind = match data_type {
            DataType::Sensor => Kind::Sensor(sensor::SensorFleet::new(&mut rng)),
            DataType::Payment => Kind::Payment(payment::PaymentStream::new(&mut rng)),
            DataType::Weather => Kind::Weather(weather::StationNetwork::new(&mut rng)),
            DataType::Logs => Kind::Logs(logs::LogStream::new(&mut rng)),
            DataType::UserActivity => {
                Kind::UserActivity(user_activity::ActivityStream::new(&mut rng))
            }
            DataType::Generic => Kind::Generic(generic::GenericStream::new(&mut rng)),
        };
        Self {
            rng,
            kind,
            keys: KeyChooser::default(),
        }
    }

    /// Spreads events over the entities by `keys` instead of uniformly.
    pub fn with_keys(mut self, keys: KeyDistribution) -> Self {
        self.keys = KeyChooser::new(keys);
        self
    }

    /// The next record belongs to the same entity (and key) as the last one.
    pub fn repeat_entity(&mut self) {
        self.keys.repeat_next();
    }

    /// A generator seeded from the operating system, for runs without `--seed`.
    pub fn from_entropy(data_type: DataType) -> Self {
        Self::new(data_type, rand::random())
    }

    pub fn data_type(&self) -> DataType {
        match self.kind {
            Kind::Sensor(_) => DataType::Sensor,
            Kind::Payment(_) => DataType::Payment,
            Kind::Weather(_) => DataType::Weather,
            Kind::Logs(_) => DataType::Logs,
            Kind::UserActivity(_) => DataType::UserActivity,
            Kind::Generic(_) => DataType::Generic,
        }
    }

    /// The next event.
    pub fn next_record(&mut self) -> Record {
        let rng = &mut self.rng;
        let keys = &mut self.keys;
        match &mut self.kind {
            Kind::Sensor(g) => {
                let p = g.next(rng, keys);
                Record {
                    key: p.sensor_id.clone(),
                    payload: Payload::Sensor(p),
                }
            }
            Kind::Payment(g) => {
                let p = g.next(rng, keys);
                Record {
                    key: p.account.clone(),
                    payload: Payload::Payment(p),
                }
            }
            Kind::Weather(g) => {
                let p = g.next(rng, keys);
                Record {
                    key: p.station_id.clone(),
                    payload: Payload::Weather(p),
                }
            }
            Kind::Logs(g) => {
                let p = g.next(rng, keys);
                Record {
                    key: p.service.clone(),
                    payload: Payload::Logs(p),
                }
            }
            Kind::UserActivity(g) => {
                let p = g.next(rng, keys);
                Record {
                    key: p.user_id.clone(),
                    payload: Payload::UserActivity(p),
                }
            }
            Kind::Generic(g) => {
                let p = g.next(rng, keys);
                Record {
                    key: p.id.clone(),
                    payload: Payload::Generic(p),
                }
            }
        }
    }

    /// The next event as `(key, JSON payload)`.
    pub fn next_value(&mut self) -> (String, serde_json::Value) {
        let r = self.next_record();
        (r.key.to_string(), r.payload.to_value())
    }
}

impl Iterator for Generator {
    type Item = Record;
    fn next(&mut self) -> Option<Record> {
        Some(self.next_record())
    }
}

/// A standard normal sample (Box–Muller), so the crate needs no distribution library.
pub(crate) fn std_normal(rng: &mut GenRng) -> f64 {
    // 1 - u keeps the logarithm's argument in (0, 1].
    let u1: f64 = 1.0 - rng.r#gen::<f64>();
    let u2: f64 = rng.r#gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

pub(crate) fn normal(rng: &mut GenRng, mean: f64, sd: f64) -> f64 {
    mean + sd * std_normal(rng)
}

/// Rounds to `decimals` places, as instruments and ledgers report values.
pub(crate) fn round_to(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

/// Picks from `(item, weight)` pairs in proportion to the weights.
pub(crate) fn weighted<T: Copy>(rng: &mut GenRng, choices: &[(T, u32)]) -> T {
    let total: u32 = choices.iter().map(|(_, w)| w).sum();
    let mut pick = rng.gen_range(0..total);
    for &(item, w) in choices {
        if pick < w {
            return item;
        }
        pick -= w;
    }
    choices[choices.len() - 1].0
}

pub(crate) fn pick<T: Copy>(rng: &mut GenRng, choices: &[T]) -> T {
    choices[rng.gen_range(0..choices.len())]
}

/// `n` random lowercase hex digits (n ≤ 32), as trace and transaction ids are written.
pub(crate) fn hex_id(rng: &mut GenRng, n: usize) -> String {
    let v: u128 = rng.r#gen();
    let mut s = format!("{v:032x}");
    s.truncate(n);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_choice_follows_the_weights() {
        let mut rng = GenRng::seed_from_u64(1);
        let mut hits = [0u32; 2];
        for _ in 0..10_000 {
            hits[weighted(&mut rng, &[(0usize, 9), (1, 1)])] += 1;
        }
        assert!((8_700..9_300).contains(&hits[0]), "{hits:?}");
    }

    #[test]
    fn normal_samples_have_the_requested_moments() {
        let mut rng = GenRng::seed_from_u64(2);
        let xs: Vec<f64> = (0..20_000).map(|_| normal(&mut rng, 10.0, 2.0)).collect();
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
        assert!((mean - 10.0).abs() < 0.1, "{mean}");
        assert!((var.sqrt() - 2.0).abs() < 0.1, "{var}");
    }

    #[test]
    fn hex_ids_have_the_requested_length() {
        let mut rng = GenRng::seed_from_u64(3);
        let id = hex_id(&mut rng, 32);
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(hex_id(&mut rng, 16).len(), 16);
    }
}
