//! A single-node broker speaking the Kafka protocol.

pub mod groups;
