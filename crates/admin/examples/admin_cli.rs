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
use streamhub_admin::process::{cancel_on_signals, init_logging};

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
    init_logging("warn")?;
    streamhub_admin::run(args, cancel_on_signals(true)).await
}
