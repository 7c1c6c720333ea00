//! Subscriptions that bind (`--kafka-security scram`): the broker's ACLs are kept equal to
//! what streamhub's state grants ([`streamhub_model::access::granted`]), and each user's
//! Kafka credentials are managed here.
//!
//! One reconciler per service instance: it compares the broker's ACLs with the grants at
//! start, after every change of topics or subscriptions (so an unsubscribe is refused by
//! the broker within the reconcile's round trip), and every [`RECONCILE_INTERVAL`]. An ACL
//! the reconciler did not make appearing, or one it made disappearing, is a drift: written
//! to the audit log, then corrected. SCRAM users the store no longer has are removed.

mod http;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use streamhub_model::access::{self, Acl, SubscriptionState, TopicState};
use streamhub_model::{Role, Secret, TopicStatus};
use streamhub_store::{AuditNote, Store, SubscriptionFilter, TopicFilter, UserFilter};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use http::routes;

/// How often the broker is compared with the store when nothing changed.
pub const RECONCILE_INTERVAL: Duration = Duration::from_secs(30);
/// The audit log's actor of the reconciler's notes.
const ACTOR: &str = "kafka-access";

/// The Kafka admin calls access management needs. Implemented over the Kafka protocol by
/// the binary; errors are one line, without secrets.
#[async_trait]
pub trait KafkaAccess: Send + Sync {
    async fn acls(&self) -> Result<Vec<Acl>, String>;
    async fn create_acls(&self, acls: &[Acl]) -> Result<(), String>;
    async fn delete_acls(&self, acls: &[Acl]) -> Result<(), String>;
    /// Sets (creates or replaces) the user's SCRAM credential.
    async fn set_password(&self, user: &str, password: &Secret) -> Result<(), String>;
    /// Removes every SCRAM credential of the user; none is no error.
    async fn delete_user(&self, user: &str) -> Result<(), String>;
    /// Users that have SCRAM credentials.
    async fn users(&self) -> Result<Vec<String>, String>;
    /// How a user reaches the broker with those credentials.
    fn connection(&self) -> KafkaConnection;
}

/// What a client needs beside a username and password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct KafkaConnection {
    pub bootstrap_servers: String,
    /// librdkafka's `security.protocol`: `sasl_plaintext` or `sasl_ssl`.
    pub security_protocol: String,
    /// `SCRAM-SHA-512`.
    pub sasl_mechanism: String,
}

/// What one reconcile found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub created: usize,
    pub deleted: usize,
    /// Of those, the ones a hand on the broker made necessary.
    pub drifted: usize,
    pub users_removed: usize,
}

/// Keeps the broker's ACLs and credentials in line with the store.
pub struct AccessService {
    store: Arc<dyn Store>,
    kafka: Arc<dyn KafkaAccess>,
    /// The managed ACLs the broker held after the last reconcile: what this service made
    /// or saw agree with the grants. `None` before the first.
    applied: Mutex<Option<BTreeSet<Acl>>>,
    /// One reconcile at a time.
    running: tokio::sync::Mutex<()>,
    wake: Notify,
}

impl AccessService {
    pub fn new(store: Arc<dyn Store>, kafka: Arc<dyn KafkaAccess>) -> Arc<AccessService> {
        Arc::new(AccessService {
            store,
            kafka,
            applied: Mutex::new(None),
            running: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
        })
    }

    pub fn kafka(&self) -> &Arc<dyn KafkaAccess> {
        &self.kafka
    }

    /// Reconciles now and after every store event and interval, until `shutdown`.
    pub fn start(self: &Arc<Self>, shutdown: CancellationToken) {
        let service = Arc::clone(self);
        let mut events = self.store.events().subscribe();
        tokio::spawn(async move {
            loop {
                if let Err(e) = service.reconcile().await {
                    tracing::warn!(error = %e, retry_in = ?RECONCILE_INTERVAL, "cannot reconcile the broker's ACLs");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = service.wake.notified() => {}
                    // A lagged receiver only means more changed: reconcile all the same.
                    _ = events.recv() => {}
                    _ = tokio::time::sleep(RECONCILE_INTERVAL) => {}
                }
            }
        });
    }

    /// Asks for a reconcile soon (a user was deleted, say).
    pub fn nudge(&self) {
        self.wake.notify_one();
    }

    /// Brings the broker in line with the store once.
    pub async fn reconcile(&self) -> Result<Reconciled, String> {
        let _one = self.running.lock().await;
        let store_error = |e: streamhub_store::StoreError| format!("store: {e}");
        let topics = self
            .store
            .topics(&TopicFilter::default())
            .await
            .map_err(store_error)?;
        let subscriptions = self
            .store
            .subscriptions(&SubscriptionFilter::default())
            .await
            .map_err(store_error)?;
        let users = self
            .store
            .users(&UserFilter::default())
            .await
            .map_err(store_error)?;
        let granted = access::granted(
            topics.iter().map(|t| TopicState {
                name: &t.topic_name,
                status: t.status,
            }),
            subscriptions.iter().map(|s| SubscriptionState {
                user: &s.user_id,
                topic: &s.topic_name,
            }),
            users
                .iter()
                .filter(|u| u.role == Role::Admin)
                .map(|u| u.username.as_str()),
        );
        let known_topics: BTreeSet<&str> = topics.iter().map(|t| t.topic_name.as_str()).collect();
        let usernames: BTreeSet<&str> = users.iter().map(|u| u.username.as_str()).collect();
        let on_broker: BTreeSet<Acl> = self
            .kafka
            .acls()
            .await?
            .into_iter()
            .filter(|a| access::is_managed(a, &known_topics, &usernames))
            .collect();
        let missing: Vec<Acl> = granted.difference(&on_broker).cloned().collect();
        let extra: Vec<Acl> = on_broker.difference(&granted).cloned().collect();

        // A drift is a difference the broker's own history explains, not the store's: an
        // ACL granted that was there and went, or one appearing that nobody granted. At
        // the first reconcile every difference counts, as no change happens meanwhile.
        let applied = self
            .applied
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let removed_by_hand: Vec<&Acl> = missing
            .iter()
            .filter(|a| applied.as_ref().is_none_or(|seen| seen.contains(*a)))
            .collect();
        let added_by_hand: Vec<&Acl> = extra
            .iter()
            .filter(|a| applied.as_ref().is_none_or(|seen| !seen.contains(*a)))
            .collect();
        // Drift at the first reconcile of a broker that never had streamhub's grants is
        // just the start: not reported.
        let first_grant = applied.is_none() && on_broker.is_empty();
        if !first_grant {
            for (acl, what) in removed_by_hand
                .iter()
                .map(|a| (a, "removed on the broker; granted again"))
                .chain(
                    added_by_hand
                        .iter()
                        .map(|a| (a, "added on the broker; removed")),
                )
            {
                self.note_drift(&topics, acl, what).await;
            }
        }
        if !extra.is_empty() {
            self.kafka.delete_acls(&extra).await?;
        }
        if !missing.is_empty() {
            self.kafka.create_acls(&missing).await?;
        }
        *self.applied.lock().unwrap_or_else(|p| p.into_inner()) = Some(granted);

        let service_users = [access::ADMIN_SERVICE_USER, access::PRODUCER_USER];
        let mut users_removed = 0;
        for user in self.kafka.users().await? {
            if !usernames.contains(user.as_str()) && !service_users.contains(&user.as_str()) {
                self.kafka.delete_user(&user).await?;
                users_removed += 1;
            }
        }
        let done = Reconciled {
            created: missing.len(),
            deleted: extra.len(),
            drifted: if first_grant {
                0
            } else {
                removed_by_hand.len() + added_by_hand.len()
            },
            users_removed,
        };
        if done != Reconciled::default() {
            tracing::info!(
                created = done.created,
                deleted = done.deleted,
                drifted = done.drifted,
                users_removed = done.users_removed,
                "broker ACLs reconciled"
            );
        }
        Ok(done)
    }

    async fn note_drift(&self, topics: &[streamhub_model::api::Topic], acl: &Acl, what: &str) {
        // A topic's ACL goes to that topic's history; the live topic of the name, else the
        // newest one.
        let topic = topics
            .iter()
            .filter(|t| t.topic_name == acl.resource_name)
            .max_by_key(|t| (t.status != TopicStatus::Deleted, t.topic_id));
        let detail = format!("{what}: {acl}");
        tracing::warn!(acl = %acl, what, "drift of the broker's ACLs");
        let note = AuditNote {
            actor: ACTOR,
            action: "kafka.acl-drift",
            topic_id: topic.map(|t| t.topic_id),
            target: &acl.resource_name,
            detail: Some(&detail),
        };
        if let Err(e) = self.store.note(&note).await {
            tracing::warn!(error = %e, "cannot write the drift to the audit log");
        }
    }
}
