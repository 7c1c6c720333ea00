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
    /// The broker refused the SASL login (or did not prove that it knows the credential).
    #[error("SASL {mechanism} login of {user:?} at {server} failed: {reason}")]
    Authentication {
        server: String,
        user: String,
        mechanism: String,
        reason: String,
    },
    /// A request answered with a Kafka error code; `name` is Kafka's name of the code.
    #[error("{what} refused by Kafka: {name} (error code {code}){}", detail(.message))]
    Refused {
        what: String,
        code: i16,
        name: String,
        message: Option<String>,
    },
    /// Some ACLs of a CreateAcls or DeleteAcls request were refused; the others were applied.
    #[error("{} of {total} ACL(s) refused: {}", .failures.len(), acl_failures(.failures))]
    Acls {
        total: usize,
        failures: Vec<AclFailure>,
    },
    /// The broker broke the protocol: an answer that does not decode or does not fit.
    #[error("unexpected answer from Kafka at {server}: {reason}")]
    Protocol { server: String, reason: String },
}

/// One refused ACL of [`KafkaError::Acls`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclFailure {
    pub acl: streamhub_model::access::Acl,
    pub code: i16,
    pub name: String,
    pub message: Option<String>,
}

fn detail(message: &Option<String>) -> String {
    match message {
        Some(m) if !m.trim().is_empty() => format!(": {}", one_line(m)),
        _ => String::new(),
    }
}

fn acl_failures(failures: &[AclFailure]) -> String {
    failures
        .iter()
        .map(|f| format!("{}: {} ({}){}", f.acl, f.name, f.code, detail(&f.message)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Broker messages may span lines; errors are one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl KafkaError {
    /// True for errors that mean "Kafka is not there", as opposed to a refused request.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, KafkaError::Unreachable { .. })
    }
}
