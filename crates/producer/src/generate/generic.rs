//! Generic measurements for topics whose name implies no data type: a fixed set of
//! entities, each with a value drifting around its own level, and a few tags.

use rand::Rng;
use serde::Serialize;

use super::{EntityId, GenRng, KeyChooser, normal, round_to};

const ENTITIES: usize = 100;
pub const TAGS: &[&str] = &[
    "alpha", "beta", "canary", "prod", "staging", "eu-west", "us-east", "batch", "realtime",
];
pub const MAX_TAGS: usize = 3;
/// Values stay within this range.
pub const VALUE_RANGE: (f64, f64) = (0.0, 1000.0);

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GenericItem {
    pub id: EntityId,
    /// Two decimals, within [`VALUE_RANGE`].
    pub value: f64,
    /// One to three distinct tags from [`TAGS`].
    pub tags: Vec<&'static str>,
}

struct Entity {
    id: EntityId,
    level: f64,
    value: f64,
}

pub(super) struct GenericStream {
    entities: Vec<Entity>,
}

impl GenericStream {
    pub(super) fn new(rng: &mut GenRng) -> Self {
        let entities = (0..ENTITIES)
            .map(|i| {
                let level = rng.gen_range(10.0..900.0);
                Entity {
                    id: EntityId::new(format!("entity-{:04}", i + 1)),
                    level,
                    value: level,
                }
            })
            .collect();
        Self { entities }
    }

    pub(super) fn next(&mut self, rng: &mut GenRng, keys: &mut KeyChooser) -> GenericItem {
        let i = keys.choose(rng, self.entities.len());
        let e = &mut self.entities[i];
        e.value = (e.value + 0.1 * (e.level - e.value) + normal(rng, 0.0, e.level * 0.02))
            .clamp(VALUE_RANGE.0, VALUE_RANGE.1);
        let n = rng.gen_range(1..=MAX_TAGS);
        let mut tags = Vec::with_capacity(n);
        while tags.len() < n {
            let t = TAGS[rng.gen_range(0..TAGS.len())];
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        GenericItem {
            id: e.id.clone(),
            value: round_to(e.value, 2),
            tags,
        }
    }
}
