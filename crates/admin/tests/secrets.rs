//! Secrets never reach the log, an error body, the audit log or the database file:
//! requests carrying each kind of secret run with every streamhub log line captured at
//! TRACE, then the log, the answers and the database's bytes are searched for them.
//!
//! A binary of its own, its tests one at a time: a thread's log capture must not share the
//! process with other tests' threads, or a log line's enabled-or-not cache may be decided
//! without the capture and the line lost from it.

#[allow(dead_code)]
#[path = "api/common.rs"]
mod common;

/// Held by each test for its whole run.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::ConnectOptions;
use streamhub_admin::{AdminConfig, AdminService, Secret};
use tracing_subscriber::EnvFilter;

use crate::common::*;

/// Log output of the current thread, kept in memory. The tests run on a single-threaded
/// runtime, so the server's tasks log on the test's thread.
#[derive(Clone, Default)]
struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl CapturedLog {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let sink = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new(
                "debug,streamhub_admin=trace,streamhub_store=trace,streamhub_model=trace,tower_http=trace",
            ))
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for CapturedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every file of the metadata store (database, WAL, shared memory), after a checkpoint.
async fn database_bytes(dir: &Path) -> Vec<u8> {
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(dir.join("streamhub.db"))
        .connect()
        .await
        .unwrap();
    sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::Connection::close(conn).await.unwrap();
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("streamhub.db")
        {
            bytes.extend(std::fs::read(&path).unwrap());
        }
    }
    assert!(!bytes.is_empty(), "no database file in {}", dir.display());
    bytes
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn set_cookie_value(res: &reqwest::Response, name: &str) -> String {
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
}

#[tokio::test]
async fn secrets_stay_out_of_logs_answers_the_audit_log_and_the_database() {
    let log = CapturedLog::default();
    let _serial = ONE_AT_A_TIME.lock().await;
    let _guard = log.install();

    let user_password = "user-password-7Hq2Lm9Xw";
    let wrong_password = "wrong-password-Vb83Kd1Zp";
    let wrong_key = "wrong-producer-key-Tn42Rc8";
    let wrong_token = "bogus-bearer-token-Jp51Ws6";
    let numeric_password = 987_654_321_013_u64;

    let s = Server::start().await;
    let mut answers: Vec<String> = Vec::new();
    let mut keep = |status: StatusCode, body: serde_json::Value| {
        answers.push(format!("{status} {body}"));
        status
    };

    // Failed sign-ins with wrong passwords, for a known and an unknown user.
    for user in ["admin", "nobody"] {
        let (status, body) = call(
            s.request(Method::POST, "/api/auth/login", None)
                .json(&json!({"username": user, "password": wrong_password})),
        )
        .await;
        assert_eq!(keep(status, body), StatusCode::UNAUTHORIZED);
    }
    // A user created with a password, a password of the wrong type, one too short.
    let (status, body) = s
        .post(
            "/api/users",
            &s.admin,
            json!({"username": "carol", "password": user_password, "role": "user"}),
        )
        .await;
    assert_eq!(keep(status, body), StatusCode::CREATED);
    let (status, body) = s
        .post(
            "/api/users",
            &s.admin,
            json!({"username": "dave", "password": numeric_password, "role": "user"}),
        )
        .await;
    assert_eq!(keep(status, body), StatusCode::BAD_REQUEST);
    let (status, body) = s
        .post(
            "/api/users",
            &s.admin,
            json!({"username": "erin", "password": "Zq9short", "role": "nope"}),
        )
        .await;
    assert!(keep(status, body).is_client_error());

    // Sign-in with the password: a token and a session cookie.
    let res = s
        .request(Method::POST, "/api/auth/login", None)
        .json(&json!({"username": "carol", "password": user_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let session = set_cookie_value(&res, "streamhub_session");
    let csrf = set_cookie_value(&res, "streamhub_csrf");
    let (_, login) = json_of(res).await;
    let token = login["token"].as_str().unwrap().to_owned();

    // The bearer token, the cookie (read and write), the producer key, wrong ones of each.
    let (status, body) = s.get("/api/auth/me", &token).await;
    assert_eq!(keep(status, body), StatusCode::OK);
    let (status, body) = call(
        s.request(Method::GET, "/api/topics", None)
            .header("Cookie", format!("streamhub_session={session}")),
    )
    .await;
    assert_eq!(keep(status, body), StatusCode::OK);
    let (status, body) = call(
        s.request(Method::POST, "/api/topics", None)
            .header(
                "Cookie",
                format!("streamhub_session={session}; streamhub_csrf={csrf}"),
            )
            .header("X-CSRF-Token", &csrf)
            .json(&json!({"name": "secret_test"})),
    )
    .await;
    assert_eq!(keep(status, body), StatusCode::CREATED);
    let (status, body) = call(
        s.request(Method::POST, "/api/topics", None)
            .header("Cookie", format!("streamhub_session={session}"))
            .header("X-CSRF-Token", wrong_token)
            .json(&json!({"name": "secret_test_2"})),
    )
    .await;
    assert_eq!(keep(status, body), StatusCode::FORBIDDEN);
    s.active_topic("secret_active").await;
    let (status, body) = call(
        s.request(Method::POST, "/api/topics/activate_by_name", None)
            .header("X-Producer-Key", wrong_key)
            .json(&json!({"topic_name": "secret_active"})),
    )
    .await;
    assert_eq!(keep(status, body), StatusCode::UNAUTHORIZED);
    let (status, body) = s.get("/api/topics", wrong_token).await;
    assert_eq!(keep(status, body), StatusCode::UNAUTHORIZED);
    // The audit log is an answer too.
    let (status, body) = s.get("/api/audit?limit=1000", &s.admin).await;
    assert_eq!(keep(status, body), StatusCode::OK);
    let (status, body) = s.get("/api/users", &s.admin).await;
    assert_eq!(keep(status, body), StatusCode::OK);
    let (status, body) = s.post_empty("/api/auth/logout", &token).await;
    assert_eq!(keep(status, body), StatusCode::OK);

    let admin_token = s.admin.clone();
    let dir = s.stop().await;
    drop(_guard);

    let secrets = [
        ("the admin password", ADMIN_PASSWORD.to_owned()),
        ("a user's password", user_password.to_owned()),
        ("a wrong password", wrong_password.to_owned()),
        ("a password of the wrong type", numeric_password.to_string()),
        ("the producer key", PRODUCER_KEY.to_owned()),
        ("a wrong producer key", wrong_key.to_owned()),
        ("a wrong bearer token", wrong_token.to_owned()),
        ("a bearer token", token.clone()),
        ("the admin's bearer token", admin_token),
        ("a session cookie", session.clone()),
    ];
    let logged = log.text();
    assert!(
        logged.contains("signed in") && logged.contains("sign-in refused"),
        "the capture must see the service's log: {logged}"
    );
    let answers = answers.join("\n");
    let database = database_bytes(dir.path()).await;
    for (what, secret) in &secrets {
        assert!(!logged.contains(secret), "{what} is in the log:\n{logged}");
        assert!(
            !answers.contains(secret),
            "{what} is in an answer:\n{answers}"
        );
        assert!(!contains(&database, secret), "{what} is in the database");
    }
}

#[tokio::test]
async fn a_generated_admin_password_goes_to_a_private_file_not_the_log() {
    let log = CapturedLog::default();
    let _serial = ONE_AT_A_TIME.lock().await;
    let _guard = log.install();
    let dir = tempfile::tempdir().unwrap();
    let handle = AdminService::start(AdminConfig::local(dir.path()))
        .await
        .unwrap();
    let password = handle.admin_password().unwrap().to_owned();
    handle.stop().await.unwrap();
    drop(_guard);

    let file = dir.path().join(streamhub_admin::ADMIN_PASSWORD_FILE);
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), password);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    let logged = log.text();
    assert!(!logged.contains(&password), "{logged}");
    assert!(
        logged.contains(&file.display().to_string()),
        "the log points to the file: {logged}"
    );
}

#[tokio::test]
async fn a_weak_producer_secret_is_warned_about_at_start_without_showing_it() {
    for (secret, weak) in [
        ("ChangeThisProducerSecret!", true),
        ("only15charsXYZ1", true),
        ("k3Jd9s-Qm2Lx8vPz1aWq", false),
    ] {
        let log = CapturedLog::default();
        let _serial = ONE_AT_A_TIME.lock().await;
        let _guard = log.install();
        let dir = tempfile::tempdir().unwrap();
        let handle = AdminService::start(AdminConfig {
            producer_secret: Some(Secret::new(secret)),
            ..config(&dir)
        })
        .await
        .unwrap();
        handle.stop().await.unwrap();
        drop(_guard);
        let logged = log.text();
        assert_eq!(
            logged.contains("PRODUCER_SECRET is weak"),
            weak,
            "{secret}: {logged}"
        );
        assert!(logged.contains("WARN") || !weak, "{logged}");
        assert!(!logged.contains(secret), "{logged}");
    }
}

/// A PostgreSQL URL with its password, as an operator passes it.
const PG_PASSWORD: &str = "pg-password-Wd73Kx2Qv";

#[tokio::test]
async fn a_postgres_password_stays_out_of_the_start_error_the_log_and_debug_output() {
    let log = CapturedLog::default();
    let _serial = ONE_AT_A_TIME.lock().await;
    let _guard = log.install();
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 1: the start fails to reach the database.
    let config = AdminConfig {
        database: format!("postgres://streamhub:{PG_PASSWORD}@127.0.0.1:1/streamhub").into(),
        ..config(&dir)
    };
    let debug = format!("{config:?}");
    let err = AdminService::start(config)
        .await
        .expect_err("no PostgreSQL on port 1");
    drop(_guard);
    let shown = format!("{err:#} / {err:?}");
    assert!(shown.contains("streamhub:***@127.0.0.1:1"), "{shown}");
    for (what, text) in [("error", &shown), ("debug", &debug), ("log", &log.text())] {
        assert!(!text.contains(PG_PASSWORD), "the {what} shows it: {text}");
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set STREAMHUB_TEST_POSTGRES (scripts/test does)"]
async fn a_postgres_password_stays_out_of_the_listening_line() {
    use streamhub_store::postgres::testing::fresh_database_url;
    let url = fresh_database_url().await.unwrap_or_else(|e| panic!("{e}"));
    // The server's own password, or one it ignores (trust authentication) put in.
    let (scheme, rest) = url.split_once("://").unwrap();
    let (userinfo, host) = rest
        .split_once('@')
        .expect("a user in STREAMHUB_TEST_POSTGRES");
    let (url, password) = match userinfo.split_once(':') {
        Some((_, password)) => (url.clone(), password.to_owned()),
        None => (
            format!("{scheme}://{userinfo}:{PG_PASSWORD}@{host}"),
            PG_PASSWORD.to_owned(),
        ),
    };
    let log = CapturedLog::default();
    let _serial = ONE_AT_A_TIME.lock().await;
    let _guard = log.install();
    let dir = tempfile::tempdir().unwrap();
    let handle = AdminService::start(AdminConfig {
        database: url.into(),
        ..config(&dir)
    })
    .await
    .unwrap();
    handle.stop().await.unwrap();
    drop(_guard);
    let logged = log.text();
    assert!(logged.contains("admin service listening"), "{logged}");
    assert!(logged.contains(":***@"), "{logged}");
    assert!(!logged.contains(&password), "{logged}");
}

#[tokio::test]
async fn failed_sign_in_usernames_cannot_forge_log_lines_or_leak_a_typed_password() {
    let log = CapturedLog::default();
    let _serial = ONE_AT_A_TIME.lock().await;
    let _guard = log.install();
    let s = Server::start().await;
    let (status, body) = s
        .post(
            "/api/users",
            &s.admin,
            json!({"username": "carol", "password": USER_PASSWORD, "role": "user"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // A password typed into the username field by mistake.
    let typed_password = "Kx8#mWq2-typed-as-a-name";
    let forged = [
        "mallory\n2026-01-01T00:00:00.000000Z  INFO streamhub_admin::auth: signed in username=admin role=admin",
        "mallory\r\u{1b}[2K\u{1b}[32mall good\u{1b}[0m",
        "mallory\0hidden",
        typed_password,
    ];
    for username in forged.iter().copied().chain(["carol"]) {
        let (status, _) = call(
            s.request(Method::POST, "/api/auth/login", None)
                .json(&json!({"username": username, "password": "not-the-password"})),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{username:?}");
    }
    s.stop().await;
    drop(_guard);

    let logged = log.text();
    let refusals: Vec<&str> = logged
        .lines()
        .filter(|l| l.contains("sign-in refused"))
        .collect();
    assert_eq!(refusals.len(), forged.len() + 1, "{logged}");
    // Each line is one event, as the formatter wrote it: it starts with its timestamp.
    for line in logged.lines() {
        assert!(
            line.starts_with(|c: char| c.is_ascii_digit()),
            "a line the service did not write: {line:?}\n{logged}"
        );
    }
    assert_eq!(
        logged.matches("signed in").count(),
        1,
        "only the admin's own sign-in: {logged}"
    );
    assert!(
        !logged.contains(['\u{1b}', '\0', '\r']),
        "raw control characters in the log: {logged:?}"
    );
    assert!(!logged.contains("mallory"), "unknown names are not logged");
    assert!(!logged.contains(typed_password), "{logged}");
    // A known account's failures still name it.
    assert!(
        refusals.iter().any(|l| l.contains("username=carol")),
        "{refusals:?}"
    );
}
