use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

/// 25 approvals of one topic race 25 subscriptions of different users to another; the
/// database, the statistics and the audit log must tell the same story afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_mutations_leave_database_and_audit_in_agreement() {
    let s = std::sync::Arc::new(Server::start().await);
    let pending = s.topic("raced").await;
    s.active_topic("crowded").await;
    // Subscriptions belong to existing users.
    for i in (1..50).step_by(2) {
        let (status, body) = s
            .post(
                "/api/users",
                &s.admin,
                json!({"username": format!("user_{i}"), "password": USER_PASSWORD, "role": "user"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    let mut tasks = Vec::new();
    for i in 0..50 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                s.post_empty(&format!("/api/topics/{pending}/approve"), &s.admin)
                    .await
            } else {
                s.post(
                    "/api/subscriptions",
                    &s.admin,
                    json!({"user_id": format!("user_{i}"), "topic_name": "crowded"}),
                )
                .await
            }
        }));
    }
    let mut approvals_changed = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert!(status.is_success(), "{status}: {body}");
        if body["message"] == "Topic approved successfully" {
            approvals_changed += 1;
        }
    }
    assert_eq!(
        approvals_changed, 1,
        "exactly one request made the transition"
    );

    let (_, topic) = s.get(&format!("/api/topics/{pending}"), &s.admin).await;
    assert_eq!(topic["status"], "approved");
    let (_, approvals) = s
        .get(
            &format!("/api/audit?topic={pending}&action=approve"),
            &s.admin,
        )
        .await;
    assert_eq!(approvals.as_array().unwrap().len(), 1, "{approvals}");

    let (_, subs) = s.get("/api/subscriptions", &s.admin).await;
    assert_eq!(subs.as_array().unwrap().len(), 25);
    let (_, subscribed) = s
        .get("/api/audit?action=subscribe&limit=1000", &s.admin)
        .await;
    assert_eq!(subscribed.as_array().unwrap().len(), 25);
    let stats = s.stats().await;
    assert_eq!(stats["total_subscriptions"], 25);
    assert_eq!(stats["approved_topics"], 1);
    assert_eq!(stats["active_topics"], 1);
    assert_eq!(stats["total_topics"], 2);
    let (status, _) = s.get("/api/health", &s.admin).await;
    assert_eq!(status, StatusCode::OK);
    std::sync::Arc::into_inner(s).unwrap().stop().await;
}
