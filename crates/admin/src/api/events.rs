//! `GET /api/events`: every committed change as a server-sent event. The SSE event name
//! is the kind (`topic`, `subscription`) and the data its JSON. A client that falls too
//! far behind gets a `resync` event and should reload what it shows.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{Stream, StreamExt, stream};
use streamhub_model::api::{ErrorBody, Event};
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::{AppState, MAX_EVENT_STREAMS};

fn to_sse(event: &Event) -> SseEvent {
    let kind = match event {
        Event::Topic { .. } => "topic",
        Event::Subscription { .. } => "subscription",
    };
    SseEvent::default()
        .event(kind)
        .json_data(event)
        .unwrap_or_else(|_| SseEvent::default().event("resync").data("{}"))
}

/// The same rule as `GET /api/subscriptions`: only an admin sees other users' subscriptions.
fn may_see(principal: &Principal, event: &Event) -> bool {
    match event {
        Event::Topic { .. } => true,
        Event::Subscription { subscription, .. } => {
            principal.is_admin() || subscription.user_id == principal.username
        }
    }
}

/// Each event's `data` is an [`Event`] as JSON; its SSE event name is the `kind`.
#[utoipa::path(
    get,
    path = "/events",
    tag = "events",
    security(("bearer" = []), ("session_cookie" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Server-sent events: `topic` and `subscription` with an Event as data, `resync` when the client fell behind", content_type = "text/event-stream", body = Event),
        (status = 503, description = "Too many event streams are open", body = ErrorBody),
    ),
)]
pub async fn stream(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let slot = state
        .inner
        .event_streams
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            ApiError::unavailable(format!(
                "{MAX_EVENT_STREAMS} event streams are open already; try again later"
            ))
            .retry_after(5)
        })?;
    let receiver = state.subscribe_events();
    let hello = stream::once(async { Ok(SseEvent::default().comment("connected")) });
    let events = BroadcastStream::new(receiver).filter_map(move |item| {
        // The slot is given back when the stream is dropped.
        let _slot = &slot;
        let event = match item {
            Ok(event) if !may_see(&principal, &event) => None,
            Ok(event) => Some(to_sse(&event)),
            Err(BroadcastStreamRecvError::Lagged(missed)) => Some(
                SseEvent::default()
                    .event("resync")
                    .data(format!("{{\"missed\":{missed}}}")),
            ),
        };
        futures::future::ready(event.map(Ok))
    });
    let body = hello
        .chain(events)
        .take_until(state.inner.shutdown.clone().cancelled_owned());
    Ok(Sse::new(body).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
