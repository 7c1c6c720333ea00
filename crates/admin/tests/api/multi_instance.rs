//! Two admin instances on one PostgreSQL database behave as one service. Needs a server:
//! `STREAMHUB_TEST_POSTGRES` (scripts/test starts one); each test uses a fresh database.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use streamhub_store::postgres::testing::{fresh_database_url, terminate_listeners};
use tokio::sync::mpsc;

use crate::common::*;

async fn two_instances() -> (Arc<Server>, Arc<Server>) {
    let url = fresh_database_url().await.unwrap_or_else(|e| panic!("{e}"));
    let a = Server::start_on(&url).await;
    let b = Server::start_on(&url).await;
    (Arc::new(a), Arc::new(b))
}

/// Opens `/api/events` on `server` and forwards each event's data with its arrival time.
async fn watch(server: &Server) -> mpsc::UnboundedReceiver<(Instant, Value)> {
    let res = server
        .request(Method::GET, "/api/events", Some(&server.admin))
        .timeout(Duration::from_secs(3600))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = res.bytes_stream();
        let mut buf = String::new();
        while let Some(Ok(chunk)) = stream.next().await {
            let at = Instant::now();
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let frame: String = buf.drain(..end + 2).collect();
                if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data: "))
                    && let Ok(value) = serde_json::from_str::<Value>(data)
                    && tx.send((at, value)).is_err()
                {
                    return;
                }
            }
        }
    });
    rx
}

fn is_approval_of(event: &Value, topic_id: i64) -> bool {
    event["kind"] == "topic"
        && event["action"] == "approve"
        && event["topic"]["topic_id"] == topic_id
}

/// The approval events of `topic_id` that arrive within `window`.
/// The approval events of `topic_id`: waits for the first (hang guard: 30 s), then
/// gathers any repeat for a further second. A slow machine can delay the first but cannot
/// make a repeat appear.
async fn approvals_of(
    events: &mut mpsc::UnboundedReceiver<(Instant, Value)>,
    topic_id: i64,
) -> Vec<Instant> {
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while let Ok(Some((at, event))) = tokio::time::timeout_at(deadline, events.recv()).await {
        if is_approval_of(&event, topic_id) {
            if seen.is_empty() {
                deadline = tokio::time::Instant::now() + Duration::from_secs(1);
            }
            seen.push(at);
        }
    }
    seen
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set STREAMHUB_TEST_POSTGRES (scripts/test does)"]
async fn approval_on_one_instance_reaches_the_other_event_stream_once() {
    let (a, b) = two_instances().await;
    let id = a.topic("seen_everywhere").await;
    let mut on_a = watch(&a).await;
    let mut on_b = watch(&b).await;

    let (status, body) = a
        .post_empty(&format!("/api/topics/{id}/approve"), &a.admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let on_b_times = approvals_of(&mut on_b, id).await;
    let on_a_times = approvals_of(&mut on_a, id).await;
    assert_eq!(
        on_b_times.len(),
        1,
        "instance B saw {} approval events",
        on_b_times.len()
    );
    assert_eq!(
        on_a_times.len(),
        1,
        "instance A, which approved, saw {} approval events",
        on_a_times.len()
    );

    // And the other way round, with B's own stream seeing its change once.
    let id2 = b.topic("seen_everywhere_too").await;
    let (status, _) = b
        .post_empty(&format!("/api/topics/{id2}/approve"), &b.admin)
        .await;
    assert_eq!(status, StatusCode::OK);
    let on_a_times = approvals_of(&mut on_a, id2).await;
    let on_b_times = approvals_of(&mut on_b, id2).await;
    assert_eq!((on_a_times.len(), on_b_times.len()), (1, 1));

    Arc::into_inner(a).unwrap().stop().await;
    Arc::into_inner(b).unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs PostgreSQL: set STREAMHUB_TEST_POSTGRES (scripts/test does)"]
async fn concurrent_approvals_on_both_instances_make_one_transition_and_one_audit_row() {
    let (a, b) = two_instances().await;
    let id = a.topic("raced_twice").await;
    let mut tasks = Vec::new();
    for i in 0..50 {
        let server = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            server
                .post_empty(&format!("/api/topics/{id}/approve"), &server.admin)
                .await
        }));
    }
    let mut changed = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert!(status.is_success(), "{status}: {body}");
        if body["message"] == "Topic approved successfully" {
            changed += 1;
        }
    }
    assert_eq!(changed, 1, "exactly one request made the transition");
    for server in [&a, &b] {
        let (_, topic) = server
            .get(&format!("/api/topics/{id}"), &server.admin)
            .await;
        assert_eq!(topic["status"], "approved");
        let (_, approvals) = server
            .get(
                &format!("/api/audit?topic={id}&action=approve"),
                &server.admin,
            )
            .await;
        assert_eq!(approvals.as_array().unwrap().len(), 1, "{approvals}");
        let stats = server.stats().await;
        assert_eq!(stats["approved_topics"], 1, "{stats}");
        assert_eq!(stats["pending_topics"], 0, "{stats}");
    }
    Arc::into_inner(a).unwrap().stop().await;
    Arc::into_inner(b).unwrap().stop().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set STREAMHUB_TEST_POSTGRES (scripts/test does)"]
async fn a_lost_event_listener_sends_resync_to_event_stream_clients() {
    let url = fresh_database_url().await.unwrap_or_else(|e| panic!("{e}"));
    let a = Server::start_on(&url).await;
    let b = Server::start_on(&url).await;
    let res = b
        .request(Method::GET, "/api/events", Some(&b.admin))
        .timeout(Duration::from_secs(3600))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let mut stream = res.bytes_stream();
    let mut buf = String::new();
    // The stream's first bytes: it is subscribed before the connection is lost.
    buf.push_str(&String::from_utf8_lossy(
        &stream.next().await.unwrap().unwrap(),
    ));
    assert!(terminate_listeners(&url).await.unwrap() >= 1);
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(at) = buf.find("event: resync\n") {
                buf.drain(..at);
                break;
            }
            buf.push_str(&String::from_utf8_lossy(
                &stream.next().await.unwrap().unwrap(),
            ));
        }
        // Listening again: a change on the other instance arrives after the resync.
        a.topic("after_the_gap").await;
        while !buf.contains("after_the_gap") {
            buf.push_str(&String::from_utf8_lossy(
                &stream.next().await.unwrap().unwrap(),
            ));
        }
    })
    .await
    .expect("no resync, or no event after it, within 30 s");
    drop(stream);
    a.stop().await;
    b.stop().await;
}
