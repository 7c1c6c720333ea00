//! Accounts and quotas: password strength, reserved and look-alike names, what a deleted
//! user leaves behind, and what one user may hold (pending requests, live sign-ins) and
//! one list may answer.

use reqwest::StatusCode;
use serde_json::{Value, json};
use streamhub_admin::{AdminConfig, AdminService, Secret};
use streamhub_model::account::{MAX_PENDING_TOPICS_PER_USER, MAX_TOKENS_PER_USER};
use streamhub_model::api::{DEFAULT_PAGE, MAX_PAGE};
use streamhub_store::NewTopic;

use crate::common::*;

async fn create_user(s: &Server, username: &str, password: &str) -> (StatusCode, Value) {
    s.post(
        "/api/users",
        &s.admin,
        json!({"username": username, "password": password, "role": "user"}),
    )
    .await
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn weak_passwords_are_refused_with_the_reason() {
    let s = Server::start().await;
    for (username, password, why) in [
        ("ivy", "a", "8 to 1024 characters"),
        ("ivy", "password", "too easy to guess"),
        ("ivy", "12345678", "too easy to guess"),
        ("ivy", "        ", "too easy to guess"),
        ("ivy", "qwertyuiop", "too easy to guess"),
        (
            "ivy-the-user",
            "ivy-the-user",
            "must not contain the username",
        ),
        (
            "ivy-the-user",
            "Zq9!IVY-THE-USER!x7",
            "must not contain the username",
        ),
    ] {
        let (status, body) = create_user(&s, username, password).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{password:?}: {body}"
        );
        assert!(error_of(&body).contains(why), "{password:?}: {body}");
    }
    let (_, users) = s.get("/api/users", &s.admin).await;
    assert_eq!(users.as_array().unwrap().len(), 1, "{users}");
    let (status, body) = create_user(&s, "ivy", USER_PASSWORD).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    s.stop().await;
}

#[tokio::test]
async fn a_weak_admin_password_is_refused_at_start_with_the_reason() {
    for (password, why) in [
        ("a", "8 to 1024 characters"),
        ("Quartz-ADMIN-Meadow-42", "must not contain the username"),
        ("password1", "too easy to guess"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let refused = AdminService::start(AdminConfig {
            admin_password: Some(Secret::new(password)),
            ..config(&dir)
        })
        .await;
        let Err(refused) = refused else {
            panic!("{password:?}: started with a weak password")
        };
        let message = format!("{refused:#}");
        assert!(
            message.contains("STREAMHUB_ADMIN_PASSWORD") && message.contains(why),
            "{password:?}: {message}"
        );
    }
}

#[tokio::test]
async fn reserved_and_look_alike_usernames_are_refused() {
    let s = Server::start().await;
    for name in ["producer", "Producer", "system", "SYSTEM"] {
        let (status, body) = create_user(&s, name, USER_PASSWORD).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {body}");
        assert!(error_of(&body).contains("reserved"), "{body}");
    }
    s.user("erin", "user").await;
    for name in ["ADMIN", "Admin", "ERIN", "eRiN"] {
        let (status, body) = create_user(&s, name, USER_PASSWORD).await;
        assert_eq!(status, StatusCode::CONFLICT, "{name}: {body}");
    }
    let (_, users) = s.get("/api/users", &s.admin).await;
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "erin"]);
    s.stop().await;
}

#[tokio::test]
async fn a_deleted_users_subscriptions_go_with_the_account() {
    let s = Server::start().await;
    let topic_id = s.active_topic("kept_news").await;
    let dora = s.user("dora", "user").await;
    let (status, body) = s
        .post(
            "/api/subscriptions",
            &dora,
            json!({"topic_name": "kept_news"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = s.delete("/api/users/dora", &s.admin, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(s.stats().await["total_subscriptions"], 0);

    // A new account of the same name starts with nothing.
    let dora = s.user("dora", "user").await;
    let (status, list) = s.get("/api/subscriptions", &dora).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list, json!([]), "inherited: {list}");
    // Nothing is left to hold the topic back from deletion.
    let (status, body) = s
        .post_empty(&format!("/api/topics/{topic_id}/deactivate"), &s.admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = s
        .delete(&format!("/api/topics/{topic_id}"), &s.admin, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    s.stop().await;
}

#[tokio::test]
async fn unknown_users_cannot_be_subscribed() {
    let s = Server::start().await;
    s.active_topic("open_news").await;
    for user_id in ["ghost", "ADMIN"] {
        let (status, body) = s
            .post(
                "/api/subscriptions",
                &s.admin,
                json!({"user_id": user_id, "topic_name": "open_news"}),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{user_id}: {body}");
        assert!(error_of(&body).contains(user_id), "{body}");
    }
    assert_eq!(s.stats().await["total_subscriptions"], 0);
    s.stop().await;
}

#[tokio::test]
async fn a_users_pending_topic_requests_are_capped() {
    let s = Server::start().await;
    let alice = s.user("alice", "user").await;
    let request = |name: String| json!({ "name": name });
    let mut first = None;
    for i in 0..MAX_PENDING_TOPICS_PER_USER {
        let (status, body) = s
            .post("/api/topics", &alice, request(format!("asked_{i}")))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        first = first.or(body["topic_id"].as_i64());
    }
    let (status, body) = s
        .post("/api/topics", &alice, request("one_too_many".into()))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(error_of(&body).contains("pending"), "{body}");
    // Admins decide on requests and are not capped; a decision frees a place.
    let (status, _) = s
        .post("/api/topics", &s.admin, request("by_an_admin".into()))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = s
        .post_empty(&format!("/api/topics/{}/approve", first.unwrap()), &s.admin)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = s
        .post("/api/topics", &alice, request("one_too_many".into()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    s.stop().await;
}

#[tokio::test]
async fn sign_ins_beyond_the_maximum_end_the_oldest() {
    let s = Server::start().await;
    let first = s.user("gina", "user").await;
    let mut last = first.clone();
    for _ in 0..MAX_TOKENS_PER_USER {
        last = s.login("gina", USER_PASSWORD).await;
    }
    let (status, _) = s.get("/api/auth/me", &first).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the oldest sign-in still works"
    );
    let (status, _) = s.get("/api/auth/me", &last).await;
    assert_eq!(status, StatusCode::OK);
    // Another user's sign-in is untouched.
    let (status, _) = s.get("/api/auth/me", &s.admin).await;
    assert_eq!(status, StatusCode::OK);
    s.stop().await;
}

#[tokio::test]
async fn every_list_answers_a_bounded_page() {
    let s = Server::start().await;
    let store = s.handle.store().clone();
    for i in 0..=DEFAULT_PAGE {
        store
            .create_topic(
                "admin",
                NewTopic {
                    name: format!("paged_{i:04}").parse().unwrap(),
                    created_by: "admin".into(),
                    partitions: 1,
                    replication_factor: 1,
                    description: String::new(),
                    data_type: streamhub_model::DataType::Generic,
                    rate_per_second: None,
                    traffic_profile: None,
                },
            )
            .await
            .unwrap();
    }
    let len = |v: &Value| v.as_array().map(Vec::len).unwrap_or_default() as i64;
    let (status, page) = s.get("/api/topics", &s.admin).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        len(&page),
        DEFAULT_PAGE,
        "without a limit: the default page"
    );
    let (_, page) = s
        .get(&format!("/api/topics?limit={MAX_PAGE}"), &s.admin)
        .await;
    assert_eq!(len(&page), DEFAULT_PAGE + 1);
    let (_, page) = s
        .get(&format!("/api/topics?offset={DEFAULT_PAGE}"), &s.admin)
        .await;
    assert_eq!(len(&page), 1, "the rest, from the offset");

    // Every list takes limit and offset, and refuses a page above the maximum.
    s.active_topic("paged_active_1").await;
    s.active_topic("paged_active_2").await;
    let alice = s.user("alice", "user").await;
    for name in ["paged_active_1", "paged_active_2"] {
        let (status, _) = s
            .post("/api/subscriptions", &alice, json!({"topic_name": name}))
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    for path in [
        "/api/topics",
        "/api/topics/active",
        "/api/subscriptions",
        "/api/audit",
        "/api/users",
    ] {
        let (status, first) = s.get(&format!("{path}?limit=1"), &s.admin).await;
        assert_eq!(status, StatusCode::OK, "{path}: {first}");
        let (_, second) = s.get(&format!("{path}?limit=1&offset=1"), &s.admin).await;
        assert_eq!((len(&first), len(&second)), (1, 1), "{path}");
        assert_ne!(first, second, "{path}");
        let (status, body) = s
            .get(&format!("{path}?limit={}", MAX_PAGE + 1), &s.admin)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
    }
    s.stop().await;
}
