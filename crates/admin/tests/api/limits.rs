//! Abuse limits: failed sign-ins per user and per address, request timeouts, body and
//! page size caps, the bound on server-sent event streams, and security headers on
//! every kind of answer, errors included.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use streamhub_admin::{
    AdminConfig, AdminHandle, AdminService, ClusterInfo, Limits, StreamLimits, TailMessage,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

struct Limited {
    handle: AdminHandle,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Limited {
    async fn start(limits: Limits) -> Limited {
        Self::start_with(|c| AdminConfig { limits, ..c }).await
    }

    async fn start_with(change: impl FnOnce(AdminConfig) -> AdminConfig) -> Limited {
        let dir = tempfile::tempdir().unwrap();
        let handle = AdminService::start(change(config(&dir))).await.unwrap();
        Limited {
            handle,
            _dir: dir,
            http: reqwest::Client::new(),
        }
    }

    async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/api/auth/login", self.handle.url()))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap()
    }

    async fn token(&self) -> String {
        let res = self.login("admin", ADMIN_PASSWORD).await;
        let (status, body) = json_of(res).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["token"].as_str().unwrap().to_owned()
    }
}

fn assert_security_headers(res: &reqwest::Response) {
    let h = res.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
}

/// Asserts a 429 with `Retry-After` within `max_seconds` and returns the error body.
async fn assert_too_many(res: reqwest::Response, max_seconds: u64) -> Value {
    assert_security_headers(&res);
    let retry: u64 = res
        .headers()
        .get("retry-after")
        .expect("429 carries Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=max_seconds).contains(&retry), "Retry-After {retry}");
    let (status, body) = json_of(res).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["code"], "too_many_requests");
    body
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_user_then_refused_with_retry_after() {
    let s = Limited::start(Limits::default()).await;
    let user = Limits::default().login_failures_per_user;
    for _ in 0..user {
        let res = s.login("admin", "wrong-password").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // Even the right password is refused now: otherwise the limit would still tell
    // a guesser which password is right.
    let body = assert_too_many(s.login("admin", ADMIN_PASSWORD).await, 15 * 60).await;
    assert!(body["error"].as_str().unwrap().contains("user"), "{body}");
    // Other users are not locked out by admin's failures.
    let res = s.login("nobody", "wrong-password").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    s.handle.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_sign_ins_all_pass_with_the_right_password_and_guesses_stop_at_the_limit() {
    let s = Arc::new(Limited::start(Limits::default()).await);
    let user = Limits::default().login_failures_per_user as usize;
    let statuses = |password: &'static str| {
        let s = s.clone();
        async move {
            let tasks: Vec<_> = (0..3 * user)
                .map(|_| {
                    let s = s.clone();
                    tokio::spawn(async move { s.login("admin", password).await.status() })
                })
                .collect();
            let mut counted = HashMap::new();
            for task in tasks {
                *counted.entry(task.await.unwrap()).or_insert(0) += 1;
            }
            counted
        }
    };
    // More at once than the failures allowed: each could fail, so they take turns.
    assert_eq!(
        statuses(ADMIN_PASSWORD).await,
        HashMap::from([(StatusCode::OK, 3 * user)])
    );
    // Guesses in parallel: exactly the allowed number is checked, the rest refused.
    assert_eq!(
        statuses("wrong-password").await,
        HashMap::from([
            (StatusCode::UNAUTHORIZED, user),
            (StatusCode::TOO_MANY_REQUESTS, 2 * user)
        ])
    );
}

#[tokio::test]
async fn successful_sign_ins_do_not_count_and_clear_the_users_failures() {
    let s = Limited::start(Limits::default()).await;
    let user = Limits::default().login_failures_per_user;
    for _ in 0..3 {
        for _ in 0..user - 1 {
            let res = s.login("admin", "wrong-password").await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        }
        let res = s.login("admin", ADMIN_PASSWORD).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    s.handle.stop().await.unwrap();
}

#[tokio::test]
async fn a_user_may_sign_in_again_once_the_window_has_passed() {
    let s = Limited::start(Limits {
        login_failures_per_user: 2,
        user_window: Duration::from_secs(2),
        ..Limits::default()
    })
    .await;
    for _ in 0..2 {
        s.login("admin", "wrong-password").await;
    }
    assert_too_many(s.login("admin", ADMIN_PASSWORD).await, 2).await;
    // Waiting out the window is what Retry-After asks the client to do.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let res = s.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    s.handle.stop().await.unwrap();
}

#[tokio::test]
async fn failed_sign_ins_are_limited_per_address_across_usernames() {
    let per_address = 6;
    let s = Limited::start(Limits {
        login_failures_per_address: per_address,
        ..Limits::default()
    })
    .await;
    for i in 0..per_address {
        let res = s.login(&format!("sprayed-{i}"), "guess").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let body = assert_too_many(s.login("admin", ADMIN_PASSWORD).await, 60).await;
    assert!(
        body["error"].as_str().unwrap().contains("address"),
        "{body}"
    );
    s.handle.stop().await.unwrap();
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_address_is_limited() {
    let login_from = |s: &Limited, forwarded: &'static str| {
        s.http
            .post(format!("{}/api/auth/login", s.handle.url()))
            .header("x-forwarded-for", forwarded)
            .json(&json!({"username": "nobody", "password": "guess"}))
            .send()
    };
    // The test client (127.0.0.1) is the trusted proxy.
    let s = Limited::start(Limits {
        login_failures_per_address: 2,
        login_failures_per_user: 0,
        trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
        ..Limits::default()
    })
    .await;
    for _ in 0..2 {
        let res = login_from(&s, "198.51.100.1").await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let body = assert_too_many(login_from(&s, "198.51.100.1").await.unwrap(), 60).await;
    assert!(
        body["error"].as_str().unwrap().contains("address"),
        "{body}"
    );
    // Another client behind the same proxy is not held back.
    let res = login_from(&s, "198.51.100.2").await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // A client cannot escape by writing its own header in front of the proxy's entry.
    let res = login_from(&s, "192.0.2.1, 198.51.100.1").await.unwrap();
    assert_too_many(res, 60).await;
    s.handle.stop().await.unwrap();

    // Without a trusted proxy the header changes nothing: the peer is the client.
    let s = Limited::start(Limits {
        login_failures_per_address: 2,
        login_failures_per_user: 0,
        ..Limits::default()
    })
    .await;
    for forwarded in ["198.51.100.1", "198.51.100.2"] {
        let res = login_from(&s, forwarded).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    assert_too_many(login_from(&s, "198.51.100.3").await.unwrap(), 60).await;
    s.handle.stop().await.unwrap();
}

#[tokio::test]
async fn guesses_from_one_address_do_not_lock_the_owner_out_from_another() {
    // The test client (127.0.0.1) is a trusted proxy, so each request's X-Forwarded-For
    // names its client.
    let s = Limited::start(Limits {
        trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
        ..Limits::default()
    })
    .await;
    let login_from = |forwarded: &'static str, password: &'static str| {
        s.http
            .post(format!("{}/api/auth/login", s.handle.url()))
            .header("x-forwarded-for", forwarded)
            .json(&json!({"username": "admin", "password": password}))
            .send()
    };
    let attacker = "198.51.100.66";
    for _ in 0..Limits::default().login_failures_per_user {
        let res = login_from(attacker, "wrong-password").await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // The attacker's address stays slowed, whatever password it sends.
    let body = assert_too_many(login_from(attacker, ADMIN_PASSWORD).await.unwrap(), 15 * 60).await;
    assert!(body["error"].as_str().unwrap().contains("user"), "{body}");
    // The owner, elsewhere, signs in.
    let res = login_from("203.0.113.7", ADMIN_PASSWORD).await.unwrap();
    let (status, body) = json_of(res).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A success elsewhere does not clear the attacker's failures.
    assert_too_many(
        login_from(attacker, "wrong-password").await.unwrap(),
        15 * 60,
    )
    .await;
    s.handle.stop().await.unwrap();
}

#[tokio::test]
async fn the_default_address_limit_is_twenty_a_minute() {
    let s = Limited::start(Limits::default()).await;
    let per_address = Limits::default().login_failures_per_address;
    assert_eq!(per_address, 20);
    for i in 0..per_address {
        let res = s.login(&format!("sprayed-{i}"), "guess").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    assert_too_many(s.login("someone-else", "guess").await, 60).await;
    s.handle.stop().await.unwrap();
}

#[tokio::test]
async fn malformed_sign_ins_do_not_use_up_the_limit() {
    let s = Limited::start(Limits {
        login_failures_per_user: 2,
        login_failures_per_address: 2,
        ..Limits::default()
    })
    .await;
    for _ in 0..5 {
        let (status, _) = call(
            s.http
                .post(format!("{}/api/auth/login", s.handle.url()))
                .json(&json!({"username": "admin"})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    let res = s.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    s.handle.stop().await.unwrap();
}

#[tokio::test]
async fn zero_turns_the_sign_in_limits_off() {
    let s = Limited::start(Limits {
        login_failures_per_user: 0,
        login_failures_per_address: 0,
        ..Limits::default()
    })
    .await;
    for _ in 0..25 {
        let res = s.login("admin", "wrong-password").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let res = s.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
    s.handle.stop().await.unwrap();
}

/// Sends `head` and `body_start` on a raw connection, never the rest of the body, and
/// returns everything the server answers until it closes.
async fn stalled_request(url: &str, head: &str, body_start: &str) -> String {
    let addr = url.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(body_start.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut answer))
        .await
        .expect("the server answers a stalled request by itself")
        .unwrap();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_request_whose_body_never_arrives_times_out_with_408_json() {
    let s = Limited::start(Limits {
        request_timeout: Duration::from_secs(1),
        ..Limits::default()
    })
    .await;
    let started = std::time::Instant::now();
    let answer = stalled_request(
        s.handle.url(),
        "POST /api/auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n",
        "{\"username\": \"adm",
    )
    .await;
    assert!(started.elapsed() >= Duration::from_secs(1));
    let lower = answer.to_ascii_lowercase();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(lower.contains("content-type: application/json"), "{answer}");
    assert!(
        lower.contains("x-content-type-options: nosniff"),
        "{answer}"
    );
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");

    // The same for an endpoint that needs a sign-in first.
    let token = s.token().await;
    let answer = stalled_request(
        s.handle.url(),
        &format!(
            "POST /api/topics HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"
        ),
        "{\"name\": ",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    s.handle.stop().await.unwrap();
}

#[tokio::test]
async fn bodies_over_64_kib_are_413_on_sign_in_and_elsewhere() {
    let s = Limited::start(Limits::default()).await;
    let token = s.token().await;
    let padding = "p".repeat(65 * 1024);
    let res = s
        .http
        .post(format!("{}/api/auth/login", s.handle.url()))
        .json(&json!({"username": "admin", "password": padding}))
        .send()
        .await
        .unwrap();
    assert_security_headers(&res);
    let (status, body) = json_of(res).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["code"], "payload_too_large");
    let (status, _) = call(
        s.http
            .post(format!("{}/api/users", s.handle.url()))
            .bearer_auth(&token)
            .json(&json!({"username": "u", "password": padding, "role": "user"})),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Just under the cap is read (and refused for what it says, not for its size).
    let under = "p".repeat(60 * 1024);
    let (status, _) = call(
        s.http
            .post(format!("{}/api/topics", s.handle.url()))
            .bearer_auth(&token)
            .json(&json!({"name": "sized", "description": under})),
    )
    .await;
    assert_ne!(status, StatusCode::PAYLOAD_TOO_LARGE);
    s.handle.stop().await.unwrap();
}

#[tokio::test]
async fn page_sizes_above_the_maximum_are_refused_not_clamped() {
    let s = Limited::start(Limits::default()).await;
    let token = s.token().await;
    let max = streamhub_admin::api::MAX_PAGE;
    for path in ["/api/topics", "/api/audit"] {
        let (status, body) = call(
            s.http
                .get(format!("{}{path}?limit={}", s.handle.url(), max + 1))
                .bearer_auth(&token),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(&max.to_string()),
            "{body}"
        );
        let (status, _) = call(
            s.http
                .get(format!("{}{path}?limit={max}", s.handle.url()))
                .bearer_auth(&token),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    s.handle.stop().await.unwrap();
}

#[tokio::test]
async fn event_streams_beyond_the_bound_get_503_with_retry_after() {
    // A small bound, all of it within one admin's own share.
    let streams = StreamLimits {
        event_streams: 4,
        producer_event_streams: 1,
        ..Default::default()
    };
    let s = Limited::start_with(|c| AdminConfig { streams, ..c }).await;
    let token = s.token().await;
    let mut open = Vec::new();
    for _ in 0..streams.event_streams - streams.producer_event_streams {
        let res = s
            .http
            .get(format!("{}/api/events", s.handle.url()))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        open.push(res);
    }
    let res = s
        .http
        .get(format!("{}/api/events", s.handle.url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_security_headers(&res);
    assert!(res.headers().contains_key("retry-after"));
    let (_, body) = json_of(res).await;
    assert_eq!(body["code"], "unavailable");
    drop(open);
    s.handle.stop().await.unwrap();
}

/// A cluster whose tails stay open without messages.
struct QuietCluster;

#[async_trait::async_trait]
impl ClusterInfo for QuietCluster {
    async fn topic_message_totals(
        &self,
        topics: &[String],
    ) -> Result<HashMap<String, i64>, String> {
        Ok(topics.iter().map(|t| (t.clone(), 0)).collect())
    }

    async fn tail(
        &self,
        _topic: &str,
        _backlog: usize,
    ) -> Result<BoxStream<'static, Result<TailMessage, String>>, String> {
        Ok(stream::pending().boxed())
    }
}

#[tokio::test]
async fn message_tails_beyond_the_bound_get_503_with_retry_after() {
    let s = Limited::start_with(|c| AdminConfig {
        cluster: Some(Arc::new(QuietCluster)),
        // All of the bound within one admin's own share.
        streams: StreamLimits {
            tails: 2,
            tails_per_user: 4,
            ..Default::default()
        },
        ..c
    })
    .await;
    let token = s.token().await;
    let url = s.handle.url();
    let (status, body) = call(
        s.http
            .post(format!("{url}/api/topics"))
            .bearer_auth(&token)
            .json(&json!({"name": "tailed"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["topic_id"].as_i64().unwrap();
    for step in [
        s.http
            .post(format!("{url}/api/topics/{id}/approve"))
            .bearer_auth(&token),
        s.http
            .post(format!("{url}/api/topics/activate_by_name"))
            .header("X-Producer-Key", PRODUCER_KEY)
            .json(&json!({"topic_name": "tailed"})),
    ] {
        let (status, body) = call(step).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let tail = || {
        s.http
            .get(format!("{url}/api/topics/{id}/tail"))
            .bearer_auth(&token)
            .send()
    };
    let mut open = Vec::new();
    loop {
        let res = tail().await.unwrap();
        if res.status() != StatusCode::OK {
            assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert!(res.headers().contains_key("retry-after"));
            assert_security_headers(&res);
            break;
        }
        open.push(res);
        assert!(open.len() <= 64, "tails are not bounded");
    }
    assert!(!open.is_empty());
    drop(open);
    s.handle.stop().await.unwrap();
}

#[tokio::test]
async fn security_headers_are_on_errors_404s_and_the_dashboard_too() {
    let s = Limited::start(Limits::default()).await;
    let url = s.handle.url();
    let answers = [
        s.http.get(format!("{url}/")).send().await.unwrap(),
        s.http
            .get(format!("{url}/api/health"))
            .send()
            .await
            .unwrap(),
        s.http
            .get(format!("{url}/api/nothing"))
            .send()
            .await
            .unwrap(),
        s.http
            .get(format!("{url}/no/such/page"))
            .send()
            .await
            .unwrap(),
        s.http
            .get(format!("{url}/api/topics"))
            .send()
            .await
            .unwrap(),
        s.http
            .request(Method::PUT, format!("{url}/api/topics"))
            .send()
            .await
            .unwrap(),
    ];
    for res in &answers {
        assert_security_headers(res);
    }
    s.handle.stop().await.unwrap();
}
