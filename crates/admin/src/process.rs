//! Process set-up shared by every streamhub binary (the `streamhub` command and the admin
//! example without Kafka): how signals stop it and how it logs. It lives here because
//! every binary already links the admin service.

use std::io::IsTerminal;

use tokio_util::sync::CancellationToken;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Log format: text for people, JSON for log shippers.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Text logs on stderr; `RUST_LOG` overrides `default_filter`.
pub fn init_logging(default_filter: &str) -> anyhow::Result<()> {
    init_logging_to(default_filter, LogFormat::Text, std::io::stderr, None)
}

/// Logs in `format` through `stderr` (a writer that may put a status line aside) and, when
/// given, also appended to `file`. `RUST_LOG` overrides `default_filter`. Colours only for a
/// person at a terminal: a log redirected to a file stays plain text.
pub fn init_logging_to<W>(
    default_filter: &str,
    format: LogFormat,
    stderr: W,
    file: Option<std::fs::File>,
) -> anyhow::Result<()>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(colours_on_stderr())
        .with_writer(stderr);
    let stderr = match format {
        LogFormat::Text => stderr.boxed(),
        LogFormat::Json => stderr.json().boxed(),
    };
    let file = file.map(|file| {
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(std::sync::Mutex::new(file));
        match format {
            LogFormat::Text => layer.boxed(),
            LogFormat::Json => layer.json().boxed(),
        }
    });
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

/// Returns on Ctrl-C (SIGINT) or SIGTERM, after logging which.
pub async fn wait_for_shutdown() {
    wait_for_signals(true).await
}

/// A token cancelled on SIGTERM, and on Ctrl-C when `on_interrupt` (an interactive program
/// gives Ctrl-C its own meaning). Call it inside the runtime.
pub fn cancel_on_signals(on_interrupt: bool) -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signals(on_interrupt).await;
        cancel.cancel();
    });
    token
}

async fn wait_for_signals(on_interrupt: bool) {
    let interrupt = async {
        if on_interrupt {
            // Without a handler Ctrl-C would kill the process before any clean-up.
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        } else {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("interrupted, shutting down"),
        _ = terminate => tracing::info!("terminated, shutting down"),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    /// SIGTERM cancels the token whether or not Ctrl-C is taken.
    #[tokio::test]
    async fn sigterm_cancels_the_token() {
        use std::time::Duration;
        // Held for the test: from here SIGTERM no longer ends this test process, even
        // before the token's own listener is installed.
        let _held =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
        for on_interrupt in [false, true] {
            let token = cancel_on_signals(on_interrupt);
            assert!(!token.is_cancelled());
            // Sent again until seen: the listener may not be installed at the first one.
            let signalled = async {
                loop {
                    // SAFETY: kill(2) to our own pid, with SIGTERM handled above.
                    assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGTERM) }, 0);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            };
            tokio::select! {
                _ = token.cancelled() => {}
                _ = signalled => {}
                _ = tokio::time::sleep(Duration::from_secs(30)) => panic!("SIGTERM did not cancel"),
            }
        }
    }
}
