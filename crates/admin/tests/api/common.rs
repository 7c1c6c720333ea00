use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use streamhub_admin::{AdminConfig, AdminHandle, AdminService, Secret};
use tempfile::TempDir;

pub const PRODUCER_KEY: &str = "test-producer-secret";
pub const ADMIN_PASSWORD: &str = "Quartz-Meadow-Tidal-42";
/// The password of every user [`Server::user`] creates: strong enough, and not containing
/// any of their names.
pub const USER_PASSWORD: &str = "Lantern-Orbit-Kettle-57";

pub struct Server {
    pub handle: AdminHandle,
    pub dir: TempDir,
    pub http: reqwest::Client,
    pub admin: String,
}

pub fn config(dir: &TempDir) -> AdminConfig {
    AdminConfig {
        producer_secret: Some(Secret::new(PRODUCER_KEY)),
        admin_password: Some(Secret::new(ADMIN_PASSWORD)),
        ..AdminConfig::local(dir.path())
    }
}

impl Server {
    pub async fn start() -> Server {
        Self::start_in(tempfile::tempdir().unwrap()).await
    }

    pub async fn start_in(dir: TempDir) -> Server {
        let config = config(&dir);
        Self::start_with(dir, config).await
    }

    /// Another instance on `database`, which an earlier server may be using.
    pub async fn start_on(database: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let config = AdminConfig {
            database: database.into(),
            ..config(&dir)
        };
        Self::start_with(dir, config).await
    }

    pub async fn start_with(dir: TempDir, config: AdminConfig) -> Server {
        let handle = AdminService::start(config).await.unwrap();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let mut server = Server {
            handle,
            dir,
            http,
            admin: String::new(),
        };
        server.admin = server.login("admin", ADMIN_PASSWORD).await;
        server
    }

    pub async fn stop(self) -> TempDir {
        self.handle.stop().await.unwrap();
        self.dir
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.handle.url())
    }

    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let req = self.http.request(method, self.url(path));
        match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    pub async fn login(&self, username: &str, password: &str) -> String {
        let (status, body) = call(
            self.request(Method::POST, "/api/auth/login", None)
                .json(&json!({"username": username, "password": password})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "login {username}: {body}");
        body["token"].as_str().unwrap().to_owned()
    }

    /// Creates a user with role `role` and returns their token.
    pub async fn user(&self, username: &str, role: &str) -> String {
        let password = USER_PASSWORD;
        let (status, body) = call(
            self.request(Method::POST, "/api/users", Some(&self.admin))
                .json(&json!({"username": username, "password": password, "role": role})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        self.login(username, password).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        call(self.request(Method::GET, path, Some(token))).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        call(self.request(Method::POST, path, Some(token)).json(&body)).await
    }

    pub async fn post_empty(&self, path: &str, token: &str) -> (StatusCode, Value) {
        call(self.request(Method::POST, path, Some(token))).await
    }

    pub async fn delete(
        &self,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let req = self.request(Method::DELETE, path, Some(token));
        call(match body {
            Some(b) => req.json(&b),
            None => req,
        })
        .await
    }

    pub async fn activate(&self, name: &str) -> (StatusCode, Value) {
        call(
            self.request(Method::POST, "/api/topics/activate_by_name", None)
                .header("X-Producer-Key", PRODUCER_KEY)
                .json(&json!({"topic_name": name})),
        )
        .await
    }

    /// Creates a topic as admin and returns its id.
    pub async fn topic(&self, name: &str) -> i64 {
        let (status, body) = self
            .post("/api/topics", &self.admin, json!({"name": name}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["topic_id"].as_i64().unwrap()
    }

    /// Creates, approves and activates a topic; returns its id.
    pub async fn active_topic(&self, name: &str) -> i64 {
        let id = self.topic(name).await;
        let (status, body) = self
            .post_empty(&format!("/api/topics/{id}/approve"), &self.admin)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = self.activate(name).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        id
    }

    pub async fn stats(&self) -> Value {
        let (status, body) = self.get("/api/stats", &self.admin).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }
}

/// Sends a request and returns the status and the JSON body; every answer of the API
/// must be JSON, errors included.
pub async fn call(req: RequestBuilder) -> (StatusCode, Value) {
    let res = req.send().await.unwrap();
    json_of(res).await
}

pub async fn json_of(res: Response) -> (StatusCode, Value) {
    let status = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = res.text().await.unwrap();
    // `application/json`, or a JSON-based type such as `application/schema+json`.
    let essence = content_type.split(';').next().unwrap_or_default();
    assert!(
        essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json")),
        "{status} answered {content_type:?}: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    if status.is_client_error() || status.is_server_error() {
        assert!(
            body["error"].is_string() && body["code"].is_string(),
            "{status}: {body}"
        );
    }
    (status, body)
}
