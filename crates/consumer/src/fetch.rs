//! Taking messages from librdkafka on a thread of their own, so that showing them (the
//! envelope check and the output, about half of the work per message) runs beside it
//! instead of after it.
//!
//! The fetch thread copies each message out of librdkafka's buffers into a [`Batch`] and
//! hands batches over a small bounded channel: when the output is slow the thread waits,
//! and librdkafka's own read-ahead bound (see [`crate::kafka::READ_AHEAD`]) holds. It
//! stores no offsets: whoever shows the messages stores them, after the output took them.

use std::ops::Range;
use std::sync::Arc;
use std::thread::JoinHandle;

use futures::future::{Either, select};
use futures::{FutureExt, StreamExt};
use rdkafka::consumer::StreamConsumer;
use rdkafka::error::KafkaError;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::kafka;
use crate::render::Record;

/// Most messages in one batch.
const BATCH_MESSAGES: usize = 512;
/// Most key and value bytes in one batch (a batch holds at least one message).
const BATCH_BYTES: usize = 256 * 1024;
/// Batches on their way to the output: with [`BATCH_BYTES`], a bound on the memory
/// between the two sides.
const BATCHES_IN_FLIGHT: usize = 4;

/// What the fetch thread hands over.
pub enum Fetched {
    Messages(Batch),
    /// A consumer error (a broker restarting, a refused read): the caller decides.
    Error(KafkaError),
    /// The consumer's message stream ended.
    Ended,
}

/// Messages copied out of librdkafka, in the order they were consumed.
#[derive(Default)]
pub struct Batch {
    /// Keys and values, back to back.
    bytes: Vec<u8>,
    /// Topic names of the batch; each message points into this list.
    topics: Vec<String>,
    messages: Vec<Copied>,
}

struct Copied {
    topic: usize,
    partition: i32,
    offset: i64,
    timestamp_ms: Option<i64>,
    key: Option<Range<usize>>,
    value: Option<Range<usize>>,
}

impl Batch {
    /// Copies a message in; [`Batch::records`] gives it back as it came.
    fn push(&mut self, record: &Record<'_>) {
        let topic = match self.topics.iter().rposition(|t| t == record.topic) {
            Some(i) => i,
            None => {
                self.topics.push(record.topic.to_owned());
                self.topics.len() - 1
            }
        };
        let key = record.key.map(|k| self.copy(k));
        let value = record.value.map(|v| self.copy(v));
        self.messages.push(Copied {
            topic,
            partition: record.partition,
            offset: record.offset,
            timestamp_ms: record.timestamp_ms,
            key,
            value,
        });
    }

    fn copy(&mut self, bytes: &[u8]) -> Range<usize> {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(bytes);
        start..self.bytes.len()
    }

    fn is_full(&self) -> bool {
        self.messages.len() >= BATCH_MESSAGES || self.bytes.len() >= BATCH_BYTES
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The messages, as the renderer takes them.
    pub fn records(&self) -> impl Iterator<Item = Record<'_>> {
        self.messages.iter().map(|m| Record {
            topic: &self.topics[m.topic],
            partition: m.partition,
            offset: m.offset,
            key: m.key.clone().map(|r| &self.bytes[r]),
            timestamp_ms: m.timestamp_ms,
            value: m.value.clone().map(|r| &self.bytes[r]),
        })
    }
}

/// The fetch thread. Dropping it stops the thread and waits for its end, so that the
/// consumer it shares is the caller's alone again.
pub struct Fetcher {
    stop: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl Fetcher {
    /// Starts fetching from `consumer`; batches arrive on the returned receiver.
    pub fn start(
        consumer: Arc<StreamConsumer>,
    ) -> std::io::Result<(Fetcher, mpsc::Receiver<Fetched>)> {
        let (tx, rx) = mpsc::channel(BATCHES_IN_FLIGHT);
        let stop = CancellationToken::new();
        let thread = std::thread::Builder::new()
            .name("kafka-fetch".into())
            .spawn({
                let stop = stop.clone();
                // rdkafka's message stream wakes its task from librdkafka's queue callback:
                // any executor can drive it.
                move || futures::executor::block_on(fetch(&consumer, &tx, &stop))
            })?;
        Ok((
            Fetcher {
                stop,
                thread: Some(thread),
            },
            rx,
        ))
    }
}

impl Drop for Fetcher {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn fetch(consumer: &StreamConsumer, tx: &mpsc::Sender<Fetched>, stop: &CancellationToken) {
    // One stream for the whole read: `recv()` would register and drop a waker per message.
    let mut messages = consumer.stream();
    let mut batch = Batch::default();
    loop {
        let next = match messages.next().now_or_never() {
            Some(next) => next,
            None => {
                // Nothing more is waiting: hand over what there is, then wait.
                if !hand_over(&mut batch, tx, stop).await {
                    return;
                }
                match select(messages.next(), Box::pin(stop.cancelled())).await {
                    Either::Left((next, _)) => next,
                    Either::Right(_) => return,
                }
            }
        };
        match next {
            Some(Ok(message)) => {
                batch.push(&kafka::record_of(&message));
                if batch.is_full() && !hand_over(&mut batch, tx, stop).await {
                    return;
                }
            }
            Some(Err(e)) => {
                if !hand_over(&mut batch, tx, stop).await
                    || !send(tx, stop, Fetched::Error(e)).await
                {
                    return;
                }
            }
            None => {
                if hand_over(&mut batch, tx, stop).await {
                    send(tx, stop, Fetched::Ended).await;
                }
                return;
            }
        }
    }
}

/// Sends the batch unless it is empty, leaving an empty one; `false` as [`send`].
async fn hand_over(
    batch: &mut Batch,
    tx: &mpsc::Sender<Fetched>,
    stop: &CancellationToken,
) -> bool {
    batch.is_empty() || send(tx, stop, Fetched::Messages(std::mem::take(batch))).await
}

/// Sends unless the receiver is gone or the fetcher is stopping; `false` then.
async fn send(tx: &mpsc::Sender<Fetched>, stop: &CancellationToken, item: Fetched) -> bool {
    match select(Box::pin(tx.send(item)), Box::pin(stop.cancelled())).await {
        Either::Left((sent, _)) => sent.is_ok(),
        Either::Right(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(
        topic: &'a str,
        offset: i64,
        key: Option<&'a [u8]>,
        value: Option<&'a [u8]>,
    ) -> Record<'a> {
        Record {
            topic,
            partition: (offset % 3) as i32,
            offset,
            key,
            timestamp_ms: (offset % 2 == 0).then_some(1_796_000_000_000 + offset),
            value,
        }
    }

    #[test]
    fn a_batch_gives_back_what_was_copied_in_in_order() {
        let values: Vec<Vec<u8>> = (0..6)
            .map(|i| format!("{{\"n\":{i}}}").into_bytes())
            .collect();
        let sent = [
            record("sensor", 0, Some(b"k0"), Some(&values[0])),
            record("sensor", 1, None, Some(&values[1])),
            record("weather", 2, Some(b""), None),
            record("sensor", 3, Some(b"k3"), Some(b"")),
            record("weather", 4, Some(b"k4"), Some(&values[4])),
        ];
        let mut batch = Batch::default();
        assert!(batch.is_empty());
        for r in &sent {
            batch.push(r);
        }
        assert_eq!(
            batch.topics,
            ["sensor", "weather"],
            "topic names are kept once"
        );
        let back: Vec<Record<'_>> = batch.records().collect();
        assert_eq!(back, sent);
    }

    #[test]
    fn a_batch_is_full_at_its_message_or_byte_bound() {
        let mut batch = Batch::default();
        for offset in 0..BATCH_MESSAGES as i64 {
            assert!(!batch.is_full());
            batch.push(&record("t", offset, None, Some(b"{}")));
        }
        assert!(batch.is_full());

        let big = vec![b'x'; BATCH_BYTES];
        let mut batch = Batch::default();
        batch.push(&record("t", 0, None, Some(&big)));
        assert!(batch.is_full(), "one large message fills a batch");
    }
}
