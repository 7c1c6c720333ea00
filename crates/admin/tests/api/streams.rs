//! Long-lived streams (`/api/events` and topic tails): they end when their authority
//! goes (sign-out, expiry, deletion of the user, the right to read a topic), and open
//! slots are bounded per user with a share kept for the producer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::{self, BoxStream};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use streamhub_admin::{AdminConfig, ClusterInfo, StreamLimits, TailMessage};

use crate::common::*;

/// Generous: a stream ends about a second after its authority goes.
const HANG_GUARD: Duration = Duration::from_secs(30);
/// Short enough to wait for, long enough to open a stream after signing in.
const SHORT_TTL: Duration = Duration::from_secs(5);

/// A cluster whose tails stay open and silent, as a quiet topic's do.
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

async fn server(token_ttl: Option<Duration>, streams: StreamLimits) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = AdminConfig {
        cluster: Some(Arc::new(QuietCluster)),
        streams,
        ..config(&dir)
    };
    if let Some(ttl) = token_ttl {
        config.token_ttl = ttl;
    }
    Server::start_with(dir, config).await
}

/// A request on a client without a total timeout: streams outlive the usual one.
fn open(s: &Server, path: &str, token: Option<&str>) -> RequestBuilder {
    let req = reqwest::Client::new().request(Method::GET, s.url(path));
    match token {
        Some(t) => req.bearer_auth(t),
        None => req.header("X-Producer-Key", PRODUCER_KEY),
    }
}

async fn opened(req: RequestBuilder) -> Response {
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res
}

/// Reads a stream to its end; fails if it is still open after the guard.
async fn assert_ends(res: Response, what: &str) {
    let mut body = res.bytes_stream();
    let read = async {
        while let Some(chunk) = body.next().await {
            chunk.unwrap_or_else(|e| panic!("{what}: the stream broke instead of ending: {e}"));
        }
    };
    tokio::time::timeout(HANG_GUARD, read)
        .await
        .unwrap_or_else(|_| panic!("{what}: still open {HANG_GUARD:?} later"));
}

/// Reads a stream until an SSE event named `name` whose data contains `needle`.
async fn assert_event(res: Response, name: &str, needle: &str) {
    let mut body = res.bytes_stream();
    let mut buf = String::new();
    let read = async {
        while let Some(chunk) = body.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if buf.contains(&format!("event: {name}\ndata: ")) && buf.contains(needle) {
                return;
            }
        }
        panic!("the stream ended before a {name} event with {needle}");
    };
    tokio::time::timeout(HANG_GUARD, read)
        .await
        .expect("no such event in time");
}

/// A fresh admin token: under a short TTL the server's own may have expired.
async fn admin(s: &Server) -> String {
    s.login("admin", ADMIN_PASSWORD).await
}

async fn create_user(s: &Server, username: &str, role: &str) {
    let (status, body) = s
        .post(
            "/api/users",
            &admin(s).await,
            json!({"username": username, "password": USER_PASSWORD, "role": role}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn sign_in(s: &Server, username: &str) -> String {
    s.login(username, USER_PASSWORD).await
}

async fn delete_user(s: &Server, username: &str) {
    let (status, body) = s
        .delete(&format!("/api/users/{username}"), &admin(s).await, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// An active topic `users` subscribe to; returns its id.
async fn subscribed_topic(s: &Server, name: &str, users: &[&str]) -> i64 {
    let token = admin(s).await;
    let (status, body) = s.post("/api/topics", &token, json!({"name": name})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["topic_id"].as_i64().unwrap();
    let (status, body) = s
        .post_empty(&format!("/api/topics/{id}/approve"), &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s.activate(name).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for user in users {
        let (status, body) = s
            .post(
                "/api/subscriptions",
                &token,
                json!({"user_id": user, "topic_name": name}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    id
}

/// Opens a stream once a slot is free: a stream that ended gives its slot back as the
/// server drops it, which may be a moment after the client read its end.
async fn opened_once_free(req: impl Fn() -> RequestBuilder) -> Response {
    let wait = async {
        loop {
            let res = req().send().await.unwrap();
            if res.status() == StatusCode::OK {
                return res;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(HANG_GUARD, wait)
        .await
        .expect("no slot was given back")
}

async fn refused(req: RequestBuilder, want: StatusCode) -> Value {
    let (status, body) = json_of(req.send().await.unwrap()).await;
    assert_eq!(status, want, "{body}");
    body
}

// ---------------------------------------------------------------- authority

#[tokio::test]
async fn event_stream_ends_when_its_token_is_signed_out() {
    let s = server(None, StreamLimits::default()).await;
    create_user(&s, "alice", "user").await;
    let signed_out = sign_in(&s, "alice").await;
    let other = sign_in(&s, "alice").await;
    let ending = opened(open(&s, "/api/events", Some(&signed_out))).await;
    let staying = opened(open(&s, "/api/events", Some(&other))).await;
    let (status, _) = s.post_empty("/api/auth/logout", &signed_out).await;
    assert_eq!(status, StatusCode::OK);
    assert_ends(ending, "event stream of a signed-out token").await;
    // The same user's other token keeps its stream.
    s.topic("after_sign_out").await;
    assert_event(staying, "topic", "after_sign_out").await;
    s.stop().await;
}

#[tokio::test]
async fn event_stream_ends_when_its_token_expires() {
    let s = server(Some(SHORT_TTL), StreamLimits::default()).await;
    create_user(&s, "alice", "user").await;
    let alice = sign_in(&s, "alice").await;
    let res = opened(open(&s, "/api/events", Some(&alice))).await;
    assert_ends(res, "event stream of an expired token").await;
    s.stop().await;
}

#[tokio::test]
async fn event_stream_ends_when_its_user_is_deleted() {
    let s = server(None, StreamLimits::default()).await;
    create_user(&s, "alice", "user").await;
    create_user(&s, "root2", "admin").await;
    let alice = opened(open(&s, "/api/events", Some(&sign_in(&s, "alice").await))).await;
    // A deleted admin must not go on reading every user's events.
    let root2 = opened(open(&s, "/api/events", Some(&sign_in(&s, "root2").await))).await;
    delete_user(&s, "alice").await;
    delete_user(&s, "root2").await;
    assert_ends(alice, "event stream of a deleted user").await;
    assert_ends(root2, "event stream of a deleted admin").await;
    s.stop().await;
}

#[tokio::test]
async fn tail_ends_when_its_token_is_signed_out() {
    let s = server(None, StreamLimits::default()).await;
    create_user(&s, "alice", "user").await;
    let id = subscribed_topic(&s, "tail_sign_out", &["alice"]).await;
    let alice = sign_in(&s, "alice").await;
    let res = opened(open(&s, &format!("/api/topics/{id}/tail"), Some(&alice))).await;
    let (status, _) = s.post_empty("/api/auth/logout", &alice).await;
    assert_eq!(status, StatusCode::OK);
    assert_ends(res, "tail of a signed-out token").await;
    s.stop().await;
}

#[tokio::test]
async fn tail_ends_when_its_token_expires() {
    let s = server(Some(SHORT_TTL), StreamLimits::default()).await;
    create_user(&s, "alice", "user").await;
    let id = subscribed_topic(&s, "tail_expiry", &["alice"]).await;
    let alice = sign_in(&s, "alice").await;
    let res = opened(open(&s, &format!("/api/topics/{id}/tail"), Some(&alice))).await;
    assert_ends(res, "tail of an expired token").await;
    s.stop().await;
}

#[tokio::test]
async fn tail_ends_when_its_user_is_deleted() {
    let s = server(None, StreamLimits::default()).await;
    create_user(&s, "alice", "user").await;
    create_user(&s, "root2", "admin").await;
    let id = subscribed_topic(&s, "tail_deletion", &["alice"]).await;
    let path = format!("/api/topics/{id}/tail");
    let alice = opened(open(&s, &path, Some(&sign_in(&s, "alice").await))).await;
    let root2 = opened(open(&s, &path, Some(&sign_in(&s, "root2").await))).await;
    delete_user(&s, "alice").await;
    delete_user(&s, "root2").await;
    assert_ends(alice, "tail of a deleted user").await;
    assert_ends(root2, "tail of a deleted admin").await;
    s.stop().await;
}

#[tokio::test]
async fn tail_ends_when_its_user_may_no_longer_read_the_topic() {
    let s = server(None, StreamLimits::default()).await;
    create_user(&s, "alice", "user").await;
    let deactivated = subscribed_topic(&s, "tail_deactivated", &["alice"]).await;
    let unsubscribed = subscribed_topic(&s, "tail_unsubscribed", &["alice"]).await;
    let alice = sign_in(&s, "alice").await;
    let tail = |id: i64| open(&s, &format!("/api/topics/{id}/tail"), Some(&alice));
    let on_deactivated = opened(tail(deactivated)).await;
    let on_unsubscribed = opened(tail(unsubscribed)).await;
    let admin_on_deactivated = opened(open(
        &s,
        &format!("/api/topics/{deactivated}/tail"),
        Some(&s.admin),
    ))
    .await;

    let (status, body) = s
        .post_empty(&format!("/api/topics/{deactivated}/deactivate"), &s.admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s
        .delete(
            "/api/subscriptions",
            &alice,
            Some(json!({"topic_name": "tail_unsubscribed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ends(on_deactivated, "a user's tail of a deactivated topic").await;
    assert_ends(on_unsubscribed, "a tail after unsubscribing").await;
    // An admin still reads the deactivated topic.
    let still_open = tokio::time::timeout(Duration::from_secs(3), async {
        let mut body = admin_on_deactivated.bytes_stream();
        while let Some(chunk) = body.next().await {
            chunk.unwrap();
        }
    })
    .await
    .is_err();
    assert!(still_open, "an admin's tail of an inactive topic ended");
    s.stop().await;
}

// ---------------------------------------------------------------- slots

/// Small bounds: 6 event streams for users and admins and 2 for the producer, 4 per user;
/// 3 tails, 2 per user.
const SMALL: StreamLimits = StreamLimits {
    event_streams: 8,
    producer_event_streams: 2,
    event_streams_per_user: 4,
    tails: 3,
    tails_per_user: 2,
};

#[tokio::test]
async fn one_user_cannot_take_every_event_stream_and_deleting_them_frees_theirs() {
    let s = server(None, SMALL).await;
    create_user(&s, "alice", "user").await;
    create_user(&s, "bob", "user").await;
    let alice = sign_in(&s, "alice").await;
    let bob = sign_in(&s, "bob").await;

    let mut alices = Vec::new();
    for _ in 0..SMALL.event_streams_per_user {
        alices.push(opened(open(&s, "/api/events", Some(&alice))).await);
    }
    let body = refused(
        open(&s, "/api/events", Some(&alice)),
        StatusCode::TOO_MANY_REQUESTS,
    )
    .await;
    assert_eq!(body["code"], "too_many_requests");
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("'alice'") && error.contains("one user"),
        "{body}"
    );

    // Another user still connects, up to what users and admins share in all.
    let shared = SMALL.event_streams - SMALL.producer_event_streams;
    let mut bobs = Vec::new();
    for _ in SMALL.event_streams_per_user..shared {
        bobs.push(opened(open(&s, "/api/events", Some(&bob))).await);
    }
    let body = refused(
        open(&s, "/api/events", Some(&bob)),
        StatusCode::SERVICE_UNAVAILABLE,
    )
    .await;
    assert_eq!(body["code"], "unavailable");

    // The producer's share is its own.
    let mut producers = Vec::new();
    for _ in 0..SMALL.producer_event_streams {
        producers.push(opened(open(&s, "/api/events", None)).await);
    }
    let body = refused(open(&s, "/api/events", None), StatusCode::TOO_MANY_REQUESTS).await;
    assert!(
        body["error"].as_str().unwrap().contains("producer"),
        "{body}"
    );

    // Deleting alice ends her streams, which gives their slots back.
    delete_user(&s, "alice").await;
    for res in alices {
        assert_ends(res, "event stream of a deleted user").await;
    }
    bobs.push(opened_once_free(|| open(&s, "/api/events", Some(&bob))).await);
    drop((bobs, producers));
    s.stop().await;
}

#[tokio::test]
async fn one_user_cannot_take_every_tail_and_deleting_them_frees_theirs() {
    let s = server(None, SMALL).await;
    create_user(&s, "alice", "user").await;
    create_user(&s, "bob", "user").await;
    let id = subscribed_topic(&s, "tailed", &["alice", "bob"]).await;
    let path = format!("/api/topics/{id}/tail");
    let alice = sign_in(&s, "alice").await;
    let bob = sign_in(&s, "bob").await;

    let mut alices = Vec::new();
    for _ in 0..SMALL.tails_per_user {
        alices.push(opened(open(&s, &path, Some(&alice))).await);
    }
    let body = refused(open(&s, &path, Some(&alice)), StatusCode::TOO_MANY_REQUESTS).await;
    assert!(body["error"].as_str().unwrap().contains("tails"), "{body}");

    let mut bobs = vec![opened(open(&s, &path, Some(&bob))).await];
    let body = refused(open(&s, &path, Some(&bob)), StatusCode::SERVICE_UNAVAILABLE).await;
    assert!(body["error"].as_str().unwrap().contains("tails"), "{body}");

    delete_user(&s, "alice").await;
    for res in alices {
        assert_ends(res, "tail of a deleted user").await;
    }
    bobs.push(opened_once_free(|| open(&s, &path, Some(&bob))).await);
    drop(bobs);
    s.stop().await;
}
