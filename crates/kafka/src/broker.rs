//! The embedded Kafka-compatible broker (`streamhub-broker`), run in-process on tasks of
//! the calling runtime.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use streamhub_broker::{Broker, BrokerError};
pub use streamhub_broker::{FlushPolicy, LogConfig, SaslConfig, SaslMechanism, SaslUser, Security};
use streamhub_model::duration::DurationRange;
use tokio_util::sync::CancellationToken;

use crate::error::KafkaError;

/// Cluster id stored with the data: a restart on the same storage keeps it, and
/// [`crate::Admin::is_embedded_broker`] recognises the broker by it.
const CLUSTER_ID: &str = crate::EMBEDDED_CLUSTER_ID;

/// Where the broker keeps its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// A directory of segment logs, one per partition (durable). A relative path is taken
    /// from the current directory.
    Dir(PathBuf),
    /// A temporary directory removed at stop.
    Memory,
}

impl FromStr for Storage {
    type Err = KafkaError;

    /// A directory path, or `memory://` for data removed at stop.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "memory://" || s == "memory" {
            return Ok(Storage::Memory);
        }
        if s.starts_with("sqlite:") {
            return Err(KafkaError::Config(format!(
                "storage {s:?}: the embedded broker keeps segment logs in a directory, not a \
                 SQLite file; give a directory path (or memory://)"
            )));
        }
        if s.contains("://") {
            return Err(KafkaError::Config(format!(
                "unsupported storage {s:?}: give a directory path or memory://"
            )));
        }
        if s.is_empty() {
            return Err(KafkaError::Config(
                "storage is empty: give a directory path or memory://".into(),
            ));
        }
        Ok(Storage::Dir(PathBuf::from(s)))
    }
}

impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Storage::Dir(path) => write!(f, "{}", path.display()),
            Storage::Memory => f.write_str("memory://"),
        }
    }
}

/// `path` made absolute against the current directory, `.` and `..` resolved lexically.
fn absolute(path: &Path) -> Result<PathBuf, KafkaError> {
    let joined = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()
            .map_err(|e| KafkaError::Config(format!("cannot read the current directory: {e}")))?
            .join(path)
    };
    let mut normal = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                normal.pop();
            }
            other => normal.push(other),
        }
    }
    Ok(normal)
}

/// `--flush`: `os` (the page cache; what Kafka does by default), `batch` (fsync before each
/// produce is acknowledged) or an interval of at least 1 ms such as `200ms` or `1s`.
pub fn parse_flush(text: &str) -> Result<FlushPolicy, String> {
    match text.trim() {
        "os" => Ok(FlushPolicy::Os),
        "batch" => Ok(FlushPolicy::EveryBatch),
        _ => DurationRange::at_least(Duration::from_millis(1))
            .parse(text)
            .map(FlushPolicy::Interval)
            .map_err(|e| format!("{e}, or the word os or batch")),
    }
}

/// `streamhub broker` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct BrokerArgs {
    /// Address the broker listens on (port 0 picks a free port).
    #[arg(
        long,
        env = "STREAMHUB_BROKER_LISTEN",
        default_value = "127.0.0.1:9092"
    )]
    pub listen: SocketAddr,

    /// host:port clients are told to connect to (defaults to the listen address).
    #[arg(long, env = "STREAMHUB_BROKER_ADVERTISED_LISTENER")]
    pub advertised_listener: Option<String>,

    /// Directory of the broker's segment logs, or memory:// for data removed at stop
    /// [default: broker/ in the data directory]
    #[arg(long, env = "STREAMHUB_BROKER_STORAGE")]
    pub storage: Option<String>,

    /// When appended data is fsynced: os (left to the operating system, as Kafka does; an
    /// acknowledged message survives a crash of the process, not of the machine), batch
    /// (before each produce is acknowledged) or an interval such as 1s.
    #[arg(long, env = "STREAMHUB_BROKER_FLUSH", default_value = "os", value_parser = parse_flush)]
    pub flush: FlushPolicy,

    /// Directory for streamhub's data.
    #[arg(long, env = "STREAMHUB_DATA_DIR", default_value = "./streamhub-data")]
    pub data_dir: PathBuf,

    /// Take SASL logins only (PLAIN, SCRAM-SHA-256/512) and enforce ACLs, with this super
    /// user (the admin service's login under `--kafka-security scram`, e.g.
    /// streamhub-admin), whose password is STREAMHUB_BROKER_SUPER_USER_PASSWORD.
    /// Unset: every client may do everything.
    #[arg(long, env = "STREAMHUB_BROKER_SUPER_USER", value_name = "NAME")]
    pub super_user: Option<String>,

    /// The super user's password (from the environment; never on the command line).
    #[arg(
        long,
        env = "STREAMHUB_BROKER_SUPER_USER_PASSWORD",
        hide_env_values = true,
        hide = true,
        allow_hyphen_values = true
    )]
    pub super_user_password: Option<crate::Secret>,
}

impl BrokerArgs {
    /// Open, or SASL and ACLs with the super user.
    pub fn security(&self) -> Result<Security, KafkaError> {
        let Some(name) = &self.super_user else {
            return Ok(Security::Open);
        };
        let password = self.super_user_password.as_ref().ok_or_else(|| {
            KafkaError::Config(
                "--super-user needs its password in STREAMHUB_BROKER_SUPER_USER_PASSWORD".into(),
            )
        })?;
        Ok(Security::Sasl(SaslConfig {
            super_users: vec![format!("User:{name}")],
            users: vec![SaslUser {
                name: name.clone(),
                password: password.expose().to_owned(),
            }],
            ..SaslConfig::new()
        }))
    }

    pub fn config(&self) -> Result<BrokerConfig, KafkaError> {
        let storage = match &self.storage {
            Some(s) => s.parse()?,
            None => Storage::Dir(self.data_dir.join("broker")),
        };
        Ok(BrokerConfig {
            listen: self.listen,
            advertised: self.advertised_listener.clone(),
            storage,
            flush: self.flush,
        })
    }
}

#[derive(Clone, Debug)]
pub struct BrokerConfig {
    pub listen: SocketAddr,
    /// host:port advertised to clients; `None` advertises the listen address
    /// (127.0.0.1 when listening on all interfaces).
    pub advertised: Option<String>,
    pub storage: Storage,
    pub flush: FlushPolicy,
}

impl BrokerConfig {
    /// Loopback on a free port, data removed at stop: for tests.
    pub fn ephemeral() -> Self {
        BrokerConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            advertised: None,
            storage: Storage::Memory,
            flush: FlushPolicy::Os,
        }
    }

    /// Loopback on a free port with the data kept in the directory `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        BrokerConfig {
            storage: Storage::Dir(dir.into()),
            ..BrokerConfig::ephemeral()
        }
    }
}

/// A running embedded broker.
pub struct EmbeddedBroker {
    broker: Broker,
    storage: Storage,
}

impl fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("listen", &self.broker.listen_addr())
            .field("advertised", &self.broker.bootstrap_servers())
            .field("storage", &self.storage)
            .finish()
    }
}

impl EmbeddedBroker {
    /// Starts the broker and returns once it accepts connections. Port 0 picks a free port.
    pub async fn start(config: BrokerConfig) -> Result<EmbeddedBroker, KafkaError> {
        Self::start_with_security(config, Security::Open).await
    }

    /// [`Self::start`] with SASL authentication and ACLs ([`Security::Sasl`]) or without.
    /// Credentials and ACLs are kept with the data (of a [`Storage::Dir`]).
    pub async fn start_with_security(
        config: BrokerConfig,
        security: Security,
    ) -> Result<EmbeddedBroker, KafkaError> {
        let data_dir = match &config.storage {
            Storage::Dir(path) => Some(absolute(path)?),
            Storage::Memory => None,
        };
        if config.listen.port() != 0 {
            check_port_free(config.listen)?;
        }
        let mut broker_config = streamhub_broker::BrokerConfig {
            listen: config.listen,
            advertised: config.advertised.clone(),
            data_dir,
            cluster_id: Some(CLUSTER_ID.to_owned()),
            security,
            ..streamhub_broker::BrokerConfig::ephemeral()
        };
        broker_config.log.flush = config.flush;
        let broker = Broker::start(broker_config).await.map_err(|e| match e {
            BrokerError::Listen { addr, source }
                if source.kind() == std::io::ErrorKind::AddrInUse =>
            {
                KafkaError::PortInUse(addr)
            }
            BrokerError::Advertised(_) => KafkaError::Config(e.to_string()),
            other => KafkaError::Embedded(other.to_string()),
        })?;
        Ok(EmbeddedBroker {
            broker,
            storage: config.storage,
        })
    }

    /// `host:port` to give clients as bootstrap servers.
    pub fn bootstrap_servers(&self) -> String {
        self.broker.bootstrap_servers()
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.broker.listen_addr()
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Resolves if the broker stops on its own (it should not): the reason.
    pub async fn failed(&mut self) -> KafkaError {
        KafkaError::Embedded(self.broker.failed().await.to_string())
    }

    /// Stops the broker: closes the listener and every connection, then flushes every log.
    /// A produce is acknowledged only after its batch was written to the log, so stopping
    /// loses nothing that was acknowledged.
    pub async fn shutdown(self) -> Result<(), KafkaError> {
        self.broker.shutdown().await;
        Ok(())
    }
}

/// One-line error if something already listens on `addr`.
fn check_port_free(addr: SocketAddr) -> Result<(), KafkaError> {
    match TcpListener::bind(addr) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(KafkaError::PortInUse(addr)),
        Err(e) => Err(KafkaError::Embedded(format!(
            "cannot listen on {addr}: {e}"
        ))),
    }
}

/// `streamhub broker`: runs until `shutdown` is cancelled (SIGINT/SIGTERM in the binary).
pub async fn run(args: BrokerArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let config = args.config()?;
    let security = args.security()?;
    if matches!(security, Security::Open) && !config.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %config.listen,
            "the broker is open and listens beyond loopback: any client that reaches it reads and writes every topic (--super-user turns SASL and ACLs on)"
        );
    }
    let started = std::time::Instant::now();
    let mut broker = EmbeddedBroker::start_with_security(config, security).await?;
    tracing::info!(
        listen = %broker.listen_addr(),
        advertised = %broker.bootstrap_servers(),
        storage = %broker.storage(),
        flush = ?args.flush,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "embedded Kafka-compatible broker ready"
    );
    if broker.storage() == &Storage::Memory {
        tracing::warn!("memory:// storage: the broker's data is removed at stop");
    }
    let failure = tokio::select! {
        _ = shutdown.cancelled() => None,
        e = broker.failed() => Some(e),
    };
    if let Some(e) = failure {
        return Err(e).context("the embedded broker stopped");
    }
    broker.shutdown().await?;
    tracing::info!("embedded broker stopped");
    Ok(())
}
