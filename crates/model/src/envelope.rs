use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::DataType;

/// The JSON value of every message streamhub publishes. The key is the entity id.
///
/// `seq` increases by one per producer and topic, so a consumer can prove it saw
/// every message: a gap in `(producer_id, seq)` is a lost message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub topic: String,
    pub data_type: DataType,
    pub timestamp: DateTime<Utc>,
    pub producer_id: String,
    pub seq: u64,
    pub payload: serde_json::Value,
}

impl Envelope {
    /// Parses a message value; `None` when it is not a streamhub envelope.
    pub fn parse(bytes: &[u8]) -> Option<Envelope> {
        serde_json::from_slice(bytes).ok()
    }
}
