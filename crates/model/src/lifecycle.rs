//! The topic lifecycle: the one place that decides which transitions are allowed.
//!
//! ```text
//! pending ──approve──▶ approved ──activate (producer)──▶ active ◀──reactivate── inactive
//!    │                     │                              └──────deactivate──────▶┘
//!    └──reject──▶ rejected ◀┘ reject, once the producer    any state ──delete (no subscribers)──▶ deleted
//!                            reported that provisioning failed
//! ```
//!
//! Repeating a request is harmless: asking for the state a topic is already in is
//! [`Transition::Unchanged`], not an error. Everything else not drawn above is a
//! [`TransitionError`], which the API answers with 409.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Role;

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopicStatus {
    Pending,
    Approved,
    Active,
    Inactive,
    Rejected,
    Deleted,
}

/// What someone asks to do with a topic.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Approve,
    Reject,
    /// The producer, once the topic exists in Kafka.
    Activate,
    Deactivate,
    /// An admin brings a deactivated topic back.
    Reactivate,
    Delete,
}

/// The outcome of an allowed request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    /// The topic moves to this state.
    To(TopicStatus),
    /// The topic already is where the request would take it.
    Unchanged,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} a topic that is {from}")]
pub struct TransitionError {
    pub from: TopicStatus,
    pub action: Action,
}

/// What the lifecycle knows of a topic beside its status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The producer reported that it cannot create the topic in Kafka (replication factor
    /// above the broker count, a topic of that name with another partition count ...).
    pub provisioning_failed: bool,
}

impl TopicStatus {
    pub const ALL: [TopicStatus; 6] = [
        TopicStatus::Pending,
        TopicStatus::Approved,
        TopicStatus::Active,
        TopicStatus::Inactive,
        TopicStatus::Rejected,
        TopicStatus::Deleted,
    ];

    /// Decides what `action` does to a topic in this state, with no provisioning failure
    /// reported.
    pub fn apply(self, action: Action) -> Result<Transition, TransitionError> {
        self.decide(action, Facts::default())
    }

    /// Decides what `action` does to a topic in this state, given `facts`.
    pub fn decide(self, action: Action, facts: Facts) -> Result<Transition, TransitionError> {
        use Action::*;
        use TopicStatus::*;
        let to = match (self, action) {
            (Pending, Approve) => Approved,
            (Approved | Active, Approve) => return Ok(Transition::Unchanged),
            (Pending, Reject) => Rejected,
            // A topic the producer cannot create would stay approved forever: an admin
            // may turn it down once the failure is reported, not while it is in progress.
            (Approved, Reject) if facts.provisioning_failed => Rejected,
            (Rejected, Reject) => return Ok(Transition::Unchanged),
            // Activation after a deactivation is refused: the producer must never
            // override an admin who stopped a topic.
            (Approved, Activate) => Active,
            (Active, Activate) => return Ok(Transition::Unchanged),
            (Active, Deactivate) => Inactive,
            (Inactive, Deactivate) => return Ok(Transition::Unchanged),
            (Inactive, Reactivate) => Active,
            (Active, Reactivate) => return Ok(Transition::Unchanged),
            (Deleted, Delete) => return Ok(Transition::Unchanged),
            (_, Delete) if self != Deleted => Deleted,
            _ => return Err(TransitionError { from: self, action }),
        };
        Ok(Transition::To(to))
    }

    /// Whether the topic exists in Kafka: created by the producer and not deleted. Its
    /// figures, tail and lag exist only then.
    pub fn is_in_kafka(self) -> bool {
        matches!(self, TopicStatus::Active | TopicStatus::Inactive)
    }

    /// Whether the producer is expected to create the topic in Kafka: the one state in
    /// which it may report that it cannot.
    pub fn awaits_provisioning(self) -> bool {
        self == TopicStatus::Approved
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TopicStatus::Pending => "pending",
            TopicStatus::Approved => "approved",
            TopicStatus::Active => "active",
            TopicStatus::Inactive => "inactive",
            TopicStatus::Rejected => "rejected",
            TopicStatus::Deleted => "deleted",
        }
    }
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Approve,
        Action::Reject,
        Action::Activate,
        Action::Deactivate,
        Action::Reactivate,
        Action::Delete,
    ];

    /// Who may take the action: admins govern the lifecycle; the producer also activates
    /// the topics it has created in Kafka.
    pub fn roles(self) -> &'static [Role] {
        match self {
            Action::Activate => &[Role::Producer, Role::Admin],
            Action::Approve
            | Action::Reject
            | Action::Deactivate
            | Action::Reactivate
            | Action::Delete => &[Role::Admin],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Approve => "approve",
            Action::Reject => "reject",
            Action::Activate => "activate",
            Action::Deactivate => "deactivate",
            Action::Reactivate => "reactivate",
            Action::Delete => "delete",
        }
    }
}

impl fmt::Display for TopicStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TopicStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TopicStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!("unknown status '{s}'; expected pending, approved, active, inactive, rejected or deleted")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::Action::*;
    use super::TopicStatus::*;
    use super::*;

    #[test]
    fn admins_take_every_action_the_producer_only_activation_users_none() {
        for action in Action::ALL {
            let roles = action.roles();
            assert!(roles.contains(&Role::Admin), "{action}");
            assert!(!roles.contains(&Role::User), "{action}");
            assert_eq!(
                roles.contains(&Role::Producer),
                action == Activate,
                "{action}"
            );
        }
    }

    #[test]
    fn happy_path_follows_the_seed() {
        assert_eq!(Pending.apply(Approve), Ok(Transition::To(Approved)));
        assert_eq!(Approved.apply(Activate), Ok(Transition::To(Active)));
        assert_eq!(Active.apply(Deactivate), Ok(Transition::To(Inactive)));
        assert_eq!(Inactive.apply(Reactivate), Ok(Transition::To(Active)));
        assert_eq!(Pending.apply(Reject), Ok(Transition::To(Rejected)));
    }

    #[test]
    fn repeating_a_request_is_harmless() {
        assert_eq!(Approved.apply(Approve), Ok(Transition::Unchanged));
        assert_eq!(Active.apply(Activate), Ok(Transition::Unchanged));
        assert_eq!(Inactive.apply(Deactivate), Ok(Transition::Unchanged));
        assert_eq!(Rejected.apply(Reject), Ok(Transition::Unchanged));
        assert_eq!(Deleted.apply(Delete), Ok(Transition::Unchanged));
    }

    #[test]
    fn producer_cannot_override_a_deactivation() {
        assert_eq!(
            Inactive.apply(Activate),
            Err(TransitionError {
                from: Inactive,
                action: Activate
            })
        );
        assert!(Pending.apply(Activate).is_err());
    }

    #[test]
    fn every_state_and_action_has_a_decision() {
        for from in TopicStatus::ALL {
            for action in Action::ALL {
                match from.apply(action) {
                    Ok(Transition::To(to)) => assert_ne!(to, from),
                    Ok(Transition::Unchanged) | Err(_) => {}
                }
            }
            assert!(from.apply(Delete).is_ok(), "{from} can always be deleted");
        }
        assert!(Deleted.apply(Approve).is_err());
        assert!(Rejected.apply(Approve).is_err());
    }

    #[test]
    fn an_approved_topic_whose_provisioning_failed_can_be_rejected() {
        let failed = Facts {
            provisioning_failed: true,
        };
        assert_eq!(
            Approved.decide(Reject, failed),
            Ok(Transition::To(Rejected))
        );
        // Without a reported failure the producer may be creating it right now.
        assert_eq!(
            Approved.apply(Reject),
            Err(TransitionError {
                from: Approved,
                action: Reject
            })
        );
        // The fact changes nothing else.
        for from in TopicStatus::ALL {
            for action in [Approve, Activate, Deactivate, Reactivate, Delete] {
                assert_eq!(from.decide(action, failed), from.apply(action));
            }
        }
        assert!(Active.decide(Reject, failed).is_err());
        assert!(Approved.awaits_provisioning());
        assert!(!Pending.awaits_provisioning() && !Active.awaits_provisioning());
    }
}
