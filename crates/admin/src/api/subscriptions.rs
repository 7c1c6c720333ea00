use axum::Json as JsonBody;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use streamhub_model::Role;
use streamhub_model::api::{Event, Message, Subscription, SubscriptionRequest};
use streamhub_store::SubscriptionFilter;

use crate::auth::Principal;
use crate::error::{ApiError, Json};
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    user_id: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `GET /api/subscriptions?user_id=`: a `user` sees only their own.
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(q): Query<ListQuery>,
) -> Result<JsonBody<Vec<Subscription>>, ApiError> {
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
            limit,
            offset,
        })
        .await?;
    Ok(JsonBody(subscriptions))
}

/// `POST /api/subscriptions`: 201 when added, 200 when it already existed.
pub async fn subscribe(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<SubscriptionRequest>,
) -> Result<(StatusCode, JsonBody<Message>), ApiError> {
    let user_id = principal.acting_for(req.user_id)?;
    let outcome = state
        .store()
        .subscribe(&principal.username, &user_id, &req.topic_name)
        .await?;
    if !outcome.created {
        return Ok((
            StatusCode::OK,
            JsonBody(Message {
                message: format!("'{user_id}' is already subscribed to '{}'", req.topic_name),
                topic_id: None,
            }),
        ));
    }
    tracing::info!(user = %user_id, topic = %req.topic_name, by = %principal.username, "subscribed");
    state.publish(Event::Subscription {
        subscribed: true,
        subscription: outcome.subscription,
    });
    Ok((
        StatusCode::CREATED,
        JsonBody(Message {
            message: "Subscription added successfully".into(),
            topic_id: None,
        }),
    ))
}

/// `DELETE /api/subscriptions`.
pub async fn unsubscribe(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<SubscriptionRequest>,
) -> Result<JsonBody<Message>, ApiError> {
    let user_id = principal.acting_for(req.user_id)?;
    let subscription = state
        .store()
        .unsubscribe(&principal.username, &user_id, &req.topic_name)
        .await?;
    tracing::info!(user = %user_id, topic = %req.topic_name, by = %principal.username, "unsubscribed");
    state.publish(Event::Subscription {
        subscribed: false,
        subscription,
    });
    Ok(JsonBody(Message {
        message: "Subscription removed successfully".into(),
        topic_id: None,
    }))
}
