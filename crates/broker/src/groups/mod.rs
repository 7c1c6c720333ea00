//! The classic consumer-group coordinator and committed offsets.
//!
//! One node coordinates every group. Group state lives in memory behind one lock; JoinGroup
//! and SyncGroup requests that must wait for other members hold a oneshot receiver and are
//! answered when the rebalance (or the leader's assignment) completes. A timer task expires
//! members whose session lapsed and completes rebalances whose rebalance timeout passed.
//! Committed offsets are persisted in an append-only log (see [`offsets`]), and so is each
//! group's membership (members, generation, assignments) whenever a rebalance completes or
//! the group empties: after a restart its members heartbeat on without a rebalance, as with
//! Kafka's `__consumer_offsets`, and those that do not return expire after their session.

mod group;
mod offsets;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse,
    LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::{Notify, oneshot};
use tokio::time::{Duration, Instant};

pub use group::GroupState;
use group::{Group, JoinOutcome, Member, SyncOutcome};
pub use offsets::CommittedOffset;
use offsets::OffsetStore;

/// Limits of the coordinator, Kafka's broker settings of the same meaning.
#[derive(Clone, Debug)]
pub struct GroupConfig {
    /// `group.min.session.timeout.ms`: shorter session timeouts are refused.
    pub min_session_timeout: Duration,
    /// `group.max.session.timeout.ms`: longer session timeouts are refused.
    pub max_session_timeout: Duration,
    /// `offset.metadata.max.bytes`: longer commit metadata is refused.
    pub max_metadata_bytes: usize,
    /// How often the timer task looks for lapsed sessions and rebalance timeouts.
    pub tick: Duration,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            min_session_timeout: Duration::from_millis(6_000),
            max_session_timeout: Duration::from_millis(1_800_000),
            max_metadata_bytes: 4096,
            tick: Duration::from_millis(100),
        }
    }
}

/// The client that sent a request, from its request header and connection.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub client_id: String,
    pub client_host: String,
}

struct Inner {
    groups: HashMap<String, Group>,
    offsets: OffsetStore,
}

pub struct GroupCoordinator {
    inner: Mutex<Inner>,
    config: GroupConfig,
    stopped: AtomicBool,
    stop: Arc<Notify>,
}

/// The operations a describe of a group reports as allowed: READ, DELETE and DESCRIBE.
const GROUP_AUTHORIZED_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A new member id: the client id (or group instance id) and a unique suffix, as Kafka forms them.
fn new_member_id(prefix: &str) -> String {
    use std::hash::{BuildHasher, RandomState};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static STATE: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    let state = STATE.get_or_init(RandomState::new);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let a = state.hash_one((n, 1u8));
    let b = state.hash_one((n, 2u8));
    let prefix = if prefix.is_empty() { "member" } else { prefix };
    format!(
        "{prefix}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

enum Step<T> {
    Done(T),
    Wait(oneshot::Receiver<T>),
}

impl GroupCoordinator {
    /// Loads committed offsets from `dir` (created if missing) and starts the timer task.
    /// Must be called within a tokio runtime.
    pub fn open(dir: &Path) -> std::io::Result<Arc<GroupCoordinator>> {
        Self::open_with_config(dir, GroupConfig::default())
    }

    /// [`open`](Self::open) with non-default limits.
    pub fn open_with_config(
        dir: &Path,
        config: GroupConfig,
    ) -> std::io::Result<Arc<GroupCoordinator>> {
        let runtime = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        let offsets = OffsetStore::open(dir)?;
        let now = Instant::now();
        let mut groups: HashMap<String, Group> = offsets
            .group_ids()
            .into_iter()
            .map(|id| (id.clone(), Group::new(id)))
            .collect();
        for (id, snapshot) in offsets.snapshots() {
            groups.insert(id.clone(), Group::restore(id.clone(), snapshot, now));
        }
        let tick = config.tick.max(Duration::from_millis(1));
        let coordinator = Arc::new(GroupCoordinator {
            inner: Mutex::new(Inner { groups, offsets }),
            config,
            stopped: AtomicBool::new(false),
            stop: Arc::new(Notify::new()),
        });
        runtime.spawn(run_timer(
            Arc::downgrade(&coordinator),
            coordinator.stop.clone(),
            tick,
        ));
        Ok(coordinator)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Whether this coordinator answers for `group_id` at all: not once stopped, and never
    /// for an empty group id.
    fn admit(&self, group_id: &str) -> Result<(), ResponseError> {
        if self.is_stopped() {
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        Ok(())
    }

    /// Stops the timer task and answers every waiting JoinGroup and SyncGroup with
    /// COORDINATOR_NOT_AVAILABLE; later group requests get the same error.
    pub fn shutdown(&self) {
        self.stopped.store(true, Ordering::Release);
        self.stop.notify_one();
        let mut inner = self.lock();
        for group in inner.groups.values_mut() {
            group.fail_all_waiters(ResponseError::CoordinatorNotAvailable);
        }
    }

    /// One pass of the timer: expires sessions and overdue rebalances, and drops groups
    /// with neither members nor offsets.
    fn tick(&self) {
        let now = Instant::now();
        let mut inner = self.lock();
        let Inner { groups, offsets } = &mut *inner;
        for group in groups.values_mut() {
            group.expire(now);
            store_if_due(group, offsets);
        }
        groups.retain(|id, g| {
            let keep = g.state != GroupState::Empty
                || !g.members.is_empty()
                || !g.pending.is_empty()
                || offsets.has_group(id);
            if !keep && let Err(e) = offsets.delete_group(id) {
                tracing::warn!(group = %id, error = %e, "forgetting a stored empty group failed");
            }
            keep
        });
    }

    /// Current state of a group, for tools and tests.
    pub fn group_state(&self, group: &str) -> GroupState {
        self.lock()
            .groups
            .get(group)
            .map_or(GroupState::Dead, |g| g.state)
    }

    /// Member ids of a group in join order, for tools and tests.
    pub fn members(&self, group: &str) -> Vec<String> {
        self.lock()
            .groups
            .get(group)
            .map(|g| g.members.iter().map(|m| m.id.clone()).collect())
            .unwrap_or_default()
    }

    /// Current generation of a group (0 before its first rebalance, -1 if unknown).
    pub fn generation(&self, group: &str) -> i32 {
        self.lock().groups.get(group).map_or(-1, |g| g.generation)
    }

    // ---------------------------------------------------------------- JoinGroup

    pub async fn join_group(&self, req: JoinGroupRequest, version: i16) -> JoinGroupResponse {
        self.join_group_from(req, version, &ClientInfo::default())
            .await
    }

    /// JoinGroup with the client id and host that DescribeGroups reports for the member.
    pub async fn join_group_from(
        &self,
        req: JoinGroupRequest,
        version: i16,
        client: &ClientInfo,
    ) -> JoinGroupResponse {
        let member_id = req.member_id.to_string();
        let outcome = match self.join_step(req, version, client) {
            Step::Done(o) => o,
            Step::Wait(rx) => rx.await.unwrap_or_else(|_| {
                JoinOutcome::error(ResponseError::CoordinatorNotAvailable, member_id)
            }),
        };
        join_response(outcome, version)
    }

    fn join_step(
        &self,
        req: JoinGroupRequest,
        version: i16,
        client: &ClientInfo,
    ) -> Step<JoinOutcome> {
        let member_id = req.member_id.to_string();
        let fail = |e: ResponseError| Step::Done(JoinOutcome::error(e, member_id.clone()));
        let group_id = req.group_id.0.to_string();
        if let Err(e) = self.admit(&group_id) {
            return fail(e);
        }
        let session_timeout = millis(req.session_timeout_ms);
        if req.session_timeout_ms < 0
            || session_timeout < self.config.min_session_timeout
            || session_timeout > self.config.max_session_timeout
        {
            return fail(ResponseError::InvalidSessionTimeout);
        }
        let rebalance_timeout = if version >= 1 && req.rebalance_timeout_ms > 0 {
            millis(req.rebalance_timeout_ms)
        } else {
            session_timeout
        };
        let instance_id = static_instance(&req.group_instance_id, version, 5).map(str::to_owned);
        let protocol_type = req.protocol_type.to_string();
        let protocols: Vec<(String, Bytes)> = req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect();

        let now = Instant::now();
        let mut inner = self.lock();
        let Inner { groups, offsets } = &mut *inner;
        let group = groups
            .entry(group_id.clone())
            .or_insert_with(|| Group::new(group_id));
        if !group.supports(&protocol_type, &protocols, &member_id) {
            return fail(ResponseError::InconsistentGroupProtocol);
        }
        let new_member = |id: String, tx: oneshot::Sender<JoinOutcome>| Member {
            id,
            instance_id: instance_id.clone(),
            client_id: client.client_id.clone(),
            client_host: client.client_host.clone(),
            session_timeout,
            rebalance_timeout,
            protocol_type: protocol_type.clone(),
            protocols: protocols.clone(),
            assignment: Bytes::new(),
            last_heartbeat: now,
            join_waiter: Some(tx),
            sync_waiter: None,
        };

        if member_id.is_empty() {
            if let Some(iid) = &instance_id
                && let Some(old_id) = group.static_member_id(iid)
            {
                let new_id = new_member_id(iid);
                let step = replace_static_member(
                    group,
                    &old_id,
                    new_id,
                    &protocols,
                    session_timeout,
                    rebalance_timeout,
                    client,
                    version,
                    now,
                );
                store_if_due(group, offsets);
                return step;
            }
            let prefix = instance_id.as_deref().unwrap_or(&client.client_id);
            let new_id = new_member_id(prefix);
            if instance_id.is_none() && version >= 4 {
                group.pending.insert(new_id.clone(), now + session_timeout);
                return Step::Done(JoinOutcome::error(ResponseError::MemberIdRequired, new_id));
            }
            let (tx, rx) = oneshot::channel();
            add_member_and_rebalance(group, new_member(new_id, tx), now);
            return Step::Wait(rx);
        }

        if group.pending.remove(&member_id).is_some() {
            let (tx, rx) = oneshot::channel();
            add_member_and_rebalance(group, new_member(member_id, tx), now);
            return Step::Wait(rx);
        }
        let Some(member) = group.member(&member_id) else {
            if let Some(iid) = &instance_id
                && group.static_member_id(iid).is_some()
            {
                return fail(ResponseError::FencedInstanceId);
            }
            return fail(ResponseError::UnknownMemberId);
        };
        if instance_id.is_some() && member.instance_id != instance_id {
            return fail(ResponseError::FencedInstanceId);
        }
        let matches = member.matches(&protocols);
        let is_leader = group.is_leader(&member_id);
        match group.state {
            GroupState::Empty | GroupState::Dead => fail(ResponseError::UnknownMemberId),
            GroupState::CompletingRebalance if matches => {
                touch(group, &member_id, now);
                Step::Done(group.current_join(&member_id))
            }
            GroupState::Stable if matches && !is_leader => {
                touch(group, &member_id, now);
                Step::Done(group.current_join(&member_id))
            }
            _ => {
                let (tx, rx) = oneshot::channel();
                update_member(
                    group,
                    &member_id,
                    &protocols,
                    session_timeout,
                    rebalance_timeout,
                    client,
                    Some(tx),
                    now,
                );
                if group.state != GroupState::PreparingRebalance {
                    group.prepare_rebalance(now);
                }
                group.try_complete_join(now);
                Step::Wait(rx)
            }
        }
    }

    // ---------------------------------------------------------------- SyncGroup

    pub async fn sync_group(&self, req: SyncGroupRequest, version: i16) -> SyncGroupResponse {
        let outcome = match self.sync_step(req, version) {
            Step::Done(o) => o,
            Step::Wait(rx) => rx
                .await
                .unwrap_or_else(|_| SyncOutcome::error(ResponseError::CoordinatorNotAvailable)),
        };
        let mut resp = SyncGroupResponse::default()
            .with_error_code(outcome.error)
            .with_assignment(outcome.assignment);
        if version >= 5 {
            resp.protocol_type = outcome.protocol_type.map(s);
            resp.protocol_name = outcome.protocol_name.map(s);
        }
        resp
    }

    fn sync_step(&self, req: SyncGroupRequest, version: i16) -> Step<SyncOutcome> {
        let fail = |e: ResponseError| Step::Done(SyncOutcome::error(e));
        let group_id = req.group_id.0.as_str();
        if let Err(e) = self.admit(group_id) {
            return fail(e);
        }
        let member_id = req.member_id.as_str();
        let instance_id = static_instance(&req.group_instance_id, version, 3);
        let now = Instant::now();
        let mut inner = self.lock();
        let Inner { groups, offsets } = &mut *inner;
        let Some(group) = groups.get_mut(group_id) else {
            return fail(ResponseError::UnknownMemberId);
        };
        if let Err(e) = check_member(group, member_id, instance_id) {
            return fail(e);
        }
        if req.generation_id != group.generation {
            return fail(ResponseError::IllegalGeneration);
        }
        if version >= 5 {
            let type_ok = req
                .protocol_type
                .as_ref()
                .is_none_or(|t| group.protocol_type.as_deref() == Some(t.as_str()));
            let name_ok = req
                .protocol_name
                .as_ref()
                .is_none_or(|n| group.protocol_name.as_deref() == Some(n.as_str()));
            if !type_ok || !name_ok {
                return fail(ResponseError::InconsistentGroupProtocol);
            }
        }
        match group.state {
            GroupState::Empty | GroupState::Dead => fail(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => fail(ResponseError::RebalanceInProgress),
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = group.member_mut(member_id) {
                    m.last_heartbeat = now;
                    if let Some(old) = m.sync_waiter.replace(tx) {
                        let _ = old.send(SyncOutcome::error(ResponseError::RebalanceInProgress));
                    }
                }
                if group.is_leader(member_id) {
                    let assignments = req
                        .assignments
                        .into_iter()
                        .map(|a| (a.member_id.to_string(), a.assignment))
                        .collect();
                    group.apply_assignments(assignments);
                    store_if_due(group, offsets);
                }
                Step::Wait(rx)
            }
            GroupState::Stable => {
                let protocol_type = group.protocol_type.clone();
                let protocol_name = group.protocol_name.clone();
                let Some(m) = group.member_mut(member_id) else {
                    return fail(ResponseError::UnknownMemberId);
                };
                m.last_heartbeat = now;
                Step::Done(SyncOutcome {
                    error: 0,
                    protocol_type,
                    protocol_name,
                    assignment: m.assignment.clone(),
                })
            }
        }
    }

    // ---------------------------------------------------------------- Heartbeat

    pub async fn heartbeat(&self, req: HeartbeatRequest, version: i16) -> HeartbeatResponse {
        let error = match self.heartbeat_error(&req, version) {
            Ok(()) => 0,
            Err(e) => e.code(),
        };
        HeartbeatResponse::default().with_error_code(error)
    }

    fn heartbeat_error(&self, req: &HeartbeatRequest, version: i16) -> Result<(), ResponseError> {
        let group_id = req.group_id.0.as_str();
        self.admit(group_id)?;
        let member_id = req.member_id.as_str();
        let instance_id = static_instance(&req.group_instance_id, version, 3);
        let now = Instant::now();
        let mut inner = self.lock();
        let group = inner
            .groups
            .get_mut(group_id)
            .ok_or(ResponseError::UnknownMemberId)?;
        check_member(group, member_id, instance_id)?;
        if req.generation_id != group.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        let state = group.state;
        match state {
            GroupState::Empty | GroupState::Dead => Err(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => {
                touch(group, member_id, now);
                Err(ResponseError::RebalanceInProgress)
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                touch(group, member_id, now);
                Ok(())
            }
        }
    }

    // ---------------------------------------------------------------- LeaveGroup

    pub async fn leave_group(&self, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
        let leaving: Vec<(String, Option<String>)> = if version >= 3 {
            req.members
                .iter()
                .map(|m| {
                    (
                        m.member_id.to_string(),
                        m.group_instance_id
                            .as_ref()
                            .map(|i| i.to_string())
                            .filter(|i| !i.is_empty()),
                    )
                })
                .collect()
        } else {
            vec![(req.member_id.to_string(), None)]
        };
        let results = self.leave(req.group_id.0.as_str(), &leaving);
        let mut resp = LeaveGroupResponse::default();
        match results {
            Err(e) => resp.error_code = e.code(),
            Ok(errors) if version < 3 => {
                resp.error_code = errors.first().map_or(0, |e| e.map_or(0, |e| e.code()));
            }
            Ok(errors) => {
                resp.members = leaving
                    .into_iter()
                    .zip(errors)
                    .map(|((member_id, instance_id), e)| {
                        MemberResponse::default()
                            .with_member_id(s(member_id))
                            .with_group_instance_id(instance_id.map(s))
                            .with_error_code(e.map_or(0, |e| e.code()))
                    })
                    .collect();
            }
        }
        resp
    }

    /// Removes members; the outer error concerns the request, the inner ones each member.
    fn leave(
        &self,
        group_id: &str,
        leaving: &[(String, Option<String>)],
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        self.admit(group_id)?;
        let now = Instant::now();
        let mut inner = self.lock();
        let Inner { groups, offsets } = &mut *inner;
        let Some(group) = groups.get_mut(group_id) else {
            return Ok(vec![Some(ResponseError::UnknownMemberId); leaving.len()]);
        };
        let mut removed_any = false;
        let mut pending_left = false;
        let mut errors = Vec::with_capacity(leaving.len());
        for (member_id, instance_id) in leaving {
            let error = if let Some(iid) = instance_id {
                match group.static_member_id(iid) {
                    None => Some(ResponseError::UnknownMemberId),
                    Some(id) if !member_id.is_empty() && *member_id != id => {
                        Some(ResponseError::FencedInstanceId)
                    }
                    Some(id) => {
                        tracing::info!(group = %group.id, member = %id, "static member left");
                        group.remove_member(&id);
                        removed_any = true;
                        None
                    }
                }
            } else if group.pending.remove(member_id).is_some() {
                pending_left = true;
                None
            } else if group.remove_member(member_id) {
                tracing::info!(group = %group.id, member = %member_id, "member left");
                removed_any = true;
                None
            } else {
                Some(ResponseError::UnknownMemberId)
            };
            errors.push(error);
        }
        if removed_any {
            group.after_members_left(now);
        } else if pending_left {
            group.try_complete_join(now);
        }
        store_if_due(group, offsets);
        Ok(errors)
    }

    // ---------------------------------------------------------------- OffsetCommit

    pub async fn offset_commit(
        &self,
        req: OffsetCommitRequest,
        version: i16,
    ) -> OffsetCommitResponse {
        // Checked and stored under one lock, so the group cannot move on in between.
        let mut inner = self.lock();
        let result = self.commit_check(&inner, &req, version);
        let mut to_store = Vec::new();
        let mut topics: Vec<OffsetCommitResponseTopic> = Vec::with_capacity(req.topics.len());
        for topic in &req.topics {
            let mut partitions = Vec::with_capacity(topic.partitions.len());
            for p in &topic.partitions {
                let metadata_len = p.committed_metadata.as_ref().map_or(0, |m| m.len());
                let error = match result {
                    Err(e) => Some(e),
                    Ok(()) if metadata_len > self.config.max_metadata_bytes => {
                        Some(ResponseError::OffsetMetadataTooLarge)
                    }
                    Ok(()) => {
                        to_store.push((
                            topic.name.0.to_string(),
                            p.partition_index,
                            CommittedOffset {
                                offset: p.committed_offset,
                                leader_epoch: if version >= 6 {
                                    p.committed_leader_epoch
                                } else {
                                    -1
                                },
                                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                            },
                        ));
                        None
                    }
                };
                partitions.push(
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error.map_or(0, |e| e.code())),
                );
            }
            topics.push(
                OffsetCommitResponseTopic::default()
                    .with_name(topic.name.clone())
                    .with_partitions(partitions),
            );
        }
        if !to_store.is_empty() {
            let group_id = req.group_id.0.to_string();
            let stored = inner.offsets.commit(&group_id, to_store);
            if stored.is_ok() {
                inner
                    .groups
                    .entry(group_id.clone())
                    .or_insert_with(|| Group::new(group_id));
            }
            if let Err(e) = stored {
                tracing::error!(group = %req.group_id.0, error = %e, "storing committed offsets failed");
                for p in topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                    if p.error_code == 0 {
                        p.error_code = ResponseError::UnknownServerError.code();
                    }
                }
            }
        }
        OffsetCommitResponse::default().with_topics(topics)
    }

    /// Whether the committer may commit for the group now (Kafka's classic rules).
    fn commit_check(
        &self,
        inner: &Inner,
        req: &OffsetCommitRequest,
        version: i16,
    ) -> Result<(), ResponseError> {
        let group_id = req.group_id.0.as_str();
        self.admit(group_id)?;
        let generation = req.generation_id_or_member_epoch;
        let member_id = req.member_id.as_str();
        let instance_id = static_instance(&req.group_instance_id, version, 7);
        let Some(group) = inner.groups.get(group_id) else {
            // A group not managed by the coordinator: simple consumers commit with generation -1.
            return if generation < 0 {
                Ok(())
            } else {
                Err(ResponseError::IllegalGeneration)
            };
        };
        if let Some(iid) = instance_id
            && group
                .static_member_id(iid)
                .is_some_and(|id| id != member_id)
        {
            return Err(ResponseError::FencedInstanceId);
        }
        if generation < 0 && group.state == GroupState::Empty {
            return Ok(());
        }
        if group.state == GroupState::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        if group.member(member_id).is_none() {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation != group.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    // ---------------------------------------------------------------- OffsetFetch

    pub async fn offset_fetch(&self, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
        let inner = self.lock();
        if version >= 8 {
            let groups = req
                .groups
                .iter()
                .map(|g| {
                    let wanted = g.topics.as_ref().map(|topics| {
                        topics
                            .iter()
                            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                            .collect::<Vec<_>>()
                    });
                    let (error, found) = self.fetch_offsets(&inner, g.group_id.0.as_str(), wanted);
                    OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id.clone())
                        .with_error_code(error.map_or(0, |e| e.code()))
                        .with_topics(
                            found
                                .into_iter()
                                .map(|(topic, partitions)| {
                                    OffsetFetchResponseTopics::default()
                                        .with_name(TopicName(s(topic)))
                                        .with_partitions(
                                            partitions
                                                .into_iter()
                                                .map(|(p, c)| {
                                                    let c = c.unwrap_or_else(no_offset);
                                                    OffsetFetchResponsePartitions::default()
                                                        .with_partition_index(p)
                                                        .with_committed_offset(c.offset)
                                                        .with_committed_leader_epoch(c.leader_epoch)
                                                        .with_metadata(Some(s(c
                                                            .metadata
                                                            .unwrap_or_default())))
                                                })
                                                .collect(),
                                        )
                                })
                                .collect(),
                        )
                })
                .collect();
            return OffsetFetchResponse::default().with_groups(groups);
        }
        let wanted = req.topics.as_ref().map(|topics| {
            topics
                .iter()
                .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
                .collect::<Vec<_>>()
        });
        let (error, found) = self.fetch_offsets(&inner, req.group_id.0.as_str(), wanted);
        let topics = found
            .into_iter()
            .map(|(topic, partitions)| {
                OffsetFetchResponseTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|(p, c)| {
                                let c = c.unwrap_or_else(no_offset);
                                OffsetFetchResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(c.offset)
                                    .with_committed_leader_epoch(if version >= 5 {
                                        c.leader_epoch
                                    } else {
                                        -1
                                    })
                                    .with_metadata(Some(s(c.metadata.unwrap_or_default())))
                                    .with_error_code(if version < 2 {
                                        error.map_or(0, |e| e.code())
                                    } else {
                                        0
                                    })
                            })
                            .collect(),
                    )
            })
            .collect();
        let mut resp = OffsetFetchResponse::default().with_topics(topics);
        if version >= 2 {
            resp.error_code = error.map_or(0, |e| e.code());
        }
        resp
    }

    /// Committed offsets of a group: of the wanted topics and partitions (unknown ones
    /// answer offset -1), or of every partition the group committed for when `wanted` is None.
    #[allow(clippy::type_complexity)]
    fn fetch_offsets(
        &self,
        inner: &Inner,
        group_id: &str,
        wanted: Option<Vec<(String, Vec<i32>)>>,
    ) -> (
        Option<ResponseError>,
        Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>,
    ) {
        if let Err(e) = self.admit(group_id) {
            return (Some(e), Vec::new());
        }
        match wanted {
            Some(topics) => {
                let found = topics
                    .into_iter()
                    .map(|(topic, partitions)| {
                        let offsets = partitions
                            .into_iter()
                            .map(|p| (p, inner.offsets.get(group_id, &topic, p).cloned()))
                            .collect();
                        (topic, offsets)
                    })
                    .collect();
                (None, found)
            }
            None => {
                let mut found: Vec<(String, Vec<(i32, Option<CommittedOffset>)>)> = Vec::new();
                for (topic, p, c) in inner.offsets.group(group_id) {
                    match found.last_mut() {
                        Some((t, parts)) if t == topic => parts.push((p, Some(c.clone()))),
                        _ => found.push((topic.to_string(), vec![(p, Some(c.clone()))])),
                    }
                }
                (None, found)
            }
        }
    }

    // ---------------------------------------------------------------- ListGroups

    pub async fn list_groups(&self, req: ListGroupsRequest, version: i16) -> ListGroupsResponse {
        let states: Vec<String> = if version >= 4 {
            req.states_filter
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect()
        } else {
            Vec::new()
        };
        let types_ok = version < 5
            || req.types_filter.is_empty()
            || req
                .types_filter
                .iter()
                .any(|t| t.eq_ignore_ascii_case("classic"));
        let inner = self.lock();
        let mut groups: Vec<ListedGroup> = Vec::new();
        if types_ok {
            for g in inner.groups.values() {
                let state = g.state.name();
                if !states.is_empty() && !states.contains(&state.to_ascii_lowercase()) {
                    continue;
                }
                let mut listed = ListedGroup::default()
                    .with_group_id(GroupId(s(g.id.clone())))
                    .with_protocol_type(s(g.protocol_type.clone().unwrap_or_default()));
                if version >= 4 {
                    listed.group_state = s(state);
                }
                if version >= 5 {
                    listed.group_type = s("classic");
                }
                groups.push(listed);
            }
        }
        groups.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
        let error = if self.is_stopped() {
            ResponseError::CoordinatorNotAvailable.code()
        } else {
            0
        };
        ListGroupsResponse::default()
            .with_error_code(error)
            .with_groups(groups)
    }

    // ---------------------------------------------------------------- DescribeGroups

    pub async fn describe_groups(
        &self,
        req: DescribeGroupsRequest,
        version: i16,
    ) -> DescribeGroupsResponse {
        let inner = self.lock();
        let groups = req
            .groups
            .iter()
            .map(|id| {
                let mut d = DescribedGroup::default().with_group_id(id.clone());
                if version >= 3 && req.include_authorized_operations {
                    d.authorized_operations = GROUP_AUTHORIZED_OPERATIONS;
                }
                if self.is_stopped() {
                    d.error_code = ResponseError::CoordinatorNotAvailable.code();
                    return d;
                }
                if id.0.is_empty() {
                    d.error_code = ResponseError::InvalidGroupId.code();
                    return d;
                }
                let Some(g) = inner.groups.get(id.0.as_str()) else {
                    d.group_state = s(GroupState::Dead.name());
                    if version >= 6 {
                        d.error_code = ResponseError::GroupIdNotFound.code();
                        d.error_message = Some(s(format!("Group {} not found.", id.0.as_str())));
                    }
                    return d;
                };
                d.group_state = s(g.state.name());
                d.protocol_type = s(g.protocol_type.clone().unwrap_or_default());
                let stable = g.state == GroupState::Stable;
                if stable {
                    d.protocol_data = s(g.protocol_name.clone().unwrap_or_default());
                }
                let protocol = g.protocol_name.clone().unwrap_or_default();
                d.members = g
                    .members
                    .iter()
                    .map(|m| {
                        let mut dm = DescribedGroupMember::default()
                            .with_member_id(s(m.id.clone()))
                            .with_client_id(s(m.client_id.clone()))
                            .with_client_host(s(m.client_host.clone()));
                        if version >= 4 {
                            dm.group_instance_id = m.instance_id.clone().map(s);
                        }
                        if stable {
                            dm.member_metadata = m
                                .protocols
                                .iter()
                                .find(|(n, _)| *n == protocol)
                                .map(|(_, meta)| meta.clone())
                                .unwrap_or_default();
                            dm.member_assignment = m.assignment.clone();
                        }
                        dm
                    })
                    .collect();
                d
            })
            .collect();
        DescribeGroupsResponse::default().with_groups(groups)
    }

    // ---------------------------------------------------------------- DeleteGroups

    pub async fn delete_groups(
        &self,
        req: DeleteGroupsRequest,
        _version: i16,
    ) -> DeleteGroupsResponse {
        let mut inner = self.lock();
        let mut seen = HashSet::new();
        let results = req
            .groups_names
            .iter()
            .filter(|id| seen.insert(id.0.clone()))
            .map(|id| {
                let error = self.delete_group(&mut inner, id.0.as_str());
                DeletableGroupResult::default()
                    .with_group_id(id.clone())
                    .with_error_code(error.map_or(0, |e| e.code()))
            })
            .collect();
        DeleteGroupsResponse::default().with_results(results)
    }

    fn delete_group(&self, inner: &mut Inner, group_id: &str) -> Option<ResponseError> {
        if let Err(e) = self.admit(group_id) {
            return Some(e);
        }
        let Some(group) = inner.groups.get(group_id) else {
            return Some(ResponseError::GroupIdNotFound);
        };
        if group.state != GroupState::Empty || !group.members.is_empty() {
            return Some(ResponseError::NonEmptyGroup);
        }
        if let Err(e) = inner.offsets.delete_group(group_id) {
            tracing::error!(group = %group_id, error = %e, "deleting committed offsets failed");
            return Some(ResponseError::UnknownServerError);
        }
        inner.groups.remove(group_id);
        tracing::info!(group = %group_id, "group deleted");
        None
    }

    // ---------------------------------------------------------------- OffsetDelete

    /// Deletes committed offsets of a group (kafka-consumer-groups --delete-offsets), as
    /// Kafka does: all of them in an empty group; in an active consumer group only those
    /// of topics no member subscribes to (the others answer GROUP_SUBSCRIBED_TO_TOPIC); in
    /// an active group of another protocol type none (NON_EMPTY_GROUP).
    pub async fn offset_delete(
        &self,
        req: OffsetDeleteRequest,
        _version: i16,
    ) -> OffsetDeleteResponse {
        let fail = |e: ResponseError| OffsetDeleteResponse::default().with_error_code(e.code());
        let group_id = req.group_id.0.as_str();
        if let Err(e) = self.admit(group_id) {
            return fail(e);
        }
        let mut inner = self.lock();
        let Some(group) = inner.groups.get(group_id) else {
            return fail(ResponseError::GroupIdNotFound);
        };
        if group.state == GroupState::Dead {
            return fail(ResponseError::GroupIdNotFound);
        }
        let subscribed = group.subscribed_topics();
        if subscribed.is_none() && group.protocol_type.as_deref() != Some("consumer") {
            return fail(ResponseError::NonEmptyGroup);
        }
        // Unknown subscriptions of a consumer group protect every topic.
        let deletable = |topic: &str| subscribed.as_ref().is_some_and(|s| !s.contains(topic));
        let mut to_delete = Vec::new();
        let mut topics: Vec<OffsetDeleteResponseTopic> = req
            .topics
            .iter()
            .map(|t| {
                let ok = deletable(t.name.0.as_str());
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| {
                        let error = if ok {
                            to_delete.push((t.name.0.to_string(), p.partition_index));
                            0
                        } else {
                            ResponseError::GroupSubscribedToTopic.code()
                        };
                        OffsetDeleteResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(error)
                    })
                    .collect();
                OffsetDeleteResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(partitions)
            })
            .collect();
        if let Err(e) = inner.offsets.delete_offsets(group_id, &to_delete) {
            tracing::error!(group = %group_id, error = %e, "deleting committed offsets failed");
            for p in topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                if p.error_code == 0 {
                    p.error_code = ResponseError::UnknownServerError.code();
                }
            }
        } else if !to_delete.is_empty() {
            tracing::info!(group = %group_id, partitions = to_delete.len(), "committed offsets deleted");
        }
        OffsetDeleteResponse::default().with_topics(topics)
    }

    // ---------------------------------------------------------------- Offsets for the broker

    /// A topic was deleted: forget its committed offsets.
    pub fn forget_topic(&self, topic: &str) {
        if let Err(e) = self.lock().offsets.forget_topic(topic) {
            tracing::error!(topic = %topic, error = %e, "forgetting committed offsets failed");
        }
    }

    /// Committed offset of (group, topic, partition), for tools and lag.
    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        self.lock()
            .offsets
            .get(group, topic, partition)
            .map(|c| c.offset)
    }

    /// Every committed offset of a group as (topic, partition, offset), for tools and lag.
    pub fn committed_offsets(&self, group: &str) -> Vec<(String, i32, i64)> {
        self.lock()
            .offsets
            .group(group)
            .into_iter()
            .map(|(t, p, c)| (t.to_string(), p, c.offset))
            .collect()
    }
}

impl Drop for GroupCoordinator {
    fn drop(&mut self) {
        self.stop.notify_one();
    }
}

async fn run_timer(coordinator: Weak<GroupCoordinator>, stop: Arc<Notify>, tick: Duration) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.notified() => return,
        }
        // The coordinator is only held during a tick, so dropping it ends the task.
        let Some(c) = coordinator.upgrade() else {
            return;
        };
        if c.is_stopped() {
            return;
        }
        c.tick();
    }
}

/// A static member's `group.instance.id`, sent from request version `since` on; an
/// empty one means none.
fn static_instance(id: &Option<StrBytes>, version: i16, since: i16) -> Option<&str> {
    id.as_ref()
        .map(|i| i.as_str())
        .filter(|i| version >= since && !i.is_empty())
}

fn no_offset() -> CommittedOffset {
    CommittedOffset {
        offset: -1,
        leader_epoch: -1,
        metadata: Some(String::new()),
    }
}

/// Stores the group's members, generation and assignments if a rebalance completed or it
/// emptied since it was last stored. A failed write is logged: the group goes on in memory.
fn store_if_due(group: &mut Group, offsets: &mut OffsetStore) {
    if !group.store_due {
        return;
    }
    group.store_due = false;
    if let Err(e) = offsets.store_group(&group.id, group.snapshot()) {
        tracing::error!(group = %group.id, error = %e, "storing the group failed");
    }
}

/// Refreshes a member's session.
fn touch(group: &mut Group, member_id: &str, now: Instant) {
    if let Some(m) = group.member_mut(member_id) {
        m.last_heartbeat = now;
    }
}

/// Kafka's member checks: a static member with another member id is fenced; an unknown
/// member id is refused.
fn check_member(
    group: &Group,
    member_id: &str,
    instance_id: Option<&str>,
) -> Result<(), ResponseError> {
    if let Some(iid) = instance_id
        && group
            .static_member_id(iid)
            .is_some_and(|id| id != member_id)
    {
        return Err(ResponseError::FencedInstanceId);
    }
    let member = group
        .member(member_id)
        .ok_or(ResponseError::UnknownMemberId)?;
    if instance_id.is_some() && member.instance_id.as_deref() != instance_id {
        return Err(ResponseError::FencedInstanceId);
    }
    Ok(())
}

fn add_member_and_rebalance(group: &mut Group, member: Member, now: Instant) {
    tracing::info!(group = %group.id, member = %member.id, "member joins");
    group.add_member(member);
    if group.state != GroupState::PreparingRebalance {
        group.prepare_rebalance(now);
    }
    group.try_complete_join(now);
}

#[allow(clippy::too_many_arguments)]
fn update_member(
    group: &mut Group,
    member_id: &str,
    protocols: &[(String, Bytes)],
    session_timeout: Duration,
    rebalance_timeout: Duration,
    client: &ClientInfo,
    tx: Option<oneshot::Sender<JoinOutcome>>,
    now: Instant,
) {
    if let Some(m) = group.member_mut(member_id) {
        m.protocols = protocols.to_vec();
        m.session_timeout = session_timeout;
        m.rebalance_timeout = rebalance_timeout;
        if !client.client_id.is_empty() || !client.client_host.is_empty() {
            m.client_id = client.client_id.clone();
            m.client_host = client.client_host.clone();
        }
        m.last_heartbeat = now;
        let old = std::mem::replace(&mut m.join_waiter, tx);
        if let Some(old) = old {
            let _ = old.send(JoinOutcome::error(
                ResponseError::RebalanceInProgress,
                member_id.to_string(),
            ));
        }
    }
}

/// A static member rejoined with an empty member id: its old member id is fenced and replaced
/// by `new_id`. A stable group whose protocol would not change keeps its assignment without a
/// rebalance; otherwise the group rebalances.
#[allow(clippy::too_many_arguments)]
fn replace_static_member(
    group: &mut Group,
    old_id: &str,
    new_id: String,
    protocols: &[(String, Bytes)],
    session_timeout: Duration,
    rebalance_timeout: Duration,
    client: &ClientInfo,
    version: i16,
    now: Instant,
) -> Step<JoinOutcome> {
    let old_leader = group.leader.clone().unwrap_or_default();
    let was_leader = old_leader == old_id;
    let Some(m) = group.member_mut(old_id) else {
        return Step::Done(JoinOutcome::error(ResponseError::UnknownMemberId, new_id));
    };
    m.fail_waiters(ResponseError::FencedInstanceId);
    m.id = new_id.clone();
    let unchanged = m.matches(protocols);
    if was_leader {
        group.leader = Some(new_id.clone());
    }
    tracing::info!(group = %group.id, old = %old_id, new = %new_id, "static member rejoined with a new member id");
    if group.state == GroupState::Stable && unchanged {
        // The stored group must know the new member id, or the member would be fenced
        // after a restart.
        group.store_due = true;
        update_member(
            group,
            &new_id,
            protocols,
            session_timeout,
            rebalance_timeout,
            client,
            None,
            now,
        );
        let mut outcome = group.current_join(&new_id);
        // The current leader must not take itself for the leader of a new generation and
        // reassign; from v9 the rejoined leader learns it leads but may skip the assignment.
        if was_leader && version >= 9 {
            outcome.skip_assignment = true;
        } else {
            outcome.leader = old_leader;
            outcome.members = Vec::new();
        }
        return Step::Done(outcome);
    }
    let (tx, rx) = oneshot::channel();
    update_member(
        group,
        &new_id,
        protocols,
        session_timeout,
        rebalance_timeout,
        client,
        Some(tx),
        now,
    );
    if group.state != GroupState::PreparingRebalance {
        group.prepare_rebalance(now);
    }
    group.try_complete_join(now);
    Step::Wait(rx)
}

fn join_response(o: JoinOutcome, version: i16) -> JoinGroupResponse {
    let mut resp = JoinGroupResponse::default()
        .with_error_code(o.error)
        .with_generation_id(o.generation)
        .with_leader(s(o.leader))
        .with_member_id(s(o.member_id))
        .with_members(
            o.members
                .into_iter()
                .map(|m| {
                    JoinGroupResponseMember::default()
                        .with_member_id(s(m.member_id))
                        .with_group_instance_id(if version >= 5 {
                            m.instance_id.map(s)
                        } else {
                            None
                        })
                        .with_metadata(m.metadata)
                })
                .collect(),
        );
    resp.protocol_name = match o.protocol_name {
        Some(name) => Some(s(name)),
        // Before v7 the protocol name is not nullable.
        None if version < 7 => Some(StrBytes::default()),
        None => None,
    };
    if version >= 7 {
        resp.protocol_type = o.protocol_type.map(s);
    }
    if version >= 9 {
        resp.skip_assignment = o.skip_assignment;
    }
    resp
}
