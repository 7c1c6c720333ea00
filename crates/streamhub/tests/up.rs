//! `streamhub up` as a user runs it: the real binary, its stdout and its log.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN_PASSWORD: &str = "up-Quartz-Meadow-Qx81Vn3";
const PRODUCER_SECRET: &str = "up-producer-secret-Lr47Hd9Zk";
/// Generous hang guard.
const GUARD: Duration = Duration::from_secs(90);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn up(data_dir: &Path, log: &Path) -> Command {
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
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap());
    cmd
}

/// Starts `streamhub up` and waits for its "streamhub is up"; returns it and its stdout.
fn start_up(data_dir: &Path, log: &Path) -> (Child, String) {
    let mut child = up(data_dir, log).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
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

/// SIGTERM, then a bounded wait for the exit.
fn stop(mut child: Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + GUARD;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("streamhub up did not stop after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_second_up_on_the_same_data_directory_is_refused_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (first, _) = start_up(&data, &dir.path().join("first.log"));

    let second_log = dir.path().join("second.log");
    let mut second = up(&data, &second_log)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + GUARD;
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            stop(first);
            panic!("a second streamhub up on the same data directory kept running");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::fs::File::open(&second_log)
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let first_pid = first.id();
    stop(first);
    assert!(!status.success());
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: the data directory")
            && last.contains(&format!("in use by another streamhub (pid {first_pid})")),
        "{err}"
    );
}

#[test]
fn the_up_log_and_output_show_none_of_the_secrets_it_was_given() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("up.log");
    let (child, stdout) = start_up(&dir.path().join("data"), &log);
    // A sign-in with the configured password, so that the log has a request to show.
    let url = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("dashboard"))
        .map(|u| u.trim().to_owned())
        .expect("the dashboard's URL on stdout");
    let status = tokio::runtime::Runtime::new().unwrap().block_on(async {
        reqwest::Client::new()
            .post(format!("{url}/api/auth/login"))
            .timeout(GUARD)
            .json(&serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .map(|res| res.status())
    });
    assert_eq!(status.unwrap(), reqwest::StatusCode::OK);
    stop(child);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("admin service listening"), "{text}");
    for secret in [ADMIN_PASSWORD, PRODUCER_SECRET] {
        assert!(!text.contains(secret), "the log shows {secret}");
        assert!(!stdout.contains(secret), "stdout shows {secret}");
    }
}
