//! Fan-out of live [`Event`]s to every service instance that shares one store.
//!
//! Subscribers of this process get an event as soon as it is published, without a round
//! trip to the database. An engine shared by several processes (PostgreSQL) also hands
//! each event to a relay that passes it to the other instances, which feed it into their
//! own local channel: every subscriber sees each event once.

use streamhub_model::api::Event;
use tokio::sync::{broadcast, mpsc};

/// Events a slow subscriber may fall behind by before it misses some.
const LOCAL_BUFFER: usize = 1024;

#[derive(Clone, Debug)]
pub struct EventBus {
    local: broadcast::Sender<Event>,
    relay: Option<mpsc::UnboundedSender<Event>>,
}

impl EventBus {
    /// A bus for this process only.
    pub fn local() -> Self {
        let (local, _) = broadcast::channel(LOCAL_BUFFER);
        EventBus { local, relay: None }
    }

    /// A bus that also hands every published event to `relay`, for other processes.
    pub(crate) fn relayed(relay: mpsc::UnboundedSender<Event>) -> Self {
        EventBus {
            relay: Some(relay),
            ..Self::local()
        }
    }

    /// Live events, from this instance and (when the engine relays) from the others.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.local.subscribe()
    }

    /// Sends an event to every subscriber; call after the change committed.
    pub fn publish(&self, event: Event) {
        if let Some(relay) = &self.relay {
            // Closed only while the store shuts down: other instances miss nothing they
            // would have been told about the data, which stays in the store.
            let _ = relay.send(event.clone());
        }
        self.deliver_locally(event);
    }

    /// Feeds an event that another instance published to this instance's subscribers.
    pub(crate) fn deliver_locally(&self, event: Event) {
        // No receiver is not an error: nobody is watching.
        let _ = self.local.send(event);
    }
}
