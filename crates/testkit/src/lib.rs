//! Test support shared by the integration tests of several crates: the admin service
//! in-process with known secrets, its API signed in as the admin, and unique names.
//! Only ever a dev-dependency: nothing here ships.

use std::path::Path;

use serde_json::Value;
use streamhub_admin::{AdminConfig, AdminHandle, AdminService, Secret};
use streamhub_client::{Client, Method};

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
    client: Client,
}

impl AdminApi {
    /// Signs in at `url` (the service's base URL) as `admin` with [`ADMIN_PASSWORD`].
    pub async fn sign_in(url: &str) -> Self {
        let mut client = Client::new(url.parse().expect("an admin URL")).unwrap();
        client
            .login("admin", ADMIN_PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("admin signs in at {url}: {e}"));
        AdminApi { client }
    }

    pub fn token(&self) -> &str {
        self.client.token().expect("signed in")
    }

    /// The client, signed in as `admin`, for the API's typed calls.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Sends `body` as JSON (none when it is `null`), asserts a 2xx answer and returns its
    /// JSON (`null` when there is none).
    pub async fn call(&self, method: Method, path: &str, body: Value) -> Value {
        let body = (!body.is_null()).then_some(&body);
        self.client
            .call(method.clone(), path, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {:?} {e}", e.status()))
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
