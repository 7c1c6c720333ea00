use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// A topic name that Kafka accepts: 1–249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
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
}

impl TopicName {
    pub const MAX_LEN: usize = 249;

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
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
        for ok in ["sensor_data", "a", "A.b-c_9", &"x".repeat(249)] {
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
}
