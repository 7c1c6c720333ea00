//! DescribeConfigs and IncrementalAlterConfigs for topics, and the broker's read-only
//! settings.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::*;

use super::admin::{SOURCE_DEFAULT, SOURCE_STATIC_BROKER, SOURCE_TOPIC};
use super::s;
use crate::Shared;
use crate::state::{NODE_ID, State, Topic};
use crate::topics;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

/// The broker's settings as Kafka names them (read-only here).
fn broker_configs(state: &State) -> Vec<(&'static str, String, i8)> {
    let d = &state.defaults;
    vec![
        ("broker.id", NODE_ID.to_string(), 3),
        ("node.id", NODE_ID.to_string(), 3),
        ("auto.create.topics.enable", "false".into(), 1),
        ("delete.topic.enable", "true".into(), 1),
        ("num.partitions", state.default_partitions.to_string(), 3),
        ("default.replication.factor", "1".into(), 3),
        ("min.insync.replicas", "1".into(), 3),
        (
            "message.max.bytes",
            topics::DEFAULT_MAX_MESSAGE_BYTES.to_string(),
            3,
        ),
        ("log.dirs", state.data_dir.display().to_string(), 2),
        ("log.segment.bytes", d.segment_bytes.to_string(), 3),
        (
            "log.retention.ms",
            d.retention_ms.unwrap_or(-1).to_string(),
            5,
        ),
        (
            "log.retention.bytes",
            d.retention_bytes.map_or(-1, |b| b as i64).to_string(),
            5,
        ),
        ("log.cleanup.policy", "delete".into(), 7),
        (
            "socket.request.max.bytes",
            state.max_frame_bytes.to_string(),
            3,
        ),
    ]
}

pub fn describe_configs(
    state: &Shared,
    req: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let results = req
        .resources
        .into_iter()
        .map(|r| {
            let wanted = |name: &str| {
                r.configuration_keys
                    .as_ref()
                    .is_none_or(|keys| keys.iter().any(|k| k.as_str() == name))
            };
            let base = DescribeConfigsResult::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let entry = |name: &str, value: String, source: i8, read_only: bool, ty: i8| {
                let mut e = DescribeConfigsResourceResult::default()
                    .with_name(s(name))
                    .with_value(Some(s(value.clone())))
                    .with_config_source(source)
                    .with_read_only(read_only)
                    .with_documentation(None);
                if version >= 3 {
                    e = e.with_config_type(ty);
                }
                e
            };
            match r.resource_type {
                RESOURCE_TOPIC => {
                    let Some(topic) = state.topic(r.resource_name.as_str()) else {
                        return base
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(s(format!(
                                "topic {} does not exist",
                                r.resource_name.as_str()
                            ))));
                    };
                    let configs = topics::TOPIC_CONFIGS
                        .iter()
                        .filter(|n| wanted(n))
                        .map(|&name| {
                            let default = topics::default_value(name, &state.defaults);
                            let ty = topics::config_type(name);
                            let (value, source) = match topic.configs.get(name) {
                                Some(v) => (v.clone(), SOURCE_TOPIC),
                                None => (default.clone().unwrap_or_default(), SOURCE_DEFAULT),
                            };
                            let mut e = entry(name, value.clone(), source, false, ty);
                            if req.include_synonyms {
                                let mut syn = Vec::new();
                                if source == SOURCE_TOPIC {
                                    syn.push(
                                        DescribeConfigsSynonym::default()
                                            .with_name(s(name))
                                            .with_value(Some(s(value)))
                                            .with_source(SOURCE_TOPIC),
                                    );
                                }
                                syn.push(
                                    DescribeConfigsSynonym::default()
                                        .with_name(s(name))
                                        .with_value(default.map(s))
                                        .with_source(SOURCE_DEFAULT),
                                );
                                e = e.with_synonyms(syn);
                            }
                            e
                        })
                        .collect();
                    base.with_error_message(None).with_configs(configs)
                }
                RESOURCE_BROKER => {
                    let name = r.resource_name.as_str();
                    if !name.is_empty() && name != NODE_ID.to_string() {
                        return base
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(s(format!("unknown broker {name}"))));
                    }
                    let configs = broker_configs(state)
                        .into_iter()
                        .filter(|(n, _, _)| wanted(n))
                        .map(|(n, v, ty)| entry(n, v, SOURCE_STATIC_BROKER, true, ty))
                        .collect();
                    base.with_error_message(None).with_configs(configs)
                }
                other => base
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(s(format!("resource type {other} is not supported")))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

pub async fn incremental_alter_configs(
    state: &Shared,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    super::admin::one_admin_change(state, move |st| alter_blocking(st, req)).await
}

fn alter_blocking(
    state: &State,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let responses = req
        .resources
        .into_iter()
        .map(|r| {
            let base = AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name.clone());
            let outcome = match r.resource_type {
                RESOURCE_TOPIC => alter_topic(
                    state,
                    r.resource_name.as_str(),
                    &r.configs,
                    req.validate_only,
                ),
                RESOURCE_BROKER => Err((
                    ResponseError::InvalidRequest,
                    "broker configs are read-only on this broker".to_string(),
                )),
                other => Err((
                    ResponseError::InvalidRequest,
                    format!("resource type {other} is not supported"),
                )),
            };
            match outcome {
                Ok(()) => base,
                Err((e, message)) => base
                    .with_error_code(e.code())
                    .with_error_message(Some(s(message))),
            }
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

fn alter_topic(
    state: &State,
    name: &str,
    changes: &[incremental_alter_configs_request::AlterableConfig],
    validate_only: bool,
) -> Result<(), (ResponseError, String)> {
    let Some(topic) = state.topic(name) else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("topic {name} does not exist"),
        ));
    };
    let invalid = |m: String| (ResponseError::InvalidConfig, m);
    let mut configs: BTreeMap<String, String> = topic.configs.clone();
    for c in changes {
        let key = c.name.to_string();
        if !topics::TOPIC_CONFIGS.contains(&key.as_str()) {
            return Err(invalid(format!(
                "unknown or unsupported topic config {key:?}"
            )));
        }
        match c.config_operation {
            OP_SET => {
                let value = c
                    .value
                    .as_ref()
                    .ok_or_else(|| invalid(format!("null value for {key}")))?;
                let value = topics::validate_config(&key, value).map_err(invalid)?;
                configs.insert(key, value);
            }
            OP_DELETE => {
                configs.remove(&key);
            }
            OP_APPEND | OP_SUBTRACT if key == "cleanup.policy" => {
                let value = c.value.as_ref().map(|v| v.to_string()).unwrap_or_default();
                let items: Vec<&str> = value.split(',').map(str::trim).collect();
                if items.iter().any(|i| *i != "delete") {
                    return Err(invalid(format!(
                        "cleanup.policy={value:?} is not supported: only \"delete\""
                    )));
                }
                if c.config_operation == OP_SUBTRACT {
                    return Err(invalid("cleanup.policy cannot be empty".into()));
                }
                configs.insert(key, "delete".into());
            }
            OP_APPEND | OP_SUBTRACT => {
                return Err(invalid(format!("{key} is not a list config")));
            }
            other => {
                return Err((
                    ResponseError::InvalidRequest,
                    format!("unknown config operation {other}"),
                ));
            }
        }
    }
    if validate_only {
        return Ok(());
    }
    let log_config = topics::log_config(&configs, &state.defaults);
    state.put_topic(Topic {
        name: topic.name.clone(),
        id: topic.id,
        configs,
        partitions: topic.partitions.clone(),
    });
    if let Err(e) = state.persist() {
        state.put_topic(Topic {
            name: topic.name.clone(),
            id: topic.id,
            configs: topic.configs.clone(),
            partitions: topic.partitions.clone(),
        });
        return Err((
            ResponseError::KafkaStorageError,
            format!("cannot store the configs: {e}"),
        ));
    }
    for p in &topic.partitions {
        p.log().set_config(log_config.clone());
    }
    tracing::info!(topic = %name, "topic configs changed");
    Ok(())
}
