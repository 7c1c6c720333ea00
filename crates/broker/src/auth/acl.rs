//! ACL bindings, filters and the authorization decision, with the codes and rules of
//! Kafka's `org.apache.kafka.common.acl` / `resource` packages and `StandardAuthorizerData`.

use serde::{Deserialize, Serialize};

/// `ResourceType` codes.
pub mod resource {
    pub const ANY: i8 = 1;
    pub const TOPIC: i8 = 2;
    pub const GROUP: i8 = 3;
    pub const CLUSTER: i8 = 4;
    pub const TRANSACTIONAL_ID: i8 = 5;
    pub const DELEGATION_TOKEN: i8 = 6;
    pub const USER: i8 = 7;
}

/// `PatternType` codes.
pub mod pattern {
    pub const ANY: i8 = 1;
    pub const MATCH: i8 = 2;
    pub const LITERAL: i8 = 3;
    pub const PREFIXED: i8 = 4;
}

/// `AclOperation` codes.
pub mod op {
    pub const ANY: i8 = 1;
    pub const ALL: i8 = 2;
    pub const READ: i8 = 3;
    pub const WRITE: i8 = 4;
    pub const CREATE: i8 = 5;
    pub const DELETE: i8 = 6;
    pub const ALTER: i8 = 7;
    pub const DESCRIBE: i8 = 8;
    pub const CLUSTER_ACTION: i8 = 9;
    pub const DESCRIBE_CONFIGS: i8 = 10;
    pub const ALTER_CONFIGS: i8 = 11;
    pub const IDEMPOTENT_WRITE: i8 = 12;
    pub const DESCRIBE_TOKENS: i8 = 14;
}

/// `AclPermissionType` codes.
pub mod permission {
    pub const ANY: i8 = 1;
    pub const DENY: i8 = 2;
    pub const ALLOW: i8 = 3;
}

/// The one cluster resource's name.
pub const CLUSTER_NAME: &str = "kafka-cluster";
pub const WILDCARD: &str = "*";
pub const WILDCARD_PRINCIPAL: &str = "User:*";

/// One ACL: a resource pattern and an access control entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission: i8,
}

/// A filter of DescribeAcls and DeleteAcls: `None` and the ANY codes match everything.
#[derive(Clone, Debug)]
pub struct AclFilter {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission: i8,
}

/// The operations that mean something on each resource type (Kafka's
/// `AclEntry.supportedOperations`).
fn valid_ops(resource_type: i8) -> &'static [i8] {
    use op::*;
    match resource_type {
        resource::TOPIC => &[
            ALL,
            READ,
            WRITE,
            CREATE,
            DELETE,
            ALTER,
            DESCRIBE,
            DESCRIBE_CONFIGS,
            ALTER_CONFIGS,
        ],
        resource::GROUP => &[ALL, READ, DELETE, DESCRIBE],
        resource::TRANSACTIONAL_ID => &[ALL, DESCRIBE, WRITE],
        resource::CLUSTER => &[
            ALL,
            CREATE,
            ALTER,
            DESCRIBE,
            CLUSTER_ACTION,
            DESCRIBE_CONFIGS,
            ALTER_CONFIGS,
            IDEMPOTENT_WRITE,
        ],
        _ => &[],
    }
}

/// The operations reported in "authorized operations" bitfields (Metadata, DescribeCluster,
/// DescribeGroups) per resource type: Kafka's `AclEntry.supportedOperations`, without ALL.
pub fn reported_ops(resource_type: i8) -> impl Iterator<Item = i8> {
    valid_ops(resource_type)
        .iter()
        .copied()
        .filter(|&o| o != op::ALL)
}

/// `User:name` (any principal type, non-empty name), as `SecurityUtils.parseKafkaPrincipal`.
pub fn valid_principal(p: &str) -> bool {
    matches!(p.split_once(':'), Some((t, n)) if !t.is_empty() && !n.is_empty())
}

impl AclBinding {
    /// Why CreateAcls refuses this binding (INVALID_REQUEST): Kafka's checks
    /// (`AclApis.handleCreateAcls`, `AclControlManager.validateNewAcl`), plus a principal of
    /// the form `Type:name`, a non-empty host, and no resource types this broker has nothing
    /// of (delegation tokens, users).
    pub fn validate(&self) -> Result<(), String> {
        match self.resource_type {
            resource::TOPIC | resource::GROUP | resource::CLUSTER | resource::TRANSACTIONAL_ID => {}
            resource::DELEGATION_TOKEN | resource::USER => {
                return Err(format!(
                    "ACLs on resource type {} are not supported: this broker has no delegation tokens",
                    self.resource_type
                ));
            }
            t => return Err(format!("invalid resource type {t}")),
        }
        if self.pattern_type != pattern::LITERAL && self.pattern_type != pattern::PREFIXED {
            return Err(format!(
                "invalid pattern type {}: LITERAL or PREFIXED",
                self.pattern_type
            ));
        }
        if self.resource_name.is_empty() {
            return Err("resource name must not be empty".into());
        }
        // As Kafka's AclControlManager: the cluster resource is only `kafka-cluster`.
        if self.resource_type == resource::CLUSTER
            && (self.pattern_type != pattern::LITERAL || self.resource_name != CLUSTER_NAME)
        {
            return Err(format!(
                "the CLUSTER resource must be the literal {CLUSTER_NAME:?}"
            ));
        }
        if !valid_principal(&self.principal) {
            return Err(format!(
                "invalid principal {:?}: expected Type:name, e.g. User:alice",
                self.principal
            ));
        }
        if self.host.is_empty() {
            return Err("host must not be empty (\"*\" for any)".into());
        }
        // Any operation but ANY/UNKNOWN, even one the resource type never checks: Kafka's
        // AclControlManager.validateNewAcl accepts those too.
        if !(op::ALL..=op::DESCRIBE_TOKENS).contains(&self.operation) {
            return Err(format!("invalid operation {}", self.operation));
        }
        if self.permission != permission::ALLOW && self.permission != permission::DENY {
            return Err(format!(
                "invalid permission type {}: ALLOW or DENY",
                self.permission
            ));
        }
        Ok(())
    }
}

impl AclFilter {
    /// A filter with UNKNOWN (0) or out-of-range codes matches nothing sensible: Kafka
    /// answers INVALID_REQUEST.
    pub fn validate(&self) -> Result<(), String> {
        if !(resource::ANY..=resource::USER).contains(&self.resource_type) {
            return Err(format!(
                "invalid resource type filter {}",
                self.resource_type
            ));
        }
        if !(pattern::ANY..=pattern::PREFIXED).contains(&self.pattern_type) {
            return Err(format!("invalid pattern type filter {}", self.pattern_type));
        }
        if !(op::ANY..=op::DESCRIBE_TOKENS).contains(&self.operation) {
            return Err(format!("invalid operation filter {}", self.operation));
        }
        if !(permission::ANY..=permission::ALLOW).contains(&self.permission) {
            return Err(format!(
                "invalid permission type filter {}",
                self.permission
            ));
        }
        Ok(())
    }

    /// `AclBindingFilter.matches`: `ResourcePatternFilter` then `AccessControlEntryFilter`.
    pub fn matches(&self, acl: &AclBinding) -> bool {
        self.matches_resource(acl)
            && self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && (self.operation == op::ANY || self.operation == acl.operation)
            && (self.permission == permission::ANY || self.permission == acl.permission)
    }

    fn matches_resource(&self, acl: &AclBinding) -> bool {
        if self.resource_type != resource::ANY && self.resource_type != acl.resource_type {
            return false;
        }
        if self.pattern_type != pattern::ANY
            && self.pattern_type != pattern::MATCH
            && self.pattern_type != acl.pattern_type
        {
            return false;
        }
        let Some(name) = &self.resource_name else {
            return true;
        };
        if self.pattern_type == pattern::ANY || self.pattern_type == acl.pattern_type {
            return *name == acl.resource_name;
        }
        // MATCH: the bindings that would apply to a resource called `name`.
        match acl.pattern_type {
            pattern::LITERAL => *name == acl.resource_name || acl.resource_name == WILDCARD,
            pattern::PREFIXED => name.starts_with(&acl.resource_name),
            _ => false,
        }
    }
}

/// Who asks, from where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// `User:name`, or `User:ANONYMOUS` before authentication.
    pub principal: String,
    pub host: String,
}

/// Whether an ALLOW binding for `granted` permits `wanted`: ALL permits everything;
/// Describe is implied by Read, Write, Delete and Alter; DescribeConfigs by AlterConfigs
/// (`StandardAuthorizerData.matchAclRule` / `AclOperation` implication).
fn allow_implies(granted: i8, wanted: i8) -> bool {
    if granted == op::ALL || granted == wanted {
        return true;
    }
    match wanted {
        op::DESCRIBE => matches!(granted, op::READ | op::WRITE | op::DELETE | op::ALTER),
        op::DESCRIBE_CONFIGS => granted == op::ALTER_CONFIGS,
        _ => false,
    }
}

/// Whether `acl`'s pattern covers the resource `name` of `resource_type`.
fn covers(acl: &AclBinding, resource_type: i8, name: &str) -> bool {
    acl.resource_type == resource_type
        && match acl.pattern_type {
            pattern::LITERAL => acl.resource_name == name || acl.resource_name == WILDCARD,
            pattern::PREFIXED => name.starts_with(&acl.resource_name),
            _ => false,
        }
}

fn applies_to(acl: &AclBinding, caller: &Caller) -> bool {
    (acl.principal == caller.principal || acl.principal == WILDCARD_PRINCIPAL)
        && (acl.host == caller.host || acl.host == WILDCARD)
}

/// The decision for one action, as `StandardAuthorizerData.authorize`: any matching DENY
/// wins (a DENY on ALL denies every operation, but a DENY does not extend to implied
/// operations); else any matching ALLOW, with implication; else, when no binding at all
/// covers the resource, `allow_if_none`; else deny.
pub fn decide<'a>(
    acls: impl IntoIterator<Item = &'a AclBinding>,
    caller: &Caller,
    operation: i8,
    resource_type: i8,
    name: &str,
    allow_if_none: bool,
) -> bool {
    let mut any_binding = false;
    let mut allowed = false;
    for acl in acls {
        if !covers(acl, resource_type, name) {
            continue;
        }
        any_binding = true;
        if !applies_to(acl, caller) {
            continue;
        }
        match acl.permission {
            permission::DENY if acl.operation == operation || acl.operation == op::ALL => {
                return false;
            }
            permission::ALLOW if allow_implies(acl.operation, operation) => allowed = true,
            _ => {}
        }
    }
    allowed || (!any_binding && allow_if_none)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(rt: i8, name: &str, pt: i8, principal: &str, operation: i8, perm: i8) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: principal.into(),
            host: "*".into(),
            operation,
            permission: perm,
        }
    }

    fn alice() -> Caller {
        Caller {
            principal: "User:alice".into(),
            host: "127.0.0.1".into(),
        }
    }

    #[test]
    fn deny_wins_and_implication_is_allow_only() {
        use resource::TOPIC;
        let acls = vec![
            acl(
                TOPIC,
                "orders",
                pattern::LITERAL,
                "User:alice",
                op::READ,
                permission::ALLOW,
            ),
            acl(
                TOPIC,
                "ord",
                pattern::PREFIXED,
                "User:*",
                op::WRITE,
                permission::DENY,
            ),
        ];
        let can = |o, n| decide(&acls, &alice(), o, TOPIC, n, false);
        assert!(can(op::READ, "orders"));
        assert!(can(op::DESCRIBE, "orders"), "Read implies Describe");
        assert!(!can(op::WRITE, "orders"), "DENY Write by prefix");
        assert!(!can(op::READ, "other"), "no ACL: denied");
        assert!(decide(&acls, &alice(), op::READ, TOPIC, "other", true));
        assert!(!decide(&acls, &alice(), op::WRITE, TOPIC, "orders", true));
        let deny_all = vec![
            acl(
                TOPIC,
                "*",
                pattern::LITERAL,
                "User:alice",
                op::ALL,
                permission::ALLOW,
            ),
            acl(
                TOPIC,
                "x",
                pattern::LITERAL,
                "User:alice",
                op::ALL,
                permission::DENY,
            ),
        ];
        assert!(decide(&deny_all, &alice(), op::DESCRIBE, TOPIC, "y", false));
        assert!(!decide(
            &deny_all,
            &alice(),
            op::DESCRIBE,
            TOPIC,
            "x",
            false
        ));
        let deny_read = vec![
            acl(
                TOPIC,
                "x",
                pattern::LITERAL,
                "User:alice",
                op::ALL,
                permission::ALLOW,
            ),
            acl(
                TOPIC,
                "x",
                pattern::LITERAL,
                "User:alice",
                op::READ,
                permission::DENY,
            ),
        ];
        assert!(decide(
            &deny_read,
            &alice(),
            op::DESCRIBE,
            TOPIC,
            "x",
            false
        ));
        assert!(!decide(&deny_read, &alice(), op::READ, TOPIC, "x", false));
    }

    #[test]
    fn hosts_and_principals_must_match() {
        let mut a = acl(
            resource::GROUP,
            "g",
            pattern::LITERAL,
            "User:bob",
            op::READ,
            permission::ALLOW,
        );
        assert!(!decide(
            [&a],
            &alice(),
            op::READ,
            resource::GROUP,
            "g",
            false
        ));
        a.principal = "User:alice".into();
        a.host = "10.0.0.1".into();
        assert!(!decide(
            [&a],
            &alice(),
            op::READ,
            resource::GROUP,
            "g",
            false
        ));
        a.host = "127.0.0.1".into();
        assert!(decide(
            [&a],
            &alice(),
            op::READ,
            resource::GROUP,
            "g",
            false
        ));
    }

    #[test]
    fn filters_match_as_kafka() {
        let lit = acl(
            resource::TOPIC,
            "orders",
            pattern::LITERAL,
            "User:a",
            op::READ,
            permission::ALLOW,
        );
        let wild = acl(
            resource::TOPIC,
            "*",
            pattern::LITERAL,
            "User:a",
            op::READ,
            permission::ALLOW,
        );
        let pre = acl(
            resource::TOPIC,
            "ord",
            pattern::PREFIXED,
            "User:a",
            op::READ,
            permission::ALLOW,
        );
        let f = |pt: i8, name: Option<&str>| AclFilter {
            resource_type: resource::ANY,
            resource_name: name.map(String::from),
            pattern_type: pt,
            principal: None,
            host: None,
            operation: op::ANY,
            permission: permission::ANY,
        };
        let m = f(pattern::MATCH, Some("orders"));
        assert!(m.matches(&lit) && m.matches(&wild) && m.matches(&pre));
        let any = f(pattern::ANY, Some("orders"));
        assert!(any.matches(&lit) && !any.matches(&wild) && !any.matches(&pre));
        let p = f(pattern::PREFIXED, Some("ord"));
        assert!(!p.matches(&lit) && p.matches(&pre));
        assert!(f(pattern::LITERAL, None).matches(&wild));
    }

    #[test]
    fn bad_bindings_are_refused() {
        let ok = acl(
            resource::CLUSTER,
            CLUSTER_NAME,
            pattern::LITERAL,
            "User:a",
            op::ALTER,
            permission::ALLOW,
        );
        assert_eq!(ok.validate(), Ok(()));
        for bad in [
            AclBinding {
                resource_name: "other".into(),
                ..ok.clone()
            },
            AclBinding {
                principal: "alice".into(),
                ..ok.clone()
            },
            AclBinding {
                operation: op::ANY,
                ..ok.clone()
            },
            AclBinding {
                permission: permission::ANY,
                ..ok.clone()
            },
            AclBinding {
                pattern_type: pattern::MATCH,
                ..ok.clone()
            },
            AclBinding {
                resource_type: resource::DELEGATION_TOKEN,
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
