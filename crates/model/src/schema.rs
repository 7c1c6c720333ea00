//! The JSON Schema (draft 2020-12) of each data type's payload: one file per type under
//! `crates/model/schemas/`, the one definition the admin service serves, the OpenAPI
//! document embeds, the producer's generators are tested against and the consumer and
//! the dashboard's tail check messages with.

use std::fmt;
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::Value;

use crate::{DataType, Envelope};

/// The schema of `data_type`'s payload, as JSON text.
pub fn schema_text(data_type: DataType) -> &'static str {
    match data_type {
        DataType::Sensor => include_str!("../schemas/sensor.json"),
        DataType::Payment => include_str!("../schemas/payment.json"),
        DataType::Weather => include_str!("../schemas/weather.json"),
        DataType::Logs => include_str!("../schemas/logs.json"),
        DataType::UserActivity => include_str!("../schemas/user_activity.json"),
        DataType::Generic => include_str!("../schemas/generic.json"),
    }
}

struct Compiled {
    schema: Value,
    validator: jsonschema::Validator,
}

/// Each schema parsed and compiled once, in [`DataType::ALL`]'s order. The files are
/// part of the build and a test compiles every one, so a failure here is a bug.
static COMPILED: LazyLock<Vec<Compiled>> = LazyLock::new(|| {
    DataType::ALL
        .into_iter()
        .map(|d| {
            let schema: Value = serde_json::from_str(schema_text(d))
                .unwrap_or_else(|e| panic!("schemas/{d}.json is not JSON: {e}"));
            let validator = jsonschema::options()
                .with_draft(jsonschema::Draft::Draft202012)
                .should_validate_formats(true)
                .build(&schema)
                .unwrap_or_else(|e| panic!("schemas/{d}.json is not a valid schema: {e}"));
            Compiled { schema, validator }
        })
        .collect()
});

fn compiled(data_type: DataType) -> &'static Compiled {
    let i = DataType::ALL
        .iter()
        .position(|d| *d == data_type)
        .unwrap_or_default();
    &COMPILED[i]
}

/// The schema of `data_type`'s payload.
pub fn schema(data_type: DataType) -> &'static Value {
    &compiled(data_type).schema
}

/// Why a value does not match its schema, at one place of it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SchemaError {
    /// JSON Pointer to the offending value inside the payload; empty for the payload
    /// itself (a missing or unknown field, or a message that is no envelope).
    pub path: String,
    pub message: String,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every way `payload` breaks `data_type`'s schema; empty when it is valid.
pub fn validate(data_type: DataType, payload: &Value) -> Vec<SchemaError> {
    compiled(data_type)
        .validator
        .iter_errors(payload)
        .map(|e| SchemaError {
            path: e.instance_path().to_string(),
            message: e.to_string(),
        })
        .collect()
}

/// [`validate`] for a whole message value: its payload against the schema of the data
/// type its envelope names. A value that is no streamhub envelope is one error.
pub fn validate_message(value: &Value) -> Vec<SchemaError> {
    match Envelope::deserialize(value) {
        Ok(envelope) => validate(envelope.data_type, &envelope.payload),
        Err(e) => vec![SchemaError {
            path: String::new(),
            message: format!("not a streamhub envelope: {e}"),
        }],
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn every_schema_compiles_and_is_strict() {
        for d in DataType::ALL {
            let s = schema(d);
            assert_eq!(s["type"], "object", "{d}");
            assert_eq!(s["additionalProperties"], false, "{d}");
            let required = s["required"].as_array().expect("required");
            let properties = s["properties"].as_object().expect("properties");
            assert_eq!(
                required.len(),
                properties.len(),
                "{d}: every field is required"
            );
            assert_eq!(s["$id"], format!("urn:streamhub:payload:{d}"));
        }
    }

    fn sensor() -> Value {
        json!({
            "sensor_id": "sensor-001", "temperature": 21.5, "humidity": 40.0, "battery": 88.1,
            "location": {"site": "office-london", "latitude": 51.5, "longitude": -0.12},
            "status": "ok",
        })
    }

    #[test]
    fn errors_name_the_field() {
        assert_eq!(validate(DataType::Sensor, &sensor()), vec![]);
        let mut v = sensor();
        v["temperature"] = json!(120.0);
        v["location"]["site"] = json!("moon");
        v["extra"] = json!(1);
        let errors = validate(DataType::Sensor, &v);
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert!(paths.contains(&"/temperature"), "{errors:?}");
        assert!(paths.contains(&"/location/site"), "{errors:?}");
        assert!(paths.contains(&""), "{errors:?}");
        let t = errors.iter().find(|e| e.path == "/temperature").unwrap();
        assert_eq!(
            t.to_string(),
            "/temperature: 120.0 is greater than the maximum of 85"
        );
    }

    #[test]
    fn a_message_is_checked_against_its_envelopes_data_type() {
        let envelope = |payload: Value| {
            json!({"topic": "t", "data_type": "sensor", "timestamp": "2026-01-01T00:00:00.000Z",
                   "producer_id": "p", "seq": 1, "payload": payload})
        };
        assert_eq!(validate_message(&envelope(sensor())), vec![]);
        assert_eq!(validate_message(&envelope(json!({}))).len(), 6);
        let not_envelope = validate_message(&json!({"t": 1}));
        assert_eq!(not_envelope.len(), 1);
        assert!(
            not_envelope[0]
                .message
                .starts_with("not a streamhub envelope"),
            "{not_envelope:?}"
        );
    }
}
