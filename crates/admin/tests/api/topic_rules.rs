//! Topics Kafka could not hold as requested: names it reserves or refuses, approvals the
//! cluster cannot honour, and provisioning failures the producer reports.

use std::collections::HashMap;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use streamhub_admin::{AdminConfig, ClusterInfo};

use crate::common::{PRODUCER_KEY, Server, call, config};

async fn create(s: &Server, body: Value) -> (StatusCode, Value) {
    s.post("/api/topics", &s.admin, body).await
}

async fn report_failure(s: &Server, name: &str, error: &str) -> (StatusCode, Value) {
    call(
        s.request(Method::POST, "/api/topics/provisioning_failure", None)
            .header("X-Producer-Key", PRODUCER_KEY)
            .json(&json!({"topic_name": name, "error": error})),
    )
    .await
}

async fn audit_of(s: &Server, action: &str) -> Vec<Value> {
    let (status, body) = s
        .get(&format!("/api/audit?action={action}"), &s.admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body.as_array().unwrap().clone()
}

#[tokio::test]
async fn kafka_internal_and_colliding_names_are_refused_with_422() {
    let s = Server::start().await;
    for name in ["__consumer_offsets", "__transaction_state"] {
        let (status, err) = create(&s, json!({"name": name})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {err}");
        let message = err["error"].as_str().unwrap();
        assert!(message.contains("internal topics"), "{message}");
    }
    let (status, body) = create(&s, json!({"name": "coll.x"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, err) = create(&s, json!({"name": "coll_x"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["code"], "invalid");
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains("'coll.x'") && message.contains("differ only in '.' and '_'"),
        "{message}"
    );
    // The same name again is still the plain conflict it was.
    let (status, _) = create(&s, json!({"name": "coll.x"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (_, topics) = s.get("/api/topics", &s.admin).await;
    let names: Vec<&str> = topics
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["topic_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["coll.x"]);
    s.stop().await;
}

#[tokio::test]
async fn type_errors_in_request_bodies_name_the_field() {
    let s = Server::start().await;
    let (status, err) = create(&s, json!({"name": "typed", "rate_per_second": "fast"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(
        err["error"],
        "rate_per_second: invalid type: string, expected f64"
    );
    let (status, err) = create(&s, json!({"name": "typed", "partitions": "three"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(
        err["error"].as_str().unwrap().starts_with("partitions: "),
        "{err}"
    );
    let (status, err) = create(&s, json!({"name": "a b"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(
        err["error"].as_str().unwrap().starts_with("name: "),
        "{err}"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_reject_reason_is_in_the_audit_log() {
    let s = Server::start().await;
    let id = s.topic("unwanted").await;
    let (status, body) = s
        .post(
            &format!("/api/topics/{id}/reject"),
            &s.admin,
            json!({"reason": "duplicate of orders"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = audit_of(&s, "reject").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["after"], "rejected");
    assert_eq!(rows[0]["detail"], "duplicate of orders");
    s.stop().await;
}

#[tokio::test]
async fn the_producer_reports_a_provisioning_failure_and_an_admin_rejects_the_topic() {
    let s = Server::start().await;
    let id = s.topic("too_replicated").await;
    let reject = async |reason: &str| {
        s.post(
            &format!("/api/topics/{id}/reject"),
            &s.admin,
            json!({"reason": reason}),
        )
        .await
    };
    // Pending: nothing to provision yet.
    let (status, err) = report_failure(&s, "too_replicated", "no").await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    let (status, body) = s
        .post_empty(&format!("/api/topics/{id}/approve"), &s.admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Approved, and the producer may be creating it: not rejectable yet.
    let (status, err) = reject("changed my mind").await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    // Only the producer (or an admin) reports.
    let user = s.user("alice", "user").await;
    let (status, _) = s
        .post(
            "/api/topics/provisioning_failure",
            &user,
            json!({"topic_name": "too_replicated", "error": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, err) = report_failure(&s, "too_replicated", " ").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let (status, _) = report_failure(&s, "no_such_topic", "x").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let error = "replication factor 3 is more than the 1 broker(s) of the Kafka cluster";
    let (status, body) = report_failure(&s, "too_replicated", error).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["topic_id"], id);
    let (_, topic) = s.get(&format!("/api/topics/{id}"), &s.admin).await;
    assert_eq!(topic["status"], "approved");
    assert_eq!(topic["provisioning_error"], error);
    let rows = audit_of(&s, "provisioning_failed").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["actor"], "producer");
    assert_eq!(rows[0]["detail"], error);

    let (status, body) = reject("needs three brokers").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, topic) = s.get(&format!("/api/topics/{id}"), &s.admin).await;
    assert_eq!(topic["status"], "rejected");
    assert_eq!(topic["rejection_reason"], "needs three brokers");
    s.stop().await;
}

/// A cluster of a given size holding topics of given partition counts.
struct Cluster {
    brokers: usize,
    topics: HashMap<String, i32>,
}

#[async_trait::async_trait]
impl ClusterInfo for Cluster {
    async fn topic_message_totals(
        &self,
        topics: &[String],
    ) -> Result<HashMap<String, i64>, String> {
        Ok(topics.iter().map(|t| (t.clone(), 0)).collect())
    }

    async fn broker_count(&self) -> Result<usize, String> {
        Ok(self.brokers)
    }

    async fn partition_count(&self, topic: &str) -> Result<Option<i32>, String> {
        Ok(self.topics.get(topic).copied())
    }
}

#[tokio::test]
async fn approval_is_refused_when_the_cluster_cannot_hold_the_topic() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster {
        brokers: 1,
        topics: HashMap::from([("legacy".to_owned(), 1)]),
    };
    let with_cluster = AdminConfig {
        cluster: Some(Arc::new(cluster)),
        ..config(&dir)
    };
    let s = Server::start_with(dir, with_cluster).await;
    let approve = async |id: i64| {
        s.post_empty(&format!("/api/topics/{id}/approve"), &s.admin)
            .await
    };

    let (status, body) = create(&s, json!({"name": "replicated", "replication_factor": 3})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let replicated = body["topic_id"].as_i64().unwrap();
    let (status, err) = approve(replicated).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    let message = err["error"].as_str().unwrap();
    assert!(
        message.contains("replication factor 3") && message.contains("1 broker(s)"),
        "{message}"
    );

    let (status, body) = create(&s, json!({"name": "legacy", "partitions": 3})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let legacy = body["topic_id"].as_i64().unwrap();
    let (status, err) = approve(legacy).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert!(
        err["error"].as_str().unwrap().contains("1 partition(s)"),
        "{err}"
    );
    for id in [replicated, legacy] {
        let (_, topic) = s.get(&format!("/api/topics/{id}"), &s.admin).await;
        assert_eq!(topic["status"], "pending", "{topic}");
    }

    // What the cluster can hold is approved as before.
    let (status, body) = create(&s, json!({"name": "fits", "replication_factor": 1})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = approve(body["topic_id"].as_i64().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.stop().await;
}

#[tokio::test]
async fn a_topic_takes_a_traffic_profile_or_a_rate_and_a_bad_profile_is_named() {
    let s = Server::start().await;
    let (status, created) = create(
        &s,
        json!({"name": "shaped", "traffic_profile": "daily:peak=200,trough=20,tz=Europe/Berlin"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["topic_id"].as_i64().unwrap();
    let (_, topic) = s.get(&format!("/api/topics/{id}"), &s.admin).await;
    // Stored and shown in its full text form.
    assert_eq!(
        topic["traffic_profile"],
        "daily:peak=200,trough=20,peak_at=14:00,period=1day,tz=Europe/Berlin"
    );
    assert_eq!(topic["rate_per_second"], json!(null));

    for (body, want) in [
        (
            json!({"name": "bad1", "traffic_profile": "daily:peak=20,trough=2,tz=Mars/Olympus"}),
            "traffic_profile: invalid traffic profile: daily: tz must be a zone name",
        ),
        (
            json!({"name": "bad2", "traffic_profile": "steady:5"}),
            "traffic_profile: invalid traffic profile: unknown kind \"steady\"",
        ),
        (
            json!({"name": "bad3", "traffic_profile": "constant:5", "rate_per_second": 5}),
            "give rate_per_second or traffic_profile, not both",
        ),
    ] {
        let (status, err) = create(&s, body.clone()).await;
        assert!(status.is_client_error(), "{body}: {status} {err}");
        let message = err["error"].as_str().unwrap();
        assert!(message.contains(want), "{body}: {message}");
        assert_eq!(message.lines().count(), 1, "{message}");
    }
    let (_, topics) = s.get("/api/topics", &s.admin).await;
    assert_eq!(topics.as_array().unwrap().len(), 1, "{topics}");
    s.stop().await;
}
