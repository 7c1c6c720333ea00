//! `streamhub up` (embedded broker + admin service + producer in one process) and
//! `streamhub admin` with its Kafka figures wired in.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use streamhub_admin::access::KafkaAccess;
use streamhub_admin::{AdminArgs, AdminConfig, AdminService, KafkaSecurity, Secret};
use streamhub_kafka::{KafkaArgs, KafkaConfig};
use tokio_util::sync::CancellationToken;

use crate::access::KafkaSecurity as SecurityCalls;
use crate::cluster::KafkaCluster;

/// `streamhub admin`: the admin service's flags and the Kafka client's, as the producer
/// and consumer take them (SASL, TLS, `-X`).
#[derive(clap::Args, Debug)]
pub struct AdminCommand {
    #[command(flatten)]
    pub admin: AdminArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Whether `--bootstrap-servers` (or its variable) was given rather than defaulted:
    /// only then does the admin service read Kafka figures.
    #[arg(skip)]
    pub kafka_given: bool,
}

/// `streamhub admin`: Kafka figures are on when `--bootstrap-servers` is given; with
/// `--kafka-security scram` the service manages credentials and ACLs with the Kafka
/// client's SASL login.
pub async fn run_admin(cmd: AdminCommand, shutdown: CancellationToken) -> anyhow::Result<()> {
    let access: Option<Arc<dyn KafkaAccess>> = match cmd.admin.kafka_security {
        KafkaSecurity::Open => None,
        KafkaSecurity::Scram => {
            let config = cmd.kafka.config();
            if !cmd.kafka_given || config.property("sasl.username").is_none() {
                anyhow::bail!(
                    "--kafka-security scram needs --bootstrap-servers and the SASL login of a super user of the broker (--security-protocol sasl_plaintext --sasl-mechanism SCRAM-SHA-512 --sasl-username ... --sasl-password ...)"
                );
            }
            let bootstrap = config.bootstrap_servers().to_owned();
            Some(Arc::new(SecurityCalls::new(&config, &bootstrap)?))
        }
    };
    let cluster = if cmd.kafka_given {
        Some(KafkaCluster::connect(&cmd.kafka.config())?)
    } else {
        if cmd.kafka.security_protocol.is_some() || !cmd.kafka.properties.is_empty() {
            tracing::warn!(
                "Kafka settings are given but not --bootstrap-servers: Kafka figures stay off"
            );
        }
        None
    };
    streamhub_admin::run_with_cluster(cmd.admin, cluster, access, shutdown).await
}

#[cfg(feature = "embedded-broker")]
pub use embedded::{UpArgs, run};

#[cfg(feature = "embedded-broker")]
mod embedded {
    use super::*;
    use streamhub_kafka::broker::{
        BrokerConfig, EmbeddedBroker, SaslConfig, SaslUser, Security, Storage,
    };
    use streamhub_model::RatePerSecond;
    use streamhub_model::access::{ADMIN_SERVICE_USER, PRODUCER_USER, principal_of};

    /// `streamhub up`: everything on one machine.
    #[derive(clap::Args, Debug)]
    pub struct UpArgs {
        /// Directory for the broker's log, the metadata store and the admin password.
        #[arg(long, env = "STREAMHUB_DATA_DIR", default_value = "./streamhub-data")]
        pub data_dir: PathBuf,
        /// Address of the admin service and dashboard.
        #[arg(long, env = "STREAMHUB_LISTEN", default_value = "127.0.0.1:5000")]
        pub listen: String,
        /// Address of the embedded Kafka-compatible broker.
        #[arg(
            long,
            env = "STREAMHUB_BROKER_LISTEN",
            default_value = "127.0.0.1:9092"
        )]
        pub broker_listen: SocketAddr,
        /// host:port Kafka clients on other machines use to reach the embedded broker
        /// (needed when listening on 0.0.0.0); defaults to the listen address.
        #[arg(long, env = "STREAMHUB_BROKER_ADVERTISED_LISTENER")]
        pub broker_advertised_listener: Option<String>,
        /// When the embedded broker fsyncs appended data: os (left to the operating system,
        /// as Kafka does; acknowledged messages survive a crash of the process), batch
        /// (before each produce is acknowledged) or an interval such as 1s.
        #[arg(
            long,
            env = "STREAMHUB_BROKER_FLUSH",
            default_value = "os",
            value_parser = streamhub_kafka::broker::parse_flush
        )]
        pub broker_flush: streamhub_kafka::broker::FlushPolicy,
        /// Keep the broker's data in memory only (lost at exit).
        #[arg(long)]
        pub ephemeral: bool,
        /// Request and approve the sample topics sensor_data, payments, weather, logs and
        /// user_activity at start (those that do not exist yet), so that the producer
        /// provisions them and feeds them.
        #[arg(long)]
        pub sample_topics: bool,
        /// Password of user `admin` at the first start; random when unset.
        #[arg(
            long,
            env = "STREAMHUB_ADMIN_PASSWORD",
            hide_env_values = true,
            allow_hyphen_values = true
        )]
        pub admin_password: Option<Secret>,
        /// Key the producer authenticates with; random for this run when unset.
        #[arg(
            long,
            env = "PRODUCER_SECRET",
            hide_env_values = true,
            allow_hyphen_values = true
        )]
        pub producer_secret: Option<Secret>,
        /// Bearer token Prometheus sends to read `GET /metrics`; admins' tokens work too.
        #[arg(
            long,
            env = "STREAMHUB_METRICS_TOKEN",
            hide_env_values = true,
            allow_hyphen_values = true
        )]
        pub metrics_token: Option<Secret>,
        /// Messages per second for every topic, overriding each topic's own rate.
        #[arg(long, value_parser = streamhub_producer::parse_rate)]
        pub rate: Option<RatePerSecond>,
        /// Makes the generated data reproducible.
        #[arg(long)]
        pub seed: Option<u64>,
        /// Producer id carried in every envelope (default: <hostname>-<pid>-<random>). Started
        /// again with the same id, the producer continues each topic's seq.
        #[arg(long, env = "STREAMHUB_PRODUCER_ID")]
        pub producer_id: Option<String>,
        /// `scram`: the broker takes SASL logins only (PLAIN, SCRAM-SHA-256/512) and enforces
        /// ACLs, which the admin service keeps equal to subscriptions and the lifecycle;
        /// users get their credentials from the dashboard. `open`: every client may do
        /// everything (loopback only, as by default).
        #[arg(
            long,
            env = "STREAMHUB_KAFKA_SECURITY",
            value_enum,
            default_value = "open"
        )]
        pub kafka_security: KafkaSecurity,
    }

    /// The SASL login of a service principal.
    fn login(bootstrap: &str, user: &str, password: &Secret) -> KafkaConfig {
        KafkaConfig::new(bootstrap)
            .with("security.protocol", "sasl_plaintext")
            .with("sasl.mechanism", crate::access::USER_MECHANISM.name())
            .with("sasl.username", user)
            .with("sasl.password", password.expose())
    }

    pub async fn run(args: UpArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
        // Held until `run` returns: a second instance on this directory is refused.
        let _lock = crate::data_dir::lock(&args.data_dir)?;
        // Before the broker and producer record anything; the admin service renders it.
        streamhub_admin::telemetry::install();
        let storage = if args.ephemeral {
            Storage::Memory
        } else {
            Storage::Dir(absolute(&args.data_dir)?.join("broker"))
        };
        // The service principals' passwords are new at each start: the broker replaces the
        // stored credentials of its startup users when they differ.
        let service_passwords = (args.kafka_security == KafkaSecurity::Scram).then(|| {
            let new = || Secret::new(streamhub_admin::auth::random_token(24));
            (new(), new())
        });
        let security = match &service_passwords {
            None => {
                if !args.broker_listen.ip().is_loopback() {
                    tracing::warn!(
                        listen = %args.broker_listen,
                        "the embedded broker is open and listens beyond loopback: any client that reaches it reads and writes every topic (--kafka-security scram closes it)"
                    );
                }
                Security::Open
            }
            Some((admin_password, producer_password)) => Security::Sasl(SaslConfig {
                super_users: vec![principal_of(ADMIN_SERVICE_USER)],
                users: vec![
                    SaslUser {
                        name: ADMIN_SERVICE_USER.into(),
                        password: admin_password.expose().to_owned(),
                    },
                    SaslUser {
                        name: PRODUCER_USER.into(),
                        password: producer_password.expose().to_owned(),
                    },
                ],
                ..SaslConfig::new()
            }),
        };
        let broker = EmbeddedBroker::start_with_security(
            BrokerConfig {
                listen: args.broker_listen,
                advertised: args.broker_advertised_listener.clone(),
                storage,
                flush: args.broker_flush,
            },
            security,
        )
        .await
        .context("cannot start the embedded broker")?;
        let bootstrap = broker.bootstrap_servers();
        let (kafka, producer_kafka) = match &service_passwords {
            None => (
                KafkaConfig::new(bootstrap.clone()),
                KafkaConfig::new(bootstrap.clone()),
            ),
            Some((admin_password, producer_password)) => (
                login(&bootstrap, ADMIN_SERVICE_USER, admin_password),
                login(&bootstrap, PRODUCER_USER, producer_password),
            ),
        };

        let producer_secret = args
            .producer_secret
            .clone()
            .unwrap_or_else(|| Secret::new(streamhub_admin::auth::random_token(24)));
        let mut admin_config = AdminConfig::local(&args.data_dir);
        admin_config.listen = args.listen.clone();
        admin_config.producer_secret = Some(producer_secret.clone());
        admin_config.admin_password = args.admin_password.clone();
        admin_config.metrics_token = args.metrics_token.clone();
        admin_config.cluster = Some(KafkaCluster::connect(&kafka)?);
        if service_passwords.is_some() {
            let access: Arc<dyn KafkaAccess> = Arc::new(SecurityCalls::new(&kafka, &bootstrap)?);
            admin_config.kafka_access = Some(access);
        }
        let admin = AdminService::start(admin_config).await?;
        if args.sample_topics {
            crate::samples::ensure(admin.store().as_ref(), "admin").await?;
        }

        let password_line = admin_password_line(&args, admin.admin_password());
        let broker_line = match args.kafka_security {
            KafkaSecurity::Open => bootstrap.clone(),
            KafkaSecurity::Scram => format!(
                "{bootstrap} (SASL SCRAM-SHA-512 and ACLs: each user's credentials are on the dashboard's Subscriptions page)"
            ),
        };
        // On stdout, not through the log: the password must not reach log files.
        println!(
            "\nstreamhub is up\n  dashboard  {url}\n  admin      {password_line}\n  broker     {broker_line}\n  data       {data}\nCtrl-C stops everything.\n",
            url = admin.url(),
            data = args.data_dir.display(),
        );

        let producer_stop = CancellationToken::new();
        let producer_config = producer_config(admin.url(), producer_kafka, producer_secret, &args)?;
        let producer = tokio::spawn(streamhub_producer::run(
            producer_config,
            producer_stop.clone(),
        ));

        shutdown.cancelled().await;
        // Stop in dependency order: the producer flushes into a broker that still runs.
        producer_stop.cancel();
        match producer.await {
            Ok(Err(e)) => {
                tracing::warn!(error = %format!("{e:#}"), "producer stopped with an error")
            }
            Err(e) => tracing::warn!(error = %e, "producer task failed"),
            Ok(Ok(())) => {}
        }
        admin.stop().await?;
        broker.shutdown().await?;
        eprintln!("streamhub stopped");
        Ok(())
    }

    /// The producer `streamhub producer` would run against this admin service and broker,
    /// with `up`'s own producer flags.
    fn producer_config(
        admin_url: &str,
        kafka: KafkaConfig,
        secret: Secret,
        args: &UpArgs,
    ) -> anyhow::Result<streamhub_producer::ProducerConfig> {
        let admin_url = admin_url
            .parse()
            .with_context(|| format!("invalid admin URL {admin_url}"))?;
        let mut config = streamhub_producer::ProducerConfig::new(admin_url, kafka, secret);
        config.rate = args.rate;
        config.seed = args.seed;
        config.producer_id = args.producer_id.clone();
        Ok(config)
    }

    /// What to tell the operator about the admin password. The admin service keeps a
    /// generated one in `<data-dir>/admin-password` (mode 0600), so a later start can
    /// show it again.
    fn admin_password_line(args: &UpArgs, generated: Option<&str>) -> String {
        let file = args.data_dir.join(streamhub_admin::ADMIN_PASSWORD_FILE);
        if args.admin_password.is_some() {
            return "user admin, password from STREAMHUB_ADMIN_PASSWORD".into();
        }
        let password = match generated {
            Some(p) => Some(p.to_owned()),
            None => std::fs::read_to_string(&file)
                .ok()
                .map(|p| p.trim().to_owned()),
        };
        match password {
            Some(p) => format!("user admin, password {p} (kept in {})", file.display()),
            None => "user admin, password as set at the first start".into(),
        }
    }

    fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
        std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
    }

    #[cfg(test)]
    mod tests {
        use clap::Parser;

        use super::*;

        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            up: UpArgs,
        }

        #[test]
        fn up_passes_producer_id_and_rate_to_the_embedded_producer() {
            let up = Cli::try_parse_from(["up", "--producer-id", "edge-7", "--rate", "20"])
                .unwrap()
                .up;
            let kafka = KafkaConfig::new("127.0.0.1:9092");
            let config =
                producer_config("http://127.0.0.1:5000", kafka, Secret::new("-k"), &up).unwrap();
            assert_eq!(config.admin_url.as_str(), "http://127.0.0.1:5000/");
            assert_eq!(config.kafka.bootstrap_servers(), "127.0.0.1:9092");
            assert_eq!(config.producer_secret.expose(), "-k");
            assert_eq!(config.producer_id.as_deref(), Some("edge-7"));
            assert_eq!(config.rate.map(RatePerSecond::get), Some(20.0));
            assert!(Cli::try_parse_from(["up", "--rate", "1e-20"]).is_err());
        }
    }
}
