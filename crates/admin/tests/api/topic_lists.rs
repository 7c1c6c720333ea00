//! Lists of topics are sent from a copy while no topic changed, checked against the
//! database's own count of topic changes: a change made through this instance or
//! another one on the same database shows in the next list, and an unchanged list
//! answers 304 to its ETag.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use streamhub_store::postgres::testing::fresh_database_url;

use crate::common::*;

struct Listed {
    status: StatusCode,
    etag: String,
    body: String,
}

async fn list(server: &Server, path: &str, if_none_match: Option<&str>) -> Listed {
    let mut req = server.request(Method::GET, path, Some(&server.admin));
    if let Some(etag) = if_none_match {
        req = req.header("If-None-Match", etag);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let etag = res.headers()["etag"].to_str().unwrap().to_owned();
    let body = res.text().await.unwrap();
    Listed { status, etag, body }
}

/// The status `name` has in the list `body`, if it is there.
fn status_in(body: &str, name: &str) -> Option<String> {
    let topics: Vec<Value> = serde_json::from_str(body).unwrap();
    topics.iter().find(|t| t["topic_name"] == name).map(|t| {
        t["status"]
            .as_str()
            .unwrap_or("(in the active list)")
            .to_owned()
    })
}

/// `a` lists, `b` changes (and the other way round): no change may be missed.
async fn every_change_shows_in_the_next_list(a: &Server, b: &Server) {
    const ALL: &str = "/api/topics?limit=100";
    const ACTIVE: &str = "/api/topics/active";
    let first = list(a, ALL, None).await;
    assert_eq!(first.status, StatusCode::OK);

    // Nothing changed: 304 to the ETag, and the same list again without it.
    let unchanged = list(a, ALL, Some(&first.etag)).await;
    assert_eq!(
        (unchanged.status, &unchanged.etag, unchanged.body.as_str()),
        (StatusCode::NOT_MODIFIED, &first.etag, "")
    );
    assert_eq!(list(a, ALL, None).await.body, first.body);

    // Requested on B, listed on A: no event passes between them on SQLite.
    let id = b.topic("made_elsewhere").await;
    let created = list(a, ALL, Some(&first.etag)).await;
    assert_eq!(created.status, StatusCode::OK);
    assert_ne!(created.etag, first.etag);
    assert_eq!(
        status_in(&created.body, "made_elsewhere").as_deref(),
        Some("pending")
    );

    let (status, body) = b
        .post_empty(&format!("/api/topics/{id}/approve"), &b.admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let approved = list(a, ALL, Some(&created.etag)).await;
    assert_eq!(
        status_in(&approved.body, "made_elsewhere").as_deref(),
        Some("approved")
    );

    let active_before = list(a, ACTIVE, None).await;
    assert_eq!(status_in(&active_before.body, "made_elsewhere"), None);
    let (status, body) = b.activate("made_elsewhere").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let active = list(a, ACTIVE, Some(&active_before.etag)).await;
    assert_eq!(active.status, StatusCode::OK);
    assert!(status_in(&active.body, "made_elsewhere").is_some());

    // And the other way round: A deactivates, B's active list drops it.
    let on_b = list(b, ACTIVE, None).await;
    assert!(status_in(&on_b.body, "made_elsewhere").is_some());
    let (status, body) = a
        .post_empty(&format!("/api/topics/{id}/deactivate"), &a.admin)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let after = list(b, ACTIVE, Some(&on_b.etag)).await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(status_in(&after.body, "made_elsewhere"), None);
}

#[tokio::test]
async fn lists_follow_changes_of_another_process_on_the_same_sqlite_file() {
    let a = Server::start().await;
    let b = Server::start_on(config(&a.dir).database.expose()).await;
    every_change_shows_in_the_next_list(&a, &b).await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL: set STREAMHUB_TEST_POSTGRES (scripts/test does)"]
async fn lists_follow_changes_of_another_instance_on_postgres() {
    let url = fresh_database_url().await.unwrap_or_else(|e| panic!("{e}"));
    let a = Server::start_on(&url).await;
    let b = Server::start_on(&url).await;
    every_change_shows_in_the_next_list(&a, &b).await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn an_etag_of_another_list_or_a_malformed_one_gets_the_list() {
    let server = Server::start().await;
    server.topic("listed").await;
    let all = list(&server, "/api/topics", None).await;
    let pending = list(&server, "/api/topics?status=pending", None).await;
    // Both lists are current: the ETag names the state of the topics, not the page.
    assert_eq!(
        list(&server, "/api/topics?status=pending", Some(&all.etag))
            .await
            .status,
        StatusCode::NOT_MODIFIED
    );
    for stale in ["\"0.0\"", "garbage", "W/", "\"", &pending.etag[1..]] {
        let got = list(&server, "/api/topics?status=pending", Some(stale)).await;
        assert_eq!(got.status, StatusCode::OK, "If-None-Match: {stale}");
        assert_eq!(got.body, pending.body);
    }
    server.stop().await;
}
