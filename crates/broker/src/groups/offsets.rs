//! Committed offsets and group metadata, kept in memory and in an append-only log of JSON
//! lines. As Kafka keeps them in `__consumer_offsets`, a group's members, generation and
//! assignments are stored whenever a rebalance completes or the group empties, so that
//! members keep their assignment across a restart.
//!
//! Every change is appended with one `write` before it takes effect in memory, so it
//! survives the process being killed. On open the log is replayed (a torn last line is
//! skipped) and rewritten compactly; it is compacted again when it grows well beyond the
//! number of live offsets.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const LOG_FILE: &str = "offsets.log";
const COMPACT_FILE: &str = "offsets.log.compact";
/// The log is rewritten once it holds this many records more than there are live offsets...
const COMPACT_MIN_RECORDS: usize = 10_000;
/// ...and more than this many times the live offsets.
const COMPACT_FACTOR: usize = 4;

/// One committed offset of a partition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// A group as stored when its rebalance completed (or it emptied).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GroupSnapshot {
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    pub members: Vec<MemberSnapshot>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MemberSnapshot {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: u64,
    pub rebalance_timeout_ms: u64,
    pub protocol_type: String,
    /// Protocol names with their metadata in hex.
    pub protocols: Vec<(String, String)>,
    /// The assignment in hex.
    pub assignment: String,
}

pub(crate) fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Record {
    Group {
        group: String,
        #[serde(flatten)]
        snapshot: GroupSnapshot,
    },
    Commit {
        group: String,
        topic: String,
        partition: i32,
        offset: i64,
        leader_epoch: i32,
        metadata: Option<String>,
    },
    DeleteGroup {
        group: String,
    },
    DeleteOffset {
        group: String,
        topic: String,
        partition: i32,
    },
    ForgetTopic {
        topic: String,
    },
}

type GroupOffsets = BTreeMap<(String, i32), CommittedOffset>;

#[derive(Default)]
struct Stored {
    offsets: HashMap<String, GroupOffsets>,
    snapshots: HashMap<String, GroupSnapshot>,
}

pub(crate) struct OffsetStore {
    dir: PathBuf,
    file: File,
    groups: HashMap<String, GroupOffsets>,
    snapshots: HashMap<String, GroupSnapshot>,
    records: usize,
}

impl OffsetStore {
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(LOG_FILE);
        let mut stored = Stored::default();
        match File::open(&path) {
            Ok(f) => {
                for (n, line) in BufReader::new(f).split(b'\n').enumerate() {
                    let line = line?;
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    match serde_json::from_slice::<Record>(&line) {
                        Ok(record) => stored.apply(record),
                        Err(e) => {
                            tracing::warn!(line = n + 1, error = %e, "skipping unreadable offset record")
                        }
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let file = write_compacted(dir, &stored.offsets, &stored.snapshots)?;
        let mut store = OffsetStore {
            dir: dir.to_path_buf(),
            file,
            groups: stored.offsets,
            snapshots: stored.snapshots,
            records: 0,
        };
        store.records = store.live();
        Ok(store)
    }

    fn live(&self) -> usize {
        self.groups.values().map(BTreeMap::len).sum::<usize>() + self.snapshots.len()
    }

    fn apply(&mut self, record: Record) {
        let mut stored = Stored {
            offsets: std::mem::take(&mut self.groups),
            snapshots: std::mem::take(&mut self.snapshots),
        };
        stored.apply(record);
        self.groups = stored.offsets;
        self.snapshots = stored.snapshots;
    }

    /// Stores a group's members, generation and assignments (no members: an empty group).
    pub fn store_group(&mut self, group: &str, snapshot: GroupSnapshot) -> io::Result<()> {
        if self.snapshots.get(group) == Some(&snapshot) {
            return Ok(());
        }
        let record = Record::Group {
            group: group.to_string(),
            snapshot,
        };
        self.record(vec![record])
    }

    /// The stored groups, by id.
    pub fn snapshots(&self) -> &HashMap<String, GroupSnapshot> {
        &self.snapshots
    }

    /// Writes `records` to the file, then applies them: what is applied was written.
    fn record(&mut self, records: Vec<Record>) -> io::Result<()> {
        self.append(&records)?;
        for r in records {
            self.apply(r);
        }
        self.maybe_compact();
        Ok(())
    }

    fn append(&mut self, records: &[Record]) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::new();
        for r in records {
            serde_json::to_writer(&mut buf, r).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        self.file.write_all(&buf)?;
        self.records += records.len();
        Ok(())
    }

    fn maybe_compact(&mut self) {
        let live = self.live();
        if self.records > live + COMPACT_MIN_RECORDS && self.records > live * COMPACT_FACTOR {
            match write_compacted(&self.dir, &self.groups, &self.snapshots) {
                Ok(file) => {
                    self.file = file;
                    self.records = live;
                }
                Err(e) => tracing::warn!(error = %e, "compacting the offset log failed"),
            }
        }
    }

    /// Stores offsets of one group; all are written or none is applied.
    pub fn commit(
        &mut self,
        group: &str,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> io::Result<()> {
        let records: Vec<Record> = offsets
            .iter()
            .map(|(topic, partition, c)| Record::Commit {
                group: group.to_string(),
                topic: topic.clone(),
                partition: *partition,
                offset: c.offset,
                leader_epoch: c.leader_epoch,
                metadata: c.metadata.clone(),
            })
            .collect();
        self.record(records)
    }

    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.groups.get(group)?.get(&(topic.to_string(), partition))
    }

    /// Every committed offset of a group, by topic then partition.
    pub fn group(&self, group: &str) -> Vec<(&str, i32, &CommittedOffset)> {
        self.groups
            .get(group)
            .map(|offsets| {
                offsets
                    .iter()
                    .map(|((t, p), c)| (t.as_str(), *p, c))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn has_group(&self, group: &str) -> bool {
        self.groups.get(group).is_some_and(|g| !g.is_empty())
    }

    pub fn group_ids(&self) -> Vec<String> {
        self.groups
            .iter()
            .filter(|(_, g)| !g.is_empty())
            .map(|(id, _)| id.clone())
            .collect()
    }

    pub fn delete_group(&mut self, group: &str) -> io::Result<()> {
        if !self.groups.contains_key(group) && !self.snapshots.contains_key(group) {
            return Ok(());
        }
        let record = Record::DeleteGroup {
            group: group.to_string(),
        };
        self.record(vec![record])
    }

    /// Removes some committed offsets of a group (those it has); all or none is applied.
    pub fn delete_offsets(&mut self, group: &str, partitions: &[(String, i32)]) -> io::Result<()> {
        let records: Vec<Record> = partitions
            .iter()
            .filter(|(t, p)| self.get(group, t, *p).is_some())
            .map(|(topic, partition)| Record::DeleteOffset {
                group: group.to_string(),
                topic: topic.clone(),
                partition: *partition,
            })
            .collect();
        self.record(records)
    }

    pub fn forget_topic(&mut self, topic: &str) -> io::Result<()> {
        let used = self
            .groups
            .values()
            .any(|g| g.keys().any(|(t, _)| t == topic));
        if !used {
            return Ok(());
        }
        let record = Record::ForgetTopic {
            topic: topic.to_string(),
        };
        self.record(vec![record])
    }
}

impl Stored {
    fn apply(&mut self, record: Record) {
        let groups = &mut self.offsets;
        match record {
            Record::Group { group, snapshot } => {
                self.snapshots.insert(group, snapshot);
            }
            Record::Commit {
                group,
                topic,
                partition,
                offset,
                leader_epoch,
                metadata,
            } => {
                groups.entry(group).or_default().insert(
                    (topic, partition),
                    CommittedOffset {
                        offset,
                        leader_epoch,
                        metadata,
                    },
                );
            }
            Record::DeleteGroup { group } => {
                groups.remove(&group);
                self.snapshots.remove(&group);
            }
            Record::DeleteOffset {
                group,
                topic,
                partition,
            } => {
                if let Some(offsets) = groups.get_mut(&group) {
                    offsets.remove(&(topic, partition));
                    if offsets.is_empty() {
                        groups.remove(&group);
                    }
                }
            }
            Record::ForgetTopic { topic } => {
                for offsets in groups.values_mut() {
                    offsets.retain(|(t, _), _| *t != topic);
                }
                groups.retain(|_, g| !g.is_empty());
            }
        }
    }
}

/// Writes the live offsets and group snapshots to a new file, syncs it, puts it in place of the log and returns
/// the log opened for appending.
fn write_compacted(
    dir: &Path,
    groups: &HashMap<String, GroupOffsets>,
    snapshots: &HashMap<String, GroupSnapshot>,
) -> io::Result<File> {
    let tmp = dir.join(COMPACT_FILE);
    {
        let mut out = io::BufWriter::new(File::create(&tmp)?);
        for (group, snapshot) in snapshots {
            let record = Record::Group {
                group: group.clone(),
                snapshot: snapshot.clone(),
            };
            serde_json::to_writer(&mut out, &record).map_err(io::Error::other)?;
            out.write_all(b"\n")?;
        }
        for (group, offsets) in groups {
            for ((topic, partition), c) in offsets {
                let record = Record::Commit {
                    group: group.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    offset: c.offset,
                    leader_epoch: c.leader_epoch,
                    metadata: c.metadata.clone(),
                };
                serde_json::to_writer(&mut out, &record).map_err(io::Error::other)?;
                out.write_all(b"\n")?;
            }
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
    }
    let path = dir.join(LOG_FILE);
    std::fs::rename(&tmp, &path)?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    OpenOptions::new().append(true).open(&path)
}
