use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::ClusterInfo;
use crate::limits::Limits;
use crate::streams::StreamLimits;

pub use streamhub_model::Secret;
use streamhub_model::duration::DurationRange;

/// Bounds of the service's durations (token lifetime, connection timeouts).
const SERVICE_DURATION: DurationRange =
    DurationRange::new(Duration::from_secs(1), Duration::from_secs(366 * 86_400));

fn parse_service_duration(text: &str) -> Result<Duration, String> {
    SERVICE_DURATION.parse(text)
}

/// `streamhub admin`: the REST API, the dashboard and the metadata store.
#[derive(clap::Args, Debug, Clone)]
pub struct AdminArgs {
    /// Address to listen on.
    #[arg(long, env = "STREAMHUB_LISTEN", default_value = "127.0.0.1:5000")]
    pub listen: String,
    /// Metadata store: `postgres://…`, `sqlite://<path>` or a file path. Defaults to `<data-dir>/streamhub.db`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database: Option<DatabaseUrl>,
    /// Connections to PostgreSQL this instance keeps at most (one of them listens for the
    /// other instances' events). SQLite ignores it.
    #[arg(
        long,
        env = "STREAMHUB_DATABASE_POOL",
        default_value_t = streamhub_store::DEFAULT_POOL_SIZE,
        value_parser = clap::value_parser!(u32).range(2..=10_000)
    )]
    pub database_pool: u32,
    /// Directory for streamhub's files.
    #[arg(long, env = "STREAMHUB_DATA_DIR", default_value = "./streamhub-data")]
    pub data_dir: PathBuf,
    /// Shared secret the producer sends as `X-Producer-Key`; unset, the header is refused.
    #[arg(
        long,
        env = "PRODUCER_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub producer_secret: Option<Secret>,
    /// Password of the `admin` user created at the first start; when unset, a random one
    /// is written to `<data-dir>/admin-password` (mode 0600), never to the log.
    #[arg(
        long,
        env = "STREAMHUB_ADMIN_PASSWORD",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub admin_password: Option<Secret>,
    /// Lifetime of sign-in tokens and session cookies, 1 s to 366 d: `3600`, `90s`, `30m`, `12h`, `7d`.
    #[arg(long, env = "STREAMHUB_TOKEN_TTL", default_value = "12h", value_parser = parse_service_duration)]
    pub token_ttl: Duration,
    /// Mark the session cookies `Secure`: set it when users reach the service over HTTPS
    /// through a TLS-terminating proxy (with --tls-cert they are `Secure` anyway).
    #[arg(long, env = "STREAMHUB_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Failed sign-ins allowed per username and client address in 15 minutes, then 429
    /// for that address until the window ends (the account's owner elsewhere is not
    /// locked out); 0 turns the limit off.
    #[arg(long, env = "STREAMHUB_LOGIN_FAILURES_PER_USER", default_value_t = Limits::default().login_failures_per_user)]
    pub login_failures_per_user: u32,
    /// Failed sign-ins allowed per client address (IPv6: per /64) in one minute; 0 turns
    /// the limit off. Behind a reverse proxy, name it with --trusted-proxy.
    #[arg(long, env = "STREAMHUB_LOGIN_FAILURES_PER_ADDRESS", default_value_t = Limits::default().login_failures_per_address)]
    pub login_failures_per_address: u32,
    /// Reverse proxy (address or network, repeatable; env: comma-separated) whose
    /// `X-Forwarded-For` names the client for the per-address limit. Unset, the header is
    /// ignored: any client could write it.
    #[arg(
        long = "trusted-proxy",
        env = "STREAMHUB_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "ADDRESS|NETWORK",
        value_parser = parse_network
    )]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Serve HTTPS with this certificate chain (PEM: the server's certificate first, then
    /// intermediates); needs --tls-key. Session cookies are then always `Secure`.
    #[arg(
        long,
        env = "STREAMHUB_TLS_CERT",
        requires = "tls_key",
        value_name = "PEM_FILE"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(
        long,
        env = "STREAMHUB_TLS_KEY",
        requires = "tls_cert",
        value_name = "PEM_FILE"
    )]
    pub tls_key: Option<PathBuf>,
    /// Time a request may take until its answer starts (event streams excepted), then 408.
    #[arg(long, env = "STREAMHUB_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_service_duration)]
    pub request_timeout: Duration,
    /// Time a client has to send a request's head or finish the TLS handshake, from the
    /// connection's start and between requests on a kept-alive connection; then the
    /// connection is closed.
    #[arg(long, env = "STREAMHUB_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_service_duration)]
    pub header_read_timeout: Duration,
    /// A connection on which no byte moves either way for this long is closed (event
    /// streams send a comment every 15 s). Keep it above --request-timeout.
    #[arg(long, env = "STREAMHUB_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_service_duration)]
    pub idle_timeout: Duration,
    /// Open connections at most; more are closed at once, with a warning in the log.
    #[arg(
        long,
        env = "STREAMHUB_MAX_CONNECTIONS",
        default_value_t = Limits::default().max_connections,
        value_parser = parse_positive
    )]
    pub max_connections: usize,
    /// Open connections at most from one client address (IPv6: one /64); --trusted-proxy
    /// addresses count in --max-connections only.
    #[arg(
        long,
        env = "STREAMHUB_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = Limits::default().max_connections_per_address,
        value_parser = parse_positive
    )]
    pub max_connections_per_address: usize,
    /// Bearer token Prometheus sends to read `GET /metrics`; admins' tokens work too.
    #[arg(
        long,
        env = "STREAMHUB_METRICS_TOKEN",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub metrics_token: Option<Secret>,
    /// `scram`: subscriptions and the lifecycle are the broker's ACLs, and each user gets
    /// SCRAM-SHA-512 credentials, managed through the Kafka admin API with the Kafka
    /// client's SASL settings (a super user of the broker). `open`: no Kafka security.
    #[arg(
        long,
        env = "STREAMHUB_KAFKA_SECURITY",
        value_enum,
        default_value = "open"
    )]
    pub kafka_security: KafkaSecurity,
}

/// Whether streamhub manages Kafka credentials and ACLs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KafkaSecurity {
    /// Every client may do everything (the broker's own settings aside).
    #[default]
    Open,
    /// SASL/SCRAM credentials per user, ACLs from subscriptions and the lifecycle.
    Scram,
}

impl AdminArgs {
    /// The settings these flags describe. Kafka figures stay off until the caller sets
    /// [`AdminConfig::cluster`] (the binary builds it from the Kafka client's flags).
    pub fn into_config(self) -> AdminConfig {
        let database = self.database.unwrap_or_else(|| {
            format!("sqlite://{}", self.data_dir.join("streamhub.db").display()).into()
        });
        AdminConfig {
            listen: self.listen,
            database,
            database_pool: self.database_pool,
            producer_secret: self.producer_secret,
            admin_password: self.admin_password,
            token_ttl: self.token_ttl,
            secure_cookies: self.secure_cookies,
            cluster: None,
            limits: Limits {
                login_failures_per_user: self.login_failures_per_user,
                login_failures_per_address: self.login_failures_per_address,
                trusted_proxies: self.trusted_proxies,
                request_timeout: self.request_timeout,
                header_read_timeout: self.header_read_timeout,
                idle_timeout: self.idle_timeout,
                max_connections: self.max_connections,
                max_connections_per_address: self.max_connections_per_address,
                ..Limits::default()
            },
            streams: StreamLimits::default(),
            admin_password_file: Some(self.data_dir.join(ADMIN_PASSWORD_FILE)),
            tls: self
                .tls_cert
                .zip(self.tls_key)
                .map(|(cert, key)| TlsFiles { cert, key }),
            metrics_token: self.metrics_token,
            kafka_access: None,
        }
    }
}

/// Certificate chain and private key, PEM files, for serving HTTPS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Where a generated password of the first admin is kept, in the data directory.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";

/// Everything the admin service needs to start.
#[derive(Clone)]
pub struct AdminConfig {
    /// `host:port`; port 0 picks a free one (see [`crate::AdminHandle::url`]).
    pub listen: String,
    /// `postgres://…`, `sqlite://<path>` or a file path.
    pub database: DatabaseUrl,
    /// Most connections to PostgreSQL.
    pub database_pool: u32,
    pub producer_secret: Option<Secret>,
    pub admin_password: Option<Secret>,
    pub token_ttl: Duration,
    /// Session cookies carry `Secure` (HTTPS only).
    pub secure_cookies: bool,
    pub cluster: Option<Arc<dyn ClusterInfo>>,
    pub limits: Limits,
    /// Bounds on open event streams and tails.
    pub streams: StreamLimits,
    /// A generated password of the first admin is written here (mode 0600), never logged.
    pub admin_password_file: Option<PathBuf>,
    /// Serve HTTPS instead of HTTP; session cookies are then `Secure` whatever
    /// `secure_cookies` says.
    pub tls: Option<TlsFiles>,
    /// Bearer token that may read `/metrics`, besides admins' tokens.
    pub metrics_token: Option<Secret>,
    /// Kafka credentials and ACLs managed by the service (`--kafka-security scram`);
    /// `None`: the broker is open and subscriptions bind nothing there.
    pub kafka_access: Option<Arc<dyn crate::access::KafkaAccess>>,
}

impl AdminConfig {
    /// Loopback on a free port with its database under `data_dir`.
    pub fn local(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        AdminConfig {
            listen: "127.0.0.1:0".into(),
            database: format!("sqlite://{}", data_dir.join("streamhub.db").display()).into(),
            database_pool: streamhub_store::DEFAULT_POOL_SIZE,
            producer_secret: None,
            admin_password: None,
            token_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: false,
            cluster: None,
            limits: Limits::default(),
            streams: StreamLimits::default(),
            admin_password_file: Some(data_dir.join(ADMIN_PASSWORD_FILE)),
            tls: None,
            metrics_token: None,
            kafka_access: None,
        }
    }
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminConfig")
            .field("listen", &self.listen)
            .field("database", &self.database)
            .field("database_pool", &self.database_pool)
            .field("producer_secret", &self.producer_secret)
            .field("admin_password", &self.admin_password)
            .field("token_ttl", &self.token_ttl)
            .field("secure_cookies", &self.secure_cookies)
            .field("cluster", &self.cluster.is_some())
            .field("limits", &self.limits)
            .field("streams", &self.streams)
            .field("admin_password_file", &self.admin_password_file)
            .field("tls", &self.tls)
            .field("metrics_token", &self.metrics_token)
            .field("kafka_access", &self.kafka_access.is_some())
            .finish()
    }
}

/// The metadata store's address. A PostgreSQL URL may carry a password (after the user,
/// or as a `password` parameter): `Display` and `Debug` show it as `***`, so that logs,
/// errors and debug output never do; [`DatabaseUrl::expose`] gives the real one.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn redacted(&self) -> String {
        let url = &self.0;
        let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
            return url.clone(); // A file path.
        };
        let rest = &url[scheme_end..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let mut shown = url[..scheme_end].to_owned();
        // The user's part ends at the last '@': a password may contain '@' unescaped.
        match authority.rfind('@') {
            Some(at) => {
                let (userinfo, host) = authority.split_at(at);
                match userinfo.split_once(':') {
                    Some((user, _)) => shown.push_str(&format!("{user}:***")),
                    None => shown.push_str(userinfo),
                }
                shown.push_str(host);
            }
            None => shown.push_str(authority),
        }
        let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
        shown.push_str(path);
        if !query.is_empty() {
            let params: Vec<String> = query
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _)) if key.to_ascii_lowercase().contains("password") => {
                        format!("{key}=***")
                    }
                    _ => param.to_owned(),
                })
                .collect();
            shown.push('?');
            shown.push_str(&params.join("&"));
        }
        shown
    }
}

impl From<String> for DatabaseUrl {
    fn from(url: String) -> Self {
        DatabaseUrl(url)
    }
}

impl From<&str> for DatabaseUrl {
    fn from(url: &str) -> Self {
        DatabaseUrl(url.to_owned())
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;
    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Ok(url.into())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

/// Parses a count of at least 1.
fn parse_positive(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("'{text}' is not a whole number of at least 1")),
    }
}

/// Parses a network (`10.0.0.0/8`, `fd00::/8`) or one address (`10.0.0.5`, a /32 or /128).
pub fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("'{text}' is not an address or a network such as 10.0.0.0/8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_a_unit_or_seconds_within_bounds() {
        use clap::Parser;
        let ttl = |text: &str| {
            Cli::try_parse_from(["streamhub", "--token-ttl", text])
                .map(|cli| cli.admin.token_ttl)
                .map_err(|e| e.to_string())
        };
        assert_eq!(ttl("3600"), Ok(Duration::from_secs(3600)));
        assert_eq!(ttl("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(ttl("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(ttl("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(ttl("1h30m"), Ok(Duration::from_secs(5400)));
        // Below one second, above 366 days, an unknown unit: refused in one line.
        for bad in ["0", "0.5", "367d", "5x", "h"] {
            let err = ttl(bad).unwrap_err();
            assert!(err.contains("--token-ttl"), "{bad}: {err}");
            assert!(
                err.contains("out of range") || err.contains(streamhub_model::duration::SYNTAX),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn trusted_proxies_are_networks_or_single_addresses() {
        use clap::Parser;
        let cli = Cli::try_parse_from([
            "streamhub",
            "--trusted-proxy",
            "10.0.0.0/8,192.0.2.7",
            "--trusted-proxy",
            "fd00::/8",
        ])
        .unwrap();
        let nets: Vec<String> = cli
            .admin
            .into_config()
            .limits
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(nets, ["10.0.0.0/8", "192.0.2.7/32", "fd00::/8"]);
        let err = Cli::try_parse_from(["streamhub", "--trusted-proxy", "10.0.0.0/33"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("not an address or a network"), "{err}");
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        admin: AdminArgs,
    }

    #[test]
    fn flags_build_the_config_with_the_database_under_the_data_dir() {
        use clap::Parser;
        let cli = Cli::try_parse_from([
            "streamhub",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            "/var/lib/sh",
            "--token-ttl",
            "30m",
            "--producer-secret",
            "s3cret",
        ])
        .unwrap();
        assert!(!format!("{:?}", cli.admin).contains("s3cret"));
        let explicit_database = std::env::var_os("DATABASE_URL").is_some();
        let config = cli.admin.into_config();
        assert_eq!(config.listen, "127.0.0.1:0");
        assert_eq!(config.token_ttl, Duration::from_secs(1800));
        assert_eq!(config.producer_secret.unwrap().expose(), "s3cret");
        if !explicit_database {
            assert_eq!(
                config.database.expose(),
                "sqlite:///var/lib/sh/streamhub.db"
            );
        }
        assert!(Cli::try_parse_from(["streamhub", "--token-ttl", "soon"]).is_err());
    }

    /// A generated secret can begin with `-` (URL-safe base64 does): it is a value, not a flag.
    #[test]
    fn secrets_that_begin_with_a_hyphen_are_taken_as_given() {
        use clap::Parser;
        let cli = Cli::try_parse_from([
            "streamhub",
            "--admin-password",
            "-qU7x-Tidal-42",
            "--producer-secret",
            "--not-a-flag",
        ])
        .unwrap();
        let config = cli.admin.into_config();
        assert_eq!(config.admin_password.unwrap().expose(), "-qU7x-Tidal-42");
        assert_eq!(config.producer_secret.unwrap().expose(), "--not-a-flag");
    }

    #[test]
    fn tls_needs_both_files_and_limits_have_flags() {
        use clap::{CommandFactory, Parser};
        Cli::command().debug_assert();
        assert!(Cli::try_parse_from(["streamhub", "--tls-cert", "c.pem"]).is_err());
        let cli = Cli::try_parse_from([
            "streamhub",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--login-failures-per-user",
            "0",
            "--request-timeout",
            "5s",
            "--header-read-timeout",
            "3s",
            "--idle-timeout",
            "2m",
            "--max-connections",
            "100",
            "--max-connections-per-address",
            "7",
        ])
        .unwrap();
        let config = cli.admin.into_config();
        assert_eq!(
            config.tls,
            Some(TlsFiles {
                cert: "c.pem".into(),
                key: "k.pem".into()
            })
        );
        assert_eq!(config.limits.login_failures_per_user, 0);
        assert_eq!(config.limits.request_timeout, Duration::from_secs(5));
        assert_eq!(config.limits.header_read_timeout, Duration::from_secs(3));
        assert_eq!(config.limits.idle_timeout, Duration::from_secs(120));
        assert_eq!(config.limits.max_connections, 100);
        assert_eq!(config.limits.max_connections_per_address, 7);
        assert!(Cli::try_parse_from(["streamhub", "--max-connections", "0"]).is_err());
    }

    #[test]
    fn the_database_pool_is_bounded() {
        use clap::Parser;
        let pool = |args: &[&str]| {
            Cli::try_parse_from(["streamhub"].iter().chain(args))
                .map(|cli| cli.admin.into_config().database_pool)
        };
        if std::env::var_os("STREAMHUB_DATABASE_POOL").is_none() {
            assert_eq!(pool(&[]).unwrap(), streamhub_store::DEFAULT_POOL_SIZE);
        }
        assert_eq!(pool(&["--database-pool", "40"]).unwrap(), 40);
        for bad in ["1", "0", "-3", "many"] {
            let flag = format!("--database-pool={bad}");
            let err = pool(&[&flag]).unwrap_err().to_string();
            assert!(err.contains("--database-pool"), "{bad}: {err}");
        }
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let config = AdminConfig {
            producer_secret: Some(Secret::new("hunter2")),
            admin_password: Some(Secret::new("swordfish")),
            database: "postgres://app:pg-Pass@word@db:5432/sh".into(),
            ..AdminConfig::local("/tmp/x")
        };
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("swordfish") && !shown.contains("Pass"),
            "{shown}"
        );
    }

    #[test]
    fn database_urls_show_no_password() {
        let shown = |url: &str| DatabaseUrl::from(url).to_string();
        assert_eq!(
            shown("postgres://app:s3cr%40t@db.example:5432/sh?sslmode=require"),
            "postgres://app:***@db.example:5432/sh?sslmode=require"
        );
        assert_eq!(
            shown("postgresql://app:p@ss@db/sh"),
            "postgresql://app:***@db/sh"
        );
        assert_eq!(
            shown("postgres://db/sh?user=app&password=s3cret"),
            "postgres://db/sh?user=app&password=***"
        );
        assert_eq!(shown("postgres://app@db/sh"), "postgres://app@db/sh");
        assert_eq!(shown("sqlite:///var/lib/sh.db"), "sqlite:///var/lib/sh.db");
        assert_eq!(shown("data/sh.db"), "data/sh.db");
        let url = DatabaseUrl::from("postgres://app:s3cret@db/sh");
        assert!(!format!("{url:?}").contains("s3cret"));
        assert_eq!(url.expose(), "postgres://app:s3cret@db/sh");
    }

    #[test]
    fn help_shows_no_secret_from_the_environment() {
        use clap::CommandFactory;
        let mut command = Cli::command();
        for arg in command.get_arguments() {
            let secret = [
                "DATABASE_URL",
                "PRODUCER_SECRET",
                "STREAMHUB_ADMIN_PASSWORD",
            ]
            .iter()
            .any(|var| arg.get_env().is_some_and(|env| env == *var));
            assert!(
                !secret || arg.is_hide_env_values_set(),
                "{:?} shows its variable's value in --help",
                arg.get_id()
            );
        }
        let _ = command.render_help();
    }
}
