use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::TopicStatus;

/// Who a principal is. Admins govern topics and users; the producer activates topics;
/// users request topics and manage their own subscriptions.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Producer,
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Producer => "producer",
            Role::User => "user",
        }
    }

    /// Who may read a topic's messages live (the dashboard's tail): an admin any topic
    /// in Kafka (active or inactive), a user only an active topic they subscribe to, the
    /// producer none.
    pub fn may_tail(self, status: TopicStatus, subscribed: bool) -> bool {
        match self {
            Role::Admin => status.is_in_kafka(),
            Role::User => subscribed && status == TopicStatus::Active,
            Role::Producer => false,
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "producer" => Ok(Role::Producer),
            "user" => Ok(Role::User),
            other => Err(format!(
                "unknown role '{other}'; expected admin, producer or user"
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_tail_only_active_topics_they_subscribe_to() {
        for status in TopicStatus::ALL {
            let in_kafka = matches!(status, TopicStatus::Active | TopicStatus::Inactive);
            for subscribed in [false, true] {
                assert_eq!(Role::Admin.may_tail(status, subscribed), in_kafka);
                assert_eq!(
                    Role::User.may_tail(status, subscribed),
                    subscribed && status == TopicStatus::Active,
                    "{status} subscribed={subscribed}"
                );
                assert!(!Role::Producer.may_tail(status, subscribed));
            }
        }
    }
}
