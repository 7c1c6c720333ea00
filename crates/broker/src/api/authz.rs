//! Authorization of each request, as Kafka's `KafkaApis` does it (`handleProduceRequest`,
//! `handleFetchRequest`, `handleTopicMetadataRequest`, the group handlers ...): the parts a
//! caller may not touch are taken out of the request before it is handled and answered
//! with the authorization error of their kind; the rest is handled as usual. On an open
//! broker every check passes and requests go through untouched.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::fetch_response::FetchableTopicResponse;
use kafka_protocol::messages::list_offsets_response::ListOffsetsTopicResponse;
use kafka_protocol::messages::produce_response::TopicProduceResponse;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::s;
use crate::Shared;
use crate::auth::Authorizer;
use crate::auth::acl::{CLUSTER_NAME, Caller, op, resource};
use crate::auth::sasl::Session;

const TOPIC_DENIED: i16 = ResponseError::TopicAuthorizationFailed.code();
const GROUP_DENIED: i16 = ResponseError::GroupAuthorizationFailed.code();
const CLUSTER_DENIED: i16 = ResponseError::ClusterAuthorizationFailed.code();

/// The authorizer and caller of one request; `auth` is `None` on an open broker.
pub struct Guard<'a> {
    auth: Option<&'a Authorizer>,
    caller: &'a Caller,
}

impl<'a> Guard<'a> {
    pub fn new(state: &'a Shared, session: &'a Session) -> Guard<'a> {
        Guard {
            auth: state.auth.as_deref(),
            caller: &session.caller,
        }
    }

    pub fn allows(&self, operation: i8, resource_type: i8, name: &str) -> bool {
        self.auth
            .is_none_or(|a| a.authorize(self.caller, operation, resource_type, name))
    }

    pub fn topic(&self, operation: i8, name: &str) -> bool {
        self.allows(operation, resource::TOPIC, name)
    }

    pub fn group(&self, operation: i8, name: &str) -> bool {
        self.allows(operation, resource::GROUP, name)
    }

    pub fn cluster(&self, operation: i8) -> bool {
        self.allows(operation, resource::CLUSTER, CLUSTER_NAME)
    }

    fn on(&self) -> bool {
        self.auth.is_some()
    }

    /// The "authorized operations" bitfield of a resource; `None` on an open broker, which
    /// leaves Kafka's "not provided" value.
    fn operations(&self, resource_type: i8, name: &str) -> Option<i32> {
        self.auth
            .map(|a| a.authorized_operations(self.caller, resource_type, name))
    }
}

/// Moves the items `keep` refuses out of `items`, keeping the order of both.
fn take_denied<T>(items: &mut Vec<T>, mut keep: impl FnMut(&T) -> bool) -> Vec<T> {
    let (kept, denied) = std::mem::take(items).into_iter().partition(|t| keep(t));
    *items = kept;
    denied
}

/// A topic's name, looked up by id when the request names it by id (newer versions);
/// `None` for an unknown id, left for the handler to answer UNKNOWN_TOPIC_ID.
fn topic_name_of(state: &Shared, name: &str, id: Uuid) -> Option<String> {
    if !name.is_empty() || id.is_nil() {
        Some(name.to_string())
    } else {
        state.topic_by_id(id).map(|t| t.name.clone())
    }
}

// ------------------------------------------------------------------------- data

/// Produce: Write on each topic (per partition TOPIC_AUTHORIZATION_FAILED).
pub fn produce(g: &Guard, state: &Shared, req: &mut ProduceRequest) -> Vec<TopicProduceResponse> {
    if !g.on() {
        return Vec::new();
    }
    take_denied(&mut req.topic_data, |t| {
        topic_name_of(state, &t.name, t.topic_id).is_none_or(|n| g.topic(op::WRITE, &n))
    })
    .into_iter()
    .map(|t| {
        TopicProduceResponse::default()
            .with_name(t.name)
            .with_topic_id(t.topic_id)
            .with_partition_responses(
                t.partition_data
                    .iter()
                    .map(|p| {
                        produce_response::PartitionProduceResponse::default()
                            .with_index(p.index)
                            .with_error_code(TOPIC_DENIED)
                            .with_base_offset(-1)
                            .with_log_start_offset(-1)
                    })
                    .collect(),
            )
    })
    .collect()
}

/// Fetch: Read on each topic; a follower's fetch needs ClusterAction on the cluster.
pub fn fetch(g: &Guard, state: &Shared, req: &mut FetchRequest) -> Vec<FetchableTopicResponse> {
    if !g.on() {
        return Vec::new();
    }
    let from_follower = req.replica_id.0 >= 0 || req.replica_state.replica_id.0 >= 0;
    let follower_ok = !from_follower || g.cluster(op::CLUSTER_ACTION);
    take_denied(&mut req.topics, |t| {
        follower_ok
            && topic_name_of(state, &t.topic, t.topic_id).is_none_or(|n| g.topic(op::READ, &n))
    })
    .into_iter()
    .map(|t| {
        FetchableTopicResponse::default()
            .with_topic(t.topic)
            .with_topic_id(t.topic_id)
            .with_partitions(
                t.partitions
                    .iter()
                    .map(|p| {
                        fetch_response::PartitionData::default()
                            .with_partition_index(p.partition)
                            .with_error_code(TOPIC_DENIED)
                            .with_high_watermark(-1)
                            .with_last_stable_offset(-1)
                            .with_log_start_offset(-1)
                            .with_records(Some(Default::default()))
                    })
                    .collect(),
            )
    })
    .collect()
}

/// ListOffsets: Describe on each topic.
pub fn list_offsets(g: &Guard, req: &mut ListOffsetsRequest) -> Vec<ListOffsetsTopicResponse> {
    take_denied(&mut req.topics, |t| g.topic(op::DESCRIBE, &t.name))
        .into_iter()
        .map(|t| {
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            list_offsets_response::ListOffsetsPartitionResponse::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(TOPIC_DENIED)
                                .with_timestamp(-1)
                                .with_offset(-1)
                        })
                        .collect(),
                )
        })
        .collect()
}

/// OffsetForLeaderEpoch: Describe on each topic (consumers use it after a leader change).
pub fn offset_for_leader_epoch(
    g: &Guard,
    req: &mut OffsetForLeaderEpochRequest,
) -> Vec<offset_for_leader_epoch_response::OffsetForLeaderTopicResult> {
    use offset_for_leader_epoch_response::{EpochEndOffset, OffsetForLeaderTopicResult};
    take_denied(&mut req.topics, |t| g.topic(op::DESCRIBE, &t.topic))
        .into_iter()
        .map(|t| {
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            EpochEndOffset::default()
                                .with_partition(p.partition)
                                .with_error_code(TOPIC_DENIED)
                        })
                        .collect(),
                )
        })
        .collect()
}

/// DeleteRecords: Delete on each topic.
pub fn delete_records(
    g: &Guard,
    req: &mut DeleteRecordsRequest,
) -> Vec<delete_records_response::DeleteRecordsTopicResult> {
    use delete_records_response::{DeleteRecordsPartitionResult, DeleteRecordsTopicResult};
    take_denied(&mut req.topics, |t| g.topic(op::DELETE, &t.name))
        .into_iter()
        .map(|t| {
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            DeleteRecordsPartitionResult::default()
                                .with_partition_index(p.partition_index)
                                .with_low_watermark(-1)
                                .with_error_code(TOPIC_DENIED)
                        })
                        .collect(),
                )
        })
        .collect()
}

/// Metadata: topics the caller may not Describe are left out of an all-topics answer;
/// asked for by name (or by a known id), they get TOPIC_AUTHORIZATION_FAILED whether they
/// exist or not (`handleTopicMetadataRequest`). The authorized operations asked for (v8+)
/// are filled in.
pub fn metadata(
    g: &Guard,
    state: &Shared,
    req: &MetadataRequest,
    resp: &mut MetadataResponse,
    all_topics: bool,
    version: i16,
) {
    if !g.on() {
        return;
    }
    // `None`: an unknown id, answered UNKNOWN_TOPIC_ID before any check.
    let name_of = |t: &metadata_response::MetadataResponseTopic| match &t.name {
        Some(n) => Some(n.to_string()),
        None => state.topic_by_id(t.topic_id).map(|t| t.name.clone()),
    };
    if all_topics {
        resp.topics
            .retain(|t| name_of(t).is_some_and(|n| g.topic(op::DESCRIBE, &n)));
    } else {
        for t in resp.topics.iter_mut() {
            let Some(name) = name_of(t) else { continue };
            if !g.topic(op::DESCRIBE, &name) {
                // By id, the name stays hidden; the id itself is not secret.
                let by_id = t.name.is_none();
                *t = metadata_response::MetadataResponseTopic::default()
                    .with_error_code(TOPIC_DENIED)
                    .with_name(t.name.clone())
                    .with_topic_id(if by_id { t.topic_id } else { Uuid::nil() });
            }
        }
    }
    if version >= 8 && req.include_topic_authorized_operations {
        for t in resp.topics.iter_mut().filter(|t| t.error_code == 0) {
            if let Some(bits) = name_of(t).and_then(|n| g.operations(resource::TOPIC, &n)) {
                t.topic_authorized_operations = bits;
            }
        }
    }
    if (8..=10).contains(&version) && req.include_cluster_authorized_operations {
        resp.cluster_authorized_operations = cluster_operations(g);
    }
}

/// The cluster's authorized operations: 0 without Describe on the cluster (AuthHelper).
fn cluster_operations(g: &Guard) -> i32 {
    if g.cluster(op::DESCRIBE) {
        g.operations(resource::CLUSTER, CLUSTER_NAME)
            .unwrap_or(i32::MIN)
    } else {
        0
    }
}

/// DescribeCluster needs no permission (`AuthHelper.computeDescribeClusterResponse`); the
/// cluster's authorized operations are filled in when asked for.
pub fn describe_cluster(g: &Guard, include: bool, resp: &mut DescribeClusterResponse) {
    if g.on() && include && resp.error_code == 0 {
        resp.cluster_authorized_operations = cluster_operations(g);
    }
}

/// InitProducerId: Write on the transactional id for a transactional producer (refused
/// later anyway: no transactions here); else IdempotentWrite on the cluster, or Write on
/// any topic (Kafka 2.8+, KIP-679). The refusal to answer, if any.
pub fn init_producer_id(g: &Guard, req: &InitProducerIdRequest) -> Option<InitProducerIdResponse> {
    let auth = g.auth?;
    let code = match &req.transactional_id {
        Some(id) if !g.allows(op::WRITE, resource::TRANSACTIONAL_ID, id) => {
            ResponseError::TransactionalIdAuthorizationFailed.code()
        }
        Some(_) => return None,
        None if g.cluster(op::IDEMPOTENT_WRITE)
            || auth.authorize_any(g.caller, op::WRITE, resource::TOPIC) =>
        {
            return None;
        }
        None => CLUSTER_DENIED,
    };
    Some(
        InitProducerIdResponse::default()
            .with_error_code(code)
            .with_producer_id((-1).into())
            .with_producer_epoch(-1),
    )
}

// ------------------------------------------------------------------------ admin

/// CreateTopics: Create on the cluster, or else on each topic.
pub fn create_topics(g: &Guard, req: &mut CreateTopicsRequest) -> Vec<CreatableTopicResult> {
    if !g.on() || g.cluster(op::CREATE) {
        return Vec::new();
    }
    take_denied(&mut req.topics, |t| g.topic(op::CREATE, &t.name))
        .into_iter()
        .map(|t| {
            CreatableTopicResult::default()
                .with_name(t.name)
                .with_error_code(TOPIC_DENIED)
                .with_error_message(Some(s("Authorization failed.")))
                .with_num_partitions(-1)
                .with_replication_factor(-1)
        })
        .collect()
}

/// A created topic's configs and layout are only shown with DescribeConfigs on it
/// (`handleCreateTopicsRequest`); otherwise TOPIC_AUTHORIZATION_FAILED in
/// `topic_config_error_code`.
pub fn created_topic_configs(g: &Guard, resp: &mut CreateTopicsResponse) {
    if !g.on() {
        return;
    }
    for t in resp.topics.iter_mut() {
        let refused = t.error_code == TOPIC_DENIED;
        if (t.error_code == 0 || refused) && !g.topic(op::DESCRIBE_CONFIGS, &t.name) {
            t.topic_config_error_code = TOPIC_DENIED;
            if !refused {
                t.configs = Some(Vec::new());
                t.num_partitions = -1;
                t.replication_factor = -1;
            }
        }
    }
}

/// DeleteTopics: Delete on each topic; by id, an unknown id stays UNKNOWN_TOPIC_ID.
pub fn delete_topics(
    g: &Guard,
    state: &Shared,
    req: &mut DeleteTopicsRequest,
    version: i16,
) -> Vec<DeletableTopicResult> {
    if !g.on() {
        return Vec::new();
    }
    let denied = |name: Option<&TopicName>, id: Uuid| {
        DeletableTopicResult::default()
            .with_name(name.cloned())
            .with_topic_id(id)
            .with_error_code(TOPIC_DENIED)
            .with_error_message(Some(s("Authorization failed.")))
    };
    if version >= 6 {
        take_denied(&mut req.topics, |t| {
            let name = match &t.name {
                Some(n) => Some(n.to_string()),
                None => state.topic_by_id(t.topic_id).map(|t| t.name.clone()),
            };
            name.is_none_or(|n| g.topic(op::DELETE, &n))
        })
        .into_iter()
        .map(|t| denied(t.name.as_ref(), t.topic_id))
        .collect()
    } else {
        take_denied(&mut req.topic_names, |n| g.topic(op::DELETE, n))
            .into_iter()
            .map(|n| denied(Some(&n), Uuid::nil()))
            .collect()
    }
}

/// CreatePartitions: Alter on each topic.
pub fn create_partitions(
    g: &Guard,
    req: &mut CreatePartitionsRequest,
) -> Vec<create_partitions_response::CreatePartitionsTopicResult> {
    take_denied(&mut req.topics, |t| g.topic(op::ALTER, &t.name))
        .into_iter()
        .map(|t| {
            create_partitions_response::CreatePartitionsTopicResult::default()
                .with_name(t.name)
                .with_error_code(TOPIC_DENIED)
                .with_error_message(Some(s("Authorization failed.")))
        })
        .collect()
}

/// ConfigResource type codes.
const CONFIG_TOPIC: i8 = 2;
const CONFIG_BROKER: i8 = 4;
const CONFIG_BROKER_LOGGER: i8 = 8;

/// The check of one config resource: topics by name, brokers on the cluster (Kafka's
/// `ConfigAdminManager` / `AuthHelper`); other types are left to the handler's answer.
fn config_allowed(g: &Guard, resource_type: i8, name: &str, operation: i8) -> Result<(), i16> {
    match resource_type {
        CONFIG_TOPIC if !g.topic(operation, name) => Err(TOPIC_DENIED),
        CONFIG_BROKER | CONFIG_BROKER_LOGGER if !g.cluster(operation) => Err(CLUSTER_DENIED),
        _ => Ok(()),
    }
}

/// DescribeConfigs: DescribeConfigs on the topic or the cluster.
pub fn describe_configs(
    g: &Guard,
    req: &mut DescribeConfigsRequest,
) -> Vec<describe_configs_response::DescribeConfigsResult> {
    let mut errors = Vec::new();
    req.resources.retain(|r| {
        match config_allowed(g, r.resource_type, &r.resource_name, op::DESCRIBE_CONFIGS) {
            Ok(()) => true,
            Err(code) => {
                errors.push(
                    describe_configs_response::DescribeConfigsResult::default()
                        .with_error_code(code)
                        .with_error_message(Some(s("Authorization failed.")))
                        .with_resource_type(r.resource_type)
                        .with_resource_name(r.resource_name.clone()),
                );
                false
            }
        }
    });
    errors
}

/// IncrementalAlterConfigs: AlterConfigs on the topic or the cluster.
pub fn incremental_alter_configs(
    g: &Guard,
    req: &mut IncrementalAlterConfigsRequest,
) -> Vec<incremental_alter_configs_response::AlterConfigsResourceResponse> {
    let mut errors = Vec::new();
    req.resources.retain(|r| {
        match config_allowed(g, r.resource_type, &r.resource_name, op::ALTER_CONFIGS) {
            Ok(()) => true,
            Err(code) => {
                errors.push(
                    incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                        .with_error_code(code)
                        .with_error_message(Some(s("Authorization failed.")))
                        .with_resource_type(r.resource_type)
                        .with_resource_name(r.resource_name.clone()),
                );
                false
            }
        }
    });
    errors
}

// ----------------------------------------------------------------------- groups

/// JoinGroup, SyncGroup, Heartbeat and LeaveGroup need Read on the group.
pub fn group_read(g: &Guard, group: &StrBytes) -> bool {
    g.group(op::READ, group)
}

pub fn join_denied(req: &JoinGroupRequest) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(GROUP_DENIED)
        .with_generation_id(-1)
        .with_member_id(req.member_id.clone())
}

pub fn sync_denied() -> SyncGroupResponse {
    SyncGroupResponse::default().with_error_code(GROUP_DENIED)
}

pub fn heartbeat_denied() -> HeartbeatResponse {
    HeartbeatResponse::default().with_error_code(GROUP_DENIED)
}

pub fn leave_denied() -> LeaveGroupResponse {
    LeaveGroupResponse::default().with_error_code(GROUP_DENIED)
}

/// OffsetCommit: Read on the group (else every partition GROUP_AUTHORIZATION_FAILED), then
/// Read on each topic.
pub fn offset_commit(
    g: &Guard,
    req: &mut OffsetCommitRequest,
) -> Vec<offset_commit_response::OffsetCommitResponseTopic> {
    use offset_commit_response::{OffsetCommitResponsePartition, OffsetCommitResponseTopic};
    let group_ok = g.group(op::READ, &req.group_id);
    take_denied(&mut req.topics, |t| group_ok && g.topic(op::READ, &t.name))
        .into_iter()
        .map(|t| {
            let code = if group_ok { TOPIC_DENIED } else { GROUP_DENIED };
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_topic_id(t.topic_id)
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect()
}

/// OffsetFetch: Describe on the group; Describe on each topic (unauthorized topics asked
/// for get TOPIC_AUTHORIZATION_FAILED, and are left out when all are asked for). What the
/// request keeps is handled; `finish` then puts the refusals into the answer.
pub struct OffsetFetchCheck {
    /// One per group (one for v0-7).
    groups: Vec<GroupCheck>,
}

#[derive(Default)]
struct GroupCheck {
    denied: bool,
    all_topics: bool,
    /// Topics asked for and refused, with their partitions.
    refused: Vec<(TopicName, Vec<i32>)>,
}

pub fn offset_fetch(g: &Guard, req: &mut OffsetFetchRequest, version: i16) -> OffsetFetchCheck {
    let mut check = OffsetFetchCheck { groups: Vec::new() };
    if !g.on() {
        return check;
    }
    if version < 8 {
        let denied = !g.group(op::DESCRIBE, &req.group_id);
        let mut refused = Vec::new();
        if let Some(topics) = &mut req.topics {
            refused = take_denied(topics, |t| g.topic(op::DESCRIBE, &t.name))
                .into_iter()
                .map(|t| (t.name, t.partition_indexes))
                .collect();
        }
        check.groups.push(GroupCheck {
            denied,
            all_topics: req.topics.is_none(),
            refused,
        });
    } else {
        for group in &mut req.groups {
            let denied = !g.group(op::DESCRIBE, &group.group_id);
            let mut refused = Vec::new();
            if let Some(topics) = &mut group.topics {
                refused = take_denied(topics, |t| g.topic(op::DESCRIBE, &t.name))
                    .into_iter()
                    .map(|t| (t.name, t.partition_indexes))
                    .collect();
            }
            check.groups.push(GroupCheck {
                denied,
                all_topics: group.topics.is_none(),
                refused,
            });
        }
    }
    check
}

impl OffsetFetchCheck {
    pub fn finish(self, g: &Guard, resp: &mut OffsetFetchResponse, version: i16) {
        if self.groups.is_empty() {
            return;
        }
        if version < 8 {
            let GroupCheck {
                denied,
                all_topics: all,
                refused,
            } = self.groups.into_iter().next().unwrap_or_default();
            if denied {
                *resp = OffsetFetchResponse::default().with_error_code(GROUP_DENIED);
                return;
            }
            if all {
                resp.topics.retain(|t| g.topic(op::DESCRIBE, &t.name));
            }
            for (name, partitions) in refused {
                resp.topics.push(
                    offset_fetch_response::OffsetFetchResponseTopic::default()
                        .with_name(name)
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|p| {
                                    offset_fetch_response::OffsetFetchResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(-1)
                                        .with_committed_leader_epoch(-1)
                                        .with_metadata(Some(s("")))
                                        .with_error_code(TOPIC_DENIED)
                                })
                                .collect(),
                        ),
                );
            }
            return;
        }
        for (group, check) in resp.groups.iter_mut().zip(self.groups) {
            let GroupCheck {
                denied,
                all_topics: all,
                refused,
            } = check;
            if denied {
                group.topics.clear();
                group.error_code = GROUP_DENIED;
                continue;
            }
            if all {
                group.topics.retain(|t| g.topic(op::DESCRIBE, &t.name));
            }
            for (name, partitions) in refused {
                group.topics.push(
                    offset_fetch_response::OffsetFetchResponseTopics::default()
                        .with_name(name)
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|p| {
                                    offset_fetch_response::OffsetFetchResponsePartitions::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(-1)
                                        .with_committed_leader_epoch(-1)
                                        .with_metadata(Some(s("")))
                                        .with_error_code(TOPIC_DENIED)
                                })
                                .collect(),
                        ),
                );
            }
        }
    }
}

/// ListGroups: every group with Describe on the cluster, else those the caller may
/// Describe.
pub fn list_groups(g: &Guard, resp: &mut ListGroupsResponse) {
    if g.on() && !g.cluster(op::DESCRIBE) {
        resp.groups.retain(|l| g.group(op::DESCRIBE, &l.group_id));
    }
}

/// DescribeGroups: Describe on each group.
pub fn describe_groups(
    g: &Guard,
    req: &mut DescribeGroupsRequest,
) -> Vec<describe_groups_response::DescribedGroup> {
    take_denied(&mut req.groups, |id| g.group(op::DESCRIBE, id))
        .into_iter()
        .map(|id| {
            describe_groups_response::DescribedGroup::default()
                .with_group_id(id)
                .with_error_code(GROUP_DENIED)
                .with_authorized_operations(i32::MIN)
        })
        .collect()
}

/// DescribeGroups: the authorized operations of each described group, when asked for.
pub fn described_group_operations(g: &Guard, include: bool, resp: &mut DescribeGroupsResponse) {
    if !g.on() || !include {
        return;
    }
    for group in resp.groups.iter_mut().filter(|gr| gr.error_code == 0) {
        if let Some(bits) = g.operations(resource::GROUP, &group.group_id) {
            group.authorized_operations = bits;
        }
    }
}

/// DeleteGroups: Delete on each group.
pub fn delete_groups(
    g: &Guard,
    req: &mut DeleteGroupsRequest,
) -> Vec<delete_groups_response::DeletableGroupResult> {
    take_denied(&mut req.groups_names, |id| g.group(op::DELETE, id))
        .into_iter()
        .map(|id| {
            delete_groups_response::DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(GROUP_DENIED)
        })
        .collect()
}

/// OffsetDelete: Delete on the group (else the whole request fails), Read on each topic.
pub fn offset_delete(
    g: &Guard,
    req: &mut OffsetDeleteRequest,
) -> Result<Vec<offset_delete_response::OffsetDeleteResponseTopic>, OffsetDeleteResponse> {
    use offset_delete_response::{OffsetDeleteResponsePartition, OffsetDeleteResponseTopic};
    if !g.group(op::DELETE, &req.group_id) {
        return Err(OffsetDeleteResponse::default().with_error_code(GROUP_DENIED));
    }
    Ok(take_denied(&mut req.topics, |t| g.topic(op::READ, &t.name))
        .into_iter()
        .map(|t| {
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(TOPIC_DENIED)
                        })
                        .collect(),
                )
        })
        .collect())
}

/// FindCoordinator: Describe on the group (key type 0) or the transactional id (1).
pub fn coordinator_key_allowed(g: &Guard, key_type: i8, key: &str) -> bool {
    match key_type {
        0 => g.group(op::DESCRIBE, key),
        1 => g.allows(op::DESCRIBE, resource::TRANSACTIONAL_ID, key),
        _ => true,
    }
}

/// Patches the FindCoordinator answer for keys the caller may not Describe.
pub fn find_coordinator(
    g: &Guard,
    req: &FindCoordinatorRequest,
    resp: &mut FindCoordinatorResponse,
    version: i16,
) {
    if !g.on() {
        return;
    }
    let code = |key_type: i8| {
        if key_type == 1 {
            ResponseError::TransactionalIdAuthorizationFailed.code()
        } else {
            GROUP_DENIED
        }
    };
    if version < 4 {
        if !coordinator_key_allowed(g, req.key_type, &req.key) {
            *resp = FindCoordinatorResponse::default()
                .with_error_code(code(req.key_type))
                .with_node_id((-1).into())
                .with_port(-1);
        }
        return;
    }
    for c in resp.coordinators.iter_mut() {
        if !coordinator_key_allowed(g, req.key_type, &c.key) {
            c.error_code = code(req.key_type);
            c.node_id = (-1).into();
            c.host = s("");
            c.port = -1;
        }
    }
}
