//! Request and response bodies of the admin service's REST API.
//!
//! Field names follow the seed's API reference (`topic_id`, `topic_name`, ...), which is
//! streamhub's compatibility contract; fields beyond the seed are added, never renamed.
//! Request bodies refuse unknown fields, so a client cannot set what it must not
//! (a topic's status, a user's own role) by adding a field.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::traffic::TrafficProfile;
use crate::{Action, DataType, Facts, Role, TopicName, TopicStatus, Transition, TransitionError};

/// A topic as the API shows it. Its JSON also carries `in_kafka`
/// ([`TopicStatus::is_in_kafka`]) and `actions` ([`Topic::actions`]), so a client reads
/// those rules instead of restating them; both are computed on output and ignored on input.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
// The derives become inherent functions, which the impls below wrap.
#[serde(remote = "Self")]
pub struct Topic {
    pub topic_id: i64,
    pub topic_name: String,
    pub status: TopicStatus,
    pub partitions: i32,
    pub replication_factor: i32,
    pub description: String,
    pub data_type: DataType,
    /// Messages per second the producer publishes; `None` means the seed's default
    /// of one message every 0.5–1.5 s.
    pub rate_per_second: Option<f64>,
    /// The rate curve the producer follows instead of a constant rate
    /// ([`crate::traffic`]'s text form).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "daily:peak=200,trough=20,tz=Europe/Berlin"))]
    pub traffic_profile: Option<TrafficProfile>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    pub activated_at: Option<DateTime<Utc>>,
    pub deactivated_at: Option<DateTime<Utc>>,
    /// Why an admin rejected the request, readable by the requester.
    pub rejection_reason: Option<String>,
    /// Why the producer cannot create the approved topic in Kafka, as it last reported;
    /// cleared when the topic is activated. An admin may reject such a topic.
    #[serde(default)]
    pub provisioning_error: Option<String>,
}

impl Serialize for Topic {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Fields<'a>(&'a Topic);
        impl Serialize for Fields<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                Topic::serialize(self.0, s)
            }
        }
        #[derive(Serialize)]
        struct Wire<'a> {
            #[serde(flatten)]
            topic: Fields<'a>,
            in_kafka: bool,
            actions: Vec<Action>,
        }
        Wire {
            topic: Fields(self),
            in_kafka: self.status.is_in_kafka(),
            actions: self.actions(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Topic {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Topic::deserialize(deserializer)
    }
}

impl Topic {
    /// The lifecycle actions that would change this topic now (whoever may take them:
    /// [`Action::roles`]).
    pub fn actions(&self) -> Vec<Action> {
        Action::ALL
            .into_iter()
            .filter(|a| matches!(self.decide(*a), Ok(Transition::To(_))))
            .collect()
    }

    /// What `action` does to this topic ([`TopicStatus::decide`] with what is known of it).
    pub fn decide(&self, action: Action) -> Result<Transition, TransitionError> {
        self.status.decide(
            action,
            Facts {
                provisioning_failed: self.provisioning_error.is_some(),
            },
        )
    }
}

/// `POST /api/topics`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateTopic {
    #[cfg_attr(
        feature = "openapi",
        schema(
            value_type = String,
            min_length = 1,
            max_length = 249,
            // Kafka's characters, not starting with "__" (Kafka's internal topics).
            pattern = "^([A-Za-z0-9.-][A-Za-z0-9._-]*|_([A-Za-z0-9.-][A-Za-z0-9._-]*)?)$"
        )
    )]
    pub name: TopicName,
    /// Defaults to the signed-in principal.
    #[serde(default)]
    pub created_by: Option<String>,
    #[serde(default = "default_partitions")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
    pub partitions: i32,
    #[serde(default = "default_replication_factor")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 32))]
    pub replication_factor: i32,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 4096))]
    pub description: String,
    /// Inferred from the name when absent.
    #[serde(default)]
    pub data_type: Option<DataType>,
    #[serde(default)]
    /// Messages per second, within [`crate::RatePerSecond`]'s bounds (the numbers here are
    /// checked against them by a test); the producer's default pace when absent.
    #[cfg_attr(feature = "openapi", schema(minimum = 0.001, maximum = 100000))]
    pub rate_per_second: Option<f64>,
    /// A rate curve instead of `rate_per_second` (not both): `constant:50`,
    /// `daily:peak=200,trough=20[,peak_at=14:00][,period=24h][,tz=Europe/Berlin]`,
    /// `ramp:from=10,to=500,over=5m`, `bursts:rate=50,factor=10,every=30s,for=2s`, or
    /// parts joined by `+` (their rates add).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 1000, example = "daily:peak=200,trough=20,tz=Europe/Berlin"))]
    pub traffic_profile: Option<TrafficProfile>,
}

fn default_partitions() -> i32 {
    3
}

fn default_replication_factor() -> i32 {
    1
}

/// `POST /api/topics/<id>/reject`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectTopic {
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 1000, pattern = "\\S")
    )]
    pub reason: String,
}

/// `POST /api/topics/activate_by_name`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateByName {
    pub topic_name: String,
    /// How the producer will generate the topic's values, kept in the audit log for replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<crate::generation::Generation>,
}

/// `POST /api/topics/provisioning_failure`: the producer cannot create an approved
/// topic in Kafka, and says why.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningFailure {
    pub topic_name: String,
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 1000, pattern = "\\S")
    )]
    pub error: String,
}

impl ProvisioningFailure {
    pub const MAX_ERROR_CHARS: usize = 1000;
}

/// `GET /api/topics/active`: the seed's three fields plus what a consumer needs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActiveTopic {
    pub topic_id: i64,
    pub topic_name: String,
    pub description: String,
    pub activated_at: Option<DateTime<Utc>>,
    pub data_type: DataType,
    pub partitions: i32,
    pub replication_factor: i32,
    pub rate_per_second: Option<f64>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub traffic_profile: Option<TrafficProfile>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub subscription_id: i64,
    pub user_id: String,
    pub topic_name: String,
    pub subscribed_at: DateTime<Utc>,
    pub status: String,
}

/// `POST` and `DELETE /api/subscriptions`. `user_id` defaults to the signed-in user.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionRequest {
    #[serde(default)]
    pub user_id: Option<String>,
    pub topic_name: String,
}

/// `GET /api/stats`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub total_topics: i64,
    pub pending_topics: i64,
    pub approved_topics: i64,
    pub active_topics: i64,
    pub inactive_topics: i64,
    pub rejected_topics: i64,
    pub total_subscriptions: i64,
    pub total_users: i64,
    pub timestamp: DateTime<Utc>,
    /// Message totals from Kafka, or why there are none.
    pub kafka: KafkaFigures,
}

/// Figures read from Kafka; `enabled: false` with a `note` when the admin service
/// was started without `--bootstrap-servers` or Kafka did not answer.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct KafkaFigures {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_messages: Option<i64>,
}

/// A row of the audit log.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub audit_id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    /// `approve`, `subscribe`, `user.create`, ...
    pub action: String,
    pub topic_id: Option<i64>,
    /// What was acted on: a topic name, `user/topic`, a username.
    pub target: String,
    pub before: Option<String>,
    pub after: Option<String>,
    /// What else the change said: a rejection's reason, a provisioning failure.
    #[serde(default)]
    pub detail: Option<String>,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub username: String,
    pub password: String,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginResponse {
    pub token: String,
    pub role: Role,
    pub expires_at: DateTime<Utc>,
}

/// `GET /api/auth/me`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub username: String,
    pub role: Role,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

/// Lists of the API answer pages of this many items when `limit` is not given: enough for
/// every list of a normal deployment, bounded for a store that grew large.
pub const DEFAULT_PAGE: i64 = 500;
/// The largest `limit` a list accepts; a larger one is refused, not clamped.
pub const MAX_PAGE: i64 = 1000;

/// `POST /api/users`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    /// Unique ignoring case; not `producer` or `system` in any case.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._@-]+$")
    )]
    pub username: String,
    /// Not containing the username, and rated at least 3 of 4 by the zxcvbn strength
    /// estimator.
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 1024))]
    pub password: String,
    pub role: Role,
}

// Bodies that carry a password or a token print it redacted, so a `{:?}` never leaks it.
impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for LoginResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginResponse")
            .field("token", &"<redacted>")
            .field("role", &self.role)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl std::fmt::Debug for CreateUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUser")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("role", &self.role)
            .finish()
    }
}

/// `{"message": ...}`, the seed's success body, with ids where the seed has them.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_id: Option<i64>,
}

/// Every error: `{"error": "...", "code": "..."}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    pub code: String,
}

/// One server-sent event on `GET /api/events`; the SSE event name is `kind`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A topic was created or changed state.
    Topic {
        action: Option<Action>,
        topic: Topic,
    },
    /// A subscription was added or removed.
    Subscription {
        subscribed: bool,
        subscription: Subscription,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_passwords_or_tokens() {
        let login = Login {
            username: "alice".into(),
            password: "hunter2-secret".into(),
        };
        let user = CreateUser {
            username: "bob".into(),
            password: "correct-horse".into(),
            role: Role::User,
        };
        let answer = LoginResponse {
            token: "tok-0123456789".into(),
            role: Role::User,
            expires_at: Utc::now(),
        };
        let printed = format!("{login:?} {user:?} {answer:?}");
        for secret in ["hunter2-secret", "correct-horse", "tok-0123456789"] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert!(printed.contains("alice") && printed.contains("bob"));
    }

    /// `in_kafka` follows the status on output and is ignored on input, so a client
    /// that sends a topic back (or an older one without the field) reads the same topic.
    #[test]
    fn a_topic_says_whether_it_is_in_kafka() {
        let json = serde_json::json!({
            "topic_id": 7, "topic_name": "orders", "status": "pending", "partitions": 3,
            "replication_factor": 1, "description": "", "data_type": "generic",
            "rate_per_second": null, "created_by": "alice",
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "approved_at": null, "activated_at": null, "deactivated_at": null,
            "rejection_reason": null,
        });
        let mut topic: Topic = serde_json::from_value(json).unwrap();
        for status in TopicStatus::ALL {
            topic.status = status;
            let out = serde_json::to_value(&topic).unwrap();
            assert_eq!(out["in_kafka"], status.is_in_kafka(), "{status}");
            assert_eq!(out["status"], status.as_str());
            assert_eq!(serde_json::from_value::<Topic>(out).unwrap(), topic);
        }
    }

    /// `actions` lists exactly what the lifecycle would carry out, with what is known of
    /// the topic: an approved topic can be rejected only once its provisioning failed.
    #[test]
    fn a_topic_lists_the_actions_that_would_change_it() {
        let json = serde_json::json!({
            "topic_id": 7, "topic_name": "orders", "status": "approved", "partitions": 3,
            "replication_factor": 1, "description": "", "data_type": "generic",
            "rate_per_second": null, "created_by": "alice",
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "approved_at": null, "activated_at": null, "deactivated_at": null,
            "rejection_reason": null,
        });
        let mut topic: Topic = serde_json::from_value(json).unwrap();
        let listed = |t: &Topic| serde_json::to_value(t).unwrap()["actions"].clone();
        assert_eq!(listed(&topic), serde_json::json!(["activate", "delete"]));
        topic.provisioning_error = Some("no broker".into());
        assert_eq!(
            listed(&topic),
            serde_json::json!(["reject", "activate", "delete"])
        );
        for status in TopicStatus::ALL {
            topic.status = status;
            for action in Action::ALL {
                let changes = matches!(topic.decide(action), Ok(Transition::To(_)));
                let shown = listed(&topic)
                    .as_array()
                    .unwrap()
                    .contains(&serde_json::json!(action.as_str()));
                assert_eq!(shown, changes, "{status} {action}");
            }
        }
    }
}
