//! Authentication (SASL PLAIN and SCRAM) and authorization (ACLs) with Apache Kafka's
//! semantics. Off in [`Security::Open`], the default: every request is answered, the ACL
//! APIs answer SECURITY_DISABLED.
//!
//! PLAIN users are SCRAM users: the broker stores no password, so a PLAIN password is
//! checked by deriving the SCRAM StoredKey from it with the stored salt and iterations
//! (SCRAM-SHA-512's credential if the user has one, else SCRAM-SHA-256's) and comparing.
//! One set of credentials, managed with AlterUserScramCredentials, serves all three
//! mechanisms.

pub mod acl;
pub mod sasl;
pub mod scram;
mod store;

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use rand::Rng;

use self::acl::{AclBinding, AclFilter, Caller};
use self::scram::{ScramCredential, ScramMechanism};
use self::store::SecurityFile;

/// What a listener asks of its clients.
#[derive(Clone, Debug, Default)]
pub enum Security {
    /// No authentication, no authorization: every client may do everything.
    #[default]
    Open,
    /// SASL authentication on every connection, and ACL authorization of every request.
    Sasl(SaslConfig),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    pub const ALL: [SaslMechanism; 3] = [
        SaslMechanism::Plain,
        SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    pub fn from_name(name: &str) -> Option<SaslMechanism> {
        SaslMechanism::ALL.into_iter().find(|m| m.name() == name)
    }

    fn scram(self) -> Option<ScramMechanism> {
        match self {
            SaslMechanism::Plain => None,
            SaslMechanism::ScramSha256 => Some(ScramMechanism::Sha256),
            SaslMechanism::ScramSha512 => Some(ScramMechanism::Sha512),
        }
    }
}

/// SASL settings (Kafka's `sasl.enabled.mechanisms`, `super.users`,
/// `allow.everyone.if.no.acl.found`), and users whose credentials the broker sets itself.
#[derive(Clone, Debug)]
pub struct SaslConfig {
    pub mechanisms: Vec<SaslMechanism>,
    /// Principals (`User:admin`) allowed everything, whatever the ACLs say.
    pub super_users: Vec<String>,
    /// Users given SCRAM-SHA-256 and SCRAM-SHA-512 credentials for these passwords at each
    /// start (kept when they already match, replaced when they do not): the first
    /// administrator's login, before any credential can be made through the admin API.
    pub users: Vec<SaslUser>,
    /// Kafka's default is false: a resource without any ACL is denied to all but super users.
    pub allow_everyone_if_no_acl_found: bool,
}

impl SaslConfig {
    /// All three mechanisms, no super user, no user, Kafka's default for missing ACLs.
    pub fn new() -> SaslConfig {
        SaslConfig {
            mechanisms: SaslMechanism::ALL.to_vec(),
            super_users: Vec::new(),
            users: Vec::new(),
            allow_everyone_if_no_acl_found: false,
        }
    }
}

impl Default for SaslConfig {
    fn default() -> Self {
        SaslConfig::new()
    }
}

#[derive(Clone)]
pub struct SaslUser {
    pub name: String,
    pub password: String,
}

impl fmt::Debug for SaslUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslUser")
            .field("name", &self.name)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Whether `dir` holds credentials and ACLs of a SASL broker.
pub fn security_file_exists(dir: &Path) -> bool {
    SecurityFile::path(dir).exists()
}

/// The principal of an authenticated user, as Kafka's default principal builder names it.
pub fn user_principal(user: &str) -> String {
    format!("User:{user}")
}

pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// Credentials and ACLs of a SASL broker, shared by every connection.
pub struct Authorizer {
    pub mechanisms: Vec<SaslMechanism>,
    super_users: HashSet<String>,
    allow_if_none: bool,
    dir: PathBuf,
    data: RwLock<SecurityFile>,
    /// Serialises changes and their writes to the file.
    write: Mutex<()>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write {file}: {source}")]
pub struct PersistError {
    file: String,
    source: std::io::Error,
}

impl Authorizer {
    pub fn open(dir: &Path, config: &SaslConfig) -> Result<Authorizer, String> {
        if config.mechanisms.is_empty() {
            return Err("SASL needs at least one enabled mechanism".into());
        }
        for p in &config.super_users {
            if !acl::valid_principal(p) {
                return Err(format!(
                    "super user {p:?} is not a principal: expected Type:name, e.g. User:admin"
                ));
            }
        }
        let loaded = SecurityFile::load(dir).map_err(|e| format!("reading credentials: {e}"))?;
        let mut data = loaded.clone().unwrap_or_default();
        if data.decoy_key.is_empty() {
            data.decoy_key = vec![0u8; 32];
            rand::thread_rng().fill(&mut data.decoy_key[..]);
        }
        let mut changed = loaded.is_none();
        for user in &config.users {
            if user.name.is_empty() {
                return Err("a SASL user needs a name".into());
            }
            let creds = data.credentials.entry(user.name.clone()).or_default();
            for mech in ScramMechanism::ALL {
                let current = creds
                    .get(&mech)
                    .is_some_and(|c| c.verify_password(mech, &user.password));
                if !current {
                    creds.insert(
                        mech,
                        ScramCredential::new(mech, &user.password, scram::DEFAULT_ITERATIONS),
                    );
                    changed = true;
                }
            }
        }
        if changed {
            data.store(dir)
                .map_err(|e| format!("writing credentials: {e}"))?;
        }
        Ok(Authorizer {
            mechanisms: config.mechanisms.clone(),
            super_users: config.super_users.iter().cloned().collect(),
            allow_if_none: config.allow_everyone_if_no_acl_found,
            dir: dir.to_path_buf(),
            data: RwLock::new(data),
            write: Mutex::new(()),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, SecurityFile> {
        self.data.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_super_user(&self, caller: &Caller) -> bool {
        self.super_users.contains(&caller.principal)
    }

    /// Whether `caller` may do `operation` on the resource.
    pub fn authorize(&self, caller: &Caller, operation: i8, resource_type: i8, name: &str) -> bool {
        if self.is_super_user(caller) {
            return true;
        }
        acl::decide(
            &self.read().acls,
            caller,
            operation,
            resource_type,
            name,
            self.allow_if_none,
        )
    }

    /// The bitfield of operations `caller` may do on the resource (bit n: operation code n).
    pub fn authorized_operations(&self, caller: &Caller, resource_type: i8, name: &str) -> i32 {
        acl::reported_ops(resource_type)
            .filter(|&o| self.authorize(caller, o, resource_type, name))
            .fold(0, |bits, o| bits | (1 << o))
    }

    /// Whether `caller` may do `operation` on at least one resource of the type, as Kafka's
    /// `Authorizer.authorizeByResourceType`: some ALLOW binding applies to the caller and
    /// no DENY binding for the caller covers all that the ALLOW does.
    pub fn authorize_any(&self, caller: &Caller, operation: i8, resource_type: i8) -> bool {
        if self.is_super_user(caller) {
            return true;
        }
        let data = self.read();
        let for_caller = |a: &&AclBinding| {
            a.resource_type == resource_type
                && (a.principal == caller.principal || a.principal == acl::WILDCARD_PRINCIPAL)
                && (a.host == caller.host || a.host == acl::WILDCARD)
        };
        let denies: Vec<&AclBinding> = data
            .acls
            .iter()
            .filter(for_caller)
            .filter(|a| {
                a.permission == acl::permission::DENY
                    && (a.operation == operation || a.operation == acl::op::ALL)
            })
            .collect();
        let covered = |allow: &AclBinding| {
            denies.iter().any(|d| match d.pattern_type {
                acl::pattern::LITERAL if d.resource_name == acl::WILDCARD => true,
                acl::pattern::LITERAL => {
                    allow.pattern_type == acl::pattern::LITERAL
                        && allow.resource_name == d.resource_name
                }
                acl::pattern::PREFIXED => {
                    allow.resource_name != acl::WILDCARD
                        && allow.resource_name.starts_with(&d.resource_name)
                }
                _ => false,
            })
        };
        let allowed = data.acls.iter().filter(for_caller).any(|a| {
            a.permission == acl::permission::ALLOW
                && (a.operation == operation || a.operation == acl::op::ALL)
                && !covered(a)
        });
        allowed
            || (self.allow_if_none
                && denies.is_empty()
                && !data.acls.iter().any(|a| a.resource_type == resource_type))
    }

    pub fn scram_credential(&self, user: &str, mech: ScramMechanism) -> Option<ScramCredential> {
        self.read()
            .credentials
            .get(user)
            .and_then(|c| c.get(&mech))
            .cloned()
    }

    pub fn decoy_salt(&self, user: &str) -> Vec<u8> {
        scram::ScramServer::decoy_salt(&self.read().decoy_key, user)
    }

    /// SASL/PLAIN: the password checked against the user's SCRAM credential (see the
    /// module docs). Slow by design (PBKDF2): call off the async threads.
    pub fn verify_plain(&self, user: &str, password: &str) -> bool {
        let found = {
            let data = self.read();
            data.credentials.get(user).and_then(|c| {
                [ScramMechanism::Sha512, ScramMechanism::Sha256]
                    .into_iter()
                    .find_map(|m| c.get(&m).map(|cred| (m, cred.clone())))
            })
        };
        match found {
            Some((mech, cred)) => cred.verify_password(mech, password),
            None => {
                // The same work for an unknown user, so timing does not tell.
                let salt = self.decoy_salt(user);
                let _ = ScramMechanism::Sha512.salted_password(
                    password.as_bytes(),
                    &salt,
                    scram::DEFAULT_ITERATIONS as u32,
                );
                false
            }
        }
    }

    pub fn acls(&self) -> Vec<AclBinding> {
        self.read().acls.clone()
    }

    pub fn credentials(&self) -> BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>> {
        self.read().credentials.clone()
    }

    /// Applies `change` to a copy of the data, writes it, then makes it current: a failed
    /// write changes nothing.
    pub fn update<R>(
        &self,
        change: impl FnOnce(&mut SecurityFile) -> R,
    ) -> Result<R, PersistError> {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = self.read().clone();
        let result = change(&mut next);
        next.store(&self.dir).map_err(|source| PersistError {
            file: store::SECURITY_FILE.into(),
            source,
        })?;
        *self.data.write().unwrap_or_else(|p| p.into_inner()) = next;
        Ok(result)
    }

    /// Adds the bindings not already there.
    pub fn create_acls(&self, bindings: &[AclBinding]) -> Result<(), PersistError> {
        self.update(|d| {
            for b in bindings {
                if !d.acls.contains(b) {
                    d.acls.push(b.clone());
                }
            }
        })
    }

    /// Removes the bindings each filter matches; per filter, those it removed.
    pub fn delete_acls(&self, filters: &[AclFilter]) -> Result<Vec<Vec<AclBinding>>, PersistError> {
        self.update(|d| {
            let removed: Vec<Vec<AclBinding>> = filters
                .iter()
                .map(|f| d.acls.iter().filter(|a| f.matches(a)).cloned().collect())
                .collect();
            d.acls.retain(|a| !filters.iter().any(|f| f.matches(a)));
            removed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::acl::{AclBinding, Caller, op, pattern, permission, resource};
    use super::*;

    fn binding(name: &str, pt: i8, operation: i8, perm: i8) -> AclBinding {
        AclBinding {
            resource_type: resource::TOPIC,
            resource_name: name.into(),
            pattern_type: pt,
            principal: "User:alice".into(),
            host: "*".into(),
            operation,
            permission: perm,
        }
    }

    #[test]
    fn authorize_any_needs_an_allow_no_deny_covers() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = SaslConfig::new();
        config.super_users = vec!["User:root".into()];
        let auth = Authorizer::open(dir.path(), &config).unwrap();
        let alice = Caller {
            principal: "User:alice".into(),
            host: "10.1.2.3".into(),
        };
        let any = |a: &Authorizer| a.authorize_any(&alice, op::WRITE, resource::TOPIC);
        assert!(!any(&auth));
        auth.create_acls(&[binding(
            "logs-",
            pattern::PREFIXED,
            op::WRITE,
            permission::ALLOW,
        )])
        .unwrap();
        assert!(any(&auth));
        // A DENY on a wider prefix covers the ALLOW; one on a narrower name does not.
        auth.create_acls(&[binding(
            "logs-eu",
            pattern::LITERAL,
            op::WRITE,
            permission::DENY,
        )])
        .unwrap();
        assert!(any(&auth));
        auth.create_acls(&[binding("lo", pattern::PREFIXED, op::ALL, permission::DENY)])
            .unwrap();
        assert!(!any(&auth));
        let root = Caller {
            principal: "User:root".into(),
            host: "10.1.2.3".into(),
        };
        assert!(auth.authorize_any(&root, op::WRITE, resource::TOPIC));
        assert!(auth.authorize(&root, op::ALTER, resource::CLUSTER, acl::CLUSTER_NAME));
    }

    #[test]
    fn bootstrap_users_keep_matching_credentials_and_lose_stale_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = SaslConfig::new();
        config.users = vec![SaslUser {
            name: "admin".into(),
            password: "one".into(),
        }];
        let first = Authorizer::open(dir.path(), &config).unwrap().credentials();
        let again = Authorizer::open(dir.path(), &config).unwrap().credentials();
        assert_eq!(first, again, "a matching credential is kept");
        config.users[0].password = "two".into();
        let auth = Authorizer::open(dir.path(), &config).unwrap();
        assert!(auth.verify_plain("admin", "two"));
        assert!(!auth.verify_plain("admin", "one"));
        assert!(!auth.verify_plain("nobody", "two"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(store::SECURITY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    /// The cost of the check every Produce and Fetch pays per topic, with a realistic number
    /// of bindings (for BENCHMARKS.md): `cargo test --release -p streamhub-broker --lib
    /// authorize_cost -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn authorize_cost() {
        let dir = tempfile::tempdir().unwrap();
        let auth = Authorizer::open(dir.path(), &SaslConfig::new()).unwrap();
        let mut acls = Vec::new();
        for i in 0..50 {
            for o in [op::READ, op::WRITE, op::DESCRIBE] {
                acls.push(binding(
                    &format!("topic-{i}"),
                    pattern::LITERAL,
                    o,
                    permission::ALLOW,
                ));
            }
        }
        auth.create_acls(&acls).unwrap();
        let alice = Caller {
            principal: "User:alice".into(),
            host: "127.0.0.1".into(),
        };
        let n = 1_000_000u32;
        let started = std::time::Instant::now();
        let mut allowed = 0u32;
        for i in 0..n {
            let o = if i % 2 == 0 { op::WRITE } else { op::READ };
            allowed += u32::from(auth.authorize(&alice, o, resource::TOPIC, "topic-49"));
        }
        let per_call = started.elapsed() / n;
        assert_eq!(allowed, n);
        println!(
            "authorize with {} bindings: {per_call:?} per call",
            acls.len()
        );
    }
}
