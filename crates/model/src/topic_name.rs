use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// A topic name streamhub may create in Kafka: Kafka's own rule (`Topic.validate`: 1–249
/// characters of `[a-zA-Z0-9._-]`, not `.` or `..`), and not starting with `__`, the prefix
/// of Kafka's internal topics (`__consumer_offsets`, `__transaction_state` ...), which
/// generated data must never reach.
///
/// Kafka also refuses a topic whose name differs from an existing one only in `.` and `_`
/// (the two would share metric names): that depends on the other names, see
/// [`TopicName::collision_key`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct TopicName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidTopicName {
    #[error("topic name must not be empty")]
    Empty,
    #[error("topic name is {0} characters long; Kafka allows at most 249")]
    TooLong(usize),
    #[error("topic name cannot be '.' or '..'")]
    Dots,
    #[error("topic name contains {0:?}; Kafka allows only letters, digits, '.', '_' and '-'")]
    BadChar(char),
    #[error(
        "topic name '{0}' starts with '__', which Kafka reserves for its internal topics (__consumer_offsets ...)"
    )]
    Internal(String),
}

/// A requested name that Kafka would refuse beside an existing topic's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "topic name '{name}' collides with the existing topic '{existing}': Kafka refuses names that differ only in '.' and '_', as they share metric names"
)]
pub struct NameCollision {
    pub name: String,
    pub existing: String,
}

impl TopicName {
    pub const MAX_LEN: usize = 249;

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// The name with every `.` as `_`: two topics whose keys are equal collide in Kafka
    /// (its `Topic.unifyCollisionChars`), so at most one live topic may have each key.
    pub fn collision_key(&self) -> String {
        collision_key(&self.0)
    }

    /// Refuses this name beside `existing` when the two collide in Kafka; the same name
    /// is not a collision (that is a duplicate, which callers tell apart).
    pub fn check_collision(&self, existing: &str) -> Result<(), NameCollision> {
        if existing != self.0 && collision_key(existing) == self.collision_key() {
            return Err(NameCollision {
                name: self.0.clone(),
                existing: existing.to_owned(),
            });
        }
        Ok(())
    }
}

fn collision_key(name: &str) -> String {
    name.replace('.', "_")
}

impl FromStr for TopicName {
    type Err = InvalidTopicName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(InvalidTopicName::Empty);
        }
        let len = s.chars().count();
        if len > Self::MAX_LEN {
            return Err(InvalidTopicName::TooLong(len));
        }
        if s == "." || s == ".." {
            return Err(InvalidTopicName::Dots);
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(InvalidTopicName::BadChar(c));
        }
        if s.starts_with("__") {
            return Err(InvalidTopicName::Internal(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for TopicName {
    type Error = InvalidTopicName;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl<'de> Deserialize<'de> for TopicName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kafka_names() {
        for ok in [
            "sensor_data",
            "a",
            "A.b-c_9",
            &"x".repeat(249),
            "_one",
            "a__b",
        ] {
            assert_eq!(ok.parse::<TopicName>().unwrap().as_str(), ok);
        }
    }

    #[test]
    fn refuses_what_kafka_refuses() {
        assert_eq!("".parse::<TopicName>(), Err(InvalidTopicName::Empty));
        assert_eq!(".".parse::<TopicName>(), Err(InvalidTopicName::Dots));
        assert_eq!("..".parse::<TopicName>(), Err(InvalidTopicName::Dots));
        assert_eq!(
            "a b".parse::<TopicName>(),
            Err(InvalidTopicName::BadChar(' '))
        );
        assert_eq!(
            "é".parse::<TopicName>(),
            Err(InvalidTopicName::BadChar('é'))
        );
        assert_eq!(
            "x".repeat(250).parse::<TopicName>(),
            Err(InvalidTopicName::TooLong(250))
        );
    }

    #[test]
    fn kafka_internal_topic_names_are_refused() {
        for internal in ["__consumer_offsets", "__transaction_state", "__x"] {
            assert_eq!(
                internal.parse::<TopicName>(),
                Err(InvalidTopicName::Internal(internal.into()))
            );
        }
        let message = "__consumer_offsets"
            .parse::<TopicName>()
            .unwrap_err()
            .to_string();
        assert!(message.contains("internal topics"), "{message}");
    }

    #[test]
    fn names_differing_only_in_dot_and_underscore_collide() {
        let name: TopicName = "coll_x".parse().unwrap();
        assert_eq!(name.collision_key(), "coll_x");
        assert_eq!(
            "coll.x".parse::<TopicName>().unwrap().collision_key(),
            "coll_x"
        );
        let err = name.check_collision("coll.x").unwrap_err();
        assert_eq!(err.existing, "coll.x");
        assert!(
            err.to_string().contains("differ only in '.' and '_'"),
            "{err}"
        );
        assert!(
            name.check_collision("coll_x").is_ok(),
            "a duplicate is not a collision"
        );
        assert!(name.check_collision("coll-x").is_ok());
        assert!(name.check_collision("collx").is_ok());
    }
}
