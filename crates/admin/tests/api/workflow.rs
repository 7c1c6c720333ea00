use reqwest::StatusCode;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn seed_workflow_runs_end_to_end() {
    let s = Server::start().await;
    let alice = s.user("alice", "user").await;

    let (status, body) = s
        .post(
            "/api/topics",
            &s.admin,
            json!({"name": "sensor_data", "created_by": "admin", "partitions": 3,
                   "replication_factor": 1, "description": "IoT sensors"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(body["message"], "Topic creation request submitted");
    let id = body["topic_id"].as_i64().unwrap();

    let (status, body) = s.get("/api/topics", &alice).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["topic_name"], "sensor_data");
    assert_eq!(body[0]["status"], "pending");
    assert_eq!(body[0]["data_type"], "sensor", "inferred from the name");

    let (status, body) = s
        .post_empty(&format!("/api/topics/{id}/approve"), &s.admin)
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::OK, Some("Topic approved successfully"))
    );

    let (status, body) = s.activate("sensor_data").await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::OK, Some("Topic activated"))
    );

    let (status, body) = s.get("/api/topics/active", &alice).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_array().unwrap().len(), 1);
    assert_eq!(body[0]["topic_name"], "sensor_data");
    assert_eq!(body[0]["description"], "IoT sensors");
    assert!(body[0]["activated_at"].is_string());

    let (status, body) = s
        .post(
            "/api/subscriptions",
            &alice,
            json!({"user_id": "alice", "topic_name": "sensor_data"}),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::CREATED, Some("Subscription added successfully"))
    );

    let (status, body) = s.get("/api/subscriptions?user_id=alice", &alice).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["user_id"], "alice");
    assert_eq!(body[0]["topic_name"], "sensor_data");
    assert_eq!(body[0]["status"], "active");
    assert!(body[0]["subscription_id"].is_i64() && body[0]["subscribed_at"].is_string());

    let stats = s.stats().await;
    assert_eq!(stats["total_topics"], 1);
    assert_eq!(stats["active_topics"], 1);
    assert_eq!(stats["pending_topics"], 0);
    assert_eq!(stats["total_subscriptions"], 1);
    assert_eq!(stats["total_users"], 2);
    assert!(stats["timestamp"].is_string());
    assert_eq!(stats["kafka"]["enabled"], false);
    assert!(
        stats["kafka"]["note"]
            .as_str()
            .unwrap()
            .contains("--bootstrap-servers")
    );

    let (status, body) = s
        .post_empty(&format!("/api/topics/{id}/deactivate"), &s.admin)
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::OK, Some("Topic deactivated successfully"))
    );

    let (status, body) = s
        .delete(
            "/api/subscriptions",
            &alice,
            Some(json!({"user_id": "alice", "topic_name": "sensor_data"})),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::OK, Some("Subscription removed successfully"))
    );

    let stats = s.stats().await;
    assert_eq!(stats["inactive_topics"], 1);
    assert_eq!(stats["total_subscriptions"], 0);
    s.stop().await;
}

#[tokio::test]
async fn health_answers_without_credentials() {
    let s = Server::start().await;
    let (status, body) = call(s.request(reqwest::Method::GET, "/api/health", None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "healthy");
    assert!(body["timestamp"].is_string());
    s.stop().await;
}

#[tokio::test]
async fn topic_details_carry_type_rate_and_kafka_note() {
    let s = Server::start().await;
    let (status, body) = s
        .post(
            "/api/topics",
            &s.admin,
            json!({"name": "misc", "data_type": "payment", "rate_per_second": 250.5}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["topic_id"].as_i64().unwrap();
    let (status, t) = s.get(&format!("/api/topics/{id}"), &s.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(t["topic_id"], id);
    assert_eq!(t["data_type"], "payment", "given type wins over the name");
    assert_eq!(t["rate_per_second"], 250.5);
    assert_eq!(t["partitions"], 3, "seed default");
    assert_eq!(t["replication_factor"], 1, "seed default");
    assert_eq!(t["created_by"], "admin");
    assert_eq!(t["kafka"]["enabled"], false);
    s.stop().await;
}

#[tokio::test]
async fn listing_filters_by_status_and_pages() {
    let s = Server::start().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(s.topic(&format!("page_{i}")).await);
    }
    s.post_empty(&format!("/api/topics/{}/approve", ids[1]), &s.admin)
        .await;
    s.delete(&format!("/api/topics/{}", ids[4]), &s.admin, None)
        .await;

    let (_, all) = s.get("/api/topics", &s.admin).await;
    assert_eq!(
        all.as_array().unwrap().len(),
        4,
        "deleted topics are hidden: {all}"
    );
    let (_, approved) = s.get("/api/topics?status=approved", &s.admin).await;
    assert_eq!(approved.as_array().unwrap().len(), 1);
    assert_eq!(approved[0]["topic_id"], ids[1]);
    let (_, deleted) = s.get("/api/topics?status=deleted", &s.admin).await;
    assert_eq!(deleted[0]["topic_id"], ids[4]);
    let (_, page) = s.get("/api/topics?limit=2&offset=1", &s.admin).await;
    let got: Vec<i64> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["topic_id"].as_i64().unwrap())
        .collect();
    assert_eq!(got, [ids[2], ids[1]], "newest first");
    s.stop().await;
}

#[tokio::test]
async fn requester_reads_the_rejection_reason() {
    let s = Server::start().await;
    let bob = s.user("bob", "user").await;
    let (status, body) = s
        .post("/api/topics", &bob, json!({"name": "bobs_topic"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = body["topic_id"].as_i64().unwrap();
    let (status, body) = s
        .post(
            &format!("/api/topics/{id}/reject"),
            &s.admin,
            json!({"reason": "use sensor_data instead"}),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::OK, Some("Topic rejected"))
    );
    let (_, t) = s.get(&format!("/api/topics/{id}"), &bob).await;
    assert_eq!(t["status"], "rejected");
    assert_eq!(t["rejection_reason"], "use sensor_data instead");
    assert_eq!(t["created_by"], "bob");
    let (status, _) = s
        .post(
            &format!("/api/topics/{id}/reject"),
            &s.admin,
            json!({"reason": "  "}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    s.stop().await;
}

#[tokio::test]
async fn deactivated_topic_can_be_brought_back_but_not_by_the_producer() {
    let s = Server::start().await;
    let id = s.active_topic("comeback").await;
    s.post_empty(&format!("/api/topics/{id}/deactivate"), &s.admin)
        .await;
    let (status, body) = s.activate("comeback").await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "the producer must not override a deactivation: {body}"
    );
    let (status, body) = s
        .post_empty(&format!("/api/topics/{id}/reactivate"), &s.admin)
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::OK, Some("Topic reactivated successfully"))
    );
    let (_, t) = s.get(&format!("/api/topics/{id}"), &s.admin).await;
    assert_eq!(t["status"], "active");
    s.stop().await;
}

#[tokio::test]
async fn repeating_a_request_is_harmless() {
    let s = Server::start().await;
    let id = s.topic("twice").await;
    for _ in 0..2 {
        let (status, _) = s
            .post_empty(&format!("/api/topics/{id}/approve"), &s.admin)
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, body) = s
        .post_empty(&format!("/api/topics/{id}/approve"), &s.admin)
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::OK, Some("Topic is already approved"))
    );
    for _ in 0..2 {
        let (status, _) = s.activate("twice").await;
        assert_eq!(status, StatusCode::OK);
    }
    let (_, audit) = s.get(&format!("/api/audit?topic={id}"), &s.admin).await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["activate", "approve", "create"],
        "newest first, no duplicates"
    );
    s.stop().await;
}

#[tokio::test]
async fn deleting_a_subscribed_topic_is_refused_until_unsubscribed() {
    let s = Server::start().await;
    let id = s.active_topic("held").await;
    let carol = s.user("carol", "user").await;
    s.post("/api/subscriptions", &carol, json!({"topic_name": "held"}))
        .await;
    let (status, body) = s.delete(&format!("/api/topics/{id}"), &s.admin, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"].as_str().unwrap().contains("subscription"));
    s.delete(
        "/api/subscriptions",
        &carol,
        Some(json!({"topic_name": "held"})),
    )
    .await;
    let (status, body) = s.delete(&format!("/api/topics/{id}"), &s.admin, None).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::OK, Some("Topic deleted successfully"))
    );
    let (_, t) = s.get(&format!("/api/topics/{id}"), &s.admin).await;
    assert_eq!(t["status"], "deleted");
    // The name is free again.
    s.topic("held").await;
    s.stop().await;
}

#[tokio::test]
async fn audit_filters_by_actor_topic_and_action_and_pages() {
    let s = Server::start().await;
    let dave = s.user("dave", "user").await;
    let a = s.topic("audited_a").await;
    s.post("/api/topics", &dave, json!({"name": "audited_b"}))
        .await;
    s.post_empty(&format!("/api/topics/{a}/approve"), &s.admin)
        .await;

    let (_, by_dave) = s.get("/api/audit?actor=dave", &s.admin).await;
    assert_eq!(by_dave.as_array().unwrap().len(), 1);
    assert_eq!(by_dave[0]["target"], "audited_b");
    let (_, approvals) = s.get("/api/audit?action=approve", &s.admin).await;
    assert_eq!(approvals.as_array().unwrap().len(), 1);
    assert_eq!(approvals[0]["before"], "pending");
    assert_eq!(approvals[0]["after"], "approved");
    assert_eq!(approvals[0]["actor"], "admin");
    let (_, by_name) = s.get("/api/audit?topic=audited_a", &s.admin).await;
    assert_eq!(by_name.as_array().unwrap().len(), 2);
    s.delete(&format!("/api/topics/{a}"), &s.admin, None).await;
    let (_, deleted) = s.get("/api/audit?topic=audited_a", &s.admin).await;
    assert_eq!(
        deleted.as_array().unwrap().len(),
        3,
        "a deleted topic's history stays readable"
    );
    let (_, none) = s.get("/api/audit?topic=never_existed", &s.admin).await;
    assert_eq!(none, serde_json::json!([]));
    let (_, page) = s.get("/api/audit?limit=1&offset=1", &s.admin).await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    let (status, _) = s.get("/api/audit", &dave).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    s.stop().await;
}
