//! Faults on purpose (`--faults`), each at a set rate and marked with the Kafka header
//! [`FAULT_HEADER`] so tests can find them. Off by default. At most one fault per event:
//!
//! - `late`: the envelope's `timestamp` (event time) is behind the Kafka record's timestamp
//!   (processing time, set at send) by an exponentially distributed delay of mean `late-by`
//!   (default 30 s), also given in milliseconds in the header [`LATE_MS_HEADER`].
//! - `out-of-order`: the event is held back and sent right after the next event, which is of
//!   the same entity: within that key, `seq` n arrives after n + 1. The held one is marked.
//! - `duplicate`: the same message (same `seq`) is sent twice; the second copy is marked.
//! - `poison`: after the event, an extra message consumers must refuse: invalid JSON
//!   (`poison-json`), wrong types (`poison-type`), missing fields (`poison-missing`) or an
//!   oversize one (`poison-oversize`, [`OVERSIZE_BYTES`]). None carries a valid `seq`, so
//!   gap counting by `seq` is unaffected.

use std::fmt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
pub use streamhub_model::faults::FaultRates;

/// The header that marks a faulty message; its value is [`Fault::name`].
pub const FAULT_HEADER: &str = "streamhub-fault";
/// How far behind processing time a late event's time is, in milliseconds.
pub const LATE_MS_HEADER: &str = "streamhub-late-ms";
/// Size of a `poison-oversize` message: far above a normal envelope (a few hundred bytes),
/// below Kafka's default `max.message.bytes` (1 MiB) so the broker still takes it.
pub const OVERSIZE_BYTES: usize = 512 * 1024;

/// One kind of fault, as written in [`FAULT_HEADER`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Late,
    OutOfOrder,
    Duplicate,
    PoisonJson,
    PoisonType,
    PoisonMissing,
    PoisonOversize,
}

impl Fault {
    pub const POISON: [Fault; 4] = [
        Fault::PoisonJson,
        Fault::PoisonType,
        Fault::PoisonMissing,
        Fault::PoisonOversize,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Late => "late",
            Fault::OutOfOrder => "out-of-order",
            Fault::Duplicate => "duplicate",
            Fault::PoisonJson => "poison-json",
            Fault::PoisonType => "poison-type",
            Fault::PoisonMissing => "poison-missing",
            Fault::PoisonOversize => "poison-oversize",
        }
    }
}

/// Messages of each fault sent so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FaultCounts {
    pub late: u64,
    pub out_of_order: u64,
    pub duplicate: u64,
    pub poison_json: u64,
    pub poison_type: u64,
    pub poison_missing: u64,
    pub poison_oversize: u64,
}

impl FaultCounts {
    pub fn add(&mut self, fault: Fault) {
        *match fault {
            Fault::Late => &mut self.late,
            Fault::OutOfOrder => &mut self.out_of_order,
            Fault::Duplicate => &mut self.duplicate,
            Fault::PoisonJson => &mut self.poison_json,
            Fault::PoisonType => &mut self.poison_type,
            Fault::PoisonMissing => &mut self.poison_missing,
            Fault::PoisonOversize => &mut self.poison_oversize,
        } += 1;
    }

    pub fn poison(&self) -> u64 {
        self.poison_json + self.poison_type + self.poison_missing + self.poison_oversize
    }

    /// Messages sent beside the events: second copies and poison messages.
    pub fn extra_messages(&self) -> u64 {
        self.duplicate + self.poison()
    }

    pub fn total(&self) -> u64 {
        self.late + self.out_of_order + self.extra_messages()
    }
}

impl fmt::Display for FaultCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} late, {} out of order, {} duplicated, {} poison",
            self.late,
            self.out_of_order,
            self.duplicate,
            self.poison()
        )
    }
}

/// What happens to one event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Plan {
    Clean,
    /// Event time this many milliseconds behind processing time.
    Late(i64),
    OutOfOrder,
    Duplicate,
    /// An extra poison message of this kind after the event.
    Poison(Fault),
}

/// Draws each event's [`Plan`] from its own random stream (so faults do not change the
/// generated events' values beyond the out-of-order key repeat).
pub struct FaultInjector {
    rates: FaultRates,
    rng: ChaCha8Rng,
}

impl FaultInjector {
    pub fn new(rates: FaultRates, seed: u64) -> Self {
        FaultInjector {
            rates,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0xFA17_FA17_FA17_FA17),
        }
    }

    pub fn plan(&mut self) -> Plan {
        let r = &self.rates;
        let mut u: f64 = self.rng.r#gen();
        if u < r.late {
            // Exponential delay, at least a millisecond so that it shows.
            let e = -(1.0 - self.rng.r#gen::<f64>()).ln();
            let ms = (e * r.late_by.as_secs_f64() * 1000.0).round().max(1.0);
            return Plan::Late(ms as i64);
        }
        u -= r.late;
        if u < r.out_of_order {
            return Plan::OutOfOrder;
        }
        u -= r.out_of_order;
        if u < r.duplicate {
            return Plan::Duplicate;
        }
        u -= r.duplicate;
        if u < r.poison {
            return Plan::Poison(Fault::POISON[self.rng.gen_range(0..Fault::POISON.len())]);
        }
        Plan::Clean
    }
}

/// The body of a poison message, from the fields of the event it follows.
pub fn poison_body(
    kind: Fault,
    envelope: &[u8],
    topic: &str,
    producer_id: &str,
    seq: u64,
) -> Vec<u8> {
    use serde_json::json;
    match kind {
        // Cut inside the object: never valid JSON.
        Fault::PoisonJson => envelope[..envelope.len() / 2].to_vec(),
        Fault::PoisonType => json!({
            "topic": topic, "data_type": 17, "timestamp": true,
            "producer_id": producer_id, "seq": seq.to_string(), "payload": "not an object",
        })
        .to_string()
        .into_bytes(),
        Fault::PoisonMissing => json!({"topic": topic, "producer_id": producer_id})
            .to_string()
            .into_bytes(),
        _ => {
            let padding = "x".repeat(OVERSIZE_BYTES);
            json!({"topic": topic, "producer_id": producer_id, "payload": {"padding": padding}})
                .to_string()
                .into_bytes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_follow_the_rates() {
        let rates: FaultRates = "late=0.1,out-of-order=0.05,duplicate=0.02,poison=0.04,late-by=10s"
            .parse()
            .unwrap();
        let mut inj = FaultInjector::new(rates, 1);
        let n = 200_000;
        let mut counts = FaultCounts::default();
        let mut late_ms = 0.0;
        for _ in 0..n {
            match inj.plan() {
                Plan::Clean => {}
                Plan::Late(ms) => {
                    assert!(ms >= 1);
                    late_ms += ms as f64;
                    counts.add(Fault::Late);
                }
                Plan::OutOfOrder => counts.add(Fault::OutOfOrder),
                Plan::Duplicate => counts.add(Fault::Duplicate),
                Plan::Poison(kind) => counts.add(kind),
            }
        }
        let near = |got: u64, rate: f64| {
            let want = rate * f64::from(n);
            (got as f64 - want).abs() < 0.06 * want
        };
        assert!(near(counts.late, 0.1), "{counts:?}");
        assert!(near(counts.out_of_order, 0.05), "{counts:?}");
        assert!(near(counts.duplicate, 0.02), "{counts:?}");
        assert!(near(counts.poison(), 0.04), "{counts:?}");
        assert!(near(counts.poison_oversize, 0.01), "{counts:?}");
        let mean = late_ms / counts.late as f64;
        assert!((mean - 10_000.0).abs() < 300.0, "{mean}");
    }

    #[test]
    fn poison_bodies_are_not_envelopes() {
        let envelope = br#"{"topic":"t","data_type":"sensor","timestamp":"2026-01-01T00:00:00.000Z","producer_id":"p","seq":3,"payload":{}}"#;
        assert!(streamhub_model::Envelope::parse(envelope).is_some());
        for kind in Fault::POISON {
            let body = poison_body(kind, envelope, "t", "p", 3);
            assert!(
                streamhub_model::Envelope::parse(&body).is_none(),
                "{}",
                kind.name()
            );
            let json = serde_json::from_slice::<serde_json::Value>(&body);
            assert_eq!(json.is_err(), kind == Fault::PoisonJson, "{}", kind.name());
        }
        assert!(poison_body(Fault::PoisonOversize, envelope, "t", "p", 3).len() > OVERSIZE_BYTES);
    }
}
