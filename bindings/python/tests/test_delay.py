"""Delayed delivery: delay levels (the suite's levels are 100 ms, 200 ms, then 300 ms),
delay_ms and deliver_at. A delayed message is invisible, looked up as scheduled, and keeps
its msg_id when it arrives."""

from __future__ import annotations

import time
from typing import Callable

import ferrymq

from conftest import wait_for


def test_delay_level_holds_the_message_back(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic, group = name("t"), name("g")
    client.admin().create_topic(topic, queues=2)
    consumer = client.simple_consumer(group, topic)
    started = time.monotonic()
    sent = client.producer().send(topic, b"later", delay_level=2)
    assert sent.queue_id is None and sent.queue_offset is None
    assert client.admin().message(sent.msg_id).state == "scheduled"
    [message] = wait_for(lambda: consumer.receive(wait_ms=100))
    assert time.monotonic() - started >= 0.2
    assert message.msg_id == sent.msg_id and message.body == b"later"
    assert client.admin().message(sent.msg_id).state == "stored"
    consumer.ack(message)


def test_delay_ms_and_deliver_at(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic, group = name("t"), name("g")
    client.admin().create_topic(topic, queues=2)
    consumer = client.simple_consumer(group, topic)
    producer = client.producer()
    started = time.monotonic()
    a = producer.send(topic, b"a", delay_ms=300)
    b = producer.send(topic, b"b", deliver_at=int(time.time() * 1000) + 300)
    assert consumer.receive(wait_ms=0) == []
    got: dict[str, float] = {}
    while len(got) < 2:
        for m in wait_for(lambda: consumer.receive(wait_ms=100)):
            got[m.msg_id] = time.monotonic() - started
            consumer.ack(m)
    assert set(got) == {a.msg_id, b.msg_id}
    assert min(got.values()) >= 0.3
    # A deliver_at in the past is delivered at once.
    past = producer.send(topic, b"now", deliver_at=1)
    [m] = wait_for(lambda: consumer.receive(wait_ms=100))
    assert m.msg_id == past.msg_id
