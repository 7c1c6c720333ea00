//! Domain types shared by every streamhub component. Nothing here does I/O.
//!
//! - [`TopicName`]: a name Kafka accepts, checked once at the edge.
//! - [`TopicStatus`] and [`Action`]: the topic lifecycle, the one place its rules live.
//! - [`DataType`]: what a topic carries, inferred from its name when not given.
//! - [`RatePerSecond`]: the bounds of a topic's publishing rate.
//! - [`topic_limits`]: partitions, replication factor and description bounds of a request.
//! - [`consumer_group_of`]: the Kafka consumer group a user reads with.
//! - [`Envelope`]: the JSON value of every message the producer publishes.
//! - [`faults`]: the rates of the faults a generated stream carries on purpose.
//! - [`generation`]: how a producer generated a topic, recorded when it activates it.
//! - [`provisioning`]: what keeps Kafka from holding a topic as requested.
//! - [`schema`]: the JSON Schema of each data type's payload, and checking values with it.
//! - [`access`]: the Kafka ACLs that subscriptions and the lifecycle grant.
//! - [`account`]: which usernames and passwords accounts may have.
//! - [`api`]: request and response bodies of the admin service's REST API.
//! - [`traffic`]: traffic profiles, the rate curve a generated stream follows.

pub mod access;
pub mod account;
pub mod api;
mod data_type;
pub mod duration;
mod envelope;
pub mod faults;
pub mod generation;
mod lifecycle;
pub mod provisioning;
mod rate;
mod role;
pub mod schema;
mod secret;
pub mod topic_limits;
mod topic_name;
pub mod traffic;

pub use data_type::DataType;
pub use envelope::{Envelope, EnvelopeOf};
pub use lifecycle::{Action, Facts, TopicStatus, Transition, TransitionError};
pub use rate::{InvalidRate, RatePerSecond};
pub use role::Role;
pub use secret::Secret;
pub use topic_name::{InvalidTopicName, NameCollision, TopicName};

/// The Kafka consumer group of `user`'s reads: the admin reports its lag, the consumer
/// commits in it, and (with ACLs) it is the one group a user may join.
pub fn consumer_group_of(user: &str) -> String {
    format!("streamhub-{user}")
}
