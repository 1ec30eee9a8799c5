"""Failures: a listener that raises nacks (the message comes back with reconsume_times + 1),
and after the group's max_reconsume_times it goes to the dead-letter queue, where it can be
listed and re-sent."""

from __future__ import annotations

import threading
import time
from typing import Callable, Dict, List

import pytest

import ferrymq

from conftest import wait_for


def test_simple_consumer_nacks_into_the_dlq_and_resends(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic, group = name("t"), name("g")
    admin = client.admin()
    admin.put_group(group, max_reconsume_times=1)
    sent = client.producer().send(topic, b"poison", keys=["p-1"])
    consumer = client.simple_consumer(group, topic)
    counts = []
    for _ in range(2):
        [message] = wait_for(lambda: consumer.receive(wait_ms=200))
        counts.append(message.reconsume_times)
        consumer.nack(message)
    assert counts == [0, 1]
    [dead] = wait_for(lambda: admin.dlq(group))
    assert dead.msg_id == sent.msg_id and dead.topic == topic and dead.body == b"poison"
    assert consumer.receive(wait_ms=500) == []

    resent = admin.resend_dlq(group, sent.msg_id)
    assert resent.msg_id == sent.msg_id
    [back] = wait_for(lambda: consumer.receive(wait_ms=200))
    assert back.msg_id == sent.msg_id and back.reconsume_times == 0
    consumer.ack(back)
    assert admin.dlq(group) == []
    with pytest.raises(ferrymq.NotFound):
        admin.resend_dlq(group, sent.msg_id)


def test_push_listener_exception_retries_then_dead_letters(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    """Failures go back through the group's retry topic, then to the DLQ, embedded and over a
    server alike."""
    topic, group = name("t"), name("g")
    admin = client.admin()
    admin.put_group(group, max_reconsume_times=2)
    producer = client.producer()
    good = producer.send(topic, b"good")
    bad = producer.send(topic, b"bad")
    attempts: Dict[str, List[int]] = {}
    lock = threading.Lock()

    def listener(message: ferrymq.Message) -> None:
        with lock:
            attempts.setdefault(message.msg_id, []).append(message.reconsume_times)
        if message.body == b"bad":
            raise RuntimeError("cannot handle this one")

    consumer = client.push_consumer(group, topic, listener=listener)
    consumer.start()
    [dead] = wait_for(lambda: admin.dlq(group))
    consumer.close()
    assert dead.msg_id == bad.msg_id
    assert attempts[bad.msg_id] == [0, 1, 2]
    assert attempts[good.msg_id] == [0]


def test_push_listener_failure_is_redelivered(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic, group = name("t"), name("g")
    sent = client.producer().send(topic, b"flaky")
    calls: List[int] = []
    done = threading.Event()

    def listener(message: ferrymq.Message) -> None:
        calls.append(message.reconsume_times)
        if len(calls) < 3:
            raise ValueError("not yet")
        assert message.msg_id == sent.msg_id
        done.set()

    consumer = client.push_consumer(group, topic, listener=listener)
    consumer.start()
    assert done.wait(15)
    time.sleep(0.5)
    consumer.close()
    assert len(calls) == 3
    assert calls == sorted(calls), "each redelivery counts up"


def test_iterator_nack_redelivers(embedded: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic, group = name("t"), name("g")
    sent = embedded.producer().send(topic, b"again")
    with embedded.push_consumer(group, topic) as consumer:
        first = next(consumer)
        first.nack()
        with pytest.raises(ferrymq.Conflict):
            first.ack()
        second = next(consumer)
        second.ack()
    assert first.msg_id == second.msg_id == sent.msg_id
    assert second.reconsume_times == 1
