//! Small defences: files for the owner only, answers with tokens kept out of caches, a
//! declared oversized body refused at once, and cookie-authenticated writes bound to their
//! session's CSRF token and to the service's own origin.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use streamhub_admin::{AdminConfig, AdminService, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

#[cfg(unix)]
#[tokio::test]
async fn the_metadata_store_and_its_directory_are_for_the_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let handle = AdminService::start(AdminConfig::local(&data))
        .await
        .unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "data directory");
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert!(data.join("streamhub.db").exists());
    handle.stop().await.unwrap();
}

#[tokio::test]
async fn sign_in_answers_carrying_a_token_are_not_stored_by_caches() {
    let s = Server::start().await;
    let res = s
        .request(Method::POST, "/api/auth/login", None)
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    s.stop().await;
}

#[tokio::test]
async fn a_declared_body_over_64_kib_is_refused_with_413_without_waiting_for_it() {
    let dir = tempfile::tempdir().unwrap();
    // A request timeout beyond the hang guard below: only an answer that does not wait
    // for the body arrives in time.
    let handle = AdminService::start(AdminConfig {
        limits: Limits {
            request_timeout: Duration::from_secs(300),
            ..Limits::default()
        },
        ..config(&dir)
    })
    .await
    .unwrap();
    let mut conn = tokio::net::TcpStream::connect(handle.addr()).await.unwrap();
    conn.write_all(
        b"POST /api/auth/login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
          Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"username\"",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    tokio::time::timeout(Duration::from_secs(60), async {
        // Up to the end of the JSON error (the server may keep the connection open).
        while !String::from_utf8_lossy(&answer).contains('}') {
            match conn.read(&mut buf).await.unwrap() {
                0 => break,
                n => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server answers a declared oversized body without waiting for it");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"code\":"), "{answer}");
    handle.stop().await.unwrap();
}

/// Signs in and returns the session and CSRF cookies' values.
async fn session(s: &Server) -> (String, String) {
    let res = s
        .request(Method::POST, "/api/auth/login", None)
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let cookie = |name: &str| {
        res.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| {
                c.split(';')
                    .next()?
                    .strip_prefix(&format!("{name}="))
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| panic!("no {name} cookie"))
    };
    (cookie("streamhub_session"), cookie("streamhub_csrf"))
}

/// A cookie-authenticated topic request with the given CSRF cookie, header and Origin.
async fn create_topic(
    s: &Server,
    name: &str,
    session: &str,
    csrf_cookie: &str,
    csrf_header: &str,
    origin: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    let mut req = s
        .request(Method::POST, "/api/topics", None)
        .header(
            "cookie",
            format!("streamhub_session={session}; streamhub_csrf={csrf_cookie}"),
        )
        .header("x-csrf-token", csrf_header)
        .json(&json!({"name": name}));
    if let Some(origin) = origin {
        req = req.header("origin", origin);
    }
    call(req).await
}

#[tokio::test]
async fn a_csrf_token_holds_for_its_own_session_only() {
    let s = Server::start().await;
    let (session_a, csrf_a) = session(&s).await;
    let (_, csrf_b) = session(&s).await;
    assert_ne!(csrf_a, csrf_b);
    // A token planted in the cookie and copied into the header, as a page on a sibling
    // domain could, is not the session's.
    let (status, body) =
        create_topic(&s, "planted_csrf", &session_a, "planted", "planted", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["code"].is_string(), "{body}");
    // Another session's token does not do either.
    let (status, _) = create_topic(&s, "other_csrf", &session_a, &csrf_b, &csrf_b, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = create_topic(&s, "own_csrf", &session_a, &csrf_a, &csrf_a, None).await;
    assert!(status.is_success(), "{status} {body}");
    s.stop().await;
}

#[tokio::test]
async fn cookie_authenticated_writes_from_another_origin_are_refused() {
    let s = Server::start().await;
    let (session, csrf) = session(&s).await;
    let own = s.handle.url().to_owned();
    for foreign in ["https://evil.example", "null", "http://127.0.0.1:1"] {
        let (status, body) =
            create_topic(&s, "foreign_origin", &session, &csrf, &csrf, Some(foreign)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{foreign}: {body}");
        assert!(body["error"].as_str().unwrap().contains("Origin"), "{body}");
    }
    let (status, body) = create_topic(&s, "own_origin", &session, &csrf, &csrf, Some(&own)).await;
    assert!(status.is_success(), "{status} {body}");
    s.stop().await;
}
