"""Transactions: a half message is invisible until the local transaction commits; rollback
discards it; "unknown" (or a local transaction that raises) leaves it to the checker at a
check-back (the suite's broker checks after 1 s, every 1 s)."""

from __future__ import annotations

import threading
from typing import Callable, List

import pytest

import ferrymq

from conftest import wait_for


def test_commit_makes_the_message_visible(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic, group = name("t"), name("g")
    client.admin().create_topic(topic, queues=2)
    consumer = client.simple_consumer(group, topic)
    seen: List[ferrymq.Message] = []

    def local(half: ferrymq.Message) -> ferrymq.Verdict:
        seen.append(half)
        assert consumer.receive(wait_ms=0) == [], "a half message is invisible"
        return "commit"

    with client.transaction_producer(name("pg"), lambda m: "unknown") as producer:
        sent = producer.send_in_transaction(topic, b"paid", local, tag="order", keys=["o-1"])
    assert sent.transaction_id and sent.queue_id is None
    assert seen[0].msg_id == sent.msg_id and seen[0].state == "half" and seen[0].body == b"paid"
    [message] = wait_for(lambda: consumer.receive(wait_ms=100))
    assert message.msg_id == sent.msg_id and message.tag == "order"
    consumer.ack(message)


def test_rollback_discards(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic, group = name("t"), name("g")
    client.admin().create_topic(topic, queues=2)
    producer = client.transaction_producer(name("pg"), lambda m: "commit")
    producer.send_in_transaction(topic, b"cancelled", lambda m: "rollback")
    visible = client.producer().send(topic, b"after")
    consumer = client.simple_consumer(group, topic)
    [message] = wait_for(lambda: consumer.receive(wait_ms=100))
    assert message.msg_id == visible.msg_id
    consumer.ack(message)
    # Even past the check-back time the rolled-back message never shows.
    assert consumer.receive(wait_ms=2500) == []
    producer.close()


def test_unknown_is_decided_by_the_checker(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic, group = name("t"), name("g")
    client.admin().create_topic(topic, queues=2)
    checked: List[str] = []
    asked = threading.Event()

    def checker(half: ferrymq.Message) -> ferrymq.Verdict:
        checked.append(half.msg_id)
        asked.set()
        return "commit"

    producer = client.transaction_producer(name("pg"), checker)
    sent = producer.send_in_transaction(topic, b"maybe", lambda m: "unknown")
    consumer = client.simple_consumer(group, topic)
    assert consumer.receive(wait_ms=300) == []
    assert asked.wait(15), "the broker checked back"
    [message] = wait_for(lambda: consumer.receive(wait_ms=200))
    assert message.msg_id == sent.msg_id and sent.msg_id in checked
    producer.close()


def test_raising_local_transaction_propagates_and_the_checker_decides(
    client: ferrymq.Client, name: Callable[[str], str]
) -> None:
    topic, group = name("t"), name("g")
    client.admin().create_topic(topic, queues=2)
    producer = client.transaction_producer(name("pg"), lambda m: "rollback")

    def local(half: ferrymq.Message) -> ferrymq.Verdict:
        raise KeyError("database down")

    with pytest.raises(KeyError):
        producer.send_in_transaction(topic, b"x", local)
    with pytest.raises(ferrymq.InvalidArgument):
        producer.send_in_transaction(topic, b"y", lambda m: "maybe")  # type: ignore[arg-type, return-value]
    # Both were left unknown; the checker rolls them back: nothing ever shows.
    assert client.simple_consumer(group, topic).receive(wait_ms=3000) == []
    producer.close()


def test_checker_exception_counts_as_unknown_then_commit(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic, group = name("t"), name("g")
    client.admin().create_topic(topic, queues=2)
    calls: List[int] = []

    def checker(half: ferrymq.Message) -> ferrymq.Verdict:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("not sure yet")
        return "commit"

    producer = client.transaction_producer(name("pg"), checker)
    sent = producer.send_in_transaction(topic, b"z", lambda m: "unknown")
    consumer = client.simple_consumer(group, topic)
    [message] = wait_for(lambda: consumer.receive(wait_ms=200), timeout=20)
    assert message.msg_id == sent.msg_id and len(calls) >= 2
    producer.close()


def test_end_transaction_explicitly(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic, group = name("t"), name("g")
    client.admin().create_topic(topic, queues=2)
    producer = client.transaction_producer(name("pg"), lambda m: "unknown")
    sent = producer.send_in_transaction(topic, b"later", lambda m: "unknown")
    assert sent.transaction_id is not None
    producer.end_transaction(sent.transaction_id, "commit")
    [message] = wait_for(lambda: client.simple_consumer(group, topic).receive(wait_ms=200))
    assert message.msg_id == sent.msg_id
    with pytest.raises(ferrymq.Conflict):
        producer.end_transaction(sent.transaction_id, "rollback")
    with pytest.raises(ferrymq.NotFound):
        producer.end_transaction("no-such-transaction", "commit")
    producer.close()
