use std::sync::Arc;
use std::time::{Duration, Instant};

use streamhub_model::api::{Event, KafkaFigures};
use streamhub_store::{EventBus, Store};
use tokio::sync::{Mutex, Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

use crate::streams::{StreamLimits, StreamSlots};
use crate::topic_lists::TopicLists;
use crate::{ClusterInfo, Secret};

/// Password hashing takes about 19 MiB each: few at a time keeps memory small.
const CONCURRENT_HASHES: usize = 2;
/// Kafka figures in statistics are reused this long, so polling stats stays cheap.
const KAFKA_FIGURES_TTL: Duration = Duration::from_secs(5);

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub store: Arc<dyn Store>,
    /// The store's bus: with PostgreSQL it also carries other instances' events.
    pub events: EventBus,
    pub producer_secret: Option<Secret>,
    pub token_ttl: Duration,
    pub secure_cookies: bool,
    pub cluster: Option<Arc<dyn ClusterInfo>>,
    /// Open event streams and tails, per principal and in all.
    pub streams: Arc<StreamSlots>,
    pub hashing: Semaphore,
    /// Cancelled when the service stops, which ends open event streams.
    pub shutdown: CancellationToken,
    pub kafka_stats: Mutex<Option<(Instant, KafkaFigures)>>,
    pub topic_lists: TopicLists,
    /// Bearer token that may read `/metrics` besides admins' tokens.
    pub metrics_token: Option<Secret>,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        producer_secret: Option<Secret>,
        token_ttl: Duration,
        cluster: Option<Arc<dyn ClusterInfo>>,
    ) -> Self {
        crate::auth::give_large_blocks_back();
        let events = store.events().clone();
        AppState {
            inner: Arc::new(Inner {
                store,
                events,
                producer_secret,
                token_ttl,
                secure_cookies: false,
                cluster,
                streams: StreamSlots::new(StreamLimits::default()),
                hashing: Semaphore::new(CONCURRENT_HASHES),
                shutdown: CancellationToken::new(),
                kafka_stats: Mutex::new(None),
                topic_lists: TopicLists::default(),
                metrics_token: None,
            }),
        }
    }

    /// Marks session cookies `Secure`; call before sharing the state.
    pub fn with_secure_cookies(mut self, secure: bool) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.secure_cookies = secure;
        }
        self
    }

    /// Bounds open event streams and tails by `limits`; call before sharing the state.
    pub fn with_stream_limits(mut self, limits: StreamLimits) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.streams = StreamSlots::new(limits);
        }
        self
    }

    /// Lets `token` read `/metrics`; call before sharing the state.
    pub fn with_metrics_token(mut self, token: Option<Secret>) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.metrics_token = token;
        }
        self
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Live events, as `GET /api/events` streams them: this instance's and those of
    /// other instances sharing the store.
    pub fn subscribe_events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Ends the open event streams (graceful shutdown waits for them otherwise).
    pub fn close_event_streams(&self) {
        self.inner.shutdown.cancel();
    }

    pub(crate) fn kafka_off() -> KafkaFigures {
        KafkaFigures {
            enabled: false,
            note: Some(
                "Kafka figures are off: start the admin service with --bootstrap-servers".into(),
            ),
            total_messages: None,
        }
    }

    /// Message totals of `topics` summed, or why there are none.
    pub(crate) async fn kafka_figures(&self, topics: &[String]) -> KafkaFigures {
        let Some(cluster) = &self.inner.cluster else {
            return Self::kafka_off();
        };
        match tokio::time::timeout(Duration::from_secs(3), cluster.topic_message_totals(topics))
            .await
        {
            Ok(Ok(totals)) => KafkaFigures {
                enabled: true,
                note: None,
                total_messages: Some(totals.values().sum()),
            },
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read message totals from Kafka");
                KafkaFigures {
                    enabled: false,
                    note: Some("Kafka did not answer; see the admin service log".into()),
                    total_messages: None,
                }
            }
            Err(_) => KafkaFigures {
                enabled: false,
                note: Some("Kafka did not answer within 3 seconds".into()),
                total_messages: None,
            },
        }
    }

    pub(crate) fn has_cluster(&self) -> bool {
        self.inner.cluster.is_some()
    }

    pub(crate) async fn cached_kafka_stats(
        &self,
        compute: impl std::future::Future<Output = KafkaFigures>,
    ) -> KafkaFigures {
        let mut cached = self.inner.kafka_stats.lock().await;
        if let Some((at, figures)) = &*cached
            && at.elapsed() < KAFKA_FIGURES_TTL
        {
            return figures.clone();
        }
        let figures = compute.await;
        *cached = Some((Instant::now(), figures.clone()));
        figures
    }
}
