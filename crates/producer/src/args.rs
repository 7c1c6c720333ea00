//! Command-line flags of `streamhub producer` and `streamhub producer generate`.

use std::path::PathBuf;
use std::time::Duration;

use streamhub_kafka::{KafkaArgs, Secret};
use streamhub_model::{DataType, RatePerSecond, TopicName};

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

    /// Producer id carried in every envelope (default: <hostname>-<pid>-<random>). A producer
    /// restarted with the same id continues each topic's seq after the highest one Kafka has.
    #[arg(long, env = "STREAMHUB_PRODUCER_ID")]
    pub producer_id: Option<String>,

    /// Also append logs to this file, like the seed's producer.log.
    #[arg(long, env = "STREAMHUB_PRODUCER_LOG_FILE")]
    pub log_file: Option<PathBuf>,

    /// Seconds between full listings of the topics, beside the event stream.
    #[arg(long, env = "STREAMHUB_POLL_INTERVAL", default_value = "5", value_parser = parse_seconds)]
    pub poll_interval: Duration,
}

/// Flags of `streamhub producer generate`.
#[derive(clap::Args, Debug, Clone)]
pub struct GenerateArgs {
    /// Topic to publish to; created when it does not exist.
    #[arg(long)]
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

    #[command(flatten)]
    pub kafka: KafkaArgs,
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

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("expected seconds, got {s:?}"))?;
    if !(0.1..=3600.0).contains(&secs) {
        return Err(format!("{secs} s is outside 0.1..=3600"));
    }
    Ok(Duration::from_secs_f64(secs))
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
