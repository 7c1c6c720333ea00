//! Request dispatch, the advertised API versions, and the cluster-level APIs (ApiVersions,
//! Metadata, FindCoordinator, DescribeCluster, InitProducerId).

mod admin;
mod configs;
mod data;
mod refused;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::Shared;
use crate::frame::{self, FrameError};
use crate::state::{NODE_ID, Topic};

/// Every API this broker answers, with the versions it implements.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 13),
    (ApiKey::Fetch, 4, 17),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    // Answered as Apache Kafka answers with no SASL mechanism and no authorizer enabled.
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
];

pub fn supported(key: ApiKey, version: i16) -> bool {
    in_table(SUPPORTED, key, version)
}

/// Answered, with an error, though not advertised: see [`refused`].
fn answered(key: ApiKey, version: i16) -> bool {
    supported(key, version) || in_table(refused::ANSWERED_NOT_ADVERTISED, key, version)
}

fn in_table(table: &[(ApiKey, i16, i16)], key: ApiKey, version: i16) -> bool {
    table
        .iter()
        .any(|&(k, min, max)| k == key && (min..=max).contains(&version))
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("{key:?} v{version} is not supported")]
    Unsupported { key: ApiKey, version: i16 },
    #[error("malformed {key:?} v{version} request: {error}")]
    Decode {
        key: ApiKey,
        version: i16,
        error: String,
    },
    #[error("cannot encode the {key:?} v{version} response: {error}")]
    Encode {
        key: ApiKey,
        version: i16,
        error: String,
    },
}

/// Handles one request frame: the response frame, `None` when none is due (acks=0), or why
/// the connection must close.
pub async fn handle(
    state: &Shared,
    peer: std::net::SocketAddr,
    mut frame: Bytes,
) -> Result<Option<Bytes>, RequestError> {
    let prefix = frame::prefix(&frame)?;
    if prefix.api_key == ApiKey::ApiVersions as i16
        && !supported(ApiKey::ApiVersions, prefix.api_version)
    {
        // The protocol's rule: answer in v0 with UNSUPPORTED_VERSION and our versions, so
        // the client can retry with one we have.
        let body = api_versions(ResponseError::UnsupportedVersion.code());
        return frame::encode_with_header(0, prefix.correlation_id, &body, 0)
            .map(Some)
            .map_err(|error| RequestError::Encode {
                key: ApiKey::ApiVersions,
                version: 0,
                error,
            });
    }
    let (key, header) = frame::decode_header(&mut frame)?;
    let version = header.request_api_version;
    if !answered(key, version) {
        return Err(RequestError::Unsupported { key, version });
    }
    let correlation_id = header.correlation_id;
    tracing::trace!(api = ?key, version, correlation_id, "request");
    macro_rules! decode {
        ($ty:ty) => {
            <$ty>::decode(&mut frame, version).map_err(|e| RequestError::Decode {
                key,
                version,
                error: e.to_string(),
            })?
        };
    }
    macro_rules! answer {
        ($resp:expr) => {
            frame::encode_response(key, version, correlation_id, &$resp)
                .map(Some)
                .map_err(|error| RequestError::Encode {
                    key,
                    version,
                    error,
                })
        };
    }
    let groups = &state.groups;
    match key {
        ApiKey::ApiVersions => {
            let _ = decode!(ApiVersionsRequest);
            answer!(api_versions(0))
        }
        ApiKey::Metadata => answer!(metadata(state, decode!(MetadataRequest), version)),
        ApiKey::Produce => match data::produce(state, decode!(ProduceRequest), version).await {
            Some(resp) => answer!(resp),
            None => Ok(None),
        },
        ApiKey::Fetch => answer!(data::fetch(state, decode!(FetchRequest), version).await),
        ApiKey::ListOffsets => {
            answer!(data::list_offsets(state, decode!(ListOffsetsRequest), version).await)
        }
        ApiKey::OffsetForLeaderEpoch => answer!(data::offset_for_leader_epoch(
            state,
            decode!(OffsetForLeaderEpochRequest)
        )),
        ApiKey::DeleteRecords => {
            answer!(data::delete_records(state, decode!(DeleteRecordsRequest), version).await)
        }
        ApiKey::InitProducerId => {
            answer!(init_producer_id(state, decode!(InitProducerIdRequest)).await)
        }
        ApiKey::FindCoordinator => answer!(find_coordinator(
            state,
            decode!(FindCoordinatorRequest),
            version
        )),
        ApiKey::DescribeCluster => {
            answer!(describe_cluster(state, decode!(DescribeClusterRequest)))
        }
        ApiKey::CreateTopics => {
            answer!(admin::create_topics(state, decode!(CreateTopicsRequest), version).await)
        }
        ApiKey::DeleteTopics => {
            answer!(admin::delete_topics(state, decode!(DeleteTopicsRequest), version).await)
        }
        ApiKey::CreatePartitions => {
            answer!(admin::create_partitions(state, decode!(CreatePartitionsRequest)).await)
        }
        ApiKey::DescribeConfigs => answer!(configs::describe_configs(
            state,
            decode!(DescribeConfigsRequest),
            version
        )),
        ApiKey::IncrementalAlterConfigs => answer!(
            configs::incremental_alter_configs(state, decode!(IncrementalAlterConfigsRequest))
                .await
        ),
        ApiKey::JoinGroup => {
            // Shown per member by DescribeGroups (kafka-consumer-groups --describe).
            let client = crate::groups::ClientInfo {
                client_id: header
                    .client_id
                    .as_ref()
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
                client_host: format!("/{}", peer.ip()),
            };
            answer!(
                groups
                    .join_group_from(decode!(JoinGroupRequest), version, &client)
                    .await
            )
        }
        ApiKey::SyncGroup => answer!(groups.sync_group(decode!(SyncGroupRequest), version).await),
        ApiKey::Heartbeat => answer!(groups.heartbeat(decode!(HeartbeatRequest), version).await),
        ApiKey::LeaveGroup => {
            answer!(
                groups
                    .leave_group(decode!(LeaveGroupRequest), version)
                    .await
            )
        }
        ApiKey::OffsetCommit => {
            answer!(
                groups
                    .offset_commit(decode!(OffsetCommitRequest), version)
                    .await
            )
        }
        ApiKey::OffsetFetch => {
            answer!(
                groups
                    .offset_fetch(decode!(OffsetFetchRequest), version)
                    .await
            )
        }
        ApiKey::ListGroups => {
            answer!(
                groups
                    .list_groups(decode!(ListGroupsRequest), version)
                    .await
            )
        }
        ApiKey::DescribeGroups => {
            answer!(
                groups
                    .describe_groups(decode!(DescribeGroupsRequest), version)
                    .await
            )
        }
        ApiKey::DeleteGroups => {
            answer!(
                groups
                    .delete_groups(decode!(DeleteGroupsRequest), version)
                    .await
            )
        }
        ApiKey::OffsetDelete => {
            answer!(
                groups
                    .offset_delete(decode!(OffsetDeleteRequest), version)
                    .await
            )
        }
        ApiKey::SaslHandshake
        | ApiKey::SaslAuthenticate
        | ApiKey::DescribeAcls
        | ApiKey::CreateAcls
        | ApiKey::DeleteAcls
        | ApiKey::AddPartitionsToTxn
        | ApiKey::AddOffsetsToTxn
        | ApiKey::EndTxn
        | ApiKey::TxnOffsetCommit
        | ApiKey::ConsumerGroupHeartbeat
        | ApiKey::ConsumerGroupDescribe => {
            tracing::debug!(%peer, api = ?key, "refused: {}", refused::why(key));
            match key {
                ApiKey::SaslHandshake => {
                    let _ = decode!(SaslHandshakeRequest);
                    answer!(refused::sasl_handshake())
                }
                ApiKey::SaslAuthenticate => {
                    let _ = decode!(SaslAuthenticateRequest);
                    answer!(refused::sasl_authenticate())
                }
                ApiKey::DescribeAcls => {
                    let _ = decode!(DescribeAclsRequest);
                    answer!(refused::describe_acls())
                }
                ApiKey::CreateAcls => answer!(refused::create_acls(decode!(CreateAclsRequest))),
                ApiKey::DeleteAcls => answer!(refused::delete_acls(decode!(DeleteAclsRequest))),
                ApiKey::AddPartitionsToTxn => answer!(refused::add_partitions_to_txn(decode!(
                    AddPartitionsToTxnRequest
                ))),
                ApiKey::AddOffsetsToTxn => {
                    let _ = decode!(AddOffsetsToTxnRequest);
                    answer!(refused::add_offsets_to_txn())
                }
                ApiKey::EndTxn => {
                    let _ = decode!(EndTxnRequest);
                    answer!(refused::end_txn())
                }
                ApiKey::TxnOffsetCommit => {
                    answer!(refused::txn_offset_commit(decode!(TxnOffsetCommitRequest)))
                }
                ApiKey::ConsumerGroupHeartbeat => {
                    let _ = decode!(ConsumerGroupHeartbeatRequest);
                    answer!(refused::consumer_group_heartbeat())
                }
                _ => answer!(refused::consumer_group_describe(decode!(
                    ConsumerGroupDescribeRequest
                ))),
            }
        }
        _ => Err(RequestError::Unsupported { key, version }),
    }
}

pub(crate) fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

pub(crate) fn topic_name(v: &str) -> TopicName {
    TopicName(s(v))
}

fn api_versions(error_code: i16) -> ApiVersionsResponse {
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(
            SUPPORTED
                .iter()
                .map(|&(key, min, max)| {
                    ApiVersion::default()
                        .with_api_key(key as i16)
                        .with_min_version(min)
                        .with_max_version(max)
                })
                .collect(),
        )
}

fn broker_node(state: &Shared) -> MetadataResponseBroker {
    MetadataResponseBroker::default()
        .with_node_id(NODE_ID.into())
        .with_host(s(state.host.clone()))
        .with_port(state.port)
}

/// Authorized operations are not tracked: Kafka's "not provided" value.
const NO_AUTHORIZED_OPERATIONS: i32 = i32::MIN;

fn metadata_topic(topic: &Topic) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(&topic.name)))
        .with_topic_id(topic.id)
        .with_partitions(
            topic
                .partitions
                .iter()
                .map(|p| {
                    MetadataResponsePartition::default()
                        .with_partition_index(p.index)
                        .with_leader_id(NODE_ID.into())
                        .with_leader_epoch(0)
                        .with_replica_nodes(vec![NODE_ID.into()])
                        .with_isr_nodes(vec![NODE_ID.into()])
                })
                .collect(),
        )
}

fn metadata(state: &Shared, req: MetadataRequest, version: i16) -> MetadataResponse {
    let topics: Vec<MetadataResponseTopic> = match req.topics {
        // v0: an empty list means every topic; v1+: null means every topic.
        None => state
            .all_topics()
            .iter()
            .map(|t| metadata_topic(t))
            .collect(),
        Some(list) if list.is_empty() && version == 0 => state
            .all_topics()
            .iter()
            .map(|t| metadata_topic(t))
            .collect(),
        Some(list) => list
            .into_iter()
            .map(|wanted| {
                let found = match &wanted.name {
                    Some(name) => state.topic(name.as_str()),
                    None => state.topic_by_id(wanted.topic_id),
                };
                match found {
                    Some(t) => metadata_topic(&t),
                    None => {
                        let code = match (&wanted.name, version >= 10) {
                            (Some(name), _) if crate::topics::validate_name(name).is_err() => {
                                ResponseError::InvalidTopicException.code()
                            }
                            (None, true) => ResponseError::UnknownTopicId.code(),
                            _ => ResponseError::UnknownTopicOrPartition.code(),
                        };
                        MetadataResponseTopic::default()
                            .with_error_code(code)
                            .with_name(wanted.name)
                            .with_topic_id(wanted.topic_id)
                    }
                }
            })
            .collect(),
    };
    // Authorized operations stay at Kafka's "not provided" default (i32::MIN).
    MetadataResponse::default()
        .with_brokers(vec![broker_node(state)])
        .with_cluster_id((version >= 2).then(|| s(state.cluster_id.clone())))
        .with_controller_id(NODE_ID.into())
        .with_topics(topics)
}

fn find_coordinator(
    state: &Shared,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    if version < 4 {
        FindCoordinatorResponse::default()
            .with_node_id(NODE_ID.into())
            .with_host(s(state.host.clone()))
            .with_port(state.port)
    } else {
        FindCoordinatorResponse::default().with_coordinators(
            req.coordinator_keys
                .into_iter()
                .map(|key| {
                    Coordinator::default()
                        .with_key(key)
                        .with_node_id(NODE_ID.into())
                        .with_host(s(state.host.clone()))
                        .with_port(state.port)
                })
                .collect(),
        )
    }
}

fn describe_cluster(state: &Shared, req: DescribeClusterRequest) -> DescribeClusterResponse {
    DescribeClusterResponse::default()
        .with_endpoint_type(req.endpoint_type)
        .with_cluster_id(s(state.cluster_id.clone()))
        .with_controller_id(NODE_ID.into())
        .with_brokers(vec![
            DescribeClusterBroker::default()
                .with_broker_id(NODE_ID.into())
                .with_host(s(state.host.clone()))
                .with_port(state.port),
        ])
        .with_cluster_authorized_operations(NO_AUTHORIZED_OPERATIONS)
}

async fn init_producer_id(state: &Shared, req: InitProducerIdRequest) -> InitProducerIdResponse {
    if req.transactional_id.is_some() {
        // Transactions are not supported: a transactional producer cannot start.
        return InitProducerIdResponse::default()
            .with_error_code(ResponseError::UnsupportedVersion.code())
            .with_producer_id((-1).into())
            .with_producer_epoch(-1);
    }
    let st = state.clone();
    let id = tokio::task::spawn_blocking(move || st.next_producer_id()).await;
    match id {
        Ok(Ok(id)) => InitProducerIdResponse::default()
            .with_producer_id(id.into())
            .with_producer_epoch(0),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot reserve producer ids");
            InitProducerIdResponse::default()
                .with_error_code(ResponseError::KafkaStorageError.code())
                .with_producer_id((-1).into())
                .with_producer_epoch(-1)
        }
        Err(_) => InitProducerIdResponse::default()
            .with_error_code(ResponseError::UnknownServerError.code())
            .with_producer_id((-1).into())
            .with_producer_epoch(-1),
    }
}
