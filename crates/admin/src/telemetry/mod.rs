//! Prometheus metrics and request spans.
//!
//! Everything records through the `metrics` facade, so the producer, the store wrapper
//! and the handlers share no registry object: [`install`] sets the process's recorder
//! once, and `GET /metrics` renders it. A process that never calls [`install`] (the
//! producer or consumer on their own) records into the facade's no-op recorder.
//!
//! Who may scrape: the bearer token of `--metrics-token` (`STREAMHUB_METRICS_TOKEN`), or
//! an admin's sign-in token. Labels name topics and users, so the figures are not public.
//!
//! Label values are bounded: routes are axum's route templates (`/api/topics/{id}`), never
//! the requested path; methods outside the standard ones count as `other`.

mod store;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;
use tracing::field::Empty;

pub(crate) use store::TimedStore;

use crate::auth::{Principal, secrets_equal};
use crate::error::ApiError;
use crate::state::AppState;

pub const HTTP_REQUEST_DURATION: &str = "streamhub_http_request_duration_seconds";
pub const STORE_OPERATION_DURATION: &str = "streamhub_store_operation_duration_seconds";
pub const SSE_CLIENTS: &str = "streamhub_sse_clients";
/// Recorded by the producer crate, which does not depend on this one; named here for
/// the descriptions.
pub const PRODUCER_SENT: &str = "streamhub_producer_messages_sent_total";
pub const PRODUCER_ACKNOWLEDGED: &str = "streamhub_producer_messages_acknowledged_total";
pub const PRODUCER_SEND_ERRORS: &str = "streamhub_producer_send_errors_total";
pub const CONSUMER_LAG: &str = "streamhub_consumer_lag";

/// The route label of requests no route matched, whatever their path.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Histogram buckets in seconds: from a cached store read to a slow request near the
/// default request timeout.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Without a scrape, histogram samples accumulate until upkeep folds them into buckets.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder as the process's `metrics` recorder, once: later
/// calls (several admin services in one test process, `streamhub up`) return the same
/// handle. When another recorder was installed first, its figures are not ours to
/// render: `/metrics` then shows none, and a warning says why.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .expect("the bucket list is not empty")
            .build_recorder();
        let handle = recorder.handle();
        match ::metrics::set_global_recorder(recorder) {
            Ok(()) => describe(),
            Err(_) => tracing::warn!(
                "another metrics recorder is installed in this process: /metrics stays empty"
            ),
        }
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the metrics upkeep thread; histograms are folded at each scrape only");
        }
        handle
    })
}

fn describe() {
    use ::metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        Unit::Seconds,
        "HTTP requests of the admin service until the response head, by route template, method and status class"
    );
    describe_histogram!(
        STORE_OPERATION_DURATION,
        Unit::Seconds,
        "Metadata store calls by operation and outcome"
    );
    describe_gauge!(
        SSE_CLIENTS,
        "Open server-sent event streams: events (GET /api/events) and tail (topic tails)"
    );
    describe_counter!(
        PRODUCER_SENT,
        "Messages the producer handed to the Kafka client, by topic"
    );
    describe_counter!(
        PRODUCER_ACKNOWLEDGED,
        "Messages the Kafka cluster acknowledged to the producer, by topic"
    );
    describe_counter!(
        PRODUCER_SEND_ERRORS,
        "Messages the Kafka client refused or could not deliver, by topic"
    );
    describe_gauge!(
        CONSUMER_LAG,
        "Messages a user's consumer group has not read yet, by user and topic"
    );
}

/// One span per request (method, route template, then status and latency), and the
/// request's latency in [`HTTP_REQUEST_DURATION`]. For event streams, the latency is
/// the time until the stream opened.
pub(crate) async fn observe_http(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    let route = route_label(req.extensions().get::<MatchedPath>());
    // The route template, not the URI: a query string may carry anything.
    let span = tracing::info_span!(
        "request",
        method,
        route = %route,
        status = Empty,
        latency_ms = Empty
    );
    let response = next.run(req).instrument(span.clone()).await;
    let latency = start.elapsed();
    let status = response.status();
    span.record("status", status.as_u16());
    span.record("latency_ms", latency.as_secs_f64() * 1000.0);
    span.in_scope(|| tracing::debug!("request finished"));
    ::metrics::histogram!(
        HTTP_REQUEST_DURATION,
        "method" => method,
        "route" => route,
        "status" => status_class(status.as_u16()),
    )
    .record(latency.as_secs_f64());
    response
}

/// The route template that matched, or [`UNMATCHED_ROUTE`].
pub(crate) fn route_label(matched: Option<&MatchedPath>) -> String {
    matched.map_or_else(|| UNMATCHED_ROUTE.to_owned(), |p| p.as_str().to_owned())
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// `GET /metrics`: the text exposition format, for the metrics token or an admin.
pub(crate) async fn serve_metrics(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, ApiError> {
    let (mut parts, _) = req.into_parts();
    if !holds_metrics_token(&state, &parts.headers) {
        let principal = Principal::from_request_parts(&mut parts, &state)
            .await
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::UNAUTHORIZED {
                    ApiError::unauthorized(
                        "send 'Authorization: Bearer <token>' with the metrics token (--metrics-token) or an admin's token",
                    )
                } else {
                    e
                }
            })?;
        principal.require_admin()?;
    }
    let handle = install();
    // Publishes descriptions recorded since the last upkeep; histograms fold in render.
    handle.run_upkeep();
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        handle.render(),
    )
        .into_response())
}

fn holds_metrics_token(state: &AppState, headers: &axum::http::HeaderMap) -> bool {
    let Some(expected) = &state.inner.metrics_token else {
        return false;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .is_some_and(|(_, token)| {
            secrets_equal(token.trim().as_bytes(), expected.expose().as_bytes())
        })
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;

    /// Runs requests through the service's router with a recorder of its own, and
    /// returns the statuses and the rendered figures.
    fn scrape_after(paths: &[&str]) -> (Vec<StatusCode>, String) {
        let recorder = PrometheusBuilder::new()
            .set_buckets(BUCKETS)
            .unwrap()
            .build_recorder();
        let handle = recorder.handle();
        let dir = tempfile::tempdir().unwrap();
        // Current-thread: every request runs on this thread, under the local recorder.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let statuses = ::metrics::with_local_recorder(&recorder, || {
            rt.block_on(async {
                let db = format!("sqlite://{}", dir.path().join("t.db").display());
                let store = streamhub_store::open(&db).await.unwrap();
                let state = AppState::new(store, None, Duration::from_secs(60), None);
                let app = crate::app(state, &crate::Limits::default());
                let mut statuses = Vec::new();
                for path in paths {
                    let req = Request::get(*path).body(Body::empty()).unwrap();
                    statuses.push(app.clone().oneshot(req).await.unwrap().status());
                }
                statuses
            })
        });
        (statuses, handle.render())
    }

    fn routes_of(rendered: &str) -> Vec<String> {
        let mut routes: Vec<String> = rendered
            .lines()
            .filter(|l| l.starts_with(&format!("{HTTP_REQUEST_DURATION}_count")))
            .filter_map(|l| {
                let start = l.find("route=\"")? + 7;
                let end = start + l[start..].find('"')?;
                Some(l[start..end].to_owned())
            })
            .collect();
        routes.sort();
        routes.dedup();
        routes
    }

    #[test]
    fn routes_are_labelled_by_template_and_unknown_paths_share_one_label() {
        let (statuses, rendered) = scrape_after(&[
            "/api/health",
            "/api/topics/17",
            "/api/topics/18",
            "/api/no-such-thing/1",
            "/api/no-such-thing/2",
            "/elsewhere/x",
            "/elsewhere/y",
        ]);
        assert_eq!(statuses[0], StatusCode::OK);
        assert_eq!(statuses[1], StatusCode::UNAUTHORIZED);
        assert_eq!(statuses[3], StatusCode::NOT_FOUND);
        let routes = routes_of(&rendered);
        assert!(routes.contains(&"/api/health".to_owned()), "{rendered}");
        assert!(
            routes.contains(&"/api/topics/{id}".to_owned()),
            "{rendered}"
        );
        assert!(
            !routes
                .iter()
                .any(|r| r.contains("17") || r.contains("no-such") || r.contains("elsewhere")),
            "a requested path became a label: {routes:?}"
        );
        // Two unknown paths under /api and two elsewhere: no more labels than kinds.
        let others: Vec<_> = routes
            .iter()
            .filter(|r| !["/api/health", "/api/topics/{id}"].contains(&r.as_str()))
            .collect();
        assert!(others.len() <= 2, "{others:?}");
        assert!(
            rendered.contains(&format!(
                "{HTTP_REQUEST_DURATION}_count{{method=\"GET\",route=\"/api/topics/{{id}}\",status=\"4xx\"}} 2"
            )),
            "{rendered}"
        );
    }

    #[test]
    fn install_twice_gives_the_same_handle() {
        let first: *const PrometheusHandle = install();
        let second: *const PrometheusHandle = install();
        assert!(std::ptr::eq(first, second));
        // Recorded through the facade, rendered by the handle.
        ::metrics::counter!("streamhub_test_installs_total").increment(2);
        assert!(
            install()
                .render()
                .contains("streamhub_test_installs_total 2"),
        );
    }

    #[test]
    fn status_classes_and_methods_are_bounded() {
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(404), "4xx");
        assert_eq!(status_class(503), "5xx");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
        assert_eq!(method_label(&Method::DELETE), "DELETE");
    }
}
