//! The embedded Kafka-compatible broker (tansu), run in-process on a task streamhub owns.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context as _;
use tansu_broker::broker::Broker;
use tansu_broker::coordinator::group::administrator::Controller;
use tansu_storage::StorageContainer;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::error::KafkaError;

/// Cluster id stored with the data: a restart on the same storage must keep it.
const CLUSTER_ID: &str = crate::EMBEDDED_CLUSTER_ID;
const NODE_ID: i32 = tansu_broker::NODE_ID;
/// Bound on start (storage open + listener ready).
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the broker keeps its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Storage {
    /// SQLite database file (durable). A relative path is taken from the current directory.
    Sqlite(PathBuf),
    /// Kept in memory, lost at stop.
    Memory,
}

impl FromStr for Storage {
    type Err = KafkaError;

    /// `sqlite:///absolute/path`, `sqlite://relative/path` or `memory://`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "memory://" || s == "memory" {
            return Ok(Storage::Memory);
        }
        if let Some(path) = s.strip_prefix("sqlite://") {
            if path.is_empty() || path.ends_with('/') {
                return Err(KafkaError::Config(format!(
                    "storage {s:?} names no database file (sqlite:///absolute/path/broker.db)"
                )));
            }
            return Ok(Storage::Sqlite(PathBuf::from(path)));
        }
        Err(KafkaError::Config(format!(
            "unsupported storage {s:?}: use sqlite:///absolute/path, sqlite://relative/path or memory://"
        )))
    }
}

impl fmt::Display for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Storage::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
            Storage::Memory => f.write_str("memory://"),
        }
    }
}

impl Storage {
    /// The URL tansu's storage engine resolves to this storage.
    ///
    /// tansu's SQLite engine opens `current_dir/<host>/<path without its leading '/'>`. With an
    /// empty host and a path that starts with `//`, the stripped path is still absolute and
    /// replaces the current directory, so `sqlite:////abs/file.db` opens `/abs/file.db`
    /// whatever the current directory is. Relative paths are made absolute first.
    fn tansu_url(&self) -> Result<Url, KafkaError> {
        match self {
            Storage::Memory => Ok(Url::parse("memory://").expect("static URL")),
            Storage::Sqlite(path) => {
                let absolute = absolute(path)?;
                let text = absolute.to_str().ok_or_else(|| {
                    KafkaError::Config(format!(
                        "storage path {} is not valid UTF-8",
                        absolute.display()
                    ))
                })?;
                let url = Url::parse(&format!("sqlite:///{text}")).map_err(|e| {
                    KafkaError::Config(format!("storage path {text:?} is not usable: {e}"))
                })?;
                // tansu reads the path as written in the URL, escapes included: refuse paths
                // the URL would alter (spaces, '%', '?', '#', "..").
                if url.path() != format!("/{text}") || url.query().is_some() {
                    return Err(KafkaError::Config(format!(
                        "storage path {text:?} has characters the embedded broker cannot store \
                         under (spaces, '%', '?', '#' or '..'): choose another directory"
                    )));
                }
                Ok(url)
            }
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

    /// sqlite:///absolute/path, sqlite://relative/path or memory:// [default: sqlite file
    /// broker.db in the data directory]
    #[arg(long, env = "STREAMHUB_BROKER_STORAGE")]
    pub storage: Option<String>,

    /// Directory for streamhub's data.
    #[arg(long, env = "STREAMHUB_DATA_DIR", default_value = "./streamhub-data")]
    pub data_dir: PathBuf,
}

impl BrokerArgs {
    pub fn config(&self) -> Result<BrokerConfig, KafkaError> {
        let storage = match &self.storage {
            Some(s) => s.parse()?,
            None => Storage::Sqlite(self.data_dir.join("broker.db")),
        };
        Ok(BrokerConfig {
            listen: self.listen,
            advertised: self.advertised_listener.clone(),
            storage,
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
}

impl BrokerConfig {
    /// Loopback on a free port, data in memory: for tests.
    pub fn ephemeral() -> Self {
        BrokerConfig {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            advertised: None,
            storage: Storage::Memory,
        }
    }

    /// Loopback on a free port with SQLite storage at `path`.
    pub fn sqlite(path: impl Into<PathBuf>) -> Self {
        BrokerConfig {
            storage: Storage::Sqlite(path.into()),
            ..BrokerConfig::ephemeral()
        }
    }
}

/// A running embedded broker.
pub struct EmbeddedBroker {
    task: JoinHandle<Result<(), String>>,
    listen: SocketAddr,
    advertised: String,
    storage: Storage,
}

impl fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedBroker")
            .field("listen", &self.listen)
            .field("advertised", &self.advertised)
            .field("storage", &self.storage)
            .finish()
    }
}

enum StartError {
    /// The port was taken between choosing it and binding it.
    PortTaken,
    Fatal(KafkaError),
}

impl EmbeddedBroker {
    /// Starts the broker and returns once it accepts connections. Port 0 picks a free port.
    pub async fn start(config: BrokerConfig) -> Result<EmbeddedBroker, KafkaError> {
        let url = config.storage.tansu_url()?;
        if let Storage::Sqlite(path) = &config.storage {
            let path = absolute(path)?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    KafkaError::Config(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
        }
        let pick_port = config.listen.port() == 0;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let listen = if pick_port {
                free_port(config.listen.ip())?
            } else {
                check_port_free(config.listen)?;
                config.listen
            };
            match Self::start_on(listen, &config, url.clone()).await {
                Ok(broker) => return Ok(broker),
                Err(StartError::PortTaken) if pick_port && attempts < 5 => continue,
                Err(StartError::PortTaken) => return Err(KafkaError::PortInUse(listen)),
                Err(StartError::Fatal(e)) => return Err(e),
            }
        }
    }

    async fn start_on(
        listen: SocketAddr,
        config: &BrokerConfig,
        storage_url: Url,
    ) -> Result<EmbeddedBroker, StartError> {
        let advertised = match &config.advertised {
            Some(a) => a.clone(),
            None if listen.ip().is_unspecified() => {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port()).to_string()
            }
            None => listen.to_string(),
        };
        let fatal = |e: String| StartError::Fatal(KafkaError::Embedded(e));
        let listener_url = Url::parse(&format!("tcp://{listen}"))
            .map_err(|e| fatal(format!("listen address {listen}: {e}")))?;
        let advertised_url = Url::parse(&format!("tcp://{advertised}")).map_err(|e| {
            StartError::Fatal(KafkaError::Config(format!(
                "advertised listener {advertised:?} is not host:port: {e}"
            )))
        })?;
        if advertised_url.port().is_none() {
            return Err(StartError::Fatal(KafkaError::Config(format!(
                "advertised listener {advertised:?} needs a port"
            ))));
        }

        // A broker stopped just before may still be closing the same SQLite file
        // (checkpointing its WAL): a locked database is retried until the start bound.
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        let mut broker = loop {
            let built = tokio::time::timeout_at(
                deadline,
                Broker::<Controller<StorageContainer>, StorageContainer>::builder()
                    .node_id(NODE_ID)
                    .cluster_id(CLUSTER_ID)
                    .incarnation_id(uuid::Uuid::new_v4())
                    .advertised_listener(advertised_url.clone())
                    .storage(storage_url.clone())
                    .listener(listener_url.clone())
                    .silent(true)
                    .build(),
            )
            .await
            .map_err(|_| fatal(format!("opening storage took more than {START_TIMEOUT:?}")))?;
            match built {
                Ok(broker) => break broker,
                Err(e) => {
                    let reason = format!("{e:?}");
                    if reason.contains("database is locked")
                        && tokio::time::Instant::now() + Duration::from_millis(50) < deadline
                    {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                    if reason.contains("database is locked") {
                        return Err(fatal(format!(
                            "storage {} is locked: is another broker using it?",
                            config.storage
                        )));
                    }
                    return Err(fatal(format!(
                        "opening storage {}: {reason}",
                        config.storage
                    )));
                }
            }
        };

        let task = tokio::spawn(async move {
            broker
                .serve(tokio::time::Instant::now())
                .await
                .map_err(|e| match e {
                    tansu_broker::Error::Io(io) if io.kind() == std::io::ErrorKind::AddrInUse => {
                        "address in use".to_owned()
                    }
                    other => format!("{other:?}"),
                })
        });

        // Ready when the listener accepts a connection; a failed bind ends the task instead.
        let probe = if listen.ip().is_unspecified() {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
        } else {
            listen
        };
        loop {
            if task.is_finished() {
                let outcome = task
                    .await
                    .map_err(|e| fatal(format!("broker task failed: {e}")))?;
                return Err(match outcome {
                    Err(e) if e == "address in use" => StartError::PortTaken,
                    Err(e) => fatal(e),
                    Ok(()) => fatal("broker stopped during start".into()),
                });
            }
            if tokio::net::TcpStream::connect(probe).await.is_ok() {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                task.abort();
                return Err(fatal(format!(
                    "not accepting connections on {listen} after {START_TIMEOUT:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(EmbeddedBroker {
            task,
            listen,
            advertised,
            storage: config.storage.clone(),
        })
    }

    /// `host:port` to give clients as bootstrap servers.
    pub fn bootstrap_servers(&self) -> String {
        self.advertised.clone()
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Resolves if the broker stops on its own (it should not): the reason.
    pub async fn failed(&mut self) -> KafkaError {
        match (&mut self.task).await {
            Ok(Ok(())) => KafkaError::Embedded("broker stopped".into()),
            Ok(Err(e)) => KafkaError::Embedded(e),
            Err(e) => KafkaError::Embedded(format!("broker task failed: {e}")),
        }
    }

    /// Stops the broker: closes the listener and every connection.
    ///
    /// A produce is acknowledged only after its SQLite transaction committed, so stopping
    /// between requests or in the middle of one loses nothing that was acknowledged; an
    /// unacknowledged request is retried by the client's idempotent producer elsewhere.
    pub async fn shutdown(self) -> Result<(), KafkaError> {
        self.task.abort();
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(KafkaError::Embedded(e)),
            Err(e) if e.is_cancelled() => Ok(()),
            Err(e) => Err(KafkaError::Embedded(format!("broker task failed: {e}"))),
        }
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

/// A port free right now on `ip` (tansu needs the concrete port to advertise it).
fn free_port(ip: IpAddr) -> Result<SocketAddr, KafkaError> {
    let listener = TcpListener::bind(SocketAddr::new(ip, 0))
        .map_err(|e| KafkaError::Embedded(format!("cannot find a free port on {ip}: {e}")))?;
    listener
        .local_addr()
        .map_err(|e| KafkaError::Embedded(format!("cannot find a free port on {ip}: {e}")))
}

/// `streamhub broker`: runs until `shutdown` is cancelled (SIGINT/SIGTERM in the binary).
pub async fn run(args: BrokerArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    let config = args.config()?;
    let started = std::time::Instant::now();
    let mut broker = EmbeddedBroker::start(config).await?;
    tracing::info!(
        listen = %broker.listen_addr(),
        advertised = %broker.bootstrap_servers(),
        storage = %broker.storage(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "embedded Kafka-compatible broker ready"
    );
    if broker.storage() == &Storage::Memory {
        tracing::warn!(
            "memory:// storage: data is lost at stop, and its watermarks (message totals, lag) \
             are wrong in tansu 0.6.0; use sqlite:// where figures matter"
        );
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
