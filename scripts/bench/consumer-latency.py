#!/usr/bin/env python3
"""End-to-end latency of `streamhub consumer read --format json` output.

Reads JSON lines on stdin, stamps each with the wall clock as soon as it arrives, and
computes arrival - envelope.timestamp (the time the producer built the event). Only
envelopes of --producer-id count. Prints one JSON summary line (milliseconds).

    streamhub consumer read --direct --format json ... | consumer-latency.py --producer-id P
"""
import argparse
import json
import sys
import time
from datetime import datetime


def envelope_time_ns(text):
    # RFC 3339 with up to nanosecond digits; datetime keeps microseconds, so the
    # nanosecond tail is added back by hand.
    date, _, frac = text.rstrip("Z").partition(".")
    frac = (frac + "000000000")[:9]
    whole = datetime.fromisoformat(date + "+00:00")
    return int(whole.timestamp()) * 1_000_000_000 + int(frac)


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--producer-id", required=True)
    args = parser.parse_args()

    stamped = []
    stdin = sys.stdin.buffer
    while True:
        line = stdin.readline()
        if not line:
            break
        stamped.append((time.time_ns(), line))

    latencies_ms = []
    ignored = 0
    for arrived_ns, line in stamped:
        envelope = json.loads(line).get("envelope")
        if not envelope or envelope.get("producer_id") != args.producer_id:
            ignored += 1
            continue
        latencies_ms.append((arrived_ns - envelope_time_ns(envelope["timestamp"])) / 1e6)
    latencies_ms.sort()
    print(json.dumps({
        "messages": len(latencies_ms),
        "ignored": ignored,
        "median_ms": percentile(latencies_ms, 0.5),
        "p99_ms": percentile(latencies_ms, 0.99),
        "p999_ms": percentile(latencies_ms, 0.999),
        "min_ms": latencies_ms[0] if latencies_ms else None,
        "max_ms": latencies_ms[-1] if latencies_ms else None,
    }))


if __name__ == "__main__":
    main()
