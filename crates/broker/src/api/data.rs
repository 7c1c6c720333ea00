//! Produce, Fetch, ListOffsets and DeleteRecords.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::*;
use tokio::sync::watch;

use super::s;
use crate::Shared;
use crate::log::LogError;
use crate::state::{Partition, Topic};
use crate::topics;

/// Record batch header offsets (magic v2).
const BATCH_HEADER: usize = 61;
const MAGIC_AT: usize = 16;
const ATTRIBUTES_AT: usize = 21;
const TRANSACTIONAL: i16 = 0x10;
const CONTROL: i16 = 0x20;

fn code(e: ResponseError) -> i16 {
    e.code()
}

/// Checks the batches of one produce partition before the log sees them: sizes, magic,
/// no transactional or control batches.
fn check_batches(records: &[u8], max_batch: i64) -> Result<(), (ResponseError, String)> {
    let mut rest = records;
    if rest.is_empty() {
        return Err((ResponseError::CorruptMessage, "no record batch".into()));
    }
    while !rest.is_empty() {
        if rest.len() < BATCH_HEADER {
            return Err((
                ResponseError::CorruptMessage,
                "truncated record batch header".into(),
            ));
        }
        let len = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]) as i64;
        let size = 12 + len;
        if len < (BATCH_HEADER - 12) as i64 || size as usize > rest.len() {
            return Err((
                ResponseError::CorruptMessage,
                format!("record batch length {len} does not fit the request"),
            ));
        }
        if rest[MAGIC_AT] != 2 {
            return Err((
                ResponseError::UnsupportedForMessageFormat,
                format!(
                    "record batch magic {} (only 2 is supported)",
                    rest[MAGIC_AT]
                ),
            ));
        }
        if size > max_batch {
            return Err((
                ResponseError::MessageTooLarge,
                format!(
                    "record batch of {size} bytes is larger than max.message.bytes={max_batch}"
                ),
            ));
        }
        let attributes = i16::from_be_bytes([rest[ATTRIBUTES_AT], rest[ATTRIBUTES_AT + 1]]);
        if attributes & (TRANSACTIONAL | CONTROL) != 0 {
            return Err((
                ResponseError::InvalidRecord,
                "transactional and control batches are not supported".into(),
            ));
        }
        rest = &rest[size as usize..];
    }
    Ok(())
}

fn log_error_code(e: &LogError) -> ResponseError {
    match e {
        LogError::Io(_) => ResponseError::KafkaStorageError,
        LogError::Corrupt(_) => ResponseError::CorruptMessage,
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::OutOfOrderSequence(_) => ResponseError::OutOfOrderSequenceNumber,
        LogError::InvalidProducerEpoch(_) => ResponseError::InvalidProducerEpoch,
    }
}

fn produce_error(index: i32, e: ResponseError, message: String) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(e.code())
        .with_base_offset(-1)
        .with_log_start_offset(-1)
        .with_error_message(Some(s(message)))
}

async fn produce_partition(
    state: &Shared,
    topic: Option<&Arc<Topic>>,
    index: i32,
    records: Option<Bytes>,
    missing_topic: ResponseError,
    acks: i16,
) -> PartitionProduceResponse {
    let Some(topic) = topic else {
        return produce_error(index, missing_topic, "unknown topic".into());
    };
    let Some(partition) = topic.partition(index).cloned() else {
        return produce_error(
            index,
            ResponseError::UnknownTopicOrPartition,
            format!("topic {} has no partition {index}", topic.name),
        );
    };
    let min_insync = topics::min_insync_replicas(&topic.configs);
    if acks == -1 && min_insync > 1 {
        return produce_error(
            index,
            ResponseError::NotEnoughReplicas,
            format!("min.insync.replicas={min_insync} but this single-node broker has 1 replica"),
        );
    }
    let records = records.unwrap_or_default();
    if let Err((e, message)) = check_batches(&records, topics::max_message_bytes(&topic.configs)) {
        return produce_error(index, e, message);
    }
    let p = partition.clone();
    let appended = tokio::task::spawn_blocking(move || {
        let mut log = p.log();
        let r = log.append(records);
        let offsets = (log.start_offset(), log.end_offset());
        (r, offsets)
    })
    .await;
    match appended {
        Ok((Ok(a), (start, end))) => {
            partition.appended.send_replace(end);
            PartitionProduceResponse::default()
                .with_index(index)
                .with_base_offset(a.base_offset)
                .with_log_append_time_ms(a.log_append_time_ms)
                .with_log_start_offset(start)
        }
        Ok((Err(e), _)) => {
            if let LogError::Io(io) = &e {
                state.storage_errors.report(&topic.name, index, io);
            } else {
                tracing::debug!(topic = %topic.name, partition = index, error = %e, "produce refused");
            }
            let message = e.to_string();
            produce_error(index, log_error_code(&e), message)
        }
        Err(e) => produce_error(
            index,
            ResponseError::UnknownServerError,
            format!("append failed: {e}"),
        ),
    }
}

/// `None` for acks=0: no response is sent.
pub async fn produce(state: &Shared, req: ProduceRequest, version: i16) -> Option<ProduceResponse> {
    let acks = req.acks;
    let refuse = if !matches!(acks, -1..=1) {
        Some((ResponseError::InvalidRequiredAcks, format!("acks={acks}")))
    } else if req.transactional_id.is_some() {
        Some((
            ResponseError::TransactionalIdAuthorizationFailed,
            "transactions are not supported".to_string(),
        ))
    } else {
        None
    };
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let (found, missing) = if version >= 13 {
            (
                state.topic_by_id(topic.topic_id),
                ResponseError::UnknownTopicId,
            )
        } else {
            (
                state.topic(topic.name.as_str()),
                ResponseError::UnknownTopicOrPartition,
            )
        };
        let mut partitions = Vec::with_capacity(topic.partition_data.len());
        for p in topic.partition_data {
            let r = match &refuse {
                Some((e, message)) => produce_error(p.index, *e, message.clone()),
                None => {
                    produce_partition(state, found.as_ref(), p.index, p.records, missing, acks)
                        .await
                }
            };
            partitions.push(r);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_topic_id(topic.topic_id)
                .with_partition_responses(partitions),
        );
    }
    if acks == 0 {
        return None;
    }
    Some(ProduceResponse::default().with_responses(responses))
}

struct FetchRound {
    response: FetchResponse,
    bytes: usize,
    error: bool,
}

fn read_round(
    state: &Shared,
    req: &FetchRequest,
    version: i16,
    watch_list: &mut Vec<watch::Receiver<i64>>,
) -> FetchRound {
    let max_bytes = if req.max_bytes <= 0 {
        usize::MAX
    } else {
        req.max_bytes as usize
    };
    let mut total = 0usize;
    let mut error = false;
    let mut responses = Vec::with_capacity(req.topics.len());
    for ft in &req.topics {
        let (topic, missing) = if version >= 13 {
            (
                state.topic_by_id(ft.topic_id),
                ResponseError::UnknownTopicId,
            )
        } else {
            (
                state.topic(ft.topic.as_str()),
                ResponseError::UnknownTopicOrPartition,
            )
        };
        let mut partitions = Vec::with_capacity(ft.partitions.len());
        for fp in &ft.partitions {
            let base = PartitionData::default()
                .with_partition_index(fp.partition)
                .with_aborted_transactions((req.isolation_level == 1).then(Vec::new));
            let Some(p) = topic.as_ref().and_then(|t| t.partition(fp.partition)) else {
                error = true;
                let e = if topic.is_some() {
                    ResponseError::UnknownTopicOrPartition
                } else {
                    missing
                };
                partitions.push(
                    base.with_error_code(e.code())
                        .with_high_watermark(-1)
                        .with_last_stable_offset(-1)
                        .with_log_start_offset(-1),
                );
                continue;
            };
            watch_list.push(p.appended.subscribe());
            let budget = max_bytes.saturating_sub(total);
            let limit = budget.min(fp.partition_max_bytes.max(0) as usize);
            let (data, start, end) = read_partition(p, fp.fetch_offset, limit, total == 0);
            let part = base
                .with_high_watermark(end)
                .with_last_stable_offset(end)
                .with_log_start_offset(start);
            match data {
                Ok(records) => {
                    total += records.len();
                    partitions.push(part.with_records(Some(records)));
                }
                Err(e) => {
                    error = true;
                    partitions.push(part.with_error_code(e));
                }
            }
        }
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(ft.topic.clone())
                .with_topic_id(ft.topic_id)
                .with_partitions(partitions),
        );
    }
    FetchRound {
        response: FetchResponse::default().with_responses(responses),
        bytes: total,
        error,
    }
}

/// Records from `offset` up to `limit` bytes; when `first`, at least one batch whatever its
/// size (as Kafka, so that a consumer can always make progress).
fn read_partition(
    p: &Partition,
    offset: i64,
    limit: usize,
    first: bool,
) -> (Result<Bytes, i16>, i64, i64) {
    let log = p.log();
    let (start, end) = (log.start_offset(), log.end_offset());
    if offset < start || offset > end {
        return (Err(code(ResponseError::OffsetOutOfRange)), start, end);
    }
    if offset == end || (limit == 0 && !first) {
        return (Ok(Bytes::new()), start, end);
    }
    match log.read(offset, limit.max(1)) {
        Ok(records) if records.len() > limit && !first => (Ok(Bytes::new()), start, end),
        Ok(records) => (Ok(records), start, end),
        Err(e) => (Err(log_error_code(&e).code()), start, end),
    }
}

/// Answers when `min_bytes` are there, at `max_wait_ms`, or at once on an error.
pub async fn fetch(state: &Shared, req: FetchRequest, version: i16) -> FetchResponse {
    if version >= 7 && req.session_id != 0 {
        // This broker never creates fetch sessions (it answers session id 0).
        return FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code());
    }
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let min_bytes = req.min_bytes.max(0) as usize;
    let mut shutdown = state.shutdown.clone();
    let req = Arc::new(req);
    loop {
        // Log reads may touch the disk: off the async workers.
        let (st, rq) = (state.clone(), req.clone());
        let Ok((round, mut watch_list)) = tokio::task::spawn_blocking(move || {
            let mut watch_list = Vec::new();
            let round = read_round(&st, &rq, version, &mut watch_list);
            (round, watch_list)
        })
        .await
        else {
            return FetchResponse::default()
                .with_error_code(ResponseError::UnknownServerError.code());
        };
        if round.bytes >= min_bytes
            || round.bytes > 0 && min_bytes == 0
            || round.error
            || watch_list.is_empty()
            || tokio::time::Instant::now() >= deadline
            || state.is_shutting_down()
        {
            return round.response;
        }
        let changes: Vec<Pin<Box<dyn Future<Output = _> + Send>>> = watch_list
            .iter_mut()
            .map(|rx| Box::pin(rx.changed()) as Pin<Box<dyn Future<Output = _> + Send>>)
            .collect();
        tokio::select! {
            _ = futures::future::select_all(changes) => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = crate::stopped(&mut shutdown) => {}
        }
    }
}

pub async fn list_offsets(
    state: &Shared,
    req: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let st = state.clone();
    tokio::task::spawn_blocking(move || list_offsets_blocking(&st, req, version))
        .await
        .unwrap_or_default()
}

fn list_offsets_blocking(
    state: &Shared,
    req: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = state.topic(t.name.as_str());
            let partitions = t
                .partitions
                .into_iter()
                .map(|lp| {
                    let base = ListOffsetsPartitionResponse::default()
                        .with_partition_index(lp.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1);
                    let Some(p) = topic.as_ref().and_then(|t| t.partition(lp.partition_index))
                    else {
                        return base.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let log = p.log();
                    let found: Result<Option<(i64, i64)>, LogError> = match lp.timestamp {
                        // Latest.
                        -1 => Ok(Some((log.end_offset(), -1))),
                        // Earliest, earliest local.
                        -2 | -4 => Ok(Some((log.start_offset(), -1))),
                        // Max timestamp.
                        -3 => log.max_timestamp(),
                        ts if ts >= 0 => log.offset_for_time(ts),
                        // Tiered-storage queries: there is no tiered storage.
                        _ => Ok(None),
                    };
                    match found {
                        Ok(Some((offset, timestamp))) => base
                            .with_offset(offset)
                            .with_timestamp(timestamp)
                            .with_leader_epoch(if version >= 4 { 0 } else { -1 }),
                        Ok(None) => base,
                        Err(e) => base.with_error_code(log_error_code(&e).code()),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

pub async fn delete_records(
    state: &Shared,
    req: DeleteRecordsRequest,
    _version: i16,
) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let topic = state.topic(t.name.as_str());
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for dp in t.partitions {
            let base = DeleteRecordsPartitionResult::default()
                .with_partition_index(dp.partition_index)
                .with_low_watermark(-1);
            let Some(p) = topic
                .as_ref()
                .and_then(|t| t.partition(dp.partition_index))
                .cloned()
            else {
                partitions
                    .push(base.with_error_code(ResponseError::UnknownTopicOrPartition.code()));
                continue;
            };
            let offset = dp.offset;
            let done = tokio::task::spawn_blocking(move || {
                let mut log = p.log();
                let end = log.end_offset();
                // -1: up to the high watermark.
                let target = if offset == -1 { end } else { offset };
                if target < 0 || target > end {
                    return Err(ResponseError::OffsetOutOfRange);
                }
                log.delete_records_before(target)
                    .map_err(|e| log_error_code(&e))
            })
            .await
            .unwrap_or(Err(ResponseError::UnknownServerError));
            partitions.push(match done {
                Ok(low) => base.with_low_watermark(low),
                Err(e) => base.with_error_code(e.code()),
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

/// Every partition has had one leader epoch, 0, since offset 0.
pub fn offset_for_leader_epoch(
    state: &Shared,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    use kafka_protocol::messages::offset_for_leader_epoch_response::{
        EpochEndOffset, OffsetForLeaderTopicResult,
    };
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let topic = state.topic(t.topic.as_str());
            let partitions = t
                .partitions
                .into_iter()
                .map(|op| {
                    let base = EpochEndOffset::default().with_partition(op.partition);
                    let Some(p) = topic.as_ref().and_then(|t| t.partition(op.partition)) else {
                        return base.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    if op.current_leader_epoch > 0 {
                        return base.with_error_code(ResponseError::UnknownLeaderEpoch.code());
                    }
                    if op.leader_epoch == 0 {
                        base.with_leader_epoch(0)
                            .with_end_offset(p.log().end_offset())
                    } else {
                        // Undefined epoch: leader epoch -1, end offset -1.
                        base
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(len_field: i32, magic: u8, attributes: i16, total: usize) -> Vec<u8> {
        let mut b = vec![0u8; total];
        b[8..12].copy_from_slice(&len_field.to_be_bytes());
        b[MAGIC_AT] = magic;
        b[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
        b
    }

    #[test]
    fn well_formed_batches_pass() {
        let mut two = batch(61, 2, 0, 73);
        two.extend(batch(49, 2, 0, 61));
        assert_eq!(check_batches(&two, 1000), Ok(()));
    }

    #[test]
    fn bad_batches_are_refused_with_kafka_errors() {
        let e = |r: Result<(), (ResponseError, String)>| r.unwrap_err().0;
        assert_eq!(e(check_batches(&[], 1000)), ResponseError::CorruptMessage);
        assert_eq!(
            e(check_batches(&batch(100, 2, 0, 73), 1000)),
            ResponseError::CorruptMessage
        );
        assert_eq!(
            e(check_batches(&batch(61, 1, 0, 73), 1000)),
            ResponseError::UnsupportedForMessageFormat
        );
        assert_eq!(
            e(check_batches(&batch(61, 2, 0, 73), 72)),
            ResponseError::MessageTooLarge
        );
        assert_eq!(
            e(check_batches(&batch(61, 2, TRANSACTIONAL, 73), 1000)),
            ResponseError::InvalidRecord
        );
    }
}
