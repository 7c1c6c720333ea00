//! What this broker does not implement, answered with the protocol's error instead of a closed
//! connection, so a client configured for a missing feature says why:
//! - SASL on an open broker: the handshake is answered with no mechanism enabled;
//! - ACLs on an open broker: SECURITY_DISABLED, as Apache Kafka answers when no authorizer
//!   is configured;
//! - transactions and KIP-848 consumer groups: not advertised, so clients do not send them,
//!   but a request sent anyway gets UNSUPPORTED_VERSION with a message.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::*;

use super::s;

/// Requests answered with an error though not advertised in ApiVersions: the versions the
/// codec knows.
pub const ANSWERED_NOT_ADVERTISED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::TxnOffsetCommit, 0, 5),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
];

const NO_SASL: &str = "SASL is not enabled on this broker: connect with PLAINTEXT";
const NO_AUTHORIZER: &str = "No Authorizer is configured on the broker";
const NO_TRANSACTIONS: &str = "transactions are not supported by this broker";
const NO_KIP_848: &str =
    "KIP-848 consumer groups are not supported by this broker: use group.protocol=classic";

const UNSUPPORTED: i16 = ResponseError::UnsupportedVersion.code();

pub fn sasl_handshake() -> SaslHandshakeResponse {
    SaslHandshakeResponse::default()
        .with_error_code(ResponseError::UnsupportedSaslMechanism.code())
        .with_mechanisms(Vec::new())
}

pub fn sasl_authenticate() -> SaslAuthenticateResponse {
    SaslAuthenticateResponse::default()
        .with_error_code(ResponseError::IllegalSaslState.code())
        .with_error_message(Some(s(NO_SASL)))
}

pub fn describe_acls() -> DescribeAclsResponse {
    DescribeAclsResponse::default()
        .with_error_code(ResponseError::SecurityDisabled.code())
        .with_error_message(Some(s(NO_AUTHORIZER)))
}

pub fn create_acls(req: CreateAclsRequest) -> CreateAclsResponse {
    CreateAclsResponse::default().with_results(
        req.creations
            .iter()
            .map(|_| {
                AclCreationResult::default()
                    .with_error_code(ResponseError::SecurityDisabled.code())
                    .with_error_message(Some(s(NO_AUTHORIZER)))
            })
            .collect(),
    )
}

pub fn delete_acls(req: DeleteAclsRequest) -> DeleteAclsResponse {
    DeleteAclsResponse::default().with_filter_results(
        req.filters
            .iter()
            .map(|_| {
                DeleteAclsFilterResult::default()
                    .with_error_code(ResponseError::SecurityDisabled.code())
                    .with_error_message(Some(s(NO_AUTHORIZER)))
            })
            .collect(),
    )
}

pub fn end_txn() -> EndTxnResponse {
    EndTxnResponse::default()
        .with_error_code(UNSUPPORTED)
        .with_producer_id((-1).into())
        .with_producer_epoch(-1)
}

pub fn add_offsets_to_txn() -> AddOffsetsToTxnResponse {
    AddOffsetsToTxnResponse::default().with_error_code(UNSUPPORTED)
}

/// Up to v3 the answer is per partition; from v4 (brokers batching transactions) per request.
pub fn add_partitions_to_txn(req: AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse {
    let topics = |topics: &[add_partitions_to_txn_request::AddPartitionsToTxnTopic]| {
        topics
            .iter()
            .map(|t| {
                AddPartitionsToTxnTopicResult::default()
                    .with_name(t.name.clone())
                    .with_results_by_partition(
                        t.partitions
                            .iter()
                            .map(|&p| {
                                AddPartitionsToTxnPartitionResult::default()
                                    .with_partition_index(p)
                                    .with_partition_error_code(UNSUPPORTED)
                            })
                            .collect(),
                    )
            })
            .collect::<Vec<_>>()
    };
    AddPartitionsToTxnResponse::default()
        .with_error_code(UNSUPPORTED)
        .with_results_by_topic_v3_and_below(topics(&req.v3_and_below_topics))
        .with_results_by_transaction(
            req.transactions
                .iter()
                .map(|t| {
                    AddPartitionsToTxnResult::default()
                        .with_transactional_id(t.transactional_id.clone())
                        .with_topic_results(topics(&t.topics))
                })
                .collect(),
        )
}

pub fn txn_offset_commit(req: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    TxnOffsetCommitResponse::default().with_topics(
        req.topics
            .iter()
            .map(|t| {
                TxnOffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                TxnOffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(UNSUPPORTED)
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

pub fn consumer_group_heartbeat() -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(UNSUPPORTED)
        .with_error_message(Some(s(NO_KIP_848)))
}

pub fn consumer_group_describe(req: ConsumerGroupDescribeRequest) -> ConsumerGroupDescribeResponse {
    ConsumerGroupDescribeResponse::default().with_groups(
        req.group_ids
            .into_iter()
            .map(|group| {
                DescribedGroup::default()
                    .with_group_id(group)
                    .with_error_code(UNSUPPORTED)
                    .with_error_message(Some(s(NO_KIP_848)))
            })
            .collect(),
    )
}

/// For the messages above that have a text to give, the one logged when such a request comes.
pub fn why(key: ApiKey) -> &'static str {
    match key {
        ApiKey::SaslHandshake | ApiKey::SaslAuthenticate => NO_SASL,
        ApiKey::DescribeAcls | ApiKey::CreateAcls | ApiKey::DeleteAcls => NO_AUTHORIZER,
        ApiKey::ConsumerGroupHeartbeat | ApiKey::ConsumerGroupDescribe => NO_KIP_848,
        _ => NO_TRANSACTIONS,
    }
}
