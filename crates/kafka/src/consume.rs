use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError as RdError, RDKafkaErrorCode};

use crate::error::KafkaError;

/// Commits the offsets stored with `store_offset_from_message` now and waits for the broker's
/// answer. Call it before dropping a consumer so that a restart resumes exactly after the last
/// processed message. Nothing new to commit (the background commit already did) is success.
pub fn commit_stored_offsets<C, X>(consumer: &C) -> Result<(), KafkaError>
where
    C: Consumer<X>,
    X: ConsumerContext,
{
    match consumer.commit_consumer_state(CommitMode::Sync) {
        Ok(()) => Ok(()),
        Err(RdError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => Ok(()),
        Err(e) => Err(KafkaError::Client(e)),
    }
}
