use axum::Json as JsonBody;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use streamhub_model::api::{CreateUser, ErrorBody, Message, User};

use crate::auth::Principal;
use crate::error::{ApiError, Json};
use crate::state::AppState;

pub const MIN_PASSWORD_CHARS: usize = 8;
const MAX_PASSWORD_CHARS: usize = 1024;

/// `GET /api/users` (admin).
#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    security(("bearer" = []), ("session_cookie" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Every user", body = Vec<User>),
        (status = 403, description = "Not an admin", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<JsonBody<Vec<User>>, ApiError> {
    principal.require_admin()?;
    Ok(JsonBody(state.store().users().await?))
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
        (status = 409, description = "The username is taken", body = ErrorBody),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<CreateUser>,
) -> Result<(StatusCode, JsonBody<User>), ApiError> {
    principal.require_admin()?;
    let chars = req.password.chars().count();
    if !(MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) {
        return Err(ApiError::invalid(format!(
            "password must have {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
        )));
    }
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
    tracing::info!(username = %user.username, role = %user.role, by = %principal.username, "user created");
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
    tracing::info!(%username, by = %principal.username, "user deleted");
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
