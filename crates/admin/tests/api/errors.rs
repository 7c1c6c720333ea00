use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::ConnectOptions;

use crate::common::*;

async fn create_raw(s: &Server, body: &str) -> (StatusCode, serde_json::Value) {
    call(
        s.request(Method::POST, "/api/topics", Some(&s.admin))
            .header("Content-Type", "application/json")
            .body(body.to_owned()),
    )
    .await
}

#[tokio::test]
async fn malformed_json_and_wrong_types_are_400() {
    let s = Server::start().await;
    for body in [
        r#"{"name": "#,
        "not json",
        r#"["a"]"#,
        "",
        r#"{"name": 5}"#,
        r#"{"name": "ok", "partitions": "three"}"#,
    ] {
        let (status, err) = create_raw(&s, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:?}: {err}");
        assert_eq!(err["code"], "bad_request");
    }
    s.stop().await;
}

#[tokio::test]
async fn missing_unknown_or_invalid_fields_are_422() {
    let s = Server::start().await;
    for body in [
        json!({}),
        json!({"name": "x", "status": "active"}),
        json!({"name": "bad name"}),
        json!({"name": ""}),
        json!({"name": ".."}),
        json!({"name": "x".repeat(250)}),
        json!({"name": "x", "partitions": 0}),
        json!({"name": "x", "partitions": 1001}),
        json!({"name": "x", "replication_factor": 0}),
        json!({"name": "x", "rate_per_second": 0}),
        json!({"name": "x", "rate_per_second": -1.5}),
        json!({"name": "x", "rate_per_second": 100001}),
        json!({"name": "x", "data_type": "video"}),
    ] {
        let (status, err) = s.post("/api/topics", &s.admin, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {err}");
        assert_eq!(err["code"], "invalid");
    }
    let (status, _) = s
        .post(
            "/api/topics",
            &s.admin,
            json!({"name": "x".repeat(249), "partitions": 1000}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the limits themselves are allowed"
    );
    s.stop().await;
}

#[tokio::test]
async fn a_bad_generation_record_is_422_and_activates_nothing() {
    let s = Server::start().await;
    let id = s.topic("recorded").await;
    let (status, _) = s
        .post_empty(&format!("/api/topics/{id}/approve"), &s.admin)
        .await;
    assert_eq!(status, StatusCode::OK);
    let record = |producer_id: &str, rate: serde_json::Value| {
        json!({"generator": 1, "data_type": "sensor", "seed": 7, "producer_id": producer_id,
               "first_seq": 0, "started_at": "2026-12-06T10:00:00Z", "rate": rate})
    };
    for generation in [
        record("", json!(5)),
        record(&"p".repeat(201), json!(5)),
        record("p", json!(0)),
        record("p", json!(-1)),
    ] {
        let (status, err) = s
            .post(
                "/api/topics/activate_by_name",
                &s.admin,
                json!({"topic_name": "recorded", "generation": generation}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{generation}: {err}"
        );
        assert!(
            err["error"].as_str().unwrap().contains("generation."),
            "{err}"
        );
    }
    let (status, _) = s
        .post(
            "/api/topics/activate_by_name",
            &s.admin,
            json!({"topic_name": "recorded", "generation": {"seed": "seven"}}),
        )
        .await;
    assert!(status.is_client_error(), "{status}");
    let topic = s.get(&format!("/api/topics/{id}"), &s.admin).await.1;
    assert_eq!(topic["status"], "approved");
    s.stop().await;
}

#[tokio::test]
async fn body_over_64_kib_is_413() {
    let s = Server::start().await;
    let big = json!({"name": "big", "description": "d".repeat(70 * 1024)}).to_string();
    let (status, err) = create_raw(&s, &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{err}");
    assert_eq!(err["code"], "payload_too_large");
    s.stop().await;
}

#[tokio::test]
async fn other_content_types_are_415() {
    let s = Server::start().await;
    let (status, _) = call(
        s.request(Method::POST, "/api/topics", Some(&s.admin))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("name=x"),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    s.stop().await;
}

#[tokio::test]
async fn unknown_ids_names_and_routes_are_404_json() {
    let s = Server::start().await;
    let (status, _) = s.get("/api/topics/9999", &s.admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.post_empty("/api/topics/9999/approve", &s.admin).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.activate("no_such_topic").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, err) = s
        .post(
            "/api/subscriptions",
            &s.admin,
            json!({"user_id": "u", "topic_name": "nope"}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    let (status, err) = s.get("/api/no/such/route", &s.admin).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    s.stop().await;
}

#[tokio::test]
async fn wrong_method_and_bad_paths_or_queries_answer_json() {
    let s = Server::start().await;
    let (status, err) = call(s.request(Method::PUT, "/api/topics", Some(&s.admin))).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed"))
    );
    let (status, _) = s.get("/api/topics/abc", &s.admin).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = s.get("/api/topics?limit=abc", &s.admin).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = s.get("/api/topics?bogus=1", &s.admin).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = s.get("/api/topics?limit=0", &s.admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = s.get("/api/topics?status=sleeping", &s.admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = s.get("/api/topics?offset=-1", &s.admin).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    s.stop().await;
}

#[tokio::test]
async fn invalid_transitions_duplicates_and_inactive_subscriptions_are_409() {
    let s = Server::start().await;
    let id = s.topic("conflicted").await;
    let (status, err) = s
        .post_empty(&format!("/api/topics/{id}/deactivate"), &s.admin)
        .await;
    assert_eq!(
        (status, err["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );
    assert_eq!(err["error"], "cannot deactivate a topic that is pending");
    let (status, _) = s.activate("conflicted").await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "activation needs an approval first"
    );
    let (status, _) = s
        .post("/api/topics", &s.admin, json!({"name": "conflicted"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, err) = s
        .post(
            "/api/subscriptions",
            &s.admin,
            json!({"user_id": "admin", "topic_name": "conflicted"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .contains("only active topics"),
        "{err}"
    );
    s.post(
        &format!("/api/topics/{id}/reject"),
        &s.admin,
        json!({"reason": "no"}),
    )
    .await;
    let (status, _) = s
        .post_empty(&format!("/api/topics/{id}/approve"), &s.admin)
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "a rejected topic stays rejected"
    );
    s.stop().await;
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let s = Server::start().await;
    for path in ["/api/health", "/", "/api/nothing"] {
        let res = s.request(Method::GET, path, None).send().await.unwrap();
        let h = res.headers();
        let csp = h.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert_eq!(h.get("x-content-type-options").unwrap(), "nosniff");
        assert_eq!(h.get("referrer-policy").unwrap(), "no-referrer");
        assert_eq!(h.get("x-frame-options").unwrap(), "DENY");
    }
    s.stop().await;
}

#[tokio::test]
async fn store_failures_answer_500_without_internals() {
    let s = Server::start().await;
    // Break the store behind the service's back, as a damaged file would.
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(s.dir.path().join("streamhub.db"))
        .busy_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .unwrap();
    sqlx::raw_sql("ALTER TABLE counters RENAME TO counters_gone")
        .execute(&mut conn)
        .await
        .unwrap();

    let (status, err) = s.get("/api/stats", &s.admin).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{err}");
    assert_eq!(err["code"], "internal");
    let text = err.to_string();
    assert!(
        !text.contains("counters") && !text.contains("SQLite"),
        "{text}"
    );
    let (status, err) = call(s.request(Method::GET, "/api/health", None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{err}");

    sqlx::raw_sql("ALTER TABLE counters_gone RENAME TO counters")
        .execute(&mut conn)
        .await
        .unwrap();
    let (status, _) = s.get("/api/stats", &s.admin).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the service recovers with the store"
    );
    s.stop().await;
}
