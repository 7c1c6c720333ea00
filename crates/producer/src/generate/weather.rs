//! Weather stations: temperature, pressure, humidity and wind evolve as random walks
//! around each station's climate, and the reported conditions and precipitation are
//! derived from those values, so a report never says "snow" at 25 °C.

use rand::Rng;
use serde::Serialize;

use super::{EntityId, GenRng, KeyChooser, normal, round_to};

pub const PRESSURE_RANGE: (f64, f64) = (950.0, 1050.0);
pub const TEMPERATURE_RANGE: (f64, f64) = (-50.0, 55.0);
pub const MAX_WIND_SPEED: f64 = 45.0;
pub const CONDITIONS: &[&str] = &[
    "clear",
    "partly_cloudy",
    "cloudy",
    "fog",
    "rain",
    "snow",
    "windy",
    "storm",
];

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WeatherObservation {
    pub station_id: EntityId,
    pub city: &'static str,
    /// °C, one decimal.
    pub temperature: f64,
    /// Relative humidity, %, whole.
    pub humidity: f64,
    /// Sea-level pressure, hPa, one decimal.
    pub pressure: f64,
    /// m/s, one decimal.
    pub wind_speed: f64,
    /// Degrees the wind blows from, 0–359.
    pub wind_direction: u16,
    pub conditions: &'static str,
    /// mm in the last hour; zero unless it rains or snows.
    pub precipitation: f64,
}

struct Climate {
    city: &'static str,
    code: &'static str,
    temperature: f64,
    humidity: f64,
}

const CLIMATES: &[Climate] = &[
    Climate {
        city: "Reykjavik",
        code: "BIRK",
        temperature: 1.0,
        humidity: 80.0,
    },
    Climate {
        city: "London",
        code: "EGLC",
        temperature: 11.0,
        humidity: 78.0,
    },
    Climate {
        city: "Madrid",
        code: "LEMD",
        temperature: 19.0,
        humidity: 45.0,
    },
    Climate {
        city: "Singapore",
        code: "WSSS",
        temperature: 28.0,
        humidity: 84.0,
    },
    Climate {
        city: "Denver",
        code: "KDEN",
        temperature: 8.0,
        humidity: 50.0,
    },
    Climate {
        city: "Dubai",
        code: "OMDB",
        temperature: 34.0,
        humidity: 50.0,
    },
    Climate {
        city: "Tokyo",
        code: "RJTT",
        temperature: 16.0,
        humidity: 65.0,
    },
    Climate {
        city: "Sydney",
        code: "YSSY",
        temperature: 18.0,
        humidity: 65.0,
    },
];

struct Station {
    id: EntityId,
    climate: &'static Climate,
    temperature: f64,
    humidity: f64,
    pressure: f64,
    wind_speed: f64,
    wind_direction: f64,
}

pub(super) struct StationNetwork {
    stations: Vec<Station>,
}

impl StationNetwork {
    pub(super) fn new(rng: &mut GenRng) -> Self {
        let stations = CLIMATES
            .iter()
            .map(|c| Station {
                id: EntityId::new(format!("station-{}", c.code)),
                climate: c,
                temperature: normal(rng, c.temperature, 3.0),
                humidity: normal(rng, c.humidity, 5.0).clamp(5.0, 100.0),
                pressure: normal(rng, 1013.0, 6.0),
                wind_speed: rng.gen_range(0.0..8.0),
                wind_direction: rng.gen_range(0.0..360.0),
            })
            .collect();
        Self { stations }
    }

    pub(super) fn next(&mut self, rng: &mut GenRng, keys: &mut KeyChooser) -> WeatherObservation {
        let i = keys.choose(rng, self.stations.len());
        let s = &mut self.stations[i];
        let c = s.climate;
        s.temperature =
            (s.temperature + 0.03 * (c.temperature - s.temperature) + normal(rng, 0.0, 0.3))
                .clamp(TEMPERATURE_RANGE.0, TEMPERATURE_RANGE.1);
        s.humidity = (s.humidity + 0.05 * (c.humidity - s.humidity) + normal(rng, 0.0, 1.5))
            .clamp(5.0, 100.0);
        s.pressure = (s.pressure + 0.02 * (1013.0 - s.pressure) + normal(rng, 0.0, 0.6))
            .clamp(PRESSURE_RANGE.0, PRESSURE_RANGE.1);
        // Low pressure brings wind: the wind reverts to a speed that grows as pressure falls.
        let calm_target = (4.0 + (1013.0 - s.pressure) * 0.4).max(1.0);
        s.wind_speed = (s.wind_speed + 0.1 * (calm_target - s.wind_speed) + normal(rng, 0.0, 0.6))
            .clamp(0.0, MAX_WIND_SPEED);
        s.wind_direction = (s.wind_direction + normal(rng, 0.0, 10.0)).rem_euclid(360.0);

        let temperature = round_to(s.temperature, 1);
        let humidity = s.humidity.round();
        let pressure = round_to(s.pressure, 1);
        let wind_speed = round_to(s.wind_speed, 1);
        let conditions = conditions(temperature, humidity, pressure, wind_speed);
        let precipitation = match conditions {
            "rain" | "snow" => round_to(rng.gen_range(0.2..4.0), 1),
            "storm" => round_to(rng.gen_range(4.0..25.0), 1),
            _ => 0.0,
        };
        WeatherObservation {
            station_id: s.id.clone(),
            city: c.city,
            temperature,
            humidity,
            pressure,
            wind_speed,
            // rem_euclid keeps it below 360; rounding 359.6 would give 360.
            wind_direction: (s.wind_direction.floor() as u16) % 360,
            conditions,
            precipitation,
        }
    }
}

/// The conditions the measured values imply.
pub fn conditions(temperature: f64, humidity: f64, pressure: f64, wind_speed: f64) -> &'static str {
    let wet = humidity >= 88.0 && pressure < 1008.0;
    if wind_speed >= 20.0 && pressure < 1000.0 {
        "storm"
    } else if wet && temperature <= 0.5 {
        "snow"
    } else if wet {
        "rain"
    } else if wind_speed >= 12.0 {
        "windy"
    } else if humidity >= 95.0 && wind_speed < 3.0 {
        "fog"
    } else if humidity >= 75.0 || pressure < 1005.0 {
        "cloudy"
    } else if pressure >= 1018.0 && humidity < 60.0 {
        "clear"
    } else {
        "partly_cloudy"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_follow_the_measurements() {
        assert_eq!(conditions(-3.0, 95.0, 995.0, 5.0), "snow");
        assert_eq!(conditions(12.0, 95.0, 995.0, 5.0), "rain");
        assert_eq!(conditions(12.0, 70.0, 985.0, 25.0), "storm");
        assert_eq!(conditions(25.0, 40.0, 1025.0, 2.0), "clear");
        assert_eq!(conditions(8.0, 98.0, 1015.0, 1.0), "fog");
    }
}
