//! The TCP server: accept loop, one task per connection handling its requests in order, the
//! background retention and flush task, and shutdown.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::auth::sasl::Session;
use crate::frame::{self, FrameError};
use crate::log::FlushPolicy;
use crate::state::{State, StateConfig};
use crate::{BrokerConfig, BrokerError, Shared, api};

pub(crate) struct Running {
    pub state: Shared,
    shutdown: watch::Sender<bool>,
    pub failed: watch::Receiver<Option<String>>,
    accept: Option<tokio::task::JoinHandle<()>>,
    background: Option<tokio::task::JoinHandle<()>>,
    _lock: File,
    _temp: Option<tempfile::TempDir>,
}

pub(crate) async fn start(
    config: BrokerConfig,
) -> Result<(Running, SocketAddr, String), BrokerError> {
    let (temp, data_dir) = match &config.data_dir {
        Some(dir) => (None, dir.clone()),
        None => {
            let temp = tempfile::Builder::new()
                .prefix("streamhub-broker-")
                .tempdir()
                .map_err(|source| BrokerError::DataDir {
                    path: std::env::temp_dir(),
                    source,
                })?;
            let path = temp.path().to_path_buf();
            (Some(temp), path)
        }
    };
    let dir_err = |source| BrokerError::DataDir {
        path: data_dir.clone(),
        source,
    };
    std::fs::create_dir_all(&data_dir).map_err(dir_err)?;
    let lock = lock_data_dir(&data_dir)?;

    let listener =
        TcpListener::bind(config.listen)
            .await
            .map_err(|source| BrokerError::Listen {
                addr: config.listen,
                source,
            })?;
    let listen = listener
        .local_addr()
        .map_err(|source| BrokerError::Listen {
            addr: config.listen,
            source,
        })?;
    let advertised = match &config.advertised {
        Some(a) => a.clone(),
        None if listen.ip().is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port()).to_string()
        }
        None => listen.to_string(),
    };
    let (host, port) =
        split_host_port(&advertised).ok_or_else(|| BrokerError::Advertised(advertised.clone()))?;

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let state = State::open(StateConfig {
        data_dir: data_dir.clone(),
        host,
        port,
        defaults: config.log.clone(),
        default_partitions: config.default_partitions.max(1),
        max_frame_bytes: config.max_frame_bytes,
        cluster_id: config.cluster_id.clone(),
        shutdown: shutdown_rx.clone(),
        security: config.security.clone(),
    })
    .map_err(BrokerError::Storage)?;
    let state = Arc::new(state);

    let (failed_tx, failed_rx) = watch::channel(None);
    let accept = tokio::spawn(accept_loop(
        listener,
        state.clone(),
        shutdown_rx.clone(),
        failed_tx,
    ));
    let background = tokio::spawn(background(
        state.clone(),
        shutdown_rx,
        config.retention_check_interval,
        config.log.flush,
    ));
    tracing::info!(%listen, %advertised, data_dir = %data_dir.display(), "broker started");
    Ok((
        Running {
            state,
            shutdown: shutdown_tx,
            failed: failed_rx,
            accept: Some(accept),
            background: Some(background),
            _lock: lock,
            _temp: temp,
        },
        listen,
        advertised,
    ))
}

fn lock_data_dir(dir: &std::path::Path) -> Result<File, BrokerError> {
    let path = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| BrokerError::DataDir {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(BrokerError::Locked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(source)) => Err(BrokerError::DataDir { path, source }),
    }
}

/// `host:port`, `[v6]:port`; the port must be a number.
fn split_host_port(s: &str) -> Option<(String, i32)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), port as i32))
}

impl Running {
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(accept) = self.accept.take() {
            let _ = accept.await;
        }
        if let Some(background) = self.background.take() {
            let _ = background.await;
        }
        self.state.groups.shutdown();
        let state = self.state.clone();
        let _ = tokio::task::spawn_blocking(move || flush_all(&state)).await;
        tracing::info!("broker stopped");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

fn flush_all(state: &State) {
    for topic in state.all_topics() {
        for p in &topic.partitions {
            if let Err(e) = p.log().flush() {
                tracing::warn!(topic = %topic.name, partition = p.index, error = %e, "flush failed");
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Shared,
    mut shutdown: watch::Receiver<bool>,
    failed: watch::Sender<Option<String>>,
) {
    let mut connections = JoinSet::new();
    let mut consecutive_errors = 0u32;
    let for_connections = shutdown.clone();
    loop {
        tokio::select! {
            _ = crate::stopped(&mut shutdown) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    consecutive_errors = 0;
                    let _ = stream.set_nodelay(true);
                    connections.spawn(connection(stream, peer, state.clone(), for_connections.clone()));
                }
                Err(e) if listener_broken(&e) => {
                    tracing::error!(error = %e, "the listener is broken");
                    let _ = failed.send(Some(format!("accepting connections failed: {e}")));
                    break;
                }
                Err(e) => {
                    // Out of file descriptors, an aborted handshake ...: back off (up to a
                    // second) and keep serving the connections already open.
                    consecutive_errors = consecutive_errors.saturating_add(1);
                    if consecutive_errors == 1 || consecutive_errors.is_power_of_two() {
                        tracing::warn!(error = %e, consecutive_errors, "accept failed");
                    }
                    let backoff = 10u64.saturating_mul(consecutive_errors.into()).min(1000);
                    tokio::select! {
                        _ = crate::stopped(&mut shutdown) => break,
                        _ = tokio::time::sleep(Duration::from_millis(backoff)) => {}
                    }
                }
            }
        }
    }
    drop(listener);
    // Connections watch the same shutdown signal and end at their next step.
    let deadline = tokio::time::sleep(Duration::from_secs(5));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            next = connections.join_next() => if next.is_none() { break },
            _ = &mut deadline => { connections.abort_all(); break }
        }
    }
}

/// Accept errors that no retry can cure: the listening socket itself is gone.
fn listener_broken(e: &std::io::Error) -> bool {
    const EBADF: i32 = 9;
    const EINVAL: i32 = 22;
    const ENOTSOCK: i32 = 88;
    matches!(e.raw_os_error(), Some(EBADF | EINVAL | ENOTSOCK))
}

/// One connection: requests are read, handled and answered one at a time, in order, as
/// Kafka does.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    state: Shared,
    mut shutdown: watch::Receiver<bool>,
) {
    let (mut reader, mut writer) = stream.into_split();
    let mut reader = tokio::io::BufReader::new(&mut reader);
    let mut session = Session::new(peer, state.auth.is_some());
    loop {
        let frame = tokio::select! {
            _ = crate::stopped(&mut shutdown) => return,
            frame = frame::read_frame(&mut reader, state.max_frame_bytes) => frame,
        };
        let frame = match frame {
            Ok(None) => return,
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(e))) => {
                tracing::warn!(%peer, error = %e, "closing connection: bad frame");
                return;
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "connection read failed");
                return;
            }
        };
        let response = tokio::select! {
            _ = crate::stopped(&mut shutdown) => return,
            r = api::handle(&state, &mut session, frame) => r,
        };
        match response {
            Ok(Some(bytes)) => {
                if let Err(e) = writer.write_all(&bytes).await {
                    tracing::debug!(%peer, error = %e, "connection write failed");
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                log_close(peer, &e);
                return;
            }
        }
        if session.close_after {
            // A refused SASL handshake or a failed authentication: answered, then closed.
            let _ = writer.shutdown().await;
            return;
        }
    }
}

fn log_close(peer: SocketAddr, e: &api::RequestError) {
    match e {
        api::RequestError::Frame(FrameError::UnknownApiKey(_))
        | api::RequestError::Unsupported { .. }
        | api::RequestError::Unauthenticated { .. }
        | api::RequestError::AuthenticationFailed => {
            tracing::info!(%peer, error = %e, "closing connection")
        }
        _ => tracing::warn!(%peer, error = %e, "closing connection"),
    }
}

/// Retention every `interval`, and flushes when the policy asks for a timer.
async fn background(
    state: Shared,
    mut shutdown: watch::Receiver<bool>,
    interval: Duration,
    flush: FlushPolicy,
) {
    let mut retention = tokio::time::interval(interval.max(Duration::from_millis(10)));
    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    retention.tick().await;
    let flush_every = match flush {
        FlushPolicy::Interval(d) => Some(d.max(Duration::from_millis(1))),
        _ => None,
    };
    let mut flusher = tokio::time::interval(flush_every.unwrap_or(Duration::from_secs(3600)));
    flusher.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    flusher.tick().await;
    loop {
        tokio::select! {
            _ = crate::stopped(&mut shutdown) => return,
            _ = retention.tick() => {
                let s = state.clone();
                let _ = tokio::task::spawn_blocking(move || apply_retention(&s)).await;
            }
            _ = flusher.tick(), if flush_every.is_some() => {
                let s = state.clone();
                let _ = tokio::task::spawn_blocking(move || flush_all(&s)).await;
            }
        }
    }
}

fn apply_retention(state: &State) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    for topic in state.all_topics() {
        for p in &topic.partitions {
            let mut log = p.log();
            match log.apply_retention(now) {
                Ok(0) => {}
                Ok(n) => {
                    tracing::debug!(topic = %topic.name, partition = p.index, removed = n, "retention applied")
                }
                Err(e) => {
                    tracing::warn!(topic = %topic.name, partition = p.index, error = %e, "retention failed")
                }
            }
        }
    }
}
