use axum::Json as JsonBody;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use streamhub_model::Role;
use streamhub_model::api::{ErrorBody, Message, Subscription, SubscriptionRequest};
use streamhub_store::SubscriptionFilter;

use crate::auth::Principal;
use crate::error::{ApiError, Json};
use crate::log_value::Untrusted;
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this user's; a `user` may name only themself.
    user_id: Option<String>,
    /// At most this many (default 500), 1 to 1000.
    #[param(minimum = 1, maximum = 1000, default = 500)]
    limit: Option<i64>,
    /// Subscriptions to skip (oldest first).
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
}

/// An empty or blank `user_id` means none was given, as in the list's query: the
/// request is for the caller.
fn given(user_id: Option<String>) -> Option<String> {
    user_id.filter(|u| !u.trim().is_empty())
}

/// `GET /api/subscriptions?user_id=`: a `user` sees only their own.
#[utoipa::path(
    get,
    path = "/subscriptions",
    tag = "subscriptions",
    params(ListQuery),
    security(("bearer" = []), ("session_cookie" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Subscriptions", body = Vec<Subscription>),
        (status = 403, description = "A user asking for another user's, or the producer", body = ErrorBody),
        (status = 422, description = "limit or offset out of range", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<ListQuery>,
) -> Result<JsonBody<Vec<Subscription>>, ApiError> {
    // Subscriptions are users' data; the producer has no use for them.
    principal.require(&[Role::Admin, Role::User])?;
    let user_id = q.user_id.filter(|u| !u.is_empty());
    let user_id = if principal.role == Role::User {
        Some(principal.acting_for(user_id)?)
    } else {
        user_id
    };
    let (limit, offset) = super::page(q.limit, q.offset)?;
    let subscriptions = state
        .store()
        .subscriptions(&SubscriptionFilter {
            user_id,
            limit: Some(limit),
            offset,
        })
        .await?;
    Ok(JsonBody(subscriptions))
}

/// `POST /api/subscriptions`: 201 when added, 200 when it already existed.
#[utoipa::path(
    post,
    path = "/subscriptions",
    tag = "subscriptions",
    request_body = SubscriptionRequest,
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = []), ("producer_key" = [])),
    responses(
        (status = 201, description = "Subscribed", body = Message),
        (status = 200, description = "Already subscribed", body = Message),
        (status = 403, description = "For another user without being an admin, or the producer", body = ErrorBody),
        (status = 404, description = "No such user or topic", body = ErrorBody),
        (status = 409, description = "The topic cannot be subscribed to in its status", body = ErrorBody),
    ),
)]
pub async fn subscribe(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<SubscriptionRequest>,
) -> Result<(StatusCode, JsonBody<Message>), ApiError> {
    let user_id = principal.acting_for(given(req.user_id))?;
    let outcome = state
        .store()
        .subscribe(&principal.username, &user_id, &req.topic_name)
        .await?;
    state.sync_access().await;
    if !outcome.created {
        return Ok((
            StatusCode::OK,
            JsonBody(Message {
                message: format!("'{user_id}' is already subscribed to '{}'", req.topic_name),
                topic_id: None,
            }),
        ));
    }
    tracing::info!(
        user = %Untrusted(&user_id),
        topic = %Untrusted(&req.topic_name),
        by = %Untrusted(&principal.username),
        "subscribed"
    );
    Ok((
        StatusCode::CREATED,
        JsonBody(Message {
            message: "Subscription added successfully".into(),
            topic_id: None,
        }),
    ))
}

/// `DELETE /api/subscriptions`.
#[utoipa::path(
    delete,
    path = "/subscriptions",
    tag = "subscriptions",
    request_body = SubscriptionRequest,
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Unsubscribed", body = Message),
        (status = 403, description = "For another user without being an admin, or the producer", body = ErrorBody),
        (status = 404, description = "No such subscription", body = ErrorBody),
    ),
)]
pub async fn unsubscribe(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<SubscriptionRequest>,
) -> Result<JsonBody<Message>, ApiError> {
    let user_id = principal.acting_for(given(req.user_id))?;
    state
        .store()
        .unsubscribe(&principal.username, &user_id, &req.topic_name)
        .await?;
    state.sync_access().await;
    tracing::info!(
        user = %Untrusted(&user_id),
        topic = %Untrusted(&req.topic_name),
        by = %Untrusted(&principal.username),
        "unsubscribed"
    );
    Ok(JsonBody(Message {
        message: "Subscription removed successfully".into(),
        topic_id: None,
    }))
}
