"""kafka-python against the broker: admin, producer, and two consumers sharing a topic in a
group, whose commits a later consumer of the group resumes from. Run by tests/python_client.rs
with the bootstrap servers as the only argument; prints ALL OK at the end."""

import sys
import threading
import time
import uuid

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

PARTITIONS = 4
PER_PARTITION = 50
DEADLINE_S = 60


def check(ok, what):
    if not ok:
        raise SystemExit("FAILED: " + what)
    print("ok: " + what, flush=True)


def produce(bs, topic, start, count):
    producer = KafkaProducer(bootstrap_servers=bs, acks="all")
    for p in range(PARTITIONS):
        for i in range(start, start + count):
            producer.send(topic, value=f"p{p}-{i}".encode(), partition=p)
    producer.flush()
    producer.close()


def consumer(bs, group, name):
    return KafkaConsumer(
        bootstrap_servers=bs,
        group_id=group,
        client_id=name,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        consumer_timeout_ms=200,
    )


def main():
    bs = sys.argv[1]
    topic = "python-" + uuid.uuid4().hex[:8]
    group = topic + "-g"
    admin = KafkaAdminClient(bootstrap_servers=bs)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    check(topic in admin.list_topics(), "created " + topic)
    produce(bs, topic, 0, PER_PARTITION)
    total = PARTITIONS * PER_PARTITION

    seen = {}
    owned = [set(), set()]
    done = threading.Event()
    errors = []
    lock = threading.Lock()

    def member(n):
        try:
            c = consumer(bs, group, f"python-member-{n}")
            c.subscribe([topic])
            end = time.time() + DEADLINE_S
            while not done.is_set() and time.time() < end:
                for records in c.poll(timeout_ms=200).values():
                    with lock:
                        for r in records:
                            seen[r.value.decode()] = seen.get(r.value.decode(), 0) + 1
                owned[n] = {tp.partition for tp in c.assignment()}
                try:
                    c.commit()
                except Exception:  # a rebalance under way: later commits land
                    pass
            c.close()
        except Exception as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=member, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    end = time.time() + DEADLINE_S
    while time.time() < end and not errors:
        a, b = owned
        split = a and b and not (a & b) and len(a | b) == PARTITIONS
        with lock:
            if len(seen) >= total and split:
                break
        time.sleep(0.05)
    print(f"group of two: read {len(seen)}, owned {owned}", flush=True)
    done.set()
    for t in threads:
        t.join()
    check(not errors, f"members ran without errors {errors}")
    check(len(seen) == total, f"read all {total} messages, read {len(seen)}")
    a, b = owned
    check(a and b and not (a & b) and len(a | b) == PARTITIONS, f"the members split the partitions {owned}")

    # Every partition committed at its end: a new member of the group reads only new messages.
    produce(bs, topic, PER_PARTITION, 5)
    c = consumer(bs, group, "python-late")
    c.subscribe([topic])
    late = []
    end = time.time() + DEADLINE_S
    while len(late) < PARTITIONS * 5 and time.time() < end:
        for records in c.poll(timeout_ms=200).values():
            late.extend(r.value.decode() for r in records)
    for p in range(PARTITIONS):
        tp = TopicPartition(topic, p)
        check(c.committed(tp) == PER_PARTITION, f"committed offset of partition {p}")
    c.close()
    expected = sorted(f"p{p}-{i}" for p in range(PARTITIONS) for i in range(PER_PARTITION, PER_PARTITION + 5))
    check(sorted(late) == expected, f"the late member read only the new messages: {sorted(late)}")

    if hasattr(admin, "list_groups"):  # kafka-python 3
        groups = [g["group_id"] for g in admin.list_groups()]
        offsets = admin.list_group_offsets(group)[group]
    else:  # kafka-python 2
        groups = [g[0] for g in admin.list_consumer_groups()]
        offsets = admin.list_consumer_group_offsets(group)
    check(group in groups, f"the group is listed {groups}")
    check(
        {tp.partition: m.offset for tp, m in offsets.items()} == {p: PER_PARTITION for p in range(PARTITIONS)},
        f"the group's committed offsets {offsets}",
    )
    admin.close()
    print("ALL OK", flush=True)


if __name__ == "__main__":
    main()
