use std::fmt;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::FutureProducer;

use crate::admin::Admin;
use crate::error::KafkaError;

/// Default bound on every blocking Kafka call (metadata, watermarks, offsets, admin requests).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

pub use streamhub_model::Secret;
use streamhub_model::duration::DurationRange;

/// `security.protocol` of librdkafka.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
#[value(rename_all = "snake_case")]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }
}

/// Parses a `-X key=value` librdkafka property.
pub fn parse_property(s: &str) -> Result<(String, String), String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected key=value (a librdkafka property), got {s:?}"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("empty property name in {s:?}"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// Bounds of `--kafka-timeout`.
const TIMEOUT_RANGE: DurationRange =
    DurationRange::new(Duration::from_millis(100), Duration::from_secs(3600));

fn parse_timeout(text: &str) -> Result<Duration, String> {
    TIMEOUT_RANGE.parse(text)
}

/// Flags shared by every component that talks to Kafka (`#[command(flatten)]` it).
/// Debug output redacts the password and secret `-X` values.
#[derive(clap::Args, Clone)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, comma separated host:port.
    #[arg(
        short = 'b',
        long = "bootstrap-servers",
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub bootstrap_servers: String,

    /// librdkafka property passed as is (repeatable), like kcat: -X fetch.min.bytes=1
    #[arg(short = 'X', value_name = "KEY=VALUE", value_parser = parse_property)]
    pub properties: Vec<(String, String)>,

    /// Security protocol towards the brokers.
    #[arg(long, env = "KAFKA_SECURITY_PROTOCOL", value_enum)]
    pub security_protocol: Option<SecurityProtocol>,

    /// SASL mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 ...
    #[arg(long, env = "KAFKA_SASL_MECHANISM")]
    pub sasl_mechanism: Option<String>,

    /// SASL user name.
    #[arg(long, env = "KAFKA_SASL_USERNAME")]
    pub sasl_username: Option<String>,

    /// SASL password (prefer the environment variable over the flag).
    #[arg(
        long,
        env = "KAFKA_SASL_PASSWORD",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub sasl_password: Option<Secret>,

    /// CA certificate file (PEM) to verify the brokers' certificates.
    #[arg(long, env = "KAFKA_SSL_CA_LOCATION")]
    pub ssl_ca_location: Option<String>,

    /// Bound on each metadata, offset and admin call to Kafka, 100ms to 1h: seconds (`10`,
    /// `2.5`) or with a unit (`500ms`, `10s`, `2m`).
    #[arg(
        id = "kafka_timeout",
        long = "kafka-timeout",
        env = "KAFKA_TIMEOUT_SECS",
        default_value = "10s",
        value_parser = parse_timeout
    )]
    pub timeout: Duration,
}

impl fmt::Debug for KafkaArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaArgs")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("properties", &redacted(&self.properties))
            .field("security_protocol", &self.security_protocol)
            .field("sasl_mechanism", &self.sasl_mechanism)
            .field("sasl_username", &self.sasl_username)
            .field("sasl_password", &self.sasl_password)
            .field("ssl_ca_location", &self.ssl_ca_location)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl KafkaArgs {
    pub fn config(&self) -> KafkaConfig {
        let mut config =
            KafkaConfig::new(self.bootstrap_servers.clone()).with_timeout(self.timeout);
        if let Some(protocol) = self.security_protocol {
            config = config.with("security.protocol", protocol.as_str());
        }
        if let Some(mechanism) = &self.sasl_mechanism {
            config = config.with("sasl.mechanism", mechanism);
        }
        if let Some(user) = &self.sasl_username {
            config = config.with("sasl.username", user);
        }
        if let Some(password) = &self.sasl_password {
            config = config.with("sasl.password", password.expose());
        }
        if let Some(ca) = &self.ssl_ca_location {
            config = config.with("ssl.ca.location", ca);
        }
        // -X comes last so that it overrides the dedicated flags, as in kcat.
        for (key, value) in &self.properties {
            config = config.with(key, value);
        }
        config
    }
}

/// How to reach a Kafka cluster; makes producers, consumers and the admin client.
#[derive(Clone)]
pub struct KafkaConfig {
    bootstrap_servers: String,
    /// Security settings and passthrough properties, applied after the defaults.
    properties: Vec<(String, String)>,
    timeout: Duration,
}

/// Property names whose values never appear in Debug output or logs.
fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "jaas", "ssl.key.pem", "token"]
        .iter()
        .any(|s| key.contains(s))
}

fn redacted(properties: &[(String, String)]) -> Vec<(&str, &str)> {
    properties
        .iter()
        .map(|(k, v)| {
            let shown = if is_secret(k) {
                "<redacted>"
            } else {
                v.as_str()
            };
            (k.as_str(), shown)
        })
        .collect()
}

impl fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("properties", &redacted(&self.properties))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Producer defaults: durable (acks=all, idempotent), batched, with bounded memory.
const PRODUCER_DEFAULTS: &[(&str, &str)] = &[
    ("acks", "all"),
    ("enable.idempotence", "true"),
    ("linger.ms", "5"),
    ("batch.num.messages", "10000"),
    ("compression.type", "lz4"),
    // The local queue holds at most 100k messages / 64 MiB; send() waits beyond that.
    ("queue.buffering.max.messages", "100000"),
    ("queue.buffering.max.kbytes", "65536"),
    // A message not acknowledged within this bound fails instead of waiting forever.
    ("message.timeout.ms", "60000"),
];

/// Consumer defaults: at least once. Offsets are stored by the application after it processed
/// a message (`store_offset_from_message`) and committed in the background and on close.
const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("enable.auto.commit", "true"),
    ("enable.auto.offset.store", "false"),
    ("auto.commit.interval.ms", "1000"),
    ("auto.offset.reset", "earliest"),
    ("enable.partition.eof", "false"),
];

impl KafkaConfig {
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        KafkaConfig {
            bootstrap_servers: bootstrap_servers.into(),
            properties: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Adds a librdkafka property; it overrides the defaults of producers and consumers.
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.properties.retain(|(k, _)| k != key);
        self.properties.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Sets the bound on each blocking call (metadata, watermarks, offsets, admin requests).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The value of a property set with [`KafkaConfig::with`], if any.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn build(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        // Connection attempts give up within the bound instead of librdkafka's 30 s.
        let timeout_ms = self
            .timeout
            .as_millis()
            .clamp(1000, i32::MAX as u128)
            .to_string();
        config.set("socket.connection.setup.timeout.ms", &timeout_ms);
        for (key, value) in defaults {
            config.set(*key, *value);
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        config
    }

    /// Base configuration: bootstrap servers, security settings and passthrough properties.
    pub fn client_config(&self) -> ClientConfig {
        self.build(&[])
    }

    /// An idempotent producer with `acks=all` (see [`PRODUCER_DEFAULTS`]).
    pub fn producer(&self) -> Result<FutureProducer, KafkaError> {
        Ok(self.build(PRODUCER_DEFAULTS).create()?)
    }

    /// [`Self::producer`] with a client context of the caller's, which receives
    /// librdkafka's errors (a fatal one among them) and logs.
    pub fn producer_with_context<C: ClientContext + 'static>(
        &self,
        context: C,
    ) -> Result<FutureProducer<C>, KafkaError> {
        Ok(self.build(PRODUCER_DEFAULTS).create_with_context(context)?)
    }

    /// A consumer of `group_id` that commits only offsets the caller stored after processing:
    /// call `consumer.store_offset_from_message(&msg)` once a message is handled.
    pub fn consumer(&self, group_id: &str) -> Result<StreamConsumer, KafkaError> {
        if group_id.trim().is_empty() {
            return Err(KafkaError::Config(
                "consumer group id must not be empty".into(),
            ));
        }
        let mut config = self.build(CONSUMER_DEFAULTS);
        config.set("group.id", group_id);
        // Passthrough properties win over the defaults, group.id included.
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        Ok(config.create()?)
    }

    /// The admin client: topics, watermarks, group offsets and lag.
    pub fn admin(&self) -> Result<Admin, KafkaError> {
        Admin::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        kafka: KafkaArgs,
    }

    #[test]
    fn parses_flags_and_passthrough() {
        let cli = Cli::try_parse_from([
            "x",
            "-b",
            "k1:9092,k2:9092",
            "-X",
            "fetch.min.bytes=1",
            "-X",
            "client.id=a=b",
            "--security-protocol",
            "sasl_ssl",
            "--sasl-mechanism",
            "SCRAM-SHA-512",
            "--sasl-username",
            "alice",
            "--sasl-password",
            "hunter2",
            "--kafka-timeout",
            "2.5",
            "-X",
            "ssl.key.password=topsecret",
        ])
        .unwrap();
        let config = cli.kafka.config();
        assert_eq!(config.bootstrap_servers(), "k1:9092,k2:9092");
        assert_eq!(config.property("fetch.min.bytes"), Some("1"));
        assert_eq!(config.property("client.id"), Some("a=b"));
        assert_eq!(config.property("security.protocol"), Some("sasl_ssl"));
        assert_eq!(config.property("sasl.password"), Some("hunter2"));
        assert_eq!(config.timeout(), Duration::from_millis(2500));

        let shown = format!("{:?} {:?}", cli.kafka, config);
        assert!(!shown.contains("hunter2"), "secret leaked: {shown}");
        assert!(!shown.contains("topsecret"), "secret leaked: {shown}");
        assert!(shown.contains("alice"));
    }

    #[test]
    fn kafka_timeout_takes_seconds_or_a_unit() {
        let timeout = |text: &str| {
            Cli::try_parse_from(["x", "--kafka-timeout", text])
                .map(|cli| cli.kafka.timeout)
                .map_err(|e| e.to_string())
        };
        assert_eq!(timeout("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(timeout("10"), Ok(Duration::from_secs(10)));
        assert_eq!(timeout("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(timeout("1m"), Ok(Duration::from_secs(60)));
        let err = timeout("10parsecs").unwrap_err();
        assert!(
            err.contains("--kafka-timeout")
                && err.contains("'10parsecs' is not a duration")
                && err.contains(streamhub_model::duration::SYNTAX),
            "{err}"
        );
        let err = timeout("2h").unwrap_err();
        assert!(err.contains("out of range: give 100ms to 1h"), "{err}");
        assert!(timeout("0.05").is_err());
    }

    #[test]
    fn refuses_property_without_equals() {
        let err = Cli::try_parse_from(["x", "-X", "acks"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected key=value"), "{err}");
        assert!(parse_property("=v").is_err());
    }

    #[test]
    fn passthrough_overrides_defaults() {
        let config = KafkaConfig::new("h:1").with("acks", "1").with("acks", "-1");
        let client = config.build(PRODUCER_DEFAULTS);
        assert_eq!(client.get("acks"), Some("-1"));
        assert_eq!(client.get("enable.idempotence"), Some("true"));
        assert_eq!(client.get("bootstrap.servers"), Some("h:1"));
    }
}
