use reqwest::{Method, StatusCode};
use serde_json::json;
use streamhub_admin::{AdminConfig, AdminService};

use crate::common::*;

#[tokio::test]
async fn every_endpoint_but_health_needs_credentials() {
    let s = Server::start().await;
    let endpoints = [
        (Method::GET, "/api/topics"),
        (Method::POST, "/api/topics"),
        (Method::GET, "/api/topics/1"),
        (Method::DELETE, "/api/topics/1"),
        (Method::GET, "/api/topics/active"),
        (Method::POST, "/api/topics/1/approve"),
        (Method::POST, "/api/topics/1/reject"),
        (Method::POST, "/api/topics/1/deactivate"),
        (Method::POST, "/api/topics/1/reactivate"),
        (Method::POST, "/api/topics/activate_by_name"),
        (Method::GET, "/api/subscriptions"),
        (Method::POST, "/api/subscriptions"),
        (Method::DELETE, "/api/subscriptions"),
        (Method::GET, "/api/stats"),
        (Method::GET, "/api/audit"),
        (Method::GET, "/api/users"),
        (Method::POST, "/api/users"),
        (Method::DELETE, "/api/users/alice"),
        (Method::GET, "/api/events"),
        (Method::GET, "/api/auth/me"),
        (Method::POST, "/api/auth/logout"),
    ];
    for (method, path) in endpoints {
        let (status, body) = call(s.request(method.clone(), path, None).json(&json!({}))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        let (status, _) = call(
            s.request(method.clone(), path, Some("not-a-token"))
                .json(&json!({})),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{method} {path} with a bad token"
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn login_returns_a_token_and_sets_protected_cookies() {
    let s = Server::start().await;
    let res = s
        .request(Method::POST, "/api/auth/login", None)
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookies: Vec<String> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let (status, body) = json_of(res).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["role"], "admin");
    assert!(body["token"].as_str().unwrap().len() >= 40);
    assert!(body["expires_at"].is_string());
    let session = cookies
        .iter()
        .find(|c| c.starts_with("streamhub_session="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(attr), "{session}");
    }
    let csrf = cookies
        .iter()
        .find(|c| c.starts_with("streamhub_csrf="))
        .unwrap();
    assert!(
        !csrf.contains("HttpOnly") && csrf.contains("SameSite=Strict"),
        "{csrf}"
    );

    let (status, me) = s.get("/api/auth/me", body["token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me, json!({"username": "admin", "role": "admin"}));
    s.stop().await;
}

#[tokio::test]
async fn wrong_or_unknown_credentials_are_refused() {
    let s = Server::start().await;
    for (user, password) in [("admin", "wrong-password"), ("nobody", "whatever1")] {
        let (status, body) = call(
            s.request(Method::POST, "/api/auth/login", None)
                .json(&json!({"username": user, "password": password})),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"], "wrong username or password");
    }
    s.stop().await;
}

#[tokio::test]
async fn logout_ends_the_token() {
    let s = Server::start().await;
    let token = s.login("admin", ADMIN_PASSWORD).await;
    let (status, _) = s.post_empty("/api/auth/logout", &token).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.get("/api/auth/me", &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = s.get("/api/auth/me", &s.admin).await;
    assert_eq!(status, StatusCode::OK, "other tokens stay valid");
    s.stop().await;
}

#[tokio::test]
async fn session_cookie_authenticates_and_mutations_need_the_csrf_header() {
    let s = Server::start().await;
    let res = s
        .request(Method::POST, "/api/auth/login", None)
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    // The session's CSRF token, as the streamhub_csrf cookie carries it.
    let csrf = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| {
            v.to_str()
                .ok()?
                .split(';')
                .next()?
                .strip_prefix("streamhub_csrf=")
        })
        .map(str::to_owned)
        .next()
        .unwrap();
    let token = res.json::<serde_json::Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let cookie = format!("streamhub_session={token}; streamhub_csrf={csrf}");
    let (status, _) = call(
        s.request(Method::GET, "/api/topics", None)
            .header("Cookie", &cookie),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let create = |csrf: Option<&str>| {
        let req = s
            .request(Method::POST, "/api/topics", None)
            .header("Cookie", &cookie)
            .json(&json!({"name": "csrf_guarded"}));
        match csrf {
            Some(c) => req.header("X-CSRF-Token", c),
            None => req,
        }
    };
    let (status, body) = call(create(None)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = call(create(Some("wrong"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = call(create(Some(&csrf))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    s.stop().await;
}

#[tokio::test]
async fn producer_key_activates_but_governs_nothing() {
    let s = Server::start().await;
    let id = s.topic("produced").await;
    s.post_empty(&format!("/api/topics/{id}/approve"), &s.admin)
        .await;

    let wrong = call(
        s.request(Method::POST, "/api/topics/activate_by_name", None)
            .header("X-Producer-Key", "not-the-secret")
            .json(&json!({"topic_name": "produced"})),
    )
    .await;
    assert_eq!(wrong.0, StatusCode::UNAUTHORIZED);

    let producer = |method: Method, path: &str| {
        s.request(method, path, None)
            .header("X-Producer-Key", PRODUCER_KEY)
    };
    let (status, _) = call(producer(Method::GET, "/api/topics?status=approved")).await;
    assert_eq!(status, StatusCode::OK, "the producer lists approved topics");
    let (status, _) = call(producer(
        Method::POST,
        &format!("/api/topics/{id}/deactivate"),
    ))
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        producer(Method::POST, "/api/subscriptions")
            .json(&json!({"user_id": "x", "topic_name": "produced"})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(producer(Method::GET, "/api/users")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = s.activate("produced").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, audit) = s.get("/api/audit?action=activate", &s.admin).await;
    assert_eq!(audit[0]["actor"], "producer");
    s.stop().await;
}

#[tokio::test]
async fn users_cannot_govern_topics_users_or_the_audit_log() {
    let s = Server::start().await;
    let id = s.active_topic("governed").await;
    let eve = s.user("eve", "user").await;
    for path in ["approve", "deactivate", "reactivate"] {
        let (status, body) = s
            .post_empty(&format!("/api/topics/{id}/{path}"), &eve)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
    }
    let (status, _) = s
        .post(
            &format!("/api/topics/{id}/reject"),
            &eve,
            json!({"reason": "no"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s.delete(&format!("/api/topics/{id}"), &eve, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s.activate("governed").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .post(
            "/api/topics/activate_by_name",
            &eve,
            json!({"topic_name": "governed"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s.get("/api/users", &eve).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .post(
            "/api/users",
            &eve,
            json!({"username": "x", "password": "xxxxxxxx", "role": "admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s.get("/api/audit", &eve).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .post(
            "/api/topics",
            &eve,
            json!({"name": "as_someone", "created_by": "admin"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "users request topics only in their own name"
    );
    let (status, _) = s.get(&format!("/api/topics/{id}"), &eve).await;
    assert_eq!(status, StatusCode::OK, "users read topics");
    s.stop().await;
}

#[tokio::test]
async fn users_manage_only_their_own_subscriptions_and_admins_any() {
    let s = Server::start().await;
    s.active_topic("shared").await;
    let frank = s.user("frank", "user").await;
    let grace = s.user("grace", "user").await;

    let (status, _) = s
        .post(
            "/api/subscriptions",
            &frank,
            json!({"topic_name": "shared"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "user_id defaults to the caller"
    );
    let (status, _) = s
        .post(
            "/api/subscriptions",
            &frank,
            json!({"user_id": "grace", "topic_name": "shared"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .post(
            "/api/subscriptions",
            &s.admin,
            json!({"user_id": "grace", "topic_name": "shared"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "admins act for anyone");
    let (status, body) = s
        .post(
            "/api/subscriptions",
            &s.admin,
            json!({"user_id": "grace", "topic_name": "shared"}),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "subscribing twice is harmless: {body}"
    );

    let (_, own) = s.get("/api/subscriptions", &frank).await;
    assert_eq!(own.as_array().unwrap().len(), 1);
    assert_eq!(own[0]["user_id"], "frank");
    let (status, _) = s.get("/api/subscriptions?user_id=grace", &frank).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, all) = s.get("/api/subscriptions", &s.admin).await;
    assert_eq!(all.as_array().unwrap().len(), 2);

    let (status, _) = s
        .delete(
            "/api/subscriptions",
            &frank,
            Some(json!({"user_id": "grace", "topic_name": "shared"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .delete(
            "/api/subscriptions",
            &grace,
            Some(json!({"topic_name": "shared"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s
        .delete(
            "/api/subscriptions",
            &grace,
            Some(json!({"topic_name": "shared"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    s.stop().await;
}

#[tokio::test]
async fn admins_manage_users() {
    let s = Server::start().await;
    let (status, user) = s
        .post(
            "/api/users",
            &s.admin,
            json!({"username": "henry", "password": USER_PASSWORD, "role": "producer"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(user["username"], "henry");
    assert_eq!(user["role"], "producer");
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());

    let henry = s.login("henry", USER_PASSWORD).await;
    let (_, me) = s.get("/api/auth/me", &henry).await;
    assert_eq!(me["role"], "producer");

    let (status, _) = s
        .post(
            "/api/users",
            &s.admin,
            json!({"username": "henry", "password": USER_PASSWORD, "role": "user"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = s
        .post(
            "/api/users",
            &s.admin,
            json!({"username": "ivy", "password": "short", "role": "user"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = s
        .post(
            "/api/users",
            &s.admin,
            json!({"username": "ivy", "password": USER_PASSWORD, "role": "root"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (_, users) = s.get("/api/users", &s.admin).await;
    let names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "henry"]);

    let (status, _) = s.delete("/api/users/henry", &s.admin, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = s.get("/api/auth/me", &henry).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a deleted user's tokens end with them"
    );
    let (status, _) = s
        .delete("/api/users", &s.admin, Some(json!({"username": "henry"})))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.delete("/api/users/admin", &s.admin, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "the last admin stays");
    s.stop().await;
}

#[tokio::test]
async fn first_start_without_a_password_generates_one_for_admin() {
    let dir = tempfile::tempdir().unwrap();
    let handle = AdminService::start(AdminConfig::local(dir.path()))
        .await
        .unwrap();
    let password = handle
        .admin_password()
        .expect("generated password")
        .to_owned();
    assert!(password.len() >= 16);
    let (status, body) = call(
        reqwest::Client::new()
            .post(format!("{}/api/auth/login", handle.url()))
            .json(&json!({"username": "admin", "password": password})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    handle.stop().await.unwrap();

    // The second start keeps the first password and creates nobody.
    let handle = AdminService::start(AdminConfig::local(dir.path()))
        .await
        .unwrap();
    assert_eq!(handle.admin_password(), None);
    let (status, _) = call(
        reqwest::Client::new()
            .post(format!("{}/api/auth/login", handle.url()))
            .json(&json!({"username": "admin", "password": password})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(
        reqwest::Client::new()
            .post(format!("{}/api/topics/activate_by_name", handle.url()))
            .header("X-Producer-Key", "anything")
            .json(&json!({"topic_name": "t"})),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "no producer secret: the header is refused"
    );
    handle.stop().await.unwrap();
}

#[tokio::test]
async fn secure_cookies_are_marked_secure_only_when_asked() {
    for secure in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let handle = AdminService::start(AdminConfig {
            secure_cookies: secure,
            ..config(&dir)
        })
        .await
        .unwrap();
        let res = reqwest::Client::new()
            .post(format!("{}/api/auth/login", handle.url()))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let cookies: Vec<_> = res.headers().get_all("set-cookie").iter().collect();
        assert_eq!(cookies.len(), 2);
        for c in cookies {
            let c = c.to_str().unwrap();
            assert_eq!(c.ends_with("; Secure"), secure, "{c}");
        }
        handle.stop().await.unwrap();
    }
}

#[tokio::test]
async fn a_busy_port_fails_the_start_before_the_first_admin_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let err = AdminService::start(AdminConfig {
        listen: taken.local_addr().unwrap().to_string(),
        ..AdminConfig::local(dir.path())
    })
    .await
    .unwrap_err();
    assert!(format!("{err:#}").contains("cannot listen on"), "{err:#}");
    let handle = AdminService::start(AdminConfig::local(dir.path()))
        .await
        .unwrap();
    assert!(
        handle.admin_password().is_some(),
        "the generated password is shown by the start that succeeds"
    );
    handle.stop().await.unwrap();
}
