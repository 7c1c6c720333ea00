//! Topics: name rules, per-topic configs, and the metadata file that keeps them across
//! restarts.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::log::LogConfig;

/// Longest legal topic name (Kafka's limit: 249 characters).
pub const MAX_NAME_LEN: usize = 249;

/// Why a topic name is refused.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name cannot be {name:?}"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "topic name is longer than {MAX_NAME_LEN} characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name {name:?} contains {c:?}: legal characters are ASCII letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Names that collide once '.' and '_' are treated alike (Kafka's metric names do so).
pub fn collision_key(name: &str) -> String {
    name.replace('.', "_")
}

/// Kafka's defaults for what the broker does not take from [`LogConfig`].
pub const DEFAULT_MAX_MESSAGE_BYTES: i64 = 1_048_588;

/// The topic configs this broker understands, in the order they are described.
pub const TOPIC_CONFIGS: &[&str] = &[
    "cleanup.policy",
    "retention.ms",
    "retention.bytes",
    "segment.bytes",
    "segment.ms",
    "max.message.bytes",
    "min.insync.replicas",
];

/// Kafka's config type codes (DescribeConfigs v3+).
pub fn config_type(name: &str) -> i8 {
    match name {
        "cleanup.policy" => 7,
        "min.insync.replicas" => 3,
        "segment.bytes" | "max.message.bytes" => 3,
        _ => 5,
    }
}

/// The value a topic gets when it does not set `name`.
pub fn default_value(name: &str, defaults: &LogConfig) -> Option<String> {
    Some(match name {
        "cleanup.policy" => "delete".into(),
        "retention.ms" => defaults.retention_ms.unwrap_or(-1).to_string(),
        "retention.bytes" => defaults
            .retention_bytes
            .map_or(-1, |b| b as i64)
            .to_string(),
        "segment.bytes" => defaults.segment_bytes.to_string(),
        "segment.ms" => defaults
            .segment_ms
            .map_or(i64::MAX, |m| m as i64)
            .to_string(),
        "max.message.bytes" => DEFAULT_MAX_MESSAGE_BYTES.to_string(),
        "min.insync.replicas" => "1".into(),
        _ => return None,
    })
}

/// Checks one config value; the normalised value to store.
pub fn validate_config(name: &str, value: &str) -> Result<String, String> {
    let long = |min: i64| -> Result<String, String> {
        let v: i64 = value
            .trim()
            .parse()
            .map_err(|_| format!("{name}={value:?} is not a number"))?;
        if v < min {
            return Err(format!("{name}={v} is below {min}"));
        }
        Ok(v.to_string())
    };
    match name {
        "cleanup.policy" => {
            if value.trim() == "delete" {
                Ok("delete".into())
            } else {
                Err(format!(
                    "cleanup.policy={value:?} is not supported: only \"delete\""
                ))
            }
        }
        "retention.ms" | "retention.bytes" => long(-1),
        "segment.bytes" => {
            let v = long(14)?;
            if v.parse::<i64>().unwrap_or(0) > i32::MAX as i64 {
                return Err(format!("segment.bytes={v} is above {}", i32::MAX));
            }
            Ok(v)
        }
        "segment.ms" => long(1),
        "max.message.bytes" => {
            let v = long(0)?;
            if v.parse::<i64>().unwrap_or(0) > i32::MAX as i64 {
                return Err(format!("max.message.bytes={v} is above {}", i32::MAX));
            }
            Ok(v)
        }
        // One node holds the only replica: above 1, acks=all writes are refused
        // (NOT_ENOUGH_REPLICAS), as on a Kafka cluster with too few in-sync replicas.
        "min.insync.replicas" => {
            let v = long(1)?;
            if v.parse::<i64>().unwrap_or(0) > i32::MAX as i64 {
                return Err(format!("min.insync.replicas={v} is above {}", i32::MAX));
            }
            Ok(v)
        }
        other => Err(format!("unknown or unsupported topic config {other:?}")),
    }
}

/// The log settings of a topic: the broker's defaults overridden by the topic's configs.
pub fn log_config(configs: &BTreeMap<String, String>, defaults: &LogConfig) -> LogConfig {
    let mut c = defaults.clone();
    let num = |k: &str| configs.get(k).and_then(|v| v.parse::<i64>().ok());
    if let Some(v) = num("retention.ms") {
        c.retention_ms = (v >= 0).then_some(v);
    }
    if let Some(v) = num("retention.bytes") {
        c.retention_bytes = (v >= 0).then_some(v as u64);
    }
    if let Some(v) = num("segment.bytes") {
        c.segment_bytes = v.max(14) as u64;
    }
    if let Some(v) = num("segment.ms") {
        c.segment_ms = (v > 0 && v < i64::MAX).then_some(v as u64);
    }
    c
}

pub fn max_message_bytes(configs: &BTreeMap<String, String>) -> i64 {
    configs
        .get("max.message.bytes")
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_MESSAGE_BYTES)
}

/// `min.insync.replicas` of a topic (1 when unset).
pub fn min_insync_replicas(configs: &BTreeMap<String, String>) -> i64 {
    configs
        .get("min.insync.replicas")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// One topic as stored in the metadata file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TopicMeta {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    pub configs: BTreeMap<String, String>,
}

/// The broker's metadata file.
#[derive(Clone, Debug, Serialize, Deserialize, Default)]
pub struct MetaFile {
    pub cluster_id: String,
    /// Next producer id to hand out: ids stay unique across restarts.
    pub next_producer_id: i64,
    pub topics: Vec<TopicMeta>,
}

pub const META_FILE: &str = "streamhub-broker.json";

impl MetaFile {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(META_FILE)
    }

    pub fn load(dir: &Path) -> std::io::Result<Option<MetaFile>> {
        match std::fs::read(Self::path(dir)) {
            Ok(raw) => serde_json::from_slice(&raw).map(Some).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", Self::path(dir).display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Written to a temporary file, synced, then renamed over the old one.
    pub fn store(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join(format!("{META_FILE}.tmp"));
        let raw = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&raw)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, Self::path(dir))?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// Kafka's directory of one partition's log.
pub fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_names_pass() {
        for name in [
            "a",
            "orders",
            "sensor_data",
            "a.b-c_d",
            "A9",
            &"x".repeat(249),
        ] {
            assert_eq!(validate_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn illegal_names_are_refused() {
        for name in ["", ".", "..", "a b", "a/b", "ä", "a:b", &"x".repeat(250)] {
            assert!(validate_name(name).is_err(), "{name:?} accepted");
        }
    }

    #[test]
    fn dot_and_underscore_collide() {
        assert_eq!(collision_key("a.b"), collision_key("a_b"));
        assert_ne!(collision_key("a.b"), collision_key("a-b"));
    }

    #[test]
    fn configs_are_checked() {
        assert_eq!(validate_config("retention.ms", " 1000 "), Ok("1000".into()));
        assert_eq!(validate_config("retention.bytes", "-1"), Ok("-1".into()));
        assert!(validate_config("retention.ms", "-2").is_err());
        assert!(validate_config("cleanup.policy", "compact").is_err());
        assert!(validate_config("segment.bytes", "10").is_err());
        assert!(validate_config("flush.ms", "10").is_err());
    }

    #[test]
    fn topic_configs_override_defaults() {
        let mut configs = BTreeMap::new();
        configs.insert("retention.ms".to_string(), "-1".to_string());
        configs.insert("segment.bytes".to_string(), "1048576".to_string());
        let c = log_config(&configs, &LogConfig::default());
        assert_eq!(c.retention_ms, None);
        assert_eq!(c.segment_bytes, 1048576);
    }
}
