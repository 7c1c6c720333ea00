//! What the tests of the `streamhub` binary share: free ports, and a real `streamhub up`
//! started, awaited and stopped within hang guards.

// Each test file compiles this module on its own and uses part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `admin` password [`up`] gives.
pub const ADMIN_PASSWORD: &str = "up-Quartz-Meadow-Qx81Vn3";
/// The producer secret [`up`] gives.
pub const PRODUCER_SECRET: &str = "up-producer-secret-Lr47Hd9Zk";
/// Generous hang guard.
pub const GUARD: Duration = Duration::from_secs(90);

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}

/// `streamhub up` on `data_dir`, free loopback ports, known secrets, its log at TRACE
/// into `log`; more arguments may be added before it is started.
pub fn up(data_dir: &Path, log: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_streamhub"));
    cmd.arg("up")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0"])
        .arg(format!("--broker-listen=127.0.0.1:{}", free_port()))
        .env("STREAMHUB_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("PRODUCER_SECRET", PRODUCER_SECRET)
        .env("NO_COLOR", "1")
        .env(
            "RUST_LOG",
            "debug,streamhub=trace,streamhub_admin=trace,streamhub_store=trace,streamhub_producer=trace",
        )
        .env_remove("DATABASE_URL")
        .env_remove("STREAMHUB_METRICS_TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("create the log file"));
    cmd
}

/// Starts `cmd` (from [`up`]) and waits for its "streamhub is up"; returns it and its
/// stdout. `log` is shown when it does not start.
pub fn start_up(mut cmd: Command, log: &Path) -> (Child, String) {
    let mut child = cmd.spawn().expect("streamhub up runs");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("Ctrl-C stops everything") {
                let _ = tx.send(seen.clone());
            }
        }
    });
    match rx.recv_timeout(GUARD) {
        Ok(stdout) => (child, stdout),
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "streamhub up did not start: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
    }
}

/// The dashboard's URL as `streamhub up` printed it.
pub fn dashboard_url(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("dashboard"))
        .map(|u| u.trim().to_owned())
        .unwrap_or_else(|| panic!("the dashboard's URL on stdout: {stdout}"))
}

/// Polls `check` until it holds; fails naming `what` once `within` (a hang guard) has
/// passed.
pub async fn wait_until(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(start.elapsed() < within, "{what} not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A child process killed when dropped, so that a failing test leaves none behind.
pub struct Up(pub Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// SIGTERM, then a bounded wait for the exit.
pub fn stop(child: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + GUARD;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("streamhub up did not stop after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
