//! The admin service: the seed's REST API with authentication, the topic lifecycle,
//! the audit log, server-sent events and the web dashboard, over the metadata store.
//!
//! Where to look: [`router`] lists every endpoint; `auth` decides who may call what;
//! `error` turns every failure into `{"error","code"}`; `api/` has one module per
//! resource; the store crate keeps the data and the lifecycle's transactions.
//!
//! For the binary: [`AdminArgs`] and [`run`]. For tests and `streamhub up`:
//! [`AdminService::start`], which binds, bootstraps the first admin and reports the URL.

pub mod access;
pub mod api;
pub mod auth;
mod cluster;
mod conditional;
mod config;
mod connections;
pub mod dashboard;
pub mod error;
pub mod figures;
pub mod limits;
mod log_value;
mod openapi;
pub mod process;
mod state;
mod streams;
pub mod telemetry;
mod topic_lists;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::from_fn;
use axum::{Extension, Router};
use openssl::ssl::SslAcceptor;
use streamhub_model::Role;
use streamhub_store::Store;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

pub use api::topics::TopicDetails;
pub use auth::{Credential, Principal};
pub use cluster::{ClusterFigures, ClusterInfo, TailMessage};
pub use config::{
    ADMIN_PASSWORD_FILE, AdminArgs, AdminConfig, DatabaseUrl, KafkaSecurity, Secret, TlsFiles,
};
pub use error::ApiError;
pub use limits::Limits;
pub use state::AppState;
pub use streams::{
    EVENT_STREAMS_PER_USER, MAX_EVENT_STREAMS, MAX_TAILS, PRODUCER_EVENT_STREAMS, StreamLimits,
    TAILS_PER_USER,
};

/// Request bodies above this answer 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The `/api` routes and their OpenAPI description, from one list: each handler's
/// `#[utoipa::path]` gives both its route and its entry in the document.
pub(crate) fn api_routes() -> OpenApiRouter<AppState> {
    use api::{audit, events, schemas, subscriptions, topics, users};
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(api::health))
        .routes(routes!(openapi::serve_document))
        .routes(routes!(auth::login).layer(from_fn(limits::login_attempts)))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(topics::list, topics::create))
        .routes(routes!(topics::active))
        .routes(routes!(topics::activate_by_name))
        .routes(routes!(topics::provisioning_failure))
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
        .routes(routes!(schemas::list))
        .routes(routes!(schemas::get))
        .merge(figures::routes())
        .merge(access::routes())
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
        .layer(from_fn(error::json_errors))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(from_fn(limits::declared_body_size));

    let header = |name: HeaderName, value: &'static str| {
        SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
    };
    Router::new()
        .nest("/api", api)
        .merge(dashboard::routes())
        .route("/metrics", axum::routing::get(telemetry::serve_metrics))
        .layer(from_fn(limits::request_timeout))
        .layer(header(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header(header::REFERRER_POLICY, "no-referrer"))
        .layer(header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(from_fn(telemetry::observe_http))
        .with_state(state)
}

/// [`router`] with the settings its limits read from each request.
fn app(state: AppState, limits: &Limits) -> Router {
    router(state)
        .layer(Extension(Arc::new(limits::LoginLimiter::new(limits))))
        .layer(Extension(limits::RequestTimeout(limits.request_timeout)))
}

/// Serves until `shutdown` resolves, then ends event streams and finishes open requests.
/// Connections are bounded as [`Limits`] says (see `connections`).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    limits: &Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = app(state.clone(), limits);
    connections::serve(listener, app, limits, None, shutdown, move || {
        state.close_event_streams()
    })
    .await
}

/// Reads the certificate chain and key, so that a wrong file stops the start. Mozilla's
/// "intermediate" settings: TLS 1.2 and 1.3, forward-secret AEAD ciphers only.
fn tls_config(files: &TlsFiles) -> anyhow::Result<Arc<SslAcceptor>> {
    use openssl::ssl::{AlpnError, SslFiletype, SslMethod, select_next_proto};
    let build = || -> Result<SslAcceptor, openssl::error::ErrorStack> {
        let mut builder = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())?;
        builder.set_certificate_chain_file(&files.cert)?;
        builder.set_private_key_file(&files.key, SslFiletype::PEM)?;
        builder.check_private_key()?;
        builder.set_alpn_select_callback(|_, offered| {
            select_next_proto(b"\x02h2\x08http/1.1", offered).ok_or(AlpnError::NOACK)
        });
        Ok(builder.build())
    };
    let acceptor = build().with_context(|| {
        format!(
            "cannot use the TLS certificate {} with the key {} (both PEM)",
            files.cert.display(),
            files.key.display()
        )
    })?;
    Ok(Arc::new(acceptor))
}

/// [`serve`] over HTTPS, with OpenSSL (the TLS library rdkafka links too).
async fn serve_tls(
    listener: tokio::net::TcpListener,
    state: AppState,
    limits: &Limits,
    tls: Arc<SslAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Browsers that reached the service over HTTPS once keep to it.
    let app = app(state.clone(), limits).layer(SetResponseHeaderLayer::overriding(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    ));
    connections::serve(listener, app, limits, Some(tls), shutdown, move || {
        state.close_event_streams()
    })
    .await
}

/// Creates user `admin` when the store has no user yet. Returns the password when it
/// was generated here.
async fn bootstrap_admin(
    state: &AppState,
    password: Option<&Secret>,
    password_file: Option<&Path>,
) -> anyhow::Result<Option<Secret>> {
    let counts = state.store().counts().await?;
    if counts.users > 0 {
        return Ok(None);
    }
    let (password, generated) = match password {
        Some(p) => {
            // The same rule as for every account: the first admin is the one most worth guessing.
            streamhub_model::account::check_password("admin", p.expose()).map_err(|e| {
                anyhow::anyhow!(
                    "STREAMHUB_ADMIN_PASSWORD (--admin-password) is refused: {e}; choose a longer, less guessable one, or leave it unset to have one generated"
                )
            })?;
            (p.clone(), false)
        }
        None => (Secret::new(auth::random_password()), true),
    };
    if generated && let Some(file) = password_file {
        // Written before the user exists: a failure here leaves no admin nobody can sign in as.
        write_private(file, password.expose())?;
    }
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
        // Secrets never go to the log: the log says where the password is.
        match password_file {
            Some(file) => tracing::warn!(
                "created user 'admin' with a random password, kept in {} (mode 0600); set STREAMHUB_ADMIN_PASSWORD to choose it instead",
                file.display()
            ),
            None => tracing::warn!(
                "created user 'admin' with a random password; set STREAMHUB_ADMIN_PASSWORD to choose it instead"
            ),
        }
        Ok(Some(password))
    } else {
        tracing::info!("created user 'admin' with the password from STREAMHUB_ADMIN_PASSWORD");
        Ok(None)
    }
}

/// Writes `content` to a file only its owner may read, creating the directory.
fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    // The mode above applies to new files only; an older file is narrowed too.
    #[cfg(unix)]
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .with_context(|| format!("cannot restrict {}", path.display()))?;
    writeln!(file, "{content}").with_context(|| format!("cannot write {}", path.display()))
}

/// Raises the open-file limit as far as allowed, and warns when it is still below what
/// the connection cap needs.
fn check_fd_limit(limits: &Limits) {
    // The broker, the database and logs need descriptors beside the connections.
    const RESERVE: u64 = 256;
    if let Some(open_files) = connections::raise_fd_limit() {
        let wanted = limits.max_connections as u64 + RESERVE;
        if open_files < wanted {
            tracing::warn!(
                open_files,
                max_connections = limits.max_connections,
                "the open-file limit is below --max-connections plus {RESERVE}: raise it (ulimit -n) or lower --max-connections"
            );
        }
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
        telemetry::install();
        let store = streamhub_store::open_with_pool(config.database.expose(), config.database_pool)
            .await
            .with_context(|| format!("cannot open the metadata store {}", config.database))?;
        let store = telemetry::TimedStore::wrap(store);
        let state = AppState::new(
            store.clone(),
            config.producer_secret.clone(),
            config.token_ttl,
            config.cluster.clone(),
        )
        .with_secure_cookies(config.secure_cookies || config.tls.is_some())
        .with_stream_limits(config.streams)
        .with_metrics_token(config.metrics_token.clone())
        .with_kafka_access(config.kafka_access.clone());
        let tls = config.tls.as_ref().map(tls_config).transpose()?;
        check_fd_limit(&config.limits);
        // Bind before creating the first admin, so a busy port does not use up the
        // one showing of a generated password.
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let generated = bootstrap_admin(
            &state,
            config.admin_password.as_ref(),
            config.admin_password_file.as_deref(),
        )
        .await?;
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
        let scheme = if tls.is_some() { "https" } else { "http" };
        let task = {
            let (state, limits) = (state.clone(), config.limits.clone());
            let stop = shutdown.clone().cancelled_owned();
            tokio::spawn(async move {
                match tls {
                    Some(tls) => serve_tls(listener, state, &limits, tls, stop).await,
                    None => serve(listener, state, &limits, stop).await,
                }
            })
        };
        let url = format!("{scheme}://{addr}");
        tracing::info!(%url, database = %config.database, "admin service listening");
        Ok(AdminHandle {
            addr,
            url,
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
    /// `http://<ip>:<port>` (`https://` when serving TLS), without a trailing slash.
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
    run_with_cluster(args, None, None, shutdown).await
}

/// [`run`] with a cluster reader for the Kafka figures of statistics and topic details,
/// and the Kafka admin calls of access management (`--kafka-security scram`), both built
/// by the caller from the Kafka client's flags.
pub async fn run_with_cluster(
    args: AdminArgs,
    cluster: Option<Arc<dyn ClusterInfo>>,
    kafka_access: Option<Arc<dyn access::KafkaAccess>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut config = args.into_config();
    config.cluster = cluster;
    config.kafka_access = kafka_access;
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
