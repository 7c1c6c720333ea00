//! Request dispatch, the advertised API versions, and the cluster-level APIs (ApiVersions,
//! Metadata, FindCoordinator, DescribeCluster, InitProducerId).

mod admin;
mod authz;
mod configs;
mod data;
mod refused;
mod security;

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
use crate::auth::sasl::Session;
use crate::frame::{self, FrameError};
use crate::state::{NODE_ID, Topic};
use authz::Guard;

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
    // On an open broker, answered as Apache Kafka answers with no SASL mechanism and no
    // authorizer enabled.
    (ApiKey::SaslHandshake, 0, 1),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
];

/// What a SASL broker answers besides [`SUPPORTED`].
pub const SASL_ONLY: &[(ApiKey, i16, i16)] = &[
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
];

pub fn supported(key: ApiKey, version: i16) -> bool {
    in_table(SUPPORTED, key, version)
}

/// Answered, with an error, though not advertised: see [`refused`].
fn answered(state: &Shared, key: ApiKey, version: i16) -> bool {
    supported(key, version)
        || (state.auth.is_some() && in_table(SASL_ONLY, key, version))
        || in_table(refused::ANSWERED_NOT_ADVERTISED, key, version)
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
    #[error("{key:?} before SASL authentication completed")]
    Unauthenticated { key: ApiKey },
    #[error("SASL authentication failed")]
    AuthenticationFailed,
}

/// Handles one request frame: the response frame, `None` when none is due (acks=0), or why
/// the connection must close.
pub async fn handle(
    state: &Shared,
    session: &mut Session,
    mut frame: Bytes,
) -> Result<Option<Bytes>, RequestError> {
    let peer = session.peer;
    if session.expects_raw_token()
        && let Some(auth) = &state.auth
    {
        // After a v0 handshake the frame is the bare token, answered bare.
        return match session.raw_token(auth, &frame).await {
            Some(token) => {
                let mut out = bytes::BytesMut::with_capacity(4 + token.len());
                bytes::BufMut::put_i32(&mut out, token.len() as i32);
                out.extend_from_slice(&token);
                Ok(Some(out.freeze()))
            }
            None => Err(RequestError::AuthenticationFailed),
        };
    }
    let prefix = frame::prefix(&frame)?;
    if prefix.api_key == ApiKey::ApiVersions as i16
        && !supported(ApiKey::ApiVersions, prefix.api_version)
    {
        // The protocol's rule: answer in v0 with UNSUPPORTED_VERSION and our versions, so
        // the client can retry with one we have.
        let body = api_versions(state, ResponseError::UnsupportedVersion.code());
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
    if !session.allows(key) {
        // Kafka's SaslServerAuthenticator closes the connection on any other request.
        return Err(RequestError::Unauthenticated { key });
    }
    if !answered(state, key, version) {
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
    let g = Guard::new(state, session);
    match key {
        ApiKey::ApiVersions => {
            let _ = decode!(ApiVersionsRequest);
            answer!(api_versions(state, 0))
        }
        ApiKey::Metadata => {
            let req = decode!(MetadataRequest);
            let all = req.topics.is_none()
                || (version == 0 && req.topics.as_ref().is_some_and(|t| t.is_empty()));
            let asked = req.clone();
            let mut resp = metadata(state, req, version);
            authz::metadata(&g, state, &asked, &mut resp, all, version);
            answer!(resp)
        }
        ApiKey::Produce => {
            let mut req = decode!(ProduceRequest);
            let denied = authz::produce(&g, state, &mut req);
            match data::produce(state, req, version).await {
                Some(mut resp) => {
                    resp.responses.extend(denied);
                    answer!(resp)
                }
                None => {
                    // acks=0 has no answer to carry the refusal: Kafka closes the
                    // connection so that the producer notices.
                    session.close_after = !denied.is_empty();
                    Ok(None)
                }
            }
        }
        ApiKey::Fetch => {
            let mut req = decode!(FetchRequest);
            let asked = !req.topics.is_empty();
            let denied = authz::fetch(&g, state, &mut req);
            // Nothing left to wait for: answered at once, as Kafka does.
            let mut resp = if asked && req.topics.is_empty() {
                FetchResponse::default()
            } else {
                data::fetch(state, req, version).await
            };
            resp.responses.extend(denied);
            answer!(resp)
        }
        ApiKey::ListOffsets => {
            let mut req = decode!(ListOffsetsRequest);
            let denied = authz::list_offsets(&g, &mut req);
            let mut resp = data::list_offsets(state, req, version).await;
            resp.topics.extend(denied);
            answer!(resp)
        }
        ApiKey::OffsetForLeaderEpoch => {
            let mut req = decode!(OffsetForLeaderEpochRequest);
            let denied = authz::offset_for_leader_epoch(&g, &mut req);
            let mut resp = data::offset_for_leader_epoch(state, req);
            resp.topics.extend(denied);
            answer!(resp)
        }
        ApiKey::DeleteRecords => {
            let mut req = decode!(DeleteRecordsRequest);
            let denied = authz::delete_records(&g, &mut req);
            let mut resp = data::delete_records(state, req, version).await;
            resp.topics.extend(denied);
            answer!(resp)
        }
        ApiKey::InitProducerId => {
            let req = decode!(InitProducerIdRequest);
            if let Some(denied) = authz::init_producer_id(&g, &req) {
                answer!(denied)
            } else {
                answer!(init_producer_id(state, req).await)
            }
        }
        ApiKey::FindCoordinator => {
            let req = decode!(FindCoordinatorRequest);
            let mut resp = find_coordinator(state, &req, version);
            authz::find_coordinator(&g, &req, &mut resp, version);
            answer!(resp)
        }
        ApiKey::DescribeCluster => {
            let req = decode!(DescribeClusterRequest);
            let include = req.include_cluster_authorized_operations;
            let mut resp = describe_cluster(state, req);
            authz::describe_cluster(&g, include, &mut resp);
            answer!(resp)
        }
        ApiKey::CreateTopics => {
            let mut req = decode!(CreateTopicsRequest);
            let denied = authz::create_topics(&g, &mut req);
            let mut resp = admin::create_topics(state, req, version).await;
            resp.topics.extend(denied);
            authz::created_topic_configs(&g, &mut resp);
            answer!(resp)
        }
        ApiKey::DeleteTopics => {
            let mut req = decode!(DeleteTopicsRequest);
            let denied = authz::delete_topics(&g, state, &mut req, version);
            let mut resp = admin::delete_topics(state, req, version).await;
            resp.responses.extend(denied);
            answer!(resp)
        }
        ApiKey::CreatePartitions => {
            let mut req = decode!(CreatePartitionsRequest);
            let denied = authz::create_partitions(&g, &mut req);
            let mut resp = admin::create_partitions(state, req).await;
            resp.results.extend(denied);
            answer!(resp)
        }
        ApiKey::DescribeConfigs => {
            let mut req = decode!(DescribeConfigsRequest);
            let denied = authz::describe_configs(&g, &mut req);
            let mut resp = configs::describe_configs(state, req, version);
            resp.results.extend(denied);
            answer!(resp)
        }
        ApiKey::IncrementalAlterConfigs => {
            let mut req = decode!(IncrementalAlterConfigsRequest);
            let denied = authz::incremental_alter_configs(&g, &mut req);
            let mut resp = configs::incremental_alter_configs(state, req).await;
            resp.responses.extend(denied);
            answer!(resp)
        }
        ApiKey::JoinGroup => {
            let req = decode!(JoinGroupRequest);
            if !authz::group_read(&g, &req.group_id) {
                return answer!(authz::join_denied(&req));
            }
            // Shown per member by DescribeGroups (kafka-consumer-groups --describe).
            let client = crate::groups::ClientInfo {
                client_id: header
                    .client_id
                    .as_ref()
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
                client_host: format!("/{}", peer.ip()),
            };
            answer!(groups.join_group_from(req, version, &client).await)
        }
        ApiKey::SyncGroup => {
            let req = decode!(SyncGroupRequest);
            if !authz::group_read(&g, &req.group_id) {
                return answer!(authz::sync_denied());
            }
            answer!(groups.sync_group(req, version).await)
        }
        ApiKey::Heartbeat => {
            let req = decode!(HeartbeatRequest);
            if !authz::group_read(&g, &req.group_id) {
                return answer!(authz::heartbeat_denied());
            }
            answer!(groups.heartbeat(req, version).await)
        }
        ApiKey::LeaveGroup => {
            let req = decode!(LeaveGroupRequest);
            if !authz::group_read(&g, &req.group_id) {
                return answer!(authz::leave_denied());
            }
            answer!(groups.leave_group(req, version).await)
        }
        ApiKey::OffsetCommit => {
            let mut req = decode!(OffsetCommitRequest);
            let asked = !req.topics.is_empty();
            let denied = authz::offset_commit(&g, &mut req);
            // All refused (the group, or every topic): the coordinator is not asked.
            let mut resp = if asked && req.topics.is_empty() {
                OffsetCommitResponse::default()
            } else {
                groups.offset_commit(req, version).await
            };
            resp.topics.extend(denied);
            answer!(resp)
        }
        ApiKey::OffsetFetch => {
            let mut req = decode!(OffsetFetchRequest);
            let check = authz::offset_fetch(&g, &mut req, version);
            let mut resp = groups.offset_fetch(req, version).await;
            check.finish(&g, &mut resp, version);
            answer!(resp)
        }
        ApiKey::ListGroups => {
            let mut resp = groups
                .list_groups(decode!(ListGroupsRequest), version)
                .await;
            authz::list_groups(&g, &mut resp);
            answer!(resp)
        }
        ApiKey::DescribeGroups => {
            let mut req = decode!(DescribeGroupsRequest);
            let denied = authz::describe_groups(&g, &mut req);
            let include = req.include_authorized_operations;
            let mut resp = groups.describe_groups(req, version).await;
            authz::described_group_operations(&g, include, &mut resp);
            resp.groups.extend(denied);
            answer!(resp)
        }
        ApiKey::DeleteGroups => {
            let mut req = decode!(DeleteGroupsRequest);
            let denied = authz::delete_groups(&g, &mut req);
            let mut resp = groups.delete_groups(req, version).await;
            resp.results.extend(denied);
            answer!(resp)
        }
        ApiKey::OffsetDelete => {
            let mut req = decode!(OffsetDeleteRequest);
            match authz::offset_delete(&g, &mut req) {
                Err(resp) => answer!(resp),
                Ok(denied) => {
                    let mut resp = groups.offset_delete(req, version).await;
                    if resp.error_code == 0 {
                        resp.topics.extend(denied);
                    }
                    answer!(resp)
                }
            }
        }
        key if state.auth.is_some()
            && matches!(
                key,
                ApiKey::SaslHandshake
                    | ApiKey::SaslAuthenticate
                    | ApiKey::DescribeAcls
                    | ApiKey::CreateAcls
                    | ApiKey::DeleteAcls
                    | ApiKey::DescribeUserScramCredentials
                    | ApiKey::AlterUserScramCredentials
            ) =>
        {
            let Some(auth) = state.auth.clone() else {
                return Err(RequestError::Unsupported { key, version });
            };
            match key {
                ApiKey::SaslHandshake => {
                    let req = decode!(SaslHandshakeRequest);
                    answer!(session.handshake(&auth, &req, version))
                }
                ApiKey::SaslAuthenticate => {
                    let req = decode!(SaslAuthenticateRequest);
                    answer!(session.authenticate(&auth, req).await)
                }
                ApiKey::DescribeAcls => {
                    answer!(security::describe_acls(
                        &g,
                        &auth,
                        decode!(DescribeAclsRequest)
                    ))
                }
                ApiKey::CreateAcls => {
                    answer!(security::create_acls(&g, &auth, decode!(CreateAclsRequest)).await)
                }
                ApiKey::DeleteAcls => {
                    answer!(security::delete_acls(&g, &auth, decode!(DeleteAclsRequest)).await)
                }
                ApiKey::DescribeUserScramCredentials => {
                    answer!(security::describe_user_scram_credentials(
                        &g,
                        &auth,
                        decode!(DescribeUserScramCredentialsRequest)
                    ))
                }
                _ => answer!(
                    security::alter_user_scram_credentials(
                        &g,
                        &auth,
                        decode!(AlterUserScramCredentialsRequest)
                    )
                    .await
                ),
            }
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

fn api_versions(state: &Shared, error_code: i16) -> ApiVersionsResponse {
    let mut table = SUPPORTED.to_vec();
    if state.auth.is_some() {
        table.extend_from_slice(SASL_ONLY);
        table.sort_by_key(|&(key, _, _)| key as i16);
    }
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(
            table
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
    req: &FindCoordinatorRequest,
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
                .iter()
                .map(|key| {
                    Coordinator::default()
                        .with_key(key.clone())
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
