//! Connections before they become requests: the accept loop of plain HTTP and HTTPS,
//! with the bounds that keep idle, half-sent and too many connections from using up the
//! process's file descriptors (the request timeout only starts once a request's head is in).
//!
//! - a request head (HTTP/1) or the TLS handshake must arrive within the header-read
//!   timeout, and so must the first bytes that tell HTTP/1 from HTTP/2;
//! - a connection on which no byte moves either way for the idle timeout is closed;
//! - connections are capped per client address and in all; a refused one is closed at once.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use ipnet::IpNet;
use openssl::ssl::{Ssl, SslAcceptor};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::limits::{Limits, address_key};

/// Length of HTTP/2's connection preface, which the server reads to tell the protocols apart.
const PREFACE_LEN: u64 = 24;
/// At most one log line per this long for each kind of refusal; a flood is summed up.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` (over TLS with `tls`) until `shutdown` resolves; then stops
/// accepting, calls `stopping` and waits for open requests to finish.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &Limits,
    tls: Option<Arc<SslAcceptor>>,
    shutdown: impl Future<Output = ()> + Send,
    stopping: impl FnOnce(),
) -> io::Result<()> {
    let gate = Arc::new(Gate::new(limits));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    let bounds = Bounds {
        header_read: limits.header_read_timeout,
        idle: limits.idle_timeout,
    };
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        let Some(permit) = gate.admit(peer.ip()) else {
            continue; // Dropping the stream closes it.
        };
        let _ = stream.set_nodelay(true);
        let (app, builder, tls, watcher) = (
            app.clone(),
            builder.clone(),
            tls.clone(),
            graceful.watcher(),
        );
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                // The peer address feeds the sign-in limits per address.
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req)
            });
            let ended = match tls {
                None => {
                    let io = TokioIo::new(Bounded::new(stream, bounds));
                    let conn = builder.serve_connection(io, service);
                    watcher.watch(conn.into_owned()).await
                }
                Some(acceptor) => {
                    let Some(stream) = handshake(&acceptor, stream, bounds.header_read).await
                    else {
                        return;
                    };
                    // The bounds count from the end of the handshake, on the decrypted bytes.
                    let io = TokioIo::new(Bounded::new(stream, bounds));
                    let conn = builder.serve_connection(io, service);
                    watcher.watch(conn.into_owned()).await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    stopping();
    graceful.shutdown().await;
    Ok(())
}

/// The TLS handshake, bounded by the header-read timeout.
async fn handshake(
    acceptor: &SslAcceptor,
    io: TcpStream,
    limit: Duration,
) -> Option<tokio_openssl::SslStream<TcpStream>> {
    let ssl = Ssl::new(acceptor.context()).ok()?;
    let mut stream = tokio_openssl::SslStream::new(ssl, io).ok()?;
    match tokio::time::timeout(limit, Pin::new(&mut stream).accept()).await {
        Ok(Ok(())) => Some(stream),
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => None,
    }
}

/// As hyper's own server loops: errors of one connection are skipped; others (such as
/// running out of file descriptors) pause accepting for a moment instead of spinning.
async fn accept_error(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    ) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Open connections per client address and in all.
struct Gate {
    max_total: usize,
    max_per_address: usize,
    /// Reverse proxies carry many clients on one address: only the total applies to them.
    trusted_proxies: Vec<IpNet>,
    open: Mutex<Open>,
    refusals: Mutex<RefusalLog>,
}

#[derive(Default)]
struct Open {
    total: usize,
    per_address: HashMap<IpAddr, usize>,
}

#[derive(Default)]
struct RefusalLog {
    last: Option<Instant>,
    unlogged: u64,
}

/// One admitted connection; dropping it frees its place.
struct Permit {
    gate: Arc<Gate>,
    address: Option<IpAddr>,
}

impl Gate {
    fn new(limits: &Limits) -> Self {
        Gate {
            max_total: limits.max_connections,
            max_per_address: limits.max_connections_per_address,
            trusted_proxies: limits.trusted_proxies.clone(),
            open: Mutex::default(),
            refusals: Mutex::default(),
        }
    }

    fn lock_open(&self) -> std::sync::MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn admit(self: &Arc<Self>, peer: IpAddr) -> Option<Permit> {
        let trusted = self
            .trusted_proxies
            .iter()
            .any(|net| net.contains(&peer.to_canonical()));
        let address = (!trusted).then(|| address_key(peer));
        let mut open = self.lock_open();
        if open.total >= self.max_total {
            let total = open.total;
            drop(open);
            self.refused(peer, || {
                format!("{total} connections are open in all (--max-connections)")
            });
            return None;
        }
        if let Some(address) = address {
            let count = open.per_address.entry(address).or_insert(0);
            if *count >= self.max_per_address {
                let count = *count;
                drop(open);
                self.refused(peer, || {
                    format!(
                        "{count} connections from this address are open (--max-connections-per-address)"
                    )
                });
                return None;
            }
            *count += 1;
        }
        open.total += 1;
        Some(Permit {
            gate: Arc::clone(self),
            address,
        })
    }

    /// Logs a refusal, at most once per [`REFUSAL_LOG_EVERY`] with the count since.
    fn refused(&self, peer: IpAddr, why: impl FnOnce() -> String) {
        let mut log = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if log
            .last
            .is_some_and(|last| now.duration_since(last) < REFUSAL_LOG_EVERY)
        {
            log.unlogged += 1;
            return;
        }
        let earlier = std::mem::take(&mut log.unlogged);
        log.last = Some(now);
        drop(log);
        tracing::warn!(
            %peer,
            refused_since_last_report = earlier,
            "refused a connection: {}",
            why()
        );
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.gate.lock_open();
        open.total -= 1;
        if let Some(address) = self.address
            && let Some(count) = open.per_address.get_mut(&address)
        {
            *count -= 1;
            if *count == 0 {
                open.per_address.remove(&address);
            }
        }
    }
}

#[derive(Clone, Copy)]
struct Bounds {
    header_read: Duration,
    idle: Duration,
}

/// A stream that fails with `TimedOut` once no byte moved either way for the idle
/// timeout, or once the header-read timeout passed before the first bytes (those that
/// tell HTTP/1 from HTTP/2) arrived.
struct Bounded<S> {
    inner: S,
    idle: Duration,
    /// Until the preface length was read: when that must have happened.
    first_bytes_by: Option<Instant>,
    read: u64,
    last_activity: Instant,
    timer: Pin<Box<Sleep>>,
}

impl<S> Bounded<S> {
    fn new(inner: S, bounds: Bounds) -> Self {
        let now = Instant::now();
        let first_bytes_by = now + bounds.header_read;
        Bounded {
            inner,
            idle: bounds.idle,
            first_bytes_by: Some(first_bytes_by),
            read: 0,
            last_activity: now,
            timer: Box::pin(tokio::time::sleep_until(
                first_bytes_by.min(now + bounds.idle),
            )),
        }
    }

    fn deadline(&self) -> Instant {
        let idle = self.last_activity + self.idle;
        self.first_bytes_by.map_or(idle, |first| first.min(idle))
    }

    /// Whether a deadline passed; otherwise the timer wakes the task at the next one.
    /// Activity only moves the deadline on, so the timer is reset lazily when it fires.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            let deadline = self.deadline();
            if deadline <= Instant::now() {
                return true;
            }
            self.timer.as_mut().reset(deadline);
        }
    }

    fn moved(&mut self, read: usize) {
        self.last_activity = Instant::now();
        self.read += read as u64;
        if self.read >= PREFACE_LEN {
            self.first_bytes_by = None;
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle or too slow")
}

impl<S: AsyncRead + Unpin> AsyncRead for Bounded<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = buf.filled().len() - before;
                if read > 0 {
                    self.moved(read);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Bounded<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.moved(0);
                }
                Poll::Ready(Ok(n))
            }
            // A client that stops reading its answer holds the connection as much as one
            // that sends nothing.
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.moved(0);
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Raises the soft limit of open files to the hard limit, so that the connection caps,
/// not the operating system's default of often 1,024, bound the open connections.
/// Returns the soft limit now in force.
pub(crate) fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        // SAFETY: getrlimit and setrlimit only read and write the struct passed.
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
                tracing::debug!(
                    from = limit.rlim_cur,
                    to = limit.rlim_max,
                    "raised the open-file limit"
                );
                limit.rlim_cur = limit.rlim_max;
            }
        }
        #[allow(clippy::useless_conversion)] // rlim_t is not u64 everywhere.
        Some(u64::from(limit.rlim_cur))
    }
    #[cfg(not(unix))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(total: usize, per_address: usize, proxies: &[&str]) -> Arc<Gate> {
        Arc::new(Gate::new(&Limits {
            max_connections: total,
            max_connections_per_address: per_address,
            trusted_proxies: proxies.iter().map(|p| p.parse().unwrap()).collect(),
            ..Limits::default()
        }))
    }

    #[test]
    fn connections_are_capped_per_address_and_in_all_and_freed_on_drop() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let gate = gate(3, 2, &["10.0.0.0/8"]);
        let a1 = gate.admit(ip("192.0.2.1")).unwrap();
        let _a2 = gate.admit(ip("192.0.2.1")).unwrap();
        assert!(gate.admit(ip("192.0.2.1")).is_none(), "per address");
        // One IPv6 /64 is one client.
        let _b = gate.admit(ip("2001:db8::1")).unwrap();
        assert!(gate.admit(ip("2001:db8::2")).is_none(), "in all");
        drop(a1);
        assert!(gate.admit(ip("192.0.2.1")).is_some());
        // A trusted proxy only counts in the total.
        let gate = super::tests::gate(3, 1, &["10.0.0.0/8"]);
        let _p1 = gate.admit(ip("10.1.1.1")).unwrap();
        let _p2 = gate.admit(ip("10.1.1.1")).unwrap();
        let _p3 = gate.admit(ip("10.1.1.1")).unwrap();
        assert!(gate.admit(ip("10.1.1.1")).is_none());
        assert!(gate.lock_open().per_address.is_empty());
    }
}
