//! Kafka users' SCRAM credentials and ACLs, managed through the Kafka admin API on Apache
//! Kafka and on the embedded broker alike. librdkafka has no calls for these, so this
//! module speaks the protocol itself (kafka-protocol): one connection to the first
//! bootstrap server that answers, versions picked from its ApiVersions, a SASL login with
//! the configuration's PLAIN or SCRAM credentials (or none on a plaintext listener).
//!
//! Every call is bounded by [`KafkaConfig::timeout`] and reconnects once when the
//! connection broke. The password appears in no error, log line or Debug output.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey,
    ApiVersionsRequest, ApiVersionsResponse, CreateAclsRequest, CreateAclsResponse,
    DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest, DescribeAclsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse, RequestHeader,
    ResponseHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rand::Rng;
use streamhub_model::access::{Acl, Operation, PatternType, Permission, ResourceType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

use crate::config::{KafkaConfig, Secret};
use crate::error::{AclFailure, KafkaError};
use crate::scram::{ScramClient, ScramMechanism};

/// Iterations of the credentials this client sets: twice Kafka's minimum, within the
/// 16384 that AlterUserScramCredentials accepts.
pub const SCRAM_ITERATIONS: i32 = 8192;
const SALT_LEN: usize = 32;
/// Responses larger than this are refused rather than allocated (Kafka's default
/// `socket.request.max.bytes` is 100 MiB; these answers are far smaller).
const MAX_RESPONSE: usize = 64 << 20;
const CLIENT_ID: &str = "streamhub-security-admin";

/// The versions of each API this client speaks; the highest one the broker also speaks is
/// used. Apache Kafka 4.x and the embedded broker answer DescribeAcls/CreateAcls/DeleteAcls
/// 1-3, the SCRAM APIs 0, SaslHandshake 0-1 and SaslAuthenticate 0-2.
const SPOKEN: &[(ApiKey, i16, i16)] = &[
    (ApiKey::SaslHandshake, 1, 1),
    (ApiKey::SaslAuthenticate, 0, 2),
    (ApiKey::DescribeAcls, 1, 3),
    (ApiKey::CreateAcls, 1, 3),
    (ApiKey::DeleteAcls, 1, 3),
    (ApiKey::DescribeUserScramCredentials, 0, 0),
    (ApiKey::AlterUserScramCredentials, 0, 0),
];
/// ApiVersions v3: the first flexible version, answered by Kafka 2.4 and later.
const API_VERSIONS_VERSION: i16 = 3;

/// How the connection logs in.
#[derive(Clone)]
enum Login {
    Plaintext,
    Plain {
        user: String,
        password: Secret,
    },
    Scram {
        mechanism: ScramMechanism,
        user: String,
        password: Secret,
    },
}

impl Login {
    fn from_config(config: &KafkaConfig) -> Result<Login, KafkaError> {
        let protocol = config
            .property("security.protocol")
            .unwrap_or("plaintext")
            .to_ascii_lowercase();
        match protocol.as_str() {
            "plaintext" => return Ok(Login::Plaintext),
            "sasl_plaintext" => {}
            "ssl" | "sasl_ssl" => {
                return Err(KafkaError::Config(format!(
                    "security.protocol {protocol}: the Kafka security admin speaks plaintext and \
                     sasl_plaintext only, not TLS"
                )));
            }
            other => {
                return Err(KafkaError::Config(format!(
                    "unknown security.protocol {other:?}: use plaintext or sasl_plaintext"
                )));
            }
        }
        let mechanism = config.property("sasl.mechanism").ok_or_else(|| {
            KafkaError::Config(
                "sasl_plaintext needs sasl.mechanism (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
                    .into(),
            )
        })?;
        let user = config
            .property("sasl.username")
            .filter(|u| !u.is_empty())
            .ok_or_else(|| KafkaError::Config("sasl_plaintext needs sasl.username".into()))?
            .to_owned();
        let password = Secret::new(
            config
                .property("sasl.password")
                .ok_or_else(|| KafkaError::Config("sasl_plaintext needs sasl.password".into()))?,
        );
        if mechanism.eq_ignore_ascii_case("PLAIN") {
            return Ok(Login::Plain { user, password });
        }
        match ScramMechanism::from_name(mechanism) {
            Some(mechanism) => Ok(Login::Scram {
                mechanism,
                user,
                password,
            }),
            None => Err(KafkaError::Config(format!(
                "sasl.mechanism {mechanism:?} is not supported here: use PLAIN, SCRAM-SHA-256 \
                 or SCRAM-SHA-512"
            ))),
        }
    }

    fn mechanism(&self) -> &'static str {
        match self {
            Login::Plaintext => "none",
            Login::Plain { .. } => "PLAIN",
            Login::Scram { mechanism, .. } => mechanism.name(),
        }
    }
}

/// Manages SCRAM credentials and ACLs through the Kafka admin API (see the module docs).
pub struct SecurityAdmin {
    bootstrap: Vec<String>,
    timeout: Duration,
    login: Login,
    connection: Mutex<Option<Connection>>,
}

impl fmt::Debug for SecurityAdmin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let user = match &self.login {
            Login::Plaintext => None,
            Login::Plain { user, .. } | Login::Scram { user, .. } => Some(user.as_str()),
        };
        f.debug_struct("SecurityAdmin")
            .field("bootstrap", &self.bootstrap)
            .field("mechanism", &self.login.mechanism())
            .field("user", &user)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What a single request can fail with: a broken connection is retried once on a new one.
enum CallError {
    Broken(String),
    Fatal(KafkaError),
}

impl From<KafkaError> for CallError {
    fn from(e: KafkaError) -> Self {
        CallError::Fatal(e)
    }
}

/// Kafka's name of an error code (`TOPIC_AUTHORIZATION_FAILED`), from kafka-protocol's.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".into(),
        Some(ResponseError::Unknown(c)) => format!("UNKNOWN_CODE_{c}"),
        Some(e) => {
            let camel = format!("{e:?}");
            let mut out = String::with_capacity(camel.len() + 8);
            for (i, c) in camel.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_uppercase());
            }
            out
        }
    }
}

fn refused(what: &str, code: i16, message: Option<&StrBytes>) -> KafkaError {
    KafkaError::Refused {
        what: what.to_owned(),
        code,
        name: error_name(code),
        message: message.map(|m| m.to_string()),
    }
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_owned())
}

impl SecurityAdmin {
    /// Reads the bootstrap servers and SASL settings of `config`; connects at the first call.
    pub fn new(config: &KafkaConfig) -> Result<SecurityAdmin, KafkaError> {
        let login = Login::from_config(config)?;
        let bootstrap: Vec<String> = config
            .bootstrap_servers()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if bootstrap.is_empty() {
            return Err(KafkaError::Config("no bootstrap servers given".into()));
        }
        Ok(SecurityAdmin {
            bootstrap,
            timeout: config.timeout(),
            login,
            connection: Mutex::new(None),
        })
    }

    /// Sets (creates or replaces) `user`'s credential of `mechanism`: a random 32-byte
    /// salt, [`SCRAM_ITERATIONS`] iterations; only the salted password leaves this process.
    pub async fn set_scram_password(
        &self,
        user: &str,
        password: &Secret,
        mechanism: ScramMechanism,
    ) -> Result<(), KafkaError> {
        if user.is_empty() {
            return Err(KafkaError::Config(
                "a SCRAM user name must not be empty".into(),
            ));
        }
        if password.expose().is_empty() {
            return Err(KafkaError::Config(format!(
                "the {mechanism} password of {user:?} must not be empty"
            )));
        }
        let salt: [u8; SALT_LEN] = rand::thread_rng().r#gen();
        let salted =
            mechanism.salted_password(password.expose().as_bytes(), &salt, SCRAM_ITERATIONS as u32);
        let request = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
            ScramCredentialUpsertion::default()
                .with_name(s(user))
                .with_mechanism(mechanism.code())
                .with_iterations(SCRAM_ITERATIONS)
                .with_salt(Bytes::copy_from_slice(&salt))
                .with_salted_password(Bytes::from(salted)),
        ]);
        let what = format!("setting the {mechanism} credential of {user:?}");
        self.bounded(&what, async {
            let response: AlterUserScramCredentialsResponse = self
                .call(ApiKey::AlterUserScramCredentials, &request)
                .await?;
            check_scram_results(&what, &response, false)
        })
        .await
    }

    /// Deletes `user`'s credentials of both mechanisms; a user without any is no error.
    pub async fn delete_scram_user(&self, user: &str) -> Result<(), KafkaError> {
        let what = format!("deleting the SCRAM credentials of {user:?}");
        self.bounded(&what, async {
            // One request per mechanism: Kafka refuses a user's whole alteration when one
            // of its deletions names a credential that does not exist.
            for mechanism in ScramMechanism::ALL {
                let request = AlterUserScramCredentialsRequest::default().with_deletions(vec![
                    ScramCredentialDeletion::default()
                        .with_name(s(user))
                        .with_mechanism(mechanism.code()),
                ]);
                let response: AlterUserScramCredentialsResponse = self
                    .call(ApiKey::AlterUserScramCredentials, &request)
                    .await?;
                check_scram_results(&what, &response, true)?;
            }
            Ok(())
        })
        .await
    }

    /// Every user with SCRAM credentials and their mechanisms, sorted by user name.
    pub async fn scram_users(&self) -> Result<Vec<(String, Vec<ScramMechanism>)>, KafkaError> {
        let what = "describing SCRAM credentials";
        self.bounded(what, async {
            // users = null asks for every user.
            let response: DescribeUserScramCredentialsResponse = self
                .call(
                    ApiKey::DescribeUserScramCredentials,
                    &DescribeUserScramCredentialsRequest::default().with_users(None),
                )
                .await?;
            if response.error_code != 0 {
                return Err(
                    refused(what, response.error_code, response.error_message.as_ref()).into(),
                );
            }
            let mut users = Vec::new();
            for result in response.results {
                if result.error_code != 0 {
                    return Err(refused(
                        &format!("describing the SCRAM credentials of {:?}", &*result.user),
                        result.error_code,
                        result.error_message.as_ref(),
                    )
                    .into());
                }
                let mut mechanisms: Vec<ScramMechanism> = result
                    .credential_infos
                    .iter()
                    .filter_map(|c| ScramMechanism::from_code(c.mechanism))
                    .collect();
                mechanisms.sort();
                mechanisms.dedup();
                users.push((result.user.to_string(), mechanisms));
            }
            users.sort();
            Ok(users)
        })
        .await
    }

    /// Every ACL of the cluster that the model can express, sorted. ACLs on other resource
    /// types (transactional ids, delegation tokens, users) or with operations the model has
    /// no variant for are not streamhub's and are left out; [`Self::acls_with_skipped`]
    /// counts them.
    pub async fn acls(&self) -> Result<Vec<Acl>, KafkaError> {
        Ok(self.acls_with_skipped().await?.0)
    }

    /// [`Self::acls`] and the number of ACLs left out.
    pub async fn acls_with_skipped(&self) -> Result<(Vec<Acl>, usize), KafkaError> {
        let what = "describing ACLs";
        self.bounded(what, async {
            let filter = DescribeAclsRequest::default()
                .with_resource_type_filter(codes::ANY)
                .with_resource_name_filter(None)
                .with_pattern_type_filter(codes::ANY)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_operation(codes::ANY)
                .with_permission_type(codes::ANY);
            let response: DescribeAclsResponse = self.call(ApiKey::DescribeAcls, &filter).await?;
            if response.error_code != 0 {
                return Err(
                    refused(what, response.error_code, response.error_message.as_ref()).into(),
                );
            }
            let mut acls = Vec::new();
            let mut skipped = 0;
            for resource in &response.resources {
                for d in &resource.acls {
                    match codes::to_acl(
                        resource.resource_type,
                        &resource.resource_name,
                        resource.pattern_type,
                        &d.principal,
                        &d.host,
                        d.operation,
                        d.permission_type,
                    ) {
                        Some(acl) => acls.push(acl),
                        None => skipped += 1,
                    }
                }
            }
            acls.sort();
            acls.dedup();
            if skipped > 0 {
                tracing::debug!(skipped, "ACLs the model cannot express were left out");
            }
            Ok((acls, skipped))
        })
        .await
    }

    /// Creates `acls` (creating one that exists is no error, as in Kafka). The ACLs Kafka
    /// refuses are listed in [`KafkaError::Acls`]; the others were created.
    pub async fn create_acls(&self, acls: &[Acl]) -> Result<(), KafkaError> {
        if acls.is_empty() {
            return Ok(());
        }
        let creations = acls
            .iter()
            .map(|a| {
                AclCreation::default()
                    .with_resource_type(codes::resource_type(a.resource_type))
                    .with_resource_name(s(&a.resource_name))
                    .with_resource_pattern_type(codes::pattern(a.pattern))
                    .with_principal(s(&a.principal))
                    .with_host(s(&a.host))
                    .with_operation(codes::operation(a.operation))
                    .with_permission_type(codes::permission(a.permission))
            })
            .collect();
        let request = CreateAclsRequest::default().with_creations(creations);
        self.bounded("creating ACLs", async {
            let response: CreateAclsResponse = self.call(ApiKey::CreateAcls, &request).await?;
            if response.results.len() != acls.len() {
                return Err(CallError::Fatal(KafkaError::Protocol {
                    server: self.server().await,
                    reason: format!(
                        "CreateAcls answered {} results for {} ACLs",
                        response.results.len(),
                        acls.len()
                    ),
                }));
            }
            let failures: Vec<AclFailure> = acls
                .iter()
                .zip(&response.results)
                .filter(|(_, r)| r.error_code != 0)
                .map(|(acl, r)| AclFailure {
                    acl: acl.clone(),
                    code: r.error_code,
                    name: error_name(r.error_code),
                    message: r.error_message.as_ref().map(|m| m.to_string()),
                })
                .collect();
            acl_outcome(acls.len(), failures)
        })
        .await
    }

    /// Deletes exactly `acls` (each an exact-match filter: no ANY, no pattern matching).
    /// Returns how many ACLs the broker deleted; deleting one that does not exist is no
    /// error. Refused filters are listed in [`KafkaError::Acls`].
    pub async fn delete_acls(&self, acls: &[Acl]) -> Result<usize, KafkaError> {
        if acls.is_empty() {
            return Ok(0);
        }
        let filters = acls
            .iter()
            .map(|a| {
                DeleteAclsFilter::default()
                    .with_resource_type_filter(codes::resource_type(a.resource_type))
                    .with_resource_name_filter(Some(s(&a.resource_name)))
                    .with_pattern_type_filter(codes::pattern(a.pattern))
                    .with_principal_filter(Some(s(&a.principal)))
                    .with_host_filter(Some(s(&a.host)))
                    .with_operation(codes::operation(a.operation))
                    .with_permission_type(codes::permission(a.permission))
            })
            .collect();
        let request = DeleteAclsRequest::default().with_filters(filters);
        self.bounded("deleting ACLs", async {
            let response: DeleteAclsResponse = self.call(ApiKey::DeleteAcls, &request).await?;
            if response.filter_results.len() != acls.len() {
                return Err(CallError::Fatal(KafkaError::Protocol {
                    server: self.server().await,
                    reason: format!(
                        "DeleteAcls answered {} results for {} filters",
                        response.filter_results.len(),
                        acls.len()
                    ),
                }));
            }
            let mut deleted = 0;
            let mut failures = Vec::new();
            for (acl, result) in acls.iter().zip(&response.filter_results) {
                let failed = (result.error_code != 0)
                    .then_some((result.error_code, result.error_message.as_ref()))
                    .or_else(|| {
                        result
                            .matching_acls
                            .iter()
                            .find(|m| m.error_code != 0)
                            .map(|m| (m.error_code, m.error_message.as_ref()))
                    });
                match failed {
                    Some((code, message)) => failures.push(AclFailure {
                        acl: acl.clone(),
                        code,
                        name: error_name(code),
                        message: message.map(|m| m.to_string()),
                    }),
                    None => deleted += result.matching_acls.len(),
                }
            }
            acl_outcome(acls.len(), failures).map(|()| deleted)
        })
        .await
    }

    /// The server of the current connection, for messages.
    async fn server(&self) -> String {
        match &*self.connection.lock().await {
            Some(c) => c.server.clone(),
            None => self.bootstrap.join(","),
        }
    }

    /// Runs one public call within the timeout.
    async fn bounded<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, CallError>>,
    ) -> Result<T, KafkaError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(CallError::Fatal(e))) => Err(e),
            Ok(Err(CallError::Broken(reason))) => {
                // A SASL listener closes a connection whose first request after
                // ApiVersions is not a SASL handshake.
                let hint = match self.login {
                    Login::Plaintext => {
                        " (security.protocol is plaintext: does the listener \
                                         expect SASL?)"
                    }
                    _ => "",
                };
                Err(KafkaError::Unreachable {
                    bootstrap: self.bootstrap.join(","),
                    timeout: self.timeout,
                    reason: format!("{what}: {reason}{hint}"),
                })
            }
            Err(_) => {
                // A request cut off midway left its connection in_flight: the next call
                // replaces it.
                Err(KafkaError::Timeout {
                    what: what.to_owned(),
                    timeout: self.timeout,
                })
            }
        }
    }

    /// One request on the logged-in connection; on a broken connection, once more on a
    /// new one.
    async fn call<Req: Encodable, Resp: Decodable>(
        &self,
        key: ApiKey,
        request: &Req,
    ) -> Result<Resp, CallError> {
        let mut slot = self.connection.lock().await;
        let mut attempt = 0;
        loop {
            attempt += 1;
            if slot.as_ref().is_some_and(|c| c.in_flight) {
                *slot = None;
            }
            if slot.is_none() {
                *slot = Some(self.connect().await?);
            }
            let Some(connection) = slot.as_mut() else {
                unreachable!("connected above");
            };
            let outcome = match connection.version(key) {
                Ok(version) => connection.request(key, version, request).await,
                Err(e) => Err(CallError::Fatal(e)),
            };
            match outcome {
                Err(CallError::Broken(reason)) => {
                    *slot = None;
                    if attempt >= 2 {
                        return Err(CallError::Broken(reason));
                    }
                    tracing::debug!(%reason, "Kafka connection broke; reconnecting once");
                }
                other => return other,
            }
        }
    }

    /// A logged-in connection to the first bootstrap server that answers.
    async fn connect(&self) -> Result<Connection, CallError> {
        let mut reasons = Vec::new();
        for server in &self.bootstrap {
            let stream = match TcpStream::connect(server.as_str()).await {
                Ok(stream) => stream,
                Err(e) => {
                    reasons.push(format!("{server}: {e}"));
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let mut connection = Connection {
                stream,
                server: server.clone(),
                correlation: 0,
                in_flight: false,
                versions: HashMap::new(),
            };
            match connection.api_versions().await {
                Ok(()) => {}
                Err(CallError::Broken(reason)) => {
                    reasons.push(format!("{server}: {reason}"));
                    continue;
                }
                Err(fatal) => return Err(fatal),
            }
            connection.login(&self.login).await?;
            return Ok(connection);
        }
        Err(CallError::Fatal(KafkaError::Unreachable {
            bootstrap: self.bootstrap.join(","),
            timeout: self.timeout,
            reason: reasons.join("; "),
        }))
    }
}

fn acl_outcome(total: usize, failures: Vec<AclFailure>) -> Result<(), CallError> {
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CallError::Fatal(KafkaError::Acls { total, failures }))
    }
}

/// The results of AlterUserScramCredentials; with `deleting`, RESOURCE_NOT_FOUND (no such
/// credential) is success.
fn check_scram_results(
    what: &str,
    response: &AlterUserScramCredentialsResponse,
    deleting: bool,
) -> Result<(), CallError> {
    const RESOURCE_NOT_FOUND: i16 = 91;
    for result in &response.results {
        let code = result.error_code;
        if code == 0 || (deleting && code == RESOURCE_NOT_FOUND) {
            continue;
        }
        return Err(CallError::Fatal(refused(
            what,
            code,
            result.error_message.as_ref(),
        )));
    }
    Ok(())
}

/// One TCP connection to a broker, its API versions known and its login done.
struct Connection {
    stream: TcpStream,
    server: String,
    correlation: i32,
    /// A request was sent whose answer was not read in full (a call cut off by its
    /// timeout): the stream is out of step and the connection is not used again.
    in_flight: bool,
    /// Each API's version range as the broker announced it.
    versions: HashMap<i16, (i16, i16)>,
}

impl Connection {
    fn broken(&self, what: &str, e: impl fmt::Display) -> CallError {
        CallError::Broken(format!("{what} at {}: {e}", self.server))
    }

    fn protocol(&self, reason: String) -> CallError {
        CallError::Fatal(KafkaError::Protocol {
            server: self.server.clone(),
            reason,
        })
    }

    /// The highest version of `key` both sides speak.
    fn version(&self, key: ApiKey) -> Result<i16, KafkaError> {
        let (min, max) = SPOKEN
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, min, max)| (*min, *max))
            .unwrap_or((0, 0));
        let Some(&(broker_min, broker_max)) = self.versions.get(&(key as i16)) else {
            return Err(KafkaError::Broker(format!(
                "the broker at {} does not support {key:?}",
                self.server
            )));
        };
        let version = max.min(broker_max);
        if version < min.max(broker_min) {
            return Err(KafkaError::Broker(format!(
                "the broker at {} speaks {key:?} versions {broker_min}-{broker_max}, this \
                 client {min}-{max}",
                self.server
            )));
        }
        Ok(version)
    }

    async fn request<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        body: &Req,
    ) -> Result<Resp, CallError> {
        self.correlation = self.correlation.wrapping_add(1);
        let correlation = self.correlation;
        self.in_flight = true;
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header
            .encode(&mut buf, key.request_header_version(version))
            .and_then(|()| body.encode(&mut buf, version))
            .map_err(|e| {
                CallError::Fatal(KafkaError::Config(format!(
                    "cannot encode {key:?} v{version}: {e}"
                )))
            })?;
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        self.stream
            .write_all(&buf)
            .await
            .map_err(|e| self.broken("sending", e))?;

        let mut len = [0u8; 4];
        self.stream
            .read_exact(&mut len)
            .await
            .map_err(|e| self.broken(&format!("reading the {key:?} answer"), e))?;
        let len = i32::from_be_bytes(len);
        if len < 4 || len as usize > MAX_RESPONSE {
            return Err(self.protocol(format!("a {key:?} answer of {len} bytes")));
        }
        let mut frame = vec![0u8; len as usize];
        self.stream
            .read_exact(&mut frame)
            .await
            .map_err(|e| self.broken(&format!("reading the {key:?} answer"), e))?;
        self.in_flight = false;
        let mut frame = Bytes::from(frame);
        let header = ResponseHeader::decode(&mut frame, key.response_header_version(version))
            .map_err(|e| self.protocol(format!("{key:?} response header: {e}")))?;
        if header.correlation_id != correlation {
            return Err(self.protocol(format!(
                "correlation id {} answers a {key:?} request sent with {correlation}",
                header.correlation_id
            )));
        }
        let response = Resp::decode(&mut frame, version)
            .map_err(|e| self.protocol(format!("{key:?} v{version} response: {e}")))?;
        if frame.has_remaining() {
            tracing::debug!(
                api = ?key,
                left = frame.remaining(),
                "bytes left after a Kafka response"
            );
        }
        Ok(response)
    }

    async fn api_versions(&mut self) -> Result<(), CallError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("streamhub"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let response: ApiVersionsResponse = self
            .request(ApiKey::ApiVersions, API_VERSIONS_VERSION, &request)
            .await?;
        if response.error_code != 0 {
            return Err(CallError::Fatal(refused(
                &format!("ApiVersions at {}", self.server),
                response.error_code,
                None,
            )));
        }
        self.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(())
    }

    async fn login(&mut self, login: &Login) -> Result<(), CallError> {
        let (user, password, scram) = match login {
            Login::Plaintext => return Ok(()),
            Login::Plain { user, password } => (user, password, None),
            Login::Scram {
                mechanism,
                user,
                password,
            } => (user, password, Some(*mechanism)),
        };
        let mechanism = login.mechanism();
        let failed = |server: &str, reason: String| {
            CallError::Fatal(KafkaError::Authentication {
                server: server.to_owned(),
                user: user.clone(),
                mechanism: mechanism.to_owned(),
                reason,
            })
        };
        let version = self.version(ApiKey::SaslHandshake)?;
        let handshake: SaslHandshakeResponse = self
            .request(
                ApiKey::SaslHandshake,
                version,
                &SaslHandshakeRequest::default().with_mechanism(s(mechanism)),
            )
            .await?;
        if handshake.error_code != 0 {
            let offered: Vec<&str> = handshake.mechanisms.iter().map(|m| &**m).collect();
            return Err(failed(
                &self.server,
                format!(
                    "{} ({}); the listener offers [{}]",
                    error_name(handshake.error_code),
                    handshake.error_code,
                    offered.join(", ")
                ),
            ));
        }
        match scram {
            None => {
                let mut token = Vec::with_capacity(user.len() + password.expose().len() + 2);
                token.push(0);
                token.extend_from_slice(user.as_bytes());
                token.push(0);
                token.extend_from_slice(password.expose().as_bytes());
                self.authenticate(Bytes::from(token), &failed).await?;
            }
            Some(mechanism) => {
                let mut client = ScramClient::new(mechanism, user, password.expose());
                let server_first = self
                    .authenticate(Bytes::from(client.client_first()), &failed)
                    .await?;
                let client_final = client
                    .client_final(&server_first)
                    .map_err(|reason| failed(&self.server, reason))?;
                let server_final = self
                    .authenticate(Bytes::from(client_final), &failed)
                    .await?;
                client
                    .verify_server_final(&server_final)
                    .map_err(|reason| failed(&self.server, reason))?;
            }
        }
        Ok(())
    }

    /// One SaslAuthenticate round trip: the server's token, or the refusal.
    async fn authenticate(
        &mut self,
        token: Bytes,
        failed: &impl Fn(&str, String) -> CallError,
    ) -> Result<Bytes, CallError> {
        let version = self.version(ApiKey::SaslAuthenticate)?;
        let response: SaslAuthenticateResponse = self
            .request(
                ApiKey::SaslAuthenticate,
                version,
                &SaslAuthenticateRequest::default().with_auth_bytes(token),
            )
            .await?;
        if response.error_code != 0 {
            let message = response
                .error_message
                .as_ref()
                .map(|m| format!(": {}", m.split_whitespace().collect::<Vec<_>>().join(" ")))
                .unwrap_or_default();
            return Err(failed(
                &self.server,
                format!(
                    "{} (error code {}){message}",
                    error_name(response.error_code),
                    response.error_code
                ),
            ));
        }
        Ok(response.auth_bytes)
    }
}

/// Kafka's codes of ACL fields (`AclOperation`, `ResourceType`, `PatternType`,
/// `AclPermissionType` in org.apache.kafka.common).
mod codes {
    use super::*;

    pub const ANY: i8 = 1;

    pub fn resource_type(t: ResourceType) -> i8 {
        match t {
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
        }
    }

    pub fn pattern(p: PatternType) -> i8 {
        match p {
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }

    pub fn permission(p: Permission) -> i8 {
        match p {
            Permission::Deny => 2,
            Permission::Allow => 3,
        }
    }

    const OPERATIONS: [(Operation, i8); 11] = [
        (Operation::All, 2),
        (Operation::Read, 3),
        (Operation::Write, 4),
        (Operation::Create, 5),
        (Operation::Delete, 6),
        (Operation::Alter, 7),
        (Operation::Describe, 8),
        (Operation::ClusterAction, 9),
        (Operation::DescribeConfigs, 10),
        (Operation::AlterConfigs, 11),
        (Operation::IdempotentWrite, 12),
    ];

    pub fn operation(o: Operation) -> i8 {
        OPERATIONS
            .iter()
            .find(|(op, _)| *op == o)
            .map(|(_, c)| *c)
            .unwrap_or(0)
    }

    /// The model's ACL for Kafka's codes, `None` when the model has no variant for one.
    pub fn to_acl(
        resource_type: i8,
        name: &str,
        pattern_type: i8,
        principal: &str,
        host: &str,
        op: i8,
        permission_type: i8,
    ) -> Option<Acl> {
        let resource_type = match resource_type {
            2 => ResourceType::Topic,
            3 => ResourceType::Group,
            4 => ResourceType::Cluster,
            _ => return None,
        };
        let pattern = match pattern_type {
            3 => PatternType::Literal,
            4 => PatternType::Prefixed,
            _ => return None,
        };
        let permission = match permission_type {
            2 => Permission::Deny,
            3 => Permission::Allow,
            _ => return None,
        };
        let operation = OPERATIONS.iter().find(|(_, c)| *c == op)?.0;
        Some(Acl {
            resource_type,
            resource_name: name.to_owned(),
            pattern,
            principal: principal.to_owned(),
            host: host.to_owned(),
            operation,
            permission,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(29), "TOPIC_AUTHORIZATION_FAILED");
        assert_eq!(error_name(58), "SASL_AUTHENTICATION_FAILED");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(-32000), "UNKNOWN_CODE_-32000");
    }

    #[test]
    fn acl_codes_round_trip() {
        let acl = Acl {
            pattern: PatternType::Prefixed,
            permission: Permission::Deny,
            ..Acl::allow(
                "User:a",
                Operation::IdempotentWrite,
                ResourceType::Cluster,
                "kafka-cluster",
            )
        };
        let back = codes::to_acl(
            codes::resource_type(acl.resource_type),
            &acl.resource_name,
            codes::pattern(acl.pattern),
            &acl.principal,
            &acl.host,
            codes::operation(acl.operation),
            codes::permission(acl.permission),
        );
        assert_eq!(back, Some(acl));
        // TransactionalId (5) and CreateTokens (13) have no model variant.
        assert_eq!(codes::to_acl(5, "t", 3, "User:a", "*", 3, 3), None);
        assert_eq!(codes::to_acl(2, "t", 3, "User:a", "*", 13, 3), None);
    }

    #[test]
    fn configuration_errors_are_clear_and_keep_the_password() {
        let base = KafkaConfig::new("127.0.0.1:1")
            .with("security.protocol", "SASL_PLAINTEXT")
            .with("sasl.username", "admin")
            .with("sasl.password", "hunter2");
        let err = SecurityAdmin::new(&base.clone().with("sasl.mechanism", "GSSAPI"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("GSSAPI") && !err.contains("hunter2"), "{err}");
        let err = SecurityAdmin::new(&base).unwrap_err().to_string();
        assert!(err.contains("sasl.mechanism"), "{err}");
        let admin =
            SecurityAdmin::new(&base.clone().with("sasl.mechanism", "SCRAM-SHA-512")).unwrap();
        let shown = format!("{admin:?}");
        assert!(
            shown.contains("admin") && !shown.contains("hunter2"),
            "{shown}"
        );
        let err = SecurityAdmin::new(&base.with("security.protocol", "ssl"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("TLS"), "{err}");
    }
}
