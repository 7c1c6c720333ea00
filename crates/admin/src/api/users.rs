use axum::Json as JsonBody;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use streamhub_model::account;
use streamhub_model::api::{CreateUser, ErrorBody, Message, User};
use streamhub_store::UserFilter;

use crate::auth::Principal;
use crate::error::{ApiError, Json};
use crate::log_value::Untrusted;
use crate::state::AppState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// At most this many (default 500), 1 to 1000.
    #[param(minimum = 1, maximum = 1000, default = 500)]
    limit: Option<i64>,
    /// Users to skip (by username).
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
}

/// `GET /api/users?limit=&offset=` (admin), by username.
#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    params(ListQuery),
    security(("bearer" = []), ("session_cookie" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Users, by username", body = Vec<User>),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 422, description = "limit or offset out of range", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<ListQuery>,
) -> Result<JsonBody<Vec<User>>, ApiError> {
    principal.require_admin()?;
    let (limit, offset) = super::page(q.limit, q.offset)?;
    let filter = UserFilter {
        limit: Some(limit),
        offset,
    };
    Ok(JsonBody(state.store().users(&filter).await?))
}

/// `POST /api/users {"username","password","role"}` (admin).
#[utoipa::path(
    post,
    path = "/users",
    tag = "users",
    request_body = CreateUser,
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = []), ("producer_key" = [])),
    responses(
        (status = 201, description = "Created", body = User),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 409, description = "The username is taken (compared ignoring case)", body = ErrorBody),
        (status = 422, description = "The username is malformed or reserved (`producer`, `system`), or the password is weak: under 8 or over 1024 characters, containing the username, or rated under 3 of 4 by zxcvbn; the error says why", body = ErrorBody),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<CreateUser>,
) -> Result<(StatusCode, JsonBody<User>), ApiError> {
    principal.require_admin()?;
    account::check_username(&req.username).map_err(|e| ApiError::invalid(e.0))?;
    account::check_password(&req.username, &req.password).map_err(|e| ApiError::invalid(e.0))?;
    if state.store().credentials(&req.username).await?.is_some() {
        return Err(ApiError::conflict(format!(
            "user '{}' already exists",
            req.username
        )));
    }
    let hash = state.hash_password(req.password).await?;
    let user = state
        .store()
        .create_user(&principal.username, &req.username, &hash, req.role)
        .await?;
    tracing::info!(
        username = %Untrusted(&user.username),
        role = %user.role,
        by = %Untrusted(&principal.username),
        "user created"
    );
    Ok((StatusCode::CREATED, JsonBody(user)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteUser {
    username: String,
}

async fn remove(
    state: &AppState,
    principal: &Principal,
    username: &str,
) -> Result<JsonBody<Message>, ApiError> {
    principal.require_admin()?;
    state
        .store()
        .delete_user(&principal.username, username)
        .await?;
    state.sync_access().await;
    tracing::info!(
        username = %Untrusted(username),
        by = %Untrusted(&principal.username),
        "user deleted"
    );
    Ok(JsonBody(Message {
        message: "User deleted successfully".into(),
        topic_id: None,
    }))
}

/// `DELETE /api/users {"username"}` (admin).
#[utoipa::path(
    delete,
    path = "/users",
    tag = "users",
    request_body = DeleteUser,
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Deleted", body = Message),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The user cannot be deleted (e.g. the last admin)", body = ErrorBody),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<DeleteUser>,
) -> Result<JsonBody<Message>, ApiError> {
    remove(&state, &principal, &req.username).await
}

/// `DELETE /api/users/<username>` (admin).
#[utoipa::path(
    delete,
    path = "/users/{username}",
    tag = "users",
    params(("username" = String, Path, description = "Who to delete")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Deleted", body = Message),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The user cannot be deleted (e.g. the last admin)", body = ErrorBody),
    ),
)]
pub async fn delete_by_path(
    State(state): State<AppState>,
    principal: Principal,
    Path(username): Path<String>,
) -> Result<JsonBody<Message>, ApiError> {
    remove(&state, &principal, &username).await
}
