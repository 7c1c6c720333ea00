//! The producer's control loop: learns topic states from the admin service (event stream
//! plus periodic listings), provisions approved topics in Kafka, activates them, and runs
//! one publishing task per topic that it pauses and resumes as the topic's state changes.
//!
//! A publishing task lives as long as the process once started, so a topic that is
//! deactivated and brought back continues its `seq` where it stopped.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::{FutureExt, StreamExt};
use streamhub_client::{Activation, Backoff, Client, ServerEvent};
use streamhub_kafka::{Admin, Created, KafkaConfig, KafkaError, TopicSpec};
use streamhub_model::api::{Event, Topic};
use streamhub_model::generation::Generation;
use streamhub_model::provisioning::{self, ProvisioningObstacle};
use streamhub_model::{DataType, RatePerSecond, TopicStatus};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::faults::FaultRates;
use crate::generate::{GENERATOR_VERSION, Generator};
use crate::kafka_producer::{Recovery, SharedProducer, drop_off_thread, recovery};
use crate::publish::{Counters, TopicPublisher, Totals};
use crate::resume;
use crate::schedule::{Pace, Schedule};
use crate::status_line;
use crate::topic_seed;

/// Bound on awaiting in-flight deliveries when a topic pauses or the producer stops.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(15);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const PROVISION_MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Waiting for the admin service or Kafka, reconnecting, restarting a publisher.
pub(crate) const RETRY: Backoff = Backoff::new(Duration::from_millis(500), MAX_BACKOFF);
const PROVISION_RETRY: Backoff = Backoff::new(Duration::from_millis(500), PROVISION_MAX_BACKOFF);
/// The server sends a keep-alive comment every 15 s; silence this long means a dead
/// connection.
const EVENT_STREAM_SILENCE: Duration = Duration::from_secs(45);

/// A publisher that panicked and then ran this long starts its backoff afresh.
const STABLE_RUN: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, PartialEq)]
struct Desired {
    active: bool,
    pace: Pace,
}

/// What the control loop needs beside its own state.
pub(crate) struct Context {
    pub admin: Client,
    pub kafka: Arc<Admin>,
    pub kafka_config: KafkaConfig,
    /// Continue each topic's `seq` after the highest this producer id has in Kafka.
    pub resume_seq: bool,
    pub producer: SharedProducer,
    pub producer_id: Arc<str>,
    pub rate: Option<RatePerSecond>,
    pub seed: Option<u64>,
    pub faults: FaultRates,
    pub poll_interval: Duration,
}

enum Signal {
    Event(ServerEvent),
    /// The event stream (re)connected: what happened meanwhile is unknown.
    Connected,
    Provisioned {
        name: String,
        outcome: Provisioning,
        /// Where the topic's `seq` continues, when it was looked up.
        next_seq: Option<u64>,
        /// When the producer activated the topic, recording its generation: its
        /// schedule's origin.
        started_at: Option<DateTime<Utc>>,
    },
}

#[derive(Debug)]
enum Provisioning {
    /// The topic exists in Kafka and is active.
    Active,
    /// The topic exists in Kafka; the admin service refused to activate it.
    Refused(String),
    /// The admin service no longer knows the topic.
    Unknown,
    /// Kafka refused or did not answer, or activation failed: retried later.
    Failed(String),
    /// Kafka can never hold the topic as requested (see [`ProvisioningObstacle`]); the
    /// admin service was told, and an admin decides. Checked again now and then, in case
    /// the cluster changed.
    Impossible(String),
}

struct Publishing {
    desired: watch::Sender<Desired>,
    counters: Arc<Counters>,
    task: JoinHandle<Totals>,
    last: Totals,
}

struct Retry {
    attempts: u32,
    due: Instant,
}

struct Supervisor {
    ctx: Arc<Context>,
    signals: mpsc::Sender<Signal>,
    shutdown: CancellationToken,
    /// Latest known state of every topic.
    known: HashMap<String, Topic>,
    /// Topics that exist in Kafka (created or checked by this process).
    provisioned: HashSet<String>,
    provisioning: HashSet<String>,
    retries: HashMap<String, Retry>,
    publishing: HashMap<String, Publishing>,
    /// `seq` to start a topic's publisher at (found in Kafka), until the publisher exists.
    next_seqs: HashMap<String, u64>,
    /// The origin of a topic's schedule, recorded at its activation, until the publisher
    /// exists.
    origins: HashMap<String, DateTime<Utc>>,
    /// Each topic's generator seed, chosen once: the one recorded at activation is the one
    /// its publisher uses.
    seeds: HashMap<String, u64>,
    admin_reachable: bool,
}

/// Runs the control loop until `shutdown`, then drains and returns the per-topic totals.
pub(crate) async fn supervise(ctx: Context, shutdown: CancellationToken) -> Vec<(String, Totals)> {
    let ctx = Arc::new(ctx);
    let (tx, mut rx) = mpsc::channel(1024);
    let events = tokio::spawn(follow_events(
        ctx.admin.clone(),
        tx.clone(),
        shutdown.clone(),
    ));
    let mut sup = Supervisor {
        ctx: Arc::clone(&ctx),
        signals: tx,
        shutdown: shutdown.clone(),
        known: HashMap::new(),
        provisioned: HashSet::new(),
        provisioning: HashSet::new(),
        retries: HashMap::new(),
        publishing: HashMap::new(),
        next_seqs: HashMap::new(),
        origins: HashMap::new(),
        seeds: HashMap::new(),
        admin_reachable: true,
    };
    let mut poll = tokio::time::interval(ctx.poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let status = StatusLine::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(signal) = rx.recv() => sup.on_signal(signal).await,
            _ = poll.tick() => sup.relist().await,
            _ = tick.tick() => {
                sup.retry_due();
                status.show(&mut sup.publishing);
            }
        }
    }
    status.clear();
    events.abort();
    let mut totals = Vec::new();
    for (name, p) in sup.publishing.drain() {
        match p.task.await {
            Ok(t) => totals.push((name, t)),
            Err(e) => {
                tracing::error!(topic = %name, error = %e, "publishing task failed");
                totals.push((name, p.counters.totals()));
            }
        }
    }
    totals.sort_by(|a, b| a.0.cmp(&b.0));
    totals
}

impl Supervisor {
    async fn on_signal(&mut self, signal: Signal) {
        match signal {
            Signal::Event(ServerEvent::Event(event)) => match *event {
                Event::Topic { topic, .. } => self.apply(topic),
                Event::Subscription { .. } => {}
            },
            Signal::Event(ServerEvent::Resync) | Signal::Connected => self.relist().await,
            Signal::Event(ServerEvent::Other(_) | ServerEvent::KeepAlive) => {}
            Signal::Provisioned {
                name,
                outcome,
                next_seq,
                started_at,
            } => {
                if let Some(seq) = next_seq {
                    self.next_seqs.insert(name.clone(), seq);
                }
                if let Some(at) = started_at {
                    self.origins.insert(name.clone(), at);
                }
                self.provisioned(name, outcome)
            }
        }
    }

    /// Reloads every topic: the fallback when events may have been missed.
    async fn relist(&mut self) {
        match self.ctx.admin.topics().await {
            Ok(topics) => {
                if !self.admin_reachable {
                    tracing::info!(url = %self.ctx.admin.base_url(), "admin service reachable again");
                    self.admin_reachable = true;
                }
                let listed: HashSet<String> = topics.iter().map(|t| t.topic_name.clone()).collect();
                let gone: Vec<String> = self
                    .known
                    .keys()
                    .filter(|n| !listed.contains(*n))
                    .cloned()
                    .collect();
                for name in gone {
                    if let Some(mut t) = self.known.remove(&name) {
                        t.status = TopicStatus::Deleted;
                        self.apply(t);
                    }
                }
                for t in topics {
                    self.apply(t);
                }
            }
            Err(e) => {
                // Said once per outage, not at every poll.
                if self.admin_reachable {
                    tracing::warn!(error = %e, "cannot list topics; publishing continues, retrying every {:?}", self.ctx.poll_interval);
                    self.admin_reachable = false;
                }
            }
        }
    }

    /// Brings the producer in line with one topic's state.
    fn apply(&mut self, topic: Topic) {
        let name = topic.topic_name.clone();
        let status = topic.status;
        let pace = self.pace(&topic);
        self.known.insert(name.clone(), topic);
        match status {
            TopicStatus::Approved => self.provision(&name),
            TopicStatus::Active if self.provisioned.contains(&name) => self.publish(&name, pace),
            TopicStatus::Active => self.provision(&name),
            TopicStatus::Pending
            | TopicStatus::Inactive
            | TopicStatus::Rejected
            | TopicStatus::Deleted => {
                self.pause(&name);
                self.retries.remove(&name);
                if status == TopicStatus::Deleted {
                    self.known.remove(&name);
                    self.provisioned.remove(&name);
                }
            }
        }
    }

    fn pace(&self, topic: &Topic) -> Pace {
        pace_of(self.ctx.rate, topic)
    }

    /// The topic's generator seed: `--seed` mixed with its name, else a random one.
    fn seed_of(&mut self, name: &str) -> u64 {
        let seed = self.ctx.seed;
        *self
            .seeds
            .entry(name.to_owned())
            .or_insert_with(|| seed.map_or_else(rand::random, |s| topic_seed(s, name)))
    }

    /// Creates the topic in Kafka and activates it, in the background.
    fn provision(&mut self, name: &str) {
        if self.provisioning.contains(name) {
            return;
        }
        if let Some(r) = self.retries.get(name)
            && r.due > Instant::now()
        {
            return;
        }
        let Some(topic) = self.known.get(name).cloned() else {
            return;
        };
        self.provisioning.insert(name.to_owned());
        let plan = Plan {
            seed: self.seed_of(name),
            pace: self.pace(&topic),
            faults: self.ctx.faults,
        };
        let ctx = Arc::clone(&self.ctx);
        let signals = self.signals.clone();
        tokio::spawn(async move {
            let (outcome, next_seq, started_at) = provision(&ctx, &topic, plan).await;
            let _ = signals
                .send(Signal::Provisioned {
                    name: topic.topic_name,
                    outcome,
                    next_seq,
                    started_at,
                })
                .await;
        });
    }

    fn provisioned(&mut self, name: String, outcome: Provisioning) {
        self.provisioning.remove(&name);
        match outcome {
            Provisioning::Active => {
                self.retries.remove(&name);
                self.provisioned.insert(name.clone());
                if let Some(t) = self.known.get_mut(&name) {
                    // Publish now rather than wait for the event that says so.
                    if matches!(t.status, TopicStatus::Approved | TopicStatus::Active) {
                        t.status = TopicStatus::Active;
                        let pace = self.pace(&self.known[&name]);
                        self.publish(&name, pace);
                    }
                }
            }
            Provisioning::Refused(reason) => {
                self.retries.remove(&name);
                self.provisioned.insert(name.clone());
                tracing::info!(topic = %name, reason, "not publishing: the admin service refused activation");
            }
            Provisioning::Unknown => {
                self.retries.remove(&name);
                self.known.remove(&name);
            }
            Provisioning::Impossible(reason) => {
                let attempts = self.retries.get(&name).map_or(0, |r| r.attempts) + 1;
                // Said once, then hourly: the topic shows the error in the admin service.
                if attempts == 1 || attempts.is_multiple_of(60) {
                    tracing::warn!(
                        topic = %name,
                        reason,
                        "topic cannot be created in Kafka as requested; reported to the admin service, checked again every {:?}",
                        PROVISION_MAX_BACKOFF
                    );
                }
                self.retries.insert(
                    name,
                    Retry {
                        attempts,
                        due: Instant::now() + PROVISION_MAX_BACKOFF,
                    },
                );
            }
            Provisioning::Failed(reason) => {
                let attempts = self.retries.get(&name).map_or(0, |r| r.attempts) + 1;
                let delay = PROVISION_RETRY.delay(attempts);
                tracing::warn!(
                    topic = %name,
                    attempt = attempts,
                    retry_in = ?delay,
                    reason,
                    "topic not provisioned; it stays approved and is retried, other topics keep flowing"
                );
                self.retries.insert(
                    name,
                    Retry {
                        attempts,
                        due: Instant::now() + delay,
                    },
                );
            }
        }
    }

    /// Retries provisioning whose backoff has elapsed.
    fn retry_due(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .retries
            .iter()
            .filter(|(_, r)| r.due <= now)
            .map(|(n, _)| n.clone())
            .collect();
        for name in due {
            match self.known.get(&name).map(|t| t.status) {
                Some(TopicStatus::Approved | TopicStatus::Active) => self.provision(&name),
                _ => {
                    self.retries.remove(&name);
                }
            }
        }
    }

    fn publish(&mut self, name: &str, pace: Pace) {
        let desired = Desired { active: true, pace };
        if let Some(p) = self.publishing.get(name) {
            p.desired.send_if_modified(|d| {
                let changed = *d != desired;
                *d = desired;
                changed
            });
            return;
        }
        let Some(topic) = self.known.get(name) else {
            return;
        };
        let next_seq = self.next_seqs.remove(name).unwrap_or(0);
        let origin = self.origins.remove(name).unwrap_or_else(Utc::now);
        let data_type = topic.data_type;
        let spec = PublisherSpec {
            producers: self.ctx.producer.clone(),
            topic: name.to_owned(),
            producer_id: Arc::clone(&self.ctx.producer_id),
            data_type,
            seed: self.seed_of(name),
            faults: self.ctx.faults,
            origin,
            counters: Arc::default(),
        };
        let counters = Arc::clone(&spec.counters);
        tracing::info!(topic = name, %data_type, pace = ?desired.pace, next_seq, "publishing");
        let (tx, rx) = watch::channel(desired);
        let task = tokio::spawn(run_publisher(spec, next_seq, rx, self.shutdown.clone()));
        self.publishing.insert(
            name.to_owned(),
            Publishing {
                desired: tx,
                counters,
                task,
                last: Totals::default(),
            },
        );
    }

    fn pause(&mut self, name: &str) {
        if let Some(p) = self.publishing.get(name) {
            let paused = p.desired.send_if_modified(|d| {
                let was = d.active;
                d.active = false;
                was
            });
            if paused {
                tracing::info!(topic = name, "stopped publishing");
            }
        }
    }
}

/// `--rate`, else the topic's profile, else its rate within the model's bounds (a topic
/// stored before they existed may have any number), else the seed's pace.
fn pace_of(rate: Option<RatePerSecond>, topic: &Topic) -> Pace {
    if let Some(rate) = rate {
        return Pace::PerSecond(rate);
    }
    if let Some(profile) = &topic.traffic_profile {
        return Pace::Profile(profile.clone());
    }
    match topic.rate_per_second.and_then(RatePerSecond::clamped) {
        Some(rate) => Pace::PerSecond(rate),
        None => Pace::SeedDefault,
    }
}

/// What about a failed topic creation no retry can change.
fn obstacle_of(error: &KafkaError) -> Option<String> {
    match error {
        KafkaError::ReplicationFactor { asked, brokers } => Some(
            ProvisioningObstacle::TooFewBrokers {
                asked: *asked,
                brokers: *brokers,
            }
            .to_string(),
        ),
        KafkaError::InvalidTopic { .. }
        | KafkaError::InvalidPartitions(_)
        | KafkaError::InvalidReplicationFactor(_) => Some(error.to_string()),
        _ => None,
    }
}

/// Tells the admin service that `topic` cannot be created, unless it already knows.
async fn report_impossible(ctx: &Context, topic: &Topic, reason: String) -> Provisioning {
    if topic.status.awaits_provisioning() && topic.provisioning_error.as_deref() != Some(&reason) {
        match ctx
            .admin
            .provisioning_failure(&topic.topic_name, &reason)
            .await
        {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(topic = %topic.topic_name, error = %e, "cannot report the provisioning failure");
                // Reported at the next attempt.
                return Provisioning::Failed(reason);
            }
        }
    }
    Provisioning::Impossible(reason)
}

/// Ensures the topic exists in Kafka, finds where this producer's `seq` continues (with a
/// given producer id), then activates the topic if it is only approved. What Kafka can
/// never hold as requested is reported on the topic.
async fn provision(
    ctx: &Context,
    topic: &Topic,
    plan: Plan,
) -> (Provisioning, Option<u64>, Option<DateTime<Utc>>) {
    let outcome = match ctx
        .kafka
        .ensure_topic(&TopicSpec::new(
            &topic.topic_name,
            topic.partitions,
            topic.replication_factor,
        ))
        .await
    {
        Ok(created) => created,
        Err(e) => {
            return match obstacle_of(&e) {
                Some(reason) => (report_impossible(ctx, topic, reason).await, None, None),
                None => (Provisioning::Failed(format!("Kafka: {e}")), None, None),
            };
        }
    };
    // A topic that existed is used as it is: its partition count must be the requested one
    // before the topic is activated with it.
    if outcome == Created::AlreadyExisted && topic.status.awaits_provisioning() {
        match ctx.kafka.partition_count(&topic.topic_name).await {
            Ok(existing) => {
                if let Err(obstacle) =
                    provisioning::check_existing(&topic.topic_name, topic.partitions, existing)
                {
                    return (
                        report_impossible(ctx, topic, obstacle.to_string()).await,
                        None,
                        None,
                    );
                }
            }
            Err(e) => return (Provisioning::Failed(format!("Kafka: {e}")), None, None),
        }
    }
    if outcome == Created::New {
        tracing::info!(
            topic = %topic.topic_name,
            partitions = topic.partitions,
            replication_factor = topic.replication_factor,
            "created topic in Kafka"
        );
    }
    let next_seq = if ctx.resume_seq && outcome == Created::AlreadyExisted {
        match resume::next_seq(
            &ctx.kafka_config,
            &topic.topic_name,
            &ctx.producer_id,
            resume::DEFAULT_BOUND,
        )
        .await
        {
            Ok(seq) => {
                if seq > 0 {
                    tracing::info!(topic = %topic.topic_name, next_seq = seq, "continuing this producer id's seq");
                }
                Some(seq)
            }
            Err(e) => return (Provisioning::Failed(e.to_string()), None, None),
        }
    } else {
        None
    };
    let (rate, profile) = plan.pace.recorded();
    let generation = Generation {
        generator: GENERATOR_VERSION,
        data_type: topic.data_type,
        seed: plan.seed,
        producer_id: ctx.producer_id.to_string(),
        first_seq: next_seq.unwrap_or(0),
        started_at: Utc::now(),
        rate,
        profile,
        faults: (!plan.faults.is_off()).then_some(plan.faults),
    };
    let outcome = activate(ctx, topic, &generation).await;
    // An active topic was activated before, without this record.
    let recorded = matches!(outcome, Provisioning::Active) && topic.status != TopicStatus::Active;
    (outcome, next_seq, recorded.then_some(generation.started_at))
}

/// What a topic's publisher will be made with, decided before its activation records it.
struct Plan {
    seed: u64,
    pace: Pace,
    faults: FaultRates,
}

/// Activates the topic in the admin service if it is only approved, recording how its
/// values are generated.
async fn activate(ctx: &Context, topic: &Topic, generation: &Generation) -> Provisioning {
    if topic.status == TopicStatus::Active {
        return Provisioning::Active;
    }
    match ctx
        .admin
        .activate(&topic.topic_name, Some(generation))
        .await
    {
        Ok(Activation::Active) => {
            tracing::info!(topic = %topic.topic_name, "activated");
            Provisioning::Active
        }
        Ok(Activation::Refused(reason)) => Provisioning::Refused(reason),
        Ok(Activation::Unknown) => Provisioning::Unknown,
        Err(e) => Provisioning::Failed(format!("activation: {e}")),
    }
}

/// What a topic's publisher is made of, to make it again after a panic.
struct PublisherSpec {
    producers: SharedProducer,
    topic: String,
    producer_id: Arc<str>,
    data_type: DataType,
    /// The first run's generator seed, also that of its schedule and faults.
    seed: u64,
    faults: FaultRates,
    /// The first run's schedule starts here.
    origin: DateTime<Utc>,
    /// Shared by every publisher of the topic: totals and `seq` carry on after a restart.
    counters: Arc<Counters>,
}

impl PublisherSpec {
    /// The publisher of run `run` (0 first), and the generation of its producer.
    fn build(&self, first_seq: u64, run: u32) -> (TopicPublisher, u64) {
        // A restarted run does not replay the events of the first.
        let seed = self.seed.wrapping_add(u64::from(run));
        let generator = Generator::new(self.data_type, seed);
        let (producer, generation) = self.producers.current();
        let publisher = TopicPublisher::new(
            producer,
            self.topic.as_str(),
            Arc::clone(&self.producer_id),
            generator,
        )
        .with_counters(Arc::clone(&self.counters))
        .starting_at(first_seq)
        .with_faults(self.faults, seed);
        (publisher, generation)
    }
}

/// A topic's publishing task: [`publish_topic`], made again when it panics.
async fn run_publisher(
    spec: PublisherSpec,
    first_seq: u64,
    desired: watch::Receiver<Desired>,
    shutdown: CancellationToken,
) -> Totals {
    let spec = Arc::new(spec);
    let ran = restart_on_panic(&spec.topic, &shutdown, |run| {
        let seq = if run == 0 {
            first_seq
        } else {
            spec.counters.next_seq()
        };
        let (publisher, generation) = spec.build(seq, run);
        // A restarted run starts its schedule afresh.
        let start = Start {
            origin: if run == 0 { spec.origin } else { Utc::now() },
            seed: spec.seed.wrapping_add(u64::from(run)),
        };
        let (spec, desired, shutdown) = (Arc::clone(&spec), desired.clone(), shutdown.clone());
        async move {
            publish_topic(
                publisher,
                generation,
                start,
                &spec.producers,
                desired,
                &shutdown,
            )
            .await
        }
    })
    .await;
    ran.unwrap_or_else(|| spec.counters.totals())
}

/// Runs `body` (given its run number, 0 first) until it returns. A panic is logged as an
/// error at once and `body` runs again after a backoff, so that a topic never stops
/// publishing unnoticed. `None` when `shutdown` fired while waiting to restart.
async fn restart_on_panic<T, F: Future<Output = T>>(
    topic: &str,
    shutdown: &CancellationToken,
    mut body: impl FnMut(u32) -> F,
) -> Option<T> {
    let mut run = 0u32;
    let mut panics_in_a_row = 0u32;
    loop {
        let started = Instant::now();
        match AssertUnwindSafe(body(run)).catch_unwind().await {
            Ok(out) => return Some(out),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic without a message".to_owned());
                if started.elapsed() >= STABLE_RUN {
                    panics_in_a_row = 0;
                }
                panics_in_a_row += 1;
                run = run.saturating_add(1);
                let delay = RETRY.delay(panics_in_a_row);
                tracing::error!(
                    topic,
                    panic = message,
                    restart_in = ?delay,
                    "the topic's publishing task panicked; restarting it"
                );
                if sleep_or_shutdown(delay, shutdown).await {
                    return None;
                }
            }
        }
    }
}

/// Where a publisher's schedule starts.
struct Start {
    origin: DateTime<Utc>,
    seed: u64,
}

/// A schedule's instants on the runtime's clock, and as event times.
struct Timeline {
    schedule: Schedule,
    /// The runtime's instant at the schedule's origin.
    base: tokio::time::Instant,
    /// Seconds the schedule was moved on after stalls.
    slipped: f64,
}

impl Timeline {
    fn new(schedule: Schedule) -> Timeline {
        let behind = (Utc::now() - schedule.origin())
            .to_std()
            .unwrap_or_default();
        let now = tokio::time::Instant::now();
        Timeline {
            base: now.checked_sub(behind).unwrap_or(now),
            schedule,
            slipped: 0.0,
        }
    }

    /// The next event's due instant and event time.
    fn next(&mut self) -> (tokio::time::Instant, DateTime<Utc>) {
        let mut t = self.schedule.next_instant() + self.slipped;
        let mut due = self.base + Duration::from_secs_f64(t.max(0.0));
        // After a stall, do not catch up with a burst of more than a second: the schedule
        // moves on by the time lost (a replay's kept times differ from here on).
        let now = tokio::time::Instant::now();
        if due + Duration::from_secs(1) < now {
            let lost = (now - due).as_secs_f64();
            self.slipped += lost;
            t += lost;
            due = now;
        }
        let at = self.schedule.origin() + chrono::TimeDelta::nanoseconds((t * 1e9) as i64);
        (due, at)
    }
}

/// Publishes one topic at its pace while it is active; drains and waits while paused.
/// `generation` is that of the shared producer the publisher holds. Each event's time is
/// its instant on the schedule, which starts at `start` and again at each resume.
async fn publish_topic(
    mut publisher: TopicPublisher,
    mut generation: u64,
    start: Start,
    producers: &SharedProducer,
    mut desired: watch::Receiver<Desired>,
    shutdown: &CancellationToken,
) -> Totals {
    let mut origin = Some(start.origin);
    let mut failures_in_a_row = 0u32;
    'outer: loop {
        let d = desired.borrow_and_update().clone();
        let mut timeline = Timeline::new(
            d.pace
                .schedule(origin.take().unwrap_or_else(Utc::now), start.seed),
        );
        let (mut due, mut at) = timeline.next();
        if !d.active {
            // Paused: keep counting deliveries still in flight, wait to be resumed.
            loop {
                tokio::select! {
                    biased;
                    _ = shutdown.cancelled() => break 'outer,
                    changed = desired.changed() => {
                        if changed.is_err() {
                            break 'outer;
                        }
                        // Resume on a schedule from now, without a burst for the paused time.
                        continue 'outer;
                    }
                    _ = publisher.await_one(), if publisher.in_flight() > 0 => {}
                }
            }
        }
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break 'outer,
                changed = desired.changed() => {
                    if changed.is_err() {
                        break 'outer;
                    }
                    continue 'outer;
                }
                _ = publisher.await_one(), if publisher.in_flight() > 0 => {}
                _ = tokio::time::sleep_until(due) => {
                    if producers.generation() != generation {
                        // Another topic replaced the shared producer after a fatal error.
                        let (producer, g) = producers.current();
                        drop_off_thread(publisher.replace_producer(producer));
                        generation = g;
                    }
                    match publisher.send_next_at(at).await {
                        Ok(()) => failures_in_a_row = 0,
                        Err(e) => {
                            failures_in_a_row += 1;
                            if failures_in_a_row <= 3 || failures_in_a_row.is_multiple_of(100) {
                                tracing::warn!(topic = publisher.topic(), error = %e, "send refused");
                            }
                            if recovery(&e, publisher.fatal_error().is_some()) == Recovery::Rebuild {
                                match producers.rebuild(generation) {
                                    Ok((producer, g)) => {
                                        drop_off_thread(publisher.replace_producer(producer));
                                        generation = g;
                                    }
                                    Err(e) => tracing::error!(
                                        topic = publisher.topic(),
                                        error = %e,
                                        "cannot create a new Kafka producer; trying again"
                                    ),
                                }
                            }
                            // Backoff after a rebuild too: a producer that fails at once
                            // again is not replaced in a tight loop.
                            due = tokio::time::Instant::now() + RETRY.delay(failures_in_a_row);
                            continue;
                        }
                    }
                    (due, at) = timeline.next();
                }
            }
        }
    }
    let pending = publisher.drain(DRAIN_TIMEOUT).await;
    if pending > 0 {
        tracing::warn!(
            topic = publisher.topic(),
            pending,
            "deliveries still unknown at shutdown"
        );
    }
    publisher.counters().totals()
}

/// Follows `GET /api/events`, reconnecting with capped exponential backoff.
async fn follow_events(admin: Client, signals: mpsc::Sender<Signal>, shutdown: CancellationToken) {
    let mut attempts = 0u32;
    loop {
        match admin.events().await {
            Ok(stream) => {
                if attempts > 0 {
                    tracing::info!(url = %admin.base_url(), "event stream reconnected");
                }
                attempts = 0;
                if signals.send(Signal::Connected).await.is_err() {
                    return;
                }
                let mut stream = std::pin::pin!(stream);
                let ended = loop {
                    let next = tokio::select! {
                        _ = shutdown.cancelled() => return,
                        next = tokio::time::timeout(EVENT_STREAM_SILENCE, stream.next()) => next,
                    };
                    match next {
                        // Only shows the stream is alive: the timeout starts again.
                        Ok(Some(Ok(ServerEvent::KeepAlive))) => {}
                        Ok(Some(Ok(event))) => {
                            if signals.send(Signal::Event(event)).await.is_err() {
                                return;
                            }
                        }
                        Ok(Some(Err(e))) => break e.to_string(),
                        Ok(None) => break "the server closed it".to_owned(),
                        Err(_) => break format!("no data for {EVENT_STREAM_SILENCE:?}"),
                    }
                };
                attempts += 1;
                let delay = RETRY.delay(attempts);
                tracing::warn!(reason = ended, retry_in = ?delay, "event stream lost; polling every listing interval meanwhile");
                if sleep_or_shutdown(delay, &shutdown).await {
                    return;
                }
            }
            Err(e) => {
                attempts += 1;
                let delay = RETRY.delay(attempts);
                if attempts == 1 || attempts.is_multiple_of(10) || e.is_unauthorized() {
                    tracing::warn!(error = %e, retry_in = ?delay, "cannot open the event stream; polling meanwhile");
                }
                if sleep_or_shutdown(delay, &shutdown).await {
                    return;
                }
            }
        }
    }
}

/// Sleeps; true when `shutdown` fired first.
pub(crate) async fn sleep_or_shutdown(delay: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => false,
        _ = shutdown.cancelled() => true,
    }
}

/// Waits until the admin service answers with the producer key: no answer or a 5xx is
/// retried; any other refusal (a wrong key, a wrong URL) is an error. `None` on shutdown.
pub(crate) async fn wait_for_admin(
    admin: &Client,
    shutdown: &CancellationToken,
) -> Result<Option<()>, streamhub_client::Error> {
    let waited = streamhub_client::retry(
        RETRY,
        shutdown.cancelled(),
        || admin.topics(),
        |e, delay| tracing::warn!(error = %e, retry_in = ?delay, "waiting for the admin service"),
    )
    .await;
    match waited {
        Ok(_) => Ok(Some(())),
        Err(e) if e.is_transient() && shutdown.is_cancelled() => Ok(None),
        Err(e) => Err(e),
    }
}

/// A one-line view of per-topic rates on a terminal ([`status_line`]); a periodic log line
/// otherwise.
struct StatusLine {
    terminal: bool,
    started: Instant,
    last_log: std::sync::Mutex<Instant>,
}

impl StatusLine {
    fn new() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last_log: std::sync::Mutex::new(Instant::now()),
        }
    }

    /// Called every second.
    fn show(&self, publishing: &mut HashMap<String, Publishing>) {
        let mut parts = Vec::new();
        let mut rates = HashMap::new();
        for (name, p) in publishing.iter_mut() {
            let now = p.counters.totals();
            rates.insert(
                name.clone(),
                (now, now.acknowledged.saturating_sub(p.last.acknowledged)),
            );
            p.last = now;
        }
        let mut names: Vec<&String> = publishing.keys().collect();
        names.sort();
        for name in names {
            let (t, rate) = rates[name];
            let failed = if t.failed > 0 {
                format!(" {} failed", t.failed)
            } else {
                String::new()
            };
            parts.push(format!(
                "{name} {rate}/s ({} acked{failed})",
                t.acknowledged
            ));
        }
        if self.terminal {
            let line = if parts.is_empty() {
                format!(
                    "waiting for approved topics ({:.0} s)",
                    self.started.elapsed().as_secs_f64()
                )
            } else {
                parts.join(" | ")
            };
            status_line::draw(&line);
        } else if let Ok(mut last) = self.last_log.lock()
            && last.elapsed() >= Duration::from_secs(30)
            && !parts.is_empty()
        {
            *last = Instant::now();
            tracing::info!(topics = %parts.join(" | "), "publishing");
        }
    }

    fn clear(&self) {
        if self.terminal {
            status_line::clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(rate: Option<f64>, profile: Option<&str>) -> Topic {
        serde_json::from_value(serde_json::json!({
            "topic_id": 1, "topic_name": "t", "status": "active", "partitions": 1,
            "replication_factor": 1, "description": "", "data_type": "generic",
            "rate_per_second": rate, "traffic_profile": profile, "created_by": "a",
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "approved_at": null, "activated_at": null, "deactivated_at": null,
            "rejection_reason": null
        }))
        .unwrap()
    }

    #[test]
    fn the_flag_then_the_profile_then_the_rate_set_the_pace() {
        let four = RatePerSecond::new(4.0).unwrap();
        let daily = "daily:peak=9,trough=1";
        assert_eq!(
            pace_of(Some(four), &topic(Some(2.0), Some(daily))),
            Pace::PerSecond(four)
        );
        assert_eq!(
            pace_of(None, &topic(None, Some(daily))),
            Pace::Profile(daily.parse().unwrap())
        );
        assert_eq!(
            pace_of(None, &topic(Some(4.0), None)),
            Pace::PerSecond(four)
        );
        assert_eq!(pace_of(None, &topic(None, None)), Pace::SeedDefault);
        assert_eq!(pace_of(None, &topic(Some(0.0), None)), Pace::SeedDefault);
    }

    /// 1/1e-20 s is no Duration: the topic's task used to panic after its first message.
    #[test]
    fn a_topic_rate_out_of_bounds_paces_at_the_nearest_bound() {
        let gap = |rate| {
            let mut s = pace_of(None, &topic(Some(rate), None)).schedule(Utc::now(), 1);
            let (a, b) = (s.next_instant(), s.next_instant());
            b - a
        };
        assert!((gap(1e-20) - 1000.0).abs() < 1e-6);
        assert!((gap(1e12) - 1e-5).abs() < 1e-9);
    }

    /// Log lines of the current thread, as text.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    #[tokio::test]
    async fn a_panicking_publishing_task_is_reported_and_restarted() {
        let logs = Captured::default();
        let writer = logs.clone();
        let _guard = tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish(),
        );
        let mut runs = Vec::new();
        let out = restart_on_panic("orders", &CancellationToken::new(), |run| {
            runs.push(run);
            async move {
                if run == 0 {
                    panic!("interval out of range");
                }
                "published"
            }
        })
        .await;
        assert_eq!(out, Some("published"));
        assert_eq!(runs, [0, 1]);
        let text = logs.text();
        let line = text
            .lines()
            .find(|l| l.contains("panicked"))
            .unwrap_or_else(|| panic!("no log of the panic in {text:?}"));
        assert!(line.contains("ERROR"), "{line}");
        assert!(
            line.contains("orders") && line.contains("interval out of range"),
            "{line}"
        );
    }

    #[tokio::test]
    async fn a_stop_while_waiting_to_restart_ends_the_task() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let out: Option<()> = restart_on_panic("orders", &shutdown, |_| async {
            panic!("always");
        })
        .await;
        assert_eq!(out, None);
    }

    /// librdkafka's hook for tests raises the fatal error a broken idempotent producer
    /// would: the publisher replaces the shared producer and the topic keeps flowing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fatal_librdkafka_error_replaces_the_producer_and_publishing_continues() {
        use streamhub_kafka::broker::{BrokerConfig, EmbeddedBroker};
        use streamhub_kafka::rdkafka::bindings::rd_kafka_test_fatal_error;
        use streamhub_kafka::rdkafka::producer::Producer as _;
        use streamhub_kafka::rdkafka::types::RDKafkaRespErr;

        let broker = EmbeddedBroker::start(BrokerConfig::ephemeral())
            .await
            .expect("embedded broker starts");
        let config = KafkaConfig::new(broker.bootstrap_servers());
        config
            .admin()
            .unwrap()
            .ensure_topic(&TopicSpec::new("fatal_errors", 1, 1))
            .await
            .unwrap();
        let producers = SharedProducer::new(&config).unwrap();
        let spec = PublisherSpec {
            producers: producers.clone(),
            topic: "fatal_errors".into(),
            producer_id: "fatal-test".into(),
            data_type: DataType::Generic,
            seed: 1,
            faults: FaultRates::default(),
            origin: Utc::now(),
            counters: Arc::default(),
        };
        let counters = Arc::clone(&spec.counters);
        let (_desired, rx) = watch::channel(Desired {
            active: true,
            pace: Pace::PerSecond(RatePerSecond::new(200.0).unwrap()),
        });
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run_publisher(spec, 0, rx, shutdown.clone()));
        let wait = async |what: &str, check: &dyn Fn() -> bool| {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !check() {
                assert!(Instant::now() < deadline, "hang guard: {what}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        wait("first deliveries", &|| counters.totals().acknowledged >= 20).await;

        let (first, generation) = producers.current();
        assert_eq!(generation, 0);
        let raised = unsafe {
            rd_kafka_test_fatal_error(
                first.client().native_ptr(),
                RDKafkaRespErr::RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER,
                c"raised by the test".as_ptr(),
            )
        };
        assert_eq!(raised, RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR);
        let fatal = first.client().fatal_error();
        assert!(
            fatal
                .as_ref()
                .is_some_and(|(_, reason)| reason.contains("raised by the test")),
            "{fatal:?}"
        );
        drop_off_thread(first);
        wait("a new producer", &|| producers.generation() == 1).await;
        let acknowledged = counters.totals().acknowledged;
        wait("deliveries by the new producer", &|| {
            counters.totals().acknowledged >= acknowledged + 20
        })
        .await;
        assert_eq!(producers.generation(), 1, "replaced once, not in a loop");

        shutdown.cancel();
        let totals = task.await.unwrap();
        assert!(totals.acknowledged >= acknowledged + 20, "{totals:?}");
        broker.shutdown().await.unwrap();
    }
}
