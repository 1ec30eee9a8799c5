"""Publishing and consuming: send, batch, one-way; simple and push consumption (listener and
iterator); message fields and lookups. Each test runs embedded and against the server."""

from __future__ import annotations

import threading
import time
from typing import Callable, List, Set, Tuple

import ferrymq

from conftest import drain, wait_for


def test_send_then_simple_receive_gives_every_field(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic, group = name("t"), name("g")
    producer = client.producer()
    sent = producer.send(topic, b"hello", tag="new", keys=["order-1", "customer-7"], properties={"region": "eu", "n": 3})
    assert isinstance(sent, ferrymq.SendResult)
    assert sent.queue_id is not None and sent.queue_offset == 0 and sent.transaction_id is None

    consumer = client.simple_consumer(group, topic)
    [message] = drain(consumer, 1)
    assert message.msg_id == sent.msg_id
    assert message.topic == topic
    assert (message.queue_id, message.queue_offset) == (sent.queue_id, sent.queue_offset)
    assert message.commit_offset is not None
    assert message.body == b"hello" and message.text == "hello" and message.body_base64 == "aGVsbG8="
    assert message.tag == "new"
    assert message.keys == ["order-1", "customer-7"]
    assert message.properties == {"region": "eu", "n": "3"}
    assert message.born_ts > 0 and message.store_ts >= message.born_ts - 1000
    assert message.reconsume_times == 0
    assert message.receipt
    assert message.state == "stored"
    assert "hello" in repr(message)


def test_binary_bodies_and_str_bodies(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic = name("t")
    producer = client.producer()
    producer.send(topic, bytes([0xFF, 0x00, 0xFE]), sharding_key="k")
    producer.send(topic, "héllo", sharding_key="k")
    got = drain(client.simple_consumer(name("g"), topic), 2)
    assert [m.body for m in got] == [bytes([0xFF, 0x00, 0xFE]), "héllo".encode()]
    assert got[0].text is None and got[1].text == "héllo"


def test_batch_is_in_order_and_takes_dicts(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic = name("t")
    results = client.producer().send_batch(
        topic, [b"a", "b", {"body": b"c", "tag": "T", "keys": "k-c", "properties": {"p": "1"}}]
    )
    assert len(results) == 3 and len({r.msg_id for r in results}) == 3
    got = {m.msg_id: m for m in drain(client.simple_consumer(name("g"), topic), 3)}
    assert got[results[2].msg_id].tag == "T"
    assert got[results[2].msg_id].keys == ["k-c"]
    assert {m.body for m in got.values()} == {b"a", b"b", b"c"}


def test_send_oneway_arrives(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic = name("t")
    client.admin().create_topic(topic, queues=2)
    client.producer().send_oneway(topic, b"fire and forget")
    [message] = drain(client.simple_consumer(name("g"), topic), 1)
    assert message.body == b"fire and forget"


def test_push_consumer_with_listener_gets_each_message_once(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic, group = name("t"), name("g")
    producer = client.producer()
    sent = {producer.send(topic, f"m{i}").msg_id for i in range(50)}
    seen: List[str] = []
    lock = threading.Lock()

    def listener(message: ferrymq.Message) -> None:
        with lock:
            seen.append(message.msg_id)

    consumer = client.push_consumer(group, topic, listener=listener)
    consumer.start()
    wait_for(lambda: len(seen) >= 50)
    time.sleep(0.3)
    consumer.close()
    assert sorted(seen) == sorted(sent)
    assert consumer.client_id


def test_push_consumer_iterates_and_acks(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic, group = name("t"), name("g")
    producer = client.producer()
    sent = [producer.send(topic, f"m{i}", sharding_key="one").msg_id for i in range(5)]
    got: List[str] = []
    with client.push_consumer(group, topic) as consumer:
        for message in consumer:
            got.append(message.msg_id)
            message.ack()
            if len(got) == len(sent):
                break
        assert consumer.assignment(), "a started member owns queues"
    assert sorted(got) == sorted(sent)
    # Closed: iteration ends at once.
    assert list(consumer) == []


def test_iterator_recv_times_out_with_none(embedded: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic = name("t")
    embedded.admin().create_topic(topic, queues=1)
    with embedded.push_consumer(name("g"), topic) as consumer:
        started = time.monotonic()
        assert consumer.recv(timeout_ms=200) is None
        assert time.monotonic() - started >= 0.15


def test_lookups_by_id_key_and_time(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic = name("t")
    before = int(time.time() * 1000) - 1
    sent = client.producer().send(topic, b"x", keys=["k-1"])
    admin = client.admin()
    found = admin.message(sent.msg_id)
    assert found.body == b"x" and found.receipt is None and found.state == "stored"
    by_key = wait_for(lambda: admin.find_messages(topic, key="k-1"))
    assert [m.msg_id for m in by_key] == [sent.msg_id]
    by_time = admin.find_messages(topic, from_ts=before, to_ts=int(time.time() * 1000) + 1000)
    assert sent.msg_id in [m.msg_id for m in by_time]
    assert admin.find_messages(topic, key="missing") == []


def test_admin_topics_and_groups(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    admin = client.admin()
    topic, group = name("t"), name("g")
    created = admin.create_topic(topic, queues=3)
    assert (created.name, created.queues, created.perm) == (topic, 3, "rw")
    assert topic in [t.name for t in admin.topics()]
    detail = admin.topic(topic)
    assert detail.queue_offsets is not None and [q.queue_id for q in detail.queue_offsets] == [0, 1, 2]
    client.producer().send(topic, b"x")
    drain(client.simple_consumer(group, topic), 1)
    info = admin.group(group)
    assert info.group == group
    assert [s.topic for s in info.subscriptions] == [topic]
    assert sum(o.max for o in info.offsets if o.topic == topic) == 1
    assert admin.put_group(group, max_reconsume_times=3).max_reconsume_times == 3
    admin.delete_topic(topic)
    assert topic not in [t.name for t in admin.topics()]


def test_message_ack_settles_simple_messages_too(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic, group = name("t"), name("g")
    client.producer().send(topic, b"x")
    consumer = client.simple_consumer(group, topic)
    [message] = wait_for(lambda: consumer.receive(wait_ms=200))
    message.ack()
    assert consumer.receive(wait_ms=300) == []


def test_nack_with_delay_redelivers_with_a_count(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic, group = name("t"), name("g")
    client.producer().send(topic, b"x")
    consumer = client.simple_consumer(group, topic)
    [first] = wait_for(lambda: consumer.receive(wait_ms=200))
    consumer.nack(first, delay_ms=100)
    [again] = wait_for(lambda: consumer.receive(wait_ms=200))
    assert again.msg_id == first.msg_id and again.reconsume_times == 1
    consumer.ack(again)


def test_change_invisible_duration_gives_a_new_receipt(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic, group = name("t"), name("g")
    client.producer().send(topic, b"x")
    consumer = client.simple_consumer(group, topic)
    [message] = wait_for(lambda: consumer.receive(wait_ms=200, invisible_ms=5000))
    old = message.receipt
    consumer.change_invisible_duration(message, 10_000)
    assert message.receipt and message.receipt != old
    consumer.ack(message)


def test_rebalance_hooks_follow_the_assignment(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    """`on_assign` / `on_revoke` replayed give exactly the member's queues, at every step:
    alone, after a second member took its share, and (all revoked) after close."""
    topic, group = name("t"), name("g")
    client.admin().create_topic(topic, queues=4)
    lock = threading.Lock()
    held: Set[Tuple[str, int]] = set()
    problems: List[str] = []
    revokes: List[List[Tuple[str, int]]] = []

    def on_assign(queues: List[Tuple[str, int]]) -> None:
        with lock:
            if held & set(queues):
                problems.append(f"assigned twice: {held & set(queues)}")
            held.update(queues)

    def on_revoke(queues: List[Tuple[str, int]]) -> None:
        with lock:
            if set(queues) - held:
                problems.append(f"revoked but not held: {set(queues) - held}")
            held.difference_update(queues)
            revokes.append(queues)

    def agrees(consumer: ferrymq.PushConsumer) -> bool:
        with lock:
            return bool(held) and held == set(consumer.assignment())

    a = client.push_consumer(group, topic, on_assign=on_assign, on_revoke=on_revoke, rebalance_interval_ms=300)
    a.start()
    wait_for(lambda: agrees(a) and len(held) >= 4)
    alone = len(held)
    with client.push_consumer(group, topic, rebalance_interval_ms=300) as b:
        wait_for(lambda: b.assignment() and agrees(a) and len(held) < alone)
        assert revokes, "b's share was revoked from a"
        a.close()
        assert held == set(), "close revokes every queue before it returns"
    assert problems == []
