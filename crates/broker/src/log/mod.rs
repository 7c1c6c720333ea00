//! The on-disk log of one partition, in Kafka's layout.
//!
//! # Files
//!
//! A partition directory holds segments, each named by its base offset (the first offset
//! it may hold), 20 digits zero padded:
//!
//! * `00000000000000000000.log`: record batches (magic v2) exactly as the producer sent
//!   them, except that the log sets `baseOffset` (bytes 0..8) and `partitionLeaderEpoch`
//!   (bytes 12..16, always 0 here); neither is covered by the CRC. Batches whose attributes
//!   ask for LogAppendTime (bit 3), and all batches appended with
//!   [`PartitionLog::append_with_log_append_time`], get their `maxTimestamp` set to the
//!   append time and their CRC recomputed; readers then take that as every record's
//!   timestamp, as in Kafka. CreateTime batches keep the producer's timestamps.
//! * `….index`: sparse offset index, entries of relative offset `u32` + file position `u32`
//!   (big endian). The offset is the *last* offset of the batch at that position.
//! * `….timeindex`: sparse time index, entries of timestamp `i64` + relative offset `u32`:
//!   the largest timestamp in the segment so far and the last offset of its batch.
//! * `log-start-offset.checkpoint`: the log start offset moved by
//!   [`PartitionLog::delete_records_before`], so it survives a restart.
//!
//! An index entry is added once more than `index_interval_bytes` were appended since the
//! previous one. A lookup binary-searches the in-memory copy of the index and scans batch
//! headers forward from the position found. The last segment is the active one, the only
//! one appended to; it is rolled (a new segment started at the end offset) when it would
//! grow past `segment_bytes`, when it is older than `segment_ms`, or when relative offsets
//! or positions would overflow `u32`.
//!
//! # Durability
//!
//! An append is written with `pwrite` before [`PartitionLog::append`] returns, so once a
//! produce is acknowledged its data is in the page cache and survives the process being
//! killed. With [`FlushPolicy::EveryBatch`] the segment data (and the directory after a
//! roll) is also fsynced before the append returns; the index files, which are rebuilt on
//! open when they lag, are fsynced by [`PartitionLog::flush`]. With
//! [`FlushPolicy::Interval`] an append calls [`PartitionLog::flush`] when the interval has
//! passed since the last one (the server may also call it on a timer); with
//! [`FlushPolicy::Os`] the kernel decides. Deleting segments and moving the log start
//! offset fsync the checkpoint file and the directory.
//!
//! # Recovery
//!
//! [`PartitionLog::open`] walks the batch headers of every segment (one positional read per
//! batch). For the active segment it also checks the CRC of every batch from its last
//! index entry on. At the first invalid batch (short header, bad length, magic other than
//! 2, bad CRC, offsets going backwards) the segment is truncated there with a warning; if
//! that happens in an older segment, the segments after it are deleted. Index files that
//! are missing or do not match the data are rebuilt, and the idempotent-producer state is
//! rebuilt from the batch headers.
//!
//! # Idempotent producers
//!
//! For batches with a producer id and a base sequence (both `>= 0`) the log keeps, per
//! producer id, the epoch and the last five batches' sequence ranges and offsets; see
//! [`PartitionLog::append`] for the rules. Producer ids are not expired.

mod batch;
mod index;
mod producer;
mod segment;

#[cfg(test)]
mod tests;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tracing::warn;

use batch::BatchHeader;
use producer::{Check, ProducerState};
use segment::{INDEX_SUFFIX, LOG_SUFFIX, Segment, TIME_INDEX_SUFFIX};

/// Name of the file holding the log start offset.
pub const LOG_START_OFFSET_FILE: &str = "log-start-offset.checkpoint";

/// Kafka error codes the [`LogError`] variants map to.
pub mod error_code {
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
}

/// Per-partition log settings (Kafka's topic configs of the same names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogConfig {
    /// Roll the active segment at this size (`segment.bytes`).
    pub segment_bytes: u64,
    /// Roll the active segment when its first batch is this old (`segment.ms`).
    pub segment_ms: Option<u64>,
    /// Delete whole segments whose newest record is older than this (`retention.ms`);
    /// `None` (or a negative value) keeps them forever.
    pub retention_ms: Option<i64>,
    /// Delete the oldest segments while the partition is larger than this
    /// (`retention.bytes`).
    pub retention_bytes: Option<u64>,
    /// A sparse index entry every this many bytes (`index.interval.bytes`).
    pub index_interval_bytes: u32,
    /// When appends are fsynced.
    pub flush: FlushPolicy,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 128 * 1024 * 1024,
            segment_ms: None,
            retention_ms: Some(7 * 24 * 60 * 60 * 1000),
            retention_bytes: None,
            index_interval_bytes: 4096,
            flush: FlushPolicy::Os,
        }
    }
}

/// When appended data is fsynced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Before every append returns.
    EveryBatch,
    /// On the first append after this much time passed since the last fsync.
    Interval(Duration),
    /// Left to the operating system (data is in the page cache once an append returns).
    Os,
}

/// Where an append went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Offset of the first record appended (or, for a duplicate, of the original).
    pub base_offset: i64,
    /// Offset of the last record appended (or, for a duplicate, of the original).
    pub last_offset: i64,
    /// The append time written into LogAppendTime batches, -1 if the batches use
    /// CreateTime (the value Kafka's ProduceResponse carries).
    pub log_append_time_ms: i64,
    /// The batch was already in the log (idempotent producer retry); nothing was written.
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Maps to KAFKA_STORAGE_ERROR.
    #[error("log I/O error: {0}")]
    Io(#[from] io::Error),
    /// Bad CRC, bad length, magic other than 2, truncated batch: CORRUPT_MESSAGE.
    #[error("corrupt record batch: {0}")]
    Corrupt(String),
    #[error("offset out of range: the log holds [{start}, {end})")]
    OffsetOutOfRange { start: i64, end: i64 },
    #[error("out of order sequence: {0}")]
    OutOfOrderSequence(String),
    #[error("invalid producer epoch: {0}")]
    InvalidProducerEpoch(String),
}

impl LogError {
    /// The Kafka protocol error code for this error.
    pub fn error_code(&self) -> i16 {
        match self {
            LogError::Io(_) => error_code::KAFKA_STORAGE_ERROR,
            LogError::Corrupt(_) => error_code::CORRUPT_MESSAGE,
            LogError::OffsetOutOfRange { .. } => error_code::OFFSET_OUT_OF_RANGE,
            LogError::OutOfOrderSequence(_) => error_code::OUT_OF_ORDER_SEQUENCE_NUMBER,
            LogError::InvalidProducerEpoch(_) => error_code::INVALID_PRODUCER_EPOCH,
        }
    }
}

/// The log of one partition. Appends and maintenance take `&mut self`; reads take `&self`
/// and use positional reads, so a `RwLock<PartitionLog>` lets fetches run side by side.
pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    /// Ordered by base offset; never empty; the last one is the active segment.
    segments: Vec<Segment>,
    start_offset: i64,
    producers: ProducerState,
    last_flush: Instant,
    /// Segment files were created or deleted since the directory was last fsynced.
    dir_dirty: bool,
}

impl std::fmt::Debug for PartitionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionLog")
            .field("dir", &self.dir)
            .field("start_offset", &self.start_offset)
            .field("end_offset", &self.end_offset())
            .field("segments", &self.segments.len())
            .field("size_bytes", &self.size_bytes())
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Parses `00000000000000000042.log` style names.
fn parse_segment_name(name: &str) -> Option<(i64, &str)> {
    let (stem, suffix) = name.split_once('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((stem.parse().ok()?, suffix))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn read_start_checkpoint(dir: &Path) -> Result<Option<i64>, LogError> {
    let path = dir.join(LOG_START_OFFSET_FILE);
    match fs::read_to_string(&path) {
        Ok(s) => match s.trim().parse::<i64>() {
            Ok(v) if v >= 0 => Ok(Some(v)),
            _ => {
                warn!(path = %path.display(), "ignoring an unreadable log start offset checkpoint");
                Ok(None)
            }
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn write_start_checkpoint(dir: &Path, offset: i64) -> io::Result<()> {
    let path = dir.join(LOG_START_OFFSET_FILE);
    let tmp = dir.join(format!("{LOG_START_OFFSET_FILE}.tmp"));
    {
        let mut f = File::create(&tmp)?;
        writeln!(f, "{offset}")?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &path)?;
    sync_dir(dir)
}

impl PartitionLog {
    /// Opens or creates the log in `dir` (created if missing). See the module docs for what
    /// recovery does.
    pub fn open(dir: &Path, config: LogConfig) -> Result<PartitionLog, LogError> {
        fs::create_dir_all(dir)?;
        let now = now_ms();
        let mut bases = Vec::new();
        let mut index_files = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            match parse_segment_name(name) {
                Some((base, LOG_SUFFIX)) => bases.push(base),
                Some((base, INDEX_SUFFIX | TIME_INDEX_SUFFIX)) => {
                    index_files.push((base, entry.path()))
                }
                _ => {}
            }
        }
        bases.sort_unstable();
        // Index files whose segment is gone (a deletion interrupted by a crash).
        for (base, path) in index_files {
            if bases.binary_search(&base).is_err() {
                fs::remove_file(&path)?;
            }
        }

        let checkpoint = read_start_checkpoint(dir)?;
        let mut producers = ProducerState::default();
        let mut segments: Vec<Segment> = Vec::with_capacity(bases.len());
        let mut i = 0;
        while i < bases.len() {
            let base = bases[i];
            let active = i + 1 == bases.len();
            if let Some(prev) = segments.last()
                && base < prev.next_offset
            {
                warn!(
                    dir = %dir.display(),
                    base,
                    "segment overlaps the previous one; deleting it and the segments after it"
                );
                break;
            }
            let opened = Segment::open(
                dir,
                base,
                active,
                config.index_interval_bytes,
                now,
                &mut producers,
            )?;
            segments.push(opened.segment);
            i += 1;
            if opened.truncated && !active {
                warn!(
                    dir = %dir.display(),
                    base,
                    "deleting the segments after a truncated segment"
                );
                break;
            }
        }
        for &base in &bases[i..] {
            for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
                match fs::remove_file(segment::file_path(dir, base, suffix)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        let mut dir_dirty = i < bases.len();
        let older = segments.len().saturating_sub(1);
        for segment in &mut segments[..older] {
            segment.seal()?;
        }
        if segments.is_empty() {
            segments.push(Segment::create(dir, checkpoint.unwrap_or(0), now)?);
            dir_dirty = true;
        }
        let first_base = segments[0].base;
        let end = segments.last().expect("a segment").next_offset;
        let start_offset = checkpoint.unwrap_or(first_base).max(first_base).min(end);
        let mut log = PartitionLog {
            dir: dir.to_path_buf(),
            config,
            segments,
            start_offset,
            producers,
            last_flush: Instant::now(),
            dir_dirty,
        };
        if log.dir_dirty {
            log.flush()?;
        }
        Ok(log)
    }

    /// The directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }

    /// Number of segments (the active one included).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_base_offsets(&self) -> Vec<i64> {
        self.segments.iter().map(|s| s.base).collect()
    }

    fn active(&self) -> &Segment {
        self.segments
            .last()
            .expect("a log always has an active segment")
    }

    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .last_mut()
            .expect("a log always has an active segment")
    }

    /// Appends the bytes of one Produce request's partition `records`: one or more record
    /// batches (magic v2).
    ///
    /// All batches are validated first (length, magic, CRC, at least one record,
    /// `lastOffsetDelta == recordCount - 1`); if any is bad nothing is appended. Offsets are
    /// assigned by rewriting each batch's baseOffset, partitionLeaderEpoch is set to 0, and
    /// LogAppendTime batches get the append time as maxTimestamp (CRC recomputed).
    ///
    /// Idempotence, for batches with producerId >= 0 and baseSequence >= 0: an older epoch is
    /// `InvalidProducerEpoch`; a newer epoch must start at sequence 0; a batch equal (same
    /// first and last sequence) to one of the producer's last five is a duplicate: nothing is
    /// appended and its original offsets are returned with `duplicate = true`; otherwise the
    /// batch must continue the last sequence, else `OutOfOrderSequence`. An unknown producer
    /// id accepts any first sequence. A request mixing duplicates with new batches is
    /// refused with `OutOfOrderSequence`.
    pub fn append(&mut self, records: Bytes) -> Result<Appended, LogError> {
        self.append_at(records, now_ms())
    }

    /// [`PartitionLog::append`] with the append time given (milliseconds since the epoch).
    pub fn append_at(&mut self, records: Bytes, now_ms: i64) -> Result<Appended, LogError> {
        self.append_inner(records, now_ms, false)
    }

    /// [`PartitionLog::append_at`] for topics with `message.timestamp.type=LogAppendTime`:
    /// every batch is marked LogAppendTime and gets `now_ms` as its max timestamp (CRC
    /// recomputed), and the result carries `log_append_time_ms = now_ms`.
    pub fn append_with_log_append_time(
        &mut self,
        records: Bytes,
        now_ms: i64,
    ) -> Result<Appended, LogError> {
        self.append_inner(records, now_ms, true)
    }

    fn append_inner(
        &mut self,
        records: Bytes,
        now_ms: i64,
        log_append_time: bool,
    ) -> Result<Appended, LogError> {
        let batches = batch::split_produced(&records)?;

        // Sequence checks against a scratch copy of the producers involved, so a request
        // with several batches of one producer is checked batch by batch.
        let mut scratch = self
            .producers
            .subset(batches.iter().map(|(_, h)| h.producer_id));
        let mut next = self.end_offset();
        let mut duplicates = Vec::new();
        for (_, h) in &batches {
            match scratch.check(h)? {
                Check::Append => {
                    scratch.record(h, next);
                    next += i64::from(h.last_offset_delta) + 1;
                }
                Check::Duplicate(meta) => duplicates.push(meta),
            }
        }
        if !duplicates.is_empty() {
            if duplicates.len() != batches.len() {
                return Err(LogError::OutOfOrderSequence(
                    "request mixes already appended batches with new ones".into(),
                ));
            }
            return Ok(Appended {
                base_offset: duplicates[0].base_offset,
                last_offset: duplicates[duplicates.len() - 1].last_offset,
                log_append_time_ms: -1,
                duplicate: true,
            });
        }

        let base_offset = self.end_offset();
        let last_offset = next - 1;
        self.maybe_roll(records.len() as u64, last_offset, now_ms)?;

        let mut data = records.to_vec();
        let mut offset = base_offset;
        let mut any_append_time = false;
        let mut headers = Vec::with_capacity(batches.len());
        for (start, h) in &batches {
            let len = h.total_len();
            let append_time = (log_append_time || h.log_append_time()).then_some(now_ms);
            any_append_time |= append_time.is_some();
            batch::assign(&mut data[*start..*start + len], offset, append_time);
            let mut h = *h;
            h.base_offset = offset;
            if let Some(ts) = append_time {
                h.max_timestamp = ts;
                h.attributes |= batch::TIMESTAMP_TYPE_BIT;
            }
            headers.push((*start, h));
            offset = h.last_offset() + 1;
        }

        let interval = self.config.index_interval_bytes;
        let active = self.active_mut();
        let position = active.size;
        active.write(&data)?;
        for (start, h) in &headers {
            active.note_batch(position + *start as u64, h, interval);
        }
        self.producers.merge(scratch);

        match self.config.flush {
            // The indexes are rebuilt on open when they lag, so only the data is synced.
            FlushPolicy::EveryBatch => self.sync(false)?,
            FlushPolicy::Interval(every) if self.last_flush.elapsed() >= every => self.flush()?,
            _ => {}
        }
        Ok(Appended {
            base_offset,
            last_offset,
            log_append_time_ms: if any_append_time { now_ms } else { -1 },
            duplicate: false,
        })
    }

    /// Rolls the active segment if `incoming` more bytes ending at `last_offset` would not
    /// fit it, or it is older than `segment_ms`.
    fn maybe_roll(&mut self, incoming: u64, last_offset: i64, now_ms: i64) -> Result<(), LogError> {
        let active = self.active();
        if active.size == 0 {
            return Ok(());
        }
        let new_size = active.size + incoming;
        let too_big = new_size > self.config.segment_bytes || new_size > u64::from(u32::MAX);
        let offsets_overflow = last_offset - active.base > i64::from(i32::MAX);
        let too_old = self.segment_too_old(now_ms);
        if too_big || offsets_overflow || too_old {
            self.roll(now_ms)?;
        }
        Ok(())
    }

    fn segment_too_old(&self, now_ms: i64) -> bool {
        let active = self.active();
        match self.config.segment_ms {
            Some(ms) if active.size > 0 => {
                now_ms.saturating_sub(active.roll_reference_ms()) >= ms.min(i64::MAX as u64) as i64
            }
            _ => false,
        }
    }

    /// Starts a new active segment at the end offset (no-op if the active one is empty).
    fn roll(&mut self, now_ms: i64) -> Result<(), LogError> {
        if self.active().size == 0 {
            return Ok(());
        }
        let base = self.end_offset();
        let segment = Segment::create(&self.dir, base, now_ms)?;
        self.segments.push(segment);
        self.dir_dirty = true;
        let n = self.segments.len();
        self.segments[n - 2].seal()?;
        Ok(())
    }

    /// Whole stored batches starting with the batch that contains `offset`, up to
    /// `max_bytes` in total, but always at least that first batch even if it is larger.
    /// May continue into the following segments. Empty when `offset == end_offset()`;
    /// `OffsetOutOfRange` below `start_offset()` or above `end_offset()`.
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<Bytes, LogError> {
        let (start, end) = (self.start_offset, self.end_offset());
        if offset < start || offset > end {
            return Err(LogError::OffsetOutOfRange { start, end });
        }
        if offset == end {
            return Ok(Bytes::new());
        }
        let mut idx = self
            .segments
            .partition_point(|s| s.base <= offset)
            .saturating_sub(1);
        let mut found = None;
        while idx < self.segments.len() {
            if let Some(hit) = self.segments[idx].find_batch(offset)? {
                found = Some(hit);
                break;
            }
            idx += 1;
        }
        let Some((mut position, first)) = found else {
            return Err(LogError::Corrupt(format!(
                "offset {offset} is below the end offset but in no segment"
            )));
        };
        let limit = max_bytes.max(first.total_len());
        let mut out = Vec::new();
        while idx < self.segments.len() && out.len() < limit {
            let (bytes, to_end) = self.segments[idx].read_batches(position, limit - out.len())?;
            out.extend_from_slice(&bytes);
            if !to_end {
                break;
            }
            idx += 1;
            position = 0;
        }
        Ok(Bytes::from(out))
    }

    /// The log start offset: the first offset a read may ask for.
    pub fn start_offset(&self) -> i64 {
        self.start_offset
    }

    /// The next offset to assign (the high watermark on a single node).
    pub fn end_offset(&self) -> i64 {
        self.active().next_offset
    }

    /// Decodes the records of the batch `h` at `position` as (offset, timestamp) pairs,
    /// with LogAppendTime batches taking the batch's max timestamp for every record.
    fn record_times(
        &self,
        segment: &Segment,
        position: u64,
        h: &BatchHeader,
    ) -> Result<Vec<(i64, i64)>, LogError> {
        let mut bytes = Bytes::from(segment.read_at(position, h.total_len())?);
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes).map_err(|e| {
            LogError::Corrupt(format!(
                "batch at offset {} does not decode: {e}",
                h.base_offset
            ))
        })?;
        Ok(set
            .records
            .iter()
            .map(|r| {
                let ts = if h.log_append_time() {
                    h.max_timestamp
                } else {
                    r.timestamp
                };
                (r.offset, ts)
            })
            .collect())
    }

    /// Kafka ListOffsets by timestamp: the earliest offset (not below the log start offset)
    /// whose record timestamp is `>= timestamp_ms`, with that timestamp; `None` if no record
    /// is that late. Finds the batch through the time index and decodes it (compressed
    /// batches too).
    pub fn offset_for_time(&self, timestamp_ms: i64) -> Result<Option<(i64, i64)>, LogError> {
        let start = self.start_offset;
        for segment in &self.segments {
            if segment.size == 0
                || segment.next_offset <= start
                || segment.max_timestamp() < timestamp_ms
            {
                continue;
            }
            let mut position = segment.time_scan_start(timestamp_ms);
            if start > segment.base {
                position = position.max(segment.scan_start(start));
            }
            while position < segment.size {
                let h = segment.header_at(position)?;
                if h.last_offset() >= start && h.max_timestamp >= timestamp_ms {
                    let hit = self
                        .record_times(segment, position, &h)?
                        .into_iter()
                        .find(|&(offset, ts)| offset >= start && ts >= timestamp_ms);
                    if let Some((offset, ts)) = hit {
                        return Ok(Some((offset, ts)));
                    }
                }
                position += h.total_len() as u64;
            }
        }
        Ok(None)
    }

    /// The offset of the first record carrying the largest timestamp in the log (from the
    /// log start offset on) and that timestamp, as `(offset, timestamp)` like
    /// [`PartitionLog::offset_for_time`] (ListOffsets MAX_TIMESTAMP); `None` if the log is
    /// empty.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, LogError> {
        let start = self.start_offset;
        if start >= self.end_offset() {
            return Ok(None);
        }
        // The largest timestamp per segment; only a segment the start offset cuts into
        // needs a scan, the others keep theirs in memory.
        let mut best: Option<(i64, usize)> = None;
        for (i, segment) in self.segments.iter().enumerate() {
            if segment.size == 0 || segment.next_offset <= start {
                continue;
            }
            let max = if start > segment.base {
                let mut max = None;
                let mut position = segment.scan_start(start);
                while position < segment.size {
                    let h = segment.header_at(position)?;
                    if h.last_offset() >= start {
                        max = max.max(Some(h.max_timestamp));
                    }
                    position += h.total_len() as u64;
                }
                match max {
                    Some(m) => m,
                    None => continue,
                }
            } else {
                segment.max_timestamp()
            };
            if best.is_none_or(|(b, _)| max > b) {
                best = Some((max, i));
            }
        }
        let Some((max, i)) = best else {
            return Ok(None);
        };
        let segment = &self.segments[i];
        let mut position = segment.time_scan_start(max);
        if start > segment.base {
            position = position.max(segment.scan_start(start));
        }
        while position < segment.size {
            let h = segment.header_at(position)?;
            if h.last_offset() >= start && h.max_timestamp == max {
                let hit = self
                    .record_times(segment, position, &h)?
                    .into_iter()
                    .find(|&(offset, ts)| offset >= start && ts == max);
                // A header whose maxTimestamp no record carries: answer with the batch.
                return Ok(Some(hit.unwrap_or((h.last_offset(), max))));
            }
            position += h.total_len() as u64;
        }
        Ok(None)
    }

    /// DeleteRecords: moves the log start offset up to `offset` (at most the end offset),
    /// deleting whole segments that fall entirely below it (the active segment is rolled
    /// first if it does), and returns the new start offset. The start offset is persisted.
    /// An offset at or below the current start changes nothing.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        let end = self.end_offset();
        if offset < 0 || offset > end {
            return Err(LogError::OffsetOutOfRange {
                start: self.start_offset,
                end,
            });
        }
        if offset <= self.start_offset {
            return Ok(self.start_offset);
        }
        if offset == end {
            self.roll(now_ms())?;
        }
        write_start_checkpoint(&self.dir, offset)?;
        self.start_offset = offset;
        self.delete_below_start()?;
        Ok(self.start_offset)
    }

    /// Deletes the oldest (non-active) segment, returning its size.
    fn delete_oldest(&mut self) -> Result<u64, LogError> {
        debug_assert!(self.segments.len() > 1);
        let segment = self.segments.remove(0);
        let size = segment.size;
        segment.delete(&self.dir)?;
        self.dir_dirty = true;
        self.start_offset = self.start_offset.max(self.segments[0].base);
        Ok(size)
    }

    /// Deletes the segments entirely below the start offset.
    fn delete_below_start(&mut self) -> Result<u64, LogError> {
        let mut freed = 0;
        while self.segments.len() > 1 && self.segments[1].base <= self.start_offset {
            freed += self.delete_oldest()?;
        }
        Ok(freed)
    }

    /// Applies `segment_ms` (rolls an old active segment), then deletes segments below the
    /// log start offset, segments whose newest record is more than `retention_ms` older than
    /// `now_ms`, and the oldest segments while the log is larger than `retention_bytes`.
    /// Never deletes the active segment; only ever deletes from the oldest end. Returns the
    /// bytes freed.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<u64, LogError> {
        if self.segment_too_old(now_ms) {
            self.roll(now_ms)?;
        }
        let mut freed = self.delete_below_start()?;
        if let Some(retention) = self.config.retention_ms.filter(|&r| r >= 0) {
            while self.segments.len() > 1
                && now_ms.saturating_sub(self.segments[0].retention_timestamp()) > retention
            {
                freed += self.delete_oldest()?;
            }
        }
        if let Some(limit) = self.config.retention_bytes {
            let mut excess = self.size_bytes().saturating_sub(limit);
            while self.segments.len() > 1 && excess >= self.segments[0].size && excess > 0 {
                let size = self.delete_oldest()?;
                excess -= size;
                freed += size;
            }
        }
        if self.dir_dirty && self.config.flush != FlushPolicy::Os {
            self.flush()?;
        }
        Ok(freed)
    }

    /// Fsyncs everything written (segment data, indexes, and the directory after segments
    /// were created or deleted).
    pub fn flush(&mut self) -> Result<(), LogError> {
        self.sync(true)
    }

    fn sync(&mut self, indexes: bool) -> Result<(), LogError> {
        for segment in &mut self.segments {
            segment.sync(indexes)?;
        }
        if self.dir_dirty {
            sync_dir(&self.dir)?;
            self.dir_dirty = false;
        }
        self.last_flush = Instant::now();
        Ok(())
    }

    /// Bytes of record batches held (the `.log` files).
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.size).sum()
    }

    /// Takes a changed topic config; it applies from the next append or retention run.
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }
}
