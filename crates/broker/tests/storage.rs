//! A full disk: writes the file system refuses give producers KAFKA_STORAGE_ERROR and one log
//! line, never a crash; the broker keeps serving what it has, takes writes again once there
//! is room, and no acknowledged message is lost or torn on the way.
//!
//! The full disk is made with a file-size limit (`RLIMIT_FSIZE`) on a broker in a child
//! process: this test binary run again with `STREAMHUB_FSIZE_CHILD` set, which runs only
//! `child_broker_with_a_file_size_limit`. Past the limit `write` fails (EFBIG) part-way
//! through a batch, as it does with ENOSPC on a full file system, with no mount or privilege
//! needed. Writing `ROOM` to the child's stdin lifts the limit: the disk was freed.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use streamhub_broker::{Broker, BrokerConfig};

const CHILD_ENV: &str = "STREAMHUB_FSIZE_CHILD";
/// The child's file-size limit: room for a couple of hundred of the messages below.
const LIMIT_BYTES: u64 = 256 * 1024;
const MESSAGE_BYTES: usize = 1000;

struct ChildBroker {
    child: Child,
    stdin: ChildStdin,
    bootstrap: String,
}

impl ChildBroker {
    fn spawn(dir: &Path, log: &Path) -> ChildBroker {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "child_broker_with_a_file_size_limit",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, format!("{LIMIT_BYTES} {}", dir.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).expect("child log file"))
            .spawn()
            .expect("child broker starts");
        let stdin = child.stdin.take().expect("child stdin");
        let stdout = child.stdout.take().expect("child stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                // The harness's "test ... " may begin the same line.
                if let Some((_, bs)) = line.split_once("BOOTSTRAP:") {
                    let _ = tx.send(bs.trim().to_string());
                }
            }
        });
        let Ok(bootstrap) = rx.recv_timeout(HANG_GUARD) else {
            let _ = child.kill();
            let text = std::fs::read_to_string(log).unwrap_or_default();
            panic!("the child broker did not start:\n{text}");
        };
        ChildBroker {
            child,
            stdin,
            bootstrap,
        }
    }

    fn make_room(&mut self) {
        writeln!(self.stdin, "ROOM").expect("tell the child");
        self.stdin.flush().expect("tell the child");
    }
}

impl Drop for ChildBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Only does something when started by `ChildBroker::spawn`.
#[test]
fn child_broker_with_a_file_size_limit() {
    let Ok(args) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (limit, dir) = args.split_once(' ').expect("'limit dir'");
    let limit: libc::rlim_t = limit.parse().expect("limit");
    // SAFETY: setting a signal disposition and this process's own resource limit, before
    // any other thread of this process exists that could depend on them.
    unsafe {
        // Without this the kernel kills the process at the limit instead of failing the write.
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let rlim = libc::rlimit {
            rlim_cur: limit,
            rlim_max: libc::RLIM_INFINITY,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &rlim), 0, "setrlimit");
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    std::thread::spawn(|| {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            if line.trim() == "ROOM" {
                let rlim = libc::rlimit {
                    rlim_cur: libc::RLIM_INFINITY,
                    rlim_max: libc::RLIM_INFINITY,
                };
                // SAFETY: raising this process's own soft limit up to its hard limit.
                assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &rlim) }, 0);
                println!("ROOM");
            }
        }
    });
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let broker = Broker::start(BrokerConfig::with_data_dir(dir))
            .await
            .expect("broker starts");
        println!("BOOTSTRAP:{}", broker.bootstrap_servers());
        // Bounded, in case the parent died without killing it.
        tokio::time::sleep(Duration::from_secs(300)).await;
    });
}

/// No retries and no idempotence: each send's own answer from the broker is what it reports.
fn plain_producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "false")
        .set("retries", "0")
        .set("linger.ms", "0")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer")
}

fn payload(n: usize) -> String {
    let mut value = format!("message {n:06} ");
    value.extend(std::iter::repeat_n('.', MESSAGE_BYTES - value.len()));
    value
}

/// Sends `payload(n)` for each `n` in `from..`, one at a time, until `stop_after_errors`
/// consecutive sends failed or `to` is reached. Returns what was acknowledged, and every error.
async fn send_until_refused(
    producer: &FutureProducer,
    topic: &str,
    numbers: std::ops::Range<usize>,
    stop_after_errors: usize,
) -> (Vec<usize>, Vec<KafkaError>) {
    let (mut acknowledged, mut errors, mut in_a_row) = (Vec::new(), Vec::new(), 0);
    for n in numbers {
        let value = payload(n);
        let record = FutureRecord::<(), _>::to(topic).payload(&value);
        match producer.send(record, Duration::from_secs(30)).await {
            Ok(_) => {
                acknowledged.push(n);
                in_a_row = 0;
            }
            Err((e, _)) => {
                errors.push(e);
                in_a_row += 1;
                if in_a_row == stop_after_errors {
                    break;
                }
            }
        }
    }
    (acknowledged, errors)
}

fn assert_all_storage_errors(errors: &[KafkaError]) {
    for e in errors {
        assert_eq!(
            e.rdkafka_error_code(),
            Some(RDKafkaErrorCode::KafkaStorageError),
            "every refusal is KAFKA_STORAGE_ERROR: {e}"
        );
    }
}

/// Partition 0 of `topic`, which must hold exactly `expected.len()` messages, as numbers.
async fn read_numbers(bootstrap: &str, topic: &str, expected: &[usize]) -> Vec<usize> {
    let (bs, t) = (bootstrap.to_string(), topic.to_string());
    let (low, high) = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bs)
            .create()
            .expect("consumer");
        consumer
            .fetch_watermarks(&t, 0, HANG_GUARD)
            .expect("watermarks")
    })
    .await
    .expect("watermark thread");
    assert_eq!((low, high), (0, expected.len() as i64), "the log's extent");
    read(bootstrap, topic, 0, 0, expected.len())
        .await
        .into_iter()
        .enumerate()
        .map(|(i, (offset, value))| {
            assert_eq!(offset, i as i64, "offsets without a gap");
            assert_eq!(value.len(), MESSAGE_BYTES, "a whole message");
            value[8..14].parse().expect("number")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_with_kafka_storage_error_and_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let log = dir.path().join("broker.log");
    let mut child = ChildBroker::spawn(&data, &log);
    let topic = topic_name("full");
    create_topic(&child.bootstrap, &topic, 1).await;
    let producer = plain_producer(&child.bootstrap);

    // Past the limit: refused, with the protocol's error, and the broker stays up.
    let (mut acknowledged, errors) = send_until_refused(&producer, &topic, 0..2000, 20).await;
    assert!(
        !acknowledged.is_empty() && acknowledged.len() < 2000,
        "some sends fit before the disk filled: {}",
        acknowledged.len()
    );
    eprintln!(
        "{} acknowledged before the limit, then {} refused: {}",
        acknowledged.len(),
        errors.len(),
        errors[0]
    );
    assert_eq!(errors.len(), 20, "the sends past the limit were refused");
    assert_all_storage_errors(&errors);
    assert_eq!(
        read_numbers(&child.bootstrap, &topic, &acknowledged).await,
        acknowledged,
        "a full broker still serves exactly what it acknowledged"
    );

    // Room again: writes are taken where the log ended, with no torn batch in between.
    child.make_room();
    let next = acknowledged.last().unwrap() + 1 + errors.len();
    let (more, errors) = send_until_refused(&producer, &topic, next..next + 100, 1).await;
    assert!(errors.is_empty(), "writes after room was made: {errors:?}");
    acknowledged.extend(more);
    assert_eq!(
        read_numbers(&child.bootstrap, &topic, &acknowledged).await,
        acknowledged
    );

    // One line named the failure, not one per refused write.
    let text = std::fs::read_to_string(&log).expect("child log");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("cannot write to the data directory"))
        .collect();
    assert!(
        !lines.is_empty() && lines.len() < 20,
        "the full disk is logged, without one line per refusal: {lines:#?}"
    );
    eprintln!("{}", lines[0]);
    assert!(
        lines[0].contains("ERROR") && lines[0].contains(&topic),
        "{}",
        lines[0]
    );

    // Killed and started again on the same files: every acknowledged message is there.
    drop(producer);
    drop(child);
    let broker = Broker::start(BrokerConfig::with_data_dir(&data))
        .await
        .expect("restart on the same data");
    assert_eq!(
        read_numbers(&broker.bootstrap_servers(), &topic, &acknowledged).await,
        acknowledged
    );
    broker.shutdown().await;
}
