use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a topic carries. Each has a generator in the producer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    Sensor,
    Payment,
    Weather,
    Logs,
    UserActivity,
    Generic,
}

impl DataType {
    pub const ALL: [DataType; 6] = [
        DataType::Sensor,
        DataType::Payment,
        DataType::Weather,
        DataType::Logs,
        DataType::UserActivity,
        DataType::Generic,
    ];

    /// Infers the data type from a topic name, as the seed's producer does
    /// (`sensor_data` → `sensor`, `user_events` → `user_activity`).
    pub fn infer_from_name(name: &str) -> DataType {
        let n = name.to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| n.contains(w));
        if has(&["sensor", "iot", "telemetry"]) {
            DataType::Sensor
        } else if has(&["payment", "transaction", "order", "billing"]) {
            DataType::Payment
        } else if has(&["weather", "climate"]) {
            DataType::Weather
        } else if has(&["log"]) {
            DataType::Logs
        } else if has(&["user", "activity", "click", "event", "session"]) {
            DataType::UserActivity
        } else {
            DataType::Generic
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DataType::Sensor => "sensor",
            DataType::Payment => "payment",
            DataType::Weather => "weather",
            DataType::Logs => "logs",
            DataType::UserActivity => "user_activity",
            DataType::Generic => "generic",
        }
    }
}

impl FromStr for DataType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DataType::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown data type '{s}'; expected sensor, payment, weather, logs, user_activity or generic"
                )
            })
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infers_like_the_seed() {
        assert_eq!(DataType::infer_from_name("sensor_data"), DataType::Sensor);
        assert_eq!(DataType::infer_from_name("payments"), DataType::Payment);
        assert_eq!(DataType::infer_from_name("weather_feed"), DataType::Weather);
        assert_eq!(DataType::infer_from_name("app_logs"), DataType::Logs);
        assert_eq!(
            DataType::infer_from_name("user_events"),
            DataType::UserActivity
        );
        assert_eq!(DataType::infer_from_name("misc"), DataType::Generic);
    }

    #[test]
    fn round_trips_through_text() {
        for d in DataType::ALL {
            assert_eq!(d.as_str().parse::<DataType>(), Ok(d));
        }
    }
}
