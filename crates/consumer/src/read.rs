//! `streamhub consumer read`: scriptable reads, like kcat.

use std::collections::{BTreeSet, HashSet};
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};
use streamhub_model::duration::DurationRange;
use streamhub_model::{TopicName, consumer_group_of};
use tokio::sync::mpsc::error::TryRecvError;
use tokio_util::sync::CancellationToken;

use crate::fetch::{Fetched, Fetcher};
use crate::kafka::{self, KafkaConfig, Progress};
use crate::render::{Format, Palette, Renderer};
use crate::session::{Session, SessionArgs, SignIn};
use crate::start::{StartFrom, clamp_offset, tail_offset};

#[derive(clap::Args, Debug, Clone)]
pub struct ReadArgs {
    /// Topic to read (repeatable). Without --direct, defaults to all of the user's
    /// subscriptions.
    #[arg(short = 't', long = "topic", value_name = "TOPIC")]
    pub topics: Vec<String>,

    /// Where to start: beginning, end, stored (the group's committed offsets), an offset
    /// in every partition (42; -10 for the last ten), or an RFC 3339 time.
    /// Defaults to stored with --group, else beginning.
    // A negative offset is a value, not a flag: `--from -10` as well as `--from=-10`.
    #[arg(long, value_name = "WHERE", allow_hyphen_values = true)]
    pub from: Option<StartFrom>,

    /// Stop after this many messages.
    #[arg(short = 'c', long, value_name = "N")]
    pub max_messages: Option<u64>,

    /// Stop once no message has been shown for this long (counted from the start, or from
    /// the assignment of partitions in a group, and from each message shown): seconds
    /// (`5`, `0.5`) or with a unit (`500ms`, `2m`), at most 366 days.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,

    #[arg(short = 'f', long, value_enum, default_value_t = Format::Pretty)]
    pub format: Format,

    /// Consumer group. Offsets are committed after output when a group is given or
    /// --from stored is used; otherwise the read leaves no trace in any group.
    #[arg(short = 'g', long, value_name = "GROUP")]
    pub group: Option<String>,

    /// Read any topic straight from Kafka, without the admin service or a sign-in.
    #[arg(long)]
    pub direct: bool,

    /// Check each payload against the JSON Schema of its envelope's data type
    /// (GET /api/schemas/<type>) and report where it breaks it, per field: `invalid:`
    /// lines (pretty), `schema_errors` (json) or stderr (raw). A value that is no
    /// streamhub envelope is invalid too. Ends with a summary on stderr and exit status 1
    /// when any message was invalid.
    #[arg(long)]
    pub validate: bool,

    #[command(flatten)]
    pub session: SessionArgs,
}

/// Bounds of `--timeout`: zero stops at the first quiet moment.
const TIMEOUT: DurationRange =
    DurationRange::new(Duration::ZERO, Duration::from_secs(366 * 86_400));

fn parse_timeout(s: &str) -> Result<Duration, String> {
    TIMEOUT.parse(s)
}

impl ReadArgs {
    /// A read of `topics` with every option at its default.
    pub fn new(session: SessionArgs, topics: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            topics: topics.into_iter().map(Into::into).collect(),
            from: None,
            max_messages: None,
            timeout: None,
            format: Format::Pretty,
            group: None,
            direct: false,
            validate: false,
            session,
        }
    }
}

/// Why a read ended, and what it wrote.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadSummary {
    pub messages: u64,
    /// Messages that were not streamhub envelopes (written all the same).
    pub not_envelopes: u64,
    /// With `--validate`: messages that broke their schema or were no envelope.
    pub invalid: u64,
    pub ended_by: EndedBy,
}

impl ReadSummary {
    /// The read's outcome for the exit status: an error when `--validate` found invalid
    /// messages, naming how many.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.invalid > 0 {
            bail!(
                "{} of {} messages do not match their data type's schema",
                self.invalid,
                self.messages
            );
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EndedBy {
    #[default]
    MaxMessages,
    Idle,
    Shutdown,
    /// The reader of the output went away (a closed pipe): not an error.
    OutputClosed,
}

/// Reads to the process's stdout (warnings to stderr).
pub async fn read(args: ReadArgs, shutdown: CancellationToken) -> anyhow::Result<ReadSummary> {
    let palette = if args.format == Format::Pretty {
        Palette::for_stdout()
    } else {
        Palette::PLAIN
    };
    // Large writes to the line-buffered stdout: one syscall per batch, not per line.
    let mut out = io::BufWriter::with_capacity(64 * 1024, io::stdout());
    let mut err = io::stderr();
    read_to(args, palette, &mut out, &mut err, shutdown).await
}

/// Reads to `out`, flushing whenever no further message is already waiting, so that a
/// reader of a pipe sees every message as soon as it is consumed.
pub async fn read_to(
    args: ReadArgs,
    palette: Palette,
    out: &mut (dyn Write + Send),
    warnings: &mut (dyn Write + Send),
    shutdown: CancellationToken,
) -> anyhow::Result<ReadSummary> {
    let mut topics: Vec<String> = Vec::new();
    for t in &args.topics {
        let name: TopicName = t.parse().with_context(|| format!("--topic {t}"))?;
        if !topics.contains(&name.to_string()) {
            topics.push(name.into_string());
        }
    }
    let user = if args.direct {
        if topics.is_empty() {
            bail!("--direct needs at least one --topic");
        }
        None
    } else {
        let session = Session::sign_in(&args.session, SignIn::Once, &shutdown).await?;
        let subscribed: BTreeSet<String> = session
            .client
            .subscriptions(&session.user)
            .await
            .context("cannot list the subscriptions")?
            .into_iter()
            .map(|s| s.topic_name)
            .collect();
        if topics.is_empty() {
            if subscribed.is_empty() {
                bail!(
                    "'{}' has no subscriptions: subscribe with `streamhub consumer`, or read with --direct --topic T",
                    session.user
                );
            }
            topics = subscribed.iter().cloned().collect();
        } else if let Some(missing) = topics.iter().find(|t| !subscribed.contains(*t)) {
            let list = if subscribed.is_empty() {
                "none".to_owned()
            } else {
                subscribed.iter().cloned().collect::<Vec<_>>().join(", ")
            };
            bail!(
                "'{}' is not subscribed to topic '{missing}' (subscriptions: {list}); subscribe first, or read with --direct",
                session.user
            );
        }
        Some(session.user)
    };

    let from = args.from.unwrap_or(if args.group.is_some() {
        StartFrom::Stored
    } else {
        StartFrom::Beginning
    });
    let (group, progress) = match (&args.group, from, &user) {
        (Some(g), _, _) => (g.clone(), Progress::Commit),
        (None, StartFrom::Stored, Some(user)) => (consumer_group_of(user), Progress::Commit),
        (None, StartFrom::Stored, None) => bail!("--from stored needs --group with --direct"),
        (None, _, _) => (
            format!("streamhub-read-{}-{}", std::process::id(), rand_suffix()),
            Progress::Nothing,
        ),
    };

    let config = kafka::with_read_ahead(args.session.kafka.config());
    let consumer = kafka::consumer(&config, &group, progress)?;
    let consumer = tokio::task::spawn_blocking(move || -> anyhow::Result<Arc<StreamConsumer>> {
        position(&consumer, &topics, from, &config)?;
        Ok(Arc::new(consumer))
    })
    .await
    .context("the partition assignment task failed")??;

    let mut renderer = Renderer::new(args.format, palette);
    if args.validate {
        renderer = renderer.validating();
    }
    let mut seek = match from {
        StartFrom::Time(at) => Some(TimeSeek::new(at.timestamp_millis())),
        _ => None,
    };
    let mut sink = Sink {
        renderer: &mut renderer,
        out,
        warnings,
    };
    let consumed = consume(&consumer, &mut sink, &args, progress, &mut seek, &shutdown).await;
    // The final commit and the close (which leaves the group) wait for the broker: off
    // the async workers, which may be the very ones serving that broker (the embedded
    // one runs in the same process).
    let commit = progress == Progress::Commit && consumed.is_ok();
    let committed = tokio::task::spawn_blocking(move || {
        let committed = if commit {
            commit_now(&consumer)
        } else {
            Ok(())
        };
        drop(consumer);
        committed
    })
    .await
    .context("the commit task failed")?;
    let ended_by = consumed?;
    committed?;
    let summary = ReadSummary {
        messages: sink.renderer.shown,
        not_envelopes: sink.renderer.not_envelopes,
        invalid: sink.renderer.invalid,
        ended_by,
    };
    // An invalid read ends with the error of `ReadSummary::check`, which says as much.
    if args.validate && summary.invalid == 0 {
        let _ = writeln!(
            sink.warnings,
            "schema check: {} message{}, all valid",
            summary.messages,
            if summary.messages == 1 { "" } else { "s" }
        );
    }
    Ok(summary)
}

fn rand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    nanos ^ std::process::id().rotate_left(16)
}

/// Subscribes (stored offsets) or assigns every partition at the requested offset.
fn position(
    consumer: &StreamConsumer,
    topics: &[String],
    from: StartFrom,
    config: &KafkaConfig,
) -> anyhow::Result<()> {
    let bootstrap = config.bootstrap_servers();
    let timeout = config.timeout();
    let mut partitions: Vec<(String, i32)> = Vec::new();
    for topic in topics {
        let metadata = consumer.fetch_metadata(Some(topic), timeout).map_err(|e| {
            anyhow::anyhow!("cannot reach Kafka at {bootstrap}: {}", kafka_reason(&e))
        })?;
        let Some(t) = metadata.topics().iter().find(|t| t.name() == topic) else {
            bail!("topic '{topic}' does not exist in Kafka at {bootstrap}");
        };
        if t.error().is_some() || t.partitions().is_empty() {
            bail!("topic '{topic}' does not exist in Kafka at {bootstrap}");
        }
        partitions.extend(t.partitions().iter().map(|p| (topic.clone(), p.id())));
    }
    if from == StartFrom::Stored {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&names)
            .context("cannot subscribe to the topics")?;
        return Ok(());
    }

    let mut tpl = TopicPartitionList::new();
    match from {
        StartFrom::Beginning | StartFrom::End => {
            let offset = if from == StartFrom::Beginning {
                Offset::Beginning
            } else {
                Offset::End
            };
            for (t, p) in &partitions {
                tpl.add_partition_offset(t, *p, offset)?;
            }
        }
        StartFrom::Offset(_) | StartFrom::Tail(_) => {
            for (t, p) in &partitions {
                let (low, high) = consumer
                    .fetch_watermarks(t, *p, timeout)
                    .with_context(|| format!("cannot read the offsets of {t}[{p}]"))?;
                let at = match from {
                    StartFrom::Offset(n) => clamp_offset(n, low, high),
                    StartFrom::Tail(n) => tail_offset(n, low, high),
                    _ => unreachable!("only offsets here"),
                };
                tpl.add_partition_offset(t, *p, Offset::Offset(at))?;
            }
        }
        StartFrom::Time(at) => {
            let mut query = TopicPartitionList::new();
            for (t, p) in &partitions {
                query.add_partition_offset(t, *p, Offset::Offset(at.timestamp_millis()))?;
            }
            let found = consumer
                .offsets_for_times(query, timeout)
                .context("cannot look up offsets by time")?;
            for e in found.elements() {
                // No message at or after the time: start at the end.
                let offset = match e.offset() {
                    Offset::Offset(o) if o >= 0 => Offset::Offset(o),
                    _ => Offset::End,
                };
                tpl.add_partition_offset(e.topic(), e.partition(), offset)?;
            }
        }
        StartFrom::Stored => unreachable!("handled above"),
    }
    consumer
        .assign(&tpl)
        .context("cannot assign the partitions")?;
    Ok(())
}

/// `--from <time>` per partition: messages before the time are passed over until the
/// first one at or after it. Kafka's offset lookup already starts there; this also keeps
/// the promise on a broker whose lookup answers an earlier offset (the embedded broker
/// answers 0 for a time after the last message).
#[derive(Debug)]
struct TimeSeek {
    at_ms: i64,
    reached: HashSet<(String, i32)>,
}

impl TimeSeek {
    fn new(at_ms: i64) -> Self {
        Self {
            at_ms,
            reached: HashSet::new(),
        }
    }

    /// Whether a message is before the start and should be passed over.
    fn passes_over(&mut self, topic: &str, partition: i32, timestamp_ms: Option<i64>) -> bool {
        if self.reached.contains(&(topic.to_owned(), partition)) {
            return false;
        }
        match timestamp_ms {
            Some(ts) if ts < self.at_ms => true,
            _ => {
                self.reached.insert((topic.to_owned(), partition));
                false
            }
        }
    }
}

/// Longest wait for a group assignment before `--timeout` counts anyway; beyond
/// Kafka's default session timeout of 45 s, after which a dead member's partitions move.
const ASSIGNMENT_WAIT: Duration = Duration::from_secs(90);

/// Resolves once the consumer has partitions (or after [`ASSIGNMENT_WAIT`]).
async fn assigned(consumer: &StreamConsumer, warnings: &mut (dyn Write + Send)) {
    let start = tokio::time::Instant::now();
    let mut told = false;
    while start.elapsed() < ASSIGNMENT_WAIT {
        if consumer.assignment().is_ok_and(|a| a.count() > 0) {
            return;
        }
        if !told && start.elapsed() > Duration::from_secs(3) {
            let _ = writeln!(
                warnings,
                "waiting for the group to assign partitions (a stopped member of the group may hold them until its session expires)"
            );
            told = true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn is_closed_output(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::BrokenPipe
}

/// Where messages go.
struct Sink<'a> {
    renderer: &'a mut Renderer,
    out: &'a mut (dyn Write + Send),
    warnings: &'a mut (dyn Write + Send),
}

/// Offsets of messages written to an output buffer that may not have reached the reader
/// yet. They are stored (and so committed) only after a flush: a consumer killed with
/// output still buffered shows those messages again at its next start instead of
/// losing them.
struct Unflushed {
    progress: Progress,
    /// (topic, partition, next offset): a few partitions, searched from the last used.
    next: Vec<(String, i32, i64)>,
    written: usize,
}

/// Flush at least this often under a continuous stream, so the committed position
/// keeps up.
const FLUSH_EVERY: usize = 1024;

impl Unflushed {
    fn new(progress: Progress) -> Self {
        Self {
            progress,
            next: Vec::new(),
            written: 0,
        }
    }

    fn note(&mut self, topic: &str, partition: i32, offset: i64) {
        self.written += 1;
        if self.progress == Progress::Commit {
            match self
                .next
                .iter_mut()
                .rev()
                .find(|(t, p, _)| *p == partition && t == topic)
            {
                Some((_, _, next)) => *next = offset + 1,
                None => self.next.push((topic.to_owned(), partition, offset + 1)),
            }
        }
    }

    /// Flushes the output, then stores the offsets of what it held. `Ok(false)` when the
    /// reader has gone away.
    fn hand_over(
        &mut self,
        out: &mut (dyn Write + Send),
        warnings: &mut (dyn Write + Send),
        consumer: &StreamConsumer,
    ) -> anyhow::Result<bool> {
        if let Err(e) = out.flush() {
            return if is_closed_output(&e) {
                Ok(false)
            } else {
                Err(anyhow::Error::new(e).context("cannot write the output"))
            };
        }
        self.written = 0;
        if self.next.is_empty() {
            return Ok(true);
        }
        let mut tpl = TopicPartitionList::new();
        for (topic, partition, next) in self.next.drain(..) {
            tpl.add_partition_offset(&topic, partition, Offset::Offset(next))?;
        }
        // A partition taken away by a rebalance cannot be stored; its new owner
        // resumes from the last commit, which only repeats messages.
        if let Err(e) = consumer.store_offsets(&tpl) {
            let _ = writeln!(warnings, "warning: cannot store offsets: {e}");
        }
        Ok(true)
    }
}

async fn consume(
    consumer: &Arc<StreamConsumer>,
    sink: &mut Sink<'_>,
    args: &ReadArgs,
    progress: Progress,
    seek: &mut Option<TimeSeek>,
    shutdown: &CancellationToken,
) -> anyhow::Result<EndedBy> {
    let Sink {
        renderer,
        out,
        warnings,
    } = sink;
    let mut unflushed = Unflushed::new(progress);
    // With a group subscription, idle time counts only once the group has assigned
    // partitions: a member that died holds its partitions until its session expires.
    let waits_for_group = consumer.subscription().is_ok_and(|s| s.count() > 0);
    // When the last message was shown (or counting began): messages passed over by
    // `--from <time>` and transient errors arrive too, but do not make a read busy.
    let mut idle_since = (!waits_for_group).then(tokio::time::Instant::now);
    let mut reported_errors = 0u32;
    // Stopped (and joined) when this returns, however it returns.
    let (_fetcher, mut fetched) =
        Fetcher::start(Arc::clone(consumer)).context("cannot start the fetch thread")?;
    let ended_by = 'read: loop {
        if args.max_messages.is_some_and(|max| renderer.shown >= max) {
            break EndedBy::MaxMessages;
        }
        let next = match fetched.try_recv() {
            Ok(next) if unflushed.written < FLUSH_EVERY => next,
            waiting => {
                // Nothing is waiting (or much is written): hand it to the reader now.
                if !unflushed.hand_over(*out, *warnings, consumer)? {
                    return Ok(EndedBy::OutputClosed);
                }
                match waiting {
                    Ok(next) => next,
                    Err(TryRecvError::Disconnected) => bail!("the Kafka fetch thread ended"),
                    Err(TryRecvError::Empty) => {
                        let idle = async {
                            match args.timeout {
                                Some(d) => {
                                    let since = match idle_since {
                                        Some(since) => since,
                                        None => {
                                            assigned(consumer, *warnings).await;
                                            *idle_since.insert(tokio::time::Instant::now())
                                        }
                                    };
                                    tokio::time::sleep_until(since + d).await
                                }
                                None => std::future::pending().await,
                            }
                        };
                        tokio::select! {
                            next = fetched.recv() => match next {
                                Some(next) => next,
                                None => bail!("the Kafka fetch thread ended"),
                            },
                            _ = idle => break EndedBy::Idle,
                            _ = shutdown.cancelled() => break EndedBy::Shutdown,
                        }
                    }
                }
            }
        };
        match next {
            Fetched::Messages(batch) => {
                for record in batch.records() {
                    if args.max_messages.is_some_and(|max| renderer.shown >= max) {
                        break 'read EndedBy::MaxMessages;
                    }
                    if let Some(seek) = seek.as_mut()
                        && seek.passes_over(record.topic, record.partition, record.timestamp_ms)
                    {
                        continue;
                    }
                    if let Err(e) = renderer.write(*out, *warnings, &record) {
                        return output_error(e);
                    }
                    unflushed.note(record.topic, record.partition, record.offset);
                    idle_since = Some(tokio::time::Instant::now());
                }
            }
            Fetched::Error(e) => {
                if let Some(fatal) = fatal_consume_error(&e) {
                    return Err(fatal);
                }
                // Transient (a broker restarting, a rebalance): librdkafka retries.
                reported_errors += 1;
                if reported_errors <= 10 {
                    let _ = writeln!(warnings, "warning: {e}; still trying");
                }
            }
            Fetched::Ended => bail!("the Kafka message stream ended"),
        }
    };
    if !unflushed.hand_over(*out, *warnings, consumer)? {
        return Ok(EndedBy::OutputClosed);
    }
    Ok(ended_by)
}

fn output_error(e: io::Error) -> anyhow::Result<EndedBy> {
    if is_closed_output(&e) {
        Ok(EndedBy::OutputClosed)
    } else {
        Err(anyhow::Error::new(e).context("cannot write the output"))
    }
}

/// librdkafka's description of an error, without the code name repeated around it.
pub(crate) fn kafka_reason(e: &KafkaError) -> String {
    match e.rdkafka_error_code() {
        Some(code) => code.to_string(),
        None => e.to_string(),
    }
}

/// Errors after which reading cannot go on.
fn fatal_consume_error(e: &KafkaError) -> Option<anyhow::Error> {
    let code = e.rdkafka_error_code()?;
    match code {
        RDKafkaErrorCode::TopicAuthorizationFailed
        | RDKafkaErrorCode::GroupAuthorizationFailed
        | RDKafkaErrorCode::SaslAuthenticationFailed
        | RDKafkaErrorCode::Authentication
        | RDKafkaErrorCode::Fatal => Some(anyhow::anyhow!("Kafka refused the read: {e}")),
        _ => None,
    }
}

/// Commits what was stored, synchronously; nothing stored is not an error.
pub(crate) fn commit_now(consumer: &StreamConsumer) -> anyhow::Result<()> {
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => Ok(()),
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot commit the consumed offsets")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_seek_passes_over_only_the_head_of_each_partition() {
        let mut seek = TimeSeek::new(1000);
        assert!(seek.passes_over("t", 0, Some(999)));
        assert!(!seek.passes_over("t", 0, Some(1000)));
        // Once reached, later messages with earlier timestamps are shown, as in Kafka.
        assert!(!seek.passes_over("t", 0, Some(10)));
        assert!(seek.passes_over("t", 1, Some(5)));
        assert!(!seek.passes_over("t", 1, None));
    }

    #[test]
    fn timeout_takes_seconds_or_a_unit_up_to_366_days() {
        assert_eq!(parse_timeout("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_timeout("0"), Ok(Duration::ZERO));
        assert_eq!(parse_timeout("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_timeout("366d"), Ok(Duration::from_secs(366 * 86_400)));
        assert!(parse_timeout("367d").unwrap_err().contains("out of range"));
        assert!(
            parse_timeout("5 sec s")
                .unwrap_err()
                .contains("not a duration")
        );
    }
}
