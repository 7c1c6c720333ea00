use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};

use crate::common::*;

/// Reads the event stream until an event named `name` whose data contains `needle`.
async fn wait_for_event(res: reqwest::Response, name: &str, needle: &str) -> serde_json::Value {
    let mut stream = res.bytes_stream();
    let mut buf = String::new();
    let read = async {
        while let Some(chunk) = stream.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            while let Some(end) = buf.find("\n\n") {
                let frame: String = buf.drain(..end + 2).collect();
                let event = frame
                    .lines()
                    .find_map(|l| l.strip_prefix("event: "))
                    .unwrap_or("");
                let data = frame
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .unwrap_or("");
                if event == name && data.contains(needle) {
                    return serde_json::from_str(data).unwrap();
                }
            }
        }
        panic!("the event stream ended before a {name} event with {needle}");
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("no matching event within 20 s")
}

#[tokio::test]
async fn event_stream_announces_an_approval() {
    let s = Server::start().await;
    let id = s.topic("watched").await;
    let res = s
        .request(Method::GET, "/api/events", Some(&s.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    s.post_empty(&format!("/api/topics/{id}/approve"), &s.admin)
        .await;
    let event = wait_for_event(res, "topic", "\"approved\"").await;
    assert_eq!(event["kind"], "topic");
    assert_eq!(event["action"], "approve");
    assert_eq!(event["topic"]["topic_id"], id);
    assert_eq!(event["topic"]["status"], "approved");
    s.stop().await;
}

#[tokio::test]
async fn event_stream_announces_subscriptions() {
    let s = Server::start().await;
    s.active_topic("followed").await;
    s.user("lee", "user").await;
    let res = s
        .request(Method::GET, "/api/events", Some(&s.admin))
        .send()
        .await
        .unwrap();
    s.post(
        "/api/subscriptions",
        &s.admin,
        serde_json::json!({"user_id": "lee", "topic_name": "followed"}),
    )
    .await;
    let event = wait_for_event(res, "subscription", "lee").await;
    assert_eq!(event["subscribed"], true);
    assert_eq!(event["subscription"]["topic_name"], "followed");
    s.stop().await;
}

#[tokio::test]
async fn a_user_sees_only_their_own_subscription_events() {
    let s = Server::start().await;
    s.active_topic("shared").await;
    let alice = s.user("alice", "user").await;
    let bob = s.user("bob", "user").await;
    let res = s
        .request(Method::GET, "/api/events", Some(&alice))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Bob's subscription comes first: if it leaked, it would be the first event alice reads.
    let body = serde_json::json!({"topic_name": "shared"});
    assert!(
        s.post("/api/subscriptions", &bob, body.clone())
            .await
            .0
            .is_success()
    );
    assert!(
        s.post("/api/subscriptions", &alice, body)
            .await
            .0
            .is_success()
    );
    let event = wait_for_event(res, "subscription", "shared").await;
    assert_eq!(event["subscription"]["user_id"], "alice");
    s.stop().await;
}

#[tokio::test]
async fn stopping_the_service_ends_open_event_streams() {
    let s = Server::start().await;
    let res = s
        .request(Method::GET, "/api/events", Some(&s.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    tokio::time::timeout(Duration::from_secs(10), s.stop())
        .await
        .expect("graceful shutdown must not wait for event streams");
    drop(res);
}

#[tokio::test]
async fn event_streams_beyond_the_bound_get_503_until_one_closes() {
    // A small bound, all of it within one admin's own share.
    let limits = streamhub_admin::StreamLimits {
        event_streams: 4,
        producer_event_streams: 1,
        ..Default::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let config = streamhub_admin::AdminConfig {
        streams: limits,
        ..config(&dir)
    };
    let s = Server::start_with(dir, config).await;
    let mut open = Vec::new();
    for _ in 0..limits.event_streams - limits.producer_event_streams {
        let res = s
            .request(Method::GET, "/api/events", Some(&s.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        open.push(res);
    }
    let (status, body) = call(s.request(Method::GET, "/api/events", Some(&s.admin))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "unavailable");

    drop(open.pop());
    // The server notices the closed connection on its next write or poll.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let res = s
            .request(Method::GET, "/api/events", Some(&s.admin))
            .send()
            .await
            .unwrap();
        if res.status() == StatusCode::OK {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was never given back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(open);
    s.stop().await;
}
