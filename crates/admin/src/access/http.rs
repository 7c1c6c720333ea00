//! The HTTP answers of access management: a user's Kafka credentials (shown once), what
//! the broker lets a user read, and who may read and write a topic, as the broker reports.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use streamhub_model::access::{Acl, Operation, PatternType, Permission, ResourceType};
use streamhub_model::api::ErrorBody;
use streamhub_model::{Role, Secret};
use streamhub_store::AuditNote;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AccessService, KafkaConnection};
use crate::auth::{Principal, random_password};
use crate::error::ApiError;
use crate::state::AppState;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(issue_credentials))
        .routes(routes!(user_access))
        .routes(routes!(topic_access))
}

/// Why there is no access to show or change.
const OFF: &str =
    "Kafka security is off: the broker is open to every client (start with --kafka-security scram)";

/// Access management, or 409 saying how to turn it on.
fn service(state: &AppState) -> Result<&std::sync::Arc<AccessService>, ApiError> {
    state.access().ok_or_else(|| ApiError::conflict(OFF))
}

/// The caller themself, or an admin.
fn self_or_admin(principal: &Principal, username: &str) -> Result<(), ApiError> {
    principal.require(&[Role::Admin, Role::User])?;
    if principal.username != username && !principal.is_admin() {
        return Err(ApiError::forbidden(format!(
            "'{}' may see only their own Kafka access, not that of '{username}'",
            principal.username
        )));
    }
    Ok(())
}

fn kafka_error(e: String) -> ApiError {
    ApiError::unavailable(format!("Kafka: {e}"))
}

/// A user's new Kafka credentials: the only answer that ever holds the password.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KafkaCredentials {
    /// The SASL username: the streamhub username.
    pub username: String,
    pub password: String,
    #[serde(flatten)]
    pub connection: KafkaConnection,
}

/// `POST /api/users/{username}/kafka-credentials`: a new SCRAM password for the user's
/// Kafka principal, replacing any earlier one; shown in this answer only.
#[utoipa::path(
    post,
    path = "/users/{username}/kafka-credentials",
    tag = "kafka-access",
    params(("username" = String, Path, description = "The user; a user may ask for their own only")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = [])),
    responses(
        (status = 201, description = "The credentials, shown once", body = KafkaCredentials),
        (status = 403, description = "Another user's, and not an admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Kafka security is off", body = ErrorBody),
        (status = 503, description = "The broker did not take them", body = ErrorBody),
    ),
)]
async fn issue_credentials(
    State(state): State<AppState>,
    principal: Principal,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    self_or_admin(&principal, &username)?;
    let access = service(&state)?;
    if state.store().credentials(&username).await?.is_none() {
        return Err(ApiError::not_found(format!("no user '{username}'")));
    }
    let password = random_password();
    access
        .kafka()
        .set_password(&username, &Secret::new(password.clone()))
        .await
        .map_err(kafka_error)?;
    state
        .store()
        .note(&AuditNote {
            actor: &principal.username,
            action: "kafka.credentials",
            topic_id: None,
            target: &username,
            detail: Some("a new SCRAM-SHA-512 password; earlier ones no longer work"),
        })
        .await?;
    tracing::info!(user = %username, by = %principal.username, "Kafka credentials issued");
    let body = KafkaCredentials {
        username,
        password,
        connection: access.kafka().connection(),
    };
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    // A password: never from a cache.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// One ACL as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AclView {
    /// `topic`, `group` or `cluster`.
    pub resource_type: String,
    pub resource_name: String,
    /// `literal` or `prefixed`.
    pub pattern: String,
    /// `User:<name>`.
    pub principal: String,
    pub host: String,
    /// Kafka's name in snake case: `read`, `write`, `describe`, ...
    pub operation: String,
    /// `allow` or `deny`.
    pub permission: String,
}

fn snake(debug: impl std::fmt::Debug) -> String {
    let text = format!("{debug:?}");
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

impl From<&Acl> for AclView {
    fn from(a: &Acl) -> AclView {
        AclView {
            resource_type: snake(a.resource_type),
            resource_name: a.resource_name.clone(),
            pattern: snake(a.pattern),
            principal: a.principal.clone(),
            host: a.host.clone(),
            operation: snake(a.operation),
            permission: snake(a.permission),
        }
    }
}

/// Whether `acl` (an ALLOW) names topic `topic`: literally, by prefix or by wildcard.
fn covers_topic(acl: &Acl, topic: &str) -> bool {
    acl.resource_type == ResourceType::Topic
        && match acl.pattern {
            PatternType::Literal => acl.resource_name == topic || acl.resource_name == "*",
            PatternType::Prefixed => topic.starts_with(&acl.resource_name),
        }
}

/// `GET /api/users/{username}/kafka-access`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserAccess {
    /// False when Kafka security is off (`note` says so) and the broker serves everyone.
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub principal: String,
    /// Topics the broker lets the user read, by its ACLs.
    pub readable_topics: Vec<String>,
    /// Every ACL of the user's principal on the broker.
    pub acls: Vec<AclView>,
    /// How to reach the broker with the user's credentials; null when security is off.
    pub connection: Option<KafkaConnection>,
}

/// `GET /api/users/{username}/kafka-access`: the user's ACLs as the broker holds them.
#[utoipa::path(
    get,
    path = "/users/{username}/kafka-access",
    tag = "kafka-access",
    params(("username" = String, Path, description = "The user; a user may see their own only")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The user's ACLs on the broker", body = UserAccess),
        (status = 403, description = "Another user's, and not an admin", body = ErrorBody),
        (status = 503, description = "The broker did not answer", body = ErrorBody),
    ),
)]
async fn user_access(
    State(state): State<AppState>,
    principal: Principal,
    Path(username): Path<String>,
) -> Result<Json<UserAccess>, ApiError> {
    self_or_admin(&principal, &username)?;
    let who = streamhub_model::access::principal_of(&username);
    let Some(access) = state.access() else {
        return Ok(Json(UserAccess {
            enabled: false,
            note: Some(OFF.into()),
            principal: who,
            readable_topics: Vec::new(),
            acls: Vec::new(),
            connection: None,
        }));
    };
    let acls: Vec<Acl> = access
        .kafka()
        .acls()
        .await
        .map_err(kafka_error)?
        .into_iter()
        .filter(|a| a.principal == who)
        .collect();
    let mut readable: Vec<String> = acls
        .iter()
        .filter(|a| {
            a.resource_type == ResourceType::Topic
                && a.permission == Permission::Allow
                && matches!(a.operation, Operation::Read | Operation::All)
        })
        .map(|a| a.resource_name.clone())
        .collect();
    readable.sort();
    readable.dedup();
    Ok(Json(UserAccess {
        enabled: true,
        note: None,
        principal: who,
        readable_topics: readable,
        acls: acls.iter().map(AclView::from).collect(),
        connection: Some(access.kafka().connection()),
    }))
}

/// `GET /api/topics/{id}/kafka-access`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TopicAccess {
    /// False when Kafka security is off (`note` says so) and the broker serves everyone.
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub topic_name: String,
    /// Principals allowed to read the topic, by the broker's ACLs (before any DENY).
    pub readers: Vec<String>,
    /// Principals allowed to write to it.
    pub writers: Vec<String>,
    /// Every ACL that names the topic.
    pub acls: Vec<AclView>,
}

/// `GET /api/topics/{id}/kafka-access` (admin): who may read and write, as the broker
/// reports it.
#[utoipa::path(
    get,
    path = "/topics/{id}/kafka-access",
    tag = "kafka-access",
    params(("id" = i64, Path, description = "Topic id")),
    security(("bearer" = []), ("session_cookie" = [])),
    responses(
        (status = 200, description = "The topic's ACLs on the broker", body = TopicAccess),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
        (status = 503, description = "The broker did not answer", body = ErrorBody),
    ),
)]
async fn topic_access(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<i64>,
) -> Result<Json<TopicAccess>, ApiError> {
    principal.require_admin()?;
    let topic = state.store().topic(id).await?;
    let Some(access) = state.access() else {
        return Ok(Json(TopicAccess {
            enabled: false,
            note: Some(OFF.into()),
            topic_name: topic.topic_name,
            readers: Vec::new(),
            writers: Vec::new(),
            acls: Vec::new(),
        }));
    };
    let acls: Vec<Acl> = access
        .kafka()
        .acls()
        .await
        .map_err(kafka_error)?
        .into_iter()
        .filter(|a| covers_topic(a, &topic.topic_name))
        .collect();
    let allowed = |ops: &[Operation]| {
        let mut who: Vec<String> = acls
            .iter()
            .filter(|a| a.permission == Permission::Allow && ops.contains(&a.operation))
            .map(|a| a.principal.clone())
            .collect();
        who.sort();
        who.dedup();
        who
    };
    Ok(Json(TopicAccess {
        enabled: true,
        note: None,
        readers: allowed(&[Operation::Read, Operation::All]),
        writers: allowed(&[Operation::Write, Operation::All]),
        acls: acls.iter().map(AclView::from).collect(),
        topic_name: topic.topic_name,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acls_read_in_snake_case_and_topics_match_as_kafka_matches_them() {
        let acl = Acl::allow(
            "User:a",
            Operation::IdempotentWrite,
            ResourceType::Topic,
            "pay",
        );
        let view = AclView::from(&acl);
        assert_eq!(view.operation, "idempotent_write");
        assert_eq!(view.resource_type, "topic");
        assert_eq!(view.pattern, "literal");
        assert!(covers_topic(&acl, "pay"));
        assert!(!covers_topic(&acl, "payments"));
        let prefixed = Acl {
            pattern: PatternType::Prefixed,
            ..acl.clone()
        };
        assert!(covers_topic(&prefixed, "payments"));
        let any = Acl::allow("User:a", Operation::Read, ResourceType::Topic, "*");
        assert!(covers_topic(&any, "whatever"));
    }
}
