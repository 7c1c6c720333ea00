//! `streamhub`: one binary for every role of the system. This file parses the command
//! line, sets up logging and signals, and hands over to the component crates.

mod access;
mod cluster;
#[cfg(feature = "embedded-broker")]
mod data_dir;
#[cfg(feature = "embedded-broker")]
mod samples;
mod up;

use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use streamhub_admin::process::{LogFormat, cancel_on_signals};

#[derive(Parser, Debug)]
#[command(name = "streamhub", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Log format: text for people, json for log shippers. RUST_LOG sets the level.
    #[arg(
        long,
        global = true,
        env = "STREAMHUB_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run everything on one machine: embedded broker, admin service and producer.
    #[cfg(feature = "embedded-broker")]
    Up(up::UpArgs),
    /// Run the admin service: REST API, dashboard, metadata store.
    Admin(up::AdminCommand),
    /// Provision approved topics and publish generated data (or `producer generate`).
    Producer(streamhub_producer::ProducerCommand),
    /// Read subscribed topics: an interactive menu, or `consumer read` for scripts.
    Consumer(streamhub_consumer::ConsumerArgs),
    /// Run the embedded Kafka-compatible broker on its own.
    #[cfg(feature = "embedded-broker")]
    Broker(streamhub_kafka::broker::BrokerArgs),
}

/// Parses the command line; for `admin`, also notes whether Kafka was asked for.
fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Cli, clap::Error> {
    let matches = Cli::command().try_get_matches_from(args)?;
    let mut cli = Cli::from_arg_matches(&matches)?;
    if let Command::Admin(cmd) = &mut cli.command {
        cmd.kafka_given = matches
            .subcommand_matches("admin")
            .and_then(|m| m.value_source("bootstrap_servers"))
            .is_some_and(|source| source != ValueSource::DefaultValue);
    }
    Ok(cli)
}

fn main() -> ExitCode {
    let cli = parse(std::env::args_os()).unwrap_or_else(|e| e.exit());
    let log_file = match &cli.command {
        Command::Producer(cmd) if cmd.command.is_none() => cmd.run.log_file.clone(),
        _ => None,
    };
    if let Err(e) = init_logging(cli.log_format, log_file.as_deref()) {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, the whole cause chain.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        #[cfg(feature = "embedded-broker")]
        Command::Up(args) => up::run(args, cancel_on_signals(true)).await,
        Command::Admin(args) => up::run_admin(args, cancel_on_signals(true)).await,
        Command::Producer(cmd) => streamhub_producer::main(cmd, cancel_on_signals(true)).await,
        // The interactive consumer turns Ctrl-C into "back to the menu"; only SIGTERM stops it.
        Command::Consumer(cmd) => {
            let interactive = cmd.command.is_none();
            streamhub_consumer::run(cmd, cancel_on_signals(!interactive)).await
        }
        #[cfg(feature = "embedded-broker")]
        Command::Broker(args) => streamhub_kafka::broker::run(args, cancel_on_signals(true)).await,
    }
}

/// Info by default. librdkafka reports every failed connection attempt as an error, many
/// times a second while a broker is down; streamhub's components say it once, in their
/// own words, so librdkafka's own lines are off unless `RUST_LOG` asks for them
/// (`RUST_LOG=info,rdkafka=debug`).
const DEFAULT_LOG_FILTER: &str = "info,rdkafka=off,librdkafka=off";

/// Logs on stderr, around the producer's status line, and for the producer's `--log-file`
/// also appended to that file (like the seed's producer.log).
fn init_logging(format: LogFormat, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    let file = file.map(streamhub_producer::open_log_file).transpose()?;
    streamhub_admin::process::init_logging_to(
        DEFAULT_LOG_FILTER,
        format,
        streamhub_producer::status_line::log_writer,
        file,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Clap checks flag clashes (two components flattening the same name) only when a
    /// command is built: check every subcommand here rather than at a user's first run.
    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    fn admin(args: &[&str]) -> up::AdminCommand {
        let argv = ["streamhub", "admin"].iter().chain(args).map(Into::into);
        match parse(argv).unwrap().command {
            Command::Admin(cmd) => cmd,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn admin_reads_kafka_only_when_bootstrap_servers_are_given() {
        if std::env::var_os("KAFKA_BOOTSTRAP_SERVERS").is_none() {
            assert!(!admin(&[]).kafka_given);
        }
        let cmd = admin(&[
            "--bootstrap-servers",
            "kafka1:9093",
            "--security-protocol",
            "sasl_ssl",
            "--sasl-mechanism",
            "SCRAM-SHA-512",
            "--sasl-username",
            "streamhub",
            "--ssl-ca-location",
            "/etc/kafka/ca.pem",
            "-X",
            "client.id=admin",
        ]);
        assert!(cmd.kafka_given);
        assert_eq!(cmd.kafka.bootstrap_servers, "kafka1:9093");
        assert_eq!(cmd.kafka.sasl_mechanism.as_deref(), Some("SCRAM-SHA-512"));
        assert_eq!(cmd.kafka.properties, [("client.id".into(), "admin".into())]);
    }

    /// Every subcommand that talks to Kafka takes the one duration syntax.
    #[test]
    fn kafka_timeout_takes_seconds_or_a_unit_in_every_subcommand() {
        let argv = |sub: &[&str], value: &str| {
            ["streamhub"]
                .iter()
                .chain(sub)
                .chain(&["--kafka-timeout", value])
                .map(Into::into)
                .collect::<Vec<std::ffi::OsString>>()
        };
        for sub in [
            &["admin"][..],
            &["producer"],
            &["consumer", "read", "-t", "t"],
        ] {
            for good in ["10s", "10", "2.5", "1m"] {
                assert!(parse(argv(sub, good)).is_ok(), "{sub:?} {good}");
            }
            let err = parse(argv(sub, "10parsecs")).unwrap_err();
            assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
            let text = err.to_string();
            assert!(
                text.lines()
                    .next()
                    .is_some_and(|line| line.contains("'10parsecs' is not a duration")
                        && line.contains(streamhub_model::duration::SYNTAX)),
                "{sub:?}: {text}"
            );
        }
    }
}
