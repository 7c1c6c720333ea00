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
