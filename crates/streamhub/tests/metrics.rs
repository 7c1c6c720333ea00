//! A Prometheus scrape of a real `streamhub up`: every family README's "Metrics" section
//! lists is there with the labels it names, recorded by the admin service, its store and
//! the producer inside `up`; and only the metrics token or an admin may read it.

#![cfg(feature = "embedded-broker")]

mod common;

use std::collections::{BTreeMap, HashMap};

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};
use streamhub_testkit::AdminApi;

use common::{GUARD, Up, dashboard_url, start_up, stop, up, wait_until};

const METRICS_TOKEN: &str = "scrape-Lantern-Pebble-93Xq";
const ALICE_PASSWORD: &str = "Copper-Violet-Harbor-81";
const TOPIC: &str = "sensor_data";

const HTTP: &str = "streamhub_http_request_duration_seconds";
const STORE: &str = "streamhub_store_operation_duration_seconds";
const SSE: &str = "streamhub_sse_clients";
const SENT: &str = "streamhub_producer_messages_sent_total";
const ACKNOWLEDGED: &str = "streamhub_producer_messages_acknowledged_total";
const SEND_ERRORS: &str = "streamhub_producer_send_errors_total";
const LAG: &str = "streamhub_consumer_lag";

#[tokio::test(flavor = "multi_thread")]
async fn a_scrape_of_streamhub_up_has_every_family_and_only_its_readers_may_scrape() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("up.log");
    let mut cmd = up(&dir.path().join("data"), &log);
    cmd.args(["--sample-topics", "--ephemeral"])
        .arg(format!("--metrics-token={METRICS_TOKEN}"))
        .env(
            "STREAMHUB_ADMIN_PASSWORD",
            streamhub_testkit::ADMIN_PASSWORD,
        );
    let (child, stdout) = start_up(cmd, &log);
    let mut running = Up(child);
    let url = dashboard_url(&stdout);
    let http = reqwest::Client::builder().timeout(GUARD).build().unwrap();
    let admin = AdminApi::sign_in(&url).await;

    // The producer provisions the sample topics, then activates them.
    let mut topic_id = None;
    wait_until(&format!("{TOPIC} active"), GUARD, async || {
        topic_id = admin
            .get("/api/topics/active")
            .await
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["topic_name"] == TOPIC)
            .map(|t| t["topic_id"].as_i64().expect("a topic id"));
        topic_id.is_some()
    })
    .await;
    let topic_id = topic_id.unwrap();
    // A route with an id, so that the scrape shows whether ids become labels.
    admin.get(&format!("/api/topics/{topic_id}")).await;

    admin
        .post(
            "/api/users",
            json!({"username": "alice", "password": ALICE_PASSWORD, "role": "user"}),
        )
        .await;
    admin
        .post(
            "/api/subscriptions",
            json!({"user_id": "alice", "topic_name": TOPIC}),
        )
        .await;
    let alice: Value = http
        .post(format!("{url}/api/auth/login"))
        .json(&json!({"username": "alice", "password": ALICE_PASSWORD}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let alice_token = alice["token"].as_str().expect("alice's token").to_owned();

    // alice's event stream, open while the figures are scraped.
    let events = http
        .get(format!("{url}/api/events"))
        .bearer_auth(&alice_token)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);

    let scrape = async |token: &str| -> Exposition {
        let res = http
            .get(format!("{url}/metrics"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let content_type = res.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        let text = res.text().await.unwrap();
        Exposition::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    };
    let topic_labels = [("topic", TOPIC)];
    let lag_labels = [("user", "alice"), ("topic", TOPIC)];
    // Messages sent, and a round of the figures that found them unread by alice.
    let mut figures = Exposition::default();
    wait_until("messages sent and alice's lag", GUARD, async || {
        figures = scrape(METRICS_TOKEN).await;
        figures.value(SENT, &topic_labels).is_some_and(|n| n > 0.0)
            && figures.value(LAG, &lag_labels).is_some_and(|n| n > 0.0)
    })
    .await;

    // HTTP requests: a histogram by route template, method and status class.
    figures.histograms(HTTP);
    let routes = figures.label_values(HTTP, "route");
    for route in ["/api/topics/active", "/api/topics/{id}", "/api/events"] {
        assert!(routes.contains(&route.to_owned()), "{route} in {routes:?}");
    }
    for route in &routes {
        assert!(
            route == "unmatched"
                || route.starts_with('/')
                    && !route
                        .split('/')
                        .any(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())),
            "a requested path became a route label: {route}"
        );
    }
    assert!(
        figures
            .value(
                &format!("{HTTP}_count"),
                &[
                    ("route", "/api/topics/{id}"),
                    ("method", "GET"),
                    ("status", "2xx")
                ]
            )
            .is_some_and(|n| n >= 1.0),
        "{figures:?}"
    );
    for status in figures.label_values(HTTP, "status") {
        assert!(["1xx", "2xx", "3xx", "4xx", "5xx"].contains(&status.as_str()));
    }

    // Store calls: a histogram by operation and outcome.
    figures.histograms(STORE);
    let operations = figures.label_values(STORE, "operation");
    for operation in ["topics", "subscriptions", "credentials"] {
        assert!(
            operations.contains(&operation.to_owned()),
            "{operation} in {operations:?}"
        );
    }
    for outcome in figures.label_values(STORE, "outcome") {
        assert!(["ok", "error"].contains(&outcome.as_str()), "{outcome}");
    }
    assert!(
        figures
            .value(
                &format!("{STORE}_count"),
                &[("operation", "topics"), ("outcome", "ok")]
            )
            .is_some_and(|n| n >= 1.0)
    );

    // The producer inside `up`: counters per topic.
    for name in [SENT, ACKNOWLEDGED, SEND_ERRORS] {
        assert_eq!(figures.kind(name), Some("counter"), "{name}");
        assert!(
            figures.value(name, &topic_labels).is_some(),
            "{name} of {TOPIC}"
        );
        assert!(
            figures.label_values(name, "topic").len() >= 5,
            "{name}: every sample topic"
        );
    }

    // Consumer lag and open event streams: gauges.
    assert_eq!(figures.kind(LAG), Some("gauge"));
    assert_eq!(figures.kind(SSE), Some("gauge"));
    let open = figures
        .value(SSE, &[("stream", "events")])
        .expect("the events streams' gauge");
    assert!(open >= 1.0, "alice's stream is open: {open}");

    // An admin's token reads the figures too.
    assert!(scrape(admin.token()).await.kind(HTTP).is_some());

    // Anyone else gets a JSON error.
    let refused = async |token: Option<&str>, path: &str| -> (StatusCode, Value) {
        let mut req = http.get(format!("{url}{path}"));
        if let Some(token) = token {
            req = req.header(AUTHORIZATION, format!("Bearer {token}"));
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let content_type = res.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
        assert!(
            content_type.starts_with("application/json"),
            "{path}: {content_type}"
        );
        let body: Value = res.json().await.unwrap();
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{path}: {body}"
        );
        (status, body)
    };
    let (status, body) = refused(None, "/metrics").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("metrics token"),
        "the error says how to scrape: {body}"
    );
    let wrong = format!("{METRICS_TOKEN}x");
    assert_eq!(
        refused(Some(&wrong), "/metrics").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        refused(Some(&alice_token), "/metrics").await.0,
        StatusCode::FORBIDDEN
    );
    // The metrics token opens /metrics only.
    for path in ["/api/users", "/api/topics", "/api/metrics/lag"] {
        assert_eq!(
            refused(Some(METRICS_TOKEN), path).await.0,
            StatusCode::UNAUTHORIZED,
            "{path}"
        );
    }

    // The gauge follows the stream: closed, it counts one fewer.
    drop(events);
    wait_until("the closed stream leaves the gauge", GUARD, async || {
        scrape(METRICS_TOKEN)
            .await
            .value(SSE, &[("stream", "events")])
            .is_some_and(|n| n < open)
    })
    .await;

    stop(&mut running.0);
}

/// A histogram bucket: its upper bound `le` and its cumulative count.
type Bucket = (f64, f64);

/// One sample line: `name{label="value",...} value`.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A scrape in Prometheus' text format (0.0.4): the `# TYPE` of each family and the
/// samples, each belonging to a family whose type was declared.
#[derive(Debug, Default)]
struct Exposition {
    kinds: HashMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    fn parse(text: &str) -> Result<Exposition, String> {
        let mut out = Exposition::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            let at = |e: String| format!("line {}: {e}: {line}", n + 1);
            if line.is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let words: Vec<&str> = comment.split_whitespace().collect();
                if words.first() == Some(&"TYPE") {
                    let [_, name, kind] = words[..] else {
                        return Err(at("a TYPE line is `# TYPE name kind`".into()));
                    };
                    if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                        return Err(at(format!("unknown type {kind}")));
                    }
                    if out.kinds.insert(name.into(), kind.into()).is_some() {
                        return Err(at(format!("a second TYPE for {name}")));
                    }
                }
                continue;
            }
            out.samples.push(sample(line).map_err(at)?);
        }
        for s in &out.samples {
            let family = out.family_of(&s.name);
            if !out.kinds.contains_key(family) {
                return Err(format!("{} has no # TYPE", s.name));
            }
        }
        Ok(out)
    }

    /// The family a sample name belongs to: a histogram's `_bucket`, `_sum` and `_count`
    /// are its own.
    fn family_of<'a>(&self, name: &'a str) -> &'a str {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(family) = name.strip_suffix(suffix)
                && self.kinds.get(family).is_some_and(|k| k == "histogram")
            {
                return family;
            }
        }
        name
    }

    fn kind(&self, family: &str) -> Option<&str> {
        self.kinds.get(family).map(String::as_str)
    }

    fn of_family<'a>(&'a self, family: &'a str) -> impl Iterator<Item = &'a Sample> {
        self.samples
            .iter()
            .filter(move |s| self.family_of(&s.name) == family)
    }

    /// The value of the one sample named `name` whose labels include `labels`.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = self.samples.iter().filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).is_some_and(|x| x == v))
        });
        let first = found.next()?;
        assert!(found.next().is_none(), "several {name} with {labels:?}");
        Some(first.value)
    }

    /// The values label `label` takes in `family`, sorted.
    fn label_values(&self, family: &str, label: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .of_family(family)
            .filter_map(|s| s.labels.get(label).cloned())
            .collect();
        values.sort();
        values.dedup();
        values
    }

    /// Asserts that `family` is a histogram with samples, each series' buckets cumulative
    /// up to `+Inf`, which equals its `_count`.
    fn histograms(&self, family: &str) {
        assert_eq!(self.kind(family), Some("histogram"), "{family}");
        // Per series (its labels but `le`), its `(le, count)` buckets.
        let mut series: BTreeMap<Vec<(String, String)>, Vec<Bucket>> = BTreeMap::new();
        for s in self.of_family(family) {
            if s.name != format!("{family}_bucket") {
                continue;
            }
            let le = s.labels.get("le").expect("a bucket's le");
            let le: f64 = parse_value(le).expect("a bucket's bound");
            let key = s
                .labels
                .iter()
                .filter(|(k, _)| *k != "le")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            series.entry(key).or_default().push((le, s.value));
        }
        assert!(!series.is_empty(), "{family} has no series");
        for (labels, mut buckets) in series {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "{family} {labels:?}: buckets not cumulative: {buckets:?}"
            );
            let (last_bound, inf) = *buckets.last().unwrap();
            assert_eq!(last_bound, f64::INFINITY, "{family} {labels:?}");
            let pairs: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert_eq!(
                self.value(&format!("{family}_count"), &pairs),
                Some(inf),
                "{family} {labels:?}"
            );
            assert!(
                self.value(&format!("{family}_sum"), &pairs).is_some(),
                "{family} {labels:?}"
            );
        }
    }
}

/// `name`, optional `{labels}`, a value and an optional timestamp.
fn sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("no metric name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        rest = after;
        loop {
            rest = rest.trim_start();
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let (label, after) = rest.split_once('=').ok_or("a label without `=`")?;
            let label = label.trim();
            if label.is_empty() || !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("bad label name {label:?}"));
            }
            let after = after
                .trim_start()
                .strip_prefix('"')
                .ok_or("an unquoted label value")?;
            let mut value = String::new();
            let mut chars = after.char_indices();
            let end = loop {
                match chars.next().ok_or("an unterminated label value")? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next().ok_or("a dangling escape")?.1 {
                        'n' => value.push('\n'),
                        c @ ('\\' | '"') => value.push(c),
                        c => return Err(format!("unknown escape \\{c}")),
                    },
                    (_, c) => value.push(c),
                }
            };
            if labels.insert(label.to_owned(), value).is_some() {
                return Err(format!("label {label} twice"));
            }
            rest = after[end + 1..].trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    if !rest.starts_with([' ', '\t']) {
        return Err("no space before the value".into());
    }
    let mut fields = rest.split_whitespace();
    let value = parse_value(fields.next().ok_or("no value")?)?;
    if let Some(timestamp) = fields.next() {
        timestamp
            .parse::<i64>()
            .map_err(|e| format!("timestamp: {e}"))?;
    }
    if fields.next().is_some() {
        return Err("more after the timestamp".into());
    }
    Ok(Sample {
        name: name.to_owned(),
        labels,
        value,
    })
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s.parse().map_err(|e| format!("value {s:?}: {e}")),
    }
}

#[test]
fn the_parser_reads_labels_with_braces_and_escapes_and_refuses_untyped_samples() {
    let text = "# HELP h A histogram.\n# TYPE h histogram\n\
        h_bucket{route=\"/api/topics/{id}\",le=\"0.5\"} 1\n\
        h_bucket{route=\"/api/topics/{id}\",le=\"+Inf\"} 2\n\
        h_sum{route=\"/api/topics/{id}\"} 0.75\nh_count{route=\"/api/topics/{id}\"} 2\n\
        # TYPE g gauge\ng{q=\"say \\\"hi\\\"\\\\\",} 3 1700000000000\n";
    let parsed = Exposition::parse(text).unwrap();
    parsed.histograms("h");
    assert_eq!(parsed.label_values("h", "route"), ["/api/topics/{id}"]);
    assert_eq!(parsed.label_values("g", "q"), ["say \"hi\"\\"]);
    assert_eq!(parsed.value("g", &[]), Some(3.0));
    assert!(Exposition::parse("x 1\n").is_err(), "no TYPE");
    assert!(Exposition::parse("# TYPE x gauge\nx{a=b} 1\n").is_err());
    assert!(Exposition::parse("# TYPE x gauge\nx{a=\"b} 1\n").is_err());
    assert!(Exposition::parse("# TYPE x gauge\nx one\n").is_err());
}
