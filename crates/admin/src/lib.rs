//! The admin service: the seed's REST API with authentication, the topic lifecycle,
//! the audit log, server-sent events and the web dashboard, over the metadata store.
//!
//! Where to look: [`router`] lists every endpoint; `auth` decides who may call what;
//! `error` turns every failure into `{"error","code"}`; `api/` has one module per
//! resource; the store crate keeps the data and the lifecycle's transactions.
//!
//! For the binary: [`AdminArgs`] and [`run`]. For tests and `streamhub up`:
//! [`AdminService::start`], which binds, bootstraps the first admin and reports the URL.

pub mod api;
pub mod auth;
mod cluster;
mod config;
pub mod dashboard;
pub mod error;
pub mod metrics;
mod openapi;
mod state;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use streamhub_model::Role;
use streamhub_store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use api::topics::TopicDetails;
pub use auth::{Credential, Principal};
pub use cluster::{ClusterInfo, TailMessage};
pub use config::{AdminArgs, AdminConfig, Secret, parse_duration};
pub use error::ApiError;
pub use state::{AppState, MAX_EVENT_STREAMS};

/// Request bodies above this answer 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The `/api` routes and their OpenAPI description, from one list: each handler's
/// `#[utoipa::path]` gives both its route and its entry in the document.
pub(crate) fn api_routes() -> OpenApiRouter<AppState> {
    use api::{audit, events, subscriptions, topics, users};
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(api::health))
        .routes(routes!(openapi::serve_document))
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(topics::list, topics::create))
        .routes(routes!(topics::active))
        .routes(routes!(topics::activate_by_name))
        .routes(routes!(topics::get, topics::delete))
        .routes(routes!(topics::approve))
        .routes(routes!(topics::reject))
        .routes(routes!(topics::deactivate))
        .routes(routes!(topics::reactivate))
        .routes(routes!(
            subscriptions::list,
            subscriptions::subscribe,
            subscriptions::unsubscribe
        ))
        .routes(routes!(api::stats))
        .routes(routes!(audit::list))
        .routes(routes!(users::list, users::create, users::delete))
        .routes(routes!(users::delete_by_path))
        .routes(routes!(events::stream))
        .merge(metrics::routes())
}

/// The OpenAPI document served at `GET /api/openapi.json`, as JSON.
pub fn openapi_document() -> &'static serde_json::Value {
    openapi::document()
}

/// Every route of the service.
pub fn router(state: AppState) -> Router {
    let (api, _) = api_routes().split_for_parts();
    let api = api
        .fallback(error::api_not_found)
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));

    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    Router::new()
        .nest("/api", api)
        .merge(dashboard::routes())
        .layer(header(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::REFERRER_POLICY, "no-referrer"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves until `shutdown` resolves, then ends event streams and finishes open requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = router(state.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            state.close_event_streams();
        })
        .await
}

/// Creates user `admin` when the store has no user yet. Returns the password when it
/// was generated here.
async fn bootstrap_admin(
    state: &AppState,
    password: Option<&Secret>,
) -> anyhow::Result<Option<Secret>> {
    let counts = state.store().counts().await?;
    if counts.users > 0 {
        return Ok(None);
    }
    let (password, generated) = match password {
        Some(p) => (p.clone(), false),
        None => (Secret::new(auth::random_password()), true),
    };
    let hash = state
        .hash_password(password.expose().to_owned())
        .await
        .map_err(|e| anyhow::anyhow!("cannot hash the admin password: {e:?}"))?;
    match state
        .store()
        .create_user("system", "admin", &hash, Role::Admin)
        .await
    {
        // Another instance on the same database created it first.
        Err(streamhub_store::StoreError::Conflict(_)) => return Ok(None),
        created => created.context("cannot create the first admin user")?,
    };
    if generated {
        // Shown once, so the operator can sign in; set STREAMHUB_ADMIN_PASSWORD to choose it.
        tracing::warn!(
            "created user 'admin' with password {} (shown once; set STREAMHUB_ADMIN_PASSWORD to choose it)",
            password.expose()
        );
        Ok(Some(password))
    } else {
        tracing::info!("created user 'admin' with the password from STREAMHUB_ADMIN_PASSWORD");
        Ok(None)
    }
}

/// The original system's documentation printed a sample key that many deployments kept.
const SAMPLE_PRODUCER_SECRET: &str = "ChangeThisProducerSecret!";

fn weak_producer_secret(secret: &str) -> bool {
    secret == SAMPLE_PRODUCER_SECRET || secret.chars().count() < 16
}

/// Starts the admin service in the background.
pub struct AdminService;

impl AdminService {
    /// Opens the store, creates the first admin if needed, binds `config.listen` and
    /// serves in a task. Port 0 picks a free port: see [`AdminHandle::url`].
    pub async fn start(config: AdminConfig) -> anyhow::Result<AdminHandle> {
        let store = streamhub_store::open(&config.database)
            .await
            .with_context(|| format!("cannot open the metadata store {}", config.database))?;
        let state = AppState::new(
            store.clone(),
            config.producer_secret.clone(),
            config.token_ttl,
            config.cluster.clone(),
        )
        .with_secure_cookies(config.secure_cookies);
        // Bind before creating the first admin, so a busy port does not use up the
        // one showing of a generated password.
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let generated = bootstrap_admin(&state, config.admin_password.as_ref()).await?;
        store
            .purge_expired_tokens(chrono::Utc::now())
            .await
            .context("cannot clean expired tokens")?;
        let addr = listener.local_addr()?;
        match &config.producer_secret {
            None => tracing::warn!(
                "no PRODUCER_SECRET: X-Producer-Key is refused; the producer must sign in as a producer user"
            ),
            Some(secret) if weak_producer_secret(secret.expose()) => tracing::warn!(
                "PRODUCER_SECRET is weak (the original's sample value, or under 16 characters): anyone who guesses it can activate topics"
            ),
            Some(_) => {}
        }
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(serve(
            listener,
            state.clone(),
            shutdown.clone().cancelled_owned(),
        ));
        tracing::info!(url = %format!("http://{addr}"), database = %config.database, "admin service listening");
        Ok(AdminHandle {
            addr,
            url: format!("http://{addr}"),
            admin_password: generated.or(config.admin_password),
            producer_secret: config.producer_secret,
            shutdown,
            task,
            state,
        })
    }
}

/// A running admin service.
pub struct AdminHandle {
    addr: SocketAddr,
    url: String,
    admin_password: Option<Secret>,
    producer_secret: Option<Secret>,
    shutdown: CancellationToken,
    task: JoinHandle<std::io::Result<()>>,
    state: AppState,
}

impl std::fmt::Debug for AdminHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminHandle")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl AdminHandle {
    /// `http://<ip>:<port>`, without a trailing slash.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The `admin` password: generated at this start, or the configured one. `None`
    /// when the admin existed already and none was configured.
    pub fn admin_password(&self) -> Option<&str> {
        self.admin_password.as_ref().map(Secret::expose)
    }

    pub fn producer_secret(&self) -> Option<&str> {
        self.producer_secret.as_ref().map(Secret::expose)
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        self.state.store()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Stops serving and waits for open requests to finish.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.task.await.context("admin service task failed")??;
        Ok(())
    }

    /// Waits until the server stops by itself (an accept error) or `shutdown` fires.
    pub async fn run_until(mut self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tokio::select! {
            _ = shutdown.cancelled() => self.stop().await,
            ended = &mut self.task => {
                ended.context("admin service task failed")??;
                anyhow::bail!("the admin service stopped unexpectedly")
            }
        }
    }
}

/// `streamhub admin`: runs until `shutdown` is cancelled. Kafka figures stay off;
/// see [`run_with_cluster`].
pub async fn run(args: AdminArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    run_with_cluster(args, None, shutdown).await
}

/// [`run`] with a cluster reader for the Kafka figures of statistics and topic details
/// (built by the caller from [`AdminArgs::bootstrap_servers`]).
pub async fn run_with_cluster(
    args: AdminArgs,
    cluster: Option<Arc<dyn ClusterInfo>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    if args.bootstrap_servers.is_some() && cluster.is_none() {
        tracing::warn!(
            "--bootstrap-servers is set but no cluster reader was given: Kafka figures stay off"
        );
    }
    let mut config = args.into_config();
    config.cluster = cluster;
    let handle = AdminService::start(config).await?;
    handle.run_until(shutdown).await
}

#[cfg(test)]
mod secret_tests {
    use super::weak_producer_secret;

    #[test]
    fn the_sample_key_and_short_keys_are_weak() {
        assert!(weak_producer_secret("ChangeThisProducerSecret!"));
        assert!(weak_producer_secret("short"));
        assert!(!weak_producer_secret("k3Jd9s-Qm2Lx8vPz1aWq"));
    }
}
