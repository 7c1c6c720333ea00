use std::time::Duration;

use axum::Json as JsonBody;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use streamhub_model::api::{
    ActivateByName, ActiveTopic, CreateTopic, ErrorBody, KafkaFigures, Message,
    ProvisioningFailure, RejectTopic, Topic,
};
use streamhub_model::provisioning::{self, ProvisioningObstacle};
use streamhub_model::{Action, DataType, TopicStatus, Transition, account};
use streamhub_store::{NewTopic, TopicFilter, TopicRef, TransitionOutcome};

use crate::auth::Principal;
use crate::error::{ApiError, Json};
use crate::log_value::Untrusted;
use crate::state::AppState;
use crate::topic_lists::{ListKey, TopicLists};

const MAX_REASON_CHARS: usize = 1000;
/// Bound on each question to Kafka before an approval.
const CLUSTER_CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only topics in this status; `deleted` ones appear only when asked for.
    #[param(value_type = Option<TopicStatus>)]
    status: Option<String>,
    /// At most this many (default 500), 1 to 1000.
    #[param(minimum = 1, maximum = 1000, default = 500)]
    limit: Option<i64>,
    /// Topics to skip (newest first).
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
}

/// A page of `GET /api/topics/active`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// At most this many (default 500), 1 to 1000.
    #[param(minimum = 1, maximum = 1000, default = 500)]
    limit: Option<i64>,
    /// Topics to skip (newest first).
    #[param(minimum = 0, default = 0)]
    offset: Option<i64>,
}

/// A list of topics asked for only if it changed since the copy the client holds.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // Read from the headers by `TopicLists`; here for the document.
pub struct IfNoneMatch {
    /// The `ETag` of an earlier answer: 304 while the list is the same.
    #[param(rename = "If-None-Match")]
    if_none_match: Option<String>,
}

/// `GET /api/topics?status=&limit=&offset=`: every topic but deleted ones unless
/// `status` asks for them, newest first.
#[utoipa::path(
    get,
    path = "/topics",
    tag = "topics",
    params(ListQuery, IfNoneMatch),
    security(("bearer" = []), ("session_cookie" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Topics, newest first", body = Vec<Topic>,
            headers(("ETag" = String, description = "Changes whenever any topic changes"))),
        (status = 304, description = "Unchanged since the ETag given in If-None-Match"),
        (status = 422, description = "An unknown status, or limit or offset out of range", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    _principal: Principal,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let status = q
        .status
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<TopicStatus>().map_err(ApiError::invalid))
        .transpose()?;
    let (limit, offset) = super::page(q.limit, q.offset)?;
    let filter = TopicFilter {
        status,
        limit: Some(limit),
        offset,
    };
    let key = ListKey {
        endpoint: "topics",
        filter,
    };
    TopicLists::serve(&state, key, &headers, async || {
        Ok(state.store().topics(&filter).await?)
    })
    .await
}

/// `POST /api/topics`: any signed-in principal requests a topic; it starts pending.
#[utoipa::path(
    post,
    path = "/topics",
    tag = "topics",
    request_body = CreateTopic,
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = []), ("producer_key" = [])),
    responses(
        (status = 201, description = "Requested; the topic is pending", body = Message),
        (status = 403, description = "created_by names someone else and the caller is not an admin", body = ErrorBody),
        (status = 409, description = "A live topic has this name, or the requester already has 20 pending requests (admins excepted)", body = ErrorBody),
        (status = 422, description = "A name Kafka refuses: beyond its characters and length, one starting with `__` (Kafka's internal topics) or differing from a live topic's only in `.` and `_`", body = ErrorBody),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<CreateTopic>,
) -> Result<(StatusCode, JsonBody<Message>), ApiError> {
    let created_by = req
        .created_by
        .filter(|c| !c.trim().is_empty())
        .unwrap_or_else(|| principal.username.clone());
    if created_by != principal.username && !principal.is_admin() {
        return Err(ApiError::forbidden(format!(
            "'{}' may request topics only in their own name, not as '{created_by}'",
            principal.username
        )));
    }
    let data_type = req
        .data_type
        .unwrap_or_else(|| DataType::infer_from_name(req.name.as_str()));
    // Admins decide on requests; everyone else waits for them within a quota.
    let max_pending = (!principal.is_admin()).then_some(account::MAX_PENDING_TOPICS_PER_USER);
    let topic = state
        .store()
        .create_topic_within(
            &principal.username,
            NewTopic {
                name: req.name,
                created_by,
                partitions: req.partitions,
                replication_factor: req.replication_factor,
                description: req.description,
                data_type,
                rate_per_second: req.rate_per_second,
                traffic_profile: req.traffic_profile,
            },
            max_pending,
        )
        .await?;
    tracing::info!(topic = %Untrusted(&topic.topic_name), topic_id = topic.topic_id, by = %Untrusted(&principal.username), "topic requested");
    let topic_id = topic.topic_id;
    Ok((
        StatusCode::CREATED,
        JsonBody(Message {
            message: "Topic creation request submitted".into(),
            topic_id: Some(topic_id),
        }),
    ))
}

/// A topic with the Kafka figures of `GET /api/topics/<id>`.
#[derive(Serialize, Deserialize, Debug, utoipa::ToSchema)]
pub struct TopicDetails {
    #[serde(flatten)]
    pub topic: Topic,
    pub kafka: KafkaFigures,
}

/// `GET /api/topics/<id>`, deleted topics included.
#[utoipa::path(
    get,
    path = "/topics/{id}",
    tag = "topics",
    params(("id" = i64, Path, description = "Topic id")),
    security(("bearer" = []), ("session_cookie" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "The topic and its Kafka figures", body = TopicDetails),
        (status = 404, description = "No such topic", body = ErrorBody),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    _principal: Principal,
    Path(topic_id): Path<i64>,
) -> Result<JsonBody<TopicDetails>, ApiError> {
    let topic = state.store().topic(topic_id).await?;
    let kafka = if topic.status.is_in_kafka() {
        state.kafka_stats(Some(&topic.topic_name)).await
    } else if state.has_cluster() {
        KafkaFigures {
            enabled: true,
            note: Some(format!(
                "the topic is {}, so it has no messages in Kafka",
                topic.status
            )),
            total_messages: None,
        }
    } else {
        AppState::kafka_off()
    };
    Ok(JsonBody(TopicDetails { topic, kafka }))
}

/// `GET /api/topics/active`.
#[utoipa::path(
    get,
    path = "/topics/active",
    tag = "topics",
    params(PageQuery, IfNoneMatch),
    security(("bearer" = []), ("session_cookie" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Active topics, newest first", body = Vec<ActiveTopic>,
            headers(("ETag" = String, description = "Changes whenever any topic changes"))),
        (status = 304, description = "Unchanged since the ETag given in If-None-Match"),
        (status = 422, description = "limit or offset out of range", body = ErrorBody),
    ),
)]
pub async fn active(
    State(state): State<AppState>,
    _principal: Principal,
    Query(q): Query<PageQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (limit, offset) = super::page(q.limit, q.offset)?;
    let filter = TopicFilter {
        status: Some(TopicStatus::Active),
        limit: Some(limit),
        offset,
    };
    let key = ListKey {
        endpoint: "topics/active",
        filter,
    };
    TopicLists::serve(&state, key, &headers, async || {
        let topics = state.store().topics(&filter).await?;
        Ok(topics
            .into_iter()
            .map(|t| ActiveTopic {
                topic_id: t.topic_id,
                topic_name: t.topic_name,
                description: t.description,
                activated_at: t.activated_at,
                data_type: t.data_type,
                partitions: t.partitions,
                replication_factor: t.replication_factor,
                rate_per_second: t.rate_per_second,
                traffic_profile: t.traffic_profile,
            })
            .collect::<Vec<_>>())
    })
    .await
}

/// Applies a lifecycle action and answers with the seed's message; a repeated request
/// answers 200 and says so.
async fn apply(
    state: &AppState,
    principal: &Principal,
    target: TopicRef,
    action: Action,
    reason: Option<String>,
    done: &str,
) -> Result<JsonBody<Message>, ApiError> {
    let outcome = state
        .store()
        .transition(&principal.username, target, action, reason)
        .await?;
    if outcome.changed() {
        state.sync_access().await;
    }
    Ok(answer(principal, action, &outcome, done))
}

/// The answer to a lifecycle request, and its log line when it changed the topic.
fn answer(
    principal: &Principal,
    action: Action,
    outcome: &TransitionOutcome,
    done: &str,
) -> JsonBody<Message> {
    let topic_id = outcome.topic.topic_id;
    let message = if outcome.changed() {
        tracing::info!(
            topic = %Untrusted(&outcome.topic.topic_name), topic_id, %action, from = %outcome.from,
            to = %outcome.topic.status, by = %Untrusted(&principal.username), "topic changed"
        );
        done.to_owned()
    } else {
        format!("Topic is already {}", outcome.topic.status)
    };
    JsonBody(Message {
        message,
        topic_id: Some(topic_id),
    })
}

/// Refuses to approve what the Kafka cluster cannot hold as requested, when the admin
/// service reads a cluster. A question Kafka does not answer is skipped: the producer
/// reports the failure on the topic if there is one.
async fn check_cluster_fits(state: &AppState, topic: &Topic) -> Result<(), ApiError> {
    let Some(cluster) = state.inner.cluster.clone() else {
        return Ok(());
    };
    let refuse = |obstacle: ProvisioningObstacle| {
        let message = format!("cannot approve topic '{}': {obstacle}", topic.topic_name);
        match obstacle {
            ProvisioningObstacle::TooFewBrokers { .. } => ApiError::invalid(message),
            ProvisioningObstacle::PartitionsDiffer { .. } => ApiError::conflict(message),
        }
    };
    match tokio::time::timeout(CLUSTER_CHECK_TIMEOUT, cluster.broker_count()).await {
        Ok(Ok(brokers)) => {
            provisioning::check_brokers(topic.replication_factor, brokers).map_err(refuse)?
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "approval: cannot count Kafka's brokers"),
        Err(_) => tracing::warn!("approval: Kafka did not say how many brokers it has"),
    }
    match tokio::time::timeout(
        CLUSTER_CHECK_TIMEOUT,
        cluster.partition_count(&topic.topic_name),
    )
    .await
    {
        Ok(Ok(existing)) => {
            provisioning::check_existing(&topic.topic_name, topic.partitions, existing)
                .map_err(refuse)?
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "approval: cannot read the topic in Kafka"),
        Err(_) => tracing::warn!("approval: Kafka did not describe the topic in time"),
    }
    Ok(())
}

#[utoipa::path(
    post,
    path = "/topics/{id}/approve",
    tag = "topics",
    params(("id" = i64, Path, description = "Topic id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Approved, or already so", body = Message),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
        (status = 409, description = "The lifecycle does not allow it from the topic's status, or Kafka already has a topic of this name with another partition count", body = ErrorBody),
        (status = 422, description = "The replication factor is above the Kafka cluster's broker count", body = ErrorBody),
    ),
)]
pub async fn approve(
    State(state): State<AppState>,
    principal: Principal,
    Path(topic_id): Path<i64>,
) -> Result<JsonBody<Message>, ApiError> {
    principal.require(Action::Approve.roles())?;
    let topic = state.store().topic(topic_id).await?;
    if matches!(topic.decide(Action::Approve), Ok(Transition::To(_))) {
        check_cluster_fits(&state, &topic).await?;
    }
    apply(
        &state,
        &principal,
        TopicRef::Id(topic_id),
        Action::Approve,
        None,
        "Topic approved successfully",
    )
    .await
}

#[utoipa::path(
    post,
    path = "/topics/{id}/reject",
    tag = "topics",
    params(("id" = i64, Path, description = "Topic id")),
    request_body = RejectTopic,
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Rejected, or already so", body = Message),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
        (status = 409, description = "The lifecycle does not allow it from the topic's status: a pending topic, or an approved one whose provisioning failed, can be rejected", body = ErrorBody),
    ),
)]
pub async fn reject(
    State(state): State<AppState>,
    principal: Principal,
    Path(topic_id): Path<i64>,
    Json(req): Json<RejectTopic>,
) -> Result<JsonBody<Message>, ApiError> {
    principal.require(Action::Reject.roles())?;
    let reason = req.reason.trim().to_owned();
    if reason.is_empty() {
        return Err(ApiError::invalid(
            "reason must not be empty: the requester reads it",
        ));
    }
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ApiError::invalid(format!(
            "reason is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    apply(
        &state,
        &principal,
        TopicRef::Id(topic_id),
        Action::Reject,
        Some(reason),
        "Topic rejected",
    )
    .await
}

#[utoipa::path(
    post,
    path = "/topics/{id}/deactivate",
    tag = "topics",
    params(("id" = i64, Path, description = "Topic id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Deactivated, or already so", body = Message),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
        (status = 409, description = "The lifecycle does not allow it from the topic's status", body = ErrorBody),
    ),
)]
pub async fn deactivate(
    State(state): State<AppState>,
    principal: Principal,
    Path(topic_id): Path<i64>,
) -> Result<JsonBody<Message>, ApiError> {
    principal.require(Action::Deactivate.roles())?;
    apply(
        &state,
        &principal,
        TopicRef::Id(topic_id),
        Action::Deactivate,
        None,
        "Topic deactivated successfully",
    )
    .await
}

#[utoipa::path(
    post,
    path = "/topics/{id}/reactivate",
    tag = "topics",
    params(("id" = i64, Path, description = "Topic id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Reactivated, or already so", body = Message),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
        (status = 409, description = "The lifecycle does not allow it from the topic's status", body = ErrorBody),
    ),
)]
pub async fn reactivate(
    State(state): State<AppState>,
    principal: Principal,
    Path(topic_id): Path<i64>,
) -> Result<JsonBody<Message>, ApiError> {
    principal.require(Action::Reactivate.roles())?;
    apply(
        &state,
        &principal,
        TopicRef::Id(topic_id),
        Action::Reactivate,
        None,
        "Topic reactivated successfully",
    )
    .await
}

/// `DELETE /api/topics/<id>`: refused (409) while anyone subscribes to it.
#[utoipa::path(
    delete,
    path = "/topics/{id}",
    tag = "topics",
    params(("id" = i64, Path, description = "Topic id")),
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Deleted, or already so", body = Message),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such topic", body = ErrorBody),
        (status = 409, description = "The lifecycle does not allow it from the topic's status, or someone subscribes to it", body = ErrorBody),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(topic_id): Path<i64>,
) -> Result<JsonBody<Message>, ApiError> {
    principal.require(Action::Delete.roles())?;
    let outcome = state
        .store()
        .transition(
            &principal.username,
            TopicRef::Id(topic_id),
            Action::Delete,
            None,
        )
        .await?;
    if outcome.changed() {
        delete_from_kafka(&state, &outcome.topic.topic_name).await;
        state.sync_access().await;
    }
    Ok(answer(
        &principal,
        Action::Delete,
        &outcome,
        "Topic deleted successfully",
    ))
}

/// Deletes a topic deleted in streamhub from the Kafka cluster the admin service reads,
/// with its messages. The store's deletion stands either way: a topic Kafka could not
/// delete is logged with the reason and can be deleted there by hand.
async fn delete_from_kafka(state: &AppState, name: &str) {
    let Some(cluster) = state.inner.cluster.clone() else {
        return;
    };
    match tokio::time::timeout(Duration::from_secs(30), cluster.delete_topic(name)).await {
        Ok(Ok(true)) => tracing::info!(topic = %Untrusted(name), "deleted from Kafka"),
        Ok(Ok(false)) => {}
        Ok(Err(e)) => tracing::warn!(
            topic = %Untrusted(name), error = %e,
            "the topic is deleted in streamhub but Kafka kept it"
        ),
        Err(_) => tracing::warn!(
            topic = %Untrusted(name),
            "the topic is deleted in streamhub; Kafka did not confirm its deletion within 30 s"
        ),
    }
}

/// `POST /api/topics/activate_by_name`: the producer, once the topic exists in Kafka.
#[utoipa::path(
    post,
    path = "/topics/activate_by_name",
    tag = "topics",
    request_body = ActivateByName,
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Activated, or already active", body = Message),
        (status = 403, description = "Neither the producer nor an admin", body = ErrorBody),
        (status = 404, description = "No live topic has this name", body = ErrorBody),
        (status = 409, description = "The topic is not approved", body = ErrorBody),
        (status = 422, description = "A generation record with an empty or long producer id, or a rate that is not positive", body = ErrorBody),
    ),
)]
pub async fn activate_by_name(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<ActivateByName>,
) -> Result<JsonBody<Message>, ApiError> {
    principal.require(Action::Activate.roles())?;
    let generation = match &req.generation {
        Some(g) => Some(
            g.validate()
                .map(|()| g.to_detail())
                .map_err(ApiError::invalid)?,
        ),
        None => None,
    };
    apply(
        &state,
        &principal,
        TopicRef::Name(req.topic_name),
        Action::Activate,
        generation,
        "Topic activated",
    )
    .await
}

/// `POST /api/topics/provisioning_failure`: the producer cannot create an approved topic in
/// Kafka and says why. The topic stays approved, shows the error, and an admin may reject it.
#[utoipa::path(
    post,
    path = "/topics/provisioning_failure",
    tag = "topics",
    request_body = ProvisioningFailure,
    security(("bearer" = []), ("session_cookie" = [], "csrf_token" = []), ("producer_key" = [])),
    responses(
        (status = 200, description = "Recorded on the topic (or it already had this error)", body = Message),
        (status = 403, description = "Neither the producer nor an admin", body = ErrorBody),
        (status = 404, description = "No live topic has this name", body = ErrorBody),
        (status = 409, description = "The topic is not approved", body = ErrorBody),
        (status = 422, description = "An empty error, or one longer than 1000 characters", body = ErrorBody),
    ),
)]
pub async fn provisioning_failure(
    State(state): State<AppState>,
    principal: Principal,
    Json(req): Json<ProvisioningFailure>,
) -> Result<JsonBody<Message>, ApiError> {
    // Who may activate a topic may say why it cannot be.
    principal.require(Action::Activate.roles())?;
    let topic = state
        .store()
        .provisioning_failed(&principal.username, &req.topic_name, &req.error)
        .await?;
    tracing::warn!(
        topic = %topic.topic_name, topic_id = topic.topic_id, error = %req.error.trim(),
        by = %principal.username, "the topic cannot be created in Kafka"
    );
    Ok(JsonBody(Message {
        message: "Provisioning failure recorded".into(),
        topic_id: Some(topic.topic_id),
    }))
}
