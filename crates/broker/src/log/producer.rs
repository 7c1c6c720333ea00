//! Idempotent-producer state: per producer id, the epoch and the last few batches'
//! sequence ranges and offsets, used to detect duplicates and sequence gaps.

use std::collections::{HashMap, VecDeque};

use super::LogError;
use super::batch::{BatchHeader, increment_sequence};

/// How many recent batches are remembered per producer (Kafka's
/// `max.in.flight.requests.per.connection` limit for idempotence).
pub(crate) const BATCHES_PER_PRODUCER: usize = 5;

/// One remembered batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMeta>,
}

/// What the producer state says about a batch about to be appended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Check {
    /// Not idempotent (no producer id or no sequence), or the next batch in sequence.
    Append,
    /// Already in the log at these offsets.
    Duplicate(BatchMeta),
}

#[derive(Clone, Debug, Default)]
pub(crate) struct ProducerState {
    producers: HashMap<i64, ProducerEntry>,
}

/// Whether a batch takes part in idempotence checks: a producer id and a sequence.
/// Control batches (transaction markers) carry no sequence and are left alone.
fn is_idempotent(h: &BatchHeader) -> bool {
    h.producer_id >= 0 && h.base_sequence >= 0
}

impl ProducerState {
    /// Checks a batch against the state without changing it.
    pub fn check(&self, h: &BatchHeader) -> Result<Check, LogError> {
        if !is_idempotent(h) {
            return Ok(Check::Append);
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            // Unknown producer id: any first sequence is accepted.
            return Ok(Check::Append);
        };
        if h.producer_epoch < entry.epoch {
            return Err(LogError::InvalidProducerEpoch(format!(
                "producer {} epoch {} is older than the current epoch {}",
                h.producer_id, h.producer_epoch, entry.epoch
            )));
        }
        if h.producer_epoch > entry.epoch {
            if h.base_sequence != 0 {
                return Err(LogError::OutOfOrderSequence(format!(
                    "producer {} new epoch {} must start at sequence 0, got {}",
                    h.producer_id, h.producer_epoch, h.base_sequence
                )));
            }
            return Ok(Check::Append);
        }
        let last_seq = h.last_sequence();
        if let Some(dup) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
        {
            return Ok(Check::Duplicate(*dup));
        }
        match entry.batches.back() {
            None => Ok(Check::Append),
            Some(last) if h.base_sequence == increment_sequence(last.last_seq, 1) => {
                Ok(Check::Append)
            }
            Some(last) => Err(LogError::OutOfOrderSequence(format!(
                "producer {} epoch {}: expected sequence {}, got {}",
                h.producer_id,
                h.producer_epoch,
                increment_sequence(last.last_seq, 1),
                h.base_sequence
            ))),
        }
    }

    /// Records a batch that is now in the log at `base_offset` (its header's offsets may
    /// still be the producer's).
    pub fn record(&mut self, h: &BatchHeader, base_offset: i64) {
        if !is_idempotent(h) {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch > entry.epoch || entry.batches.is_empty() {
            if h.producer_epoch != entry.epoch {
                entry.batches.clear();
            }
            entry.epoch = h.producer_epoch;
        } else if h.producer_epoch < entry.epoch {
            return;
        }
        entry.batches.push_back(BatchMeta {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            base_offset,
            last_offset: base_offset + i64::from(h.last_offset_delta),
        });
        while entry.batches.len() > BATCHES_PER_PRODUCER {
            entry.batches.pop_front();
        }
    }

    /// A copy of the state of just the given producer ids.
    pub fn subset(&self, ids: impl Iterator<Item = i64>) -> ProducerState {
        let mut out = ProducerState::default();
        for id in ids {
            if let Some(entry) = self.producers.get(&id) {
                out.producers.insert(id, entry.clone());
            }
        }
        out
    }

    /// Takes over every producer's state from `other`.
    pub fn merge(&mut self, other: ProducerState) {
        self.producers.extend(other.producers);
    }
}
