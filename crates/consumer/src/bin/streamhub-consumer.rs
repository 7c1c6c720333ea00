//! `streamhub-consumer`: the same as `streamhub consumer`, for a machine that only consumes.

use std::process::ExitCode;

use clap::Parser;
use streamhub_consumer::ConsumerArgs;
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
#[command(
    name = "streamhub-consumer",
    version,
    about = "Consume streamhub topics: interactive menu, or `read` for scripts"
)]
struct Cli {
    #[command(flatten)]
    consumer: ConsumerArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("streamhub-consumer: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    let interactive = cli.consumer.command.is_none();
    let result = runtime.block_on(async {
        let signals = shutdown.clone();
        tokio::spawn(async move {
            wait_for_stop(!interactive).await;
            signals.cancel();
        });
        streamhub_consumer::run(cli.consumer, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("streamhub-consumer: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// SIGTERM always stops; Ctrl-C stops `read`, while the interactive consumer uses it to
/// leave the live view.
async fn wait_for_stop(on_ctrl_c: bool) {
    let ctrl_c = async {
        if on_ctrl_c {
            let _ = tokio::signal::ctrl_c().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return ctrl_c.await,
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = ctrl_c => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}
