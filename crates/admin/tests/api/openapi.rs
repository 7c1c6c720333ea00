//! `GET /api/openapi.json`: a valid OpenAPI 3.1 document that lists every route.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{Server, call};

pub const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `(METHOD, path)` of every operation of a document.
pub fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths is an object") {
        for method in METHODS {
            if item.get(method).is_some() {
                out.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

pub async fn fetch(server: &Server) -> Value {
    let (status, doc) = call(server.request(Method::GET, "/api/openapi.json", None)).await;
    assert_eq!(status, StatusCode::OK, "{doc}");
    doc
}

fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    doc.pointer(pointer)
}

fn collect_refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.insert(v.as_str().expect("$ref is a string").to_owned());
                } else {
                    collect_refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_public_and_valid_openapi_3_1() {
    let server = Server::start().await;
    let doc = fetch(&server).await;
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());

    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    for name in ["bearer", "session_cookie", "csrf_token", "producer_key"] {
        assert!(schemes.contains_key(name), "security scheme {name} missing");
    }
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session_cookie"]["in"], "cookie");
    assert_eq!(schemes["session_cookie"]["name"], "streamhub_session");
    assert_eq!(schemes["producer_key"]["name"], "X-Producer-Key");
    assert_eq!(schemes["csrf_token"]["name"], "X-CSRF-Token");

    let mut refs = BTreeSet::new();
    collect_refs(&doc, &mut refs);
    for r in &refs {
        assert!(resolve(&doc, r).is_some(), "dangling $ref {r}");
    }

    let mut operation_ids = BTreeSet::new();
    let ops = operations(&doc);
    assert!(ops.len() >= 29, "only {} operations", ops.len());
    for (method, path) in &ops {
        assert!(path.starts_with("/api/"), "{path}");
        let op = &doc["paths"][path][method.to_lowercase()];
        let id = op["operationId"].as_str().expect("operationId");
        assert!(
            operation_ids.insert(id.to_owned()),
            "duplicate operationId {id}"
        );
        // Every `{param}` of the path is declared as a path parameter.
        for name in path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        {
            let declared = op["parameters"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true)
            });
            assert!(
                declared,
                "{method} {path}: path parameter {name} not declared"
            );
        }
        let responses = op["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path}: no 2xx"
        );
        for (status, response) in responses {
            assert!(
                response["description"].is_string(),
                "{method} {path} {status}"
            );
            // Errors are 4xx and 5xx; a 304 has no body at all.
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/ErrorBody",
                    "{method} {path} {status}: errors are ErrorBody"
                );
            }
        }
        assert!(
            responses.contains_key("500"),
            "{method} {path}: 500 undocumented"
        );
        match op.get("security").and_then(Value::as_array) {
            Some(requirements) => {
                assert!(responses.contains_key("401"), "{method} {path}: 401");
                for requirement in requirements {
                    for name in requirement.as_object().unwrap().keys() {
                        assert!(schemes.contains_key(name), "{method} {path}: {name}");
                    }
                }
            }
            None => assert!(
                [
                    "/api/health",
                    "/api/openapi.json",
                    "/api/auth/login",
                    "/api/schemas",
                    "/api/schemas/{data_type}"
                ]
                .contains(&path.as_str()),
                "{method} {path} has no security requirement"
            ),
        }
        if op.get("requestBody").is_some() {
            for status in ["400", "413", "415", "422"] {
                assert!(responses.contains_key(status), "{method} {path}: {status}");
            }
        }
    }

    // Server-sent events are described as such.
    for path in ["/api/events", "/api/topics/{id}/tail"] {
        let content = &doc["paths"][path]["get"]["responses"]["200"]["content"];
        let events = content["text/event-stream"]["schema"]["oneOf"]
            .as_array()
            .unwrap_or_else(|| panic!("{path}: {content}"));
        for event in events {
            assert!(event["properties"]["event"]["const"].is_string(), "{event}");
            assert_eq!(
                event["properties"]["data"]["contentMediaType"],
                "application/json"
            );
        }
    }
    // Mass assignment is refused by the contract too: request bodies allow no extra field.
    for name in [
        "CreateTopic",
        "CreateUser",
        "SubscriptionRequest",
        "RejectTopic",
    ] {
        assert_eq!(
            doc["components"]["schemas"][name]["additionalProperties"], false,
            "{name}"
        );
    }
    server.stop().await;
}

/// The document and the router come from one list; this checks the other direction at
/// run time: every documented operation is routed (it does not answer "no such
/// endpoint" or 405).
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let server = Server::start().await;
    let doc = fetch(&server).await;
    let ops = operations(&doc);
    for (method, path) in &ops {
        let concrete = path
            .replace("{id}", "1")
            .replace("{username}", "nobody")
            .replace("{data_type}", "sensor");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let res = server
            .request(method.clone(), &concrete, None)
            .send()
            .await
            .unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(
            !(status == StatusCode::NOT_FOUND && text.contains("no such endpoint")),
            "{method} {path} is documented but not routed"
        );
    }
    // And an undocumented path under /api is not routed either.
    let (status, _) = call(server.request(Method::GET, "/api/not-an-endpoint", None)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

/// The `/api` routes are registered only through `routes!(...)`, which adds each one to
/// the document: a plain `.route(...)` there would serve an undocumented endpoint.
#[test]
fn api_routes_are_registered_only_with_their_documentation() {
    let root = env!("CARGO_MANIFEST_DIR");
    let lib = std::fs::read_to_string(format!("{root}/src/lib.rs")).unwrap();
    let start = lib.find("fn api_routes()").expect("api_routes in lib.rs");
    let end = start + lib[start..].find("\n}\n").unwrap();
    assert!(
        !lib[start..end].contains(".route("),
        "plain .route( in api_routes"
    );
    let metrics = std::fs::read_to_string(format!("{root}/src/figures/http.rs")).unwrap();
    let start = metrics.find("pub fn routes()").expect("figures::routes");
    let end = start + metrics[start..].find("\n}\n").unwrap();
    assert!(
        !metrics[start..end].contains(".route("),
        "plain .route( in figures::routes"
    );
}
