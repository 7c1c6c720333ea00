//! streamhub's single-node Kafka-protocol-compatible broker.
//!
//! One node (id 0) leads every partition, coordinates every group and is the controller.
//! Each partition is a log directory `<data_dir>/<topic>-<partition>/` as in Kafka; topics,
//! their ids and configs, the cluster id and the producer-id counter live in
//! `<data_dir>/streamhub-broker.json`. Committed offsets and each group's members,
//! generation and assignments live in `<data_dir>/__groups/offsets.log`, so that running
//! members go on without a rebalance across a restart.
//!
//! APIs answered (versions as advertised in ApiVersions):
//!
//! | API | versions | notes |
//! | --- | --- | --- |
//! | Produce | 3-13 | acks 0/1/-1; v13 by topic id; no transactions |
//! | Fetch | 4-17 | long poll woken by appends; no fetch sessions (session id 0); v13+ by topic id |
//! | ListOffsets | 1-10 | -1 latest, -2/-4 earliest, -3 max timestamp, by time |
//! | Metadata | 0-13 | one node (0), controller 0, topic ids; no auto-creation |
//! | OffsetForLeaderEpoch | 2-4 | a single leader epoch, 0 |
//! | ApiVersions | 0-4 | an unknown version gets the v0 UNSUPPORTED_VERSION answer |
//! | CreateTopics, DeleteTopics, CreatePartitions | 2-7, 1-6, 0-3 | replication factor 1 |
//! | DeleteRecords | 0-2 | |
//! | DescribeConfigs, IncrementalAlterConfigs | 1-4, 0-1 | topic configs; broker configs read-only |
//! | InitProducerId | 0-5 | idempotence only; ids unique across restarts |
//! | FindCoordinator, DescribeCluster | 0-6, 0-2 | node 0 |
//! | JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch, ListGroups, DescribeGroups, DeleteGroups, OffsetDelete | 0-9, 0-5, 0-4, 0-5, 2-9, 1-9, 0-5, 0-6, 0-2, 0 | [`groups::GroupCoordinator`] |
//! | SaslHandshake | 0-1 | open: no mechanism; SASL: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (v0: bare tokens) |
//! | SaslAuthenticate | 0-2 | SASL only (open: answered ILLEGAL_SASL_STATE, not advertised); no re-authentication |
//! | DescribeAcls, CreateAcls, DeleteAcls | 1-3 | open: SECURITY_DISABLED; SASL: Topic, Group, Cluster, TransactionalId ACLs |
//! | DescribeUserScramCredentials, AlterUserScramCredentials | 0, 0 | SASL only |
//!
//! Any other API (transactions, KIP-848 groups ...) closes the connection, as Kafka
//! does for a request it cannot parse or has not enabled.
//!
//! Security ([`BrokerConfig::security`]): [`Security::Open`] (the default) serves everyone
//! everything. [`Security::Sasl`] authenticates each connection before answering anything
//! but ApiVersions and SaslHandshake, and authorizes each request against ACLs as Kafka's
//! `StandardAuthorizer` with `allow.everyone.if.no.acl.found=false`: super users bypass,
//! DENY wins, Read/Write/Delete/Alter imply Describe. SCRAM credentials (salt and derived
//! keys only) and ACLs live in `<data_dir>/streamhub-security.json`; PLAIN logins are
//! checked against the SCRAM credentials.
//!
//! ```no_run
//! # async fn run() -> Result<(), streamhub_broker::BrokerError> {
//! let broker = streamhub_broker::Broker::start(streamhub_broker::BrokerConfig::ephemeral()).await?;
//! println!("bootstrap.servers={}", broker.bootstrap_servers());
//! broker.shutdown().await;
//! # Ok(()) }
//! ```

pub mod groups;
pub mod log;

mod api;
mod auth;
mod frame;
mod server;
mod state;
mod topics;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use crate::auth::{SaslConfig, SaslMechanism, SaslUser, Security};
pub use crate::log::{FlushPolicy, LogConfig};
pub use crate::topics::validate_name as validate_topic_name;

/// Default largest request frame accepted (100 MiB, Kafka's `socket.request.max.bytes`).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 100 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct BrokerConfig {
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// `host:port` told to clients; `None` advertises the bound address (127.0.0.1 when
    /// listening on all interfaces).
    pub advertised: Option<String>,
    /// Where topics and logs live; `None` uses a temporary directory removed at stop.
    pub data_dir: Option<PathBuf>,
    /// Log settings of new topics (topic configs override them).
    pub log: LogConfig,
    /// Partitions of a topic created with `num_partitions = -1`.
    pub default_partitions: i32,
    /// Requests larger than this close their connection.
    pub max_frame_bytes: usize,
    /// How often retention is applied to every partition.
    pub retention_check_interval: Duration,
    /// Cluster id of a new data directory (`None`: a random one, as Kafka's). It is stored
    /// with the data; starting with another id on an existing directory is refused.
    pub cluster_id: Option<String>,
    /// Open (no authentication, every client may do everything: the default) or SASL with
    /// ACL authorization.
    pub security: Security,
}

impl BrokerConfig {
    /// Loopback on a free port, data in a temporary directory: for tests.
    pub fn ephemeral() -> Self {
        BrokerConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            advertised: None,
            data_dir: None,
            log: LogConfig::default(),
            default_partitions: 1,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            retention_check_interval: Duration::from_secs(300),
            cluster_id: None,
            security: Security::Open,
        }
    }

    /// Loopback on a free port with data kept in `dir`.
    pub fn with_data_dir(dir: impl Into<PathBuf>) -> Self {
        BrokerConfig {
            data_dir: Some(dir.into()),
            ..BrokerConfig::ephemeral()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("data directory {0} is in use by another broker (lock file {0}/.lock is held)")]
    Locked(PathBuf),
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("advertised listener {0:?} is not host:port")]
    Advertised(String),
    #[error("cannot open the broker's data: {0}")]
    Storage(String),
    #[error("broker stopped: {0}")]
    Stopped(String),
}

/// A running broker.
pub struct Broker {
    inner: server::Running,
    listen: SocketAddr,
    advertised: String,
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("listen", &self.listen)
            .field("advertised", &self.advertised)
            .finish()
    }
}

impl Broker {
    /// Opens the data, binds the listener and returns once connections are accepted.
    pub async fn start(config: BrokerConfig) -> Result<Broker, BrokerError> {
        let (inner, listen, advertised) = server::start(config).await?;
        Ok(Broker {
            inner,
            listen,
            advertised,
        })
    }

    /// `host:port` to give clients as `bootstrap.servers`.
    pub fn bootstrap_servers(&self) -> String {
        self.advertised.clone()
    }

    /// The bound address (the real port when started on port 0).
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    /// The data directory in use.
    pub fn data_dir(&self) -> PathBuf {
        self.inner.state.data_dir.clone()
    }

    /// Resolves only if the broker stops on its own, with the reason.
    pub async fn failed(&self) -> BrokerError {
        let mut rx = self.inner.failed.clone();
        loop {
            if let Some(reason) = rx.borrow_and_update().clone() {
                return BrokerError::Stopped(reason);
            }
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Closes the listener and every connection, then flushes every log.
    pub async fn shutdown(self) {
        self.inner.shutdown().await;
    }
}

pub(crate) type Shared = Arc<state::State>;

/// Resolves once shutdown is signalled (or its sender is gone).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}
