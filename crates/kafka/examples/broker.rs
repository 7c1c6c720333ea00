//! The embedded broker as its own process, stopped by SIGINT/SIGTERM: what `streamhub broker`
//! does, for measuring the broker alone (`ps -o rss`) while a client runs elsewhere.
//!
//!   cargo run --release -p streamhub-kafka --example broker -- --listen 127.0.0.1:9092 \
//!       --storage /tmp/bench/broker

use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    broker: streamhub_kafka::broker::BrokerArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber_init();
    let cli = Cli::parse();
    let token = CancellationToken::new();
    let stop = token.clone();
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        stop.cancel();
    });
    if let Err(e) = streamhub_kafka::broker::run(cli.broker, token).await {
        eprintln!("broker: {e:#}");
        std::process::exit(1);
    }
    Ok(())
}

/// Logs to stderr at info (RUST_LOG overrides).
fn tracing_subscriber_init() {
    use tracing_subscriber::EnvFilter;
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            EnvFilter::new(format!("info,{}", streamhub_kafka::LOG_FILTER_DEFAULTS))
        }))
        .with_writer(std::io::stderr)
        .init();
}
