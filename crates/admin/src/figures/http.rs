//! The HTTP answers of the figures service. Each reads the service of the application
//! state: no handler asks Kafka itself.

use axum::Json;
use axum::extract::State;
use streamhub_model::api::ErrorBody;
use streamhub_model::traffic::TrafficProfile;
use streamhub_model::{RatePerSecond, Role, TopicStatus};
use streamhub_store::TopicFilter;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{LagFigures, LagHistoryFigures, RateFigures, TopicFigures, off_note, tail};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

/// The routes, to be nested under `/api` beside the other endpoints.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(topic_figures))
        .routes(routes!(rate_history))
        .routes(routes!(lag_figures))
        .routes(routes!(lag_history))
        .routes(routes!(tail::tail))
}

/// Whose lag `principal` sees: a user their own, an admin everybody's.
fn lag_of(principal: &Principal) -> Result<Option<&str>, ApiError> {
    principal.require(&[Role::Admin, Role::User])?;
    Ok((principal.role == Role::User).then_some(principal.username.as_str()))
}

/// `GET /api/metrics/topics`, for every signed-in principal.
#[utoipa::path(
    get,
    path = "/metrics/topics",
    tag = "metrics",
    security(("bearer" = []), ("session_cookie" = []), ("producer_key" = [])),
    responses((status = 200, description = "Message totals per topic in Kafka, or why there are none", body = TopicFigures)),
)]
async fn topic_figures(
    State(state): State<AppState>,
    _principal: Principal,
) -> Result<Json<TopicFigures>, ApiError> {
    Ok(Json(match state.figures().current().await? {
        None => TopicFigures::off(off_note()),
        Some(round) => TopicFigures::of(&round),
    }))
}

/// `GET /api/metrics/rates`, for every signed-in principal.
#[utoipa::path(
    get,
    path = "/metrics/rates",
    tag = "metrics",
    security(("bearer" = []), ("session_cookie" = []), ("producer_key" = [])),
    responses((status = 200, description = "Messages per second per topic over the last 15 minutes, one point per sample", body = RateFigures)),
)]
async fn rate_history(
    State(state): State<AppState>,
    _principal: Principal,
) -> Result<Json<RateFigures>, ApiError> {
    let figures = state.figures();
    if !figures.enabled() {
        return Ok(Json(RateFigures::off(off_note())));
    }
    let mut rates = figures.histories().rates.figures();
    let active = state
        .store()
        .topics(&TopicFilter {
            status: Some(TopicStatus::Active),
            ..Default::default()
        })
        .await?;
    for topic in active {
        let profile = topic.traffic_profile.or_else(|| {
            topic
                .rate_per_second
                .and_then(RatePerSecond::clamped)
                .map(TrafficProfile::constant)
        });
        if let (Some(profile), Some(origin)) = (profile, topic.activated_at)
            && let Some(t) = rates
                .topics
                .iter_mut()
                .find(|t| t.topic_name == topic.topic_name)
        {
            t.expect(&profile, origin);
        }
    }
    Ok(Json(rates))
}

/// `GET /api/metrics/lag`: every subscription for admins, a user's own for a user.
#[utoipa::path(
    get,
    path = "/metrics/lag",
    tag = "metrics",
    security(("bearer" = []), ("session_cookie" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Consumer lag per subscription whose topic is in Kafka", body = LagFigures),
        (status = 403, description = "The producer", body = ErrorBody),
    ),
)]
async fn lag_figures(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<LagFigures>, ApiError> {
    let user = lag_of(&principal)?;
    Ok(Json(match state.figures().current().await? {
        None => LagFigures::off(off_note()),
        Some(round) => LagFigures::of(&round, user),
    }))
}

/// `GET /api/metrics/lag/history`: the lag of `GET /api/metrics/lag` over the last
/// 15 minutes; every subscription for admins, a user's own for a user.
#[utoipa::path(
    get,
    path = "/metrics/lag/history",
    tag = "metrics",
    security(("bearer" = []), ("session_cookie" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Consumer lag per subscription over the last 15 minutes, one point per sample", body = LagHistoryFigures),
        (status = 403, description = "The producer", body = ErrorBody),
    ),
)]
async fn lag_history(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<LagHistoryFigures>, ApiError> {
    let user = lag_of(&principal)?;
    let figures = state.figures();
    Ok(Json(if figures.enabled() {
        figures.histories().lag.figures(user)
    } else {
        LagHistoryFigures::off(off_note())
    }))
}
