//! The REST endpoints under `/api`.

pub mod audit;
pub mod events;
pub mod schemas;
pub mod subscriptions;
pub mod topics;
pub mod users;

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use serde::Serialize;
use streamhub_model::api::{ErrorBody, Stats};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// Page sizes are bounded so one request cannot ask for the whole store at once.
pub use streamhub_model::api::{DEFAULT_PAGE, MAX_PAGE};

/// `limit` (default [`DEFAULT_PAGE`]) and `offset` of a list request, checked.
pub(crate) fn page(limit: Option<i64>, offset: Option<i64>) -> Result<(i64, i64), ApiError> {
    page_or(limit, offset, DEFAULT_PAGE)
}

/// [`page`] with another default `limit`.
pub(crate) fn page_or(
    limit: Option<i64>,
    offset: Option<i64>,
    default: i64,
) -> Result<(i64, i64), ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_PAGE}, got {limit}"
        )));
    }
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::invalid(format!(
            "offset must not be negative, got {offset}"
        )));
    }
    Ok((limit, offset))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `healthy`.
    status: &'static str,
    timestamp: chrono::DateTime<Utc>,
}

/// `GET /api/health`, the one endpoint without authentication. 503 when the
/// metadata store does not answer.
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses(
        (status = 200, description = "The service and its metadata store answer", body = Health),
        (status = 503, description = "The metadata store does not answer", body = ErrorBody),
    ),
)]
pub async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.store().counts().await.map_err(|e| {
        tracing::error!(error = %e, "health check: metadata store failed");
        ApiError::unavailable("the metadata store does not answer")
    })?;
    Ok(Json(Health {
        status: "healthy",
        timestamp: Utc::now(),
    }))
}

/// `GET /api/stats`: maintained counters, so its cost does not grow with the store.
#[utoipa::path(
    get,
    path = "/stats",
    tag = "metrics",
    security(("bearer" = []), ("session_cookie" = []), ("producer_key" = [])),
    responses((status = 200, description = "Counts of topics by status, subscriptions and users", body = Stats)),
)]
pub async fn stats(
    State(state): State<AppState>,
    _principal: Principal,
) -> Result<Json<Stats>, ApiError> {
    let counts = state.store().counts().await?;
    let kafka = state.kafka_stats(None).await;
    Ok(Json(Stats {
        total_topics: counts.live_topics(),
        pending_topics: counts.pending,
        approved_topics: counts.approved,
        active_topics: counts.active,
        inactive_topics: counts.inactive,
        rejected_topics: counts.rejected,
        total_subscriptions: counts.subscriptions,
        total_users: counts.users,
        timestamp: Utc::now(),
        kafka,
    }))
}
