//! What every connection shares: the topics and their partition logs, the cluster identity,
//! producer ids and the group coordinator.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use uuid::Uuid;

use crate::auth::{Authorizer, Security};
use crate::groups::GroupCoordinator;
use crate::log::{LogConfig, LogError, PartitionLog};
use crate::topics::{self, MetaFile, TopicMeta};

/// One partition: its log and a signal that its end offset moved (wakes long-poll fetches).
pub struct Partition {
    pub index: i32,
    pub log: Mutex<PartitionLog>,
    pub appended: watch::Sender<i64>,
}

impl Partition {
    pub fn open(index: i32, dir: PathBuf, config: LogConfig) -> Result<Partition, LogError> {
        let log = PartitionLog::open(&dir, config)?;
        let end = log.end_offset();
        Ok(Partition {
            index,
            log: Mutex::new(log),
            appended: watch::channel(end).0,
        })
    }

    /// The log, even if a thread panicked while holding it.
    pub fn log(&self) -> std::sync::MutexGuard<'_, PartitionLog> {
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A topic; replaced as a whole (copy on write) when its configs or partitions change.
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub configs: BTreeMap<String, String>,
    pub partitions: Vec<Arc<Partition>>,
}

impl Topic {
    pub fn meta(&self) -> TopicMeta {
        TopicMeta {
            name: self.name.clone(),
            id: self.id,
            partitions: self.partitions.len() as i32,
            configs: self.configs.clone(),
        }
    }

    pub fn partition(&self, index: i32) -> Option<&Arc<Partition>> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
    }
}

pub const NODE_ID: i32 = 0;

pub struct State {
    pub data_dir: PathBuf,
    pub cluster_id: String,
    pub host: String,
    pub port: i32,
    pub defaults: LogConfig,
    pub default_partitions: i32,
    pub max_frame_bytes: usize,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    /// Serialises topic changes and metadata-file writes.
    pub admin: Mutex<()>,
    producer_ids: Mutex<(i64, i64)>,
    pub groups: Arc<GroupCoordinator>,
    pub shutdown: watch::Receiver<bool>,
    pub storage_errors: StorageErrors,
    /// Credentials and ACLs; `None` on an open broker.
    pub auth: Option<Arc<Authorizer>>,
}

/// Reports failed writes to the data directory (a full disk, a file-size limit, an I/O
/// error) at ERROR: the first at once, then at most one line every 10 s that says how many
/// were not logged in between, so a full disk under load is named without flooding the log.
#[derive(Default)]
pub struct StorageErrors {
    last: Mutex<Option<(Instant, u64)>>,
}

impl StorageErrors {
    const EVERY: Duration = Duration::from_secs(10);

    pub fn report(&self, topic: &str, partition: i32, error: &dyn std::fmt::Display) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let not_logged = match *last {
            Some((at, not_logged)) if now.duration_since(at) < Self::EVERY => {
                *last = Some((at, not_logged + 1));
                return;
            }
            Some((_, not_logged)) => not_logged,
            None => 0,
        };
        *last = Some((now, 0));
        tracing::error!(
            topic,
            partition,
            error = %error,
            not_logged,
            "cannot write to the data directory: producers get KAFKA_STORAGE_ERROR until it can"
        );
    }
}

/// Producer ids are reserved in blocks: the metadata file stores the end of the block.
const PRODUCER_ID_BLOCK: i64 = 1000;

pub struct StateConfig {
    pub data_dir: PathBuf,
    pub host: String,
    pub port: i32,
    pub defaults: LogConfig,
    pub default_partitions: i32,
    pub max_frame_bytes: usize,
    pub cluster_id: Option<String>,
    pub shutdown: watch::Receiver<bool>,
    pub security: Security,
}

impl State {
    pub fn open(config: StateConfig) -> Result<State, String> {
        let dir = &config.data_dir;
        let meta = MetaFile::load(dir).map_err(|e| format!("reading broker metadata: {e}"))?;
        let meta = meta.unwrap_or_else(|| MetaFile {
            cluster_id: config.cluster_id.clone().unwrap_or_else(new_cluster_id),
            next_producer_id: 0,
            topics: Vec::new(),
        });
        if let Some(wanted) = &config.cluster_id
            && *wanted != meta.cluster_id
        {
            return Err(format!(
                "{} belongs to cluster {:?}, not {wanted:?}",
                dir.display(),
                meta.cluster_id
            ));
        }
        let mut topics = HashMap::new();
        for t in &meta.topics {
            let log_config = topics::log_config(&t.configs, &config.defaults);
            let mut partitions = Vec::new();
            for p in 0..t.partitions {
                let path = topics::partition_dir(dir, &t.name, p);
                let partition = Partition::open(p, path.clone(), log_config.clone())
                    .map_err(|e| format!("opening log {}: {e}", path.display()))?;
                partitions.push(Arc::new(partition));
            }
            topics.insert(
                t.name.clone(),
                Arc::new(Topic {
                    name: t.name.clone(),
                    id: t.id,
                    configs: t.configs.clone(),
                    partitions,
                }),
            );
        }
        remove_deleted_dirs(dir);
        let groups = GroupCoordinator::open(&dir.join("__groups"))
            .map_err(|e| format!("opening group coordinator: {e}"))?;
        let auth = match &config.security {
            Security::Open => {
                if crate::auth::security_file_exists(dir) {
                    tracing::warn!(
                        "the data directory holds credentials and ACLs, but this broker is open: they are not enforced"
                    );
                }
                None
            }
            Security::Sasl(sasl) => Some(Arc::new(Authorizer::open(dir, sasl)?)),
        };
        let first_id = meta.next_producer_id;
        let state = State {
            data_dir: config.data_dir,
            cluster_id: meta.cluster_id,
            host: config.host,
            port: config.port,
            defaults: config.defaults,
            default_partitions: config.default_partitions,
            max_frame_bytes: config.max_frame_bytes,
            topics: RwLock::new(topics),
            admin: Mutex::new(()),
            producer_ids: Mutex::new((first_id, first_id)),
            groups,
            shutdown: config.shutdown,
            storage_errors: StorageErrors::default(),
            auth,
        };
        state
            .persist()
            .map_err(|e| format!("writing broker metadata: {e}"))?;
        Ok(state)
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    pub fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .find(|t| t.id == id)
            .cloned()
    }

    /// Every topic, by name.
    pub fn all_topics(&self) -> Vec<Arc<Topic>> {
        let mut all: Vec<_> = self
            .topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Adds or replaces a topic (call with `admin` held, then [`State::persist`]).
    pub fn put_topic(&self, topic: Topic) {
        self.topics
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(topic.name.clone(), Arc::new(topic));
    }

    pub fn remove_topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name)
    }

    /// Writes the metadata file from the current topics.
    pub fn persist(&self) -> std::io::Result<()> {
        let next_producer_id = self
            .producer_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .1;
        MetaFile {
            cluster_id: self.cluster_id.clone(),
            next_producer_id,
            topics: self.all_topics().iter().map(|t| t.meta()).collect(),
        }
        .store(&self.data_dir)
    }

    /// A producer id never handed out before, on this data dir.
    pub fn next_producer_id(&self) -> std::io::Result<i64> {
        let _admin = self.admin.lock().unwrap_or_else(|p| p.into_inner());
        let mut ids = self.producer_ids.lock().unwrap_or_else(|p| p.into_inner());
        if ids.0 >= ids.1 {
            ids.1 = ids.0 + PRODUCER_ID_BLOCK;
            let block_end = ids.1;
            drop(ids);
            if let Err(e) = self.persist() {
                let mut ids = self.producer_ids.lock().unwrap_or_else(|p| p.into_inner());
                ids.1 = ids.0;
                return Err(e);
            }
            ids = self.producer_ids.lock().unwrap_or_else(|p| p.into_inner());
            debug_assert_eq!(ids.1, block_end);
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }
}

/// Partition directories of deleted topics are renamed `<topic>-<partition>.<tag>-delete`
/// before removal; a stop in between leaves them behind, removed here (in the background).
fn remove_deleted_dirs(dir: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let doomed: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with("-delete"))
        })
        .collect();
    if doomed.is_empty() {
        return;
    }
    std::thread::spawn(move || {
        for p in doomed {
            if let Err(e) = std::fs::remove_dir_all(&p) {
                tracing::warn!(dir = %p.display(), error = %e, "cannot remove a deleted partition's directory");
            }
        }
    });
}

/// Kafka's cluster id form: 16 random bytes, URL-safe base64 without padding (22 chars).
fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = Uuid::new_v4().into_bytes();
    let mut bits: u128 = u128::from_be_bytes(bytes);
    let mut out = String::with_capacity(22);
    // 22 characters carry 132 bits: the first one carries the top 2 bits only.
    let mut chars = Vec::with_capacity(22);
    for _ in 0..22 {
        chars.push(ALPHABET[(bits & 63) as usize] as char);
        bits >>= 6;
    }
    chars.reverse();
    out.extend(chars);
    out
}
