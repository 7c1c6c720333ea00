//! The figures a topic request may ask for. The store refuses what Kafka or the producer
//! could not honour, the Kafka layer checks the same bounds before creating a topic, and
//! the OpenAPI document repeats them as literals (a test in the admin compares them).

use crate::RatePerSecond;

/// Most partitions a streamhub topic may have.
pub const MAX_PARTITIONS: i32 = 1000;
/// Most replicas a streamhub topic may ask for; the cluster's broker count is checked
/// at approval (see [`crate::provisioning`]).
pub const MAX_REPLICATION_FACTOR: i32 = 32;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 4096;

/// Checks a partition count.
pub fn check_partitions(partitions: i32) -> Result<(), String> {
    if (1..=MAX_PARTITIONS).contains(&partitions) {
        Ok(())
    } else {
        Err(format!(
            "partitions must be between 1 and {MAX_PARTITIONS}, got {partitions}"
        ))
    }
}

/// Checks the figures of a topic request a topic name's parser cannot: partitions,
/// replication factor, description length, rate, and that a topic has a rate or a traffic
/// profile, not both.
pub fn check(
    partitions: i32,
    replication_factor: i32,
    description: &str,
    rate_per_second: Option<f64>,
    has_profile: bool,
) -> Result<(), String> {
    check_partitions(partitions)?;
    if !(1..=MAX_REPLICATION_FACTOR).contains(&replication_factor) {
        return Err(format!(
            "replication_factor must be between 1 and {MAX_REPLICATION_FACTOR}, got {replication_factor}"
        ));
    }
    if let Some(rate) = rate_per_second {
        RatePerSecond::new(rate).map_err(|e| format!("rate_per_second {e}"))?;
        if has_profile {
            return Err(
                "give rate_per_second or traffic_profile, not both: a profile sets the rate".into(),
            );
        }
    }
    if description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(format!(
            "description is longer than {MAX_DESCRIPTION_CHARS} characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bound_is_inclusive_and_named_when_crossed() {
        assert_eq!(check(1, 1, "", None, false), Ok(()));
        assert_eq!(
            check(
                MAX_PARTITIONS,
                MAX_REPLICATION_FACTOR,
                &"d".repeat(MAX_DESCRIPTION_CHARS),
                Some(RatePerSecond::MAX),
                false
            ),
            Ok(())
        );
        for (bad, field) in [
            (check(0, 1, "", None, false), "partitions"),
            (check(MAX_PARTITIONS + 1, 1, "", None, false), "partitions"),
            (check(1, 0, "", None, false), "replication_factor"),
            (
                check(1, MAX_REPLICATION_FACTOR + 1, "", None, false),
                "replication_factor",
            ),
            (
                check(1, 1, &"é".repeat(MAX_DESCRIPTION_CHARS + 1), None, false),
                "description",
            ),
            (check(1, 1, "", Some(0.0), false), "rate_per_second"),
            (check(1, 1, "", Some(f64::NAN), false), "rate_per_second"),
            (
                check(1, 1, "", Some(5.0), true),
                "give rate_per_second or traffic_profile",
            ),
        ] {
            let message = bad.expect_err(field);
            assert!(message.starts_with(field), "{message}");
        }
    }
}
