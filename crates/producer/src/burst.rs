//! `streamhub producer generate`: a fixed number of events straight to Kafka, for load
//! tests and demos, with a summary of what was delivered.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::Utc;
use serde::Serialize;
use streamhub_kafka::rdkafka::producer::Producer;
use streamhub_kafka::{Created, TopicSpec};
use streamhub_model::{DataType, RatePerSecond};
use tokio_util::sync::CancellationToken;

use crate::args::{GenerateArgs, Timestamps};
use crate::faults::FaultCounts;
use crate::generate::Generator;
use crate::publish::{TopicPublisher, flush};
use crate::schedule::Pace;
use crate::{default_producer_id, kafka_producer, replay, resume, topic_seed};

/// How long deliveries still in flight are awaited after the last send.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(90);

/// What `generate` did. `seconds` runs from the first send to the last acknowledgement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub topic: String,
    pub data_type: DataType,
    pub producer_id: String,
    /// The `seq` of the first event: 0, or where an earlier run of this producer id stopped.
    pub first_seq: u64,
    pub requested: u64,
    pub sent: u64,
    pub acknowledged: u64,
    pub failed: u64,
    pub seconds: f64,
    pub messages_per_second: f64,
    pub topic_created: bool,
    /// Faulty messages (`--faults`); duplicates and poison ones are sent beside the events.
    pub faults: FaultCounts,
}

impl Summary {
    /// The human-readable line.
    pub fn line(&self) -> String {
        let mut line = format!(
            "published {} of {} {} events to {} in {:.2} s ({:.0} msg/s), {} failed",
            self.acknowledged,
            self.expected_messages(),
            self.data_type,
            self.topic,
            self.seconds,
            self.messages_per_second,
            self.failed,
        );
        if self.faults.total() > 0 {
            line.push_str(&format!("; faults: {}", self.faults));
        }
        line
    }

    /// The events asked for, and the duplicates and poison messages sent beside them.
    pub fn expected_messages(&self) -> u64 {
        self.requested + self.faults.extra_messages()
    }
}

/// Publishes `args.count` envelopes, prints the summary on stdout (one JSON line with
/// `--json`) and fails when a delivery failed or the run was interrupted.
pub async fn generate(args: GenerateArgs, shutdown: CancellationToken) -> anyhow::Result<Summary> {
    let summary = publish_burst(&args, &shutdown).await?;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        println!("{}", summary.line());
    }
    if summary.failed > 0 {
        bail!(
            "{} of {} deliveries to {} failed (reasons in the log)",
            summary.failed,
            summary.sent,
            summary.topic
        );
    }
    if summary.acknowledged < summary.expected_messages() {
        bail!(
            "interrupted: {} of {} messages delivered to {}",
            summary.acknowledged,
            summary.expected_messages(),
            summary.topic
        );
    }
    Ok(summary)
}

/// [`generate`] without printing or judging the outcome.
pub async fn publish_burst(
    args: &GenerateArgs,
    shutdown: &CancellationToken,
) -> anyhow::Result<Summary> {
    let topic = args.topic.as_str();
    // Read first: a replay that cannot happen creates no topic.
    let replay = replay::recorded(args).await?;
    let data_type = replay.as_ref().map_or_else(
        || {
            args.data_type
                .unwrap_or_else(|| DataType::infer_from_name(topic))
        },
        |g| g.data_type,
    );
    let config = args.kafka.config();
    let admin = config
        .admin()
        .context("cannot create the Kafka admin client")?;
    let created = admin
        .ensure_topic(&TopicSpec::new(
            topic,
            args.partitions,
            args.replication_factor,
        ))
        .await
        .with_context(|| format!("cannot create topic {topic:?}"))?;
    if created == Created::New {
        tracing::info!(topic, partitions = args.partitions, "created topic");
    }
    let producer = kafka_producer::create(&config).context("cannot create the Kafka producer")?;
    // Connect and learn the topic's partition leaders before the clock starts: otherwise the
    // first events are stamped, then wait for librdkafka's start-up (about half a second).
    let warm = producer.clone();
    let warm_topic = topic.to_owned();
    let timeout = config.timeout();
    tokio::task::spawn_blocking(move || warm.client().fetch_metadata(Some(&warm_topic), timeout))
        .await
        .context("the metadata task failed")?
        .with_context(|| format!("cannot reach Kafka at {}", config.bootstrap_servers()))?;
    let producer_id = args
        .producer_id
        .clone()
        .or_else(|| replay.as_ref().map(|g| g.producer_id.clone()))
        .unwrap_or_else(default_producer_id);
    // A given id may have published to this topic before: its seq continues there.
    let first_seq = if let Some(g) = &replay {
        g.first_seq
    } else if args.producer_id.is_some() && created == Created::AlreadyExisted {
        let seq = resume::next_seq(&config, topic, &producer_id, resume::DEFAULT_BOUND)
            .await
            .context("cannot continue this producer id's seq")?;
        if seq > 0 {
            tracing::info!(
                topic,
                producer_id,
                next_seq = seq,
                "continuing this producer id's seq"
            );
        }
        seq
    } else {
        0
    };
    // One seed for the events, the send instants and the faults, each drawn apart; a
    // replay's is the one its source recorded.
    let seed = match (&replay, args.seed) {
        (Some(g), _) => g.seed,
        (None, Some(s)) => topic_seed(s, topic),
        (None, None) => rand::random(),
    };
    let generator = Generator::new(data_type, seed).with_keys(args.keys);
    let faults = replay
        .as_ref()
        .map_or(args.faults, |g| g.faults.unwrap_or_default());
    let mut publisher =
        TopicPublisher::new(producer.clone(), topic, producer_id.as_str(), generator)
            .starting_at(first_seq)
            .with_faults(faults, seed);

    // Events are stamped with their instants on the schedule; a replay follows its
    // source's, from the source's start (`--timestamps keep`) or from now.
    let (mut schedule, paced) = match &replay {
        Some(g) => {
            let origin = match args.timestamps.unwrap_or_default() {
                Timestamps::Keep => g.started_at,
                Timestamps::Shift => Utc::now(),
            };
            (Some(Pace::of(g).schedule(origin, g.seed)), args.paced)
        }
        None => {
            let pace = match &args.profile {
                Some(profile) => Some(Pace::Profile(profile.clone())),
                None if args.rate == 0.0 => None,
                None => Some(Pace::PerSecond(
                    RatePerSecond::new(args.rate).map_err(|e| anyhow::anyhow!("--rate {e}"))?,
                )),
            };
            (pace.map(|p| p.schedule(Utc::now(), seed)), true)
        }
    };
    let start = Instant::now();
    let mut send_error = None;
    for i in 0..args.count {
        if shutdown.is_cancelled() {
            break;
        }
        let at = schedule.as_mut().map(|schedule| {
            let t = schedule.next_instant();
            (
                t,
                schedule.origin() + chrono::TimeDelta::nanoseconds((t * 1e9) as i64),
            )
        });
        if let Some((t, _)) = at
            && paced
        {
            let due = Duration::try_from_secs_f64(t).unwrap_or(Duration::MAX);
            let Some(due) = tokio::time::Instant::from_std(start).checked_add(due) else {
                break;
            };
            if due > tokio::time::Instant::now() {
                tokio::select! {
                    _ = tokio::time::sleep_until(due) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
        }
        if i % 4096 == 4095 {
            // Sends rarely wait, so give the runtime's other tasks a turn now and then.
            tokio::task::yield_now().await;
        }
        let sent = match at {
            Some((_, at)) => publisher.send_next_at(at).await,
            None => publisher.send_next().await,
        };
        if let Err(e) = sent {
            // A refused send (message too large, unknown topic, fatal client error)
            // would refuse the next ones too.
            tracing::error!(topic, error = %e, "stopping: Kafka refused a message");
            send_error = Some(e);
            break;
        }
    }
    let pending = publisher.drain(DRAIN_TIMEOUT).await;
    if pending > 0 {
        tracing::warn!(
            topic,
            pending,
            "deliveries still unknown after {DRAIN_TIMEOUT:?}"
        );
    }
    if let Err(e) = flush(&producer, Duration::from_secs(5)).await {
        tracing::warn!(topic, error = %e, "flush did not complete");
    }
    let seconds = start.elapsed().as_secs_f64();
    let totals = publisher.counters().totals();
    if let Some(e) = send_error
        && totals.acknowledged == 0
    {
        return Err(e).context("no event was published");
    }
    Ok(Summary {
        topic: topic.to_owned(),
        data_type,
        producer_id,
        first_seq,
        requested: args.count,
        sent: totals.sent,
        acknowledged: totals.acknowledged,
        failed: totals.failed + pending as u64,
        seconds,
        messages_per_second: if seconds > 0.0 {
            totals.acknowledged as f64 / seconds
        } else {
            0.0
        },
        topic_created: created == Created::New,
        faults: publisher.fault_counts(),
    })
}
