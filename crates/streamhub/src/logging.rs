//! Log setup shared by every subcommand: `RUST_LOG` filters (info by default), text for
//! people or JSON for log shippers, on stderr and, for the producer's `--log-file`, also
//! appended to a file (like the seed's producer.log).

use std::io::IsTerminal;
use std::path::Path;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Info by default. librdkafka reports every failed connection attempt as an error, many
/// times a second while a broker is down; streamhub's components say it once, in their
/// own words, so librdkafka's own lines are off unless `RUST_LOG` asks for them
/// (`RUST_LOG=info,rdkafka=debug`).
const DEFAULT_FILTER: &str = "info,rdkafka=off,librdkafka=off";

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

pub fn init(format: LogFormat, file: Option<&Path>) -> anyhow::Result<()> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    // Colours only for a person at a terminal: a log redirected to a file stays plain text.
    // The writer puts the producer's status line aside around each log line.
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(colours_on_stderr())
        .with_writer(streamhub_producer::status_line::log_writer);
    let stderr = match format {
        LogFormat::Text => stderr.boxed(),
        LogFormat::Json => stderr.json().boxed(),
    };
    let file = match file {
        Some(path) => {
            let file = streamhub_producer::open_log_file(path)?;
            let layer = tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file));
            Some(match format {
                LogFormat::Text => layer.boxed(),
                LogFormat::Json => layer.json().boxed(),
            })
        }
        None => None,
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(file)
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot set up logging: {e}"))
}

/// Whether stderr is a terminal and `NO_COLOR` (no-color.org) is unset.
fn colours_on_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
