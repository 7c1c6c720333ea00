//! What keeps Kafka from holding a topic as requested. The admin service checks it before
//! approving (when it can read the cluster); the producer finds it while creating the topic
//! and reports it on the topic (see [`crate::api::ProvisioningFailure`]).

/// A reason the producer can never create a topic as requested: retrying does not help
/// until the cluster or the request changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProvisioningObstacle {
    #[error(
        "replication factor {asked} is more than the {brokers} broker(s) of the Kafka cluster; a topic has at most one replica per broker"
    )]
    TooFewBrokers { asked: i32, brokers: usize },
    #[error(
        "a topic '{name}' already exists in Kafka with {existing} partition(s), not the {asked} requested"
    )]
    PartitionsDiffer {
        name: String,
        asked: i32,
        existing: i32,
    },
}

/// A topic of `replication_factor` replicas on a cluster of `brokers` brokers.
pub fn check_brokers(replication_factor: i32, brokers: usize) -> Result<(), ProvisioningObstacle> {
    if usize::try_from(replication_factor).is_ok_and(|rf| rf > brokers) {
        return Err(ProvisioningObstacle::TooFewBrokers {
            asked: replication_factor,
            brokers,
        });
    }
    Ok(())
}

/// A topic `name` of `partitions` partitions, where Kafka already has `existing` (`None`:
/// no topic of that name). An existing topic is used as it is, so its partition count
/// must be the requested one, or every figure shown for it would be wrong.
pub fn check_existing(
    name: &str,
    partitions: i32,
    existing: Option<i32>,
) -> Result<(), ProvisioningObstacle> {
    match existing {
        Some(existing) if existing != partitions => Err(ProvisioningObstacle::PartitionsDiffer {
            name: name.to_owned(),
            asked: partitions,
            existing,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_need_as_many_brokers() {
        assert_eq!(check_brokers(1, 1), Ok(()));
        assert_eq!(check_brokers(3, 3), Ok(()));
        let err = check_brokers(3, 1).unwrap_err();
        assert_eq!(
            err,
            ProvisioningObstacle::TooFewBrokers {
                asked: 3,
                brokers: 1
            }
        );
        assert!(err.to_string().contains("replication factor 3"), "{err}");
    }

    #[test]
    fn an_existing_topic_must_have_the_requested_partitions() {
        assert_eq!(check_existing("t", 3, None), Ok(()));
        assert_eq!(check_existing("t", 3, Some(3)), Ok(()));
        let err = check_existing("t", 3, Some(1)).unwrap_err();
        assert!(
            err.to_string().contains("1 partition(s), not the 3"),
            "{err}"
        );
    }
}
