//! One segment: a `.log` file of record batches plus its `.index` and `.timeindex`.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use tracing::warn;

use super::LogError;
use super::batch::{BatchHeader, HEADER_LEN, LOG_OVERHEAD, validate_batch};
use super::index::{IndexFile, OffsetEntry, TimeEntry};
use super::producer::ProducerState;

pub(crate) const LOG_SUFFIX: &str = "log";
pub(crate) const INDEX_SUFFIX: &str = "index";
pub(crate) const TIME_INDEX_SUFFIX: &str = "timeindex";

/// `00000000000000000042.log` and friends.
pub(crate) fn file_path(dir: &Path, base: i64, suffix: &str) -> PathBuf {
    dir.join(format!("{base:020}.{suffix}"))
}

/// Decides the sparse index entries while batches are appended (or re-read on open).
/// Like Kafka, an entry is made for a batch once more than `index_interval_bytes` were
/// written since the previous entry, so the first batch of a segment is never indexed
/// (a lookup that finds no entry starts at position 0).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IndexCursor {
    bytes_since_entry: u64,
    /// Largest timestamp in the segment so far (`i64::MIN` if none) ...
    pub max_timestamp: i64,
    /// ... and the relative last offset of the batch that carried it.
    pub max_timestamp_rel: u32,
    last_time_entry: i64,
}

impl IndexCursor {
    fn new() -> IndexCursor {
        IndexCursor {
            bytes_since_entry: 0,
            max_timestamp: i64::MIN,
            max_timestamp_rel: 0,
            last_time_entry: i64::MIN,
        }
    }

    /// Accounts for the batch `h` stored at `position` (`h.base_offset` is the assigned one).
    fn step(
        &mut self,
        base: i64,
        position: u64,
        h: &BatchHeader,
        interval: u32,
    ) -> (Option<OffsetEntry>, Option<TimeEntry>) {
        let rel_last = (h.last_offset() - base) as u32;
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.max_timestamp_rel = rel_last;
        }
        let mut out = (None, None);
        if self.bytes_since_entry > u64::from(interval) {
            out.0 = Some(OffsetEntry {
                rel_offset: rel_last,
                position: position as u32,
            });
            if self.max_timestamp > self.last_time_entry {
                self.last_time_entry = self.max_timestamp;
                out.1 = Some(TimeEntry {
                    timestamp: self.max_timestamp,
                    rel_offset: self.max_timestamp_rel,
                });
            }
            self.bytes_since_entry = 0;
        }
        self.bytes_since_entry += h.total_len() as u64;
        out
    }
}

pub(crate) struct Segment {
    pub base: i64,
    log: File,
    index: IndexFile<OffsetEntry>,
    time_index: IndexFile<TimeEntry>,
    /// Valid bytes in the `.log` file; reads never look past this.
    pub size: u64,
    /// One past the last offset in the segment (`base` while empty).
    pub next_offset: i64,
    cursor: IndexCursor,
    /// Max timestamp of the first batch, the reference for rolling by `segment_ms`.
    first_batch_timestamp: Option<i64>,
    /// Wall-clock time the segment was created or opened.
    created_ms: i64,
    /// Data written since the last fsync.
    pub log_dirty: bool,
    pub index_dirty: bool,
}

/// How opening a segment went.
pub(crate) struct Opened {
    pub segment: Segment,
    /// The segment had an invalid tail that was cut off.
    pub truncated: bool,
}

fn open_rw(path: &Path, truncate: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate)
        .open(path)
}

impl Segment {
    /// A segment of these files before any batch of them is read.
    fn empty(
        base: i64,
        log: File,
        index: IndexFile<OffsetEntry>,
        time_index: IndexFile<TimeEntry>,
        now_ms: i64,
    ) -> Segment {
        Segment {
            base,
            log,
            index,
            time_index,
            size: 0,
            next_offset: base,
            cursor: IndexCursor::new(),
            first_batch_timestamp: None,
            created_ms: now_ms,
            log_dirty: false,
            index_dirty: false,
        }
    }

    /// Creates a new, empty segment (any files of that name are emptied).
    pub fn create(dir: &Path, base: i64, now_ms: i64) -> Result<Segment, LogError> {
        let log = open_rw(&file_path(dir, base, LOG_SUFFIX), true)?;
        // Empty stale index files before loading them.
        open_rw(&file_path(dir, base, INDEX_SUFFIX), true)?;
        open_rw(&file_path(dir, base, TIME_INDEX_SUFFIX), true)?;
        let index = IndexFile::open(&file_path(dir, base, INDEX_SUFFIX))?;
        let time_index = IndexFile::open(&file_path(dir, base, TIME_INDEX_SUFFIX))?;
        Ok(Segment::empty(base, log, index, time_index, now_ms))
    }

    /// Opens an existing segment and walks its batch headers: checks their structure
    /// (and, for the active segment, the CRC of every batch from the last index entry on),
    /// cuts off an invalid tail, rebuilds the indexes if they do not match the data and
    /// feeds every batch to the producer state.
    pub fn open(
        dir: &Path,
        base: i64,
        active: bool,
        interval: u32,
        now_ms: i64,
        producers: &mut ProducerState,
    ) -> Result<Opened, LogError> {
        let log_path = file_path(dir, base, LOG_SUFFIX);
        let log = open_rw(&log_path, false)?;
        let index = IndexFile::<OffsetEntry>::open(&file_path(dir, base, INDEX_SUFFIX))?;
        let time_index = IndexFile::<TimeEntry>::open(&file_path(dir, base, TIME_INDEX_SUFFIX))?;
        let file_len = log.metadata()?.len();

        // Batches before the last index entry were acknowledged long ago; check the CRC of
        // the rest of the active segment, where a crash can leave a torn write.
        let crc_from = if active {
            index
                .entries()
                .iter()
                .rev()
                .map(|e| u64::from(e.position))
                .find(|&p| p < file_len)
                .unwrap_or(0)
        } else {
            u64::MAX
        };

        let mut segment = Segment::empty(base, log, index, time_index, now_ms);
        let mut offset_entries = Vec::new();
        let mut time_entries = Vec::new();
        let mut pos = 0u64;
        let mut problem = None;
        let mut header_buf = [0u8; HEADER_LEN];
        while pos < file_len {
            if file_len - pos < HEADER_LEN as u64 {
                problem = Some(format!("{} trailing bytes", file_len - pos));
                break;
            }
            segment.log.read_exact_at(&mut header_buf, pos)?;
            let h = BatchHeader::parse(&header_buf);
            if let Err(e) = h.check_shape() {
                problem = Some(e);
                break;
            }
            let len = h.total_len() as u64;
            if pos + len > file_len {
                problem = Some(format!(
                    "batch of {len} bytes runs past the end of the file ({} bytes left)",
                    file_len - pos
                ));
                break;
            }
            if pos + len > u64::from(u32::MAX) {
                problem = Some("segment larger than 4 GiB".into());
                break;
            }
            if pos >= crc_from {
                let mut batch = vec![0u8; len as usize];
                segment.log.read_exact_at(&mut batch, pos)?;
                if let Err(e) = validate_batch(&batch) {
                    problem = Some(e);
                    break;
                }
            }
            if h.base_offset < segment.next_offset {
                problem = Some(format!(
                    "batch base offset {} below the expected {}",
                    h.base_offset, segment.next_offset
                ));
                break;
            }
            if h.last_offset() - base > i64::from(u32::MAX) {
                problem = Some(format!(
                    "offset {} too far from the segment base",
                    h.last_offset()
                ));
                break;
            }
            let (oe, te) = segment.cursor.step(base, pos, &h, interval);
            offset_entries.extend(oe);
            time_entries.extend(te);
            if segment.first_batch_timestamp.is_none() {
                segment.first_batch_timestamp = Some(h.max_timestamp);
            }
            producers.record(&h, h.base_offset);
            segment.next_offset = h.last_offset() + 1;
            pos += len;
        }
        segment.size = pos;
        let truncated = problem.is_some();
        if let Some(problem) = problem {
            warn!(
                segment = %log_path.display(),
                position = pos,
                file_len,
                "truncating invalid segment tail: {problem}"
            );
            segment.log.set_len(pos)?;
            segment.log_dirty = true;
        }
        let rebuilt_index = segment.index.replace(offset_entries)?;
        let rebuilt_time = segment.time_index.replace(time_entries)?;
        if rebuilt_index || rebuilt_time {
            warn!(
                segment = %log_path.display(),
                "index files did not match the data (missing, damaged, behind, or written \
                 with another index interval); rewrote them"
            );
            segment.index_dirty = true;
        }
        Ok(Opened { segment, truncated })
    }

    /// Writes `data` (whole batches, offsets assigned) at the end of the segment. On a
    /// failed write the file is cut back so no partial batch stays behind.
    pub fn write(&mut self, data: &[u8]) -> Result<(), LogError> {
        if let Err(e) = self.log.write_all_at(data, self.size) {
            if let Err(e2) = self.log.set_len(self.size) {
                warn!("could not cut back a failed segment write: {e2}");
            }
            return Err(e.into());
        }
        self.log_dirty = true;
        Ok(())
    }

    /// Accounts for a batch just written at `position` (header with the assigned offset).
    pub fn note_batch(&mut self, position: u64, h: &BatchHeader, interval: u32) {
        let (oe, te) = self.cursor.step(self.base, position, h, interval);
        if self.first_batch_timestamp.is_none() {
            self.first_batch_timestamp = Some(h.max_timestamp);
        }
        self.size = self.size.max(position + h.total_len() as u64);
        self.next_offset = h.last_offset() + 1;
        // The indexes are rebuilt on open if they are off, so failing to extend one is
        // not worth failing an append whose data is already in the log.
        if let Some(e) = oe {
            if let Err(err) = self.index.push(e) {
                warn!(base = self.base, "could not extend the offset index: {err}");
            }
            self.index_dirty = true;
        }
        if let Some(e) = te {
            if let Err(err) = self.time_index.push(e) {
                warn!(base = self.base, "could not extend the time index: {err}");
            }
            self.index_dirty = true;
        }
    }

    pub fn max_timestamp(&self) -> i64 {
        self.cursor.max_timestamp
    }

    /// The time `segment_ms` counts from: the first batch's max timestamp, or the time the
    /// segment was created (or opened) if it has no batch or that batch no timestamp.
    pub fn roll_reference_ms(&self) -> i64 {
        match self.first_batch_timestamp {
            Some(ts) if ts >= 0 => ts,
            _ => self.created_ms,
        }
    }

    /// The timestamp retention by time looks at: the largest record timestamp, or the file's
    /// modification time if no batch carries one.
    pub fn retention_timestamp(&self) -> i64 {
        if self.cursor.max_timestamp >= 0 {
            return self.cursor.max_timestamp;
        }
        self.log
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .unwrap_or(self.created_ms)
    }

    /// Fsyncs the `.log` data (and, with `indexes`, the index files) if written to.
    pub fn sync(&mut self, indexes: bool) -> io::Result<()> {
        if self.log_dirty {
            self.log.sync_data()?;
            self.log_dirty = false;
        }
        if indexes && self.index_dirty {
            self.index.sync()?;
            self.time_index.sync()?;
            self.index_dirty = false;
        }
        Ok(())
    }

    /// Called once the segment is no longer the active one: fsyncs and closes the index
    /// files (their entries stay in memory for lookups), leaving one open file per segment.
    pub fn seal(&mut self) -> io::Result<()> {
        self.index.close()?;
        self.time_index.close()?;
        self.index_dirty = false;
        Ok(())
    }

    /// Reads the header of the batch at `position`.
    pub fn header_at(&self, position: u64) -> Result<BatchHeader, LogError> {
        if position + HEADER_LEN as u64 > self.size {
            return Err(LogError::Corrupt(format!(
                "segment {}: no batch header fits at position {position}",
                self.base
            )));
        }
        let mut buf = [0u8; HEADER_LEN];
        self.log.read_exact_at(&mut buf, position)?;
        let h = BatchHeader::parse(&buf);
        if position + h.total_len() as u64 > self.size || h.batch_length < 0 {
            return Err(LogError::Corrupt(format!(
                "segment {}: batch at position {position} runs past the segment end",
                self.base
            )));
        }
        Ok(h)
    }

    /// Reads `len` bytes at `position`.
    pub fn read_at(&self, position: u64, len: usize) -> Result<Vec<u8>, LogError> {
        let mut buf = vec![0u8; len];
        self.log.read_exact_at(&mut buf, position)?;
        Ok(buf)
    }

    /// Where to start scanning for the batch containing `offset` (`>= base`).
    pub fn scan_start(&self, offset: i64) -> u64 {
        let rel = (offset - self.base).clamp(0, i64::from(u32::MAX)) as u32;
        u64::from(self.index.lookup(rel))
    }

    /// Where to start scanning for the first record with a timestamp `>= timestamp`.
    pub fn time_scan_start(&self, timestamp: i64) -> u64 {
        match self.time_index.lookup_before(timestamp) {
            Some(e) => u64::from(self.index.lookup(e.rel_offset)),
            None => 0,
        }
    }

    /// The batch containing `offset`, with its position, if the segment has it.
    pub fn find_batch(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>, LogError> {
        if offset < self.base || offset >= self.next_offset {
            return Ok(None);
        }
        let mut pos = self.scan_start(offset);
        while pos < self.size {
            let h = self.header_at(pos)?;
            if h.last_offset() >= offset {
                return Ok(Some((pos, h)));
            }
            pos += h.total_len() as u64;
        }
        Ok(None)
    }

    /// Whole batches starting at `position`, at most `budget` bytes of them (possibly none).
    /// Returns the bytes and whether they reach the end of the segment.
    pub fn read_batches(&self, position: u64, budget: usize) -> Result<(Vec<u8>, bool), LogError> {
        let available = self.size.saturating_sub(position);
        let want = (budget as u64).min(available) as usize;
        let mut buf = self.read_at(position, want)?;
        let mut end = 0usize;
        while end + LOG_OVERHEAD <= buf.len() {
            let len = i32::from_be_bytes(buf[end + 8..end + 12].try_into().expect("4 bytes"));
            if len < 0 {
                return Err(LogError::Corrupt(format!(
                    "segment {}: negative batch length at position {}",
                    self.base,
                    position + end as u64
                )));
            }
            let total = LOG_OVERHEAD + len as usize;
            if end + total > buf.len() {
                break;
            }
            end += total;
        }
        buf.truncate(end);
        Ok((buf, end as u64 == available))
    }

    /// Closes the files and deletes them (the `.log` first, so a crash part way leaves at
    /// most index files, which are cleaned up on open).
    pub fn delete(self, dir: &Path) -> io::Result<()> {
        let base = self.base;
        drop(self);
        for suffix in [LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX] {
            match fs::remove_file(file_path(dir, base, suffix)) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
