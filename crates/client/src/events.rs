//! `GET /api/events` as a stream of [`ServerEvent`]s, parsed by `eventsource-stream`.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use eventsource_stream::{EventStream, EventStreamError};
use futures::{Stream, StreamExt};
use streamhub_model::api::Event;

use crate::Error;

/// What the event stream delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// A `topic` or `subscription` event.
    Event(Box<Event>),
    /// The server dropped events for this client (or its data was unreadable): reload
    /// everything.
    Resync,
    /// Bytes that completed no event: the server's greeting or keep-alive comment (every
    /// 15 s). A quiet stream is thereby seen as live.
    KeepAlive,
    /// An event name this version does not know.
    Other(String),
}

impl ServerEvent {
    fn decode(event: eventsource_stream::Event) -> Self {
        match event.event.as_str() {
            "topic" | "subscription" => match serde_json::from_str::<Event>(&event.data) {
                Ok(e) => ServerEvent::Event(Box::new(e)),
                Err(e) => {
                    tracing::warn!(event = event.event, error = %e, "unreadable event; reloading");
                    ServerEvent::Resync
                }
            },
            "resync" => ServerEvent::Resync,
            _ => ServerEvent::Other(event.event),
        }
    }
}

type Bytes = Pin<Box<dyn Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

/// The response body, counting the chunks that arrive.
struct Counted {
    body: Bytes,
    chunks: Arc<AtomicU64>,
}

impl Stream for Counted {
    type Item = reqwest::Result<bytes::Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = self.body.as_mut().poll_next(cx);
        if let Poll::Ready(Some(Ok(_))) = next {
            self.chunks.fetch_add(1, Ordering::Relaxed);
        }
        next
    }
}

/// The parsed events, plus [`ServerEvent::KeepAlive`] whenever data arrived that
/// completed no event: the parser drops comments, the only sign of life of a quiet stream.
pub(crate) struct Events {
    parser: EventStream<Counted>,
    chunks: Arc<AtomicU64>,
    reported: u64,
    base: String,
}

impl Events {
    pub(crate) fn new(response: reqwest::Response, base: String) -> Self {
        let chunks = Arc::new(AtomicU64::new(0));
        let body = Counted {
            body: Box::pin(response.bytes_stream()),
            chunks: Arc::clone(&chunks),
        };
        Events {
            parser: EventStream::new(body),
            chunks,
            reported: 0,
            base,
        }
    }
}

impl Stream for Events {
    type Item = Result<ServerEvent, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.parser.poll_next_unpin(cx) {
            Poll::Ready(item) => {
                this.reported = this.chunks.load(Ordering::Relaxed);
                Poll::Ready(item.map(|r| match r {
                    Ok(event) => Ok(ServerEvent::decode(event)),
                    Err(EventStreamError::Transport(e)) => Err(Error::Unreachable {
                        url: this.base.clone(),
                        reason: format!("event stream interrupted: {e}"),
                    }),
                    Err(e) => Err(Error::Protocol {
                        url: this.base.clone(),
                        reason: format!("unreadable event stream: {e}"),
                    }),
                }))
            }
            Poll::Pending => {
                let chunks = this.chunks.load(Ordering::Relaxed);
                if chunks != this.reported {
                    this.reported = chunks;
                    Poll::Ready(Some(Ok(ServerEvent::KeepAlive)))
                } else {
                    Poll::Pending
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse(event: &str, data: &str) -> eventsource_stream::Event {
        eventsource_stream::Event {
            event: event.into(),
            data: data.into(),
            ..Default::default()
        }
    }

    /// Chunks are sent one batch at a time, as a live stream delivers them.
    #[tokio::test]
    async fn events_split_across_chunks_and_comments() {
        let (tx, rx) = futures::channel::mpsc::unbounded::<std::io::Result<bytes::Bytes>>();
        let response = reqwest::Response::from(http::Response::new(reqwest::Body::wrap_stream(rx)));
        let mut events = Events::new(response, "http://h/".into());
        let send = |chunk: &'static str| {
            tx.unbounded_send(Ok(bytes::Bytes::from_static(chunk.as_bytes())))
                .unwrap()
        };
        let mut next = async || {
            tokio::time::timeout(std::time::Duration::from_secs(10), events.next())
                .await
                .expect("hang guard: the next event")
                .map(Result::unwrap)
        };

        // The greeting completes no event, but shows the stream is alive.
        send(": connected\n\n");
        assert_eq!(next().await, Some(ServerEvent::KeepAlive));

        send("event: res");
        send("ync\r\ndata: {\"missed\":3}\r\n\r\nevent: later\ndata: one\ndata:two\n\n");
        assert_eq!(next().await, Some(ServerEvent::Resync));
        assert_eq!(next().await, Some(ServerEvent::Other("later".into())));

        // The keep-alive comment.
        send(":\n\n");
        assert_eq!(next().await, Some(ServerEvent::KeepAlive));

        drop(tx);
        assert_eq!(next().await, None);
    }

    #[test]
    fn names_decide_the_kind() {
        assert_eq!(
            ServerEvent::decode(sse("resync", "{}")),
            ServerEvent::Resync
        );
        assert_eq!(
            ServerEvent::decode(sse("metrics", "{}")),
            ServerEvent::Other("metrics".into())
        );
    }

    #[test]
    fn unreadable_topic_data_asks_for_a_reload() {
        assert_eq!(
            ServerEvent::decode(sse("topic", "{not json")),
            ServerEvent::Resync
        );
    }
}
