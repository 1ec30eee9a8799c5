"""Tag and SQL92 filters, applied by the broker, for simple and push consumers."""

from __future__ import annotations

import threading
import time
from typing import Callable, List

import ferrymq

from conftest import drain, wait_for


def publish_mix(client: ferrymq.Client, topic: str) -> None:
    producer = client.producer()
    producer.send(topic, b"a1", tag="TagA", properties={"region": "eu", "price": 5})
    producer.send(topic, b"b1", tag="TagB", properties={"region": "us", "price": 50})
    producer.send(topic, b"c1", tag="TagC", properties={"region": "eu", "price": 500})
    producer.send(topic, b"n1", properties={"price": 7})


def bodies_of(consumer: ferrymq.SimpleConsumer, expected: int) -> List[bytes]:
    got = sorted(m.body for m in drain(consumer, expected))
    time.sleep(0.2)
    assert consumer.receive(wait_ms=200) == [], "nothing beyond the filter's matches"
    return got


def test_tag_expression(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic = name("t")
    publish_mix(client, topic)
    consumer = client.simple_consumer(name("g"), topic, filter="TagA || TagC")
    assert bodies_of(consumer, 2) == [b"a1", b"c1"]


def test_sql_over_properties(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic = name("t")
    publish_mix(client, topic)
    consumer = client.simple_consumer(name("g"), topic, sql="region = 'eu' AND price BETWEEN 1 AND 100")
    assert bodies_of(consumer, 1) == [b"a1"]
    others = client.simple_consumer(name("g"), topic, sql="region IS NULL OR price > 100")
    assert bodies_of(others, 2) == [b"c1", b"n1"]


def test_push_consumer_with_a_filter(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic = name("t")
    publish_mix(client, topic)
    seen: List[bytes] = []
    lock = threading.Lock()

    def listener(message: ferrymq.Message) -> None:
        with lock:
            seen.append(message.body)

    consumer = client.push_consumer(name("g"), topic, sql="price < 10", listener=listener)
    consumer.start()
    wait_for(lambda: len(seen) >= 2)
    time.sleep(0.5)
    consumer.close()
    assert sorted(seen) == [b"a1", b"n1"]
    tagged = client.push_consumer(name("g"), topic, filter="TagB")
    with tagged:
        message = next(iter(tagged))
        message.ack()
    assert message.body == b"b1"
