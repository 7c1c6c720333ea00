//! Application logs of a handful of services: levels in the proportions production
//! systems show (INFO and DEBUG dominate, ERROR is rare), messages from per-level
//! templates, and W3C-style trace ids shared by the lines of one request.

use std::fmt::Write;

use rand::Rng;
use serde::Serialize;

use super::{EntityId, GenRng, KeyChooser, hex_id, pick, weighted};

pub const LEVELS: &[&str] = &["DEBUG", "INFO", "WARN", "ERROR"];
/// Per-mille weights of [`LEVELS`].
const LEVEL_WEIGHTS: [u32; 4] = [250, 650, 70, 30];
const OPEN_TRACES: usize = 16;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogLine {
    pub service: EntityId,
    pub host: EntityId,
    /// `DEBUG`, `INFO`, `WARN` or `ERROR`.
    pub level: &'static str,
    pub message: String,
    /// 32 lowercase hex digits.
    pub trace_id: EntityId,
    /// 16 lowercase hex digits.
    pub span_id: String,
}

const SERVICES: &[&str] = &[
    "api-gateway",
    "auth-service",
    "checkout",
    "inventory",
    "notification-worker",
    "search",
];

const PATHS: &[&str] = &[
    "/api/orders",
    "/api/cart",
    "/api/products",
    "/api/users/me",
    "/api/search",
    "/healthz",
];

const UPSTREAMS: &[&str] = &[
    "postgres-primary",
    "redis-cache",
    "payments-gateway",
    "kafka",
];

struct Service {
    name: EntityId,
    hosts: Vec<EntityId>,
}

pub(super) struct LogStream {
    services: Vec<Service>,
    /// Requests in progress: most lines continue one of them.
    traces: Vec<EntityId>,
}

impl LogStream {
    pub(super) fn new(rng: &mut GenRng) -> Self {
        let services = SERVICES
            .iter()
            .map(|&name| {
                let pod = hex_id(rng, 6);
                Service {
                    name: EntityId::new(name),
                    hosts: (0..3)
                        .map(|i| EntityId::new(format!("{name}-{pod}-{i}")))
                        .collect(),
                }
            })
            .collect();
        let traces = (0..OPEN_TRACES)
            .map(|_| EntityId::new(hex_id(rng, 32)))
            .collect();
        Self { services, traces }
    }

    pub(super) fn next(&mut self, rng: &mut GenRng, keys: &mut KeyChooser) -> LogLine {
        let service = &self.services[keys.choose(rng, self.services.len())];
        let host = service.hosts[rng.gen_range(0..service.hosts.len())].clone();
        let level = weighted(
            rng,
            &[
                (LEVELS[0], LEVEL_WEIGHTS[0]),
                (LEVELS[1], LEVEL_WEIGHTS[1]),
                (LEVELS[2], LEVEL_WEIGHTS[2]),
                (LEVELS[3], LEVEL_WEIGHTS[3]),
            ],
        );
        // A third of the lines start a new request, the rest continue an open one.
        let slot = rng.gen_range(0..self.traces.len());
        if rng.gen_bool(1.0 / 3.0) {
            self.traces[slot] = EntityId::new(hex_id(rng, 32));
        }
        let trace_id = self.traces[slot].clone();
        LogLine {
            service: service.name.clone(),
            host,
            level,
            message: message(rng, level),
            trace_id,
            span_id: hex_id(rng, 16),
        }
    }
}

fn message(rng: &mut GenRng, level: &str) -> String {
    let mut m = String::with_capacity(64);
    // Writing to a String cannot fail.
    let _ = match level {
        "DEBUG" => match rng.gen_range(0..3) {
            0 => write!(
                m,
                "cache {} for key product:{}",
                pick(rng, &["hit", "miss"]),
                rng.gen_range(1000..99_999)
            ),
            1 => write!(
                m,
                "acquired connection from pool ({} idle)",
                rng.gen_range(0..20)
            ),
            _ => write!(
                m,
                "feature flag {} evaluated to {}",
                pick(rng, &["new_checkout", "fast_search", "dark_mode"]),
                rng.gen_bool(0.5)
            ),
        },
        "INFO" => match rng.gen_range(0..3) {
            0 => write!(
                m,
                "{} {} {} in {}ms",
                pick(rng, &["GET", "GET", "GET", "POST", "PUT", "DELETE"]),
                pick(rng, PATHS),
                weighted(rng, &[(200, 85), (201, 8), (204, 4), (304, 3)]),
                latency_ms(rng, 20.0)
            ),
            1 => write!(m, "user {} signed in", rng.gen_range(1000..99_999)),
            _ => write!(m, "processed batch of {} messages", rng.gen_range(1..500)),
        },
        "WARN" => match rng.gen_range(0..3) {
            0 => write!(
                m,
                "slow request {} took {}ms",
                pick(rng, PATHS),
                latency_ms(rng, 1200.0)
            ),
            1 => write!(
                m,
                "retrying call to {} (attempt {} of 5)",
                pick(rng, UPSTREAMS),
                rng.gen_range(2..5)
            ),
            _ => write!(m, "connection pool at {}% capacity", rng.gen_range(80..100)),
        },
        _ => match rng.gen_range(0..3) {
            0 => write!(
                m,
                "{} {} 500: upstream {} timed out after {}ms",
                pick(rng, &["GET", "POST"]),
                pick(rng, PATHS),
                pick(rng, UPSTREAMS),
                weighted(rng, &[(3000, 1), (5000, 2), (30_000, 1)])
            ),
            1 => write!(
                m,
                "failed to publish event: {}",
                pick(
                    rng,
                    &[
                        "broker not available",
                        "message too large",
                        "request timed out"
                    ]
                )
            ),
            _ => write!(
                m,
                "unhandled error: {}",
                pick(
                    rng,
                    &[
                        "null value in column \"email\"",
                        "deadlock detected",
                        "index out of range"
                    ]
                )
            ),
        },
    };
    m
}

/// Request latencies are log-normal: mostly near `median`, occasionally far above it.
fn latency_ms(rng: &mut GenRng, median: f64) -> u32 {
    (median * (super::std_normal(rng) * 0.6).exp())
        .round()
        .max(1.0) as u32
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn info_and_debug_dominate_and_errors_are_rare() {
        let mut rng = GenRng::seed_from_u64(5);
        let mut stream = LogStream::new(&mut rng);
        let mut counts = std::collections::HashMap::new();
        for _ in 0..10_000 {
            *counts
                .entry(stream.next(&mut rng, &mut KeyChooser::default()).level)
                .or_insert(0) += 1;
        }
        let n = |l| counts.get(l).copied().unwrap_or(0);
        assert!(n("INFO") > n("DEBUG"));
        assert!(n("DEBUG") > 2 * n("WARN"));
        assert!(n("WARN") > n("ERROR"));
        assert!(n("ERROR") > 0);
    }

    #[test]
    fn lines_of_one_request_share_a_trace_id() {
        let mut rng = GenRng::seed_from_u64(6);
        let mut stream = LogStream::new(&mut rng);
        let ids: std::collections::HashSet<_> = (0..300)
            .map(|_| {
                stream
                    .next(&mut rng, &mut KeyChooser::default())
                    .trace_id
                    .to_string()
            })
            .collect();
        assert!(
            ids.len() < 200,
            "{} distinct traces in 300 lines",
            ids.len()
        );
    }
}
