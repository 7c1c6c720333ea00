//! The OpenAPI 3.1 document of `/api`, generated from the handlers' `#[utoipa::path]`
//! annotations and the same route list that serves them ([`crate::api_routes`]), so an
//! endpoint cannot exist without appearing here. Served at `GET /api/openapi.json`.
//!
//! Security schemes: `bearer` (`Authorization: Bearer <token>` from `POST /api/auth/login`),
//! `session_cookie` (the dashboard's cookie; writes also need `csrf_token`, the
//! `X-CSRF-Token` header equal to the `streamhub_csrf` cookie) and `producer_key`
//! (`X-Producer-Key: <PRODUCER_SECRET>`).

use std::sync::OnceLock;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use streamhub_model::api::ErrorBody;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi as _, PartialSchema, ToSchema};

use crate::auth::{CSRF_HEADER, PRODUCER_KEY_HEADER, SESSION_COOKIE};

/// Every path of the document starts with this: the routes are nested under it.
pub const API_PREFIX: &str = "/api";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "streamhub admin API",
        description = "Topic lifecycle, subscriptions, users, audit log, statistics and live \
            events of streamhub. Every error answers `{\"error\": \"...\", \"code\": \"...\"}`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody, streamhub_model::schema::SchemaError)),
    tags(
        (name = "health", description = "Liveness and this document; no authentication"),
        (name = "auth", description = "Sign-in, sign-out and who is calling"),
        (name = "topics", description = "Topic requests and the lifecycle"),
        (name = "subscriptions", description = "Which user reads which topic"),
        (name = "users", description = "Accounts (admin)"),
        (name = "audit", description = "Who did what (admin)"),
        (name = "metrics", description = "Statistics and Kafka figures"),
        (name = "events", description = "Server-sent events"),
        (name = "schemas", description = "JSON Schemas of the data types' payloads; no authentication"),
    )
)]
struct Base;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A token from POST /api/auth/login"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The dashboard's session, set by POST /api/auth/login; \
                 requests other than GET also need csrf_token",
            ))),
        );
        components.add_security_scheme(
            "csrf_token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "The value of the streamhub_csrf cookie, with session_cookie on writes",
            ))),
        );
        components.add_security_scheme(
            "producer_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Producer-Key",
                "PRODUCER_SECRET; acts as the producer role",
            ))),
        );
        debug_assert_eq!(CSRF_HEADER, "x-csrf-token");
        debug_assert_eq!(PRODUCER_KEY_HEADER, "x-producer-key");
    }
}

/// The document's skeleton: info, tags, security schemes. Paths come from the routes.
pub fn base() -> OpenApi {
    Base::openapi()
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                Content::new(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    ErrorBody::name(),
                )))),
            )
            .build(),
    )
}

fn add_response(op: &mut Operation, status: &str, description: &str) {
    op.responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| error_response(description));
}

/// Adds what every handler answers through the shared extractors and middleware, so
/// the annotations list only what the handler itself decides:
/// - JSON bodies (`error::Json`): 400 malformed, 413 too large, 415 not JSON, 422 invalid;
/// - path and query parameters: 400 when they do not parse;
/// - authenticated operations: 401; writes also 403 (a cookie without the CSRF header);
/// - every operation: 500 with the same error body, details only in the log.
///
/// Then prefixes operation ids with their tag and every path with [`API_PREFIX`].
pub fn finish(mut doc: OpenApi) -> OpenApi {
    let paths = std::mem::take(&mut doc.paths.paths);
    for (path, mut item) in paths {
        for (is_get, op) in [
            (true, item.get.as_mut()),
            (false, item.post.as_mut()),
            (false, item.put.as_mut()),
            (false, item.patch.as_mut()),
            (false, item.delete.as_mut()),
        ] {
            let Some(op) = op else { continue };
            // Handlers of different resources share names (`list`, `delete`): the tag
            // makes the operation ids unique.
            if let (Some(tag), Some(id)) =
                (op.tags.as_ref().and_then(|t| t.first()), &op.operation_id)
                && !id.starts_with(tag.as_str())
            {
                op.operation_id = Some(format!("{tag}_{id}"));
            }
            if op.request_body.is_some() {
                add_response(op, "400", "Malformed JSON or a value of the wrong type");
                add_response(op, "413", "The body is larger than 64 KiB");
                add_response(op, "415", "The body is not JSON");
                add_response(op, "422", "A missing, unknown or invalid field");
            }
            if op.parameters.as_ref().is_some_and(|p| !p.is_empty()) {
                add_response(op, "400", "A path or query parameter does not parse");
            }
            if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
                add_response(op, "401", "No credential, or an unknown or expired one");
                if !is_get {
                    add_response(
                        op,
                        "403",
                        "A session cookie without the X-CSRF-Token of that session, or \
                         with an Origin other than the host the request was sent to",
                    );
                }
            }
            add_response(
                op,
                "408",
                "The answer did not start within the request timeout (--request-timeout)",
            );
            add_response(
                op,
                "500",
                "Internal error; the admin service log has the details",
            );
        }
        doc.paths.paths.insert(format!("{API_PREFIX}{path}"), item);
    }
    doc
}

/// The events each server-sent event stream sends: `(path, [(event name, data schema)])`.
/// The handlers' annotations say `text/event-stream`; this says what is inside, as
/// OpenAPI 3.1 describes a stream: one schema per event (`event`, `data`, ...), with
/// `data` a JSON text (`contentMediaType`) of the given `contentSchema`.
fn sse_events(path: &str) -> Option<Vec<(&'static str, Value)>> {
    let schema = |name: &str| json!({"$ref": format!("#/components/schemas/{name}")});
    match path {
        "/api/events" => Some(vec![
            ("topic", schema("Event")),
            ("subscription", schema("Event")),
            (
                "resync",
                json!({
                    "type": "object",
                    "description": "Events were missed; reload. `missed`: events dropped because the client fell behind; `reason`: why else (this instance may have missed other instances' events).",
                    "properties": {
                        "missed": {"type": "integer", "minimum": 0},
                        "reason": {"type": "string"},
                    },
                }),
            ),
        ]),
        "/api/topics/{id}/tail" => Some(vec![
            ("status", schema("TailStatus")),
            (
                "message",
                json!({
                    "type": "object",
                    "required": ["partition", "offset", "value", "schema_errors"],
                    "properties": {
                        "partition": {"type": "integer", "format": "int32"},
                        "offset": {"type": "integer", "format": "int64"},
                        "timestamp": {"type": ["string", "null"], "format": "date-time"},
                        "key": {"type": ["string", "null"]},
                        "value": {"description": "The message's JSON value; other values as a JSON string"},
                        "schema_errors": {
                            "type": "array",
                            "description": "Where the value breaks the payload schema of its envelope's data type (GET /api/schemas/{data_type}); a value that is no streamhub envelope is one error with an empty path. Empty when the value is valid.",
                            "items": {"$ref": "#/components/schemas/SchemaError"},
                        },
                    },
                }),
            ),
        ]),
        _ => None,
    }
}

/// Replaces each event stream's schema by the schema of its events. Panics on a stream
/// that [`sse_events`] does not describe, which the document's test catches.
fn describe_event_streams(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for op in item.values_mut() {
            let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                continue;
            };
            for response in responses.values_mut() {
                let Some(media) = response.pointer_mut("/content/text~1event-stream") else {
                    continue;
                };
                let events = sse_events(path)
                    .unwrap_or_else(|| panic!("{path}: describe its events in sse_events()"));
                let one_of: Vec<Value> = events
                    .into_iter()
                    .map(|(name, data)| {
                        json!({
                            "type": "object",
                            "required": ["event", "data"],
                            "properties": {
                                "event": {"const": name},
                                "data": {
                                    "type": "string",
                                    "contentMediaType": "application/json",
                                    "contentSchema": data,
                                },
                                "id": {"type": "string"},
                                "retry": {"type": "integer"},
                            },
                        })
                    })
                    .collect();
                media["schema"] = json!({"oneOf": one_of});
            }
        }
    }
}

/// Adds the fields a body computes on output (its `Serialize` impl), which the schema
/// derive does not see: a topic's `in_kafka`.
fn describe_computed_fields(doc: &mut Value) {
    let Some(topic) = doc.pointer_mut("/components/schemas/Topic") else {
        return;
    };
    topic["properties"]["in_kafka"] = json!({
        "type": "boolean",
        "description": "Whether the topic exists in Kafka (active or inactive): only then \
            has it messages, figures, lag and a tail. Computed from `status`; ignored on input.",
    });
    topic["properties"]["actions"] = json!({
        "type": "array",
        "items": {"$ref": "#/components/schemas/Action"},
        "description": "The lifecycle actions that would change the topic now, whoever may \
            take them: activate is the producer's, the others an admin's. Computed from \
            `status` and `provisioning_error`; ignored on input.",
    });
    if let Some(required) = topic["required"].as_array_mut() {
        required.push(json!("in_kafka"));
        required.push(json!("actions"));
    }
}

/// Adds each data type's payload schema (`streamhub_model::schema`) under its title, so
/// clients generate payload types from the same document as the API's.
fn add_payload_schemas(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for d in streamhub_model::DataType::ALL {
        schemas.insert(
            crate::api::schemas::title_of(d).to_owned(),
            streamhub_model::schema::schema(d).clone(),
        );
    }
}

/// The whole document as served, built once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let (_, doc) = crate::api_routes().split_for_parts();
        let mut doc = serde_json::to_value(finish(doc)).unwrap_or_default();
        describe_event_streams(&mut doc);
        describe_computed_fields(&mut doc);
        add_payload_schemas(&mut doc);
        doc
    })
}

fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| document().to_string())
}

/// Any JSON object: the OpenAPI document itself.
pub struct OpenApiJson;

impl PartialSchema for OpenApiJson {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .description(Some("An OpenAPI 3.1 document"))
            .into()
    }
}

impl ToSchema for OpenApiJson {}

/// `GET /api/openapi.json`: this document, without authentication.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "health",
    operation_id = "openapi",
    responses((status = 200, description = "The OpenAPI document of /api", body = OpenApiJson)),
)]
pub async fn serve_document() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        document_json(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use streamhub_model::RatePerSecond;

    use super::*;

    /// The document's bounds are literals (utoipa takes no constants): they must be the
    /// model's.
    #[test]
    fn rate_bounds_in_the_document_are_the_models() {
        let rate =
            &document()["components"]["schemas"]["CreateTopic"]["properties"]["rate_per_second"];
        assert_eq!(rate["minimum"].as_f64(), Some(RatePerSecond::MIN), "{rate}");
        assert_eq!(rate["maximum"].as_f64(), Some(RatePerSecond::MAX), "{rate}");
        assert!(rate.get("exclusiveMinimum").is_none(), "{rate}");
    }

    #[test]
    fn topic_request_bounds_in_the_document_are_the_models() {
        use streamhub_model::{TopicName, topic_limits};

        let fields = &document()["components"]["schemas"]["CreateTopic"]["properties"];
        let bound = |field: &str, key: &str| fields[field][key].as_u64();
        assert_eq!(bound("name", "maxLength"), Some(TopicName::MAX_LEN as u64));
        assert_eq!(bound("partitions", "minimum"), Some(1));
        assert_eq!(
            bound("partitions", "maximum"),
            Some(topic_limits::MAX_PARTITIONS as u64)
        );
        assert_eq!(bound("replication_factor", "minimum"), Some(1));
        assert_eq!(
            bound("replication_factor", "maximum"),
            Some(topic_limits::MAX_REPLICATION_FACTOR as u64)
        );
        assert_eq!(
            bound("description", "maxLength"),
            Some(topic_limits::MAX_DESCRIPTION_CHARS as u64)
        );
        assert_eq!(
            bound("traffic_profile", "maxLength"),
            Some(streamhub_model::traffic::MAX_TEXT as u64)
        );
    }

    /// A topic's computed `in_kafka` is in its schema, as every other field is.
    #[test]
    fn topic_schema_has_in_kafka() {
        let topic = &document()["components"]["schemas"]["Topic"];
        assert_eq!(
            topic["properties"]["in_kafka"]["type"], "boolean",
            "{topic}"
        );
        let required = topic["required"].as_array().expect("required fields");
        assert!(required.contains(&json!("in_kafka")), "{topic}");
        assert!(required.contains(&json!("actions")), "{topic}");
        let action = &document()["components"]["schemas"]["Action"];
        assert!(
            action["enum"].is_array(),
            "the Action schema is in the document: {action}"
        );
        assert!(required.contains(&json!("status")), "{topic}");
    }

    /// The lag history is documented with its answer's schema: points as pairs of numbers.
    #[test]
    fn lag_history_is_documented() {
        let doc = document();
        let get = &doc["paths"]["/api/metrics/lag/history"]["get"];
        let schema = &get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"];
        assert_eq!(schema, "#/components/schemas/LagHistoryFigures", "{get}");
        assert!(get["responses"]["403"].is_object(), "{get}");
        let schemas = &doc["components"]["schemas"];
        let entry = &schemas["SubscriptionLagHistory"]["properties"]["points"];
        assert_eq!(entry["type"], "array", "{entry}");
        assert_eq!(entry["items"]["type"], "array", "{entry}");
        assert_eq!(entry["items"]["items"]["type"], "integer", "{entry}");
    }

    /// Every `limit` parameter documents the bounds and default its handler applies.
    #[test]
    fn page_sizes_in_the_document_are_the_handlers() {
        use crate::api::{DEFAULT_PAGE, MAX_PAGE, audit};

        let mut checked = Vec::new();
        for (path, item) in document()["paths"].as_object().unwrap() {
            let Some(params) = item["get"]["parameters"].as_array() else {
                continue;
            };
            for limit in params.iter().filter(|p| p["name"] == "limit") {
                let schema = &limit["schema"];
                let default = if path == "/api/audit" {
                    audit::DEFAULT_LIMIT
                } else {
                    DEFAULT_PAGE
                };
                assert_eq!(schema["minimum"].as_i64(), Some(1), "{path}: {limit}");
                assert_eq!(
                    schema["maximum"].as_i64(),
                    Some(MAX_PAGE),
                    "{path}: {limit}"
                );
                assert_eq!(schema["default"].as_i64(), Some(default), "{path}: {limit}");
                checked.push(path.clone());
            }
        }
        for list in [
            "/api/topics",
            "/api/subscriptions",
            "/api/users",
            "/api/audit",
        ] {
            assert!(
                checked.iter().any(|p| p == list),
                "{list} has no limit: {checked:?}"
            );
        }
    }
}
