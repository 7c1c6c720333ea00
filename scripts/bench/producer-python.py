#!/usr/bin/env python3
"""Publishes N sensor envelopes with kafka-python, the client of the original Python system.

The envelope is streamhub's ({"topic","data_type","timestamp","producer_id","seq","payload"}),
each event generated and serialised per message as a Python producer does, keyed by sensor id.
Producer settings match streamhub's: idempotent, acks=all, lz4, linger 5 ms, 1 MiB batches.

    producer-python.py -b HOST:PORT --topic T --count N [--partitions 3] [--json]

Prints one summary line (JSON with --json): messages/s from producer creation until every
message is acknowledged, and the process's own CPU time (getrusage, start-up included).
Exits non-zero when a delivery failed.
"""

import argparse
import json
import os
import random
import resource
import socket
import sys
import time
from datetime import datetime, timezone

import kafka
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

SITES = [
    ("warehouse-berlin", 52.52, 13.405, 17.0, 45.0),
    ("cold-storage-rotterdam", 51.9244, 4.4777, 3.5, 85.0),
    ("greenhouse-almeria", 36.834, -2.4637, 27.0, 75.0),
    ("office-london", 51.5072, -0.1276, 21.5, 40.0),
    ("datacenter-dublin", 53.3498, -6.2603, 24.0, 35.0),
]
FLEET_SIZE = 24


class Fleet:
    """Sensors whose readings drift around their site's climate, as streamhub's generator."""

    def __init__(self, rng):
        self.rng = rng
        self.sensors = []
        for i in range(FLEET_SIZE):
            site = SITES[i % len(SITES)]
            self.sensors.append(
                {
                    "id": f"sensor-{i:03d}",
                    "site": site,
                    "temperature": site[3],
                    "humidity": site[4],
                    "battery": rng.uniform(40.0, 100.0),
                }
            )

    def reading(self):
        s = self.rng.choice(self.sensors)
        site = s["site"]
        s["temperature"] += 0.1 * (site[3] - s["temperature"]) + self.rng.gauss(0, 0.3)
        s["humidity"] += 0.1 * (site[4] - s["humidity"]) + self.rng.gauss(0, 0.8)
        s["humidity"] = min(100.0, max(0.0, s["humidity"]))
        s["battery"] -= self.rng.uniform(0.0, 0.02)
        if s["battery"] < 3.0:
            s["battery"] = 100.0
        return s["id"], {
            "sensor_id": s["id"],
            "temperature": round(s["temperature"], 1),
            "humidity": round(s["humidity"], 1),
            "battery": round(s["battery"], 1),
            "location": {"site": site[0], "latitude": site[1], "longitude": site[2]},
            "status": "low_battery" if s["battery"] < 15.0 else "ok",
        }


def ensure_topic(bootstrap, topic, partitions):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="producer-python-bench")
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-b", "--bootstrap-servers", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--partitions", type=int, default=3)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    ensure_topic(args.bootstrap_servers, args.topic, args.partitions)
    producer_id = f"{socket.gethostname()}-{os.getpid()}-python"
    fleet = Fleet(random.Random(args.seed))
    failed = 0

    def on_error(_exc):
        nonlocal failed
        failed += 1

    started = time.monotonic()
    producer = KafkaProducer(
        bootstrap_servers=args.bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        compression_type="lz4",
        linger_ms=5,
        batch_size=1 << 20,
    )
    for seq in range(args.count):
        key, payload = fleet.reading()
        envelope = {
            "topic": args.topic,
            "data_type": "sensor",
            "timestamp": datetime.now(timezone.utc).isoformat(),
            "producer_id": producer_id,
            "seq": seq,
            "payload": payload,
        }
        value = json.dumps(envelope).encode()
        producer.send(args.topic, key=key.encode(), value=value).add_errback(on_error)
    producer.flush()
    seconds = time.monotonic() - started
    producer.close()

    usage = resource.getrusage(resource.RUSAGE_SELF)
    summary = {
        "client": f"kafka-python {kafka.__version__}",
        "topic": args.topic,
        "count": args.count,
        "acknowledged": args.count - failed,
        "failed": failed,
        "seconds": round(seconds, 3),
        "messages_per_second": round(args.count / seconds, 1),
        "cpu_user_s": usage.ru_utime,
        "cpu_system_s": usage.ru_stime,
        "cpu_us_per_message": round((usage.ru_utime + usage.ru_stime) * 1e6 / args.count, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"published {summary['acknowledged']} of {args.count} sensor events to {args.topic} "
            f"in {seconds:.2f} s ({summary['messages_per_second']:.0f} msg/s), {failed} failed, "
            f"{summary['cpu_us_per_message']} µs CPU/msg"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
