use axum::Json as JsonBody;
use axum::extract::{Query, State};
use serde::Deserialize;
use streamhub_model::api::{AuditEntry, ErrorBody};
use streamhub_store::AuditFilter;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

pub(crate) const DEFAULT_LIMIT: i64 = 100;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Who acted.
    actor: Option<String>,
    /// A topic id, or a name (every topic that had it, deleted ones included).
    topic: Option<String>,
    /// `approve`, `subscribe`, `user.create`, ...
    action: Option<String>,
    /// At most this many (default 100), 1 to 1000.
    #[param(minimum = 1, maximum = 1000, default = 100)]
    limit: Option<i64>,
    /// Entries to skip (newest first).
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
}

/// `GET /api/audit?actor=&topic=&action=&limit=&offset=` (admin), newest first.
#[utoipa::path(
    get,
    path = "/audit",
    tag = "audit",
    params(AuditQuery),
    security(("bearer" = []), ("session_cookie" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Audit entries, newest first", body = Vec<AuditEntry>),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 422, description = "limit or offset out of range", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<AuditQuery>,
) -> Result<JsonBody<Vec<AuditEntry>>, ApiError> {
    principal.require_admin()?;
    let (limit, offset) = super::page_or(q.limit, q.offset, DEFAULT_LIMIT)?;
    let topic = q.topic.filter(|t| !t.is_empty());
    let (topic_id, topic_name) = match topic.as_deref().map(str::parse::<i64>) {
        Some(Ok(id)) => (Some(id), None),
        Some(Err(_)) => (None, topic),
        None => (None, None),
    };
    let entries = state
        .store()
        .audit(&AuditFilter {
            actor: q.actor.filter(|a| !a.is_empty()),
            topic_id,
            topic_name,
            action: q.action.filter(|a| !a.is_empty()),
            limit,
            offset,
        })
        .await?;
    Ok(JsonBody(entries))
}
