//! Fan-out of live [`Event`]s to every service instance that shares one store.
//!
//! The store announces each change it commits: the event is delivered to this process's
//! subscribers right after the commit, without a round trip to the database. An engine
//! shared by several processes (PostgreSQL) also announces it to the other instances inside
//! the change's own transaction (a NOTIFY is delivered when its transaction commits, and
//! never if it rolls back); each instance feeds what it hears into its local channel. So
//! every subscriber sees each committed change once, and an instance that dies right after
//! a commit has still told the others. When this instance may have missed some of the
//! others' (its listening connection was lost), it says so through [`EventBus::resyncs`],
//! so that clients reload what they show instead of trusting a stream with a hole in it.

use streamhub_model::Action;
use streamhub_model::api::{Event, Subscription, Topic};
use tokio::sync::{broadcast, watch};

/// Events a slow subscriber may fall behind by before it misses some.
const LOCAL_BUFFER: usize = 1024;

#[derive(Clone, Debug)]
pub struct EventBus {
    local: broadcast::Sender<Event>,
    /// Counts the times events of other instances may have been missed.
    gaps: watch::Sender<u64>,
}

impl Default for EventBus {
    fn default() -> Self {
        let (local, _) = broadcast::channel(LOCAL_BUFFER);
        let (gaps, _) = watch::channel(0);
        EventBus { local, gaps }
    }
}

impl EventBus {
    /// Live events, from this instance and (when the engine is shared) from the others.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.local.subscribe()
    }

    /// Changes each time events may have been missed since: the receiver sees every
    /// change after it subscribed (`changed()`), several close together as one.
    pub fn resyncs(&self) -> watch::Receiver<u64> {
        self.gaps.subscribe()
    }

    /// Tells subscribers that events may have been missed: they should reload.
    pub(crate) fn resync(&self) {
        self.gaps.send_modify(|n| *n += 1);
    }

    /// Sends an event to this process's subscribers.
    pub(crate) fn publish(&self, event: Event) {
        // No receiver is not an error: nobody is watching.
        let _ = self.local.send(event);
    }
}

/// What a committed change announces; both engines build their events here.
pub(crate) fn topic_event(action: Option<Action>, topic: &Topic) -> Event {
    Event::Topic {
        action,
        topic: topic.clone(),
    }
}

pub(crate) fn subscription_event(subscribed: bool, subscription: &Subscription) -> Event {
    Event::Subscription {
        subscribed,
        subscription: subscription.clone(),
    }
}
