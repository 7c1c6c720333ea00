//! The admin service behind a reverse proxy that serves it under `/prefix/`: the calls of
//! the producer (producer key: topics, activation, the event stream) and of the consumer
//! (sign-in, active topics, subscriptions) all go through the prefix, and the proxy's own
//! answers (404 outside the prefix, 502 while the service is down) decode to one-line
//! errors, the 502s retried.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::json;
use streamhub_client::{Activation, Backoff, Client, ServerEvent, retry};
use streamhub_model::api::Event;
use streamhub_model::generation::Generation;
use streamhub_model::{DataType, Secret, TopicStatus};
use streamhub_testkit::{AdminApi, PRODUCER_KEY, admin_service, unique};

const PASSWORD: &str = "Lantern-Orbit-Kettle-57";
/// Hang guard for anything awaited from the event stream.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// Forwards `/prefix/*` to `upstream`, streaming answers (the event stream stays open).
#[derive(Clone)]
struct Proxy {
    upstream: Arc<Mutex<String>>,
    http: reqwest::Client,
}

async fn forward(State(proxy): State<Proxy>, Path(rest): Path<String>, req: Request) -> Response {
    let upstream = proxy.upstream.lock().unwrap().clone();
    let mut url = format!("{}/{rest}", upstream.trim_end_matches('/'));
    if let Some(query) = req.uri().query() {
        url.push('?');
        url.push_str(query);
    }
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 1 << 20).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let mut headers = parts.headers;
    headers.remove(header::HOST);
    let answer = proxy
        .http
        .request(parts.method, url)
        .headers(headers)
        .body(body)
        .send()
        .await;
    match answer {
        Ok(answer) => {
            let mut response = Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if name != header::TRANSFER_ENCODING && name != header::CONNECTION {
                    response = response.header(name, value);
                }
            }
            response
                .body(Body::from_stream(answer.bytes_stream()))
                .unwrap()
        }
        // What nginx answers while the service behind it is down: a page, not JSON.
        Err(_) => (
            StatusCode::BAD_GATEWAY,
            "<html>\n<head><title>502 Bad Gateway</title></head>\n</html>\n",
        )
            .into_response(),
    }
}

/// Starts the proxy; returns its `/prefix/` URL and the upstream it forwards to.
async fn start_proxy(upstream: &str) -> (reqwest::Url, Arc<Mutex<String>>) {
    let proxy = Proxy {
        upstream: Arc::new(Mutex::new(upstream.to_owned())),
        http: reqwest::Client::new(),
    };
    let target = Arc::clone(&proxy.upstream);
    let app = axum::Router::new()
        .route("/prefix/{*rest}", axum::routing::any(forward))
        .with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/prefix/").parse().unwrap(), target)
}

/// The next topic event about `name`, skipping keep-alives and other topics.
async fn next_topic_event(
    events: &mut (impl futures::Stream<Item = Result<ServerEvent, streamhub_client::Error>> + Unpin),
    name: &str,
) -> streamhub_model::api::Topic {
    loop {
        let next = tokio::time::timeout(HANG_GUARD, events.next())
            .await
            .expect("hang guard: a topic event")
            .expect("the stream stays open")
            .expect("a readable event");
        if let ServerEvent::Event(event) = next
            && let Event::Topic { topic, .. } = *event
            && topic.topic_name == name
        {
            return topic;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_and_consumer_calls_work_under_a_path_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let admin = admin_service(dir.path()).await;
    let (prefixed, _) = start_proxy(admin.url()).await;

    // The admin signs in through the proxy too, and sets the scene.
    let api = AdminApi::sign_in(prefixed.as_str()).await;
    let user = unique("erin");
    api.post(
        "/api/users",
        json!({"username": user, "password": PASSWORD, "role": "user"}),
    )
    .await;
    let topic = unique("sensor");
    let created = api
        .post(
            "/api/topics",
            json!({"name": topic, "partitions": 2, "description": "behind a proxy"}),
        )
        .await;
    let id = created["topic_id"].as_i64().expect("topic id");
    api.post(&format!("/api/topics/{id}/approve"), json!({}))
        .await;

    // The producer: its listing, the event stream, activation.
    let producer = Client::new(prefixed.clone())
        .unwrap()
        .with_producer_key(&Secret::new(PRODUCER_KEY))
        .unwrap();
    let listed = producer.topics().await.unwrap();
    let mine = listed
        .iter()
        .find(|t| t.topic_name == topic)
        .expect("listed");
    assert_eq!(mine.status, TopicStatus::Approved);

    let mut events = Box::pin(producer.events().await.unwrap());
    let greeting = tokio::time::timeout(HANG_GUARD, events.next())
        .await
        .expect("hang guard: the greeting");
    assert!(
        matches!(greeting, Some(Ok(ServerEvent::KeepAlive))),
        "{greeting:?}"
    );
    let generation = Generation {
        generator: 1,
        data_type: DataType::Sensor,
        seed: u64::MAX,
        producer_id: "behind-proxy".into(),
        first_seq: 0,
        started_at: chrono::Utc::now(),
        rate: None,
        profile: Some("ramp:from=1,to=5,over=1m".parse().unwrap()),
        faults: Some("duplicate=0.5".parse().unwrap()),
    };
    assert_eq!(
        producer.activate(&topic, Some(&generation)).await.unwrap(),
        Activation::Active
    );
    let activated = next_topic_event(&mut events, &topic).await;
    assert_eq!(activated.status, TopicStatus::Active);
    assert_eq!(
        producer.activate("never_requested", None).await.unwrap(),
        Activation::Unknown
    );
    // The activation's record, read back from the audit log by an admin.
    let auditor = Client::new(prefixed.clone())
        .unwrap()
        .with_token(api.token());
    assert_eq!(
        auditor.generation_of(&topic).await.unwrap(),
        Some(generation)
    );

    // The consumer: sign-in, active topics, subscriptions.
    let mut consumer = Client::new(prefixed.clone()).unwrap();
    consumer.login(&user, PASSWORD).await.unwrap();
    assert_eq!(consumer.me().await.unwrap().username, user);
    let active = consumer.active_topics().await.unwrap();
    let t = active
        .iter()
        .find(|t| t.topic_name == topic)
        .expect("active");
    assert_eq!(t.partitions, 2);
    consumer.subscribe(&topic).await.unwrap();
    let subs = consumer.subscriptions(&user).await.unwrap();
    assert_eq!(
        subs.iter()
            .map(|s| s.topic_name.as_str())
            .collect::<Vec<_>>(),
        vec![topic.as_str()]
    );
    consumer.unsubscribe(&topic).await.unwrap();
    assert!(consumer.subscriptions(&user).await.unwrap().is_empty());

    // A user's token opens the event stream through the prefix as well.
    let mut user_events = Box::pin(consumer.events().await.unwrap());
    api.post(&format!("/api/topics/{id}/deactivate"), json!({}))
        .await;
    let deactivated = next_topic_event(&mut user_events, &topic).await;
    assert_eq!(deactivated.status, TopicStatus::Inactive);

    admin.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_through_the_proxy_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let admin = admin_service(dir.path()).await;
    let (prefixed, _) = start_proxy(admin.url()).await;

    let mut wrong = Client::new(prefixed.clone()).unwrap();
    let err = wrong.login("admin", "not-the-password").await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED), "{err}");
    assert!(!err.to_string().contains('\n'), "{err}");

    let err = Client::new(prefixed.clone())
        .unwrap()
        .with_producer_key(&Secret::new("not-the-key"))
        .unwrap()
        .topics()
        .await
        .unwrap_err();
    assert!(err.is_unauthorized() && !err.is_transient(), "{err:?}");

    // The host's root is not the API: dropping the prefix reaches the proxy's 404.
    let mut root = prefixed.clone();
    root.set_path("/");
    let err = Client::new(root)
        .unwrap()
        .with_producer_key(&Secret::new(PRODUCER_KEY))
        .unwrap()
        .topics()
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::NOT_FOUND), "{err}");
    assert!(
        err.to_string()
            .starts_with("the admin service answered 404 Not Found to /api/topics"),
        "{err}"
    );

    // Calls that need a credential say so before sending anything.
    let err = Client::new(prefixed).unwrap().me().await.unwrap_err();
    assert_eq!(err.to_string(), "not signed in to the admin service");

    admin.stop().await.unwrap();
}

/// While the service behind the proxy is down the proxy answers 502 with a page; the call
/// is retried with backoff and succeeds once the service is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_gateway_is_retried_until_the_service_answers() {
    let dir = tempfile::tempdir().unwrap();
    let admin = admin_service(dir.path()).await;
    // Port 9 (discard) has no listener on a test machine.
    let (prefixed, upstream) = start_proxy("http://127.0.0.1:9").await;
    let producer = Client::new(prefixed)
        .unwrap()
        .with_producer_key(&Secret::new(PRODUCER_KEY))
        .unwrap();

    let err = producer.topics().await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::BAD_GATEWAY), "{err}");
    assert!(err.is_transient());
    let text = err.to_string();
    assert!(
        text.starts_with(
            "the admin service answered 502 Bad Gateway to /prefix/api/topics: <html>"
        ),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");

    let mut retries = Vec::new();
    let listed = tokio::time::timeout(
        HANG_GUARD,
        retry(
            Backoff::new(Duration::from_millis(10), Duration::from_millis(50)),
            std::future::pending(),
            || producer.topics(),
            |e, _| {
                retries.push(e.status());
                // The service comes back after the first failure.
                *upstream.lock().unwrap() = admin.url().to_owned();
            },
        ),
    )
    .await
    .expect("hang guard: the retried call")
    .unwrap();
    assert!(listed.is_empty(), "{listed:?}");
    assert_eq!(retries, vec![Some(StatusCode::BAD_GATEWAY)]);

    admin.stop().await.unwrap();
}
