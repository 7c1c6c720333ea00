//! Property tests of the generators: for any seed every field is present and in its
//! valid range, keys are the entity ids, and a fixed seed reproduces the same events.

use proptest::prelude::*;
use serde_json::Value;
use streamhub_model::DataType;
use streamhub_producer::generate::{
    Generator, Payload, generic, logs, payment, sensor, user_activity, weather,
};

const EVENTS_PER_CASE: usize = 300;

fn data_type() -> impl Strategy<Value = DataType> {
    prop::sample::select(DataType::ALL.to_vec())
}

fn fields(v: &Value) -> Vec<&str> {
    let mut f: Vec<&str> = v
        .as_object()
        .expect("payload is a JSON object")
        .keys()
        .map(String::as_str)
        .collect();
    f.sort_unstable();
    f
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks one payload's fields and ranges; returns a description of the first problem.
fn check(key: &str, payload: &Payload) -> Result<(), String> {
    let json = payload.to_value();
    let expect = |names: &[&str]| -> Result<(), String> {
        let mut want = names.to_vec();
        want.sort_unstable();
        let got = fields(&json);
        if got == want {
            Ok(())
        } else {
            Err(format!("fields {got:?}, expected {want:?}"))
        }
    };
    macro_rules! ensure {
        ($cond:expr) => {
            let ok: bool = $cond;
            if !ok {
                return Err(format!("{} failed for {json}", stringify!($cond)));
            }
        };
    }
    match payload {
        Payload::Sensor(p) => {
            expect(&[
                "sensor_id",
                "temperature",
                "humidity",
                "battery",
                "location",
                "status",
            ])?;
            ensure!(key == p.sensor_id.as_str());
            ensure!(p.sensor_id.starts_with("sensor-"));
            ensure!(
                (sensor::TEMPERATURE_RANGE.0..=sensor::TEMPERATURE_RANGE.1)
                    .contains(&p.temperature)
            );
            ensure!((0.0..=100.0).contains(&p.humidity));
            ensure!((0.0..=100.0).contains(&p.battery));
            ensure!((p.status == "low_battery") == (p.battery < 15.0));
            ensure!(sensor::site_names().any(|s| s == p.location.site));
            ensure!((-90.0..=90.0).contains(&p.location.latitude));
            ensure!((-180.0..=180.0).contains(&p.location.longitude));
            ensure!(fields(&json["location"]) == ["latitude", "longitude", "site"]);
        }
        Payload::Payment(p) => {
            expect(&[
                "transaction_id",
                "account",
                "amount",
                "currency",
                "merchant",
                "category",
                "method",
                "status",
                "failure_reason",
            ])?;
            ensure!(key == p.account.as_str());
            ensure!(p.transaction_id.starts_with("txn-") && is_hex(&p.transaction_id[4..], 20));
            ensure!(p.amount > 0.0);
            let cap = if p.currency == "JPY" { 100.0 } else { 1.0 } * payment::MAX_AMOUNT;
            ensure!(p.amount <= cap);
            if p.currency == "JPY" {
                ensure!(p.amount.fract() == 0.0);
            } else {
                ensure!(((p.amount * 100.0).round() - p.amount * 100.0).abs() < 1e-6);
            }
            ensure!(payment::CURRENCIES.contains(&p.currency));
            ensure!(payment::STATUSES.contains(&p.status));
            ensure!(p.failure_reason.is_some() == matches!(p.status, "declined" | "failed"));
            ensure!(!p.merchant.is_empty() && !p.category.is_empty());
        }
        Payload::Weather(p) => {
            expect(&[
                "station_id",
                "city",
                "temperature",
                "humidity",
                "pressure",
                "wind_speed",
                "wind_direction",
                "conditions",
                "precipitation",
            ])?;
            ensure!(key == p.station_id.as_str());
            ensure!(
                (weather::TEMPERATURE_RANGE.0..=weather::TEMPERATURE_RANGE.1)
                    .contains(&p.temperature)
            );
            ensure!((0.0..=100.0).contains(&p.humidity));
            ensure!((weather::PRESSURE_RANGE.0..=weather::PRESSURE_RANGE.1).contains(&p.pressure));
            ensure!((0.0..=weather::MAX_WIND_SPEED).contains(&p.wind_speed));
            ensure!(p.wind_direction < 360);
            ensure!(weather::CONDITIONS.contains(&p.conditions));
            ensure!(
                p.conditions
                    == weather::conditions(p.temperature, p.humidity, p.pressure, p.wind_speed)
            );
            ensure!((p.precipitation > 0.0) == matches!(p.conditions, "rain" | "snow" | "storm"));
            ensure!(p.conditions != "snow" || p.temperature <= 0.5);
        }
        Payload::Logs(p) => {
            expect(&["service", "host", "level", "message", "trace_id", "span_id"])?;
            ensure!(key == p.service.as_str());
            ensure!(p.host.starts_with(p.service.as_str()));
            ensure!(logs::LEVELS.contains(&p.level));
            ensure!(!p.message.is_empty());
            ensure!(is_hex(&p.trace_id, 32));
            ensure!(is_hex(&p.span_id, 16));
        }
        Payload::UserActivity(p) => {
            expect(&[
                "user_id",
                "session_id",
                "event_type",
                "page",
                "device",
                "country",
            ])?;
            ensure!(key == p.user_id.as_str());
            ensure!(p.session_id.starts_with("sess-") && is_hex(&p.session_id[5..], 16));
            ensure!(user_activity::EVENT_TYPES.contains(&p.event_type));
            ensure!(user_activity::DEVICES.contains(&p.device));
            ensure!(p.page.starts_with('/'));
            ensure!(p.country.len() == 2);
        }
        Payload::Generic(p) => {
            expect(&["id", "value", "tags"])?;
            ensure!(key == p.id.as_str());
            ensure!((generic::VALUE_RANGE.0..=generic::VALUE_RANGE.1).contains(&p.value));
            ensure!((1..=generic::MAX_TAGS).contains(&p.tags.len()));
            ensure!(p.tags.iter().all(|t| generic::TAGS.contains(t)));
            let mut distinct = p.tags.clone();
            distinct.sort_unstable();
            distinct.dedup();
            ensure!(distinct.len() == p.tags.len());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_field_is_present_and_in_range(seed in any::<u64>(), dt in data_type()) {
        let mut g = Generator::new(dt, seed);
        prop_assert_eq!(g.data_type(), dt);
        for _ in 0..EVENTS_PER_CASE {
            let r = g.next_record();
            prop_assert_eq!(r.payload.data_type(), dt);
            if let Err(e) = check(&r.key, &r.payload) {
                return Err(TestCaseError::fail(e));
            }
            // NaN and infinity serialize as null: only a payment's failure_reason may be null.
            let mut json = r.payload.to_value();
            if dt == DataType::Payment {
                json["failure_reason"] = Value::Bool(true);
            }
            prop_assert!(!has_null(&json), "{}", json);
        }
    }

    #[test]
    fn a_fixed_seed_reproduces_the_same_events(seed in any::<u64>(), dt in data_type()) {
        let a: Vec<_> = Generator::new(dt, seed).take(100).collect();
        let b: Vec<_> = Generator::new(dt, seed).take(100).collect();
        prop_assert_eq!(&a, &b);
        let c: Vec<_> = Generator::new(dt, seed.wrapping_add(1)).take(100).collect();
        prop_assert_ne!(&a, &c);
    }
}

/// The stream is fixed by the seed alone, not by the platform or the `rand` release:
/// this pins the first sensor reading of seed 42.
#[test]
fn seed_42_starts_with_a_known_sensor_reading() {
    let (key, payload) = Generator::new(DataType::Sensor, 42).next_value();
    assert_eq!(key, "sensor-021");
    assert_eq!(
        payload,
        serde_json::json!({
            "sensor_id": "sensor-021",
            "temperature": 27.1,
            "humidity": 75.6,
            "battery": 99.8,
            "location": {"site": "greenhouse-almeria", "latitude": 36.834, "longitude": -2.4637},
            "status": "ok"
        })
    );
}

fn has_null(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.iter().any(has_null),
        Value::Object(o) => o.values().any(has_null),
        _ => false,
    }
}

#[test]
fn keys_are_entity_ids_that_repeat() {
    for dt in DataType::ALL {
        let keys: std::collections::HashSet<_> = Generator::new(dt, 1)
            .take(2_000)
            .map(|r| r.key.to_string())
            .collect();
        assert!(keys.len() > 1, "{dt}: one key only");
        assert!(
            keys.len() < 1_000,
            "{dt}: {} distinct keys in 2000",
            keys.len()
        );
    }
}
