//! The Kafka producer the topics share, and what happens when librdkafka declares it
//! unusable.
//!
//! librdkafka raises a fatal error when an idempotent producer can no longer keep its
//! promises (a sequence the broker refuses, a producer id fenced ...). From then on every
//! send of that instance fails with `__FATAL`: retrying it publishes nothing, forever. So
//! the client context logs librdkafka's own reason at once, and the first topic whose send
//! fails that way replaces the instance with a new one ([`SharedProducer::rebuild`]); the
//! other topics take the new one at their next send. `seq` continues in this process;
//! messages the old instance still held fail, and their `seq` stays missing, as for any
//! failed delivery.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use streamhub_kafka::rdkafka::client::ClientContext;
use streamhub_kafka::rdkafka::error::{KafkaError as RdKafkaError, RDKafkaErrorCode};
use streamhub_kafka::rdkafka::producer::{FutureProducer, Producer as _};
use streamhub_kafka::{KafkaConfig, KafkaError};

use crate::publish::SendError;

/// The producer type of streamhub's publishers: librdkafka's errors reach [`PublishContext`].
pub type Producer = FutureProducer<PublishContext>;

/// Receives librdkafka's global errors: a fatal one is logged as an error with librdkafka's
/// reason; others (a broker unreachable, many times a second) stay at debug level under
/// the `librdkafka` target, which the default log filter turns off. The fatal error stays
/// readable from the client (`client().fatal_error()`).
#[derive(Debug, Default)]
pub struct PublishContext;

impl ClientContext for PublishContext {
    fn error(&self, error: RdKafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::Fatal) {
            tracing::error!(
                reason,
                "librdkafka raised a fatal error: this Kafka producer instance cannot publish any more"
            );
        } else {
            tracing::debug!(target: "librdkafka", %error, reason, "librdkafka error");
        }
    }
}

/// A producer with [`PublishContext`] and streamhub's producer settings.
pub fn create(config: &KafkaConfig) -> Result<Producer, KafkaError> {
    config.producer_with_context(PublishContext)
}

/// The producer every topic of the long-running producer publishes with, replaced after
/// a fatal error. Cloning shares it.
#[derive(Clone)]
pub struct SharedProducer {
    config: KafkaConfig,
    current: Arc<Mutex<(Producer, u64)>>,
    /// Copy of the current generation, read without the lock at every send.
    generation: Arc<AtomicU64>,
}

impl SharedProducer {
    pub fn new(config: &KafkaConfig) -> Result<Self, KafkaError> {
        Ok(Self {
            config: config.clone(),
            current: Arc::new(Mutex::new((create(config)?, 0))),
            generation: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The current producer and its generation (0 for the first, one more per rebuild).
    pub fn current(&self) -> (Producer, u64) {
        let current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        (current.0.clone(), current.1)
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Replaces generation `broken` with a new producer, unless another topic did already;
    /// returns the current producer either way.
    pub fn rebuild(&self, broken: u64) -> Result<(Producer, u64), KafkaError> {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if current.1 == broken {
            let reason = current.0.client().fatal_error().map(|(_, r)| r);
            let fresh = create(&self.config)?;
            let old = std::mem::replace(&mut current.0, fresh);
            current.1 += 1;
            self.generation.store(current.1, Ordering::Release);
            tracing::warn!(
                generation = current.1,
                reason = reason.as_deref().unwrap_or(""),
                "replaced the Kafka producer after a fatal error; publishing continues"
            );
            // Dropping a producer purges and flushes it, which blocks: not on this thread.
            drop_off_thread(old);
        }
        Ok((current.0.clone(), current.1))
    }
}

/// Drops a producer on a blocking thread: its drop waits for librdkafka.
pub fn drop_off_thread(producer: Producer) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn_blocking(move || drop(producer));
        }
        Err(_) => drop(producer),
    }
}

/// What a publishing loop does after a send librdkafka refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// The producer is fine (a full queue elsewhere, a message too large ...): retry after
    /// the loop's backoff.
    Retry,
    /// The producer is unusable: replace it, then retry after the loop's backoff.
    Rebuild,
}

/// The decision after a refused send: a fatal error, in the refusal or raised by
/// librdkafka meanwhile, needs a new producer; anything else is retried.
pub fn recovery(refused: &SendError, fatal_raised: bool) -> Recovery {
    if refused.is_fatal() || fatal_raised {
        Recovery::Rebuild
    } else {
        Recovery::Retry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fatal_error_rebuilds_the_producer_others_are_retried() {
        let refused = |code| SendError {
            topic: "t".into(),
            source: RdKafkaError::MessageProduction(code),
        };
        assert_eq!(
            recovery(&refused(RDKafkaErrorCode::Fatal), false),
            Recovery::Rebuild
        );
        let too_large = refused(RDKafkaErrorCode::MessageSizeTooLarge);
        assert_eq!(recovery(&too_large, false), Recovery::Retry);
        // librdkafka raised it first: the refusal may name another cause.
        assert_eq!(recovery(&too_large, true), Recovery::Rebuild);
        assert_eq!(
            recovery(&refused(RDKafkaErrorCode::UnknownTopicOrPartition), false),
            Recovery::Retry
        );
    }
}
