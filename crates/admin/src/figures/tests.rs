//! The service's histories from recorded samples, and its answers through HTTP with a
//! cluster reader of fixed figures: the Kafka side is tested in the streamhub crate,
//! the page by the browser test under `streamhub up`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::DateTime;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use serde_json::{Value, json};

use super::*;
use crate::{AdminConfig, AdminHandle, AdminService, Secret, TailMessage};

/// A cluster reader with fixed figures: the handlers' mapping is under test here,
/// the Kafka side in the kafka crate and the browser test under `streamhub up`.
struct FixedCluster {
    totals: HashMap<String, i64>,
    lag: HashMap<(String, String), i64>,
}

#[async_trait::async_trait]
impl ClusterInfo for FixedCluster {
    async fn topic_message_totals(
        &self,
        topics: &[String],
    ) -> Result<HashMap<String, i64>, String> {
        Ok(topics
            .iter()
            .filter_map(|t| Some((t.clone(), *self.totals.get(t)?)))
            .collect())
    }

    async fn group_lag(
        &self,
        group: &str,
        topics: &[String],
    ) -> Result<HashMap<String, i64>, String> {
        Ok(topics
            .iter()
            .filter_map(|t| Some((t.clone(), *self.lag.get(&(group.to_owned(), t.clone()))?)))
            .collect())
    }

    async fn tail(
        &self,
        topic: &str,
        _backlog: usize,
    ) -> Result<BoxStream<'static, Result<TailMessage, String>>, String> {
        let message = TailMessage {
            partition: 0,
            offset: 41,
            timestamp: None,
            key: Some("sensor-1".into()),
            value: json!({"topic": topic, "payload": {"t": 21.5}}),
        };
        // A valid sensor reading in its envelope.
        let valid = TailMessage {
            offset: 42,
            value: json!({
                "topic": topic, "data_type": "sensor", "timestamp": "2026-01-01T00:00:00.000Z",
                "producer_id": "p-1", "seq": 7,
                "payload": {
                    "sensor_id": "sensor-001", "temperature": 21.5, "humidity": 40.0,
                    "battery": 88.1, "status": "ok",
                    "location": {"site": "office-london", "latitude": 51.5, "longitude": -0.12},
                },
            }),
            ..message.clone()
        };
        Ok(stream::iter([Ok(message), Ok(valid)])
            .chain(stream::pending())
            .boxed())
    }
}

struct Service {
    handle: AdminHandle,
    http: reqwest::Client,
    admin: String,
    _dir: tempfile::TempDir,
}

const PRODUCER_KEY: &str = "producer-key-for-tests";

async fn start(cluster: Option<Arc<dyn ClusterInfo>>) -> Service {
    let dir = tempfile::tempdir().unwrap();
    let handle = AdminService::start(AdminConfig {
        admin_password: Some(Secret::new("Quartz-Meadow-Tidal-42")),
        producer_secret: Some(Secret::new(PRODUCER_KEY)),
        cluster,
        ..AdminConfig::local(dir.path())
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let admin = login(&http, handle.url(), "admin", "Quartz-Meadow-Tidal-42").await;
    Service {
        handle,
        http,
        admin,
        _dir: dir,
    }
}

async fn login(http: &reqwest::Client, url: &str, user: &str, password: &str) -> String {
    let res: Value = http
        .post(format!("{url}/api/auth/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    res["token"].as_str().unwrap().to_owned()
}

impl Service {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.handle.url());
        let mut req = self
            .http
            .request(method.parse().unwrap(), url)
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// A topic taken to active the way the producer does it; returns its id.
    async fn active_topic(&self, name: &str) -> i64 {
        let (s, created) = self
            .call(
                "POST",
                "/api/topics",
                &self.admin,
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(s, 201, "{created}");
        let id = created["topic_id"].as_i64().unwrap();
        let (s, _) = self
            .call(
                "POST",
                &format!("/api/topics/{id}/approve"),
                &self.admin,
                None,
            )
            .await;
        assert_eq!(s, 200);
        let res = self
            .http
            .post(format!("{}/api/topics/activate_by_name", self.handle.url()))
            .header("X-Producer-Key", PRODUCER_KEY)
            .json(&json!({"topic_name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        id
    }

    /// The first `limit` bytes of an event stream.
    async fn sse_head(&self, path: &str, limit: usize) -> (u16, String, String) {
        self.sse_until(path, |body| body.len() >= limit).await
    }

    /// The start of an event stream, read until `done` says it has enough (or, as a hang
    /// guard, nothing came for 5 seconds).
    async fn sse_until(&self, path: &str, done: impl Fn(&str) -> bool) -> (u16, String, String) {
        let mut res = self
            .http
            .get(format!("{}{path}", self.handle.url()))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let ty = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let mut body = Vec::new();
        while !done(&String::from_utf8_lossy(&body)) {
            match tokio::time::timeout(Duration::from_secs(5), res.chunk()).await {
                Ok(Ok(Some(chunk))) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        (status, ty, String::from_utf8_lossy(&body).into_owned())
    }
}

fn figures_at(seconds: i64, totals: &[(&str, i64)]) -> TopicFigures {
    TopicFigures {
        enabled: true,
        note: None,
        topics: totals
            .iter()
            .map(|&(name, total)| TopicTotal {
                topic_name: name.to_owned(),
                total_messages: total,
            })
            .collect(),
        timestamp: DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap(),
    }
}

/// A round of `seconds` past a fixed instant, with `totals` and `lag` per `(user, topic)`.
fn round_at(seconds: i64, totals: &[(&str, i64)], lag: &[(&str, &str, i64)]) -> Round {
    Round {
        asked: Asked {
            topics: totals.iter().map(|&(t, _)| t.to_owned()).collect(),
            subscriptions: lag
                .iter()
                .map(|&(u, t, _)| (u.to_owned(), t.to_owned()))
                .collect(),
        },
        at: DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap(),
        totals: Ok(totals.iter().map(|&(t, n)| (t.to_owned(), n)).collect()),
        lag: Ok(lag
            .iter()
            .map(|&(u, t, n)| ((u.to_owned(), t.to_owned()), n))
            .collect()),
    }
}

fn failed_round(seconds: i64, note: &str) -> Round {
    Round {
        totals: Err(note.to_owned()),
        lag: Err(note.to_owned()),
        ..round_at(seconds, &[("sensor", 0)], &[])
    }
}

#[test]
fn a_failed_round_gives_the_last_good_answer_for_the_grace_only() {
    let start = Instant::now();
    let good = round_at(0, &[("sensor", 100)], &[]);
    let failed = failed_round(5, "Kafka did not answer within 3 seconds");
    let mut rounds = Rounds::default();
    // Nothing good yet: the failure is the answer.
    assert!(rounds.answer(failed.clone(), start).totals.is_err());
    assert!(rounds.answer(good.clone(), start).totals.is_ok());
    // Within the grace: the good answer, with its own timestamp.
    let within = TopicFigures::of(&rounds.answer(failed.clone(), start + ROUND_GRACE / 2));
    assert!(within.enabled);
    assert_eq!(within.timestamp, good.at);
    assert_eq!(within.topics[0].total_messages, 100);
    assert_eq!(rounds.latest.as_ref().unwrap().1.at, good.at);
    // Past it: Kafka figures are off, and the note says why.
    let past = TopicFigures::of(&rounds.answer(failed.clone(), start + ROUND_GRACE));
    assert!(!past.enabled);
    assert_eq!(
        past.note.as_deref(),
        Some("Kafka did not answer within 3 seconds")
    );
}

#[test]
fn lag_history_keeps_each_subscription_over_the_window() {
    let mut h = LagHistory::default();
    h.record(&round_at(
        0,
        &[("a", 0)],
        &[("alice", "a", 17), ("bob", "a", 3)],
    ));
    h.record(&round_at(
        5,
        &[("a", 0)],
        &[("alice", "a", 12), ("bob", "a", 3)],
    ));
    // The same round again (a failed round's stand-in) adds nothing.
    h.record(&round_at(
        5,
        &[("a", 0)],
        &[("alice", "a", 12), ("bob", "a", 3)],
    ));
    let alice = h.figures(Some("alice"));
    assert!(alice.enabled);
    assert_eq!(alice.subscriptions.len(), 1, "users see their own only");
    assert_eq!(
        alice.subscriptions[0].points,
        vec![(1_800_000_000_000, 17), (1_800_000_005_000, 12)]
    );
    assert_eq!(h.figures(None).subscriptions.len(), 2);
    // Kafka off: the note is kept and the points stay.
    h.record(&failed_round(10, "Kafka did not answer"));
    let off = h.figures(None);
    assert!(!off.enabled);
    assert_eq!(off.note.as_deref(), Some("Kafka did not answer"));
    assert_eq!(off.subscriptions[1].points.len(), 2);
    // Bob unsubscribed: his points stay until they are older than the window, then
    // he is forgotten; alice's old points go and the new one stays.
    h.record(&round_at(600, &[("a", 0)], &[("alice", "a", 1)]));
    assert_eq!(h.figures(Some("bob")).subscriptions[0].points.len(), 2);
    h.record(&round_at(906, &[("a", 0)], &[("alice", "a", 0)]));
    let all = h.figures(None);
    assert!(all.enabled);
    assert_eq!(all.subscriptions.len(), 1, "{all:?}");
    assert_eq!(
        all.subscriptions[0].points,
        vec![(1_800_000_600_000, 1), (1_800_000_906_000, 0)]
    );
}

#[test]
fn rate_history_turns_totals_into_rates_over_the_window() {
    let mut h = RateHistory::default();
    h.record(&figures_at(0, &[("a", 100), ("b", 7)]));
    assert!(h.rates.is_empty(), "one sample has no rate yet");
    h.record(&figures_at(5, &[("a", 150), ("b", 7)]));
    assert_eq!(h.rates["a"].back().unwrap().1, 10.0);
    assert_eq!(h.rates["b"].back().unwrap().1, 0.0);
    // Recreated topic: the total dropped, the rate is zero, not negative.
    h.record(&figures_at(10, &[("a", 20), ("b", 7)]));
    assert_eq!(h.rates["a"].back().unwrap().1, 0.0);
    // Kafka off: the note is kept and the points stay.
    h.record(&TopicFigures {
        enabled: false,
        note: Some("Kafka did not answer".into()),
        ..figures_at(15, &[])
    });
    assert_eq!(h.note.as_deref(), Some("Kafka did not answer"));
    assert_eq!(h.rates["a"].len(), 2);
    // Sixteen minutes on, the old points are gone; b left Kafka and is forgotten.
    h.record(&figures_at(970, &[("a", 30)]));
    h.record(&figures_at(975, &[("a", 40)]));
    assert_eq!(h.note, None);
    // Across the gap the rate is the average: 10 messages in 960 s.
    let rates: Vec<f64> = h.rates["a"].iter().map(|p| p.1).collect();
    assert_eq!(rates.len(), 2, "{rates:?}");
    assert!((rates[0] - 10.0 / 960.0).abs() < 1e-9, "{rates:?}");
    assert_eq!(rates[1], 2.0);
    assert!(!h.rates.contains_key("b") && !h.last.contains_key("b"));
}

#[tokio::test]
async fn figures_say_plainly_when_kafka_is_off() {
    let svc = start(None).await;
    let id = svc.active_topic("sensor_off").await;
    for path in [
        "/api/metrics/topics",
        "/api/metrics/rates",
        "/api/metrics/lag",
        "/api/metrics/lag/history",
    ] {
        let (s, body) = svc.call("GET", path, &svc.admin, None).await;
        assert_eq!(s, 200, "{path}");
        assert_eq!(body["enabled"], false, "{path}: {body}");
        assert!(
            body["note"]
                .as_str()
                .unwrap()
                .contains("--bootstrap-servers"),
            "{path}: {body}"
        );
    }
    let (s, ty, text) = svc.sse_head(&format!("/api/topics/{id}/tail"), 1).await;
    assert_eq!(s, 200);
    assert!(ty.starts_with("text/event-stream"), "{ty}");
    assert!(text.contains("event: status"), "{text}");
    assert!(text.contains("\"enabled\":false"), "{text}");
    svc.handle.stop().await.unwrap();
}

#[tokio::test]
async fn figures_come_from_the_cluster_and_users_see_their_own_lag() {
    let cluster = FixedCluster {
        totals: HashMap::from([("sensor_a".to_owned(), 1200), ("sensor_b".to_owned(), 5)]),
        lag: HashMap::from([
            (("streamhub-alice".to_owned(), "sensor_a".to_owned()), 17),
            (("streamhub-bob".to_owned(), "sensor_a".to_owned()), 3),
        ]),
    };
    let svc = start(Some(Arc::new(cluster))).await;
    svc.active_topic("sensor_a").await;
    let sensor_b = svc.active_topic("sensor_b").await;
    // Pending topics are not in Kafka yet and are not asked about.
    let (_, pending) = svc
        .call(
            "POST",
            "/api/topics",
            &svc.admin,
            Some(json!({"name": "sensor_c"})),
        )
        .await;

    let (s, figures) = svc
        .call("GET", "/api/metrics/topics", &svc.admin, None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(figures["enabled"], true, "{figures}");
    assert_eq!(
        figures["topics"],
        json!([
            {"topic_name": "sensor_a", "total_messages": 1200},
            {"topic_name": "sensor_b", "total_messages": 5},
        ])
    );
    assert!(figures["timestamp"].is_string());
    // Statistics sum the same round's totals.
    let (s, stats) = svc.call("GET", "/api/stats", &svc.admin, None).await;
    assert_eq!(s, 200);
    assert_eq!(stats["kafka"]["enabled"], true, "{stats}");
    assert_eq!(stats["kafka"]["total_messages"], 1205, "{stats}");
    // A topic's details read its own total from the same round.
    let (s, details) = svc
        .call("GET", &format!("/api/topics/{sensor_b}"), &svc.admin, None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(details["kafka"]["total_messages"], 5, "{details}");
    let pending = pending["topic_id"].as_i64().unwrap();
    let (s, details) = svc
        .call("GET", &format!("/api/topics/{pending}"), &svc.admin, None)
        .await;
    assert_eq!(s, 200);
    assert!(details["kafka"]["total_messages"].is_null(), "{details}");
    let (s, rates) = svc
        .call("GET", "/api/metrics/rates", &svc.admin, None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(rates["enabled"], true, "{rates}");
    assert_eq!(rates["interval_seconds"], 5);
    assert!(rates["topics"].is_array());

    for user in ["alice", "bob"] {
        let (s, _) = svc
            .call(
                "POST",
                "/api/users",
                &svc.admin,
                Some(json!({"username": user, "password": "Lantern-Orbit-Kettle-57", "role": "user"})),
            )
            .await;
        assert_eq!(s, 201);
        let (s, _) = svc
            .call(
                "POST",
                "/api/subscriptions",
                &svc.admin,
                Some(json!({"user_id": user, "topic_name": "sensor_a"})),
            )
            .await;
        assert_eq!(s, 201);
    }
    let (_, lag) = svc.call("GET", "/api/metrics/lag", &svc.admin, None).await;
    assert_eq!(
        lag["subscriptions"],
        json!([
            {"user_id": "alice", "topic_name": "sensor_a", "lag": 17},
            {"user_id": "bob", "topic_name": "sensor_a", "lag": 3},
        ])
    );
    let alice = login(
        &svc.http,
        svc.handle.url(),
        "alice",
        "Lantern-Orbit-Kettle-57",
    )
    .await;
    let (_, own) = svc.call("GET", "/api/metrics/lag", &alice, None).await;
    assert_eq!(
        own["subscriptions"],
        json!([{"user_id": "alice", "topic_name": "sensor_a", "lag": 17}])
    );

    // The history holds what the samples read.
    svc.handle.state().figures().sample().await.unwrap();
    let (s, all) = svc
        .call("GET", "/api/metrics/lag/history", &svc.admin, None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(all["enabled"], true, "{all}");
    assert_eq!(all["interval_seconds"], 5);
    let lag_points = |body: &Value| -> Vec<(String, Vec<i64>)> {
        body["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let points = s["points"].as_array().unwrap();
                let values = points.iter().map(|p| p[1].as_i64().unwrap()).collect();
                (s["user_id"].as_str().unwrap().to_owned(), values)
            })
            .collect()
    };
    let all = lag_points(&all);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0].0, "alice");
    assert_eq!(all[0].1.last(), Some(&17));
    assert_eq!(all[1].0, "bob");
    assert_eq!(all[1].1.last(), Some(&3));
    let (_, own) = svc
        .call("GET", "/api/metrics/lag/history", &alice, None)
        .await;
    let own = lag_points(&own);
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0].0, "alice");
    let producer = svc
        .http
        .get(format!("{}/api/metrics/lag/history", svc.handle.url()))
        .header("X-Producer-Key", PRODUCER_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(producer.status(), 403);
    svc.handle.stop().await.unwrap();
}

/// Two services in one process, each with its own cluster: neither sees the other's
/// figures nor history.
#[tokio::test]
async fn two_services_share_nothing() {
    let fixed = |total: i64, lag: i64| FixedCluster {
        totals: HashMap::from([("shared_name".to_owned(), total)]),
        lag: HashMap::from([(
            ("streamhub-carol".to_owned(), "shared_name".to_owned()),
            lag,
        )]),
    };
    let one = start(Some(Arc::new(fixed(10, 1)))).await;
    let two = start(Some(Arc::new(fixed(20, 2)))).await;
    for (svc, total) in [(&one, 10), (&two, 20)] {
        svc.active_topic("shared_name").await;
        svc.call(
            "POST",
            "/api/users",
            &svc.admin,
            Some(
                json!({"username": "carol", "password": "Lantern-Orbit-Kettle-57", "role": "user"}),
            ),
        )
        .await;
        let (s, _) = svc
            .call(
                "POST",
                "/api/subscriptions",
                &svc.admin,
                Some(json!({"user_id": "carol", "topic_name": "shared_name"})),
            )
            .await;
        assert_eq!(s, 201);
        svc.handle.state().figures().sample().await.unwrap();
        let (_, figures) = svc
            .call("GET", "/api/metrics/topics", &svc.admin, None)
            .await;
        assert_eq!(figures["topics"][0]["total_messages"], total, "{figures}");
    }
    // Sampled once more, the first only.
    one.handle.state().figures().sample().await.unwrap();
    for (svc, lag, max_points) in [(&one, 1, 2), (&two, 2, 1)] {
        let (_, history) = svc
            .call("GET", "/api/metrics/lag/history", &svc.admin, None)
            .await;
        let points = history["subscriptions"][0]["points"].as_array().unwrap();
        assert!(
            !points.is_empty() && points.len() <= max_points,
            "{history}"
        );
        assert!(points.iter().all(|p| p[1] == lag), "{history}");
    }
    one.handle.stop().await.unwrap();
    // The second keeps answering once the first has stopped.
    let (s, figures) = two.call("GET", "/api/metrics/lag", &two.admin, None).await;
    assert_eq!(s, 200);
    assert_eq!(figures["subscriptions"][0]["lag"], 2, "{figures}");
    two.handle.stop().await.unwrap();
}

#[tokio::test]
async fn tail_streams_messages_of_topics_in_kafka_only() {
    let cluster = FixedCluster {
        totals: HashMap::new(),
        lag: HashMap::new(),
    };
    let svc = start(Some(Arc::new(cluster))).await;
    let id = svc.active_topic("sensor_tail").await;
    let (s, ty, text) = svc
        .sse_until(&format!("/api/topics/{id}/tail"), |t| {
            t.matches("event: message").count() == 2 && t.ends_with("\n\n")
        })
        .await;
    assert_eq!(s, 200);
    assert!(ty.starts_with("text/event-stream"), "{ty}");
    assert!(
        text.contains("event: status\ndata: {\"enabled\":true}"),
        "{text}"
    );
    assert!(text.contains("event: message"), "{text}");
    assert!(text.contains("\"offset\":41"), "{text}");
    // Each message says where it breaks its data type's schema: the first is no envelope.
    let messages: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|m| m.get("offset").is_some())
        .collect();
    assert_eq!(messages.len(), 2, "{text}");
    let errors = messages[0]["schema_errors"]
        .as_array()
        .expect("schema_errors");
    assert_eq!(errors.len(), 1, "{text}");
    assert_eq!(errors[0]["path"], "");
    assert!(
        errors[0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("not a streamhub envelope")),
        "{text}"
    );
    assert_eq!(messages[1]["schema_errors"], json!([]), "{text}");

    let (_, pending) = svc
        .call(
            "POST",
            "/api/topics",
            &svc.admin,
            Some(json!({"name": "sensor_pending"})),
        )
        .await;
    let pending = pending["topic_id"].as_i64().unwrap();
    let (s, body) = svc
        .call(
            "GET",
            &format!("/api/topics/{pending}/tail"),
            &svc.admin,
            None,
        )
        .await;
    assert_eq!(s, 409, "{body}");
    let (s, _) = svc
        .call("GET", "/api/topics/99999/tail", &svc.admin, None)
        .await;
    assert_eq!(s, 404);
    let (s, body) = svc
        .call("GET", "/api/topics/abc/tail", &svc.admin, None)
        .await;
    assert_eq!(s, 400, "{body}");
    assert!(body["error"].is_string());
    let (s, _) = svc
        .call("GET", "/api/metrics/topics", "not-a-token", None)
        .await;
    assert_eq!(s, 401);
    svc.handle.stop().await.unwrap();
}

#[test]
fn the_expected_curve_is_averaged_over_each_measured_interval() {
    let origin: DateTime<chrono::Utc> = "2026-06-01T00:00:00Z".parse().unwrap();
    let at = |s: i64| origin.timestamp_millis() + s * 1000;
    let mut rates = TopicRates {
        topic_name: "t".into(),
        // The first point covers one sample interval before it; the others the gap since
        // the previous point (a missed sample makes a 10 s gap).
        points: vec![(at(5), 0.0), (at(10), 0.0), (at(20), 0.0), (at(-5), 0.0)],
        expected: None,
    };
    let ramp = "ramp:from=0.001,to=100,over=20s".parse().unwrap();
    rates.expect(&ramp, origin);
    let expected = rates.expected.clone().unwrap();
    let near = |a: f64, b: f64| (a - b).abs() < 0.01;
    // 0–5 s of a ramp to 100 over 20 s averages 12.5; 5–10 s 37.5; 10–20 s 75.
    assert!(near(expected[0].1, 12.5), "{expected:?}");
    assert!(near(expected[1].1, 37.5), "{expected:?}");
    assert!(near(expected[2].1, 75.0), "{expected:?}");
    // Before the activation there is nothing to expect.
    assert_eq!(expected[3].1, 0.0);
    assert_eq!(
        expected.iter().map(|p| p.0).collect::<Vec<_>>(),
        rates.points.iter().map(|p| p.0).collect::<Vec<_>>()
    );
    let bursts = "bursts:rate=10,factor=5,every=5s,for=1s".parse().unwrap();
    rates.expect(&bursts, origin);
    // One second at 50 and four at 10 in every 5 s: 18 on average, whatever the phase.
    assert!(near(rates.expected.unwrap()[1].1, 18.0));
}
