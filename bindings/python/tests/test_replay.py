"""Replay: resetting a group's offsets to a timestamp (inclusive) or to the earliest message
makes its next receive start there."""

from __future__ import annotations

import time
from typing import Callable

import ferrymq

from conftest import drain


def test_reset_to_timestamp_replays_what_was_stored_since(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic, group = name("t"), name("g")
    client.admin().create_topic(topic, queues=4)
    producer = client.producer()
    old = {producer.send(topic, f"old{i}").msg_id for i in range(10)}
    time.sleep(0.05)
    cut = int(time.time() * 1000)
    time.sleep(0.05)
    new = {producer.send(topic, f"new{i}").msg_id for i in range(10)}
    consumer = client.simple_consumer(group, topic)
    assert {m.msg_id for m in drain(consumer, 20)} == old | new

    offsets = client.admin().reset_offsets(group, topic, timestamp=cut)
    assert sorted(q for q, _ in offsets) == [0, 1, 2, 3]
    replayed = drain(consumer, 10)
    assert {m.msg_id for m in replayed} == new
    assert all(m.store_ts >= cut for m in replayed)
    assert consumer.receive(wait_ms=300) == []


def test_reset_to_earliest_and_latest(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic, group = name("t"), name("g")
    producer = client.producer()
    sent = {producer.send(topic, f"m{i}").msg_id for i in range(6)}
    consumer = client.simple_consumer(group, topic)
    drain(consumer, 6)
    client.admin().reset_offsets(group, topic, to="earliest")
    assert {m.msg_id for m in drain(consumer, 6)} == sent
    client.admin().reset_offsets(group, topic, to="earliest")
    client.admin().reset_offsets(group, topic, to="latest")
    assert consumer.receive(wait_ms=300) == []
    lag = sum(o.lag for o in client.admin().group(group).offsets if o.topic == topic)
    assert lag == 0
