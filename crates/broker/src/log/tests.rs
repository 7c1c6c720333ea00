//! Tests against real files in temporary directories.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::batch::{self, BatchHeader, HEADER_LEN};
use super::*;

// ---------------------------------------------------------------------------------------
// Building batches

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let b = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(b);
            break;
        }
        out.push(b | 0x80);
    }
}

/// An uncompressed v2 batch as a producer would send it.
#[derive(Clone)]
struct Batch {
    producer_id: i64,
    epoch: i16,
    sequence: i32,
    attributes: i16,
    /// (timestamp, value) per record.
    records: Vec<(i64, Vec<u8>)>,
}

impl Batch {
    fn new(values: &[&str]) -> Batch {
        Batch {
            producer_id: -1,
            epoch: -1,
            sequence: -1,
            attributes: 0,
            records: values
                .iter()
                .map(|v| (1_000, v.as_bytes().to_vec()))
                .collect(),
        }
    }

    fn timed(records: &[(i64, &str)]) -> Batch {
        Batch {
            records: records
                .iter()
                .map(|(t, v)| (*t, v.as_bytes().to_vec()))
                .collect(),
            ..Batch::new(&[])
        }
    }

    fn producer(mut self, producer_id: i64, epoch: i16, sequence: i32) -> Batch {
        self.producer_id = producer_id;
        self.epoch = epoch;
        self.sequence = sequence;
        self
    }

    fn bytes(&self) -> Vec<u8> {
        let base_ts = self.records.iter().map(|r| r.0).min().unwrap_or(-1);
        let max_ts = self.records.iter().map(|r| r.0).max().unwrap_or(-1);
        let mut b = Vec::new();
        b.extend_from_slice(&12345i64.to_be_bytes()); // producer-side base offset, rewritten
        b.extend_from_slice(&0i32.to_be_bytes()); // length, filled below
        b.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
        b.push(2);
        b.extend_from_slice(&0u32.to_be_bytes()); // crc, filled below
        b.extend_from_slice(&self.attributes.to_be_bytes());
        b.extend_from_slice(&(self.records.len() as i32 - 1).to_be_bytes());
        b.extend_from_slice(&base_ts.to_be_bytes());
        b.extend_from_slice(&max_ts.to_be_bytes());
        b.extend_from_slice(&self.producer_id.to_be_bytes());
        b.extend_from_slice(&self.epoch.to_be_bytes());
        b.extend_from_slice(&self.sequence.to_be_bytes());
        b.extend_from_slice(&(self.records.len() as i32).to_be_bytes());
        for (i, (ts, value)) in self.records.iter().enumerate() {
            let mut body = vec![0u8]; // record attributes
            put_varint(&mut body, ts - base_ts);
            put_varint(&mut body, i as i64);
            put_varint(&mut body, -1); // null key
            put_varint(&mut body, value.len() as i64);
            body.extend_from_slice(value);
            put_varint(&mut body, 0); // no headers
            put_varint(&mut b, body.len() as i64);
            b.extend_from_slice(&body);
        }
        let len = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        let crc = batch::compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn b(&self) -> Bytes {
        Bytes::from(self.bytes())
    }
}

fn concat(batches: &[&Batch]) -> Bytes {
    let mut out = Vec::new();
    for b in batches {
        out.extend_from_slice(&b.bytes());
    }
    Bytes::from(out)
}

/// A gzip-compressed batch built with kafka-protocol's encoder.
fn gzip_batch(records: &[(i64, &str)]) -> Bytes {
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (ts, v))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: *ts,
            key: None,
            value: Some(Bytes::from(v.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::Gzip,
        },
    )
    .expect("encode");
    buf.freeze()
}

// ---------------------------------------------------------------------------------------
// Reading results back

/// (offset, timestamp, value) of every record in `bytes`, checking every batch's CRC.
fn records_of(bytes: &Bytes) -> Vec<(i64, i64, String)> {
    let mut out = Vec::new();
    for (_, h) in headers_of(bytes) {
        assert_eq!(h.magic, 2);
    }
    let mut buf = bytes.clone();
    for set in RecordBatchDecoder::decode_all(&mut buf).expect("decodes") {
        for r in set.records {
            let value = String::from_utf8(r.value.expect("value").to_vec()).expect("utf8");
            out.push((r.offset, r.timestamp, value));
        }
    }
    out
}

/// (position, header) of every batch in `bytes`, each validated (length and CRC).
fn headers_of(bytes: &[u8]) -> Vec<(usize, BatchHeader)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let h = BatchHeader::parse(&bytes[pos..pos + HEADER_LEN]);
        let len = h.total_len();
        let checked = batch::validate_batch(&bytes[pos..pos + len]).expect("valid batch");
        assert_eq!(checked, h);
        out.push((pos, h));
        pos += len;
    }
    out
}

fn offsets_of(bytes: &Bytes) -> Vec<i64> {
    records_of(bytes).into_iter().map(|r| r.0).collect()
}

fn values_of(bytes: &Bytes) -> Vec<String> {
    records_of(bytes).into_iter().map(|r| r.2).collect()
}

fn small_segments(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        index_interval_bytes: 1,
        ..LogConfig::default()
    }
}

fn log_files(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(&format!(".{suffix}")))
        .collect();
    names.sort();
    names
}

fn active_log_path(dir: &Path) -> std::path::PathBuf {
    dir.join(log_files(dir, "log").last().unwrap())
}

// ---------------------------------------------------------------------------------------
// Tests

#[test]
fn partition_log_is_send_and_sync() {
    fn check<T: Send + Sync + std::fmt::Debug>() {}
    check::<PartitionLog>();
}

#[test]
fn append_and_read_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!((log.start_offset(), log.end_offset()), (0, 0));
    assert_eq!(log.max_timestamp().unwrap(), None);

    let a = log.append(Batch::new(&["a", "b", "c"]).b()).unwrap();
    assert_eq!(
        a,
        Appended {
            base_offset: 0,
            last_offset: 2,
            log_append_time_ms: -1,
            duplicate: false
        }
    );
    let b = log.append(Batch::new(&["d"]).b()).unwrap();
    assert_eq!((b.base_offset, b.last_offset), (3, 3));
    let c = log
        .append(concat(&[&Batch::new(&["e", "f"]), &Batch::new(&["g"])]))
        .unwrap();
    assert_eq!((c.base_offset, c.last_offset), (4, 6));
    assert_eq!(log.end_offset(), 7);

    let all = log.read(0, 1 << 20).unwrap();
    assert_eq!(values_of(&all), ["a", "b", "c", "d", "e", "f", "g"]);
    assert_eq!(offsets_of(&all), (0..7).collect::<Vec<_>>());
    let headers = headers_of(&all);
    assert_eq!(
        headers
            .iter()
            .map(|(_, h)| h.base_offset)
            .collect::<Vec<_>>(),
        [0, 3, 4, 6]
    );
    // Leader epoch set to 0; everything else as sent.
    for (pos, h) in &headers {
        assert_eq!(&all[pos + 12..pos + 16], &[0, 0, 0, 0]);
        assert_eq!(h.producer_id, -1);
    }
    let sent = Batch::new(&["d"]).bytes();
    let (pos, h) = headers[1];
    assert_eq!(&all[pos + 16..pos + h.total_len()], &sent[16..]);
    assert_eq!(log.size_bytes() as usize, all.len());
    assert_eq!(log.read(7, 100).unwrap().len(), 0);
}

#[test]
fn reads_cross_segment_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let one = Batch::new(&["0123456789"]).bytes().len() as u64;
    // Room for three batches per segment.
    let mut log = PartitionLog::open(dir.path(), small_segments(one * 3)).unwrap();
    for i in 0..10 {
        let v = format!("{i:010}");
        assert_eq!(log.append(Batch::new(&[&v]).b()).unwrap().base_offset, i);
    }
    assert_eq!(log.segment_base_offsets(), [0, 3, 6, 9]);
    assert_eq!(
        log_files(dir.path(), "log"),
        [
            "00000000000000000000.log",
            "00000000000000000003.log",
            "00000000000000000006.log",
            "00000000000000000009.log"
        ]
    );
    let all = log.read(0, 1 << 20).unwrap();
    assert_eq!(offsets_of(&all), (0..10).collect::<Vec<_>>());
    for start in 0..10 {
        let got = log.read(start, 1 << 20).unwrap();
        assert_eq!(offsets_of(&got), (start..10).collect::<Vec<_>>());
    }
    // max_bytes stops at whole batches, across a segment boundary too.
    let got = log.read(2, (one * 2) as usize).unwrap();
    assert_eq!(offsets_of(&got), [2, 3]);
    assert_eq!(log.size_bytes(), one * 10);
}

#[test]
fn read_from_the_middle_of_a_batch_returns_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_segments(1 << 20)).unwrap();
    log.append(Batch::new(&["a", "b"]).b()).unwrap();
    log.append(Batch::new(&["c", "d", "e", "f"]).b()).unwrap();
    log.append(Batch::new(&["g"]).b()).unwrap();
    let got = log.read(4, 1 << 20).unwrap();
    assert_eq!(offsets_of(&got), [2, 3, 4, 5, 6]);
    assert_eq!(headers_of(&got)[0].1.base_offset, 2);
    let got = log.read(5, 1).unwrap();
    assert_eq!(offsets_of(&got), [2, 3, 4, 5]);
}

#[test]
fn max_bytes_and_at_least_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    let big = "x".repeat(1000);
    log.append(Batch::new(&[&big]).b()).unwrap();
    log.append(Batch::new(&["s"]).b()).unwrap();
    log.append(Batch::new(&["t"]).b()).unwrap();
    let first_len = Batch::new(&[&big]).bytes().len();
    let small_len = Batch::new(&["s"]).bytes().len();

    // A first batch larger than max_bytes is still returned, alone.
    let got = log.read(0, 10).unwrap();
    assert_eq!(got.len(), first_len);
    assert_eq!(offsets_of(&got), [0]);
    let got = log.read(0, first_len + small_len - 1).unwrap();
    assert_eq!(offsets_of(&got), [0]);
    let got = log.read(0, first_len + small_len).unwrap();
    assert_eq!(offsets_of(&got), [0, 1]);
    let got = log.read(1, 0).unwrap();
    assert_eq!(offsets_of(&got), [1]);
    let got = log.read(1, 2 * small_len).unwrap();
    assert_eq!(offsets_of(&got), [1, 2]);
}

#[test]
fn offset_out_of_range_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    assert!(log.read(0, 100).unwrap().is_empty());
    assert!(matches!(
        log.read(1, 100),
        Err(LogError::OffsetOutOfRange { start: 0, end: 0 })
    ));
    log.append(Batch::new(&["a", "b", "c"]).b()).unwrap();
    log.append(Batch::new(&["d"]).b()).unwrap();
    assert!(matches!(
        log.read(-1, 100),
        Err(LogError::OffsetOutOfRange { start: 0, end: 4 })
    ));
    assert!(matches!(
        log.read(5, 100),
        Err(LogError::OffsetOutOfRange { start: 0, end: 4 })
    ));
    assert!(log.read(4, 100).unwrap().is_empty());
    log.delete_records_before(2).unwrap();
    assert!(matches!(
        log.read(1, 100),
        Err(LogError::OffsetOutOfRange { start: 2, end: 4 })
    ));
    // The batch holding the start offset is returned whole.
    assert_eq!(offsets_of(&log.read(2, 1 << 20).unwrap()), [0, 1, 2, 3]);
    assert!(matches!(
        log.delete_records_before(5),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(
        LogError::OffsetOutOfRange { start: 0, end: 0 }.error_code(),
        error_code::OFFSET_OUT_OF_RANGE
    );
}

#[test]
fn reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let one = Batch::new(&["v"]).bytes().len() as u64;
    let config = small_segments(one * 4);
    let before = {
        let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        for i in 0..11 {
            log.append(Batch::timed(&[(100 + i, "v")]).b()).unwrap();
        }
        log.read(0, 1 << 20).unwrap()
    };
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    assert_eq!(log.segment_count(), 3);
    assert_eq!((log.start_offset(), log.end_offset()), (0, 11));
    assert_eq!(log.read(0, 1 << 20).unwrap(), before);
    assert_eq!(log.max_timestamp().unwrap(), Some((10, 110)));
    assert_eq!(log.offset_for_time(105).unwrap(), Some((5, 105)));
    assert_eq!(log.append(Batch::new(&["w"]).b()).unwrap().base_offset, 11);
    assert_eq!(offsets_of(&log.read(10, 1 << 20).unwrap()), [10, 11]);
}

#[test]
fn torn_tail_is_cut_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        log.append(Batch::new(&["a", "b"]).b()).unwrap();
        log.append(Batch::new(&["c"]).b()).unwrap();
        log.append(Batch::new(&["d", "e", "f"]).b()).unwrap();
    }
    let path = active_log_path(dir.path());
    let len = fs::metadata(&path).unwrap().len();
    let last = Batch::new(&["d", "e", "f"]).bytes().len() as u64;
    // Cut the last batch in half.
    OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - last / 2)
        .unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.end_offset(), 3);
    assert_eq!(fs::metadata(&path).unwrap().len(), len - last);
    assert_eq!(values_of(&log.read(0, 1 << 20).unwrap()), ["a", "b", "c"]);
    let again = log.append(Batch::new(&["g"]).b()).unwrap();
    assert_eq!((again.base_offset, again.last_offset), (3, 3));
    assert_eq!(
        values_of(&log.read(0, 1 << 20).unwrap()),
        ["a", "b", "c", "g"]
    );
    drop(log);

    // Garbage after the last batch.
    let good_len = fs::metadata(&path).unwrap().len();
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&[0xde; 100]).unwrap();
    drop(f);
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.end_offset(), 4);
    assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
    assert_eq!(log.append(Batch::new(&["h"]).b()).unwrap().base_offset, 4);
    assert_eq!(
        values_of(&log.read(0, 1 << 20).unwrap()),
        ["a", "b", "c", "g", "h"]
    );
}

#[test]
fn bad_crc_in_the_tail_is_cut_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
        log.append(Batch::new(&["a"]).b()).unwrap();
        log.append(Batch::new(&["b"]).b()).unwrap();
        log.append(Batch::new(&["c"]).b()).unwrap();
    }
    let path = active_log_path(dir.path());
    let mut data = fs::read(&path).unwrap();
    let n = data.len();
    data[n - 3] ^= 0xff; // inside the last batch's record
    fs::write(&path, &data).unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.end_offset(), 2);
    assert_eq!(values_of(&log.read(0, 1 << 20).unwrap()), ["a", "b"]);
    assert_eq!(log.append(Batch::new(&["d"]).b()).unwrap().base_offset, 2);
}

#[test]
fn corrupt_batches_are_refused_and_nothing_is_appended() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    log.append(Batch::new(&["a"]).b()).unwrap();
    let size = log.size_bytes();

    let good = Batch::new(&["b"]).bytes();
    let mut bad_crc = Batch::new(&["c"]).bytes();
    let n = bad_crc.len();
    bad_crc[n - 2] ^= 1;
    let mut request = good.clone();
    request.extend_from_slice(&bad_crc);
    let err = log.append(Bytes::from(request)).unwrap_err();
    assert!(matches!(err, LogError::Corrupt(_)), "{err}");
    assert_eq!(err.error_code(), error_code::CORRUPT_MESSAGE);

    let mut bad_magic = Batch::new(&["c"]).bytes();
    bad_magic[16] = 1;
    assert!(matches!(
        log.append(Bytes::from(bad_magic)),
        Err(LogError::Corrupt(_))
    ));
    let truncated = Bytes::from(good[..good.len() - 1].to_vec());
    assert!(matches!(log.append(truncated), Err(LogError::Corrupt(_))));
    let mut too_long = good.clone();
    too_long.extend_from_slice(&[0; 20]);
    assert!(matches!(
        log.append(Bytes::from(too_long)),
        Err(LogError::Corrupt(_))
    ));
    assert!(matches!(
        log.append(Bytes::new()),
        Err(LogError::Corrupt(_))
    ));
    let mut bad_length = good.clone();
    bad_length[8..12].copy_from_slice(&10i32.to_be_bytes());
    assert!(matches!(
        log.append(Bytes::from(bad_length)),
        Err(LogError::Corrupt(_))
    ));

    assert_eq!(log.end_offset(), 1);
    assert_eq!(log.size_bytes(), size);
    assert_eq!(log.append(Batch::new(&["d"]).b()).unwrap().base_offset, 1);
    assert_eq!(values_of(&log.read(0, 1 << 20).unwrap()), ["a", "d"]);
}

#[test]
fn idempotent_producer_rules() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    let p = |seq: i32, n: usize| {
        let values: Vec<String> = (0..n).map(|i| format!("s{}", seq + i as i32)).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        Batch::new(&refs).producer(7, 0, seq)
    };
    // An unknown producer may start anywhere.
    let first = log.append(p(10, 2).b()).unwrap();
    assert_eq!(
        (first.base_offset, first.last_offset, first.duplicate),
        (0, 1, false)
    );
    let second = log.append(p(12, 3).b()).unwrap();
    assert_eq!((second.base_offset, second.last_offset), (2, 4));
    log.append(Batch::new(&["plain"]).b()).unwrap();

    // Retries of recent batches are duplicates with their original offsets.
    let dup = log.append(p(12, 3).b()).unwrap();
    assert_eq!(
        dup,
        Appended {
            base_offset: 2,
            last_offset: 4,
            log_append_time_ms: -1,
            duplicate: true
        }
    );
    let dup = log.append(p(10, 2).b()).unwrap();
    assert_eq!(
        (dup.base_offset, dup.last_offset, dup.duplicate),
        (0, 1, true)
    );
    assert_eq!(log.end_offset(), 6);

    // Gaps and going backwards.
    let err = log.append(p(16, 1).b()).unwrap_err();
    assert!(matches!(err, LogError::OutOfOrderSequence(_)), "{err}");
    assert_eq!(err.error_code(), error_code::OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert!(matches!(
        log.append(p(11, 1).b()),
        Err(LogError::OutOfOrderSequence(_))
    ));
    assert!(matches!(
        log.append(p(12, 2).b()),
        Err(LogError::OutOfOrderSequence(_))
    ));
    assert_eq!(log.end_offset(), 6);
    assert_eq!(log.append(p(15, 1).b()).unwrap().base_offset, 6);

    // Epoch bump: must start at 0; afterwards the old epoch is fenced.
    let bumped = |seq: i32| Batch::new(&["e1"]).producer(7, 1, seq);
    assert!(matches!(
        log.append(bumped(16).b()),
        Err(LogError::OutOfOrderSequence(_))
    ));
    assert_eq!(log.append(bumped(0).b()).unwrap().base_offset, 7);
    let err = log.append(p(16, 1).b()).unwrap_err();
    assert!(matches!(err, LogError::InvalidProducerEpoch(_)), "{err}");
    assert_eq!(err.error_code(), error_code::INVALID_PRODUCER_EPOCH);
    assert_eq!(log.append(bumped(1).b()).unwrap().base_offset, 8);
    assert!(log.append(bumped(1).b()).unwrap().duplicate);

    // Another producer is independent.
    assert_eq!(
        log.append(Batch::new(&["q"]).producer(8, 3, 0).b())
            .unwrap()
            .base_offset,
        9
    );
    assert_eq!(log.end_offset(), 10);
}

#[test]
fn only_the_last_five_batches_are_remembered() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    for seq in 0..6 {
        log.append(Batch::new(&["x"]).producer(1, 0, seq).b())
            .unwrap();
    }
    for seq in 1..6 {
        let dup = log
            .append(Batch::new(&["x"]).producer(1, 0, seq).b())
            .unwrap();
        assert!(dup.duplicate);
        assert_eq!(dup.base_offset, seq as i64);
    }
    assert!(matches!(
        log.append(Batch::new(&["x"]).producer(1, 0, 0).b()),
        Err(LogError::OutOfOrderSequence(_))
    ));
}

#[test]
fn several_batches_of_one_producer_in_one_request() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    let a = Batch::new(&["a", "b"]).producer(3, 0, 0);
    let b = Batch::new(&["c"]).producer(3, 0, 2);
    let got = log.append(concat(&[&a, &b])).unwrap();
    assert_eq!((got.base_offset, got.last_offset), (0, 2));
    // The same request again is a duplicate.
    let dup = log.append(concat(&[&a, &b])).unwrap();
    assert_eq!(
        (dup.base_offset, dup.last_offset, dup.duplicate),
        (0, 2, true)
    );
    // A gap inside a request refuses all of it.
    let c = Batch::new(&["d"]).producer(3, 0, 3);
    let e = Batch::new(&["e"]).producer(3, 0, 5);
    assert!(matches!(
        log.append(concat(&[&c, &e])),
        Err(LogError::OutOfOrderSequence(_))
    ));
    assert_eq!(log.end_offset(), 3);
    assert_eq!(log.append(c.b()).unwrap().base_offset, 3);
}

#[test]
fn producer_state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let one = Batch::new(&["x"]).producer(5, 2, 0).bytes().len() as u64;
    let config = small_segments(one * 2);
    {
        let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        for seq in 0..5 {
            log.append(Batch::new(&["x"]).producer(5, 2, seq).b())
                .unwrap();
        }
        log.append(Batch::new(&["y"]).producer(6, 0, 40).b())
            .unwrap();
        assert!(log.segment_count() > 1);
    }
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    let dup = log
        .append(Batch::new(&["x"]).producer(5, 2, 3).b())
        .unwrap();
    assert_eq!((dup.base_offset, dup.duplicate), (3, true));
    let dup = log
        .append(Batch::new(&["y"]).producer(6, 0, 40).b())
        .unwrap();
    assert_eq!((dup.base_offset, dup.duplicate), (5, true));
    assert!(matches!(
        log.append(Batch::new(&["x"]).producer(5, 2, 9).b()),
        Err(LogError::OutOfOrderSequence(_))
    ));
    assert!(matches!(
        log.append(Batch::new(&["x"]).producer(5, 1, 5).b()),
        Err(LogError::InvalidProducerEpoch(_))
    ));
    assert_eq!(
        log.append(Batch::new(&["x"]).producer(5, 2, 5).b())
            .unwrap()
            .base_offset,
        6
    );
}

#[test]
fn offset_for_time_finds_records_inside_batches() {
    let dir = tempfile::tempdir().unwrap();
    // Small segments and an entry per batch so the indexes are used.
    let mut log = PartitionLog::open(dir.path(), small_segments(300)).unwrap();
    log.append(Batch::timed(&[(100, "a"), (110, "b"), (120, "c")]).b())
        .unwrap(); // 0..=2
    log.append(Batch::timed(&[(130, "d"), (125, "e")]).b())
        .unwrap(); // 3..=4
    log.append(Batch::timed(&[(90, "late")]).b()).unwrap(); // 5: out of order time
    log.append(Batch::timed(&[(200, "f"), (210, "g"), (220, "h")]).b())
        .unwrap(); // 6..=8
    log.append(gzip_batch(&[(300, "i"), (310, "j"), (320, "k")]))
        .unwrap(); // 9..=11
    log.append(Batch::timed(&[(400, "l")]).b()).unwrap(); // 12
    assert!(log.segment_count() > 1);

    let expect = [
        (0, Some((0, 100))),
        (100, Some((0, 100))),
        (101, Some((1, 110))),
        (120, Some((2, 120))),
        (121, Some((3, 130))),
        (126, Some((3, 130))),
        (131, Some((6, 200))),
        (205, Some((7, 210))),
        (221, Some((9, 300))),
        (305, Some((10, 310))),
        (320, Some((11, 320))),
        (321, Some((12, 400))),
        (400, Some((12, 400))),
        (401, None),
    ];
    for (ts, want) in expect {
        assert_eq!(log.offset_for_time(ts).unwrap(), want, "timestamp {ts}");
    }
    assert_eq!(log.max_timestamp().unwrap(), Some((12, 400)));

    // The log start offset hides earlier records.
    log.delete_records_before(2).unwrap();
    assert_eq!(log.offset_for_time(0).unwrap(), Some((2, 120)));
    assert_eq!(log.offset_for_time(101).unwrap(), Some((2, 120)));
}

#[test]
fn max_timestamp_is_record_level() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_segments(250)).unwrap();
    log.append(Batch::timed(&[(10, "a"), (50, "b"), (20, "c")]).b())
        .unwrap(); // 0..=2
    log.append(Batch::timed(&[(30, "d")]).b()).unwrap(); // 3
    assert_eq!(log.max_timestamp().unwrap(), Some((1, 50)));
    log.append(gzip_batch(&[(60, "e"), (70, "f"), (65, "g")]))
        .unwrap(); // 4..=6
    log.append(Batch::timed(&[(70, "h")]).b()).unwrap(); // 7: ties keep the first
    assert_eq!(log.max_timestamp().unwrap(), Some((5, 70)));
    // Once the start offset passes the max, the max of what is left counts.
    log.delete_records_before(6).unwrap();
    assert_eq!(log.max_timestamp().unwrap(), Some((7, 70)));
}

#[test]
fn log_append_time_batches_get_the_append_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    log.append_at(Batch::timed(&[(5, "create")]).b(), 1_000)
        .unwrap();
    let mut b = Batch::timed(&[(5, "a"), (6, "b")]);
    b.attributes = batch::TIMESTAMP_TYPE_BIT;
    let got = log.append_at(b.b(), 50_000).unwrap();
    assert_eq!(got.log_append_time_ms, 50_000);
    let stored = log.read(1, 1 << 20).unwrap();
    let (_, h) = headers_of(&stored)[0]; // CRC recomputed and valid
    assert_eq!(h.max_timestamp, 50_000);
    assert!(h.log_append_time());
    assert_eq!(log.offset_for_time(6).unwrap(), Some((1, 50_000)));
    assert_eq!(log.max_timestamp().unwrap(), Some((1, 50_000)));
}

#[test]
fn retention_by_time_deletes_old_segments_only() {
    let dir = tempfile::tempdir().unwrap();
    let one = Batch::timed(&[(0, "v")]).bytes().len() as u64;
    let config = LogConfig {
        retention_ms: Some(1_000),
        ..small_segments(one * 2)
    };
    let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    // Segments [0,1] ts 1000/1100, [2,3] ts 2000/2100, [4,5] ts 5000/5100, [6] active.
    for ts in [1000, 1100, 2000, 2100, 5000, 5100, 9000] {
        log.append(Batch::timed(&[(ts, "v")]).b()).unwrap();
    }
    assert_eq!(log.segment_base_offsets(), [0, 2, 4, 6]);
    assert_eq!(log.apply_retention(2_000).unwrap(), 0);
    // 3101 - 2100 > 1000: the first two segments go, the third stays.
    assert_eq!(log.apply_retention(3_101).unwrap(), one * 4);
    assert_eq!(log.segment_base_offsets(), [4, 6]);
    assert_eq!(log.start_offset(), 4);
    assert!(matches!(
        log.read(3, 100),
        Err(LogError::OffsetOutOfRange { start: 4, end: 7 })
    ));
    assert_eq!(log_files(dir.path(), "log").len(), 2);
    assert_eq!(log_files(dir.path(), "index").len(), 2);
    // Far in the future: everything but the active segment.
    assert_eq!(log.apply_retention(1_000_000).unwrap(), one * 2);
    assert_eq!(log.segment_base_offsets(), [6]);
    assert_eq!(log.start_offset(), 6);
    assert_eq!(offsets_of(&log.read(6, 100).unwrap()), [6]);
    drop(log);
    let log = PartitionLog::open(dir.path(), config).unwrap();
    assert_eq!((log.start_offset(), log.end_offset()), (6, 7));
}

#[test]
fn retention_by_bytes_deletes_oldest_segments() {
    let dir = tempfile::tempdir().unwrap();
    let one = Batch::new(&["v"]).bytes().len() as u64;
    let config = LogConfig {
        retention_ms: None,
        retention_bytes: Some(one * 5),
        ..small_segments(one * 2)
    };
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    for _ in 0..9 {
        log.append(Batch::new(&["v"]).b()).unwrap();
    }
    assert_eq!(log.segment_base_offsets(), [0, 2, 4, 6, 8]);
    // 9 batches, limit 5: deleting two segments of two leaves 5.
    assert_eq!(log.apply_retention(i64::MAX).unwrap(), one * 4);
    assert_eq!(log.segment_base_offsets(), [4, 6, 8]);
    assert_eq!(log.size_bytes(), one * 5);
    assert_eq!(log.start_offset(), 4);
    // At the limit nothing more goes.
    assert_eq!(log.apply_retention(i64::MAX).unwrap(), 0);
    let mut tight = log.config().clone();
    tight.retention_bytes = Some(0);
    log.set_config(tight);
    // The active segment is never deleted.
    assert_eq!(log.apply_retention(0).unwrap(), one * 4);
    assert_eq!(log.segment_base_offsets(), [8]);
    assert_eq!(log.end_offset(), 9);
}

#[test]
fn segment_ms_rolls_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_ms: Some(1_000),
        retention_ms: Some(10_000),
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    log.append_at(Batch::timed(&[(5_000, "a")]).b(), 5_000)
        .unwrap();
    log.append_at(Batch::timed(&[(5_500, "b")]).b(), 5_500)
        .unwrap();
    assert_eq!(log.segment_count(), 1);
    // An append after segment_ms rolls first.
    log.append_at(Batch::timed(&[(6_000, "c")]).b(), 6_000)
        .unwrap();
    assert_eq!(log.segment_base_offsets(), [0, 2]);
    // Retention rolls an old active segment so it can expire later.
    assert_eq!(log.apply_retention(7_000).unwrap(), 0);
    assert_eq!(log.segment_base_offsets(), [0, 2, 3]);
    assert!(log.apply_retention(17_000).unwrap() > 0);
    assert_eq!(log.segment_base_offsets(), [3]);
    assert_eq!((log.start_offset(), log.end_offset()), (3, 3));
    assert_eq!(log.append(Batch::new(&["d"]).b()).unwrap().base_offset, 3);
}

#[test]
fn delete_records_before_persists() {
    let dir = tempfile::tempdir().unwrap();
    let one = Batch::new(&["v"]).bytes().len() as u64;
    let config = small_segments(one * 2);
    {
        let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        for _ in 0..7 {
            log.append(Batch::new(&["v"]).b()).unwrap();
        }
        assert_eq!(log.segment_base_offsets(), [0, 2, 4, 6]);
        assert_eq!(log.delete_records_before(3).unwrap(), 3);
        assert_eq!(log.segment_base_offsets(), [2, 4, 6]);
        // Lower offsets change nothing.
        assert_eq!(log.delete_records_before(1).unwrap(), 3);
    }
    let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    assert_eq!((log.start_offset(), log.end_offset()), (3, 7));
    assert!(matches!(
        log.read(2, 100),
        Err(LogError::OffsetOutOfRange { start: 3, end: 7 })
    ));
    assert_eq!(offsets_of(&log.read(3, 1 << 20).unwrap()), [3, 4, 5, 6]);

    // Up to the end: every segment goes, the end offset stays.
    assert_eq!(log.delete_records_before(7).unwrap(), 7);
    assert_eq!(log.segment_base_offsets(), [7]);
    assert_eq!(log.size_bytes(), 0);
    drop(log);
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    assert_eq!((log.start_offset(), log.end_offset()), (7, 7));
    assert_eq!(log.max_timestamp().unwrap(), None);
    assert_eq!(log.offset_for_time(0).unwrap(), None);
    assert_eq!(log.append(Batch::new(&["w"]).b()).unwrap().base_offset, 7);
}

#[test]
fn checkpoint_without_segments_keeps_the_offsets() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(LOG_START_OFFSET_FILE), "42\n").unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!((log.start_offset(), log.end_offset()), (42, 42));
    assert_eq!(log.append(Batch::new(&["a"]).b()).unwrap().base_offset, 42);
    assert_eq!(log_files(dir.path(), "log"), ["00000000000000000042.log"]);
}

#[test]
fn missing_or_damaged_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let one = Batch::new(&["0123456789"]).bytes().len() as u64;
    let config = LogConfig {
        segment_bytes: one * 20,
        index_interval_bytes: (one * 2) as u32,
        ..LogConfig::default()
    };
    let (before, indexes) = {
        let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        for i in 0..50 {
            log.append(Batch::timed(&[(i * 10, "0123456789")]).b())
                .unwrap();
        }
        let indexes: Vec<Vec<u8>> = log_files(dir.path(), "index")
            .iter()
            .chain(log_files(dir.path(), "timeindex").iter())
            .map(|n| fs::read(dir.path().join(n)).unwrap())
            .collect();
        (log.read(0, 1 << 20).unwrap(), indexes)
    };
    assert!(indexes.iter().all(|i| !i.is_empty()));
    let names = log_files(dir.path(), "index");
    fs::remove_file(dir.path().join(&names[0])).unwrap();
    fs::write(dir.path().join(&names[1]), [0xffu8; 21]).unwrap();
    fs::write(dir.path().join(&names[2]), b"").unwrap();
    let tnames = log_files(dir.path(), "timeindex");
    fs::write(dir.path().join(&tnames[0]), [0x11u8; 36]).unwrap();

    let log = PartitionLog::open(dir.path(), config).unwrap();
    let rebuilt: Vec<Vec<u8>> = log_files(dir.path(), "index")
        .iter()
        .chain(log_files(dir.path(), "timeindex").iter())
        .map(|n| fs::read(dir.path().join(n)).unwrap())
        .collect();
    assert_eq!(rebuilt, indexes);
    assert_eq!(log.read(0, 1 << 20).unwrap(), before);
    for offset in 0..50 {
        let got = log.read(offset, 1).unwrap();
        assert_eq!(offsets_of(&got), [offset]);
        assert_eq!(
            log.offset_for_time(offset * 10 - 5).unwrap(),
            Some((offset, offset * 10))
        );
    }
}

#[test]
fn corrupt_older_segment_drops_what_follows() {
    let dir = tempfile::tempdir().unwrap();
    let one = Batch::new(&["v"]).bytes().len() as u64;
    let config = small_segments(one * 2);
    {
        let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        for _ in 0..6 {
            log.append(Batch::new(&["v"]).b()).unwrap();
        }
        assert_eq!(log.segment_base_offsets(), [0, 2, 4]);
    }
    // Cut the middle segment's second batch short.
    let middle = dir.path().join("00000000000000000002.log");
    OpenOptions::new()
        .write(true)
        .open(&middle)
        .unwrap()
        .set_len(one + 10)
        .unwrap();
    let mut log = PartitionLog::open(dir.path(), config).unwrap();
    assert_eq!(log.segment_base_offsets(), [0, 2]);
    assert_eq!(log.end_offset(), 3);
    assert!(!dir.path().join("00000000000000000004.log").exists());
    assert_eq!(log.append(Batch::new(&["w"]).b()).unwrap().base_offset, 3);
    assert_eq!(offsets_of(&log.read(0, 1 << 20).unwrap()), [0, 1, 2, 3]);
}

#[test]
fn every_read_offset_finds_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 2_000,
        index_interval_bytes: 300,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
    let mut expected_base = Vec::new();
    let mut next = 0i64;
    for i in 0..120usize {
        let n = 1 + i % 4;
        let values: Vec<String> = (0..n).map(|j| format!("{i}-{j}")).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let got = log.append(Batch::new(&refs).b()).unwrap();
        assert_eq!(got.base_offset, next);
        for _ in 0..n {
            expected_base.push(next);
        }
        next += n as i64;
    }
    assert!(log.segment_count() > 5);
    let check = |log: &PartitionLog| {
        for (offset, base) in expected_base.iter().enumerate() {
            let got = log.read(offset as i64, 0).unwrap();
            let headers = headers_of(&got);
            assert_eq!(headers.len(), 1);
            assert_eq!(headers[0].1.base_offset, *base, "offset {offset}");
        }
    };
    check(&log);
    drop(log);
    let log = PartitionLog::open(dir.path(), config).unwrap();
    check(&log);
}

#[test]
fn flush_policies_append_and_flush() {
    for flush in [
        FlushPolicy::EveryBatch,
        FlushPolicy::Interval(std::time::Duration::from_millis(0)),
        FlushPolicy::Interval(std::time::Duration::from_secs(3600)),
        FlushPolicy::Os,
    ] {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            flush,
            ..small_segments(200)
        };
        let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        for _ in 0..5 {
            log.append(Batch::new(&["abc"]).b()).unwrap();
        }
        log.flush().unwrap();
        drop(log);
        let log = PartitionLog::open(dir.path(), config).unwrap();
        assert_eq!(log.end_offset(), 5, "{flush:?}");
    }
}

#[test]
fn topic_level_log_append_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    let got = log
        .append_with_log_append_time(Batch::timed(&[(5, "a"), (7, "b")]).b(), 9_000)
        .unwrap();
    assert_eq!(
        got,
        Appended {
            base_offset: 0,
            last_offset: 1,
            log_append_time_ms: 9_000,
            duplicate: false
        }
    );
    let stored = log.read(0, 1 << 20).unwrap();
    let (_, h) = headers_of(&stored)[0];
    assert!(h.log_append_time());
    assert_eq!(h.max_timestamp, 9_000);
    assert_eq!(log.offset_for_time(8).unwrap(), Some((0, 9_000)));
    // The CRC stays valid across a reopen.
    drop(log);
    let log = PartitionLog::open(dir.path(), LogConfig::default()).unwrap();
    assert_eq!(log.end_offset(), 2);
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the log should hold: every batch with its first offset, records and bytes size.
struct ModelBatch {
    base: i64,
    records: Vec<(i64, String)>,
    len: usize,
}

fn model_check(log: &PartitionLog, model: &[ModelBatch], start: i64, rng: &mut Rng) {
    let end = model
        .last()
        .map_or(start, |b| b.base + b.records.len() as i64);
    assert_eq!(log.end_offset(), end);
    assert_eq!(log.start_offset(), start);
    let live: Vec<&ModelBatch> = model
        .iter()
        .filter(|b| b.base + b.records.len() as i64 > start)
        .collect();
    for _ in 0..20 {
        if start == end {
            break;
        }
        let offset = start + rng.below((end - start) as u64) as i64;
        let max_bytes = rng.below(1_500) as usize;
        let first = live
            .iter()
            .position(|b| b.base + b.records.len() as i64 > offset)
            .unwrap();
        let limit = max_bytes.max(live[first].len);
        let mut total = 0;
        let mut want = Vec::new();
        for b in &live[first..] {
            if total + b.len > limit {
                break;
            }
            total += b.len;
            for (i, (ts, v)) in b.records.iter().enumerate() {
                want.push((b.base + i as i64, *ts, v.clone()));
            }
        }
        let got = log.read(offset, max_bytes).unwrap();
        assert_eq!(got.len(), total);
        assert_eq!(records_of(&got), want, "read({offset}, {max_bytes})");
    }
    let all: Vec<(i64, i64)> = live
        .iter()
        .flat_map(|b| {
            b.records
                .iter()
                .enumerate()
                .map(move |(i, (ts, _))| (b.base + i as i64, *ts))
        })
        .filter(|(o, _)| *o >= start)
        .collect();
    for _ in 0..10 {
        let ts = rng.below(3_000) as i64;
        let want = all.iter().find(|(_, t)| *t >= ts).copied();
        assert_eq!(log.offset_for_time(ts).unwrap(), want, "time {ts}");
    }
    let want_max = all
        .iter()
        .fold(None, |best: Option<(i64, i64)>, &(o, t)| match best {
            Some((_, bt)) if bt >= t => best,
            _ => Some((o, t)),
        });
    assert_eq!(log.max_timestamp().unwrap(), want_max);
}

#[test]
fn randomized_against_a_model() {
    for seed in 1..=12u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 300 + rng.below(3_000),
            index_interval_bytes: rng.below(600) as u32,
            ..LogConfig::default()
        };
        let mut log = PartitionLog::open(dir.path(), config.clone()).unwrap();
        let mut model: Vec<ModelBatch> = Vec::new();
        let mut start = 0i64;
        let mut clock = 0i64;
        for step in 0..150 {
            match rng.below(20) {
                0 => {
                    drop(log);
                    log = PartitionLog::open(dir.path(), config.clone()).unwrap();
                }
                1 => {
                    // Tear the last batch (if it is in the active segment) and reopen.
                    drop(log);
                    let path = active_log_path(dir.path());
                    let len = fs::metadata(&path).unwrap().len();
                    if let Some(last) = model.last()
                        && len >= last.len as u64
                        && last.base + last.records.len() as i64 > start
                    {
                        let cut = 1 + rng.below(last.len as u64 - 1);
                        OpenOptions::new()
                            .write(true)
                            .open(&path)
                            .unwrap()
                            .set_len(len - cut)
                            .unwrap();
                        model.pop();
                    }
                    log = PartitionLog::open(dir.path(), config.clone()).unwrap();
                    let end = model
                        .last()
                        .map_or(start, |b| b.base + b.records.len() as i64);
                    start = start.min(end);
                }
                2 if log.end_offset() > start => {
                    let to = start + rng.below((log.end_offset() - start) as u64 + 1) as i64;
                    assert_eq!(log.delete_records_before(to).unwrap(), to.max(start));
                    start = to.max(start);
                }
                _ => {
                    let n = 1 + rng.below(5) as usize;
                    let records: Vec<(i64, String)> = (0..n)
                        .map(|i| {
                            clock += rng.below(30) as i64;
                            let ts = clock - rng.below(40) as i64;
                            (
                                ts,
                                format!("{step}-{i}-{}", "z".repeat(rng.below(120) as usize)),
                            )
                        })
                        .collect();
                    let refs: Vec<(i64, &str)> =
                        records.iter().map(|(t, v)| (*t, v.as_str())).collect();
                    let bytes = Batch::timed(&refs).b();
                    let base = log.end_offset();
                    let got = log.append(bytes.clone()).unwrap();
                    assert_eq!(got.base_offset, base);
                    assert_eq!(got.last_offset, base + n as i64 - 1);
                    model.push(ModelBatch {
                        base,
                        records,
                        len: bytes.len(),
                    });
                }
            }
            model_check(&log, &model, start, &mut rng);
        }
    }
}

#[test]
fn acknowledged_appends_need_no_shutdown() {
    // Like a killed process: no flush, no destructor; the data went out with pwrite.
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_segments(150)).unwrap();
    for i in 0..6 {
        let v = format!("{i}");
        log.append(Batch::new(&[&v]).producer(9, 0, i).b()).unwrap();
    }
    std::mem::forget(log);
    let mut log = PartitionLog::open(dir.path(), small_segments(150)).unwrap();
    assert_eq!(log.end_offset(), 6);
    assert_eq!(
        values_of(&log.read(0, 1 << 20).unwrap()),
        ["0", "1", "2", "3", "4", "5"]
    );
    assert!(
        log.append(Batch::new(&["5"]).producer(9, 0, 5).b())
            .unwrap()
            .duplicate
    );
}
