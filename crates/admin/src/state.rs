use std::sync::Arc;
use std::time::Duration;

use streamhub_model::api::{Event, KafkaFigures};
use streamhub_store::{EventBus, Store};
use tokio::sync::{Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

use crate::access::{AccessService, KafkaAccess};
use crate::figures::FiguresService;
use crate::streams::{StreamLimits, StreamSlots};
use crate::topic_lists::TopicLists;
use crate::{ClusterInfo, Secret};

/// Password hashing takes about 19 MiB each: few at a time keeps memory small.
const CONCURRENT_HASHES: usize = 2;

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
    pub topic_lists: TopicLists,
    /// Kafka figures and their history, sampled until `shutdown`.
    pub figures: Arc<FiguresService>,
    /// Bearer token that may read `/metrics` besides admins' tokens.
    pub metrics_token: Option<Secret>,
    /// Kafka credentials and ACLs, when the service manages them.
    pub access: Option<Arc<AccessService>>,
}

impl AppState {
    /// Starts sampling Kafka figures when there is a cluster: call within a Tokio runtime.
    pub fn new(
        store: Arc<dyn Store>,
        producer_secret: Option<Secret>,
        token_ttl: Duration,
        cluster: Option<Arc<dyn ClusterInfo>>,
    ) -> Self {
        crate::auth::give_large_blocks_back();
        let events = store.events().clone();
        let shutdown = CancellationToken::new();
        let figures = FiguresService::new(store.clone(), cluster.clone());
        figures.start(shutdown.clone());
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
                shutdown,
                topic_lists: TopicLists::default(),
                figures,
                metrics_token: None,
                access: None,
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

    /// Manages the broker's credentials and ACLs through `kafka`, reconciling until the
    /// service stops; call before sharing the state.
    pub fn with_kafka_access(mut self, kafka: Option<Arc<dyn KafkaAccess>>) -> Self {
        if let (Some(inner), Some(kafka)) = (Arc::get_mut(&mut self.inner), kafka) {
            let access = AccessService::new(inner.store.clone(), kafka);
            access.start(inner.shutdown.clone());
            inner.access = Some(access);
        }
        self
    }

    /// Brings the broker's ACLs in line with a change just made, before it is answered:
    /// once a subscribe, unsubscribe or lifecycle request returns, the broker enforces it.
    /// A broker that does not answer is left to the reconciler's next rounds.
    pub async fn sync_access(&self) {
        if let Some(access) = self.access()
            && let Err(e) = access.reconcile().await
        {
            tracing::warn!(error = %e, "the broker's ACLs lag behind this change; retrying in the background");
            access.nudge();
        }
    }

    /// Access management, when the service manages Kafka credentials and ACLs.
    pub fn access(&self) -> Option<&Arc<AccessService>> {
        self.inner.access.as_ref()
    }

    /// The Kafka figures of this service.
    pub fn figures(&self) -> &Arc<FiguresService> {
        &self.inner.figures
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

    pub(crate) fn has_cluster(&self) -> bool {
        self.inner.cluster.is_some()
    }

    /// Message totals of every topic in Kafka summed, or of the one named, from the figures
    /// service's round.
    pub(crate) async fn kafka_stats(&self, only: Option<&str>) -> KafkaFigures {
        match self.inner.figures.current().await {
            Ok(None) => Self::kafka_off(),
            Ok(Some(round)) => {
                let mut figures = crate::figures::TopicFigures::of(&round);
                if let Some(name) = only {
                    figures.topics.retain(|t| t.topic_name == name);
                    if figures.enabled && figures.topics.is_empty() {
                        figures.note = Some(format!("Kafka has no topic named {name}"));
                    }
                }
                KafkaFigures {
                    enabled: figures.enabled,
                    total_messages: (figures.enabled && figures.note.is_none())
                        .then(|| figures.topics.iter().map(|t| t.total_messages).sum()),
                    note: figures.note,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot list topics for Kafka figures");
                KafkaFigures {
                    enabled: false,
                    note: Some("the topics could not be listed; see the admin service log".into()),
                    total_messages: None,
                }
            }
        }
    }
}
