//! Record batch (magic v2) header layout, validation and the few in-place rewrites the log
//! performs when it appends a batch.

use super::LogError;

/// Bytes before the `batchLength` field's count starts: baseOffset (8) + batchLength (4).
pub(crate) const LOG_OVERHEAD: usize = 12;
/// Size of the fixed v2 batch header, up to and including `recordCount`.
pub(crate) const HEADER_LEN: usize = 61;

pub(crate) const BASE_OFFSET: usize = 0;
pub(crate) const BATCH_LENGTH: usize = 8;
pub(crate) const PARTITION_LEADER_EPOCH: usize = 12;
pub(crate) const MAGIC: usize = 16;
pub(crate) const CRC: usize = 17;
pub(crate) const ATTRIBUTES: usize = 21;
pub(crate) const LAST_OFFSET_DELTA: usize = 23;
pub(crate) const BASE_TIMESTAMP: usize = 27;
pub(crate) const MAX_TIMESTAMP: usize = 35;
pub(crate) const PRODUCER_ID: usize = 43;
pub(crate) const PRODUCER_EPOCH: usize = 51;
pub(crate) const BASE_SEQUENCE: usize = 53;
pub(crate) const RECORD_COUNT: usize = 57;

/// Attribute bit: the batch's timestamps are LogAppendTime.
pub(crate) const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
/// Attribute bits 0-2: compression codec.
pub(crate) const COMPRESSION_MASK: i16 = 0x7;
/// Highest compression codec id Kafka defines (zstd).
const MAX_COMPRESSION: i16 = 4;

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// The fields of a v2 batch header the log cares about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub base_offset: i64,
    /// Bytes after the `batchLength` field.
    pub batch_length: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Parses the first [`HEADER_LEN`] bytes of `b` (which must be at least that long).
    pub fn parse(b: &[u8]) -> BatchHeader {
        debug_assert!(b.len() >= HEADER_LEN);
        BatchHeader {
            base_offset: i64_at(b, BASE_OFFSET),
            batch_length: i32_at(b, BATCH_LENGTH),
            magic: b[MAGIC] as i8,
            crc: u32_at(b, CRC),
            attributes: i16_at(b, ATTRIBUTES),
            last_offset_delta: i32_at(b, LAST_OFFSET_DELTA),
            base_timestamp: i64_at(b, BASE_TIMESTAMP),
            max_timestamp: i64_at(b, MAX_TIMESTAMP),
            producer_id: i64_at(b, PRODUCER_ID),
            producer_epoch: i16_at(b, PRODUCER_EPOCH),
            base_sequence: i32_at(b, BASE_SEQUENCE),
            record_count: i32_at(b, RECORD_COUNT),
        }
    }

    /// Total size of the batch on disk, including the offset and length fields.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    pub fn compression(&self) -> i16 {
        self.attributes & COMPRESSION_MASK
    }

    /// Sequence number of the batch's last record (sequences wrap from `i32::MAX` to 0).
    pub fn last_sequence(&self) -> i32 {
        increment_sequence(self.base_sequence, self.last_offset_delta)
    }

    /// Checks the header fields that do not need the batch body: magic, a length that
    /// covers the header, a known compression codec and a sane offset delta.
    pub fn check_shape(&self) -> Result<(), String> {
        if self.magic != 2 {
            return Err(format!("unsupported record batch magic {}", self.magic));
        }
        if (self.batch_length as i64) < (HEADER_LEN - LOG_OVERHEAD) as i64 {
            return Err(format!(
                "record batch length {} too small",
                self.batch_length
            ));
        }
        if self.compression() > MAX_COMPRESSION {
            return Err(format!("unknown compression codec {}", self.compression()));
        }
        if self.last_offset_delta < 0 {
            return Err(format!(
                "negative last offset delta {}",
                self.last_offset_delta
            ));
        }
        if self.record_count < 0 {
            return Err(format!("negative record count {}", self.record_count));
        }
        Ok(())
    }
}

/// `base + delta` in Kafka's sequence space, where `i32::MAX` is followed by 0.
pub(crate) fn increment_sequence(base: i32, delta: i32) -> i32 {
    if base > i32::MAX - delta {
        base - (i32::MAX - delta) - 1
    } else {
        base + delta
    }
}

/// CRC-32C as stored in a v2 batch: over everything from the attributes to the end.
pub(crate) fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES..])
}

/// Checks one complete batch (exactly `batch.len()` bytes): header shape and CRC.
pub(crate) fn validate_batch(batch: &[u8]) -> Result<BatchHeader, String> {
    if batch.len() < HEADER_LEN {
        return Err(format!(
            "record batch of {} bytes is truncated",
            batch.len()
        ));
    }
    let header = BatchHeader::parse(batch);
    header.check_shape()?;
    if header.total_len() != batch.len() {
        return Err(format!(
            "record batch length {} does not match the {} bytes present",
            header.total_len(),
            batch.len()
        ));
    }
    let actual = compute_crc(batch);
    if actual != header.crc {
        return Err(format!(
            "record batch CRC mismatch: stored {:#010x}, computed {actual:#010x}",
            header.crc
        ));
    }
    Ok(header)
}

/// Splits the bytes of a Produce request's partition `records` into batches and validates
/// each one, including the rules for freshly produced batches (at least one record and
/// `lastOffsetDelta == recordCount - 1`). Returns `(start, header)` per batch.
pub(crate) fn split_produced(records: &[u8]) -> Result<Vec<(usize, BatchHeader)>, LogError> {
    if records.is_empty() {
        return Err(LogError::Corrupt("no record batches".into()));
    }
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        let rest = &records[pos..];
        if rest.len() < HEADER_LEN {
            return Err(LogError::Corrupt(format!(
                "truncated record batch at byte {pos}: {} bytes left",
                rest.len()
            )));
        }
        let header = BatchHeader::parse(rest);
        header
            .check_shape()
            .map_err(|e| LogError::Corrupt(format!("record batch at byte {pos}: {e}")))?;
        let len = header.total_len();
        if len > rest.len() {
            return Err(LogError::Corrupt(format!(
                "record batch at byte {pos} claims {len} bytes, only {} present",
                rest.len()
            )));
        }
        let header = validate_batch(&rest[..len])
            .map_err(|e| LogError::Corrupt(format!("record batch at byte {pos}: {e}")))?;
        if header.record_count < 1 {
            return Err(LogError::Corrupt(format!(
                "record batch at byte {pos} has no records"
            )));
        }
        if i64::from(header.last_offset_delta) != i64::from(header.record_count) - 1 {
            return Err(LogError::Corrupt(format!(
                "record batch at byte {pos}: last offset delta {} does not match {} records",
                header.last_offset_delta, header.record_count
            )));
        }
        out.push((pos, header));
        pos += len;
    }
    Ok(out)
}

/// Rewrites the fields the log owns: the base offset and the partition leader epoch (not
/// covered by the CRC), and with `log_append_time` the timestamp type bit and the max
/// timestamp (then the CRC is recomputed).
pub(crate) fn assign(batch: &mut [u8], base_offset: i64, log_append_time: Option<i64>) {
    batch[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
    batch[PARTITION_LEADER_EPOCH..PARTITION_LEADER_EPOCH + 4].copy_from_slice(&0i32.to_be_bytes());
    if let Some(ts) = log_append_time {
        let attributes = i16_at(batch, ATTRIBUTES) | TIMESTAMP_TYPE_BIT;
        batch[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        batch[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&ts.to_be_bytes());
        let crc = compute_crc(batch);
        batch[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(increment_sequence(0, 4), 4);
        assert_eq!(increment_sequence(i32::MAX, 0), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
    }
}
