//! Access management's Kafka admin calls, over the Kafka protocol with the admin
//! service's own SASL login (a super user of the broker).

use async_trait::async_trait;
use streamhub_admin::access::{KafkaAccess, KafkaConnection};
use streamhub_kafka::{KafkaConfig, ScramMechanism, SecurityAdmin};
use streamhub_model::Secret;
use streamhub_model::access::Acl;

/// The mechanism of users' credentials: the stronger one both brokers offer.
pub const USER_MECHANISM: ScramMechanism = ScramMechanism::Sha512;

pub struct KafkaSecurity {
    admin: SecurityAdmin,
    connection: KafkaConnection,
}

impl KafkaSecurity {
    /// `config`: the admin service's Kafka settings (bootstrap servers, SASL login);
    /// `advertised`: the bootstrap servers users are told to use.
    pub fn new(config: &KafkaConfig, advertised: &str) -> anyhow::Result<KafkaSecurity> {
        let protocol = config
            .property("security.protocol")
            .unwrap_or("sasl_plaintext")
            .to_owned();
        Ok(KafkaSecurity {
            admin: SecurityAdmin::new(config)?,
            connection: KafkaConnection {
                bootstrap_servers: advertised.to_owned(),
                security_protocol: protocol,
                sasl_mechanism: USER_MECHANISM.name().to_owned(),
            },
        })
    }
}

#[async_trait]
impl KafkaAccess for KafkaSecurity {
    async fn acls(&self) -> Result<Vec<Acl>, String> {
        self.admin.acls().await.map_err(|e| e.to_string())
    }

    async fn create_acls(&self, acls: &[Acl]) -> Result<(), String> {
        self.admin
            .create_acls(acls)
            .await
            .map_err(|e| e.to_string())
    }

    async fn delete_acls(&self, acls: &[Acl]) -> Result<(), String> {
        self.admin
            .delete_acls(acls)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn set_password(&self, user: &str, password: &Secret) -> Result<(), String> {
        self.admin
            .set_scram_password(user, password, USER_MECHANISM)
            .await
            .map_err(|e| e.to_string())
    }

    async fn delete_user(&self, user: &str) -> Result<(), String> {
        self.admin
            .delete_scram_user(user)
            .await
            .map_err(|e| e.to_string())
    }

    async fn users(&self) -> Result<Vec<String>, String> {
        Ok(self
            .admin
            .scram_users()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .map(|(user, _)| user)
            .collect())
    }

    fn connection(&self) -> KafkaConnection {
        self.connection.clone()
    }
}

#[cfg(all(test, feature = "embedded-broker"))]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use streamhub_admin::access::AccessService;
    use streamhub_kafka::broker::{BrokerConfig, EmbeddedBroker, SaslConfig, SaslUser, Security};
    use streamhub_model::access::{ADMIN_SERVICE_USER, Operation, ResourceType, principal_of};
    use streamhub_model::{Action, DataType, Role, TopicName};
    use streamhub_store::{AuditFilter, NewTopic, TopicRef};

    use super::*;

    const PASSWORD: &str = "reconcile-admin-secret";

    /// The reconciler against the embedded broker with SASL and ACLs: it grants what the
    /// store says, reports in the audit log and undoes what a hand changed on the broker,
    /// leaves another application's ACLs alone, and removes deleted users' credentials.
    #[tokio::test(flavor = "multi_thread")]
    async fn the_reconciler_grants_what_the_store_says_and_undoes_drift() {
        let broker = EmbeddedBroker::start_with_security(
            BrokerConfig::ephemeral(),
            Security::Sasl(SaslConfig {
                super_users: vec![principal_of(ADMIN_SERVICE_USER)],
                users: vec![SaslUser {
                    name: ADMIN_SERVICE_USER.into(),
                    password: PASSWORD.into(),
                }],
                ..SaslConfig::new()
            }),
        )
        .await
        .unwrap();
        let bootstrap = broker.bootstrap_servers();
        let kafka = KafkaConfig::new(bootstrap.clone())
            .with("security.protocol", "sasl_plaintext")
            .with("sasl.mechanism", "SCRAM-SHA-512")
            .with("sasl.username", ADMIN_SERVICE_USER)
            .with("sasl.password", PASSWORD);
        let calls = Arc::new(KafkaSecurity::new(&kafka, &bootstrap).unwrap());
        let hand = SecurityAdmin::new(&kafka).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store =
            streamhub_store::open(&format!("sqlite://{}", dir.path().join("s.db").display()))
                .await
                .unwrap();
        store
            .create_user("admin", "alice", "x", Role::User)
            .await
            .unwrap();
        store
            .create_user("admin", "gone", "x", Role::User)
            .await
            .unwrap();
        let topic = store
            .create_topic(
                "alice",
                NewTopic {
                    name: "orders".parse::<TopicName>().unwrap(),
                    created_by: "alice".into(),
                    partitions: 1,
                    replication_factor: 1,
                    description: String::new(),
                    data_type: DataType::Generic,
                    rate_per_second: None,
                    traffic_profile: None,
                },
            )
            .await
            .unwrap();
        for action in [Action::Approve, Action::Activate] {
            store
                .transition("admin", TopicRef::Id(topic.topic_id), action, None)
                .await
                .unwrap();
        }
        store.subscribe("admin", "alice", "orders").await.unwrap();
        calls
            .set_password("gone", &Secret::new("pw-of-gone"))
            .await
            .unwrap();
        // Another application's grant on a topic streamhub does not know.
        let foreign = Acl::allow("User:etl", Operation::Read, ResourceType::Topic, "billing");
        hand.create_acls(std::slice::from_ref(&foreign))
            .await
            .unwrap();

        let access = AccessService::new(store.clone(), calls.clone());
        let first = access.reconcile().await.unwrap();
        assert!(first.created > 0, "{first:?}");
        assert_eq!(first.drifted, 0, "the first grant is no drift: {first:?}");
        let alice_reads = Acl::allow("User:alice", Operation::Read, ResourceType::Topic, "orders");
        let on_broker: BTreeSet<Acl> = calls.acls().await.unwrap().into_iter().collect();
        assert!(on_broker.contains(&alice_reads) && on_broker.contains(&foreign));

        // By hand: alice's grant removed, mallory's added.
        let mallory = Acl::allow(
            "User:mallory",
            Operation::Read,
            ResourceType::Topic,
            "orders",
        );
        hand.delete_acls(std::slice::from_ref(&alice_reads))
            .await
            .unwrap();
        hand.create_acls(std::slice::from_ref(&mallory))
            .await
            .unwrap();
        store.delete_user("admin", "gone").await.unwrap();
        let second = access.reconcile().await.unwrap();
        assert_eq!(
            (second.created, second.deleted, second.drifted),
            (1, 1, 2),
            "{second:?}"
        );
        assert_eq!(second.users_removed, 1, "{second:?}");
        let on_broker: BTreeSet<Acl> = calls.acls().await.unwrap().into_iter().collect();
        assert!(on_broker.contains(&alice_reads), "granted again");
        assert!(!on_broker.contains(&mallory), "removed");
        assert!(on_broker.contains(&foreign), "left alone");
        assert!(!calls.users().await.unwrap().contains(&"gone".to_owned()));
        let notes = store
            .audit(&AuditFilter {
                action: Some("kafka.acl-drift".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        let details: Vec<&str> = notes.iter().filter_map(|n| n.detail.as_deref()).collect();
        assert_eq!(details.len(), 2, "{details:?}");
        assert!(
            details
                .iter()
                .any(|d| d.contains("granted again") && d.contains("User:alice"))
        );
        assert!(
            details
                .iter()
                .any(|d| d.contains("removed") && d.contains("User:mallory"))
        );
        assert!(notes.iter().all(|n| n.topic_id == Some(topic.topic_id)));

        // In line: nothing more to do, nothing more reported.
        let third = access.reconcile().await.unwrap();
        assert_eq!(third, Default::default());
        broker.shutdown().await.unwrap();
    }
}
