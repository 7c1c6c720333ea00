//! Command-line flags of `streamhub producer` and `streamhub producer generate`.

use std::path::PathBuf;
use std::time::Duration;

use streamhub_kafka::{KafkaArgs, KafkaConfig, Secret};
use streamhub_model::duration::DurationRange;
use streamhub_model::traffic::TrafficProfile;
use streamhub_model::{DataType, RatePerSecond, TopicName};

use crate::faults::FaultRates;
use crate::generate::KeyDistribution;

/// `streamhub producer [flags]` runs the producer; `streamhub producer generate ...`
/// publishes a fixed number of events without the admin service.
#[derive(clap::Args, Debug)]
pub struct ProducerCommand {
    #[command(subcommand)]
    pub command: Option<ProducerSubcommand>,
    #[command(flatten)]
    pub run: ProducerArgs,
}

#[derive(clap::Subcommand, Debug)]
pub enum ProducerSubcommand {
    /// Publish N generated events straight to Kafka (no admin service), then print a summary.
    Generate(GenerateArgs),
}

/// Flags of the long-running producer.
#[derive(clap::Args, Debug, Clone)]
pub struct ProducerArgs {
    /// Base URL of the admin service.
    #[arg(
        long,
        env = "STREAMHUB_ADMIN_URL",
        default_value = "http://127.0.0.1:5000"
    )]
    pub admin_url: reqwest::Url,

    /// CA certificates (PEM) to trust for an https:// admin URL, beside the system's.
    #[arg(long, env = "STREAMHUB_ADMIN_CA_CERT", value_name = "PEM_FILE")]
    pub admin_ca_cert: Option<PathBuf>,

    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Shared secret the admin service expects in X-Producer-Key (required to run;
    /// `generate` does not use it).
    #[arg(
        long,
        env = "PRODUCER_SECRET",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    pub producer_secret: Option<Secret>,

    /// Messages per second for every topic, overriding each topic's configured rate
    /// (default: the topic's rate, else one message every 0.5–1.5 s); 0.001 to 100000.
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<RatePerSecond>,

    /// Seed of the generators: the same seed gives the same events per topic.
    #[arg(long, env = "STREAMHUB_PRODUCER_SEED")]
    pub seed: Option<u64>,

    /// Faults on purpose in every topic, as `generate --faults`; recorded at each topic's
    /// activation, so a replay repeats them. Off by default.
    #[arg(long, env = "STREAMHUB_PRODUCER_FAULTS", default_value = "")]
    pub faults: FaultRates,

    /// Producer id carried in every envelope (default: <hostname>-<pid>-<random>). A producer
    /// restarted with the same id continues each topic's seq after the highest one Kafka has.
    #[arg(long, env = "STREAMHUB_PRODUCER_ID")]
    pub producer_id: Option<String>,

    /// Also append logs to this file, like the seed's producer.log.
    #[arg(long, env = "STREAMHUB_PRODUCER_LOG_FILE")]
    pub log_file: Option<PathBuf>,

    /// Time between full listings of the topics, beside the event stream; 100ms to 1h,
    /// seconds (`5`) or with a unit (`500ms`, `30s`).
    #[arg(
        long,
        env = "STREAMHUB_POLL_INTERVAL",
        default_value = "5s",
        value_parser = parse_poll_interval
    )]
    pub poll_interval: Duration,
}

/// Default of `--poll-interval`.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);

impl ProducerArgs {
    /// The settings these flags describe; the producer runs only with its key.
    pub fn into_config(self) -> anyhow::Result<ProducerConfig> {
        let Some(producer_secret) = self.producer_secret else {
            anyhow::bail!(
                "the producer needs PRODUCER_SECRET (or --producer-secret): the admin service authenticates it with that key"
            );
        };
        Ok(ProducerConfig {
            admin_url: self.admin_url,
            admin_ca_cert: self.admin_ca_cert,
            kafka: self.kafka.config(),
            producer_secret,
            rate: self.rate,
            seed: self.seed,
            faults: self.faults,
            producer_id: self.producer_id,
            poll_interval: self.poll_interval,
        })
    }
}

/// What the long-running producer runs from: built by [`ProducerArgs::into_config`], or
/// directly by a caller that has no command line (`streamhub up`).
#[derive(Clone, Debug)]
pub struct ProducerConfig {
    pub admin_url: reqwest::Url,
    /// CA certificates (PEM) to trust for an https:// admin URL, beside the system's.
    pub admin_ca_cert: Option<PathBuf>,
    pub kafka: KafkaConfig,
    /// Sent as `X-Producer-Key`.
    pub producer_secret: Secret,
    /// Overrides every topic's own rate.
    pub rate: Option<RatePerSecond>,
    pub seed: Option<u64>,
    /// Faults put in every topic; none by default.
    pub faults: FaultRates,
    /// `None`: a new id per process (see [`crate::default_producer_id`]).
    pub producer_id: Option<String>,
    pub poll_interval: Duration,
}

impl ProducerConfig {
    /// Everything else at the flags' defaults.
    pub fn new(admin_url: reqwest::Url, kafka: KafkaConfig, producer_secret: Secret) -> Self {
        ProducerConfig {
            admin_url,
            admin_ca_cert: None,
            kafka,
            producer_secret,
            rate: None,
            seed: None,
            faults: FaultRates::default(),
            producer_id: None,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }
}

/// Flags of `streamhub producer generate`.
#[derive(clap::Args, Debug, Clone)]
pub struct GenerateArgs {
    /// Topic to publish to; created when it does not exist.
    #[arg(long, visible_alias = "to")]
    pub topic: TopicName,

    /// Data type of the events (default: inferred from the topic name).
    #[arg(long)]
    pub data_type: Option<DataType>,

    /// Number of events to publish.
    #[arg(long)]
    pub count: u64,

    /// Messages per second, 0.001 to 100000; 0 publishes as fast as the broker takes them.
    #[arg(long, default_value = "0", value_parser = parse_rate_or_zero)]
    pub rate: f64,

    /// Traffic profile to follow instead of --rate: constant:50,
    /// daily:peak=200,trough=20[,peak_at=14:00][,period=24h][,tz=Europe/Berlin],
    /// ramp:from=10,to=500,over=5m,
    /// bursts:rate=50,factor=10,every=30s,for=2s, or parts joined by + (their rates add).
    #[arg(long, conflicts_with = "rate", value_parser = parse_profile)]
    pub profile: Option<TrafficProfile>,

    /// How events spread over the data type's entities (Kafka keys): uniform,
    /// zipf[:s=1.2] (hot keys) or sessions[:length=20] (runs of one entity's events).
    #[arg(long, default_value = "uniform")]
    pub keys: KeyDistribution,

    /// Faults on purpose, each a rate from 0 to 1, marked by the header streamhub-fault:
    /// late=0.01,out-of-order=0.01,duplicate=0.005,poison=0.001[,late-by=30s]. Off by default.
    #[arg(long, default_value = "")]
    pub faults: FaultRates,

    /// Partitions of the topic when it is created.
    #[arg(long, default_value = "3")]
    pub partitions: i32,

    /// Replication factor of the topic when it is created.
    #[arg(long, default_value = "1")]
    pub replication_factor: i32,

    /// Seed of the generator: the same seed gives the same events.
    #[arg(long)]
    pub seed: Option<u64>,

    /// Producer id carried in every envelope (default: <hostname>-<pid>-<random>). Run again
    /// with the same id, it continues the topic's seq after the highest one Kafka has.
    #[arg(long, env = "STREAMHUB_PRODUCER_ID")]
    pub producer_id: Option<String>,

    /// Print the summary as one JSON line.
    #[arg(long)]
    pub json: bool,

    /// Regenerate this topic's values: the keys and payloads its producer generated, in the
    /// same order, with its producer id, seq, faults and event times, read from the
    /// generation record of its activation in the audit log (needs an admin's --token).
    /// `--to` names where they go. Sent as fast as the broker takes them unless --paced.
    #[arg(
        long,
        value_name = "TOPIC",
        requires = "token",
        conflicts_with_all = ["seed", "data_type", "keys", "faults", "rate", "profile"]
    )]
    pub replay: Option<TopicName>,

    /// With --replay: `shift` (the default) moves the original event times to start now,
    /// `keep` stamps the original times, so the values are the original's byte for byte.
    #[arg(long, value_enum, requires = "replay")]
    pub timestamps: Option<Timestamps>,

    /// With --replay: send each event at its original instant, counted from now.
    #[arg(long, requires = "replay")]
    pub paced: bool,

    /// The admin service that holds the audit log, for --replay.
    #[arg(
        long,
        env = "STREAMHUB_ADMIN_URL",
        default_value = "http://127.0.0.1:5000",
        value_name = "URL"
    )]
    pub admin_url: reqwest::Url,

    /// An admin's bearer token from `POST /api/auth/login`, for --replay.
    #[arg(
        long,
        env = "STREAMHUB_TOKEN",
        hide_env_values = true,
        allow_hyphen_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<Secret>,

    #[command(flatten)]
    pub kafka: KafkaArgs,
}

/// A replay's event times.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Timestamps {
    /// The original times moved by the same amount, to start now.
    #[default]
    Shift,
    /// The original times.
    Keep,
}

/// `--rate`: the model's bounds of a topic's rate.
pub fn parse_rate(s: &str) -> Result<RatePerSecond, String> {
    s.parse().map_err(|e| format!("rate {e}"))
}

/// `generate --rate`: 0 for no pace, else [`parse_rate`].
fn parse_rate_or_zero(s: &str) -> Result<f64, String> {
    if s.trim().parse::<f64>() == Ok(0.0) {
        return Ok(0.0);
    }
    parse_rate(s).map(RatePerSecond::get)
}

/// `--profile`: the model's message without its prefix (clap names the flag).
fn parse_profile(s: &str) -> Result<TrafficProfile, String> {
    s.parse()
        .map_err(|e: streamhub_model::traffic::InvalidProfile| e.0)
}

/// Bounds of `--poll-interval`.
const POLL_INTERVAL: DurationRange =
    DurationRange::new(Duration::from_millis(100), Duration::from_secs(3600));

fn parse_poll_interval(s: &str) -> Result<Duration, String> {
    POLL_INTERVAL.parse(s)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        producer: ProducerCommand,
    }

    #[test]
    fn runs_without_subcommand_and_redacts_the_secret() {
        let cli = Cli::try_parse_from([
            "producer",
            "--producer-secret",
            "s3cret",
            "--admin-url",
            "http://10.0.0.5:5000",
            "-b",
            "k:9092",
            "--rate",
            "20",
        ])
        .unwrap();
        assert!(cli.producer.command.is_none());
        assert_eq!(cli.producer.run.rate.map(RatePerSecond::get), Some(20.0));
        assert_eq!(cli.producer.run.kafka.bootstrap_servers, "k:9092");
        assert!(!format!("{cli:?}").contains("s3cret"));
    }

    #[test]
    fn generate_needs_no_producer_secret() {
        let cli = Cli::try_parse_from([
            "producer",
            "generate",
            "--topic",
            "load",
            "--data-type",
            "payment",
            "--count",
            "10",
            "-b",
            "k:9092",
        ])
        .unwrap();
        let Some(ProducerSubcommand::Generate(g)) = cli.producer.command else {
            panic!("expected generate");
        };
        assert_eq!(g.count, 10);
        assert_eq!(g.rate, 0.0);
        assert_eq!(g.data_type, Some(DataType::Payment));
    }

    #[test]
    fn rates_too_small_to_pace_are_refused_by_both_commands() {
        for rate in ["1e-20", "0.0001", "1000000", "-1", "inf"] {
            let run = Cli::try_parse_from(["producer", "--rate", rate]);
            assert!(run.is_err(), "producer --rate {rate} accepted");
            let generate = Cli::try_parse_from([
                "producer", "generate", "--topic", "t", "--count", "1", "--rate", rate,
            ]);
            assert!(generate.is_err(), "generate --rate {rate} accepted");
        }
        let err = Cli::try_parse_from(["producer", "--rate", "1e-20"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("0.001") && err.contains("100000"), "{err}");
    }

    #[test]
    fn poll_interval_takes_seconds_or_a_unit_within_bounds() {
        let poll = |text: &str| {
            Cli::try_parse_from(["producer", "--poll-interval", text])
                .map(|cli| cli.producer.run.poll_interval)
                .map_err(|e| e.to_string())
        };
        assert_eq!(poll("5"), Ok(Duration::from_secs(5)));
        assert_eq!(poll("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(poll("2m"), Ok(Duration::from_secs(120)));
        assert!(poll("0.05").unwrap_err().contains("out of range"));
        assert!(poll("2h").unwrap_err().contains("out of range"));
        assert!(poll("often").unwrap_err().contains("not a duration"));
    }

    #[test]
    fn flags_build_the_config_and_the_key_is_required() {
        let cli = Cli::try_parse_from([
            "producer",
            "--producer-secret",
            "-s3cret",
            "--admin-url",
            "http://10.0.0.5:5000",
            "-b",
            "k:9092",
            "--kafka-timeout",
            "3s",
            "--seed",
            "7",
            "--producer-id",
            "edge-7",
        ])
        .unwrap();
        let config = cli.producer.run.into_config().unwrap();
        assert_eq!(config.admin_url.as_str(), "http://10.0.0.5:5000/");
        assert_eq!(config.kafka.bootstrap_servers(), "k:9092");
        assert_eq!(config.kafka.timeout(), Duration::from_secs(3));
        assert_eq!(config.producer_secret.expose(), "-s3cret");
        assert_eq!(
            (config.seed, config.producer_id.as_deref()),
            (Some(7), Some("edge-7"))
        );
        if std::env::var_os("STREAMHUB_POLL_INTERVAL").is_none() {
            assert_eq!(config.poll_interval, DEFAULT_POLL_INTERVAL);
        }
        assert!(!format!("{config:?}").contains("s3cret"));

        let mut args = Cli::try_parse_from(["producer"]).unwrap().producer.run;
        args.producer_secret = None;
        let err = args.into_config().unwrap_err().to_string();
        assert!(err.contains("PRODUCER_SECRET"), "{err}");
    }

    #[test]
    fn generate_takes_a_profile_keys_and_faults() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["producer", "generate", "--topic", "t", "--count", "5"];
            argv.extend_from_slice(extra);
            Cli::try_parse_from(argv).map_err(|e| e.to_string())
        };
        let cli = parse(&[
            "--profile",
            "daily:peak=200,trough=20,period=60s,tz=+02:00+bursts:rate=5,factor=4,every=10s,for=1s",
            "--keys",
            "zipf:s=1.5",
            "--faults",
            "late=0.1,poison=0.01",
        ])
        .unwrap();
        let Some(ProducerSubcommand::Generate(g)) = cli.producer.command else {
            panic!("expected generate");
        };
        assert_eq!(g.profile.unwrap().parts().len(), 2);
        assert_eq!(g.keys, KeyDistribution::Zipf { s: 1.5 });
        assert_eq!((g.faults.late, g.faults.poison), (0.1, 0.01));
        let Ok(Cli {
            producer:
                ProducerCommand {
                    command: Some(ProducerSubcommand::Generate(defaults)),
                    ..
                },
        }) = parse(&[])
        else {
            panic!("expected generate");
        };
        assert!(defaults.faults.is_off() && defaults.profile.is_none());
        assert_eq!(defaults.keys, KeyDistribution::Uniform);
        for (bad, want) in [
            (["--profile", "daily:peak=1"], "trough= is required"),
            (["--keys", "hot"], "unknown key distribution"),
            (["--faults", "late=3"], "from 0 to 1"),
            (["--rate", "5"], "cannot be used with"),
        ] {
            let mut argv = bad.to_vec();
            if bad[0] == "--rate" {
                argv.extend(["--profile", "constant:5"]);
            }
            let e = parse(&argv).unwrap_err();
            assert!(e.contains(want), "{bad:?}: {e}");
        }
    }

    #[test]
    fn refuses_bad_values() {
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("-1").is_err());
        assert!(parse_rate("NaN").is_err());
        assert!(parse_rate_or_zero("0").is_ok());
        assert!(
            Cli::try_parse_from(["producer", "generate", "--topic", "a b", "--count", "1"])
                .is_err()
        );
    }
}
