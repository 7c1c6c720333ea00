//! Who may call what: one table of every endpoint × {anonymous, user, other user,
//! producer, admin} → the expected status. The endpoints come from the OpenAPI document,
//! so an endpoint without a row here fails the test.
//!
//! "user" is alice acting on her own objects; "other user" is bob acting on alice's
//! (her subscriptions, her account, topics in her name). Operations that change state
//! get fresh objects for each caller, so every cell sees the same starting point.
//!
//! A refused change must change nothing: after each refused request that could change
//! state, every topic, subscription, user and audit row reads as before it. The table runs
//! twice: with bearer tokens, and as the dashboard calls, with the session cookie and its
//! CSRF token.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::common::{PRODUCER_KEY, Server, call, json_of};

/// How the signed-in callers prove who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Bearer,
    /// The dashboard's way: the cookies set at sign-in, and `X-CSRF-Token` on changes.
    Session,
}

/// A signed-in caller's credential.
#[derive(Clone, Debug)]
enum Credential {
    Bearer(String),
    /// The `Cookie` header of the cookies set at sign-in, and the CSRF token among them.
    Session {
        cookies: String,
        csrf: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    Anonymous,
    User,
    OtherUser,
    Producer,
    Admin,
}

const WHO: [Who; 5] = [
    Who::Anonymous,
    Who::User,
    Who::OtherUser,
    Who::Producer,
    Who::Admin,
];

/// `(method, path as documented, [anonymous, user, other user, producer, admin])`.
#[rustfmt::skip]
const MATRIX: &[(&str, &str, [u16; 5])] = &[
    ("GET",    "/api/health",                      [200, 200, 200, 200, 200]),
    ("GET",    "/api/openapi.json",                [200, 200, 200, 200, 200]),
    ("POST",   "/api/auth/login",                  [200, 200, 200, 200, 200]),
    ("POST",   "/api/auth/logout",                 [401, 200, 200, 200, 200]),
    ("GET",    "/api/auth/me",                     [401, 200, 200, 200, 200]),
    ("GET",    "/api/topics",                      [401, 200, 200, 200, 200]),
    // Other user: a request in alice's name.
    ("POST",   "/api/topics",                      [401, 201, 403, 201, 201]),
    ("GET",    "/api/topics/active",               [401, 200, 200, 200, 200]),
    ("POST",   "/api/topics/activate_by_name",     [401, 403, 403, 200, 200]),
    ("POST",   "/api/topics/provisioning_failure", [401, 403, 403, 200, 200]),
    ("GET",    "/api/topics/{id}",                 [401, 200, 200, 200, 200]),
    ("DELETE", "/api/topics/{id}",                 [401, 403, 403, 403, 200]),
    ("POST",   "/api/topics/{id}/approve",         [401, 403, 403, 403, 200]),
    ("POST",   "/api/topics/{id}/reject",          [401, 403, 403, 403, 200]),
    ("POST",   "/api/topics/{id}/deactivate",      [401, 403, 403, 403, 200]),
    ("POST",   "/api/topics/{id}/reactivate",      [401, 403, 403, 403, 200]),
    // A topic alice subscribes to: bob does not.
    ("GET",    "/api/topics/{id}/tail",            [401, 200, 403, 403, 200]),
    // Alice's subscriptions: `?user_id=alice`, `{"user_id": "alice", ...}`.
    ("GET",    "/api/subscriptions",               [401, 200, 403, 403, 200]),
    ("POST",   "/api/subscriptions",               [401, 201, 403, 403, 201]),
    ("DELETE", "/api/subscriptions",               [401, 200, 403, 403, 200]),
    ("GET",    "/api/stats",                       [401, 200, 200, 200, 200]),
    ("GET",    "/api/audit",                       [401, 403, 403, 403, 200]),
    ("GET",    "/api/users",                       [401, 403, 403, 403, 200]),
    ("POST",   "/api/users",                       [401, 403, 403, 403, 201]),
    ("DELETE", "/api/users",                       [401, 403, 403, 403, 200]),
    // User and other user try to delete alice; the admin a fresh user.
    ("DELETE", "/api/users/{username}",            [401, 403, 403, 403, 200]),
    ("GET",    "/api/events",                      [401, 200, 200, 200, 200]),
    ("GET",    "/api/metrics/topics",              [401, 200, 200, 200, 200]),
    ("GET",    "/api/metrics/rates",               [401, 200, 200, 200, 200]),
    ("GET",    "/api/metrics/lag",                 [401, 200, 200, 403, 200]),
    ("GET",    "/api/metrics/lag/history",         [401, 200, 200, 403, 200]),
    // Public, as the OpenAPI document that embeds the same schemas is.
    ("GET",    "/api/schemas",                     [200, 200, 200, 200, 200]),
    ("GET",    "/api/schemas/{data_type}",         [200, 200, 200, 200, 200]),
    // Alice's Kafka access; this service runs with Kafka security off, so whoever may ask
    // for credentials is told 409 and gets none.
    ("GET",    "/api/users/{username}/kafka-access",      [401, 200, 403, 403, 200]),
    ("POST",   "/api/users/{username}/kafka-credentials", [401, 409, 403, 403, 409]),
    ("GET",    "/api/topics/{id}/kafka-access",           [401, 403, 403, 403, 200]),
];

const ALICE_PASSWORD: &str = crate::common::USER_PASSWORD;

struct Fixture {
    server: Server,
    alice: String,
    bob: String,
    /// A pending topic alice requested.
    alice_topic: i64,
    next: AtomicUsize,
    /// Dashboard sessions of alice, bob and the admin.
    sessions: [Credential; 3],
}

impl Fixture {
    async fn new() -> Fixture {
        let server = Server::start().await;
        let alice = server.user("alice", "user").await;
        let bob = server.user("bob", "user").await;
        let (status, body) = server
            .post("/api/topics", &alice, json!({"name": "matrix.alice"}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let alice_topic = body["topic_id"].as_i64().unwrap();
        let sessions = [
            session(&server, "alice", ALICE_PASSWORD).await,
            session(&server, "bob", crate::common::USER_PASSWORD).await,
            session(&server, "admin", crate::common::ADMIN_PASSWORD).await,
        ];
        Fixture {
            server,
            alice,
            bob,
            alice_topic,
            next: AtomicUsize::new(0),
            sessions,
        }
    }

    fn unique(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.next.fetch_add(1, Ordering::Relaxed))
    }

    fn credential(&self, who: Who, via: Via) -> Option<Credential> {
        let i = match who {
            Who::User => 0,
            Who::OtherUser => 1,
            Who::Admin => 2,
            Who::Anonymous | Who::Producer => return None,
        };
        Some(match via {
            Via::Bearer => {
                Credential::Bearer([&self.alice, &self.bob, &self.server.admin][i].clone())
            }
            Via::Session => self.sessions[i].clone(),
        })
    }

    /// A credential of its own for `who`, for a request that ends it (sign-out).
    async fn fresh_credential(&self, who: Who, via: Via) -> Option<Credential> {
        let (username, password) = match who {
            Who::User => ("alice", ALICE_PASSWORD),
            Who::OtherUser => ("bob", crate::common::USER_PASSWORD),
            Who::Admin => ("admin", crate::common::ADMIN_PASSWORD),
            Who::Anonymous | Who::Producer => return None,
        };
        Some(match via {
            Via::Bearer => Credential::Bearer(self.server.login(username, password).await),
            Via::Session => session(&self.server, username, password).await,
        })
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        who: Who,
        credential: Option<&Credential>,
    ) -> RequestBuilder {
        let changes = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
        let req = self.server.request(method, path, None);
        let req = match credential {
            Some(Credential::Bearer(token)) => req.bearer_auth(token),
            Some(Credential::Session { cookies, csrf }) if changes => {
                req.header("Cookie", cookies).header("X-CSRF-Token", csrf)
            }
            Some(Credential::Session { cookies, .. }) => req.header("Cookie", cookies),
            None => req,
        };
        if who == Who::Producer {
            req.header("X-Producer-Key", PRODUCER_KEY)
        } else {
            req
        }
    }

    async fn admin_post(&self, path: &str) {
        let (status, body) = self.server.post_empty(path, &self.server.admin).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
    }

    async fn pending_topic(&self) -> (i64, String) {
        let name = self.unique("matrix.topic");
        (self.server.topic(&name).await, name)
    }

    async fn approved_topic(&self) -> (i64, String) {
        let (id, name) = self.pending_topic().await;
        self.admin_post(&format!("/api/topics/{id}/approve")).await;
        (id, name)
    }

    async fn active_topic(&self) -> (i64, String) {
        let name = self.unique("matrix.active");
        (self.server.active_topic(&name).await, name)
    }

    async fn alice_subscribed_topic(&self) -> (i64, String) {
        let (id, name) = self.active_topic().await;
        let (status, body) = self
            .server
            .post(
                "/api/subscriptions",
                &self.alice,
                json!({"topic_name": name}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (id, name)
    }

    async fn fresh_user(&self) -> String {
        let name = self.unique("matrix-user");
        self.server.user(&name, "user").await;
        name
    }

    /// The concrete request of a table cell: path, body, and whether the caller needs a
    /// credential of its own (sign-out ends the one it uses).
    async fn prepare(&self, method: &str, path: &str, who: Who) -> (String, Option<Value>, bool) {
        let admin = who == Who::Admin;
        match (method, path) {
            ("GET", "/api/health" | "/api/openapi.json" | "/api/auth/me" | "/api/topics")
            | ("GET", "/api/topics/active" | "/api/stats" | "/api/audit" | "/api/users")
            | ("GET", "/api/events" | "/api/metrics/topics" | "/api/metrics/rates")
            | ("GET", "/api/metrics/lag" | "/api/metrics/lag/history" | "/api/schemas") => {
                (path.into(), None, false)
            }
            ("GET", "/api/schemas/{data_type}") => ("/api/schemas/payment".into(), None, false),
            ("POST", "/api/auth/login") => (
                path.into(),
                Some(json!({"username": "alice", "password": ALICE_PASSWORD})),
                false,
            ),
            ("POST", "/api/auth/logout") => (path.into(), None, true),
            ("POST", "/api/topics") => {
                let mut body = json!({"name": self.unique("matrix.request")});
                if matches!(who, Who::User | Who::OtherUser | Who::Admin) {
                    body["created_by"] = json!("alice");
                }
                (path.into(), Some(body), false)
            }
            ("POST", "/api/topics/activate_by_name") => {
                let (_, name) = self.approved_topic().await;
                (path.into(), Some(json!({"topic_name": name})), false)
            }
            ("POST", "/api/topics/provisioning_failure") => {
                let (_, name) = self.approved_topic().await;
                let body = json!({"topic_name": name, "error": "Kafka refused it"});
                (path.into(), Some(body), false)
            }
            ("GET", "/api/topics/{id}") | ("GET", "/api/topics/{id}/kafka-access") => (
                path.replace("{id}", &self.alice_topic.to_string()),
                None,
                false,
            ),
            ("GET", "/api/users/{username}/kafka-access")
            | ("POST", "/api/users/{username}/kafka-credentials") => {
                (path.replace("{username}", "alice"), None, false)
            }
            ("DELETE", "/api/topics/{id}") | ("POST", "/api/topics/{id}/approve") => {
                let (id, _) = self.pending_topic().await;
                (path.replace("{id}", &id.to_string()), None, false)
            }
            ("POST", "/api/topics/{id}/reject") => {
                let (id, _) = self.pending_topic().await;
                let body = json!({"reason": "not needed"});
                (path.replace("{id}", &id.to_string()), Some(body), false)
            }
            ("POST", "/api/topics/{id}/deactivate") => {
                let (id, _) = self.active_topic().await;
                (path.replace("{id}", &id.to_string()), None, false)
            }
            ("GET", "/api/topics/{id}/tail") => {
                let (id, _) = self.alice_subscribed_topic().await;
                (path.replace("{id}", &id.to_string()), None, false)
            }
            ("POST", "/api/topics/{id}/reactivate") => {
                let (id, _) = self.active_topic().await;
                self.admin_post(&format!("/api/topics/{id}/deactivate"))
                    .await;
                (path.replace("{id}", &id.to_string()), None, false)
            }
            ("GET", "/api/subscriptions") => {
                ("/api/subscriptions?user_id=alice".into(), None, false)
            }
            ("POST", "/api/subscriptions") => {
                let (_, name) = self.active_topic().await;
                let body = json!({"user_id": "alice", "topic_name": name});
                (path.into(), Some(body), false)
            }
            ("DELETE", "/api/subscriptions") => {
                let (_, name) = self.alice_subscribed_topic().await;
                let body = json!({"user_id": "alice", "topic_name": name});
                (path.into(), Some(body), false)
            }
            ("POST", "/api/users") => {
                let body = json!({
                    "username": self.unique("matrix-new"),
                    "password": crate::common::USER_PASSWORD,
                    "role": "user",
                });
                (path.into(), Some(body), false)
            }
            ("DELETE", "/api/users") => {
                let username = if admin {
                    self.fresh_user().await
                } else {
                    "alice".into()
                };
                (path.into(), Some(json!({"username": username})), false)
            }
            ("DELETE", "/api/users/{username}") => {
                let username = if admin {
                    self.fresh_user().await
                } else {
                    "alice".into()
                };
                (format!("/api/users/{username}"), None, false)
            }
            _ => panic!("no request for {method} {path}: add it to prepare()"),
        }
    }

    /// Sends one cell's request and returns its status; event streams are closed as
    /// soon as their headers arrive. A refused request that could change state must
    /// leave everything as it was: that is checked here too.
    async fn check(&self, method: &str, path: &str, who: Who, via: Via) -> Result<u16, String> {
        let (concrete, body, fresh) = self.prepare(method, path, who).await;
        let credential = if fresh {
            self.fresh_credential(who, via).await
        } else {
            self.credential(who, via)
        };
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let changes = m != Method::GET;
        let before = if changes {
            Some(self.everything().await)
        } else {
            None
        };
        let mut req = self.request(m, &concrete, who, credential.as_ref());
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let is_stream = res
            .headers()
            .get("content-type")
            .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
        let status = if is_stream {
            res.status()
        } else {
            // Every other answer is JSON, errors as {"error","code"}.
            json_of(res).await.0
        };
        if let Some(before) = before
            && status.is_client_error()
        {
            let after = self.everything().await;
            if after != before {
                return Err(format!(
                    "refused with {status}, yet state changed:\nbefore {before}\nafter  {after}"
                ));
            }
        }
        Ok(status.as_u16())
    }

    /// Every topic (deleted ones too), subscription, user and audit row, as the admin
    /// reads them.
    async fn everything(&self) -> Value {
        let mut all = serde_json::Map::new();
        for path in [
            "/api/topics?limit=1000",
            "/api/topics?status=deleted&limit=1000",
            "/api/subscriptions?limit=1000",
            "/api/users?limit=1000",
            "/api/audit?limit=1000",
        ] {
            let (status, body) = self.server.get(path, &self.server.admin).await;
            assert_eq!(status, StatusCode::OK, "{path}: {body}");
            all.insert(path.to_owned(), body);
        }
        Value::Object(all)
    }
}

/// Signs in and returns the cookies the answer sets, as a browser would send them back.
async fn session(server: &Server, username: &str, password: &str) -> Credential {
    let res = server
        .request(Method::POST, "/api/auth/login", None)
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "sign-in of {username}");
    let pairs: Vec<(String, String)> = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next()?.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let csrf = pairs
        .iter()
        .find(|(k, _)| k == "streamhub_csrf")
        .map(|(_, v)| v.clone())
        .expect("sign-in sets the CSRF cookie");
    let cookies = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    Credential::Session { cookies, csrf }
}

#[tokio::test]
async fn every_endpoint_answers_each_role_as_the_table_says() {
    every_endpoint_answers_each_role_as_the_table_says_via(Via::Bearer).await;
}

#[tokio::test]
async fn every_endpoint_answers_each_role_as_the_table_says_with_the_dashboards_session() {
    every_endpoint_answers_each_role_as_the_table_says_via(Via::Session).await;
}

async fn every_endpoint_answers_each_role_as_the_table_says_via(via: Via) {
    let fx = Fixture::new().await;
    let doc = crate::openapi::fetch(&fx.server).await;
    let documented: BTreeSet<(String, String)> =
        crate::openapi::operations(&doc).into_iter().collect();
    let tabled: BTreeSet<(String, String)> = MATRIX
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(tabled.len(), MATRIX.len(), "a row appears twice");
    let missing: Vec<_> = documented.difference(&tabled).collect();
    assert!(
        missing.is_empty(),
        "endpoints without a row in MATRIX: {missing:?}"
    );
    let extra: Vec<_> = tabled.difference(&documented).collect();
    assert!(
        extra.is_empty(),
        "rows for undocumented endpoints: {extra:?}"
    );

    let mut wrong = Vec::new();
    let mut checked = 0;
    for (method, path, expected) in MATRIX {
        for (who, want) in WHO.iter().zip(expected) {
            checked += 1;
            match fx.check(method, path, *who, via).await {
                Ok(got) if got == *want => {}
                Ok(got) => wrong.push(format!(
                    "{method} {path} as {who:?} via {via:?}: {got}, expected {want}"
                )),
                Err(e) => wrong.push(format!("{method} {path} as {who:?} via {via:?}: {e}")),
            }
        }
    }
    println!(
        "authorization matrix via {via:?}: {} endpoints x {} roles = {checked} checks",
        MATRIX.len(),
        WHO.len()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Sign-outs above ended only the tokens and sessions they used.
    for who in [Who::User, Who::OtherUser, Who::Admin] {
        let credential = fx.credential(who, via);
        let res = fx
            .request(Method::GET, "/api/auth/me", who, credential.as_ref())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{who:?} via {via:?}");
    }
    fx.server.stop().await;
}

#[tokio::test]
async fn a_user_sees_and_changes_only_their_own_subscriptions() {
    let fx = Fixture::new().await;
    let (_, topic) = fx.alice_subscribed_topic().await;
    // Bob without a filter sees his own (none), not alice's.
    let (status, list) = fx.server.get("/api/subscriptions", &fx.bob).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list, json!([]), "bob sees others' subscriptions");
    // Bob cannot remove or add alice's.
    let body = json!({"user_id": "alice", "topic_name": topic});
    let (status, _) = fx
        .server
        .delete("/api/subscriptions", &fx.bob, Some(body.clone()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, list) = fx
        .server
        .get("/api/subscriptions?user_id=alice", &fx.alice)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    // Bob's sign-out ends bob's token, not alice's.
    let (status, _) = fx.server.post_empty("/api/auth/logout", &fx.bob).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = fx.server.get("/api/auth/me", &fx.bob).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = fx.server.get("/api/auth/me", &fx.alice).await;
    assert_eq!(status, StatusCode::OK);
    fx.server.stop().await;
}

#[tokio::test]
async fn extra_fields_cannot_set_a_role_or_a_status() {
    let fx = Fixture::new().await;
    let s = &fx.server;
    let alice = fx.alice.as_str();

    // A topic request that tries to skip the lifecycle or choose its id.
    for extra in [
        json!({"status": "active"}),
        json!({"topic_id": 1}),
        json!({"approved_at": "2026-01-01T00:00:00Z"}),
    ] {
        let mut body = json!({"name": "matrix.sneaky"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let (status, answer) = s.post("/api/topics", alice, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
    }
    let (_, topics) = s.get("/api/topics", alice).await;
    assert!(
        !topics.to_string().contains("matrix.sneaky"),
        "a refused request created a topic"
    );

    // A rejection reason cannot carry a status either.
    let (status, _) = s
        .post(
            &format!("/api/topics/{}/reject", fx.alice_topic),
            &s.admin,
            json!({"reason": "no", "status": "active"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // A user cannot make themself an admin: not by creating an account, not by
    // signing in with a role, not by subscribing with one.
    let (status, _) = s
        .post(
            "/api/users",
            alice,
            json!({"username": "alice2", "password": crate::common::USER_PASSWORD, "role": "admin"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        s.request(Method::POST, "/api/auth/login", None)
            .json(&json!({
                "username": "alice", "password": ALICE_PASSWORD, "role": "admin"
            })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let topic = fx.active_topic().await.1;
    let (status, _) = s
        .post(
            "/api/subscriptions",
            alice,
            json!({"topic_name": topic, "role": "admin", "status": "inactive"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (_, me) = s.get("/api/auth/me", alice).await;
    assert_eq!(me["role"], "user");
    let (_, topic) = s
        .get(&format!("/api/topics/{}", fx.alice_topic), alice)
        .await;
    assert_eq!(topic["status"], "pending");
    fx.server.stop().await;
}

#[tokio::test]
async fn a_user_tails_only_active_topics_they_subscribe_to() {
    let fx = Fixture::new().await;
    let s = &fx.server;
    let tail = |id: i64, token: &str| {
        let req = s.request(Method::GET, &format!("/api/topics/{id}/tail"), Some(token));
        async move {
            let res = req.send().await.unwrap();
            let status = res.status();
            if status.is_success() {
                return (status, Value::Null);
            }
            json_of(res).await
        }
    };
    let (subscribed, _) = fx.alice_subscribed_topic().await;
    let (other, _) = fx.active_topic().await;

    assert_eq!(tail(subscribed, &fx.alice).await.0, StatusCode::OK);
    let (status, body) = tail(other, &fx.alice).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("not subscribed"),
        "{body}"
    );
    assert_eq!(tail(subscribed, &fx.bob).await.0, StatusCode::FORBIDDEN);
    assert_eq!(tail(other, &s.admin).await.0, StatusCode::OK);

    // A deactivated topic: still readable by admins, no longer by its subscribers.
    fx.admin_post(&format!("/api/topics/{subscribed}/deactivate"))
        .await;
    let (status, body) = tail(subscribed, &fx.alice).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("inactive"),
        "{body}"
    );
    assert_eq!(tail(subscribed, &s.admin).await.0, StatusCode::OK);

    // Every principal may open the event stream; the producer may not tail.
    for token in [&fx.alice, &fx.bob, &s.admin] {
        let res = s
            .request(Method::GET, "/api/events", Some(token))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    let res = s
        .request(Method::GET, &format!("/api/topics/{other}/tail"), None)
        .header("X-Producer-Key", PRODUCER_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(res).await.0, StatusCode::FORBIDDEN);
    fx.server.stop().await;
}
