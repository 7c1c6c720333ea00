//! Classic consumer groups against librdkafka: members sharing a topic's partitions,
//! commits a later member resumes from, a member killed without leaving, and restarts (of an
//! idle group, and under running members).
//!
//! The killed member runs in a child process: this test binary started again with
//! `STREAMHUB_GROUP_CHILD` set runs only `child_member_process`, which joins the group and
//! prints its assignment until it is killed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use streamhub_broker::{Broker, BrokerConfig};

const PARTITIONS: i32 = 6;
const CHILD_ENV: &str = "STREAMHUB_GROUP_CHILD";

fn group_consumer(bootstrap: &str, group: &str, client_id: &str) -> BaseConsumer {
    group_consumer_with(bootstrap, group, client_id, &[])
}

fn group_consumer_with(
    bootstrap: &str,
    group: &str,
    client_id: &str,
    extra: &[(&str, &str)],
) -> BaseConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("client.id", client_id)
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "100");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().expect("group consumer")
}

fn assignment_of(consumer: &BaseConsumer) -> BTreeSet<i32> {
    consumer
        .assignment()
        .expect("assignment")
        .elements()
        .iter()
        .map(|e| e.partition())
        .collect()
}

/// One message as a member read it: (partition, offset, payload).
type Read = (i32, i64, String);

#[derive(Default)]
struct MemberState {
    assignment: Mutex<BTreeSet<i32>>,
    /// Every assignment the member had, in order, without repeats.
    history: Mutex<Vec<BTreeSet<i32>>>,
    read: Mutex<Vec<Read>>,
    commit: AtomicBool,
    committed: AtomicBool,
    stop: AtomicBool,
}

/// A group member polled in its own thread, reporting what it owns and reads.
struct Member {
    state: Arc<MemberState>,
    thread: Option<JoinHandle<()>>,
}

impl Member {
    fn start(bootstrap: &str, group: &str, topic: &str, name: &str) -> Member {
        Member::start_with(bootstrap, group, topic, name, &[])
    }

    fn start_with(
        bootstrap: &str,
        group: &str,
        topic: &str,
        name: &str,
        extra: &[(&str, &str)],
    ) -> Member {
        let state = Arc::new(MemberState::default());
        let consumer = group_consumer_with(bootstrap, group, name, extra);
        consumer.subscribe(&[topic]).expect("subscribe");
        let s = state.clone();
        let thread = std::thread::spawn(move || {
            while !s.stop.load(Ordering::Acquire) {
                match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) => {
                        let payload = String::from_utf8(m.payload().unwrap_or_default().to_vec())
                            .expect("utf-8");
                        s.read
                            .lock()
                            .unwrap()
                            .push((m.partition(), m.offset(), payload));
                    }
                    // Transient: e.g. the broker restarting. The client reconnects.
                    Some(Err(e)) => eprintln!("member: {e}"),
                    None => {}
                }
                let now = assignment_of(&consumer);
                let mut history = s.history.lock().unwrap();
                if history.last() != Some(&now) {
                    history.push(now.clone());
                }
                drop(history);
                *s.assignment.lock().unwrap() = now;
                if s.commit.swap(false, Ordering::AcqRel) {
                    consumer
                        .commit_consumer_state(CommitMode::Sync)
                        .expect("commit");
                    s.committed.store(true, Ordering::Release);
                }
            }
            // Dropping the consumer closes it: it leaves the group.
            drop(consumer);
        });
        Member {
            state,
            thread: Some(thread),
        }
    }

    fn assignment(&self) -> BTreeSet<i32> {
        self.state.assignment.lock().unwrap().clone()
    }

    fn history(&self) -> Vec<BTreeSet<i32>> {
        self.state.history.lock().unwrap().clone()
    }

    fn read(&self) -> Vec<Read> {
        self.state.read.lock().unwrap().clone()
    }

    fn commit(&self) {
        self.state.commit.store(true, Ordering::Release);
        wait_until("the member committed", || {
            self.state.committed.load(Ordering::Acquire)
        });
    }

    fn stop(mut self) {
        self.state.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.join().expect("member thread");
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Release);
    }
}

/// Waits (polling) until `done` holds; panics after the hang guard.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + HANG_GUARD;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether the assignments are disjoint and together cover every partition, each non-empty.
fn partitioned(assignments: &[BTreeSet<i32>]) -> bool {
    let total: usize = assignments.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<i32> = assignments.iter().flatten().copied().collect();
    assignments.iter().all(|a| !a.is_empty())
        && total == PARTITIONS as usize
        && union == (0..PARTITIONS).collect()
}

/// Produces `per_partition` messages to every partition, payload `p<partition>-<n>`, with
/// `n` counted from `from`.
async fn produce(bootstrap: &str, topic: &str, from: usize, per_partition: usize) {
    let producer = producer(bootstrap);
    for p in 0..PARTITIONS {
        let payloads: Vec<String> = (from..from + per_partition)
            .map(|n| format!("p{p}-{n}"))
            .collect();
        send_all(&producer, topic, p, &payloads).await;
    }
}

fn committed(bootstrap: &str, group: &str, topic: &str) -> BTreeMap<i32, Offset> {
    let consumer = group_consumer(bootstrap, group, "offsets-reader");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(topic, p);
    }
    consumer
        .committed_offsets(tpl, HANG_GUARD)
        .expect("committed offsets")
        .elements()
        .iter()
        .map(|e| (e.partition(), e.offset()))
        .collect()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("test thread")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_share_six_partitions_and_a_new_member_resumes_from_commits() {
    let broker = start().await;
    let bs = broker.bootstrap_servers();
    let topic = topic_name("shared");
    let group = topic_name("sharers");
    create_topic(&bs, &topic, PARTITIONS).await;

    // The group settles before anything is produced, so every message is read once, by
    // the member that owns its partition.
    let members: Vec<Member> = (0..3)
        .map(|i| Member::start(&bs, &group, &topic, &format!("member-{i}")))
        .collect();
    let members = blocking(move || {
        wait_until(
            "three members own disjoint parts of all 6 partitions",
            || partitioned(&members.iter().map(Member::assignment).collect::<Vec<_>>()),
        );
        members
    })
    .await;
    let owners: Vec<BTreeSet<i32>> = members.iter().map(Member::assignment).collect();

    produce(&bs, &topic, 0, 100).await;
    let members = blocking(move || {
        wait_until("600 messages are read", || {
            members.iter().map(|m| m.read().len()).sum::<usize>() >= 600
        });
        members
    })
    .await;

    let mut all: Vec<Read> = Vec::new();
    for (member, owned) in members.iter().zip(&owners) {
        assert_eq!(&member.assignment(), owned, "the assignment stayed stable");
        let read = member.read();
        for (p, _, _) in &read {
            assert!(
                owned.contains(p),
                "a member read partition {p}, owned by another"
            );
        }
        all.extend(read);
    }
    all.sort();
    let expected: Vec<Read> = (0..PARTITIONS)
        .flat_map(|p| (0..100).map(move |n| (p, n as i64, format!("p{p}-{n}"))))
        .collect();
    assert_eq!(all, expected, "every message read exactly once");

    let members = blocking(move || {
        for m in &members {
            m.commit();
        }
        members
    })
    .await;
    let (bs2, group2, topic2) = (bs.clone(), group.clone(), topic.clone());
    let offsets = blocking(move || committed(&bs2, &group2, &topic2)).await;
    assert_eq!(
        offsets,
        (0..PARTITIONS).map(|p| (p, Offset::Offset(100))).collect(),
        "each partition's commit is its end"
    );
    blocking(move || members.into_iter().for_each(Member::stop)).await;

    // A member joining later starts where the group committed, not at the beginning.
    produce(&bs, &topic, 100, 10).await;
    let late = Member::start(&bs, &group, &topic, "late");
    let late = blocking(move || {
        wait_until("the late member reads the 60 new messages", || {
            late.read().len() >= 60
        });
        late
    })
    .await;
    let mut read = late.read();
    read.sort();
    let expected: Vec<Read> = (0..PARTITIONS)
        .flat_map(|p| (100..110).map(move |n| (p, n as i64, format!("p{p}-{n}"))))
        .collect();
    assert_eq!(read, expected, "only the messages after the commits");
    assert_eq!(late.assignment(), (0..PARTITIONS).collect());
    blocking(move || late.stop()).await;
    broker.shutdown().await;
}

/// A member in a child process: this test binary run again with only `child_member_process`.
struct ChildMember {
    child: Child,
    assignments: mpsc::Receiver<BTreeSet<i32>>,
    last: BTreeSet<i32>,
}

impl ChildMember {
    fn spawn(bootstrap: &str, group: &str, topic: &str) -> ChildMember {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "child_member_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, format!("{bootstrap} {group} {topic}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("child member starts");
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(parts) = line.strip_prefix("ASSIGNMENT:") {
                    let set = parts
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(|p| p.parse().expect("partition"))
                        .collect();
                    if tx.send(set).is_err() {
                        return;
                    }
                }
            }
        });
        ChildMember {
            child,
            assignments: rx,
            last: BTreeSet::new(),
        }
    }

    fn assignment(&mut self) -> BTreeSet<i32> {
        while let Ok(a) = self.assignments.try_recv() {
            self.last = a;
        }
        self.last.clone()
    }
}

impl Drop for ChildMember {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Only does something when started by `ChildMember::spawn`: joins the group and prints
/// its assignment whenever it changes, until killed.
#[test]
fn child_member_process() {
    let Ok(args) = std::env::var(CHILD_ENV) else {
        return;
    };
    let args: Vec<&str> = args.split(' ').collect();
    let [bootstrap, group, topic] = args[..] else {
        panic!("{CHILD_ENV} is 'bootstrap group topic'");
    };
    let consumer = group_consumer(bootstrap, group, "child-member");
    consumer.subscribe(&[topic]).expect("subscribe");
    let started = Instant::now();
    let mut last = None;
    // Bounded, in case the parent died without killing it.
    while started.elapsed() < Duration::from_secs(300) {
        let _ = consumer.poll(Duration::from_millis(100));
        let now = assignment_of(&consumer);
        if last.as_ref() != Some(&now) {
            let list: Vec<String> = now.iter().map(i32::to_string).collect();
            println!("ASSIGNMENT:{}", list.join(","));
            last = Some(now);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_member_s_partitions_move_to_the_survivors_after_its_session_timeout() {
    let broker = start().await;
    let bs = broker.bootstrap_servers();
    let topic = topic_name("orphaned");
    let group = topic_name("survivors");
    create_topic(&bs, &topic, PARTITIONS).await;

    let (bs2, group2, topic2) = (bs.clone(), group.clone(), topic.clone());
    let (survivors, mut child) = blocking(move || {
        let survivors: Vec<Member> = (0..2)
            .map(|i| Member::start(&bs2, &group2, &topic2, &format!("survivor-{i}")))
            .collect();
        let mut child = ChildMember::spawn(&bs2, &group2, &topic2);
        wait_until("two members and the child own all 6 partitions", || {
            let mut all: Vec<BTreeSet<i32>> = survivors.iter().map(Member::assignment).collect();
            all.push(child.assignment());
            partitioned(&all)
        });
        (survivors, child)
    })
    .await;
    let orphaned = child.assignment();

    // SIGKILL: no LeaveGroup, no more heartbeats. Nothing else is sent to the group.
    child.child.kill().expect("kill the child member");
    child.child.wait().expect("child reaped");
    let survivors = blocking(move || {
        wait_until("the survivors own all 6 partitions", || {
            partitioned(&survivors.iter().map(Member::assignment).collect::<Vec<_>>())
        });
        survivors
    })
    .await;
    let after: BTreeSet<i32> = survivors.iter().flat_map(Member::assignment).collect();
    assert!(orphaned.is_subset(&after));

    // The survivors read what is produced to the partitions the child had.
    produce(&bs, &topic, 0, 5).await;
    let survivors = blocking(move || {
        wait_until("the survivors read all 30 messages", || {
            survivors.iter().map(|m| m.read().len()).sum::<usize>() >= 30
        });
        survivors
    })
    .await;
    let partitions: BTreeSet<i32> = survivors
        .iter()
        .flat_map(Member::read)
        .map(|(p, _, _)| p)
        .collect();
    assert_eq!(partitions, (0..PARTITIONS).collect());
    blocking(move || survivors.into_iter().for_each(Member::stop)).await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_offsets_and_groups_survive_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(BrokerConfig::with_data_dir(dir.path()))
        .await
        .expect("broker starts");
    let bs = broker.bootstrap_servers();
    let topic = topic_name("kept");
    let group = topic_name("kept-group");
    create_topic(&bs, &topic, PARTITIONS).await;
    produce(&bs, &topic, 0, 20).await;

    // Commit a different offset on each partition.
    let (bs2, group2, topic2) = (bs.clone(), group.clone(), topic.clone());
    blocking(move || {
        let member = Member::start(&bs2, &group2, &topic2, "before-restart");
        wait_until("the member read everything", || member.read().len() >= 120);
        member.stop();
        let consumer = group_consumer(&bs2, &group2, "committer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition_offset(&topic2, p, Offset::Offset(i64::from(p) * 3))
                .expect("partition");
        }
        consumer.commit(&tpl, CommitMode::Sync).expect("commit");
    })
    .await;
    let expected: BTreeMap<i32, Offset> = (0..PARTITIONS)
        .map(|p| (p, Offset::Offset(i64::from(p) * 3)))
        .collect();
    let (bs2, group2, topic2) = (bs.clone(), group.clone(), topic.clone());
    assert_eq!(
        blocking(move || committed(&bs2, &group2, &topic2)).await,
        expected
    );
    broker.shutdown().await;

    let broker = Broker::start(BrokerConfig::with_data_dir(dir.path()))
        .await
        .expect("broker restarts");
    let bs = broker.bootstrap_servers();
    let (bs2, group2, topic2) = (bs.clone(), group.clone(), topic.clone());
    assert_eq!(
        blocking(move || committed(&bs2, &group2, &topic2)).await,
        expected,
        "committed offsets after the restart"
    );
    let (bs2, group2) = (bs.clone(), group.clone());
    let groups = blocking(move || {
        let consumer = group_consumer(&bs2, &group2, "lister");
        let list = consumer.fetch_group_list(None, HANG_GUARD).expect("groups");
        list.groups()
            .iter()
            .map(|g| (g.name().to_string(), g.state().to_string()))
            .collect::<Vec<_>>()
    })
    .await;
    assert!(
        groups.contains(&(group.clone(), "Empty".to_string())),
        "the group is listed after the restart: {groups:?}"
    );

    // A member resumes from the commits.
    let (bs2, group2, topic2) = (bs.clone(), group.clone(), topic.clone());
    let read = blocking(move || {
        let member = Member::start(&bs2, &group2, &topic2, "after-restart");
        let want: usize = (0..PARTITIONS).map(|p| 20 - p as usize * 3).sum();
        wait_until("the member read what was not committed", || {
            member.read().len() >= want
        });
        let read = member.read();
        member.stop();
        read
    })
    .await;
    let mut read = read;
    read.sort();
    let expected: Vec<Read> = (0..PARTITIONS)
        .flat_map(|p| (p as usize * 3..20).map(move |n| (p, n as i64, format!("p{p}-{n}"))))
        .collect();
    assert_eq!(read, expected);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_members_keep_their_partitions_across_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(BrokerConfig::with_data_dir(dir.path()))
        .await
        .expect("broker starts");
    let listen = broker.listen_addr();
    let bs = broker.bootstrap_servers();
    let topic = topic_name("restarted");
    let group = topic_name("restarted-group");
    create_topic(&bs, &topic, PARTITIONS).await;

    let (bs2, group2, topic2) = (bs.clone(), group.clone(), topic.clone());
    let members = blocking(move || {
        let members: Vec<Member> = (0..2)
            .map(|i| Member::start(&bs2, &group2, &topic2, &format!("restarted-{i}")))
            .collect();
        wait_until("two members own all 6 partitions", || {
            partitioned(&members.iter().map(Member::assignment).collect::<Vec<_>>())
        });
        members
    })
    .await;
    produce(&bs, &topic, 0, 10).await;
    let members = blocking(move || {
        wait_until("the members read 60 messages", || {
            members.iter().map(|m| m.read().len()).sum::<usize>() >= 60
        });
        for m in &members {
            m.commit();
        }
        members
    })
    .await;

    let owners: Vec<BTreeSet<i32>> = members.iter().map(Member::assignment).collect();

    // The same address and data: the members reconnect by themselves, and the group with its
    // members and assignments was stored, so they go on without a rebalance (which would
    // send them back to the commits and read messages twice).
    broker.shutdown().await;
    let broker = Broker::start(BrokerConfig {
        listen,
        ..BrokerConfig::with_data_dir(dir.path())
    })
    .await
    .expect("broker restarts on the same port");
    produce(&bs, &topic, 10, 10).await;
    let members = blocking(move || {
        wait_until("the members read the 60 new messages", || {
            members.iter().map(|m| m.read().len()).sum::<usize>() >= 120
        });
        wait_until("the two members own all 6 partitions again", || {
            partitioned(&members.iter().map(Member::assignment).collect::<Vec<_>>())
        });
        members
    })
    .await;
    let after: Vec<BTreeSet<i32>> = members.iter().map(Member::assignment).collect();
    assert_eq!(after, owners, "the members kept their partitions");
    let mut read: Vec<Read> = members.iter().flat_map(Member::read).collect();
    read.sort();
    let expected: Vec<Read> = (0..PARTITIONS)
        .flat_map(|p| (0..20).map(move |n| (p, n as i64, format!("p{p}-{n}"))))
        .collect();
    assert_eq!(
        read, expected,
        "every message once, before and after the restart"
    );
    blocking(move || members.into_iter().for_each(Member::stop)).await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_members_joining_one_by_one_split_the_partitions() {
    let broker = start().await;
    let bs = broker.bootstrap_servers();
    let topic = topic_name("cooperative");
    let group = topic_name("cooperative-group");
    create_topic(&bs, &topic, PARTITIONS).await;
    produce(&bs, &topic, 0, 50).await;

    let (bs2, group2, topic2) = (bs.clone(), group.clone(), topic.clone());
    let members = blocking(move || {
        let cooperative = [("partition.assignment.strategy", "cooperative-sticky")];
        let mut members: Vec<Member> = Vec::new();
        for i in 0..3 {
            members.push(Member::start_with(
                &bs2,
                &group2,
                &topic2,
                &format!("cooperative-{i}"),
                &cooperative,
            ));
            let n = members.len();
            wait_until(
                &format!("{n} members own disjoint parts of all 6 partitions"),
                || partitioned(&members.iter().map(Member::assignment).collect::<Vec<_>>()),
            );
        }
        wait_until("every message is read", || {
            let read: BTreeSet<(i32, i64)> = members
                .iter()
                .flat_map(Member::read)
                .map(|(p, o, _)| (p, o))
                .collect();
            read.len() >= 300
        });
        members
    })
    .await;
    let owned: Vec<BTreeSet<i32>> = members.iter().map(Member::assignment).collect();
    assert!(partitioned(&owned), "{owned:?}");
    assert!(
        owned.iter().all(|a| a.len() == 2),
        "an even split: {owned:?}"
    );
    let read: BTreeSet<Read> = members.iter().flat_map(Member::read).collect();
    let expected: BTreeSet<Read> = (0..PARTITIONS)
        .flat_map(|p| (0..50).map(move |n| (p, n as i64, format!("p{p}-{n}"))))
        .collect();
    assert_eq!(read, expected);
    blocking(move || members.into_iter().for_each(Member::stop)).await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_that_comes_back_gets_its_partitions_without_a_rebalance() {
    let broker = start().await;
    let bs = broker.bootstrap_servers();
    let topic = topic_name("static");
    let group = topic_name("static-group");
    create_topic(&bs, &topic, PARTITIONS).await;

    let (bs2, group2, topic2) = (bs.clone(), group.clone(), topic.clone());
    let (a_before, a_after, b) = blocking(move || {
        let start = |instance: &str| {
            Member::start_with(
                &bs2,
                &group2,
                &topic2,
                instance,
                &[("group.instance.id", instance)],
            )
        };
        let a = start("static-a");
        let b = start("static-b");
        wait_until("two static members own all 6 partitions", || {
            partitioned(&[a.assignment(), b.assignment()])
        });
        let a_before = a.assignment();
        let b_history = b.history();
        // A static member closing does not leave the group; its return within the session
        // timeout takes over its partitions.
        a.stop();
        let a = start("static-a");
        wait_until("the returning member owns its partitions", || {
            a.assignment() == a_before
        });
        let a_after = a.history();
        a.stop();
        (a_before, a_after, (b_history, b))
    })
    .await;
    let (b_history, b) = b;
    let a_owned: Vec<&BTreeSet<i32>> = a_after.iter().filter(|a| !a.is_empty()).collect();
    assert_eq!(
        a_owned,
        vec![&a_before],
        "the returning member got its partitions at once"
    );
    assert_eq!(
        b.history(),
        b_history,
        "the other member's assignment never changed"
    );
    blocking(move || b.stop()).await;
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_added_to_a_topic_are_assigned_to_the_running_members() {
    let broker = start().await;
    let bs = broker.bootstrap_servers();
    let topic = topic_name("growing");
    let group = topic_name("growing-group");
    create_topic(&bs, &topic, 2).await;

    let (bs2, group2, topic2) = (bs.clone(), group.clone(), topic.clone());
    let members = blocking(move || {
        // The leader sees the new partitions at its next metadata refresh and rebalances.
        let refresh = [("topic.metadata.refresh.interval.ms", "500")];
        let members: Vec<Member> = (0..2)
            .map(|i| Member::start_with(&bs2, &group2, &topic2, &format!("grow-{i}"), &refresh))
            .collect();
        wait_until("two members own one partition each", || {
            let owned: Vec<BTreeSet<i32>> = members.iter().map(Member::assignment).collect();
            owned.iter().all(|a| a.len() == 1) && owned[0] != owned[1]
        });
        members
    })
    .await;
    let results = admin(&bs)
        .create_partitions(
            &[rdkafka::admin::NewPartitions::new(
                &topic,
                PARTITIONS as usize,
            )],
            &rdkafka::admin::AdminOptions::new(),
        )
        .await
        .expect("create partitions request");
    for r in results {
        r.expect("partitions added");
    }
    let members = blocking(move || {
        wait_until("the two members own all 6 partitions", || {
            partitioned(&members.iter().map(Member::assignment).collect::<Vec<_>>())
        });
        members
    })
    .await;
    produce(&bs, &topic, 0, 5).await;
    let members = blocking(move || {
        wait_until("30 messages are read", || {
            members.iter().map(|m| m.read().len()).sum::<usize>() >= 30
        });
        members
    })
    .await;
    let mut read: Vec<Read> = members.iter().flat_map(Member::read).collect();
    read.sort();
    let expected: Vec<Read> = (0..PARTITIONS)
        .flat_map(|p| (0..5).map(move |n| (p, n as i64, format!("p{p}-{n}"))))
        .collect();
    assert_eq!(read, expected);
    blocking(move || members.into_iter().for_each(Member::stop)).await;
    broker.shutdown().await;
}
