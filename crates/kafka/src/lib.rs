//! Kafka layer of streamhub: client configuration shared by every component, topic
//! administration, watermarks, consumer-group offsets and lag, and (feature
//! `embedded-broker`) the embedded Kafka-compatible broker.
//!
//! Every blocking librdkafka call is bounded by [`KafkaConfig::timeout`], so an unreachable
//! cluster is reported as [`KafkaError::Unreachable`] naming the bootstrap servers.

mod admin;
mod config;
mod consume;
mod error;
mod scram;
mod security;

#[cfg(feature = "embedded-broker")]
pub mod broker;

pub use admin::{
    Admin, Created, EMBEDDED_CLUSTER_ID, PartitionLag, PartitionWatermarks, TopicSpec,
};
pub use config::{
    DEFAULT_TIMEOUT, KafkaArgs, KafkaConfig, Secret, SecurityProtocol, parse_property,
};
pub use consume::commit_stored_offsets;
pub use error::{AclFailure, KafkaError};
pub use scram::ScramMechanism;
pub use security::{SCRAM_ITERATIONS, SecurityAdmin, error_name};

/// Log filter directives to add to the binary's default filter: the embedded broker logs
/// per-request detail at DEBUG and below only.
pub const LOG_FILTER_DEFAULTS: &str = "streamhub_broker=info";

/// rdkafka, re-exported so that components use the same version.
pub use rdkafka;
