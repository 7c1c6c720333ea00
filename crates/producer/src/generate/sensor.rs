//! IoT sensors: a fleet whose readings drift as a mean-reverting random walk around
//! each site's climate, with batteries that drain slowly and are replaced when flat.

use rand::Rng;
use serde::Serialize;

use super::{EntityId, GenRng, KeyChooser, normal, round_to};

/// Rated range of the sensors' thermometers, °C.
pub const TEMPERATURE_RANGE: (f64, f64) = (-40.0, 85.0);
/// Battery level below which the battery is swapped for a full one.
const BATTERY_REPLACED_BELOW: f64 = 3.0;
const FLEET_SIZE: usize = 24;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SensorReading {
    pub sensor_id: EntityId,
    /// °C, one decimal.
    pub temperature: f64,
    /// Relative humidity, %, one decimal.
    pub humidity: f64,
    /// Battery charge, %, one decimal.
    pub battery: f64,
    pub location: Location,
    /// `ok`, or `low_battery` below 15 %.
    pub status: &'static str,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Location {
    pub site: &'static str,
    pub latitude: f64,
    pub longitude: f64,
}

struct Site {
    name: &'static str,
    latitude: f64,
    longitude: f64,
    /// The temperature and humidity the site's readings revert to.
    temperature: f64,
    humidity: f64,
}

const SITES: &[Site] = &[
    Site {
        name: "warehouse-berlin",
        latitude: 52.52,
        longitude: 13.405,
        temperature: 17.0,
        humidity: 45.0,
    },
    Site {
        name: "cold-storage-rotterdam",
        latitude: 51.9244,
        longitude: 4.4777,
        temperature: 3.5,
        humidity: 85.0,
    },
    Site {
        name: "greenhouse-almeria",
        latitude: 36.834,
        longitude: -2.4637,
        temperature: 27.0,
        humidity: 75.0,
    },
    Site {
        name: "office-london",
        latitude: 51.5072,
        longitude: -0.1276,
        temperature: 21.5,
        humidity: 40.0,
    },
    Site {
        name: "datacenter-dublin",
        latitude: 53.3498,
        longitude: -6.2603,
        temperature: 24.0,
        humidity: 35.0,
    },
    Site {
        name: "rooftop-oslo",
        latitude: 59.9139,
        longitude: 10.7522,
        temperature: 4.0,
        humidity: 70.0,
    },
];

struct Sensor {
    id: EntityId,
    site: &'static Site,
    /// Each device reads slightly off its site's mean.
    offset: f64,
    temperature: f64,
    humidity: f64,
    battery: f64,
    /// Percentage points lost per reading.
    drain: f64,
}

pub(super) struct SensorFleet {
    sensors: Vec<Sensor>,
}

impl SensorFleet {
    pub(super) fn new(rng: &mut GenRng) -> Self {
        let sensors = (0..FLEET_SIZE)
            .map(|i| {
                let site = &SITES[i % SITES.len()];
                let offset = normal(rng, 0.0, 0.8);
                Sensor {
                    id: EntityId::new(format!("sensor-{:03}", i + 1)),
                    site,
                    offset,
                    temperature: site.temperature + offset,
                    humidity: site.humidity,
                    battery: rng.gen_range(40.0..100.0),
                    drain: rng.gen_range(0.002..0.02),
                }
            })
            .collect();
        Self { sensors }
    }

    pub(super) fn next(&mut self, rng: &mut GenRng, keys: &mut KeyChooser) -> SensorReading {
        let i = keys.choose(rng, self.sensors.len());
        let s = &mut self.sensors[i];
        let target_t = s.site.temperature + s.offset;
        s.temperature += 0.05 * (target_t - s.temperature) + normal(rng, 0.0, 0.15);
        s.temperature = s
            .temperature
            .clamp(TEMPERATURE_RANGE.0, TEMPERATURE_RANGE.1);
        s.humidity += 0.05 * (s.site.humidity - s.humidity) + normal(rng, 0.0, 0.5);
        s.humidity = s.humidity.clamp(0.0, 100.0);
        s.battery -= s.drain * rng.gen_range(0.5..1.5);
        if s.battery < BATTERY_REPLACED_BELOW {
            s.battery = 100.0;
        }
        let battery = round_to(s.battery, 1);
        SensorReading {
            sensor_id: s.id.clone(),
            temperature: round_to(s.temperature, 1),
            humidity: round_to(s.humidity, 1),
            battery,
            location: Location {
                site: s.site.name,
                latitude: s.site.latitude,
                longitude: s.site.longitude,
            },
            status: if battery < 15.0 { "low_battery" } else { "ok" },
        }
    }
}

/// Names of the sites sensors are installed at.
pub fn site_names() -> impl Iterator<Item = &'static str> {
    SITES.iter().map(|s| s.name)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn readings_drift_instead_of_jumping() {
        let mut rng = GenRng::seed_from_u64(7);
        let mut fleet = SensorFleet::new(&mut rng);
        let mut last = std::collections::HashMap::new();
        for _ in 0..5_000 {
            let r = fleet.next(&mut rng, &mut KeyChooser::default());
            if let Some((t, b)) = last.insert(r.sensor_id.to_string(), (r.temperature, r.battery)) {
                let t: f64 = t;
                assert!((r.temperature - t).abs() < 2.0, "{t} -> {}", r.temperature);
                let b: f64 = b;
                assert!(r.battery <= b || r.battery == 100.0, "{b} -> {}", r.battery);
            }
        }
    }
}
