use std::time::Duration;

/// Everything the Kafka layer can fail with. Messages are written for an operator:
/// they name the servers, topics and limits involved.
#[derive(thiserror::Error, Debug)]
pub enum KafkaError {
    /// No broker answered within the bounded timeout.
    #[error("no Kafka broker answered at {bootstrap} within {timeout:?}: {reason}")]
    Unreachable {
        bootstrap: String,
        timeout: Duration,
        reason: String,
    },
    #[error(
        "replication factor {asked} is more than the {brokers} broker(s) of the cluster; use at most {brokers}"
    )]
    ReplicationFactor { asked: i32, brokers: usize },
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopic { name: String, reason: String },
    #[error(
        "invalid partition count {0}: a topic has 1 to {max} partitions",
        max = streamhub_model::topic_limits::MAX_PARTITIONS
    )]
    InvalidPartitions(i32),
    #[error("invalid replication factor {0}: it must be at least 1")]
    InvalidReplicationFactor(i32),
    #[error("topic {0:?} does not exist in Kafka")]
    UnknownTopic(String),
    #[error("{0} is already in use")]
    PortInUse(std::net::SocketAddr),
    #[error("Kafka client error: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    #[error("invalid Kafka configuration: {0}")]
    Config(String),
    #[error("Kafka broker refused the request: {0}")]
    Broker(String),
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout { what: String, timeout: Duration },
    #[error("embedded broker: {0}")]
    Embedded(String),
}

impl KafkaError {
    /// True for errors that mean "Kafka is not there", as opposed to a refused request.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, KafkaError::Unreachable { .. })
    }
}
