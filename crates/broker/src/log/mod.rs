//! Stand-in for one partition's log: record batches kept in memory and appended to a single
//! file so that a restart finds them again. Replaced by the segment log.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};

#[derive(Clone, Debug)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: Option<u64>,
    pub retention_ms: Option<i64>,
    pub retention_bytes: Option<u64>,
    pub index_interval_bytes: u32,
    pub flush: FlushPolicy,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: Some(7 * 24 * 3600 * 1000),
            retention_ms: Some(7 * 24 * 3600 * 1000),
            retention_bytes: None,
            index_interval_bytes: 4096,
            flush: FlushPolicy::Os,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushPolicy {
    EveryBatch,
    Interval(Duration),
    Os,
}

#[derive(Clone, Debug)]
pub struct Appended {
    pub base_offset: i64,
    pub last_offset: i64,
    pub log_append_time_ms: i64,
    pub duplicate: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt record batch: {0}")]
    Corrupt(String),
    #[error("offset out of range [{start}, {end}]")]
    OffsetOutOfRange { start: i64, end: i64 },
    #[error("out of order sequence: {0}")]
    OutOfOrderSequence(String),
    #[error("invalid producer epoch: {0}")]
    InvalidProducerEpoch(String),
}

struct Batch {
    base: i64,
    last: i64,
    max_ts: i64,
    data: Bytes,
}

pub struct PartitionLog {
    file: File,
    start_path: PathBuf,
    batches: Vec<Batch>,
    start: i64,
    end: i64,
    producers: HashMap<i64, (i16, i32, i32, i64, i64)>,
    config: LogConfig,
}

const HEADER: usize = 61;

fn split_batches(mut records: Bytes) -> Result<Vec<Bytes>, LogError> {
    let mut out = Vec::new();
    while !records.is_empty() {
        if records.len() < HEADER {
            return Err(LogError::Corrupt("truncated batch header".into()));
        }
        let len = i32::from_be_bytes(records[8..12].try_into().unwrap_or_default());
        if len < (HEADER - 12) as i32 || records.len() < 12 + len as usize {
            return Err(LogError::Corrupt(format!("bad batch length {len}")));
        }
        if records[16] != 2 {
            return Err(LogError::Corrupt(format!("magic {}", records[16])));
        }
        out.push(records.split_to(12 + len as usize));
    }
    Ok(out)
}

fn field_i64(b: &[u8], at: usize) -> i64 {
    (&b[at..at + 8]).get_i64()
}
fn field_i32(b: &[u8], at: usize) -> i32 {
    (&b[at..at + 4]).get_i32()
}
fn field_i16(b: &[u8], at: usize) -> i16 {
    (&b[at..at + 2]).get_i16()
}

impl PartitionLog {
    pub fn open(dir: &Path, config: LogConfig) -> Result<PartitionLog, LogError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("00000000000000000000.log");
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let mut raw = Vec::new();
        file.read_to_end(&mut raw)?;
        let start_path = dir.join("log-start-offset");
        let start = std::fs::read_to_string(&start_path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let mut log = PartitionLog {
            file,
            start_path,
            batches: Vec::new(),
            start,
            end: start,
            producers: HashMap::new(),
            config,
        };
        for batch in split_batches(Bytes::from(raw))? {
            log.index(batch);
        }
        Ok(log)
    }

    fn index(&mut self, data: Bytes) {
        let base = field_i64(&data, 0);
        let last = base + field_i32(&data, 23) as i64;
        let max_ts = field_i64(&data, 35);
        self.end = self.end.max(last + 1);
        self.batches.push(Batch {
            base,
            last,
            max_ts,
            data,
        });
    }

    pub fn append(&mut self, records: Bytes) -> Result<Appended, LogError> {
        let batches = split_batches(records)?;
        if batches.is_empty() {
            return Err(LogError::Corrupt("no record batch".into()));
        }
        let first = &batches[0];
        let pid = field_i64(first, 43);
        let epoch = field_i16(first, 51);
        let seq = field_i32(first, 53);
        if pid >= 0
            && let Some(&(e, s, last_seq, b, l)) = self.producers.get(&pid)
        {
            {
                if epoch < e {
                    return Err(LogError::InvalidProducerEpoch(format!("{epoch} < {e}")));
                }
                if epoch == e && seq == s {
                    return Ok(Appended {
                        base_offset: b,
                        last_offset: l,
                        log_append_time_ms: -1,
                        duplicate: true,
                    });
                }
                if epoch == e && seq != last_seq.wrapping_add(1) {
                    return Err(LogError::OutOfOrderSequence(format!(
                        "expected {}, got {seq}",
                        last_seq.wrapping_add(1)
                    )));
                }
            }
        }
        let base_offset = self.end;
        let mut last_seq = seq;
        for batch in batches {
            let mut b = BytesMut::from(&batch[..]);
            b[0..8].copy_from_slice(&self.end.to_be_bytes());
            let count = field_i32(&b, 57);
            last_seq = field_i32(&b, 53).wrapping_add(count - 1);
            let data = b.freeze();
            self.file.write_all(&data)?;
            self.index(data);
        }
        if self.config.flush == FlushPolicy::EveryBatch {
            self.file.sync_data()?;
        }
        let last_offset = self.end - 1;
        if pid >= 0 {
            self.producers
                .insert(pid, (epoch, seq, last_seq, base_offset, last_offset));
        }
        Ok(Appended {
            base_offset,
            last_offset,
            log_append_time_ms: -1,
            duplicate: false,
        })
    }

    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<Bytes, LogError> {
        if offset < self.start || offset > self.end {
            return Err(LogError::OffsetOutOfRange {
                start: self.start,
                end: self.end,
            });
        }
        let mut out = BytesMut::new();
        for batch in self.batches.iter().filter(|b| b.last >= offset) {
            if !out.is_empty() && out.len() + batch.data.len() > max_bytes {
                break;
            }
            out.extend_from_slice(&batch.data);
        }
        Ok(out.freeze())
    }

    pub fn start_offset(&self) -> i64 {
        self.start
    }

    pub fn end_offset(&self) -> i64 {
        self.end
    }

    /// `(offset, timestamp)` of the first batch whose max timestamp is at least `timestamp_ms`.
    pub fn offset_for_time(&self, timestamp_ms: i64) -> Result<Option<(i64, i64)>, LogError> {
        Ok(self
            .batches
            .iter()
            .filter(|b| b.last >= self.start)
            .find(|b| b.max_ts >= timestamp_ms)
            .map(|b| (b.base.max(self.start), b.max_ts)))
    }

    /// `(offset, timestamp)` of the batch with the largest timestamp.
    pub fn max_timestamp(&self) -> Result<Option<(i64, i64)>, LogError> {
        let mut best: Option<&Batch> = None;
        for b in self.batches.iter().filter(|b| b.last >= self.start) {
            if best.is_none_or(|x| b.max_ts > x.max_ts) {
                best = Some(b);
            }
        }
        Ok(best.map(|b| (b.last, b.max_ts)))
    }

    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64, LogError> {
        if offset > self.end {
            return Err(LogError::OffsetOutOfRange {
                start: self.start,
                end: self.end,
            });
        }
        if offset > self.start {
            self.start = offset;
            std::fs::write(&self.start_path, offset.to_string())?;
        }
        Ok(self.start)
    }

    /// Drops leading batches older than `retention.ms`, never the last one.
    pub fn apply_retention(&mut self, now_ms: i64) -> Result<u64, LogError> {
        let Some(retention) = self.config.retention_ms else {
            return Ok(0);
        };
        let mut removed = 0u64;
        while self.batches.len() > 1 && self.batches[0].max_ts < now_ms - retention {
            let batch = self.batches.remove(0);
            removed += batch.data.len() as u64;
            self.start = self.start.max(batch.last + 1);
        }
        if removed > 0 {
            std::fs::write(&self.start_path, self.start.to_string())?;
        }
        Ok(removed)
    }

    pub fn flush(&mut self) -> Result<(), LogError> {
        self.file.sync_data()?;
        Ok(())
    }

    pub fn size_bytes(&self) -> u64 {
        self.batches.iter().map(|b| b.data.len() as u64).sum()
    }

    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }
}
