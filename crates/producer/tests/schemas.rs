//! The generators against the payload schemas of `streamhub_model::schema`: for any seed
//! every generated value validates; the schemas' closed sets are the generators' own; and
//! the validator rejects each kind of wrong value at the field it is in, so the property
//! can fail.

use proptest::prelude::*;
use serde_json::{Value, json};
use streamhub_model::DataType;
use streamhub_model::schema::{schema, validate};
use streamhub_producer::generate::{
    Generator, generic, logs, payment, sensor, user_activity, weather,
};

const EVENTS_PER_CASE: usize = 500;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_generated_value_validates(
        seed in any::<u64>(),
        dt in prop::sample::select(DataType::ALL.to_vec()),
    ) {
        let mut g = Generator::new(dt, seed);
        for _ in 0..EVENTS_PER_CASE {
            let (_, value) = g.next_value();
            let errors = validate(dt, &value);
            prop_assert!(errors.is_empty(), "{dt} {value}: {errors:?}");
        }
    }
}

fn enum_of(dt: DataType, pointer: &str) -> Vec<String> {
    let mut values: Vec<String> = schema(dt)
        .pointer(pointer)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{dt}: no enum at {pointer}"))
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    values.sort_unstable();
    values
}

fn sorted<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut v: Vec<String> = items.into_iter().map(str::to_owned).collect();
    v.sort_unstable();
    v
}

/// A schema listing fewer values than a generator makes fails the property above only
/// for seeds that hit the missing value; this catches it for all.
#[test]
fn closed_sets_are_the_generators() {
    let cases: [(DataType, &str, Vec<String>); 8] = [
        (
            DataType::Sensor,
            "/properties/location/properties/site/enum",
            sorted(sensor::site_names()),
        ),
        (
            DataType::Payment,
            "/properties/currency/enum",
            sorted(payment::CURRENCIES.iter().copied()),
        ),
        (
            DataType::Payment,
            "/properties/status/enum",
            sorted(payment::STATUSES.iter().copied()),
        ),
        (
            DataType::Weather,
            "/properties/conditions/enum",
            sorted(weather::CONDITIONS.iter().copied()),
        ),
        (
            DataType::Logs,
            "/properties/level/enum",
            sorted(logs::LEVELS.iter().copied()),
        ),
        (
            DataType::UserActivity,
            "/properties/event_type/enum",
            sorted(user_activity::EVENT_TYPES.iter().copied()),
        ),
        (
            DataType::UserActivity,
            "/properties/device/enum",
            sorted(user_activity::DEVICES.iter().copied()),
        ),
        (
            DataType::Generic,
            "/properties/tags/items/enum",
            sorted(generic::TAGS.iter().copied()),
        ),
    ];
    for (dt, pointer, expected) in cases {
        assert_eq!(enum_of(dt, pointer), expected, "{dt} {pointer}");
    }
    assert_eq!(
        schema(DataType::Generic)["properties"]["tags"]["maxItems"].as_u64(),
        Some(generic::MAX_TAGS as u64)
    );
    let bound = |dt: DataType, field: &str, key: &str| {
        schema(dt)["properties"][field][key]
            .as_f64()
            .unwrap_or_else(|| panic!("{dt}.{field}.{key}"))
    };
    assert_eq!(
        (
            bound(DataType::Sensor, "temperature", "minimum"),
            bound(DataType::Sensor, "temperature", "maximum")
        ),
        sensor::TEMPERATURE_RANGE
    );
    assert_eq!(
        (
            bound(DataType::Weather, "temperature", "minimum"),
            bound(DataType::Weather, "temperature", "maximum")
        ),
        weather::TEMPERATURE_RANGE
    );
    assert_eq!(
        (
            bound(DataType::Weather, "pressure", "minimum"),
            bound(DataType::Weather, "pressure", "maximum")
        ),
        weather::PRESSURE_RANGE
    );
    assert_eq!(
        bound(DataType::Weather, "wind_speed", "maximum"),
        weather::MAX_WIND_SPEED
    );
    assert_eq!(
        (
            bound(DataType::Generic, "value", "minimum"),
            bound(DataType::Generic, "value", "maximum")
        ),
        generic::VALUE_RANGE
    );
    assert_eq!(
        bound(DataType::Payment, "amount", "maximum"),
        payment::MAX_AMOUNT * 100.0,
        "JPY amounts are a hundred times the others"
    );
}

/// One generated value of each type, broken one way at a time: each must be refused,
/// with the error at the broken field.
#[test]
fn wrong_values_are_refused_at_their_field() {
    for dt in DataType::ALL {
        let (_, valid) = Generator::new(dt, 7).next_value();
        assert_eq!(validate(dt, &valid), vec![], "{dt} {valid}");
        let fields: Vec<String> = valid.as_object().unwrap().keys().cloned().collect();
        for field in &fields {
            let mut missing = valid.clone();
            missing.as_object_mut().unwrap().remove(field);
            let errors = validate(dt, &missing);
            assert!(
                errors
                    .iter()
                    .any(|e| e.path.is_empty() && e.message.contains(field.as_str())),
                "{dt}: missing {field}: {errors:?}"
            );

            let mut wrong_type = valid.clone();
            // A value of no type any field takes.
            wrong_type[field] = json!({"nested": [true]});
            let errors = validate(dt, &wrong_type);
            assert!(
                errors.iter().any(|e| e.path == format!("/{field}")),
                "{dt}: {field} of the wrong type: {errors:?}"
            );
        }
        let mut extra = valid.clone();
        extra["unexpected"] = json!(1);
        let errors = validate(dt, &extra);
        assert!(
            errors.iter().any(|e| e.message.contains("unexpected")),
            "{dt}: extra field: {errors:?}"
        );
    }

    let out_of_range: [(DataType, &str, Value); 9] = [
        (DataType::Sensor, "temperature", json!(85.1)),
        (DataType::Sensor, "battery", json!(-0.1)),
        (DataType::Payment, "amount", json!(-3)),
        (DataType::Payment, "currency", json!("XXX")),
        (DataType::Weather, "wind_direction", json!(360)),
        (DataType::Weather, "wind_direction", json!(12.5)),
        (DataType::Logs, "trace_id", json!("not-hex")),
        (DataType::UserActivity, "country", json!("usa")),
        (DataType::Generic, "tags", json!(["alpha", "alpha"])),
    ];
    for (dt, field, value) in out_of_range {
        let (_, mut v) = Generator::new(dt, 7).next_value();
        v[field] = value.clone();
        let errors = validate(dt, &v);
        assert!(
            errors.iter().any(|e| e.path == format!("/{field}")),
            "{dt}.{field} = {value}: {errors:?}"
        );
    }

    // A payment's failure reason goes with its status.
    let (_, mut p) = Generator::new(DataType::Payment, 7).next_value();
    p["status"] = json!("completed");
    p["failure_reason"] = json!("card_expired");
    assert!(!validate(DataType::Payment, &p).is_empty(), "{p}");
    p["status"] = json!("declined");
    p["failure_reason"] = Value::Null;
    assert!(!validate(DataType::Payment, &p).is_empty(), "{p}");
    p["failure_reason"] = json!("card_expired");
    assert_eq!(validate(DataType::Payment, &p), vec![], "{p}");
}
