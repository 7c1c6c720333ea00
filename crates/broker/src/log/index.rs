//! Sparse offset and time indexes of one segment.
//!
//! Both are kept fully in memory (they are small: one entry per `index_interval_bytes` of
//! log) and mirrored to an append-only file of fixed-size big-endian entries:
//!
//! * `.index`: relative offset `u32` + file position `u32`. The relative offset is the
//!   *last* offset of the batch starting at that position, as in Kafka.
//! * `.timeindex`: timestamp `i64` + relative offset `u32`: the largest timestamp seen in the
//!   segment so far and the last offset of the batch that carried it. Entries only ever grow
//!   in timestamp.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// One fixed-size index entry.
pub(crate) trait Entry: Copy + PartialEq {
    const SIZE: usize;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(b: &[u8]) -> Self;
}

/// `.index` entry: last offset of a batch (relative to the segment base) and its position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub rel_offset: u32,
    pub position: u32,
}

impl Entry for OffsetEntry {
    const SIZE: usize = 8;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.rel_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        OffsetEntry {
            rel_offset: u32::from_be_bytes(b[0..4].try_into().expect("4 bytes")),
            position: u32::from_be_bytes(b[4..8].try_into().expect("4 bytes")),
        }
    }
}

/// `.timeindex` entry: max timestamp so far and the relative last offset of its batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp: i64,
    pub rel_offset: u32,
}

impl Entry for TimeEntry {
    const SIZE: usize = 12;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.rel_offset.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        TimeEntry {
            timestamp: i64::from_be_bytes(b[0..8].try_into().expect("8 bytes")),
            rel_offset: u32::from_be_bytes(b[8..12].try_into().expect("4 bytes")),
        }
    }
}

/// An index file and its entries in memory. Once the segment is no longer the active one
/// the file is closed ([`IndexFile::close`]); lookups only need the entries.
pub(crate) struct IndexFile<E: Entry> {
    file: Option<File>,
    entries: Vec<E>,
}

impl<E: Entry> IndexFile<E> {
    /// Opens (creating if missing) the index file at `path` and loads its whole entries; a
    /// trailing partial entry is ignored. Whether the entries are right is for the caller
    /// to decide (see [`IndexFile::replace`]).
    pub fn open(path: &Path) -> io::Result<IndexFile<E>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let len = file.metadata()?.len() as usize;
        let mut buf = vec![0u8; len - len % E::SIZE];
        file.read_exact_at(&mut buf, 0)?;
        let entries = buf.chunks_exact(E::SIZE).map(E::decode).collect();
        Ok(IndexFile {
            file: Some(file),
            entries,
        })
    }

    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    fn file(&self) -> io::Result<&File> {
        self.file
            .as_ref()
            .ok_or_else(|| io::Error::other("index file already closed"))
    }

    /// Appends one entry to memory and file.
    pub fn push(&mut self, entry: E) -> io::Result<()> {
        let mut buf = Vec::with_capacity(E::SIZE);
        entry.encode(&mut buf);
        self.file()?
            .write_all_at(&buf, (self.entries.len() * E::SIZE) as u64)?;
        self.entries.push(entry);
        Ok(())
    }

    /// Makes the file hold exactly `entries`, rewriting it only if it differs. Returns
    /// whether it had to be rewritten.
    pub fn replace(&mut self, entries: Vec<E>) -> io::Result<bool> {
        let file = self.file()?;
        let file_len = file.metadata()?.len();
        let expected_len = (entries.len() * E::SIZE) as u64;
        if self.entries == entries && file_len == expected_len {
            return Ok(false);
        }
        let mut buf = Vec::with_capacity(entries.len() * E::SIZE);
        for e in &entries {
            e.encode(&mut buf);
        }
        file.set_len(0)?;
        file.write_all_at(&buf, 0)?;
        self.entries = entries;
        Ok(true)
    }

    /// Fsyncs the file (nothing to do once closed: closing syncs).
    pub fn sync(&self) -> io::Result<()> {
        match &self.file {
            Some(file) => file.sync_data(),
            None => Ok(()),
        }
    }

    /// Fsyncs and closes the file, keeping the entries.
    pub fn close(&mut self) -> io::Result<()> {
        self.sync()?;
        self.file = None;
        Ok(())
    }
}

impl IndexFile<OffsetEntry> {
    /// Position of the last indexed batch whose last offset is `<= rel_offset` (0 if none):
    /// the place to start scanning forward for the batch containing `rel_offset`.
    pub fn lookup(&self, rel_offset: u32) -> u32 {
        let idx = self.entries.partition_point(|e| e.rel_offset <= rel_offset);
        if idx == 0 {
            0
        } else {
            self.entries[idx - 1].position
        }
    }
}

impl IndexFile<TimeEntry> {
    /// The last entry with a timestamp strictly below `timestamp`: every record up to its
    /// offset is earlier than `timestamp`.
    pub fn lookup_before(&self, timestamp: i64) -> Option<TimeEntry> {
        let idx = self.entries.partition_point(|e| e.timestamp < timestamp);
        if idx == 0 {
            None
        } else {
            Some(self.entries[idx - 1])
        }
    }
}
