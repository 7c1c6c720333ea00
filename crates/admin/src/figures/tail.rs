//! `GET /api/topics/{id}/tail`: the newest messages of a topic as server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::stream;
use serde::Serialize;
use streamhub_model::Role;
use streamhub_model::api::ErrorBody;
use streamhub_model::schema::{self, SchemaError};

use super::{KAFKA_TIMEOUT, off_note};
use crate::TailMessage;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use crate::streams::{StreamKind, check_tail, until_revoked};

/// Messages sent to a new tail before the live ones.
const TAIL_BACKLOG: usize = 20;

#[derive(Serialize, utoipa::ToSchema)]
struct TailStatus {
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
}

/// A `message` event: the message, and where it breaks its data type's payload schema.
#[derive(Serialize)]
struct TailEvent<'a> {
    #[serde(flatten)]
    message: &'a TailMessage,
    schema_errors: Vec<SchemaError>,
}

impl<'a> TailEvent<'a> {
    fn of(message: &'a TailMessage) -> Self {
        TailEvent {
            schema_errors: schema::validate_message(&message.value),
            message,
        }
    }
}

fn status_event(enabled: bool, note: Option<String>) -> SseEvent {
    SseEvent::default()
        .event("status")
        .json_data(TailStatus { enabled, note })
        .unwrap_or_else(|_| SseEvent::default().event("status").data("{}"))
}

/// `GET /api/topics/{id}/tail`: server-sent events. First a `status` event
/// (`{"enabled":true}`, or `false` with a `note` when Kafka figures are off, after which
/// the stream ends), then one `message` event per message, newest last, with
/// `schema_errors`: where the value breaks its data type's payload schema. An admin may tail
/// any topic in Kafka; a user only an active topic they subscribe to. The stream ends
/// within about a second of that no longer holding, or of its token being revoked or
/// expiring, or its user being deleted.
#[utoipa::path(
    get,
    path = "/topics/{id}/tail",
    tag = "events",
    params(("id" = i64, Path, description = "Topic id")),
    security(("bearer" = []), ("session_cookie" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Server-sent events: first `status` (a TailStatus), then one `message` per Kafka message", content_type = "text/event-stream", body = TailStatus),
        (status = 403, description = "The producer; a user not subscribed to the topic, or the topic is not active", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
        (status = 409, description = "The topic is not in Kafka (neither active nor inactive)", body = ErrorBody),
        (status = 429, description = "The caller has its share of tails open already (2 per user or admin)", body = ErrorBody),
        (status = 503, description = "All tails of the service are taken (16 in all)", body = ErrorBody),
    ),
)]
pub(super) async fn tail(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    principal.require(&[Role::Admin, Role::User])?;
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("'{id}' is not a topic id")))?;
    let topic = state.store().topic(id).await?;
    if !topic.status.is_in_kafka() {
        return Err(ApiError::conflict(format!(
            "topic '{}' is {}: it has no messages in Kafka",
            topic.topic_name, topic.status
        )));
    }
    check_tail(&state, &principal, &topic).await?;
    let Some(cluster) = state.inner.cluster.clone() else {
        return Ok(once_status(Some(off_note())));
    };
    let slot = state.inner.streams.acquire(StreamKind::Tail, &principal)?;
    let revoked = until_revoked(&state, &principal, Some(topic.topic_id));
    let messages =
        match tokio::time::timeout(KAFKA_TIMEOUT, cluster.tail(&topic.topic_name, TAIL_BACKLOG))
            .await
        {
            Ok(Ok(messages)) => messages,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, topic = %topic.topic_name, "cannot tail topic");
                let note = Some(format!(
                    "cannot read '{}' from Kafka: {e}",
                    topic.topic_name
                ));
                return Ok(once_status(note));
            }
            Err(_) => {
                let note = Some("Kafka did not answer within 3 seconds".to_owned());
                return Ok(once_status(note));
            }
        };
    let events = messages.map(move |item| {
        // The slot is given back when the client goes away and the stream is dropped.
        let _slot = &slot;
        Ok::<_, Infallible>(match item {
            Ok(message) => SseEvent::default()
                .event("message")
                .json_data(TailEvent::of(&message))
                .unwrap_or_else(|_| status_event(true, None)),
            Err(e) => status_event(false, Some(e)),
        })
    });
    // Also ends the stream when the service stops.
    let body = stream::once(async { Ok::<_, Infallible>(status_event(true, None)) })
        .chain(events)
        .take_until(revoked);
    Ok(Sse::new(body)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

/// A stream of one `status` event saying the tail is off, and why.
fn once_status(note: Option<String>) -> Response {
    let once = stream::once(async move { Ok::<_, Infallible>(status_event(false, note)) });
    Sse::new(once).into_response()
}
