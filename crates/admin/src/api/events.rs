//! `GET /api/events`: every committed change as a server-sent event. The SSE event name
//! is the kind (`topic`, `subscription`) and the data its JSON. A client that falls too
//! far behind, or whose instance may have missed other instances' events, gets a
//! `resync` event and should reload what it shows. A stream ends once its credential is
//! revoked or expires, or its user is deleted (see `streams`).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{Stream, StreamExt, stream};
use streamhub_model::api::{ErrorBody, Event};
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;
use tokio_stream::wrappers::{BroadcastStream, WatchStream};

use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;
use crate::streams::{StreamKind, until_revoked};

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
        (status = 200, description = "Server-sent events: `topic` and `subscription` with an Event as data, `resync` when the client fell behind or this instance may have missed other instances' events. The stream ends within about a second of its token being revoked or expiring, or its user being deleted", content_type = "text/event-stream", body = Event),
        (status = 429, description = "The caller has its share of event streams open already (8 per user or admin, 16 for the producer); the error says which", body = ErrorBody),
        (status = 503, description = "The event streams of users and admins are all taken (256 in all, of which 16 are kept for the producer)", body = ErrorBody),
    ),
)]
pub async fn stream(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let slot = state
        .inner
        .streams
        .acquire(StreamKind::Events, &principal)?;
    let revoked = until_revoked(&state, &principal, None);
    let receiver = state.subscribe_events();
    let gaps = WatchStream::from_changes(state.inner.events.resyncs()).map(|_| {
        Ok(SseEvent::default()
            .event("resync")
            .data(r#"{"reason":"events of other instances may have been missed"}"#))
    });
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
    // Also ends the stream when the service stops.
    let body = hello
        .chain(stream::select(events, gaps))
        .take_until(revoked);
    Ok(Sse::new(body).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
