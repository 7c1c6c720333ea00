//! `streamhub up` as a user runs it: the real binary, its stdout and its log.

mod common;

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{ADMIN_PASSWORD, GUARD, PRODUCER_SECRET, dashboard_url, start_up, stop, up};

#[test]
fn a_second_up_on_the_same_data_directory_is_refused_naming_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first_log = dir.path().join("first.log");
    let (mut first, _) = start_up(up(&data, &first_log), &first_log);

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
            stop(&mut first);
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
    stop(&mut first);
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
    let metrics_token = "up-metrics-token-Vb58Tw2Jq";
    let mut cmd = up(&dir.path().join("data"), &log);
    cmd.env("STREAMHUB_METRICS_TOKEN", metrics_token);
    let (mut child, stdout) = start_up(cmd, &log);
    // A sign-in with the configured password and a scrape with the metrics token, so
    // that the log has requests carrying both to show.
    let url = dashboard_url(&stdout);
    let statuses = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let http = reqwest::Client::builder().timeout(GUARD).build().unwrap();
        let login = http
            .post(format!("{url}/api/auth/login"))
            .json(&serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap();
        let scrape = http
            .get(format!("{url}/metrics"))
            .bearer_auth(metrics_token)
            .send()
            .await
            .unwrap();
        (login.status(), scrape.status())
    });
    assert_eq!(statuses, (reqwest::StatusCode::OK, reqwest::StatusCode::OK));
    stop(&mut child);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("admin service listening"), "{text}");
    for secret in [ADMIN_PASSWORD, PRODUCER_SECRET, metrics_token] {
        assert!(!text.contains(secret), "the log shows {secret}");
        assert!(!stdout.contains(secret), "stdout shows {secret}");
    }
}
