//! Topic administration: CreateTopics, DeleteTopics, CreatePartitions.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::*;
use uuid::Uuid;

use super::{s, topic_name};
use crate::Shared;
use crate::state::{NODE_ID, Partition, State, Topic};
use crate::topics;

type Refusal = (ResponseError, String);

fn refuse<T>(e: ResponseError, message: impl Into<String>) -> Result<T, Refusal> {
    Err((e, message.into()))
}

/// Config sources of DescribeConfigs / CreateTopics v5+.
pub const SOURCE_TOPIC: i8 = 1;
pub const SOURCE_STATIC_BROKER: i8 = 4;
pub const SOURCE_DEFAULT: i8 = 5;

pub async fn create_topics(
    state: &Shared,
    req: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    one_admin_change(state, move |st| create_topics_blocking(st, req, version)).await
}

fn create_topics_blocking(
    state: &State,
    req: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let duplicates = named_twice(req.topics.iter().map(|t| t.name.as_str()));
    let mut results = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let name = topic.name.to_string();
        let outcome = if duplicates.contains(&name) {
            named_twice_error(&name)
        } else {
            create_one(state, topic, req.validate_only)
        };
        let base = CreatableTopicResult::default().with_name(topic_name(&name));
        results.push(match outcome {
            Ok(created) => {
                let mut r = base
                    .with_error_message(None)
                    .with_num_partitions(created.partitions)
                    .with_replication_factor(1);
                if version >= 5 {
                    r = r.with_configs(Some(describe_for_create(state, &created.configs)));
                }
                if version >= 7 {
                    r = r.with_topic_id(created.id);
                }
                r
            }
            Err((e, message)) => base
                .with_error_code(e.code())
                .with_error_message(Some(s(message)))
                .with_configs(None),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

fn describe_for_create(
    state: &State,
    configs: &BTreeMap<String, String>,
) -> Vec<CreatableTopicConfigs> {
    topics::TOPIC_CONFIGS
        .iter()
        .map(|&name| {
            let (value, source) = match configs.get(name) {
                Some(v) => (Some(v.clone()), SOURCE_TOPIC),
                None => (topics::default_value(name, &state.defaults), SOURCE_DEFAULT),
            };
            CreatableTopicConfigs::default()
                .with_name(s(name))
                .with_value(value.map(s))
                .with_config_source(source)
        })
        .collect()
}

struct Created {
    id: Uuid,
    partitions: i32,
    configs: BTreeMap<String, String>,
}

fn check_new_name(state: &State, name: &str) -> Result<(), Refusal> {
    if let Err(why) = topics::validate_name(name) {
        return refuse(ResponseError::InvalidTopicException, why);
    }
    if state.topic(name).is_some() {
        return refuse(
            ResponseError::TopicAlreadyExists,
            format!("topic {name} already exists"),
        );
    }
    let key = topics::collision_key(name);
    if let Some(other) = state
        .all_topics()
        .into_iter()
        .find(|t| topics::collision_key(&t.name) == key)
    {
        return refuse(
            ResponseError::InvalidTopicException,
            format!(
                "topic {name} collides with existing topic {} ('.' and '_' are alike in metric names)",
                other.name
            ),
        );
    }
    Ok(())
}

fn create_one(
    state: &State,
    topic: CreatableTopic,
    validate_only: bool,
) -> Result<Created, Refusal> {
    let name = topic.name.to_string();
    check_new_name(state, &name)?;
    let partitions = if topic.assignments.is_empty() {
        match topic.num_partitions {
            -1 => state.default_partitions,
            n if n <= 0 => {
                return refuse(
                    ResponseError::InvalidPartitions,
                    format!("number of partitions must be larger than 0, got {n}"),
                );
            }
            n => n,
        }
    } else {
        if topic.num_partitions != -1 || topic.replication_factor != -1 {
            return refuse(
                ResponseError::InvalidRequest,
                "both partitions/replication factor and a replica assignment were given",
            );
        }
        for (i, a) in topic.assignments.iter().enumerate() {
            if a.partition_index != i as i32
                || !(a.broker_ids.len() == 1 && a.broker_ids[0] == NODE_ID)
            {
                return refuse(
                    ResponseError::InvalidReplicaAssignment,
                    "every partition must be assigned to broker 0 alone, in partition order",
                );
            }
        }
        topic.assignments.len() as i32
    };
    if !matches!(topic.replication_factor, -1 | 1) {
        return refuse(
            ResponseError::InvalidReplicationFactor,
            format!(
                "replication factor {} is larger than the number of brokers (1)",
                topic.replication_factor
            ),
        );
    }
    let mut configs = BTreeMap::new();
    for c in topic.configs {
        let Some(value) = c.value else {
            return refuse(
                ResponseError::InvalidConfig,
                format!("null value for config {}", c.name),
            );
        };
        let value = topics::validate_config(&c.name, &value)
            .or_else(|why| refuse(ResponseError::InvalidConfig, why))?;
        configs.insert(c.name.to_string(), value);
    }
    let id = Uuid::new_v4();
    if validate_only {
        return Ok(Created {
            id,
            partitions,
            configs,
        });
    }
    let log_config = topics::log_config(&configs, &state.defaults);
    let mut opened = Vec::with_capacity(partitions as usize);
    for p in 0..partitions {
        let dir = topics::partition_dir(&state.data_dir, &name, p);
        match fresh_partition(state, &name, p, log_config.clone()) {
            Ok(partition) => opened.push(Arc::new(partition)),
            Err(e) => {
                drop(opened);
                remove_partition_dirs(state, &name, p + 1);
                tracing::warn!(topic = %name, error = %e, "cannot create topic's log");
                return refuse(
                    ResponseError::KafkaStorageError,
                    format!("cannot create {}: {e}", dir.display()),
                );
            }
        }
    }
    state.put_topic(Topic {
        name: name.clone(),
        id,
        configs: configs.clone(),
        partitions: opened,
    });
    if let Err(e) = state.persist() {
        state.remove_topic(&name);
        remove_partition_dirs(state, &name, partitions);
        return refuse(
            ResponseError::KafkaStorageError,
            format!("cannot store the topic: {e}"),
        );
    }
    tracing::info!(topic = %name, partitions, "topic created");
    Ok(Created {
        id,
        partitions,
        configs,
    })
}

/// A new, empty partition. A directory already there is a leftover (a stop between creating
/// it and storing the topic): it is removed first, so that no old records reappear.
fn fresh_partition(
    state: &State,
    name: &str,
    p: i32,
    config: crate::log::LogConfig,
) -> Result<Partition, crate::log::LogError> {
    let dir = topics::partition_dir(&state.data_dir, name, p);
    if dir.exists() {
        tracing::warn!(dir = %dir.display(), "removing a leftover partition directory");
        std::fs::remove_dir_all(&dir)?;
    }
    Partition::open(p, dir, config)
}

/// Renames each partition directory out of the way, then removes it.
fn remove_partition_dirs(state: &State, name: &str, partitions: i32) {
    let tag = Uuid::new_v4().simple();
    for p in 0..partitions {
        let dir = topics::partition_dir(&state.data_dir, name, p);
        let doomed = state.data_dir.join(format!("{name}-{p}.{tag}-delete"));
        let target = match std::fs::rename(&dir, &doomed) {
            Ok(()) => doomed,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(_) => dir,
        };
        if let Err(e) = std::fs::remove_dir_all(&target) {
            tracing::warn!(dir = %target.display(), error = %e, "cannot remove a deleted partition's directory");
        }
    }
}

pub async fn delete_topics(
    state: &Shared,
    req: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    one_admin_change(state, move |st| delete_topics_blocking(st, req, version)).await
}

fn delete_topics_blocking(
    state: &State,
    req: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    let wanted: Vec<(Option<String>, Uuid)> = if version >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n.to_string()), Uuid::nil()))
            .collect()
    };
    let mut results = Vec::with_capacity(wanted.len());
    let mut removed = Vec::new();
    for (name, id) in wanted {
        let found = match &name {
            Some(n) => state.topic(n),
            None => state.topic_by_id(id),
        };
        let base = DeletableTopicResult::default()
            .with_name(name.as_deref().map(topic_name))
            .with_topic_id(id);
        let Some(topic) = found else {
            let e = if name.is_none() {
                ResponseError::UnknownTopicId
            } else {
                ResponseError::UnknownTopicOrPartition
            };
            results.push(base.with_error_code(e.code()));
            continue;
        };
        state.remove_topic(&topic.name);
        results.push(
            base.with_name(Some(topic_name(&topic.name)))
                .with_topic_id(if version >= 6 { topic.id } else { Uuid::nil() }),
        );
        removed.push(topic);
    }
    if !removed.is_empty()
        && let Err(e) = state.persist()
    {
        {
            // Put them back: nothing is deleted unless the metadata says so.
            for t in &removed {
                state.put_topic(Topic {
                    name: t.name.clone(),
                    id: t.id,
                    configs: t.configs.clone(),
                    partitions: t.partitions.clone(),
                });
            }
            let removed_names: HashSet<&str> = removed.iter().map(|t| t.name.as_str()).collect();
            for r in &mut results {
                if r.name
                    .as_ref()
                    .is_some_and(|n| removed_names.contains(n.as_str()))
                {
                    r.error_code = ResponseError::KafkaStorageError.code();
                    r.error_message = Some(s(format!("cannot store the deletion: {e}")));
                }
            }
            return DeleteTopicsResponse::default().with_responses(results);
        }
    }
    for topic in removed {
        state.groups.forget_topic(&topic.name);
        // Wake long polls on the topic: they answer UNKNOWN_TOPIC_OR_PARTITION.
        for p in &topic.partitions {
            let end = *p.appended.borrow();
            p.appended.send_replace(end);
        }
        remove_partition_dirs(state, &topic.name, topic.partitions.len() as i32);
        tracing::info!(topic = %topic.name, "topic deleted");
    }
    DeleteTopicsResponse::default().with_responses(results)
}

pub async fn create_partitions(
    state: &Shared,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    one_admin_change(state, move |st| create_partitions_blocking(st, req)).await
}

fn create_partitions_blocking(
    state: &State,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let duplicates = named_twice(req.topics.iter().map(|t| t.name.as_str()));
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.to_string();
        let outcome = if duplicates.contains(&name) {
            named_twice_error(&name)
        } else {
            add_partitions(state, &name, t.count, t.assignments, req.validate_only)
        };
        let base = CreatePartitionsTopicResult::default().with_name(t.name);
        results.push(match outcome {
            Ok(()) => base,
            Err((e, message)) => base
                .with_error_code(e.code())
                .with_error_message(Some(s(message))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}

fn add_partitions(
    state: &State,
    name: &str,
    count: i32,
    assignments: Option<Vec<create_partitions_request::CreatePartitionsAssignment>>,
    validate_only: bool,
) -> Result<(), Refusal> {
    let Some(topic) = state.topic(name) else {
        return refuse(
            ResponseError::UnknownTopicOrPartition,
            format!("topic {name} does not exist"),
        );
    };
    let current = topic.partitions.len() as i32;
    if count <= current {
        return refuse(
            ResponseError::InvalidPartitions,
            format!(
                "topic {name} has {current} partitions, which is not fewer than the requested {count}"
            ),
        );
    }
    if let Some(a) = &assignments
        && (a.len() as i32 != count - current
            || a.iter()
                .any(|a| !(a.broker_ids.len() == 1 && a.broker_ids[0] == NODE_ID)))
    {
        return refuse(
            ResponseError::InvalidReplicaAssignment,
            "each new partition must be assigned to broker 0 alone",
        );
    }
    if validate_only {
        return Ok(());
    }
    let log_config = topics::log_config(&topic.configs, &state.defaults);
    let mut partitions = topic.partitions.clone();
    for p in current..count {
        let dir = topics::partition_dir(&state.data_dir, name, p);
        let partition = fresh_partition(state, name, p, log_config.clone()).or_else(|e| {
            refuse(
                ResponseError::KafkaStorageError,
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
        partitions.push(Arc::new(partition));
    }
    state.put_topic(Topic {
        name: topic.name.clone(),
        id: topic.id,
        configs: topic.configs.clone(),
        partitions,
    });
    if let Err(e) = state.persist() {
        state.put_topic(Topic {
            name: topic.name.clone(),
            id: topic.id,
            configs: topic.configs.clone(),
            partitions: topic.partitions.clone(),
        });
        return refuse(
            ResponseError::KafkaStorageError,
            format!("cannot store the new partitions: {e}"),
        );
    }
    tracing::info!(topic = %name, partitions = count, "partitions added");
    Ok(())
}

/// Runs a request that changes topics or their metadata file off the async threads, one
/// such request at a time; a panic in it answers the request's default (an empty answer).
pub(super) async fn one_admin_change<R: Default + Send + 'static>(
    state: &Shared,
    change: impl FnOnce(&State) -> R + Send + 'static,
) -> R {
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
        let _admin = st.admin.lock().unwrap_or_else(|p| p.into_inner());
        change(&st)
    })
    .await
    .unwrap_or_default()
}

/// The topic names that a request names more than once: Kafka refuses each of them.
fn named_twice<'a>(names: impl Iterator<Item = &'a str>) -> HashSet<String> {
    let mut seen = HashSet::new();
    names
        .filter(|name| !seen.insert(*name))
        .map(str::to_owned)
        .collect()
}

fn named_twice_error<T>(name: &str) -> Result<T, Refusal> {
    refuse(
        ResponseError::InvalidRequest,
        format!("topic {name} is named more than once in the request"),
    )
}
