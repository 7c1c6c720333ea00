//! Coordinator tests: requests are built in Rust and every response is also encoded at the
//! version it answers, which fails when a field is set that the version does not carry.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use tokio::time::{Duration, sleep};

use super::*;

const NONE: i16 = 0;

fn code(e: ResponseError) -> i16 {
    e.code()
}

fn st(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn gid(v: &str) -> GroupId {
    GroupId(st(v))
}

fn encodes<T: Encodable>(msg: &T, version: i16) {
    let mut buf = BytesMut::new();
    msg.encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("response does not encode at v{version}: {e}"));
}

/// A bound on every wait of a test, in (paused) tokio time: a request that is never answered
/// fails the test instead of hanging it.
const PATIENCE: Duration = Duration::from_secs(600);

async fn done<T>(handle: tokio::task::JoinHandle<T>) -> T {
    tokio::time::timeout(PATIENCE, handle)
        .await
        .expect("request not answered in time")
        .expect("request task panicked")
}

async fn answered<F: std::future::Future>(fut: F) -> F::Output {
    tokio::time::timeout(PATIENCE, fut)
        .await
        .expect("request not answered in time")
}

fn test_config() -> GroupConfig {
    GroupConfig {
        min_session_timeout: Duration::from_millis(1),
        max_session_timeout: Duration::from_secs(3600),
        max_metadata_bytes: 4096,
        tick: Duration::from_millis(10),
    }
}

fn open(dir: &Path) -> Arc<GroupCoordinator> {
    GroupCoordinator::open_with_config(dir, test_config()).expect("open coordinator")
}

/// A JoinGroup of a consumer supporting `range` then `roundrobin`, with `meta` as metadata.
struct Join {
    group: &'static str,
    member: String,
    instance: Option<&'static str>,
    meta: &'static [u8],
    protocols: &'static [&'static str],
    session_ms: i32,
    rebalance_ms: i32,
    version: i16,
}

impl Join {
    fn new(group: &'static str, member: &str) -> Self {
        Join {
            group,
            member: member.to_string(),
            instance: None,
            meta: b"sub-1",
            protocols: &["range", "roundrobin"],
            session_ms: 10_000,
            rebalance_ms: 5_000,
            version: 9,
        }
    }

    fn request(&self) -> JoinGroupRequest {
        JoinGroupRequest::default()
            .with_group_id(gid(self.group))
            .with_member_id(st(&self.member))
            .with_group_instance_id(self.instance.map(st))
            .with_session_timeout_ms(self.session_ms)
            .with_rebalance_timeout_ms(self.rebalance_ms)
            .with_protocol_type(st("consumer"))
            .with_protocols(
                self.protocols
                    .iter()
                    .map(|name| {
                        JoinGroupRequestProtocol::default()
                            .with_name(st(name))
                            .with_metadata(Bytes::from_static(self.meta))
                    })
                    .collect(),
            )
    }

    async fn send(&self, c: &GroupCoordinator) -> JoinGroupResponse {
        let resp = answered(c.join_group(self.request(), self.version)).await;
        encodes(&resp, self.version);
        resp
    }

    /// Sends the join from a task, for joins that wait for other members.
    fn spawn(&self, c: &Arc<GroupCoordinator>) -> tokio::task::JoinHandle<JoinGroupResponse> {
        let c = c.clone();
        let req = self.request();
        let version = self.version;
        tokio::spawn(async move {
            let resp = c.join_group(req, version).await;
            encodes(&resp, version);
            resp
        })
    }
}

/// Joins a new dynamic member the v4+ way: MEMBER_ID_REQUIRED, then the join proper is spawned.
async fn join_new(
    c: &Arc<GroupCoordinator>,
    group: &'static str,
) -> (String, tokio::task::JoinHandle<JoinGroupResponse>) {
    let first = Join::new(group, "").send(c).await;
    assert_eq!(first.error_code, code(ResponseError::MemberIdRequired));
    let id = first.member_id.to_string();
    assert!(!id.is_empty());
    (id.clone(), Join::new(group, &id).spawn(c))
}

fn sync_req(
    group: &str,
    member: &str,
    generation: i32,
    assignments: &[(&str, &'static [u8])],
) -> SyncGroupRequest {
    SyncGroupRequest::default()
        .with_group_id(gid(group))
        .with_member_id(st(member))
        .with_generation_id(generation)
        .with_protocol_type(Some(st("consumer")))
        .with_protocol_name(Some(st("range")))
        .with_assignments(
            assignments
                .iter()
                .map(|(m, a)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(st(m))
                        .with_assignment(Bytes::from_static(a))
                })
                .collect(),
        )
}

async fn sync(c: &GroupCoordinator, req: SyncGroupRequest) -> SyncGroupResponse {
    let resp = answered(c.sync_group(req, 5)).await;
    encodes(&resp, 5);
    resp
}

fn spawn_sync(
    c: &Arc<GroupCoordinator>,
    req: SyncGroupRequest,
) -> tokio::task::JoinHandle<SyncGroupResponse> {
    let c = c.clone();
    tokio::spawn(async move { sync(&c, req).await })
}

async fn heartbeat(c: &GroupCoordinator, group: &str, member: &str, generation: i32) -> i16 {
    let req = HeartbeatRequest::default()
        .with_group_id(gid(group))
        .with_member_id(st(member))
        .with_generation_id(generation);
    let resp = c.heartbeat(req, 4).await;
    encodes(&resp, 4);
    resp.error_code
}

/// Two dynamic members in a stable group at generation 2, with assignments "a" and "b".
async fn two_member_group(c: &Arc<GroupCoordinator>, group: &'static str) -> (String, String, i32) {
    let (a, join_a) = join_new(c, group).await;
    let ja = done(join_a).await;
    assert_eq!(ja.error_code, NONE);
    assert_eq!(ja.generation_id, 1);
    assert_eq!(ja.leader.as_str(), a);
    let sa = sync(c, sync_req(group, &a, 1, &[(&a, b"a-alone")])).await;
    assert_eq!(sa.error_code, NONE);
    assert_eq!(&sa.assignment[..], b"a-alone");

    let (b, join_b) = join_new(c, group).await;
    sleep(Duration::from_millis(1)).await;
    assert_eq!(c.group_state(group), GroupState::PreparingRebalance);
    assert_eq!(
        heartbeat(c, group, &a, 1).await,
        code(ResponseError::RebalanceInProgress)
    );
    let ja = Join::new(group, &a).send(c).await;
    let jb = done(join_b).await;
    assert_eq!(ja.error_code, NONE);
    assert_eq!(jb.error_code, NONE);
    assert_eq!(ja.generation_id, 2);
    assert_eq!(jb.generation_id, 2);
    assert_eq!(ja.leader.as_str(), a);
    assert_eq!(jb.leader.as_str(), a);
    assert_eq!(ja.protocol_name.as_ref().map(|p| p.as_str()), Some("range"));
    let listed: Vec<&str> = ja.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(listed, vec![a.as_str(), b.as_str()]);
    assert!(jb.members.is_empty(), "only the leader sees the members");

    let follower = spawn_sync(c, sync_req(group, &b, 2, &[]));
    sleep(Duration::from_millis(1)).await;
    assert!(
        !follower.is_finished(),
        "the follower waits for the leader's assignment"
    );
    let sa = sync(c, sync_req(group, &a, 2, &[(&a, b"a"), (&b, b"b")])).await;
    let sb = done(follower).await;
    assert_eq!(sa.error_code, NONE);
    assert_eq!(sb.error_code, NONE);
    assert_eq!(&sa.assignment[..], b"a");
    assert_eq!(&sb.assignment[..], b"b");
    assert_eq!(c.group_state(group), GroupState::Stable);
    (a, b, 2)
}

#[tokio::test(start_paused = true)]
async fn join_and_sync_round_trip_with_two_members() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let (a, b, generation) = two_member_group(&c, "g").await;
    assert_eq!(heartbeat(&c, "g", &a, generation).await, NONE);
    assert_eq!(heartbeat(&c, "g", &b, generation).await, NONE);
    assert_eq!(
        heartbeat(&c, "g", &b, generation - 1).await,
        code(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        heartbeat(&c, "g", "stranger", generation).await,
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        heartbeat(&c, "nogroup", &a, generation).await,
        code(ResponseError::UnknownMemberId)
    );

    // A follower rejoining with unchanged metadata in a stable group gets the current generation.
    let again = Join::new("g", &b).send(&c).await;
    assert_eq!(again.error_code, NONE);
    assert_eq!(again.generation_id, generation);
    assert_eq!(c.group_state("g"), GroupState::Stable);
    // A stable member's sync returns its assignment again.
    let sb = sync(&c, sync_req("g", &b, generation, &[])).await;
    assert_eq!(&sb.assignment[..], b"b");
    assert_eq!(sb.protocol_name.as_ref().map(|p| p.as_str()), Some("range"));
}

#[tokio::test(start_paused = true)]
async fn joins_of_every_version_encode() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    for version in 0..=9i16 {
        let group: &'static str = Box::leak(format!("g{version}").into_boxed_str());
        let mut join = Join::new(group, "");
        join.version = version;
        let mut resp = join.send(&c).await;
        if version >= 4 {
            assert_eq!(
                resp.error_code,
                code(ResponseError::MemberIdRequired),
                "v{version}"
            );
            join.member = resp.member_id.to_string();
            resp = join.send(&c).await;
        }
        assert_eq!(resp.error_code, NONE, "v{version}");
        assert_eq!(resp.generation_id, 1, "v{version}");
        assert_eq!(resp.members.len(), 1, "v{version}");
        let member = resp.member_id.to_string();
        for sv in 0..=5i16 {
            let resp = c
                .sync_group(sync_req(group, &member, 1, &[(&member, b"x")]), sv)
                .await;
            encodes(&resp, sv);
            assert_eq!(resp.error_code, NONE);
            assert_eq!(&resp.assignment[..], b"x");
        }
        for hv in 0..=4i16 {
            let req = HeartbeatRequest::default()
                .with_group_id(gid(group))
                .with_member_id(st(&member))
                .with_generation_id(1);
            let resp = c.heartbeat(req, hv).await;
            encodes(&resp, hv);
            assert_eq!(resp.error_code, NONE);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn member_id_required_flow() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let first = Join::new("g", "").send(&c).await;
    assert_eq!(first.error_code, code(ResponseError::MemberIdRequired));
    assert_eq!(first.generation_id, -1);
    let id = first.member_id.to_string();
    assert!(!id.is_empty());
    assert!(c.members("g").is_empty(), "not a member before it rejoins");

    // A made-up member id is refused; the given one is accepted.
    let bogus = Join::new("g", "made-up").send(&c).await;
    assert_eq!(bogus.error_code, code(ResponseError::UnknownMemberId));
    let joined = Join::new("g", &id).send(&c).await;
    assert_eq!(joined.error_code, NONE);
    assert_eq!(joined.member_id.as_str(), id);
    assert_eq!(joined.leader.as_str(), id);
    assert_eq!(c.members("g"), vec![id.clone()]);

    // Before v4 a member joins with an empty id at once.
    let mut old = Join::new("h", "");
    old.version = 3;
    let resp = old.send(&c).await;
    assert_eq!(resp.error_code, NONE);
    assert!(!resp.member_id.is_empty());
    assert_eq!(c.members("h"), vec![resp.member_id.to_string()]);

    // A member id that was never used lapses after the session timeout.
    let mut lapsing = Join::new("l", "");
    lapsing.session_ms = 500;
    let resp = lapsing.send(&c).await;
    let late = resp.member_id.to_string();
    sleep(Duration::from_millis(600)).await;
    let resp = Join::new("l", &late).send(&c).await;
    assert_eq!(resp.error_code, code(ResponseError::UnknownMemberId));
}

#[tokio::test(start_paused = true)]
async fn join_validation() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let mut bad = Join::new("", "");
    assert_eq!(
        bad.send(&c).await.error_code,
        code(ResponseError::InvalidGroupId)
    );
    bad = Join::new("g", "");
    bad.session_ms = -5;
    assert_eq!(
        bad.send(&c).await.error_code,
        code(ResponseError::InvalidSessionTimeout)
    );
    let mut req = Join::new("g", "").request();
    req.protocols.clear();
    let resp = c.join_group(req, 9).await;
    assert_eq!(
        resp.error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );

    let default_limits = GroupCoordinator::open(&dir.path().join("default")).unwrap();
    let mut short = Join::new("g", "");
    short.session_ms = 1000;
    assert_eq!(
        short.send(&default_limits).await.error_code,
        code(ResponseError::InvalidSessionTimeout)
    );

    // A member with no protocol in common with the group is refused.
    let mut v3 = Join::new("p", "");
    v3.version = 3;
    assert_eq!(v3.send(&c).await.error_code, NONE);
    let mut other = Join::new("p", "").request();
    other.protocols.retain(|p| p.name.as_str() == "nothing");
    other
        .protocols
        .push(JoinGroupRequestProtocol::default().with_name(st("sticky")));
    let resp = c.join_group(other, 3).await;
    assert_eq!(
        resp.error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
}

#[tokio::test(start_paused = true)]
async fn session_expiry_by_timer_rebalances_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let (a, b, generation) = two_member_group(&c, "g").await;
    // Only `a` heartbeats; `b`'s 10 s session lapses.
    let mut answer = NONE;
    for _ in 0..40 {
        sleep(Duration::from_millis(500)).await;
        answer = heartbeat(&c, "g", &a, generation).await;
        if answer != NONE {
            break;
        }
    }
    assert_eq!(answer, code(ResponseError::RebalanceInProgress));
    assert_eq!(c.members("g"), vec![a.clone()]);
    assert_eq!(
        heartbeat(&c, "g", &b, generation).await,
        code(ResponseError::UnknownMemberId)
    );
    let rejoin = Join::new("g", &a).send(&c).await;
    assert_eq!(rejoin.error_code, NONE);
    assert_eq!(rejoin.generation_id, generation + 1);
    assert_eq!(rejoin.leader.as_str(), a);
    let members: Vec<&str> = rejoin
        .members
        .iter()
        .map(|m| m.member_id.as_str())
        .collect();
    assert_eq!(members, vec![a.as_str()]);
}

#[tokio::test(start_paused = true)]
async fn lone_member_expiry_empties_the_group() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let (_a, join_a) = join_new(&c, "g").await;
    assert_eq!(done(join_a).await.error_code, NONE);
    sleep(Duration::from_secs(11)).await;
    assert_eq!(
        c.group_state("g"),
        GroupState::Dead,
        "an empty group without offsets is dropped"
    );
}

#[tokio::test(start_paused = true)]
async fn rebalance_timeout_removes_a_member_that_did_not_rejoin() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let (a, b, generation) = two_member_group(&c, "g").await;
    // A third member triggers a rebalance; `a` rejoins, `b` keeps heartbeating but does not.
    let (x, join_x) = join_new(&c, "g").await;
    let join_a = Join::new("g", &a).spawn(&c);
    for _ in 0..4 {
        sleep(Duration::from_millis(1_000)).await;
        assert_eq!(
            heartbeat(&c, "g", &b, generation).await,
            code(ResponseError::RebalanceInProgress)
        );
    }
    assert!(
        !join_a.is_finished(),
        "the join waits for b until the rebalance timeout"
    );
    sleep(Duration::from_millis(1_100)).await;
    let ja = done(join_a).await;
    let jx = done(join_x).await;
    assert_eq!(ja.error_code, NONE);
    assert_eq!(jx.error_code, NONE);
    assert_eq!(ja.generation_id, generation + 1);
    let members: Vec<&str> = ja.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(members, vec![a.as_str(), x.as_str()]);
    assert_eq!(c.members("g"), vec![a.clone(), x.clone()]);
    assert_eq!(
        heartbeat(&c, "g", &b, generation).await,
        code(ResponseError::UnknownMemberId)
    );
}

#[tokio::test(start_paused = true)]
async fn static_member_rejoins_without_rebalance() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let mut ja = Join::new("g", "");
    ja.instance = Some("instance-a");
    let mut jb = Join::new("g", "");
    jb.instance = Some("instance-b");
    // Static members get a member id at once, without MEMBER_ID_REQUIRED.
    let ra = ja.send(&c).await;
    assert_eq!(ra.error_code, NONE);
    let a = ra.member_id.to_string();
    let rb = jb.spawn(&c);
    sleep(Duration::from_millis(1)).await;
    ja.member = a.clone();
    let ra = ja.send(&c).await;
    let rb = done(rb).await;
    let b = rb.member_id.to_string();
    assert_eq!(ra.generation_id, 2);
    assert_eq!(ra.leader.as_str(), a);
    let instances: Vec<Option<&str>> = ra
        .members
        .iter()
        .map(|m| m.group_instance_id.as_ref().map(|i| i.as_str()))
        .collect();
    assert_eq!(instances, vec![Some("instance-a"), Some("instance-b")]);
    let follower = spawn_sync(&c, sync_req("g", &b, 2, &[]));
    sleep(Duration::from_millis(1)).await;
    sync(&c, sync_req("g", &a, 2, &[(&a, b"a"), (&b, b"b")])).await;
    assert_eq!(&done(follower).await.assignment[..], b"b");

    // `b` restarts: same instance id, empty member id, same metadata.
    jb.member = String::new();
    let again = jb.send(&c).await;
    assert_eq!(again.error_code, NONE);
    let b2 = again.member_id.to_string();
    assert_ne!(b2, b);
    assert_eq!(again.generation_id, 2, "no rebalance");
    assert_eq!(again.leader.as_str(), a);
    assert_eq!(c.group_state("g"), GroupState::Stable);
    let sb = sync(&c, sync_req("g", &b2, 2, &[])).await;
    assert_eq!(sb.error_code, NONE);
    assert_eq!(&sb.assignment[..], b"b", "the assignment is kept");
    // The old member id is fenced.
    let fenced = HeartbeatRequest::default()
        .with_group_id(gid("g"))
        .with_member_id(st(&b))
        .with_generation_id(2)
        .with_group_instance_id(Some(st("instance-b")));
    assert_eq!(
        c.heartbeat(fenced, 4).await.error_code,
        code(ResponseError::FencedInstanceId)
    );
    jb.member = b.clone();
    assert_eq!(
        jb.send(&c).await.error_code,
        code(ResponseError::FencedInstanceId)
    );
    assert_eq!(heartbeat(&c, "g", &b2, 2).await, NONE);

    // Rejoining with changed metadata rebalances.
    jb.member = String::new();
    jb.meta = b"sub-2";
    let changed = jb.spawn(&c);
    sleep(Duration::from_millis(1)).await;
    assert_eq!(c.group_state("g"), GroupState::PreparingRebalance);
    ja.member = a.clone();
    let ra = ja.send(&c).await;
    assert_eq!(ra.generation_id, 3);
    assert_eq!(done(changed).await.generation_id, 3);

    // A static member leaving by instance id is removed at once.
    let leave = LeaveGroupRequest::default()
        .with_group_id(gid("g"))
        .with_members(vec![
            MemberIdentity::default()
                .with_member_id(st(""))
                .with_group_instance_id(Some(st("instance-b"))),
        ]);
    let resp = c.leave_group(leave, 5).await;
    encodes(&resp, 5);
    assert_eq!(resp.members[0].error_code, NONE);
    assert_eq!(c.members("g"), vec![a.clone()]);
}

#[tokio::test(start_paused = true)]
async fn leave_group_single_and_batch() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let (a, b, generation) = two_member_group(&c, "g").await;
    let leave = LeaveGroupRequest::default()
        .with_group_id(gid("g"))
        .with_member_id(st(&b));
    let resp = c.leave_group(leave, 0).await;
    encodes(&resp, 0);
    assert_eq!(resp.error_code, NONE);
    assert_eq!(c.members("g"), vec![a.clone()]);
    assert_eq!(
        heartbeat(&c, "g", &a, generation).await,
        code(ResponseError::RebalanceInProgress)
    );
    let rejoin = Join::new("g", &a).send(&c).await;
    assert_eq!(rejoin.generation_id, generation + 1);

    let leave = LeaveGroupRequest::default()
        .with_group_id(gid("g"))
        .with_member_id(st("nobody"));
    let resp = c.leave_group(leave, 2).await;
    encodes(&resp, 2);
    assert_eq!(resp.error_code, code(ResponseError::UnknownMemberId));

    let leave = LeaveGroupRequest::default()
        .with_group_id(gid("g"))
        .with_members(vec![
            MemberIdentity::default().with_member_id(st(&a)),
            MemberIdentity::default().with_member_id(st("nobody")),
        ]);
    let resp = c.leave_group(leave, 4).await;
    encodes(&resp, 4);
    assert_eq!(resp.error_code, NONE);
    let errors: Vec<i16> = resp.members.iter().map(|m| m.error_code).collect();
    assert_eq!(errors, vec![NONE, code(ResponseError::UnknownMemberId)]);
    assert_eq!(c.group_state("g"), GroupState::Empty);
    assert_eq!(c.generation("g"), generation + 2);
}

fn commit_req(
    group: &str,
    member: &str,
    generation: i32,
    offsets: &[(&str, i32, i64)],
) -> OffsetCommitRequest {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (topic, partition, offset) in offsets {
        let p = OffsetCommitRequestPartition::default()
            .with_partition_index(*partition)
            .with_committed_offset(*offset)
            .with_committed_leader_epoch(7)
            .with_committed_metadata(Some(st("meta")));
        match topics.iter_mut().find(|t| t.name.0.as_str() == *topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(st(topic)))
                    .with_partitions(vec![p]),
            ),
        }
    }
    OffsetCommitRequest::default()
        .with_group_id(gid(group))
        .with_member_id(st(member))
        .with_generation_id_or_member_epoch(generation)
        .with_topics(topics)
}

async fn commit(c: &GroupCoordinator, req: OffsetCommitRequest, version: i16) -> Vec<i16> {
    let resp = c.offset_commit(req, version).await;
    encodes(&resp, version);
    resp.topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn commit_and_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    // A simple consumer commits without a group.
    let errors = commit(
        &c,
        commit_req("simple", "", -1, &[("t", 0, 10), ("t", 1, 20), ("u", 0, 5)]),
        8,
    )
    .await;
    assert_eq!(errors, vec![NONE, NONE, NONE]);
    assert_eq!(c.committed("simple", "t", 1), Some(20));
    assert_eq!(c.committed("simple", "t", 2), None);

    // v1-7: top-level topics; unknown partitions answer -1.
    for version in 1..=7i16 {
        let req = OffsetFetchRequest::default()
            .with_group_id(gid("simple"))
            .with_topics(Some(vec![
                OffsetFetchRequestTopic::default()
                    .with_name(TopicName(st("t")))
                    .with_partition_indexes(vec![0, 1, 9]),
            ]));
        let resp = c.offset_fetch(req, version).await;
        encodes(&resp, version);
        let got: Vec<(i32, i64)> = resp.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition_index, p.committed_offset))
            .collect();
        assert_eq!(got, vec![(0, 10), (1, 20), (9, -1)], "v{version}");
        let epoch = resp.topics[0].partitions[0].committed_leader_epoch;
        assert_eq!(epoch, if version >= 5 { 7 } else { -1 });
        assert_eq!(
            resp.topics[0].partitions[0]
                .metadata
                .as_ref()
                .map(|m| m.as_str()),
            Some("meta")
        );
    }
    // Null topics: everything the group committed.
    let req = OffsetFetchRequest::default()
        .with_group_id(gid("simple"))
        .with_topics(None);
    let resp = c.offset_fetch(req, 7).await;
    encodes(&resp, 7);
    let all: Vec<(&str, i32, i64)> = resp
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.as_str(), p.partition_index, p.committed_offset))
        })
        .collect();
    assert_eq!(all, vec![("t", 0, 10), ("t", 1, 20), ("u", 0, 5)]);

    // v8+: the groups array, several groups at once.
    let req = OffsetFetchRequest::default()
        .with_topics(None)
        .with_groups(vec![
            OffsetFetchRequestGroup::default()
                .with_group_id(gid("simple"))
                .with_topics(None),
            OffsetFetchRequestGroup::default()
                .with_group_id(gid("unknown"))
                .with_topics(Some(vec![
                    OffsetFetchRequestTopics::default()
                        .with_name(TopicName(st("t")))
                        .with_partition_indexes(vec![0]),
                ])),
        ]);
    for version in [8i16, 9] {
        let resp = c.offset_fetch(req.clone(), version).await;
        encodes(&resp, version);
        assert_eq!(resp.groups.len(), 2);
        let simple: usize = resp.groups[0]
            .topics
            .iter()
            .map(|t| t.partitions.len())
            .sum();
        assert_eq!(simple, 3);
        assert_eq!(resp.groups[1].error_code, NONE);
        assert_eq!(resp.groups[1].topics[0].partitions[0].committed_offset, -1);
    }

    // Commits to a managed group follow its generation and membership.
    let (a, b, generation) = two_member_group(&c, "g").await;
    assert_eq!(
        commit(&c, commit_req("g", &a, generation, &[("t", 0, 1)]), 9).await,
        vec![NONE]
    );
    assert_eq!(
        commit(&c, commit_req("g", &a, generation - 1, &[("t", 0, 2)]), 9).await,
        vec![code(ResponseError::IllegalGeneration)]
    );
    assert_eq!(
        commit(&c, commit_req("g", "nobody", generation, &[("t", 0, 2)]), 9).await,
        vec![code(ResponseError::UnknownMemberId)]
    );
    assert_eq!(
        commit(&c, commit_req("g", "", -1, &[("t", 0, 2)]), 9).await,
        vec![code(ResponseError::UnknownMemberId)]
    );
    assert_eq!(c.committed("g", "t", 0), Some(1));
    // During the join phase members may still commit (e.g. on revocation) ...
    let (_x, join_x) = join_new(&c, "g").await;
    sleep(Duration::from_millis(1)).await;
    assert_eq!(
        commit(&c, commit_req("g", &b, generation, &[("t", 0, 3)]), 9).await,
        vec![NONE]
    );
    // ... but not while the new assignment is being synced.
    let ja = Join::new("g", &a).spawn(&c);
    let jb = Join::new("g", &b).spawn(&c);
    let (ja, jb, jx) = (done(ja).await, done(jb).await, done(join_x).await);
    assert_eq!(
        (ja.error_code, jb.error_code, jx.error_code),
        (NONE, NONE, NONE)
    );
    assert_eq!(c.group_state("g"), GroupState::CompletingRebalance);
    assert_eq!(
        commit(&c, commit_req("g", &a, ja.generation_id, &[("t", 0, 4)]), 9).await,
        vec![code(ResponseError::RebalanceInProgress)]
    );
    assert_eq!(c.committed("g", "t", 0), Some(3));
    // An unknown group only takes commits without a generation.
    assert_eq!(
        commit(&c, commit_req("fresh", "m", 3, &[("t", 0, 1)]), 2).await,
        vec![code(ResponseError::IllegalGeneration)]
    );
    // Metadata beyond the limit is refused per partition.
    let mut big = commit_req("simple", "", -1, &[("t", 0, 11)]);
    big.topics[0].partitions[0].committed_metadata = Some(st(&"x".repeat(5000)));
    assert_eq!(
        commit(&c, big, 5).await,
        vec![code(ResponseError::OffsetMetadataTooLarge)]
    );
    assert_eq!(c.committed("simple", "t", 0), Some(10));

    c.forget_topic("t");
    assert_eq!(c.committed("simple", "t", 0), None);
    assert_eq!(c.committed("simple", "u", 0), Some(5));
}

#[tokio::test(start_paused = true)]
async fn commits_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = open(dir.path());
        commit(
            &c,
            commit_req("g", "", -1, &[("t", 0, 10), ("t", 1, 20)]),
            8,
        )
        .await;
        commit(&c, commit_req("g", "", -1, &[("t", 0, 11)]), 8).await;
        commit(
            &c,
            commit_req("h", "", -1, &[("gone", 0, 1), ("u", 3, 4)]),
            8,
        )
        .await;
        c.forget_topic("gone");
        commit(&c, commit_req("dropped", "", -1, &[("t", 0, 1)]), 8).await;
        let resp = c
            .delete_groups(
                DeleteGroupsRequest::default().with_groups_names(vec![gid("dropped")]),
                2,
            )
            .await;
        assert_eq!(resp.results[0].error_code, NONE);
        // No shutdown: as if the process were killed.
    }
    // A torn last record (a write cut short) is skipped.
    use std::io::Write;
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("offsets.log"))
        .unwrap();
    log.write_all(br#"{"op":"commit","group":"g","top"#)
        .unwrap();
    drop(log);

    let c = open(dir.path());
    assert_eq!(c.committed("g", "t", 0), Some(11));
    assert_eq!(c.committed("g", "t", 1), Some(20));
    assert_eq!(c.committed("h", "u", 3), Some(4));
    assert_eq!(c.committed("h", "gone", 0), None);
    assert_eq!(c.committed("dropped", "t", 0), None);
    let req = OffsetFetchRequest::default()
        .with_group_id(gid("g"))
        .with_topics(Some(vec![
            OffsetFetchRequestTopic::default()
                .with_name(TopicName(st("t")))
                .with_partition_indexes(vec![0]),
        ]));
    let resp = c.offset_fetch(req, 6).await;
    assert_eq!(resp.topics[0].partitions[0].committed_leader_epoch, 7);
    assert_eq!(
        resp.topics[0].partitions[0]
            .metadata
            .as_ref()
            .map(|m| m.as_str()),
        Some("meta")
    );
    // Groups known only by their offsets are listed as Empty.
    let listed = c.list_groups(ListGroupsRequest::default(), 4).await;
    let names: Vec<(&str, &str)> = listed
        .groups
        .iter()
        .map(|g| (g.group_id.0.as_str(), g.group_state.as_str()))
        .collect();
    assert_eq!(names, vec![("g", "Empty"), ("h", "Empty")]);
    c.shutdown();

    // The compacted log reopens to the same offsets.
    let c = open(dir.path());
    assert_eq!(c.committed("g", "t", 0), Some(11));
    assert_eq!(c.committed_offsets("h"), vec![("u".to_string(), 3, 4)]);
}

#[tokio::test(start_paused = true)]
async fn delete_groups() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let (a, _b, generation) = two_member_group(&c, "busy").await;
    commit(&c, commit_req("busy", &a, generation, &[("t", 0, 1)]), 9).await;
    commit(&c, commit_req("idle", "", -1, &[("t", 0, 1)]), 9).await;
    let req = DeleteGroupsRequest::default().with_groups_names(vec![
        gid("busy"),
        gid("idle"),
        gid("nope"),
        gid(""),
    ]);
    let resp = c.delete_groups(req, 2).await;
    encodes(&resp, 2);
    let errors: Vec<(&str, i16)> = resp
        .results
        .iter()
        .map(|r| (r.group_id.0.as_str(), r.error_code))
        .collect();
    assert_eq!(
        errors,
        vec![
            ("busy", code(ResponseError::NonEmptyGroup)),
            ("idle", NONE),
            ("nope", code(ResponseError::GroupIdNotFound)),
            ("", code(ResponseError::InvalidGroupId)),
        ]
    );
    assert_eq!(c.committed("idle", "t", 0), None);
    assert_eq!(c.committed("busy", "t", 0), Some(1));
    assert_eq!(c.group_state("idle"), GroupState::Dead);
}

#[tokio::test(start_paused = true)]
async fn describe_with_assignments() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let (a, b, _) = two_member_group(&c, "g").await;
    for version in 0..=6i16 {
        let req = DescribeGroupsRequest::default()
            .with_groups(vec![gid("g"), gid("missing")])
            .with_include_authorized_operations(version >= 3);
        let resp = c.describe_groups(req, version).await;
        encodes(&resp, version);
        let g = &resp.groups[0];
        assert_eq!(g.error_code, NONE);
        assert_eq!(g.group_state.as_str(), "Stable");
        assert_eq!(g.protocol_type.as_str(), "consumer");
        assert_eq!(g.protocol_data.as_str(), "range");
        let members: Vec<(&str, &[u8], &[u8])> = g
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.as_str(),
                    &m.member_metadata[..],
                    &m.member_assignment[..],
                )
            })
            .collect();
        assert_eq!(
            members,
            vec![
                (a.as_str(), &b"sub-1"[..], &b"a"[..]),
                (b.as_str(), &b"sub-1"[..], &b"b"[..])
            ]
        );
        let missing = &resp.groups[1];
        assert_eq!(missing.group_state.as_str(), "Dead");
        assert!(missing.members.is_empty());
        let expected = if version >= 6 {
            code(ResponseError::GroupIdNotFound)
        } else {
            NONE
        };
        assert_eq!(missing.error_code, expected, "v{version}");
    }
    // While rebalancing the members are listed without metadata or assignment.
    let (_x, _join_x) = join_new(&c, "g").await;
    sleep(Duration::from_millis(1)).await;
    let resp = c
        .describe_groups(
            DescribeGroupsRequest::default().with_groups(vec![gid("g")]),
            5,
        )
        .await;
    let g = &resp.groups[0];
    assert_eq!(g.group_state.as_str(), "PreparingRebalance");
    assert_eq!(g.members.len(), 3);
    assert!(g.members.iter().all(|m| m.member_assignment.is_empty()));
}

#[tokio::test(start_paused = true)]
async fn list_groups_filters() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    two_member_group(&c, "stable").await;
    commit(&c, commit_req("empty", "", -1, &[("t", 0, 1)]), 9).await;
    for version in 0..=5i16 {
        let resp = c.list_groups(ListGroupsRequest::default(), version).await;
        encodes(&resp, version);
        let names: Vec<&str> = resp.groups.iter().map(|g| g.group_id.0.as_str()).collect();
        assert_eq!(names, vec!["empty", "stable"], "v{version}");
        assert_eq!(resp.groups[1].protocol_type.as_str(), "consumer");
    }
    let req = ListGroupsRequest::default().with_states_filter(vec![st("stable")]);
    let resp = c.list_groups(req, 4).await;
    let names: Vec<&str> = resp.groups.iter().map(|g| g.group_id.0.as_str()).collect();
    assert_eq!(names, vec!["stable"]);
    assert_eq!(resp.groups[0].group_state.as_str(), "Stable");
    let req = ListGroupsRequest::default().with_types_filter(vec![st("consumer")]);
    assert!(c.list_groups(req, 5).await.groups.is_empty());
    let req = ListGroupsRequest::default().with_types_filter(vec![st("Classic")]);
    let resp = c.list_groups(req, 5).await;
    assert_eq!(resp.groups.len(), 2);
    assert_eq!(resp.groups[0].group_type.as_str(), "classic");
}

#[tokio::test(start_paused = true)]
async fn shutdown_answers_waiting_joins() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let (a, b, _) = two_member_group(&c, "g").await;
    let _ = b;
    let (_x, join_x) = join_new(&c, "g").await;
    sleep(Duration::from_millis(1)).await;
    c.shutdown();
    assert_eq!(
        done(join_x).await.error_code,
        code(ResponseError::CoordinatorNotAvailable)
    );
    assert_eq!(
        heartbeat(&c, "g", &a, 2).await,
        code(ResponseError::CoordinatorNotAvailable)
    );
}

#[tokio::test]
async fn timer_task_stops_when_the_coordinator_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let weak = Arc::downgrade(&c);
    drop(c);
    assert!(
        weak.upgrade().is_none(),
        "the timer task must not keep the coordinator alive"
    );
}

#[test]
fn open_outside_a_runtime_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    assert!(GroupCoordinator::open(dir.path()).is_err());
}

#[test]
fn coordinator_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<GroupCoordinator>();
    check::<Arc<GroupCoordinator>>();
}

#[test]
fn offset_log_is_compacted_when_it_grows() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("offsets.log");
    let lines = || std::fs::read_to_string(&log).unwrap().lines().count();
    let mut store = super::offsets::OffsetStore::open(dir.path()).unwrap();
    let c = |offset| CommittedOffset {
        offset,
        leader_epoch: -1,
        metadata: None,
    };
    for i in 0..25_000 {
        store
            .commit("g", vec![("t".to_string(), (i % 3) as i32, c(i))])
            .unwrap();
    }
    assert!(lines() < 11_000, "the log was compacted: {} lines", lines());
    drop(store);
    let store = super::offsets::OffsetStore::open(dir.path()).unwrap();
    assert_eq!(lines(), 3);
    assert_eq!(store.get("g", "t", 0).map(|c| c.offset), Some(24_999));
    assert_eq!(store.get("g", "t", 1).map(|c| c.offset), Some(24_997));
}

#[tokio::test(start_paused = true)]
async fn protocol_is_chosen_by_vote() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let mut ja = Join::new("g", "");
    ja.version = 3;
    ja.protocols = &["range", "roundrobin", "sticky"];
    let ra = ja.send(&c).await;
    assert_eq!(ra.protocol_name.as_ref().map(|p| p.as_str()), Some("range"));
    let a = ra.member_id.to_string();
    let mut jb = Join::new("g", "");
    jb.version = 3;
    jb.protocols = &["roundrobin", "range"];
    let mut jc = Join::new("g", "");
    jc.version = 3;
    jc.protocols = &["sticky", "roundrobin"];
    let rb = jb.spawn(&c);
    let rc = jc.spawn(&c);
    sleep(Duration::from_millis(1)).await;
    ja.member = a;
    let ra = ja.send(&c).await;
    let (rb, rc) = (done(rb).await, done(rc).await);
    // Only roundrobin is supported by all; range and sticky are not candidates.
    for r in [&ra, &rb, &rc] {
        assert_eq!(r.error_code, NONE);
        assert_eq!(r.generation_id, 2);
        assert_eq!(
            r.protocol_name.as_ref().map(|p| p.as_str()),
            Some("roundrobin")
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_join_during_sync_sends_waiting_followers_back() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    let (a, b, generation) = two_member_group(&c, "g").await;
    // Both rejoin because the leader's metadata changed; the group awaits the leader's sync.
    let mut ja = Join::new("g", &a);
    ja.meta = b"sub-2";
    let ra = ja.spawn(&c);
    let rb = Join::new("g", &b).spawn(&c);
    let (ra, rb) = (done(ra).await, done(rb).await);
    assert_eq!(
        (ra.generation_id, rb.generation_id),
        (generation + 1, generation + 1)
    );
    assert_eq!(&ra.members[0].metadata[..], b"sub-2");
    let follower = spawn_sync(&c, sync_req("g", &b, generation + 1, &[]));
    sleep(Duration::from_millis(1)).await;
    // A new member arrives before the leader syncs: the follower must rejoin.
    let (_x, _join_x) = join_new(&c, "g").await;
    sleep(Duration::from_millis(1)).await;
    assert_eq!(c.group_state("g"), GroupState::PreparingRebalance);
    assert_eq!(
        done(follower).await.error_code,
        code(ResponseError::RebalanceInProgress)
    );
    let late = sync(&c, sync_req("g", &a, generation + 1, &[(&a, b"a")])).await;
    assert_eq!(late.error_code, code(ResponseError::RebalanceInProgress));
}

/// Encodes a request at `version` and decodes it again, as the server would receive it:
/// fields the version lacks come back with their defaults.
fn over_the_wire<T: Encodable + kafka_protocol::protocol::Decodable>(msg: &T, version: i16) -> T {
    let mut buf = BytesMut::new();
    msg.encode(&mut buf, version).expect("request encodes");
    let mut bytes = buf.freeze();
    T::decode(&mut bytes, version).expect("request decodes")
}

#[tokio::test(start_paused = true)]
async fn oldest_versions_decoded_from_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());
    // JoinGroup v0 carries no rebalance timeout: the session timeout is used.
    let mut join = Join::new("g", "").request();
    join.rebalance_timeout_ms = -1;
    join.group_instance_id = None;
    let join = over_the_wire(&join, 0);
    let resp = answered(c.join_group(join, 0)).await;
    encodes(&resp, 0);
    assert_eq!(resp.error_code, NONE);
    let member = resp.member_id.to_string();
    let sync = over_the_wire(
        &SyncGroupRequest::default()
            .with_group_id(gid("g"))
            .with_member_id(st(&member))
            .with_generation_id(1),
        0,
    );
    let resp = answered(c.sync_group(sync, 0)).await;
    encodes(&resp, 0);
    assert_eq!(resp.error_code, NONE);

    let mut commit = commit_req("g", &member, 1, &[("t", 0, 42)]);
    commit.topics[0].partitions[0].committed_leader_epoch = -1;
    let commit = over_the_wire(&commit, 2);
    let resp = c.offset_commit(commit, 2).await;
    encodes(&resp, 2);
    assert_eq!(resp.topics[0].partitions[0].error_code, NONE);

    let fetch = over_the_wire(
        &OffsetFetchRequest::default()
            .with_group_id(gid("g"))
            .with_topics(Some(vec![
                OffsetFetchRequestTopic::default()
                    .with_name(TopicName(st("t")))
                    .with_partition_indexes(vec![0, 1]),
            ])),
        1,
    );
    let resp = c.offset_fetch(fetch, 1).await;
    encodes(&resp, 1);
    let got: Vec<i64> = resp.topics[0]
        .partitions
        .iter()
        .map(|p| p.committed_offset)
        .collect();
    assert_eq!(got, vec![42, -1]);

    let leave = over_the_wire(
        &LeaveGroupRequest::default()
            .with_group_id(gid("g"))
            .with_member_id(st(&member)),
        0,
    );
    let resp = c.leave_group(leave, 0).await;
    encodes(&resp, 0);
    assert_eq!(resp.error_code, NONE);
    assert_eq!(c.group_state("g"), GroupState::Empty);

    let describe = over_the_wire(
        &DescribeGroupsRequest::default().with_groups(vec![gid("g")]),
        0,
    );
    let resp = c.describe_groups(describe, 0).await;
    encodes(&resp, 0);
    assert_eq!(resp.groups[0].group_state.as_str(), "Empty");
    assert_eq!(resp.groups[0].protocol_type.as_str(), "consumer");
}

/// A ConsumerProtocolSubscription v0 of topic "t": version, topics ["t"], null user data.
const SUBSCRIBES_T: &[u8] = &[0, 0, 0, 0, 0, 1, 0, 1, b't', 0xff, 0xff, 0xff, 0xff];

fn offset_delete_req(group: &str, offsets: &[(&str, i32)]) -> OffsetDeleteRequest {
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    let topics = offsets
        .iter()
        .map(|(t, p)| {
            OffsetDeleteRequestTopic::default()
                .with_name(TopicName(st(t)))
                .with_partitions(vec![
                    OffsetDeleteRequestPartition::default().with_partition_index(*p),
                ])
        })
        .collect();
    OffsetDeleteRequest::default()
        .with_group_id(gid(group))
        .with_topics(topics)
}

/// (top-level error, per-partition errors) of an OffsetDelete.
async fn offset_delete(
    c: &GroupCoordinator,
    group: &str,
    offsets: &[(&str, i32)],
) -> (i16, Vec<i16>) {
    let resp = c.offset_delete(offset_delete_req(group, offsets), 0).await;
    encodes(&resp, 0);
    let partitions = resp
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect();
    (resp.error_code, partitions)
}

#[tokio::test(start_paused = true)]
async fn offset_delete_spares_topics_an_active_group_subscribes_to() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path());

    // An empty group: every offset may go, and stays gone after a reopen.
    commit(
        &c,
        commit_req("idle", "", -1, &[("t", 0, 1), ("t", 1, 2)]),
        9,
    )
    .await;
    assert_eq!(
        offset_delete(&c, "idle", &[("t", 0), ("t", 5)]).await,
        (NONE, vec![NONE, NONE])
    );
    assert_eq!(c.committed("idle", "t", 0), None);
    assert_eq!(c.committed("idle", "t", 1), Some(2));

    // An active consumer group subscribed to "t": offsets of "t" are kept, of "u" deleted.
    let first = Join {
        meta: SUBSCRIBES_T,
        ..Join::new("sub", "")
    }
    .send(&c)
    .await;
    let id = first.member_id.to_string();
    let joined = Join {
        meta: SUBSCRIBES_T,
        ..Join::new("sub", &id)
    }
    .send(&c)
    .await;
    assert_eq!(joined.error_code, NONE);
    let generation = joined.generation_id;
    let synced = sync(&c, sync_req("sub", &id, generation, &[(&id, b"t-0")])).await;
    assert_eq!(synced.error_code, NONE);
    let errors = commit(
        &c,
        commit_req("sub", &id, generation, &[("t", 0, 3), ("u", 0, 4)]),
        9,
    )
    .await;
    assert_eq!(errors, vec![NONE, NONE]);
    assert_eq!(
        offset_delete(&c, "sub", &[("t", 0), ("u", 0)]).await,
        (
            NONE,
            vec![code(ResponseError::GroupSubscribedToTopic), NONE]
        )
    );
    assert_eq!(c.committed("sub", "t", 0), Some(3));
    assert_eq!(c.committed("sub", "u", 0), None);

    // Subscriptions that cannot be read protect every topic.
    let (a, _b, generation) = two_member_group(&c, "opaque").await;
    commit(&c, commit_req("opaque", &a, generation, &[("u", 0, 1)]), 9).await;
    assert_eq!(
        offset_delete(&c, "opaque", &[("u", 0)]).await,
        (NONE, vec![code(ResponseError::GroupSubscribedToTopic)])
    );

    assert_eq!(
        offset_delete(&c, "nope", &[("t", 0)]).await.0,
        code(ResponseError::GroupIdNotFound)
    );
    assert_eq!(
        offset_delete(&c, "", &[("t", 0)]).await.0,
        code(ResponseError::InvalidGroupId)
    );
    c.shutdown();
    drop(c);

    let c = open(dir.path());
    assert_eq!(c.committed("idle", "t", 0), None);
    assert_eq!(c.committed("idle", "t", 1), Some(2));
    assert_eq!(c.committed("sub", "u", 0), None);
    assert_eq!(c.committed("sub", "t", 0), Some(3));
}

#[tokio::test(start_paused = true)]
async fn a_stable_group_is_restored_with_its_members_and_assignments() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, generation) = {
        let c = open(dir.path());
        let group = two_member_group(&c, "g").await;
        // A group that emptied is stored as empty.
        let (lone, join) = join_new(&c, "gone").await;
        let joined = done(join).await;
        sync(
            &c,
            sync_req("gone", &lone, joined.generation_id, &[(&lone, b"x")]),
        )
        .await;
        let leave = LeaveGroupRequest::default()
            .with_group_id(gid("gone"))
            .with_member_id(st(&lone));
        assert_eq!(c.leave_group(leave, 0).await.error_code, NONE);
        commit(&c, commit_req("gone", "", -1, &[("t", 0, 1)]), 9).await;
        // No shutdown: as if the process were killed.
        group
    };
    let c = open(dir.path());
    assert_eq!(c.group_state("g"), GroupState::Stable);
    assert_eq!(c.generation("g"), generation);
    assert_eq!(c.members("g"), vec![a.clone(), b.clone()]);
    assert_eq!(heartbeat(&c, "g", &a, generation).await, NONE);
    assert_eq!(heartbeat(&c, "g", &b, generation).await, NONE);
    let resync = sync(&c, sync_req("g", &b, generation, &[])).await;
    assert_eq!(resync.error_code, NONE);
    assert_eq!(&resync.assignment[..], b"b");
    assert_eq!(c.group_state("gone"), GroupState::Empty);
    assert!(c.members("gone").is_empty());

    // A member that does not come back expires and the other gets a new generation.
    sleep(Duration::from_millis(5_000)).await;
    assert_eq!(heartbeat(&c, "g", &a, generation).await, NONE);
    sleep(Duration::from_millis(6_000)).await;
    assert_eq!(c.members("g"), vec![a.clone()]);
    assert_eq!(
        heartbeat(&c, "g", &a, generation).await,
        code(ResponseError::RebalanceInProgress)
    );
}

#[tokio::test(start_paused = true)]
async fn a_static_member_s_new_member_id_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let b2 = {
        let c = open(dir.path());
        let mut ja = Join::new("g", "");
        ja.instance = Some("instance-a");
        let mut jb = Join::new("g", "");
        jb.instance = Some("instance-b");
        let a = ja.send(&c).await.member_id.to_string();
        let rb = jb.spawn(&c);
        sleep(Duration::from_millis(1)).await;
        ja.member = a.clone();
        ja.send(&c).await;
        let b = done(rb).await.member_id.to_string();
        let follower = spawn_sync(&c, sync_req("g", &b, 2, &[]));
        sleep(Duration::from_millis(1)).await;
        sync(&c, sync_req("g", &a, 2, &[(&a, b"a"), (&b, b"b")])).await;
        done(follower).await;
        // `b` restarts without a rebalance and gets a new member id.
        jb.member = String::new();
        let again = jb.send(&c).await;
        assert_eq!(again.generation_id, 2, "no rebalance");
        again.member_id.to_string()
    };
    let c = open(dir.path());
    let req = HeartbeatRequest::default()
        .with_group_id(gid("g"))
        .with_member_id(st(&b2))
        .with_group_instance_id(Some(st("instance-b")))
        .with_generation_id(2);
    assert_eq!(c.heartbeat(req, 4).await.error_code, NONE);
}
