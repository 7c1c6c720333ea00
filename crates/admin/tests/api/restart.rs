use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn restart_on_the_same_database_keeps_everything() {
    let s = Server::start().await;
    let id = s.active_topic("durable").await;
    let pending = s.topic("still_pending").await;
    let kim = s.user("kim", "user").await;
    s.post("/api/subscriptions", &kim, json!({"topic_name": "durable"}))
        .await;
    let (_, audit_before) = s.get("/api/audit?limit=1000", &s.admin).await;
    let stats_before = s.stats().await;
    let dir = s.stop().await;

    let s = Server::start_in(dir).await;
    let (_, t) = s.get(&format!("/api/topics/{id}"), &s.admin).await;
    assert_eq!(t["status"], "active");
    let (_, t) = s.get(&format!("/api/topics/{pending}"), &s.admin).await;
    assert_eq!(t["status"], "pending");
    let kim = s.login("kim", USER_PASSWORD).await;
    let (_, subs) = s.get("/api/subscriptions", &kim).await;
    assert_eq!(subs[0]["topic_name"], "durable");
    let (_, users) = s.get("/api/users", &s.admin).await;
    assert_eq!(users.as_array().unwrap().len(), 2);
    let (_, audit_after) = s.get("/api/audit?limit=1000", &s.admin).await;
    assert_eq!(audit_after, audit_before);
    let stats_after = s.stats().await;
    for key in [
        "total_topics",
        "pending_topics",
        "active_topics",
        "total_subscriptions",
        "total_users",
    ] {
        assert_eq!(stats_after[key], stats_before[key], "{key}");
    }
    let (status, _) = s
        .post("/api/topics", &s.admin, json!({"name": "durable"}))
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "uniqueness survives the restart"
    );
    s.stop().await;
}
