use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::DataType;

/// The JSON value of every message streamhub publishes. The key is the entity id.
///
/// `seq` increases by one per producer and topic, so a consumer can prove it saw
/// every message: a gap in `(producer_id, seq)` is a lost message.
///
/// The fields are written once, here; how a side holds them is its choice: the
/// producer serializes borrowed strings and a preformatted time straight from its
/// generator, the consumer checks a message in place without allocating, and
/// everything else uses the owned [`Envelope`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnvelopeOf<Text, Time, Payload> {
    pub topic: Text,
    pub data_type: DataType,
    /// RFC 3339 UTC; the producer writes milliseconds.
    pub timestamp: Time,
    pub producer_id: Text,
    pub seq: u64,
    pub payload: Payload,
}

/// An envelope as owned values.
pub type Envelope = EnvelopeOf<String, DateTime<Utc>, serde_json::Value>;

impl Envelope {
    /// Parses a message value; `None` when it is not a streamhub envelope.
    pub fn parse(bytes: &[u8]) -> Option<Envelope> {
        serde_json::from_slice(bytes).ok()
    }
}
