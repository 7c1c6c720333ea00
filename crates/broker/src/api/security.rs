//! The ACL APIs (DescribeAcls, CreateAcls, DeleteAcls) and the SCRAM credential APIs
//! (DescribeUserScramCredentials, AlterUserScramCredentials, KIP-554) of a SASL broker, as
//! Kafka's `KafkaApis`, `AclControlManager` and `ScramControlManager` answer them.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::authz::Guard;
use super::s;
use crate::auth::Authorizer;
use crate::auth::acl::{AclBinding, AclFilter, op};
use crate::auth::scram::{MAX_ITERATIONS, MIN_ITERATIONS, ScramCredential, ScramMechanism};

const CLUSTER_DENIED: i16 = ResponseError::ClusterAuthorizationFailed.code();
const INVALID: i16 = ResponseError::InvalidRequest.code();

fn opt(v: &Option<StrBytes>) -> Option<String> {
    v.as_ref().map(|s| s.to_string())
}

/// Runs a change of the security file off the async threads.
async fn blocking<R: Send + 'static>(
    auth: &Arc<Authorizer>,
    f: impl FnOnce(&Authorizer) -> R + Send + 'static,
) -> Option<R> {
    let auth = auth.clone();
    tokio::task::spawn_blocking(move || f(&auth)).await.ok()
}

// ------------------------------------------------------------------------- ACLs

pub fn describe_acls(
    g: &Guard,
    auth: &Authorizer,
    req: DescribeAclsRequest,
) -> DescribeAclsResponse {
    if !g.cluster(op::DESCRIBE) {
        return DescribeAclsResponse::default()
            .with_error_code(CLUSTER_DENIED)
            .with_error_message(Some(s("Cluster authorization failed.")));
    }
    let filter = AclFilter {
        resource_type: req.resource_type_filter,
        resource_name: opt(&req.resource_name_filter),
        pattern_type: req.pattern_type_filter,
        principal: opt(&req.principal_filter),
        host: opt(&req.host_filter),
        operation: req.operation,
        permission: req.permission_type,
    };
    if let Err(e) = filter.validate() {
        return DescribeAclsResponse::default()
            .with_error_code(INVALID)
            .with_error_message(Some(s(e)));
    }
    // Grouped by resource pattern, as Kafka's DescribeAclsResponse.aclsResources does.
    let mut by_resource: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for acl in auth.acls().iter().filter(|a| filter.matches(a)) {
        by_resource
            .entry((
                acl.resource_type,
                acl.resource_name.clone(),
                acl.pattern_type,
            ))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(s(acl.principal.clone()))
                    .with_host(s(acl.host.clone()))
                    .with_operation(acl.operation)
                    .with_permission_type(acl.permission),
            );
    }
    DescribeAclsResponse::default().with_resources(
        by_resource
            .into_iter()
            .map(|((rt, name, pt), acls)| {
                DescribeAclsResource::default()
                    .with_resource_type(rt)
                    .with_resource_name(s(name))
                    .with_pattern_type(pt)
                    .with_acls(acls)
            })
            .collect(),
    )
}

pub async fn create_acls(
    g: &Guard<'_>,
    auth: &Arc<Authorizer>,
    req: CreateAclsRequest,
) -> CreateAclsResponse {
    let n = req.creations.len();
    let result = |code: i16, message: Option<String>| {
        AclCreationResult::default()
            .with_error_code(code)
            .with_error_message(message.map(s))
    };
    if !g.cluster(op::ALTER) {
        return CreateAclsResponse::default().with_results(
            (0..n)
                .map(|_| result(CLUSTER_DENIED, Some("Cluster authorization failed.".into())))
                .collect(),
        );
    }
    let checked: Vec<Result<AclBinding, String>> = req
        .creations
        .into_iter()
        .map(|c| {
            let b = AclBinding {
                resource_type: c.resource_type,
                resource_name: c.resource_name.to_string(),
                pattern_type: c.resource_pattern_type,
                principal: c.principal.to_string(),
                host: c.host.to_string(),
                operation: c.operation,
                permission: c.permission_type,
            };
            b.validate().map(|()| b)
        })
        .collect();
    let valid: Vec<AclBinding> = checked.iter().filter_map(|r| r.clone().ok()).collect();
    let written = if valid.is_empty() {
        Some(Ok(()))
    } else {
        blocking(auth, move |a| a.create_acls(&valid)).await
    };
    let write_error = match written {
        Some(Ok(())) => None,
        Some(Err(e)) => {
            tracing::error!(error = %e, "cannot store ACLs");
            Some(e.to_string())
        }
        None => Some("the ACL change did not complete".to_string()),
    };
    CreateAclsResponse::default().with_results(
        checked
            .into_iter()
            .map(|r| match (r, &write_error) {
                (Err(e), _) => result(INVALID, Some(e)),
                (Ok(_), Some(e)) => {
                    result(ResponseError::UnknownServerError.code(), Some(e.clone()))
                }
                (Ok(_), None) => result(0, None),
            })
            .collect(),
    )
}

pub async fn delete_acls(
    g: &Guard<'_>,
    auth: &Arc<Authorizer>,
    req: DeleteAclsRequest,
) -> DeleteAclsResponse {
    let failed = |code: i16, message: String| {
        DeleteAclsFilterResult::default()
            .with_error_code(code)
            .with_error_message(Some(s(message)))
    };
    if !g.cluster(op::ALTER) {
        return DeleteAclsResponse::default().with_filter_results(
            req.filters
                .iter()
                .map(|_| failed(CLUSTER_DENIED, "Cluster authorization failed.".into()))
                .collect(),
        );
    }
    let filters: Vec<Result<AclFilter, String>> = req
        .filters
        .into_iter()
        .map(|f| {
            let filter = AclFilter {
                resource_type: f.resource_type_filter,
                resource_name: opt(&f.resource_name_filter),
                pattern_type: f.pattern_type_filter,
                principal: opt(&f.principal_filter),
                host: opt(&f.host_filter),
                operation: f.operation,
                permission: f.permission_type,
            };
            filter.validate().map(|()| filter)
        })
        .collect();
    let valid: Vec<AclFilter> = filters.iter().filter_map(|f| f.clone().ok()).collect();
    let removed = blocking(auth, move |a| a.delete_acls(&valid)).await;
    let mut removed = match removed {
        Some(Ok(r)) => r.into_iter(),
        other => {
            let message = match other {
                Some(Err(e)) => {
                    tracing::error!(error = %e, "cannot store ACLs");
                    e.to_string()
                }
                _ => "the ACL change did not complete".into(),
            };
            return DeleteAclsResponse::default().with_filter_results(
                filters
                    .iter()
                    .map(|_| failed(ResponseError::UnknownServerError.code(), message.clone()))
                    .collect(),
            );
        }
    };
    DeleteAclsResponse::default().with_filter_results(
        filters
            .into_iter()
            .map(|f| match f {
                Err(e) => failed(INVALID, e),
                Ok(_) => DeleteAclsFilterResult::default().with_matching_acls(
                    removed
                        .next()
                        .unwrap_or_default()
                        .into_iter()
                        .map(|a| {
                            DeleteAclsMatchingAcl::default()
                                .with_resource_type(a.resource_type)
                                .with_resource_name(s(a.resource_name))
                                .with_pattern_type(a.pattern_type)
                                .with_principal(s(a.principal))
                                .with_host(s(a.host))
                                .with_operation(a.operation)
                                .with_permission_type(a.permission)
                        })
                        .collect(),
                ),
            })
            .collect(),
    )
}

// ------------------------------------------------------------ SCRAM credentials

pub fn describe_user_scram_credentials(
    g: &Guard,
    auth: &Authorizer,
    req: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    use describe_user_scram_credentials_response::{
        CredentialInfo, DescribeUserScramCredentialsResult,
    };
    if !g.cluster(op::DESCRIBE) {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(CLUSTER_DENIED)
            .with_error_message(Some(s("Cluster authorization failed.")));
    }
    let all = auth.credentials();
    let info = |creds: &BTreeMap<ScramMechanism, ScramCredential>| {
        creds
            .iter()
            .map(|(m, c)| {
                CredentialInfo::default()
                    .with_mechanism(m.code())
                    .with_iterations(c.iterations)
            })
            .collect()
    };
    let results = match req.users.filter(|u| !u.is_empty()) {
        // Null or empty: every user with a credential.
        None => all
            .iter()
            .filter(|(_, c)| !c.is_empty())
            .map(|(user, c)| {
                DescribeUserScramCredentialsResult::default()
                    .with_user(s(user.clone()))
                    .with_credential_infos(info(c))
            })
            .collect(),
        Some(users) => {
            let mut seen = HashSet::new();
            let twice: HashSet<String> = users
                .iter()
                .filter(|u| !seen.insert(u.name.to_string()))
                .map(|u| u.name.to_string())
                .collect();
            let mut reported = HashSet::new();
            users
                .into_iter()
                .filter(|u| reported.insert(u.name.to_string()))
                .map(|u| {
                    let name = u.name.to_string();
                    let r = DescribeUserScramCredentialsResult::default().with_user(u.name);
                    if twice.contains(&name) {
                        return r
                            .with_error_code(ResponseError::DuplicateResource.code())
                            .with_error_message(Some(s(format!(
                                "Cannot describe SCRAM credentials for the same user twice in a single request: {name}"
                            ))));
                    }
                    match all.get(&name).filter(|c| !c.is_empty()) {
                        Some(c) => r.with_credential_infos(info(c)),
                        None => r
                            .with_error_code(ResponseError::ResourceNotFound.code())
                            .with_error_message(Some(s(format!(
                                "Attempt to describe a user credential that does not exist: {name}"
                            )))),
                    }
                })
                .collect()
        }
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

enum Change {
    Delete(ScramMechanism),
    Upsert(ScramMechanism, ScramCredential),
}

type Credentials = BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>;

/// One deletion (`upsertion` is `None`) or upsertion, checked as Kafka's
/// `ScramControlManager.validateDeletion` / `validateUpsertion`; an empty salt or salted
/// password, which no client sends, is refused too.
fn check_change(
    existing: &Credentials,
    user: &str,
    mechanism: i8,
    upsertion: Option<&alter_user_scram_credentials_request::ScramCredentialUpsertion>,
) -> Result<Change, (ResponseError, &'static str)> {
    if user.is_empty() {
        return Err((
            ResponseError::UnacceptableCredential,
            "Username must not be empty",
        ));
    }
    let Some(mech) = ScramMechanism::from_code(mechanism) else {
        return Err((
            ResponseError::UnsupportedSaslMechanism,
            "Unknown SCRAM mechanism",
        ));
    };
    let Some(u) = upsertion else {
        if !existing.get(user).is_some_and(|c| c.contains_key(&mech)) {
            return Err((
                ResponseError::ResourceNotFound,
                "Attempt to delete a user credential that does not exist",
            ));
        }
        return Ok(Change::Delete(mech));
    };
    let unacceptable = |m| Err((ResponseError::UnacceptableCredential, m));
    if u.iterations < MIN_ITERATIONS {
        return unacceptable("Too few iterations");
    }
    if u.iterations > MAX_ITERATIONS {
        return unacceptable("Too many iterations");
    }
    if u.salt.is_empty() {
        return unacceptable("Empty salt");
    }
    if u.salted_password.is_empty() {
        return unacceptable("Empty salted password");
    }
    Ok(Change::Upsert(
        mech,
        ScramCredential::from_salted(mech, &u.salted_password, u.salt.to_vec(), u.iterations),
    ))
}

pub async fn alter_user_scram_credentials(
    g: &Guard<'_>,
    auth: &Arc<Authorizer>,
    req: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    use alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
    // Users in request order, each once.
    let mut users: Vec<String> = Vec::new();
    for name in req
        .deletions
        .iter()
        .map(|d| &d.name)
        .chain(req.upsertions.iter().map(|u| &u.name))
    {
        if !users.iter().any(|u| u == name.as_str()) {
            users.push(name.to_string());
        }
    }
    let result = |user: &str, code: i16, message: Option<String>| {
        AlterUserScramCredentialsResult::default()
            .with_user(s(user))
            .with_error_code(code)
            .with_error_message(message.map(s))
    };
    if !g.cluster(op::ALTER) {
        return AlterUserScramCredentialsResponse::default().with_results(
            users
                .iter()
                .map(|u| {
                    result(
                        u,
                        CLUSTER_DENIED,
                        Some("Cluster authorization failed.".into()),
                    )
                })
                .collect(),
        );
    }
    // As Kafka's ScramControlManager: one change per user per request (a second one, even
    // for another mechanism, is DUPLICATE_RESOURCE); a refused user changes nothing.
    let mut errors: BTreeMap<String, (i16, String)> = BTreeMap::new();
    let mut changes: BTreeMap<String, Change> = BTreeMap::new();
    let existing = auth.credentials();
    let deletions = req
        .deletions
        .iter()
        .map(|d| (d.name.to_string(), d.mechanism, None));
    let upsertions = req
        .upsertions
        .iter()
        .map(|u| (u.name.to_string(), u.mechanism, Some(u)));
    for (user, code, upsertion) in deletions.chain(upsertions) {
        if errors.contains_key(&user) {
            continue;
        }
        if changes.remove(&user).is_some() {
            errors.insert(
                user,
                (
                    ResponseError::DuplicateResource.code(),
                    "A user credential cannot be altered twice in the same request".into(),
                ),
            );
            continue;
        }
        let checked = check_change(&existing, &user, code, upsertion);
        match checked {
            Ok(change) => {
                changes.insert(user, change);
            }
            Err((e, m)) => {
                errors.insert(user, (e.code(), m.into()));
            }
        }
    }
    let written = if changes.is_empty() {
        Some(Ok(()))
    } else {
        blocking(auth, move |a| {
            a.update(|d| {
                for (user, change) in changes {
                    let creds = d.credentials.entry(user.clone()).or_default();
                    match change {
                        Change::Delete(m) => {
                            creds.remove(&m);
                        }
                        Change::Upsert(m, cred) => {
                            creds.insert(m, cred);
                        }
                    }
                    if creds.is_empty() {
                        d.credentials.remove(&user);
                    }
                }
            })
        })
        .await
    };
    let write_error = match written {
        Some(Ok(())) => None,
        Some(Err(e)) => {
            tracing::error!(error = %e, "cannot store SCRAM credentials");
            Some(e.to_string())
        }
        None => Some("the credential change did not complete".into()),
    };
    AlterUserScramCredentialsResponse::default().with_results(
        users
            .iter()
            .map(|u| match (errors.get(u), &write_error) {
                (Some((code, m)), _) => result(u, *code, Some(m.clone())),
                (None, Some(e)) => {
                    result(u, ResponseError::UnknownServerError.code(), Some(e.clone()))
                }
                (None, None) => result(u, 0, None),
            })
            .collect(),
    )
}
