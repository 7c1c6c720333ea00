//! Publishing generated events to one topic: the envelope, `seq`, bulk-awaited
//! deliveries and per-topic counters.
//!
//! Deliveries are never awaited one at a time: each send puts its `DeliveryFuture` in a
//! bounded window (a `FuturesUnordered`) that is reaped without blocking after every send,
//! and awaited only when the window is full, when librdkafka's local queue is full, or
//! when the publisher drains before stopping.
//!
//! Retries: librdkafka already retries retriable produce errors until
//! `message.timeout.ms`; with idempotence on, its retries keep order and do not
//! duplicate. A delivery that fails after that is final: it is counted as failed and
//! logged with its reason, and its `seq` stays missing so a consumer sees the loss.
//! A full local queue (`QueueFull`) is retried here once in-flight messages complete.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use streamhub_kafka::rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use streamhub_kafka::rdkafka::message::{Header, OwnedHeaders};
use streamhub_kafka::rdkafka::producer::{DeliveryFuture, FutureRecord, Producer as _};
use streamhub_model::{DataType, EnvelopeOf};

use crate::faults::{
    FAULT_HEADER, Fault, FaultCounts, FaultInjector, FaultRates, LATE_MS_HEADER, Plan, poison_body,
};
use crate::generate::{Generator, Payload};
use crate::kafka_producer::Producer;

/// What a `DeliveryFuture` resolves to.
type DeliveryOutcome = <DeliveryFuture as std::future::Future>::Output;

/// Deliveries awaited at most at once per topic. librdkafka bounds its own queue
/// (100k messages by default in streamhub); this bounds the futures on our side.
pub const DEFAULT_WINDOW: usize = 32_768;

/// Sent, acknowledged and failed messages of one topic, shared with the status line.
#[derive(Debug, Default)]
pub struct Counters {
    sent: AtomicU64,
    acknowledged: AtomicU64,
    failed: AtomicU64,
    /// The `seq` the next message gets: where a restarted publisher continues.
    next_seq: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub sent: u64,
    pub acknowledged: u64,
    pub failed: u64,
}

impl Totals {
    /// Messages handed to librdkafka whose outcome is not known yet.
    pub fn in_flight(&self) -> u64 {
        self.sent.saturating_sub(self.acknowledged + self.failed)
    }
}

impl Counters {
    pub fn next_seq(&self) -> u64 {
        self.next_seq.load(Ordering::Relaxed)
    }

    pub fn totals(&self) -> Totals {
        Totals {
            sent: self.sent.load(Ordering::Relaxed),
            acknowledged: self.acknowledged.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

/// The envelope, borrowed, so a message is serialized straight from the generator's
/// record into a reused buffer; the time is preformatted (see [`Clock`]).
type EnvelopeRef<'a> = EnvelopeOf<&'a str, &'a str, &'a Payload>;

/// A send that librdkafka refused outright (not a full queue): the message was
/// counted as failed.
#[derive(Debug, thiserror::Error)]
#[error("publishing to {topic:?} failed: {source}")]
pub struct SendError {
    pub topic: String,
    #[source]
    pub source: RdKafkaError,
}

impl SendError {
    /// True when librdkafka's client is no longer usable (fatal idempotence error ...).
    pub fn is_fatal(&self) -> bool {
        self.source.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal)
    }
}

/// Generates and publishes the events of one topic.
pub struct TopicPublisher {
    producer: Producer,
    topic: Arc<str>,
    producer_id: Arc<str>,
    generator: Generator,
    next_seq: u64,
    counters: Arc<Counters>,
    in_flight: FuturesUnordered<DeliveryFuture>,
    window: usize,
    buf: Vec<u8>,
    /// The envelope timestamp, formatted once per millisecond rather than per message.
    clock: Clock,
    /// Failures logged so far, to keep a failing broker from flooding the log.
    failures_logged: u64,
    meters: Meters,
    /// `--faults`: none by default.
    faults: Option<FaultInjector>,
    fault_counts: FaultCounts,
    /// An out-of-order event waiting for the next one: key and message.
    held: Option<(Vec<u8>, Vec<u8>)>,
}

/// This topic's counters in the process's `metrics` recorder (the admin service's
/// `/metrics` under `streamhub up`; no-ops where none is installed). Registered once:
/// the per-message cost is an atomic add.
struct Meters {
    sent: metrics::Counter,
    acknowledged: metrics::Counter,
    errors: metrics::Counter,
}

impl Meters {
    fn new(topic: &str) -> Meters {
        let label = [("topic", topic.to_owned())];
        Meters {
            sent: metrics::counter!("streamhub_producer_messages_sent_total", &label),
            acknowledged: metrics::counter!(
                "streamhub_producer_messages_acknowledged_total",
                &label
            ),
            errors: metrics::counter!("streamhub_producer_send_errors_total", &label),
        }
    }
}

impl TopicPublisher {
    pub fn new(
        producer: Producer,
        topic: impl Into<Arc<str>>,
        producer_id: impl Into<Arc<str>>,
        generator: Generator,
    ) -> Self {
        let topic = topic.into();
        Self {
            meters: Meters::new(&topic),
            producer,
            topic,
            producer_id: producer_id.into(),
            generator,
            next_seq: 0,
            counters: Arc::default(),
            in_flight: FuturesUnordered::new(),
            window: DEFAULT_WINDOW,
            buf: Vec::with_capacity(512),
            clock: Clock::default(),
            failures_logged: 0,
            faults: None,
            fault_counts: FaultCounts::default(),
            held: None,
        }
    }

    /// Injects faults at `rates`, drawn from `seed` (nothing changes when all are 0).
    pub fn with_faults(mut self, rates: FaultRates, seed: u64) -> Self {
        self.faults = (!rates.is_off()).then(|| FaultInjector::new(rates, seed));
        self
    }

    /// Faulty messages sent so far.
    pub fn fault_counts(&self) -> FaultCounts {
        self.fault_counts
    }

    /// Starts `seq` at `next_seq` instead of 0: a producer id that already published to
    /// the topic continues its sequence.
    pub fn starting_at(mut self, next_seq: u64) -> Self {
        self.next_seq = next_seq;
        self.counters.next_seq.store(next_seq, Ordering::Relaxed);
        self
    }

    /// Shares counters with an earlier publisher of the topic, so totals and `seq` carry on
    /// (call before [`Self::starting_at`]).
    pub fn with_counters(mut self, counters: Arc<Counters>) -> Self {
        self.counters = counters;
        self
    }

    /// Sends with `producer` from now on (the shared one was replaced); returns the old one.
    /// Deliveries in flight on the old one are still counted.
    pub fn replace_producer(&mut self, producer: Producer) -> Producer {
        std::mem::replace(&mut self.producer, producer)
    }

    /// librdkafka's reason, once it raised a fatal error on this publisher's producer.
    pub fn fatal_error(&self) -> Option<String> {
        self.producer
            .client()
            .fatal_error()
            .map(|(_, reason)| reason)
    }

    /// Bounds the deliveries awaited at once (at least 1).
    pub fn with_window(mut self, window: usize) -> Self {
        self.window = window.max(1);
        self
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn data_type(&self) -> DataType {
        self.generator.data_type()
    }

    /// The `seq` the next message gets. Starts at 0 (or [`Self::starting_at`]) and grows by
    /// one per message.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Generates the next event and hands it to librdkafka. Returns once it is queued;
    /// its delivery is counted later. Waits for in-flight deliveries when the window or
    /// librdkafka's queue is full. With faults on, the event may be late, held back for
    /// the next one, duplicated or followed by a poison message (see [`crate::faults`]).
    /// Its `timestamp` is the wall clock's now.
    pub async fn send_next(&mut self) -> Result<(), SendError> {
        self.send(None).await
    }

    /// [`Self::send_next`], the event's `timestamp` being `at`: its instant on a
    /// [`crate::schedule::Schedule`], so that the same schedule stamps a replay alike.
    pub async fn send_next_at(&mut self, at: DateTime<Utc>) -> Result<(), SendError> {
        self.send(Some(at)).await
    }

    async fn send(&mut self, at: Option<DateTime<Utc>>) -> Result<(), SendError> {
        while self.in_flight.len() >= self.window {
            self.await_one().await;
        }
        let mut plan = match self.faults.as_mut() {
            Some(f) => f.plan(),
            None => Plan::Clean,
        };
        if plan == Plan::OutOfOrder && self.held.is_some() {
            plan = Plan::Clean;
        }
        let record = self.generator.next_record();
        let seq = self.next_seq;
        self.next_seq += 1;
        // The buffer and topic are held outside `self` while the record borrows them,
        // so that a full queue can be waited out with `&mut self`.
        let mut buf = std::mem::take(&mut self.buf);
        let topic = Arc::clone(&self.topic);
        buf.clear();
        // A late event's time is behind the Kafka timestamp (processing time), set here too.
        let (late_text, kafka_time) = match plan {
            Plan::Late(ms) => {
                let now = at.unwrap_or_else(Utc::now);
                let event_time = now - chrono::TimeDelta::milliseconds(ms);
                (
                    Some(event_time.to_rfc3339_opts(SecondsFormat::Millis, true)),
                    Some(now.timestamp_millis()),
                )
            }
            _ => (None, None),
        };
        let envelope = EnvelopeRef {
            topic: &topic,
            data_type: record.payload.data_type(),
            timestamp: match &late_text {
                Some(text) => text,
                None => self.clock.text(at.unwrap_or_else(Utc::now)),
            },
            producer_id: &self.producer_id,
            seq,
            payload: &record.payload,
        };
        // Writing plain structs of strings and numbers to a Vec cannot fail.
        if let Err(e) = serde_json::to_writer(&mut buf, &envelope) {
            unreachable!("serializing an envelope failed: {e}");
        }
        let key = record.key.as_bytes();
        if plan == Plan::OutOfOrder {
            // Sent after the next event, which is of the same entity.
            self.held = Some((key.to_vec(), buf.clone()));
            self.generator.repeat_entity();
            self.counters.next_seq.store(seq + 1, Ordering::Relaxed);
            self.buf = buf;
            return Ok(());
        }
        let mark = match plan {
            Plan::Late(ms) => Some((Fault::Late, Some(ms))),
            _ => None,
        };
        let outcome = match self.enqueue(&topic, key, &buf, mark, kafka_time).await {
            Ok(()) => {
                self.counters.next_seq.store(seq + 1, Ordering::Relaxed);
                Ok(())
            }
            Err(source) => {
                // librdkafka did not take it: no message has this seq, so the next
                // one gets it and the sequence keeps no gap that was never published.
                self.next_seq = seq;
                Err(SendError {
                    topic: topic.to_string(),
                    source,
                })
            }
        };
        if outcome.is_ok() {
            self.send_faults(plan, &topic, key, &buf, seq).await;
        }
        self.buf = buf;
        outcome
    }

    /// The messages a plan adds after its event: a held one, a second copy, a poison one.
    /// Their failures are counted like any message's but do not stop the stream.
    async fn send_faults(
        &mut self,
        plan: Plan,
        topic: &str,
        key: &[u8],
        envelope: &[u8],
        seq: u64,
    ) {
        if let Some((held_key, held)) = self.held.take() {
            let _ = self
                .enqueue(
                    topic,
                    &held_key,
                    &held,
                    Some((Fault::OutOfOrder, None)),
                    None,
                )
                .await;
        }
        match plan {
            Plan::Duplicate => {
                let mark = Some((Fault::Duplicate, None));
                let _ = self.enqueue(topic, key, envelope, mark, None).await;
            }
            Plan::Poison(kind) => {
                let body = poison_body(kind, envelope, topic, &self.producer_id, seq);
                let _ = self
                    .enqueue(topic, key, &body, Some((kind, None)), None)
                    .await;
            }
            _ => {}
        }
    }

    /// Hands one message to librdkafka, waiting out a full queue; counts it as sent, or as
    /// sent and failed when refused. `fault` marks it with [`FAULT_HEADER`] (and a late one's
    /// delay with [`LATE_MS_HEADER`]) and counts it in [`Self::fault_counts`].
    async fn enqueue(
        &mut self,
        topic: &str,
        key: &[u8],
        body: &[u8],
        fault: Option<(Fault, Option<i64>)>,
        timestamp_ms: Option<i64>,
    ) -> Result<(), RdKafkaError> {
        let mut fut = FutureRecord::to(topic).key(key).payload(body);
        if let Some((kind, late_ms)) = fault {
            let mut headers = OwnedHeaders::new().insert(Header {
                key: FAULT_HEADER,
                value: Some(kind.name()),
            });
            if let Some(ms) = late_ms {
                headers = headers.insert(Header {
                    key: LATE_MS_HEADER,
                    value: Some(&ms.to_string()),
                });
            }
            fut = fut.headers(headers);
        }
        if let Some(ms) = timestamp_ms {
            fut = fut.timestamp(ms);
        }
        loop {
            match self.producer.send_result(fut) {
                Ok(delivery) => {
                    let sent = self.counters.sent.fetch_add(1, Ordering::Relaxed);
                    self.meters.sent.increment(1);
                    self.in_flight.push(delivery);
                    if let Some((kind, _)) = fault {
                        self.fault_counts.add(kind);
                    }
                    // Counting completions in small batches keeps the per-message cost low.
                    if sent.is_multiple_of(64) {
                        self.reap_ready();
                    }
                    return Ok(());
                }
                Err((RdKafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    fut = back;
                    if self.in_flight.is_empty() {
                        // Another publisher sharing the producer filled the queue.
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    } else {
                        self.await_one().await;
                    }
                }
                Err((source, _)) => {
                    self.counters.sent.fetch_add(1, Ordering::Relaxed);
                    self.counters.failed.fetch_add(1, Ordering::Relaxed);
                    self.meters.errors.increment(1);
                    return Err(source);
                }
            }
        }
    }

    /// Counts the deliveries that completed, without waiting.
    pub fn reap_ready(&mut self) {
        use futures::FutureExt;
        while let Some(Some(result)) = self.in_flight.next().now_or_never() {
            self.count(result);
        }
    }

    /// Waits for one in-flight delivery; returns at once when none is in flight.
    pub async fn await_one(&mut self) {
        if let Some(result) = self.in_flight.next().await {
            self.count(result);
        }
    }

    /// Waits for every in-flight delivery, at most `timeout`, then flushes librdkafka.
    /// Returns the deliveries still unknown at the deadline.
    pub async fn drain(&mut self, timeout: Duration) -> usize {
        // An event held back to arrive out of order goes out now, after the last one.
        if let Some((key, held)) = self.held.take() {
            let topic = Arc::clone(&self.topic);
            let mark = Some((Fault::OutOfOrder, None));
            let _ = self.enqueue(&topic, &key, &held, mark, None).await;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.in_flight.is_empty() {
            match tokio::time::timeout_at(deadline, self.in_flight.next()).await {
                Ok(Some(result)) => self.count(result),
                Ok(None) => break,
                Err(_) => break,
            }
        }
        self.in_flight.len()
    }

    fn count(&mut self, result: DeliveryOutcome) {
        match result {
            Ok(Ok(_)) => {
                self.counters.acknowledged.fetch_add(1, Ordering::Relaxed);
                self.meters.acknowledged.increment(1);
            }
            Ok(Err((error, _message))) => {
                self.meters.errors.increment(1);
                let failed = self.counters.failed.fetch_add(1, Ordering::Relaxed) + 1;
                self.log_failure(failed, &error.to_string());
            }
            Err(_canceled) => {
                self.meters.errors.increment(1);
                let failed = self.counters.failed.fetch_add(1, Ordering::Relaxed) + 1;
                self.log_failure(failed, "the producer was dropped before delivery");
            }
        }
    }

    fn log_failure(&mut self, failed: u64, reason: &str) {
        // The first ten failures, then one in a thousand: enough to see the reason.
        if self.failures_logged < 10 || failed.is_multiple_of(1000) {
            self.failures_logged += 1;
            tracing::warn!(topic = %self.topic, failed, reason, "delivery failed");
        }
    }
}

/// The current time as RFC 3339 text, reformatted only when the millisecond changes.
#[derive(Default)]
struct Clock {
    millis: i64,
    text: String,
}

impl Clock {
    /// `at` as RFC 3339 with milliseconds.
    fn text(&mut self, at: DateTime<Utc>) -> &str {
        let millis = at.timestamp_millis();
        if millis != self.millis || self.text.is_empty() {
            self.millis = millis;
            self.text = at.to_rfc3339_opts(SecondsFormat::Millis, true);
        }
        &self.text
    }
}

/// Flushes librdkafka's queue off the async runtime, bounded by `timeout`.
pub async fn flush(producer: &Producer, timeout: Duration) -> Result<(), RdKafkaError> {
    let producer = producer.clone();
    tokio::task::spawn_blocking(move || producer.flush(timeout))
        .await
        .unwrap_or(Err(RdKafkaError::Canceled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_text_is_rfc3339_with_milliseconds() {
        let mut clock = Clock::default();
        let before = Utc::now() - chrono::TimeDelta::milliseconds(1);
        let t: chrono::DateTime<Utc> = clock.text(Utc::now()).parse().unwrap();
        assert!(t >= before && t <= Utc::now());
        assert!(clock.text(Utc::now()).ends_with('Z'));
        assert_eq!(
            clock.text(Utc::now()).len(),
            "2026-01-01T00:00:00.000Z".len()
        );
    }

    #[test]
    fn envelope_text_parses_as_the_model_envelope() {
        let mut g = Generator::new(DataType::Weather, 5);
        let record = g.next_record();
        let mut clock = Clock::default();
        let text = serde_json::to_vec(&EnvelopeRef {
            topic: "weather_feed",
            data_type: record.payload.data_type(),
            timestamp: clock.text(Utc::now()),
            producer_id: "host-1-abcd",
            seq: 7,
            payload: &record.payload,
        })
        .unwrap();
        let env = streamhub_model::Envelope::parse(&text).expect("an envelope");
        assert_eq!(env.topic, "weather_feed");
        assert_eq!(env.data_type, DataType::Weather);
        assert_eq!(env.seq, 7);
        assert_eq!(env.payload, record.payload.to_value());
    }
}
