//! The consumer of streamhub.
//!
//! - `streamhub consumer`: the seed's interactive menu (topics, subscriptions, a live
//!   view of every subscribed topic that resumes where the user left off).
//! - `streamhub consumer read`: scriptable reads like kcat, through the user's
//!   subscriptions or `--direct` from Kafka.
//!
//! Delivery is at least once: an offset is stored only after its message was written,
//! and committed on leaving.

mod fetch;
mod interactive;
pub mod kafka;
mod menu;
mod read;
pub mod render;
mod session;
mod start;

use tokio_util::sync::CancellationToken;

pub use read::{EndedBy, ReadArgs, ReadSummary, read, read_to};
pub use render::{Format, Palette};
pub use session::{Session, SessionArgs, SignIn};
pub use start::{InvalidStart, StartFrom};

/// `streamhub consumer [read]`.
#[derive(clap::Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ConsumerArgs {
    #[command(subcommand)]
    pub command: Option<ConsumerCommand>,

    /// For the interactive consumer (without a subcommand).
    #[command(flatten)]
    pub session: SessionArgs,
}

#[derive(clap::Subcommand, Debug, Clone)]
pub enum ConsumerCommand {
    /// Read messages to stdout for scripts (pretty, JSON lines or raw values), like kcat.
    Read(ReadArgs),
}

/// Runs the interactive consumer, or `read`.
///
/// The interactive consumer handles Ctrl-C itself (it leaves the live view for the menu),
/// so `shutdown` should be cancelled by SIGTERM, not by Ctrl-C, for it.
pub async fn run(args: ConsumerArgs, shutdown: CancellationToken) -> anyhow::Result<()> {
    match args.command {
        Some(ConsumerCommand::Read(read_args)) => read::read(read_args, shutdown).await?.check(),
        None => interactive::run(args.session, shutdown).await,
    }
}
