//! Abuse limits that are not about who the caller is: failed sign-ins per user and client
//! address, and per client address, and a bound on how long a request may take to get its answer.
//!
//! Both read their settings from request extensions that [`crate::serve`] adds, so the
//! router itself stays free of configuration; a router served without them (a test
//! calling [`crate::router`] directly) runs unlimited.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ipnet::IpNet;
use tokio::sync::Notify;

use crate::MAX_BODY_BYTES;
use crate::error::ApiError;

/// Counters per user and per address are kept for at most this many keys each; a flood
/// of new names or addresses evicts the oldest windows rather than growing memory.
const MAX_TRACKED_KEYS: usize = 10_000;
/// Longer names cannot exist; the rest of such a name is not kept.
const MAX_KEY_CHARS: usize = 128;

/// The abuse limits of a running service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Failed sign-ins allowed for one username from one client address per
    /// `user_window`; 0 turns the limit off. Counted per address too, so that guesses
    /// from elsewhere cannot lock the owner of an account out.
    pub login_failures_per_user: u32,
    pub user_window: Duration,
    /// Failed sign-ins allowed from one client address (IPv4, or IPv6 /64) per
    /// `address_window`; 0 turns the limit off.
    pub login_failures_per_address: u32,
    pub address_window: Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client: a request from one of
    /// these networks counts against the address its proxies report, not theirs.
    pub trusted_proxies: Vec<IpNet>,
    /// Time a request may take until its response starts. Event streams are bounded by
    /// their own limit, not this: their response starts at once.
    pub request_timeout: Duration,
    /// Time a client has to send a request's head (HTTP/1) or finish the TLS handshake,
    /// from the connection's start and, between requests on a kept-alive connection,
    /// from the end of the previous answer.
    pub header_read_timeout: Duration,
    /// A connection on which no byte moves either way for this long is closed.
    pub idle_timeout: Duration,
    /// Open connections at most, in all.
    pub max_connections: usize,
    /// Open connections at most from one client address (IPv6: /64); trusted proxies
    /// count in the total only.
    pub max_connections_per_address: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            login_failures_per_user: 5,
            user_window: Duration::from_secs(15 * 60),
            login_failures_per_address: 20,
            address_window: Duration::from_secs(60),
            trusted_proxies: Vec::new(),
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 8192,
            max_connections_per_address: 512,
        }
    }
}

struct Window {
    started: Instant,
    failures: u32,
    /// Attempts whose password is being checked: each may still become a failure.
    in_flight: u32,
}

/// What an attempt may do now.
#[derive(Debug, PartialEq, Eq)]
enum Admission {
    Go,
    /// The attempts in flight could use up what is left: wait until one ends.
    Wait,
    /// Failures used up the window: refused for this long.
    Refused(Duration),
}

/// How an admitted attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ending {
    Failed,
    Succeeded,
    /// Neither: a malformed request, or a client that left before its answer.
    Neither,
}

/// Fixed windows of failure counts per key.
struct FailureCounter<K> {
    max: u32,
    window: Duration,
    windows: Mutex<HashMap<K, Window>>,
}

impl<K: Hash + Eq + Clone> FailureCounter<K> {
    fn new(max: u32, window: Duration) -> Self {
        FailureCounter {
            max,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Window>> {
        // A panic while holding the lock leaves counters that are still usable.
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits an attempt while its failure, added to the failures so far and to the
    /// attempts in flight, would stay within the maximum. Parallel guesses therefore
    /// cannot all slip through before the first one fails, and parallel sign-ins with the
    /// right password wait their turn instead of being refused.
    fn begin(&self, key: &K, now: Instant) -> Admission {
        if self.max == 0 {
            return Admission::Go;
        }
        let mut windows = self.lock();
        if !windows.contains_key(key) && windows.len() >= MAX_TRACKED_KEYS {
            windows.retain(|_, w| w.in_flight > 0 || now.duration_since(w.started) < self.window);
            if windows.len() >= MAX_TRACKED_KEYS
                && let Some(oldest) = windows
                    .iter()
                    .min_by_key(|(_, w)| w.started)
                    .map(|(k, _)| k.clone())
            {
                windows.remove(&oldest);
            }
        }
        let w = windows.entry(key.clone()).or_insert(Window {
            started: now,
            failures: 0,
            in_flight: 0,
        });
        if now.duration_since(w.started) >= self.window {
            w.started = now;
            w.failures = 0;
        }
        if w.failures >= self.max {
            return Admission::Refused(self.window - now.duration_since(w.started));
        }
        if w.failures + w.in_flight >= self.max {
            return Admission::Wait;
        }
        w.in_flight += 1;
        Admission::Go
    }

    /// Ends an attempt [`Self::begin`] admitted. A success clears the key's failures.
    fn end(&self, key: &K, ending: Ending) {
        if self.max == 0 {
            return;
        }
        if let Some(w) = self.lock().get_mut(key) {
            w.in_flight = w.in_flight.saturating_sub(1);
            match ending {
                Ending::Failed => w.failures += 1,
                Ending::Succeeded => w.failures = 0,
                Ending::Neither => {}
            }
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.lock().len()
    }
}

/// Failed sign-ins per username and client address, and per client address.
pub struct LoginLimiter {
    /// Keyed by the account and the address trying it: failures from one address lock
    /// that address out of the account, never the account's owner signing in elsewhere.
    users: FailureCounter<(String, Option<IpAddr>)>,
    addresses: FailureCounter<IpAddr>,
    trusted_proxies: Vec<IpNet>,
    /// Told whenever an attempt ends, for those waiting for their turn.
    ended: Notify,
}

impl LoginLimiter {
    pub fn new(limits: &Limits) -> Self {
        LoginLimiter {
            users: FailureCounter::new(limits.login_failures_per_user, limits.user_window),
            addresses: FailureCounter::new(
                limits.login_failures_per_address,
                limits.address_window,
            ),
            trusted_proxies: limits.trusted_proxies.clone(),
            ended: Notify::new(),
        }
    }

    /// Admits an attempt on both counters, or on neither. Refused: for how long, and
    /// which limit.
    fn begin(
        &self,
        attempt: &Attempt,
        now: Instant,
    ) -> Result<Admission, (Duration, &'static str)> {
        if let Some(address) = &attempt.address {
            match self.addresses.begin(address, now) {
                Admission::Go => {}
                Admission::Wait => return Ok(Admission::Wait),
                Admission::Refused(wait) => return Err((wait, "from this address")),
            }
        }
        if let Some(user) = attempt.user_key() {
            let admission = self.users.begin(&user, now);
            if admission != Admission::Go {
                if let Some(address) = &attempt.address {
                    self.addresses.end(address, Ending::Neither);
                }
                if let Admission::Refused(wait) = admission {
                    return Err((wait, "for this user from this address"));
                }
                return Ok(admission);
            }
        }
        Ok(Admission::Go)
    }

    fn end(&self, attempt: &Attempt, ending: Ending) {
        if let Some(address) = &attempt.address {
            // A success clears only the user's failures: an address may try many users.
            let ending = if ending == Ending::Succeeded {
                Ending::Neither
            } else {
                ending
            };
            self.addresses.end(address, ending);
        }
        if let Some(user) = attempt.user_key() {
            self.users.end(&user, ending);
        }
        self.ended.notify_waiters();
    }
}

/// One sign-in as the limits count it.
struct Attempt {
    address: Option<IpAddr>,
    user: Option<String>,
}

impl Attempt {
    fn user_key(&self) -> Option<(String, Option<IpAddr>)> {
        self.user.clone().map(|user| (user, self.address))
    }
}

/// An admitted attempt; one dropped before its answer (the client left, or the request
/// timed out) ends as neither failure nor success: its answer reached nobody.
struct Admitted<'a> {
    limiter: &'a LoginLimiter,
    attempt: Attempt,
    ending: Ending,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.limiter.end(&self.attempt, self.ending);
    }
}

/// One client, as far as limits go: an IPv4 address, or the /64 network of an IPv6
/// address (one host usually holds a whole /64).
pub(crate) fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        v4 => v4,
    }
}

/// The client's address: the peer's, or, when the peer is a trusted proxy, the nearest
/// address in `X-Forwarded-For` (read from the right, as each proxy appends the address it
/// saw) that is not a trusted proxy itself. Entries left of that one are the client's word
/// and are not believed; an entry that is not an address stops the walk at the proxy that
/// wrote it.
fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(&ip.to_canonical()));
    let mut client = peer;
    if !is_trusted(&client) {
        return client;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client
}

fn user_key(name: &str) -> String {
    name.chars().take(MAX_KEY_CHARS).collect()
}

fn too_many(wait: Duration, what: &str) -> Response {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let seconds = seconds.max(1);
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many failed sign-ins {what}; try again in {seconds} s"),
    )
    .retry_after(seconds)
    .into_response()
}

/// Middleware of `POST /api/auth/login`: refuses with 429 and `Retry-After` once the
/// username or the client address has used up its failures, and counts each 401.
/// A successful sign-in does not count and clears the username's failures. Attempts
/// beyond what is left of a limit wait while others are being checked (within the
/// request timeout), so that only failures, never mere parallelism, lead to a 429.
pub async fn login_attempts(req: Request, next: Next) -> Response {
    let Some(limiter) = req.extensions().get::<Arc<LoginLimiter>>().cloned() else {
        return next.run(req).await;
    };
    let address = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| {
            address_key(client_address(
                peer.ip(),
                req.headers(),
                &limiter.trusted_proxies,
            ))
        });
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body is larger than 64 KiB",
        )
        .into_response();
    };
    // The handler reports a malformed body; here only the name matters.
    let user = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("username")?.as_str().map(user_key));

    let attempt = Attempt { address, user };
    loop {
        // Made before looking, so that an attempt ending meanwhile still wakes it.
        let ended = limiter.ended.notified();
        match limiter.begin(&attempt, Instant::now()) {
            Ok(Admission::Go) => break,
            Ok(_) => ended.await, // Wait: the end of another attempt may make room.
            Err((wait, which)) => return too_many(wait, which),
        }
    }
    let mut admitted = Admitted {
        limiter: &limiter,
        attempt,
        ending: Ending::Neither,
    };
    let res = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    admitted.ending = if res.status() == StatusCode::UNAUTHORIZED {
        Ending::Failed
    } else if res.status().is_success() {
        Ending::Succeeded
    } else {
        Ending::Neither
    };
    drop(admitted);
    res
}

/// Answers 413 at once when `Content-Length` declares a body over [`MAX_BODY_BYTES`],
/// instead of waiting for a body that will be refused anyway.
pub async fn declared_body_size(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body is larger than 64 KiB",
        )
        .into_response();
    }
    next.run(req).await
}

/// The request timeout as a request extension, for [`request_timeout`].
#[derive(Clone, Copy, Debug)]
pub struct RequestTimeout(pub Duration);

/// Answers 408 with the JSON error when the response has not started within the
/// configured time: a slow client sending its body, or a store that does not answer.
pub async fn request_timeout(req: Request, next: Next) -> Response {
    let Some(RequestTimeout(limit)) = req.extensions().get::<RequestTimeout>().copied() else {
        return next.run(req).await;
    };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request did not complete within {} s",
                limit.as_secs_f64()
            ),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        headers
    }

    #[test]
    fn the_client_address_comes_from_trusted_proxies_only() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let via =
            |peer: &str, values: &[&str]| client_address(ip(peer), &forwarded(values), &proxies);
        // An untrusted peer is the client, whatever it writes.
        assert_eq!(via("203.0.113.9", &["198.51.100.1"]), ip("203.0.113.9"));
        // A trusted proxy reports the client; what the client wrote before it is not believed.
        assert_eq!(
            via("10.0.0.2", &["192.0.2.66, 198.51.100.1"]),
            ip("198.51.100.1")
        );
        // Chains of trusted proxies, over several headers too.
        assert_eq!(
            via("10.0.0.2", &["198.51.100.1, 10.1.1.1", "10.2.2.2"]),
            ip("198.51.100.1")
        );
        assert_eq!(via("::1", &["2001:db8::7"]), ip("2001:db8::7"));
        // Nothing forwarded, or nonsense: the proxy that wrote it.
        assert_eq!(via("10.0.0.2", &[]), ip("10.0.0.2"));
        assert_eq!(via("10.0.0.2", &["unknown"]), ip("10.0.0.2"));
        assert_eq!(via("10.0.0.2", &["198.51.100.1, junk"]), ip("10.0.0.2"));
        // No trusted proxy configured: the header is ignored.
        assert_eq!(
            client_address(ip("10.0.0.2"), &forwarded(&["198.51.100.1"]), &[]),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn failures_are_refused_past_the_maximum_until_the_window_ends() {
        let counter = FailureCounter::new(2, Duration::from_secs(60));
        let t0 = Instant::now();
        let key = "alice".to_owned();
        for _ in 0..2 {
            assert_eq!(counter.begin(&key, t0), Admission::Go);
            counter.end(&key, Ending::Failed);
        }
        assert_eq!(
            counter.begin(&key, t0 + Duration::from_secs(10)),
            Admission::Refused(Duration::from_secs(50))
        );
        assert_eq!(
            counter.begin(&key, t0 + Duration::from_secs(60)),
            Admission::Go
        );
    }

    #[test]
    fn attempts_in_flight_hold_their_place_until_they_end() {
        let counter = FailureCounter::new(2, Duration::from_secs(60));
        let now = Instant::now();
        let key = "alice".to_owned();
        assert_eq!(counter.begin(&key, now), Admission::Go);
        assert_eq!(counter.begin(&key, now), Admission::Go);
        // Both could still fail: a third waits rather than slipping through or being refused.
        assert_eq!(counter.begin(&key, now), Admission::Wait);
        counter.end(&key, Ending::Neither);
        assert_eq!(counter.begin(&key, now), Admission::Go);
        counter.end(&key, Ending::Failed);
        assert_eq!(counter.begin(&key, now), Admission::Wait);
        counter.end(&key, Ending::Succeeded);
        // The success cleared the failure, and nothing is in flight any more.
        assert_eq!(counter.begin(&key, now), Admission::Go);
        assert_eq!(counter.begin(&key, now), Admission::Go);
        assert_eq!(counter.begin(&key, now), Admission::Wait);
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let counter = FailureCounter::new(0, Duration::from_secs(60));
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(counter.begin(&"x".to_owned(), now), Admission::Go);
            counter.end(&"x".to_owned(), Ending::Failed);
        }
        assert_eq!(counter.tracked(), 0);
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_names() {
        let counter = FailureCounter::new(5, Duration::from_secs(900));
        let now = Instant::now();
        for i in 0..(MAX_TRACKED_KEYS + 500) {
            let key = format!("user{i}");
            assert_eq!(counter.begin(&key, now), Admission::Go);
            counter.end(&key, Ending::Failed);
        }
        assert_eq!(counter.tracked(), MAX_TRACKED_KEYS);
    }

    #[test]
    fn ipv6_hosts_count_per_64_network_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(address_key(mapped), "10.0.0.7".parse::<IpAddr>().unwrap());
    }
}
