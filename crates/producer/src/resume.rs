//! Where a restarted producer continues `seq`.
//!
//! `seq` counts per `(producer_id, topic)` so that a consumer can prove it saw everything.
//! A producer started again under the same id (`--producer-id`) must therefore not start at
//! 0 again: it continues after the highest `seq` its id already has in the topic. Kafka is
//! the record of what was published, so that is where it looks, reading each partition
//! backwards in growing windows (the last message, then the last 16, 256 ...) until a
//! window holds a message of this producer or the partition's start is reached.
//!
//! Messages of the killed process that Kafka never stored get no second chance under the
//! same `seq`: they were never acknowledged, and their `seq` stays missing.

use std::time::{Duration, Instant};

use serde::Deserialize;
use streamhub_kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use streamhub_kafka::rdkafka::error::KafkaError as RdKafkaError;
use streamhub_kafka::rdkafka::{Message, Offset, TopicPartitionList};
use streamhub_kafka::{KafkaConfig, KafkaError};

/// A read that receives neither a message nor the end of the partition for this long is
/// over: a bound for a broker that never reports the end of a partition.
const IDLE_END: Duration = Duration::from_secs(2);

/// Bound on reading a topic back to find where a producer id's `seq` stopped.
pub const DEFAULT_BOUND: Duration = Duration::from_secs(60);

/// Growth of the window read from the end of a partition.
const WINDOW_GROWTH: i64 = 16;

#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("cannot read topic {topic:?} back from Kafka: {source}")]
    Kafka {
        topic: String,
        #[source]
        source: KafkaError,
    },
    #[error(
        "reading topic {topic:?} back to find the last seq of producer {producer_id:?} took \
         more than {bound:?}"
    )]
    Timeout {
        topic: String,
        producer_id: String,
        bound: Duration,
    },
}

/// The fields of an envelope this needs, borrowed from the message.
#[derive(Deserialize)]
struct Stamp<'a> {
    #[serde(borrow)]
    producer_id: std::borrow::Cow<'a, str>,
    seq: u64,
}

/// The `seq` that the next message of `producer_id` to `topic` gets: one more than the
/// highest it has in Kafka, 0 when it has none. Bounded by `bound`.
pub async fn next_seq(
    config: &KafkaConfig,
    topic: &str,
    producer_id: &str,
    bound: Duration,
) -> Result<u64, ResumeError> {
    let kafka_error = |source| ResumeError::Kafka {
        topic: topic.to_owned(),
        source,
    };
    let admin = config.admin().map_err(kafka_error)?;
    let marks = admin.watermarks(topic).await.map_err(kafka_error)?;
    let consumer: BaseConsumer = config
        .client_config()
        .set("group.id", format!("streamhub-resume-{producer_id}"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "earliest")
        .create()
        .map_err(|e| kafka_error(KafkaError::Client(e)))?;
    let task_failed = |e: tokio::task::JoinError| ResumeError::Kafka {
        topic: topic.to_owned(),
        source: KafkaError::Broker(format!("reading back failed: {e}")),
    };
    let (topic, producer_id) = (topic.to_owned(), producer_id.to_owned());
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + bound;
        let mut highest: Option<u64> = None;
        for m in marks {
            let found = last_seq_in_partition(
                &consumer,
                &topic,
                m.partition,
                (m.low, m.high),
                &producer_id,
                deadline,
            )
            .map_err(|e| match e {
                Scan::Timeout => ResumeError::Timeout {
                    topic: topic.clone(),
                    producer_id: producer_id.clone(),
                    bound,
                },
                Scan::Kafka(e) => ResumeError::Kafka {
                    topic: topic.clone(),
                    source: KafkaError::Client(e),
                },
            })?;
            highest = highest.max(found);
        }
        Ok(highest.map_or(0, |s| s + 1))
    })
    .await
    .map_err(task_failed)?
}

enum Scan {
    Timeout,
    Kafka(RdKafkaError),
}

/// The highest `seq` of `producer_id` in one partition, reading windows that grow from its
/// end until one holds a message of that producer.
fn last_seq_in_partition(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    (low, high): (i64, i64),
    producer_id: &str,
    deadline: Instant,
) -> Result<Option<u64>, Scan> {
    if high <= low {
        return Ok(None);
    }
    let mut back = 1i64;
    loop {
        let start = high.saturating_sub(back).max(low);
        let found = read_to_end(consumer, topic, partition, start, producer_id, deadline)?;
        if found.is_some() || start == low {
            return Ok(found);
        }
        back = back.saturating_mul(WINDOW_GROWTH);
    }
}

/// Reads one partition from `start` to its end; the highest `seq` of `producer_id` seen.
fn read_to_end(
    consumer: &BaseConsumer,
    topic: &str,
    partition: i32,
    start: i64,
    producer_id: &str,
    deadline: Instant,
) -> Result<Option<u64>, Scan> {
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Offset(start))
        .map_err(Scan::Kafka)?;
    consumer.assign(&assignment).map_err(Scan::Kafka)?;
    let mut highest = None;
    let mut last_activity = Instant::now();
    loop {
        if Instant::now() >= deadline {
            return Err(Scan::Timeout);
        }
        match consumer.poll(Duration::from_millis(100)) {
            None if last_activity.elapsed() >= IDLE_END => break,
            None => {}
            Some(Ok(message)) => {
                last_activity = Instant::now();
                let stamp = message
                    .payload()
                    .and_then(|p| serde_json::from_slice::<Stamp>(p).ok());
                // Messages that are not envelopes belong to nobody's seq.
                if let Some(stamp) = stamp
                    && stamp.producer_id == producer_id
                {
                    highest = highest.max(Some(stamp.seq));
                }
            }
            Some(Err(RdKafkaError::PartitionEOF(_))) => break,
            Some(Err(e)) => return Err(Scan::Kafka(e)),
        }
    }
    consumer.unassign().map_err(Scan::Kafka)?;
    Ok(highest)
}
