//! Test support shared by the integration tests of several crates: the admin service
//! in-process with known secrets, its API signed in as the admin, and unique names.
//! Only ever a dev-dependency: nothing here ships.

use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};
use streamhub_admin::{AdminConfig, AdminHandle, AdminService, Secret};

/// The `admin` user's password in [`admin_service`].
pub const ADMIN_PASSWORD: &str = "Quartz-Meadow-Tidal-42";
/// The `X-Producer-Key` [`admin_service`] accepts.
pub const PRODUCER_KEY: &str = "producer-key-for-tests";

/// `prefix` and a random suffix: topic, group and user names that tests sharing a broker
/// or a database do not collide on.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{:08x}", rand::random::<u32>())
}

/// The admin service on a SQLite store in `dir`, on a free loopback port, with
/// [`ADMIN_PASSWORD`] and [`PRODUCER_KEY`].
pub async fn admin_service(dir: &Path) -> AdminHandle {
    let mut config = AdminConfig::local(dir);
    config.producer_secret = Some(Secret::new(PRODUCER_KEY));
    config.admin_password = Some(Secret::new(ADMIN_PASSWORD));
    AdminService::start(config)
        .await
        .expect("admin service starts")
}

/// The admin API, signed in as `admin` with a bearer token.
pub struct AdminApi {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl AdminApi {
    /// Signs in at `url` (the service's base URL) as `admin` with [`ADMIN_PASSWORD`].
    pub async fn sign_in(url: &str) -> Self {
        let http = reqwest::Client::new();
        let login: Value = http
            .post(format!("{url}/api/auth/login"))
            .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        AdminApi {
            http,
            url: url.to_owned(),
            token: login["token"].as_str().expect("a token").to_owned(),
        }
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// Sends `body` as JSON (none when it is `null`), asserts a 2xx answer and returns its
    /// JSON (`null` when there is none).
    pub async fn call(&self, method: Method, path: &str, body: Value) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert!(status.is_success(), "{method} {path}: {status} {body}");
        body
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        self.call(Method::POST, path, body).await
    }

    pub async fn get(&self, path: &str) -> Value {
        self.call(Method::GET, path, Value::Null).await
    }

    /// A topic's fields (the detail view may wrap them with Kafka figures).
    pub async fn topic(&self, id: i64) -> Value {
        let v = self.get(&format!("/api/topics/{id}")).await;
        v.get("topic").cloned().unwrap_or(v)
    }
}
