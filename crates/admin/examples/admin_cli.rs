//! `streamhub admin` on its own: the same subcommand and flags as the `streamhub`
//! binary, without compiling the Kafka client. scripts/fuzz-api can run it with
//! `--bin target/debug/examples/admin_cli`:
//!
//!     cargo build -p streamhub-admin --example admin_cli
//!     target/debug/examples/admin_cli admin --listen 127.0.0.1:5000 --database sqlite:///tmp/s.db
//!
//! Stops on Ctrl-C or SIGTERM. Kafka figures are off (no cluster reader).

use clap::Parser;
use streamhub_admin::AdminArgs;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Run the admin service.
    Admin(AdminArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Command::Admin(args) = Cli::parse().command;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(e) => {
                    eprintln!("cannot listen for SIGTERM: {e}");
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        on_signal.cancel();
    });
    streamhub_admin::run(args, shutdown).await
}
