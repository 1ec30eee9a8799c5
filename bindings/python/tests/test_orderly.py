"""Ordered consumption: messages with one sharding key land in one queue, and an orderly push
consumer hands them over one at a time in queue order, even when one fails and is retried in
place."""

from __future__ import annotations

import threading
import time
from typing import Callable, Dict, List, Tuple

import ferrymq

from conftest import wait_for

KEYS = ["alice", "bob", "carol", "dave", "erin"]
PER_KEY = 20


def publish(client: ferrymq.Client, topic: str) -> None:
    producer = client.producer()
    for seq in range(PER_KEY):
        for key in KEYS:
            producer.send(topic, f"{key}:{seq}", sharding_key=key)


def test_one_key_one_queue(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic = name("t")
    producer = client.producer()
    queues = {producer.send(topic, b"x", sharding_key="same").queue_id for _ in range(10)}
    assert len(queues) == 1


def test_orderly_listener_sees_each_key_in_order(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic, group = name("t"), name("g")
    publish(client, topic)
    seen: Dict[str, List[int]] = {}
    in_flight: Dict[Tuple[str, int], int] = {}
    overlaps: List[Tuple[str, int]] = []
    lock = threading.Lock()
    failed_once = threading.Event()

    def listener(message: ferrymq.Message) -> None:
        key, seq = message.body.decode().split(":")
        assert message.queue_id is not None
        queue = (message.topic, message.queue_id)
        with lock:
            in_flight[queue] = in_flight.get(queue, 0) + 1
            if in_flight[queue] != 1:
                overlaps.append(queue)
        try:
            time.sleep(0.001)
            if key == "carol" and seq == "5" and not failed_once.is_set():
                failed_once.set()
                raise RuntimeError("fail once: retried in place, nothing skipped")
            with lock:
                seen.setdefault(key, []).append(int(seq))
        finally:
            with lock:
                in_flight[queue] -= 1

    consumer = client.push_consumer(group, topic, orderly=True, listener=listener)
    consumer.start()
    wait_for(lambda: sum(len(v) for v in seen.values()) >= PER_KEY * len(KEYS), timeout=30)
    consumer.close()
    assert failed_once.is_set()
    assert overlaps == [], "one message at a time per queue"
    for key in KEYS:
        assert seen[key] == list(range(PER_KEY)), key


def test_orderly_iterator_in_order(embedded: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic, group = name("t"), name("g")
    publish(embedded, topic)
    seen: Dict[str, List[int]] = {}
    with embedded.push_consumer(group, topic, orderly=True) as consumer:
        for message in consumer:
            key, seq = message.body.decode().split(":")
            seen.setdefault(key, []).append(int(seq))
            message.ack()
            if sum(len(v) for v in seen.values()) == PER_KEY * len(KEYS):
                break
    for key in KEYS:
        assert seen[key] == list(range(PER_KEY)), key
