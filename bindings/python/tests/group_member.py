"""One member of a consumer group in its own process, for test_rebalance.py: consumes with a
listener that appends each body to `out_path` (one line each, flushed), and keeps its current
queue assignment in `assignment_path` (JSON, replaced atomically) until it is killed."""

from __future__ import annotations

import json
import os
import threading
import time

import ferrymq


def run(url: str, group: str, topic: str, out_path: str, assignment_path: str, lease_ttl_ms: int) -> None:
    client = ferrymq.Client.connect(url, lease_ttl_ms=lease_ttl_ms)
    lock = threading.Lock()
    out = open(out_path, "a", buffering=1)

    def listener(message: ferrymq.Message) -> None:
        with lock:
            out.write(message.body.decode() + "\n")
            out.flush()

    consumer = client.push_consumer(group, topic, listener=listener, rebalance_interval_ms=2000)
    consumer.start()
    while True:
        staged = assignment_path + ".tmp"
        with open(staged, "w") as f:
            json.dump([q for t, q in consumer.assignment() if t == topic], f)
        os.replace(staged, assignment_path)
        time.sleep(0.1)
