//! The state of one classic consumer group: its members, generation and rebalance progress.
//!
//! Everything here is synchronous and takes the current time as an argument; the coordinator
//! holds the lock and the timer task calls [`Group::expire`].

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use tokio::sync::oneshot;
use tokio::time::{Duration, Instant};

use super::offsets::{GroupSnapshot, MemberSnapshot, from_hex, to_hex};

/// The states of a classic group, named as Kafka names them on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name used by ListGroups and DescribeGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A member as the leader sees it in its JoinGroup response.
#[derive(Clone, Debug)]
pub(crate) struct JoinedMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub metadata: Bytes,
}

/// What a JoinGroup request is answered with, independent of the response version.
#[derive(Clone, Debug)]
pub(crate) struct JoinOutcome {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    pub members: Vec<JoinedMember>,
    pub skip_assignment: bool,
}

impl JoinOutcome {
    pub fn error(error: ResponseError, member_id: String) -> Self {
        JoinOutcome {
            error: error.code(),
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            member_id,
            members: Vec::new(),
            skip_assignment: false,
        }
    }
}

/// What a SyncGroup request is answered with, independent of the response version.
#[derive(Clone, Debug)]
pub(crate) struct SyncOutcome {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncOutcome {
    pub fn error(error: ResponseError) -> Self {
        SyncOutcome {
            error: error.code(),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

pub(crate) struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    /// Protocol names with their metadata, in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub last_heartbeat: Instant,
    pub join_waiter: Option<oneshot::Sender<JoinOutcome>>,
    pub sync_waiter: Option<oneshot::Sender<SyncOutcome>>,
}

impl Member {
    /// Whether the member asked for exactly these protocols and metadata.
    pub fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(name, _)| name == protocol)
    }

    /// A member waiting for its JoinGroup or SyncGroup answer is kept alive; otherwise it
    /// must have been heard from within its session timeout.
    fn expired(&self, now: Instant) -> bool {
        self.join_waiter.is_none()
            && self.sync_waiter.is_none()
            && now >= self.last_heartbeat + self.session_timeout
    }

    /// Answers any waiting request of this member with `error`.
    pub fn fail_waiters(&mut self, error: ResponseError) {
        if let Some(tx) = self.join_waiter.take() {
            let _ = tx.send(JoinOutcome::error(error, self.id.clone()));
        }
        if let Some(tx) = self.sync_waiter.take() {
            let _ = tx.send(SyncOutcome::error(error));
        }
    }
}

pub(crate) struct Group {
    pub id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: Option<String>,
    /// Members in the order they joined; the first is the default leader.
    pub members: Vec<Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, with the time they lapse.
    pub pending: HashMap<String, Instant>,
    pub rebalance_deadline: Option<Instant>,
    /// A rebalance completed or the group emptied since the group was last stored.
    pub store_due: bool,
}

impl Group {
    /// The group as stored: Stable with its members (each given a fresh session), or Empty.
    pub fn restore(id: String, snapshot: &GroupSnapshot, now: Instant) -> Self {
        let mut group = Group::new(id);
        group.generation = snapshot.generation;
        group.protocol_type = snapshot.protocol_type.clone();
        group.protocol_name = snapshot.protocol_name.clone();
        group.members = snapshot
            .members
            .iter()
            .map(|m| Member {
                id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout: Duration::from_millis(m.session_timeout_ms),
                rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms),
                protocol_type: m.protocol_type.clone(),
                protocols: m
                    .protocols
                    .iter()
                    .map(|(n, meta)| (n.clone(), Bytes::from(from_hex(meta).unwrap_or_default())))
                    .collect(),
                assignment: Bytes::from(from_hex(&m.assignment).unwrap_or_default()),
                last_heartbeat: now,
                join_waiter: None,
                sync_waiter: None,
            })
            .collect();
        if !group.members.is_empty() {
            group.state = GroupState::Stable;
            group.leader = snapshot
                .leader
                .clone()
                .filter(|l| group.member(l).is_some())
                .or_else(|| group.members.first().map(|m| m.id.clone()));
        }
        group
    }

    /// What is stored of the group: its members, generation and assignments.
    pub fn snapshot(&self) -> GroupSnapshot {
        GroupSnapshot {
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader.clone(),
            members: self
                .members
                .iter()
                .map(|m| MemberSnapshot {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout.as_millis() as u64,
                    rebalance_timeout_ms: m.rebalance_timeout.as_millis() as u64,
                    protocol_type: m.protocol_type.clone(),
                    protocols: m
                        .protocols
                        .iter()
                        .map(|(n, meta)| (n.clone(), to_hex(meta)))
                        .collect(),
                    assignment: to_hex(&m.assignment),
                })
                .collect(),
        }
    }

    pub fn new(id: String) -> Self {
        Group {
            id,
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol_name: None,
            leader: None,
            members: Vec::new(),
            pending: HashMap::new(),
            rebalance_deadline: None,
            store_due: false,
        }
    }

    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    pub fn member_mut(&mut self, id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    pub fn static_member_id(&self, instance_id: &str) -> Option<String> {
        self.members
            .iter()
            .find(|m| m.instance_id.as_deref() == Some(instance_id))
            .map(|m| m.id.clone())
    }

    pub fn is_leader(&self, id: &str) -> bool {
        self.leader.as_deref() == Some(id)
    }

    /// Whether a member with this protocol type and these protocols may be in the group,
    /// ignoring the member `except` (a member rejoining with new protocols).
    pub fn supports(
        &self,
        protocol_type: &str,
        protocols: &[(String, Bytes)],
        except: &str,
    ) -> bool {
        if protocol_type.is_empty() || protocols.is_empty() {
            return false;
        }
        let others: Vec<&Member> = self.members.iter().filter(|m| m.id != except).collect();
        if others.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols
            .iter()
            .any(|(name, _)| others.iter().all(|m| m.supports(name)))
    }

    pub fn add_member(&mut self, member: Member) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member.id.clone());
        }
        self.members.push(member);
    }

    /// Removes a member, answering its waiting requests with UNKNOWN_MEMBER_ID, and picks a
    /// new leader if it led the group. Does not change the group state.
    pub fn remove_member(&mut self, id: &str) -> bool {
        let Some(pos) = self.members.iter().position(|m| m.id == id) else {
            return false;
        };
        let mut member = self.members.remove(pos);
        member.fail_waiters(ResponseError::UnknownMemberId);
        if self.is_leader(id) {
            self.leader = self
                .members
                .iter()
                .find(|m| m.join_waiter.is_some())
                .or_else(|| self.members.first())
                .map(|m| m.id.clone());
        }
        true
    }

    /// After members left or expired: rebalance a settled group, or see whether an ongoing
    /// rebalance can now complete.
    pub fn after_members_left(&mut self, now: Instant) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(now);
                self.try_complete_join(now);
            }
            GroupState::PreparingRebalance => self.try_complete_join(now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Starts a rebalance: members must rejoin within the largest rebalance timeout.
    pub fn prepare_rebalance(&mut self, now: Instant) {
        if self.state == GroupState::CompletingRebalance {
            // The assignment being synced is void; followers waiting for it must rejoin.
            for m in &mut self.members {
                m.assignment = Bytes::new();
                if let Some(tx) = m.sync_waiter.take() {
                    let _ = tx.send(SyncOutcome::error(ResponseError::RebalanceInProgress));
                }
            }
        }
        let timeout = self
            .members
            .iter()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        self.state = GroupState::PreparingRebalance;
        self.rebalance_deadline = Some(now + timeout);
    }

    fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.iter().all(|m| m.join_waiter.is_some())
    }

    /// Completes the rebalance if every known member has rejoined.
    pub fn try_complete_join(&mut self, now: Instant) {
        if self.state == GroupState::PreparingRebalance && self.all_joined() {
            self.complete_join(now);
        }
    }

    /// Ends the join phase: dynamic members that did not rejoin are removed, the generation
    /// advances, a protocol is chosen and every waiting member gets its JoinGroup answer.
    pub fn complete_join(&mut self, now: Instant) {
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.join_waiter.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in &gone {
            self.remove_member(id);
        }
        self.rebalance_deadline = None;
        self.generation = self.generation.wrapping_add(1).max(1);
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol_name = None;
            self.leader = None;
            self.store_due = true;
            return;
        }
        // The leader must be a member that is waiting for its answer, when there is one.
        let leader_joined = self
            .leader
            .as_deref()
            .and_then(|l| self.member(l))
            .is_some_and(|m| m.join_waiter.is_some());
        if !leader_joined {
            self.leader = self
                .members
                .iter()
                .find(|m| m.join_waiter.is_some())
                .or_else(|| self.members.first())
                .map(|m| m.id.clone());
        }
        self.protocol_name = self.select_protocol();
        self.state = GroupState::CompletingRebalance;
        let leader = self.leader.clone().unwrap_or_default();
        let all = self.joined_members();
        let protocol_type = self.protocol_type.clone();
        let protocol_name = self.protocol_name.clone();
        let generation = self.generation;
        for m in &mut self.members {
            m.last_heartbeat = now;
            m.assignment = Bytes::new();
            if let Some(tx) = m.join_waiter.take() {
                let members = if m.id == leader {
                    all.clone()
                } else {
                    Vec::new()
                };
                let _ = tx.send(JoinOutcome {
                    error: 0,
                    generation,
                    protocol_type: protocol_type.clone(),
                    protocol_name: protocol_name.clone(),
                    leader: leader.clone(),
                    member_id: m.id.clone(),
                    members,
                    skip_assignment: false,
                });
            }
        }
    }

    /// Every member with its metadata for the chosen protocol, as sent to the leader.
    pub fn joined_members(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol_name.as_deref().unwrap_or_default();
        self.members
            .iter()
            .map(|m| JoinedMember {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                metadata: m.metadata_for(protocol),
            })
            .collect()
    }

    /// The answer for a member whose join needs no rebalance.
    pub fn current_join(&self, member_id: &str) -> JoinOutcome {
        let leader = self.leader.clone().unwrap_or_default();
        let members = if leader == member_id {
            self.joined_members()
        } else {
            Vec::new()
        };
        JoinOutcome {
            error: 0,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader,
            member_id: member_id.to_string(),
            members,
            skip_assignment: false,
        }
    }

    /// Kafka's vote: among the protocols every member supports, each member votes for the
    /// one it prefers most; the most votes win, ties going to the leader's preference.
    fn select_protocol(&self) -> Option<String> {
        let first = self.members.first()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| self.members.iter().all(|m| m.supports(n)))
            .collect();
        let mut votes: HashMap<&str, usize> = HashMap::new();
        for m in &self.members {
            if let Some((name, _)) = m
                .protocols
                .iter()
                .find(|(n, _)| candidates.contains(&n.as_str()))
            {
                *votes.entry(name.as_str()).or_default() += 1;
            }
        }
        let leader_order: Vec<&str> = self
            .leader
            .as_deref()
            .and_then(|l| self.member(l))
            .map(|m| m.protocols.iter().map(|(n, _)| n.as_str()).collect())
            .unwrap_or_default();
        let rank = |n: &str| {
            leader_order
                .iter()
                .position(|x| *x == n)
                .unwrap_or(usize::MAX)
        };
        candidates
            .iter()
            .copied()
            .max_by(|a, b| {
                let va = votes.get(a).copied().unwrap_or(0);
                let vb = votes.get(b).copied().unwrap_or(0);
                va.cmp(&vb).then_with(|| rank(b).cmp(&rank(a)))
            })
            .map(str::to_string)
    }

    /// The leader's SyncGroup: stores every member's assignment, makes the group Stable and
    /// answers the followers already waiting.
    pub fn apply_assignments(&mut self, assignments: HashMap<String, Bytes>) {
        let protocol_type = self.protocol_type.clone();
        let protocol_name = self.protocol_name.clone();
        for m in &mut self.members {
            m.assignment = assignments.get(&m.id).cloned().unwrap_or_default();
            if let Some(tx) = m.sync_waiter.take() {
                let _ = tx.send(SyncOutcome {
                    error: 0,
                    protocol_type: protocol_type.clone(),
                    protocol_name: protocol_name.clone(),
                    assignment: m.assignment.clone(),
                });
            }
        }
        self.state = GroupState::Stable;
        self.store_due = true;
    }

    /// Applies the passage of time: lapsed pending member ids and sessions are dropped and
    /// an overdue rebalance is completed without the members that did not rejoin.
    pub fn expire(&mut self, now: Instant) {
        let before = self.pending.len();
        self.pending.retain(|_, deadline| *deadline > now);
        let pending_lapsed = self.pending.len() != before;

        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.expired(now))
            .map(|m| m.id.clone())
            .collect();
        for id in &expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.remove_member(id);
        }
        if !expired.is_empty() {
            self.after_members_left(now);
        } else if pending_lapsed {
            self.try_complete_join(now);
        }
        if self.state == GroupState::PreparingRebalance
            && self.rebalance_deadline.is_some_and(|d| now >= d)
        {
            tracing::info!(group = %self.id, "rebalance timeout passed; completing without the members that did not rejoin");
            self.complete_join(now);
        }
    }

    /// The topics the members of a consumer group (protocol type "consumer") subscribe to,
    /// from their subscription metadata; `None` when unknown (another protocol type, or
    /// metadata that does not parse), which callers take as "every topic".
    pub fn subscribed_topics(&self) -> Option<HashSet<String>> {
        if self.members.is_empty() {
            return Some(HashSet::new());
        }
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut topics = HashSet::new();
        for m in &self.members {
            topics.extend(subscription_topics(m.metadata_for(protocol))?);
        }
        Some(topics)
    }

    /// Answers every waiting request with `error`, e.g. when the coordinator shuts down.
    pub fn fail_all_waiters(&mut self, error: ResponseError) {
        for m in &mut self.members {
            m.fail_waiters(error);
        }
    }
}

/// The topics of a ConsumerProtocolSubscription (the metadata of the "consumer" protocol
/// type). Versions above the newest known are read as it, as Kafka reads them: later
/// versions only append fields.
fn subscription_topics(metadata: Bytes) -> Option<Vec<String>> {
    use bytes::Buf;
    use kafka_protocol::messages::ConsumerProtocolSubscription;
    use kafka_protocol::protocol::Decodable;
    let mut buf = metadata;
    if buf.remaining() < 2 {
        return None;
    }
    let version = buf.get_i16();
    if version < 0 {
        return None;
    }
    let subscription = ConsumerProtocolSubscription::decode(&mut buf, version.min(3)).ok()?;
    Some(subscription.topics.iter().map(|t| t.to_string()).collect())
}
