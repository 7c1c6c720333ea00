//! Who may do what in Kafka: the ACLs streamhub's state grants, in Kafka's own terms, so
//! that subscriptions and the lifecycle *are* the broker's permissions (with
//! `--kafka-security scram`). The one place these rules live: the admin service applies
//! and reconciles [`granted`], the tests compare brokers' answers with it.
//!
//! - A subscriber reads the topic, and commits in its own consumer group
//!   ([`crate::consumer_group_of`]) only.
//! - The producer writes to a topic only while it is active; it may create topics, and
//!   describe and read the topics that are approved or in Kafka (to create and check them
//!   and continue its `seq`).
//! - An admin user reads every topic in Kafka (`consumer read --direct` with their own
//!   credentials), in their own consumer group.
//! - The admin service's own principal is a super user: it manages credentials and ACLs and
//!   reads every topic's figures. It is configured on the broker, not granted here.

use std::collections::BTreeSet;
use std::fmt;

use crate::{TopicStatus, consumer_group_of};

/// The Kafka user of the producer.
pub const PRODUCER_USER: &str = "streamhub-producer";
/// The Kafka user of the admin service, a super user of the broker.
pub const ADMIN_SERVICE_USER: &str = "streamhub-admin";

/// The principal of a Kafka user, as ACLs name it.
pub fn principal_of(user: &str) -> String {
    format!("User:{user}")
}

/// Kafka's resource types that streamhub grants on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
}

/// How an ACL's resource name matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PatternType {
    Literal,
    Prefixed,
}

/// Kafka's ACL operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    Allow,
    Deny,
}

/// One ACL binding, as Kafka's `kafka-acls` shows it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Acl {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern: PatternType,
    /// `User:<name>`.
    pub principal: String,
    /// `*` for any host.
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

/// Kafka's name for the cluster resource.
pub const CLUSTER: &str = "kafka-cluster";

impl Acl {
    /// An ALLOW from any host on a literal resource: every ACL streamhub grants.
    pub fn allow(
        principal: &str,
        operation: Operation,
        resource_type: ResourceType,
        resource_name: &str,
    ) -> Acl {
        Acl {
            resource_type,
            resource_name: resource_name.to_owned(),
            pattern: PatternType::Literal,
            principal: principal.to_owned(),
            host: "*".to_owned(),
            operation,
            permission: Permission::Allow,
        }
    }
}

impl fmt::Display for Acl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} {} {:?} on {:?}:{}{} from {}",
            self.permission,
            self.principal,
            self.operation,
            self.resource_type,
            self.resource_name,
            match self.pattern {
                PatternType::Literal => "",
                PatternType::Prefixed => "*",
            },
            self.host
        )
    }
}

/// A topic as access sees it.
pub struct TopicState<'a> {
    pub name: &'a str,
    pub status: TopicStatus,
}

/// A subscription as access sees it.
pub struct SubscriptionState<'a> {
    pub user: &'a str,
    pub topic: &'a str,
}

/// The ACLs streamhub's state grants to the producer, to subscribers and to `admins` (the
/// users with the admin role). Subscriptions to topics not in Kafka grant nothing.
pub fn granted<'a>(
    topics: impl IntoIterator<Item = TopicState<'a>>,
    subscriptions: impl IntoIterator<Item = SubscriptionState<'a>>,
    admins: impl IntoIterator<Item = &'a str>,
) -> BTreeSet<Acl> {
    let producer = principal_of(PRODUCER_USER);
    let mut acls = BTreeSet::new();
    acls.insert(Acl::allow(
        &producer,
        Operation::Create,
        ResourceType::Cluster,
        CLUSTER,
    ));
    let mut in_kafka = BTreeSet::new();
    for t in topics {
        // An approved topic is the producer's to create and check before it is in Kafka.
        if !(t.status.is_in_kafka() || t.status.awaits_provisioning()) {
            continue;
        }
        if t.status.is_in_kafka() {
            in_kafka.insert(t.name);
        }
        acls.insert(Acl::allow(
            &producer,
            Operation::Describe,
            ResourceType::Topic,
            t.name,
        ));
        acls.insert(Acl::allow(
            &producer,
            Operation::Read,
            ResourceType::Topic,
            t.name,
        ));
        if t.status == TopicStatus::Active {
            acls.insert(Acl::allow(
                &producer,
                Operation::Write,
                ResourceType::Topic,
                t.name,
            ));
        }
    }
    let reads = subscriptions
        .into_iter()
        .filter(|s| in_kafka.contains(s.topic))
        .map(|s| (s.user, s.topic));
    let admins: Vec<&str> = admins.into_iter().collect();
    let admin_reads = admins
        .iter()
        .flat_map(|a| in_kafka.iter().map(move |t| (*a, *t)));
    for (user, topic) in reads.chain(admin_reads) {
        let principal = principal_of(user);
        acls.insert(Acl::allow(
            &principal,
            Operation::Read,
            ResourceType::Topic,
            topic,
        ));
        acls.insert(Acl::allow(
            &principal,
            Operation::Read,
            ResourceType::Group,
            &consumer_group_of(user),
        ));
    }
    acls
}

/// Whether an ACL on the broker is streamhub's to keep in line with [`granted`]: one on a
/// topic streamhub knows, on a streamhub consumer group, or for the producer or a
/// streamhub user. Others (another application's on a shared cluster) are left alone.
pub fn is_managed(acl: &Acl, known_topics: &BTreeSet<&str>, users: &BTreeSet<&str>) -> bool {
    let by_name = match acl.resource_type {
        ResourceType::Topic => {
            acl.pattern == PatternType::Literal && known_topics.contains(acl.resource_name.as_str())
        }
        ResourceType::Group => acl.resource_name.starts_with(&consumer_group_of("")),
        ResourceType::Cluster => false,
    };
    let user = acl.principal.strip_prefix("User:");
    by_name || user.is_some_and(|u| u == PRODUCER_USER || users.contains(u))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, status: TopicStatus) -> TopicState<'_> {
        TopicState { name, status }
    }

    fn sub<'a>(user: &'a str, topic: &'a str) -> SubscriptionState<'a> {
        SubscriptionState { user, topic }
    }

    fn has(
        acls: &BTreeSet<Acl>,
        principal: &str,
        op: Operation,
        rt: ResourceType,
        name: &str,
    ) -> bool {
        acls.contains(&Acl::allow(&principal_of(principal), op, rt, name))
    }

    #[test]
    fn subscribers_read_their_topics_and_group_and_the_producer_writes_active_ones() {
        let acls = granted(
            [
                topic("live", TopicStatus::Active),
                topic("paused", TopicStatus::Inactive),
                topic("waiting", TopicStatus::Pending),
                topic("approved", TopicStatus::Approved),
            ],
            [
                sub("alice", "live"),
                sub("bob", "paused"),
                sub("carol", "waiting"),
            ],
            ["root"],
        );
        // An admin reads every topic in Kafka, in their own group.
        for t in ["live", "paused"] {
            assert!(has(&acls, "root", Operation::Read, ResourceType::Topic, t));
        }
        assert!(has(
            &acls,
            "root",
            Operation::Read,
            ResourceType::Group,
            "streamhub-root"
        ));
        assert!(!has(
            &acls,
            "root",
            Operation::Read,
            ResourceType::Topic,
            "waiting"
        ));
        assert!(has(
            &acls,
            "alice",
            Operation::Read,
            ResourceType::Topic,
            "live"
        ));
        assert!(has(
            &acls,
            "alice",
            Operation::Read,
            ResourceType::Group,
            "streamhub-alice"
        ));
        // A deactivated topic is still in Kafka: its subscribers read what it holds.
        assert!(has(
            &acls,
            "bob",
            Operation::Read,
            ResourceType::Topic,
            "paused"
        ));
        // Nothing of a topic that is not in Kafka.
        assert!(
            !acls
                .iter()
                .any(|a| a.resource_name == "waiting" || a.principal == "User:carol")
        );
        assert!(has(
            &acls,
            PRODUCER_USER,
            Operation::Write,
            ResourceType::Topic,
            "live"
        ));
        assert!(!has(
            &acls,
            PRODUCER_USER,
            Operation::Write,
            ResourceType::Topic,
            "paused"
        ));
        assert!(has(
            &acls,
            PRODUCER_USER,
            Operation::Read,
            ResourceType::Topic,
            "paused"
        ));
        assert!(has(
            &acls,
            PRODUCER_USER,
            Operation::Create,
            ResourceType::Cluster,
            CLUSTER
        ));
        // Nobody but the producer writes, and nobody is denied: no grant means no access.
        assert!(
            acls.iter()
                .all(|a| a.permission == Permission::Allow && a.host == "*")
        );
        assert!(
            acls.iter()
                .filter(|a| a.operation == Operation::Write)
                .all(|a| a.principal == principal_of(PRODUCER_USER))
        );
    }

    #[test]
    fn only_streamhubs_own_acls_are_managed() {
        let topics = BTreeSet::from(["live"]);
        let users = BTreeSet::from(["alice"]);
        let other = |principal: &str, rt, name: &str| Acl {
            pattern: PatternType::Literal,
            ..Acl::allow(principal, Operation::Read, rt, name)
        };
        assert!(is_managed(
            &other("User:mallory", ResourceType::Topic, "live"),
            &topics,
            &users
        ));
        assert!(is_managed(
            &other("User:alice", ResourceType::Topic, "elsewhere"),
            &topics,
            &users
        ));
        assert!(is_managed(
            &other("User:x", ResourceType::Group, "streamhub-x"),
            &topics,
            &users
        ));
        assert!(!is_managed(
            &other("User:etl", ResourceType::Topic, "orders"),
            &topics,
            &users
        ));
        assert!(!is_managed(
            &other("User:etl", ResourceType::Group, "etl"),
            &topics,
            &users
        ));
        assert_eq!(
            Acl::allow("User:alice", Operation::Read, ResourceType::Topic, "live").to_string(),
            "Allow User:alice Read on Topic:live from *"
        );
    }
}
