"""Throughput of the Python SDK: 1 KiB messages, embedded and against a server.

    python bench/throughput.py                      # embedded only
    python bench/throughput.py --url http://127.0.0.1:8080   # and a running ferrymq serve

Prints one line per path; BENCHMARKS.md ("Python SDK") records the figures. Each path uses
a fresh topic of 8 queues and a fresh group; sizes with FERRYMQ_PY_BENCH_SCALE (default 1).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import threading
import time
import uuid
from typing import Callable, List

import ferrymq
from ferrymq import aio

BODY = b"x" * 1024
SCALE = float(os.environ.get("FERRYMQ_PY_BENCH_SCALE", "1"))


def n(count: int) -> int:
    return max(1, int(count * SCALE))


def report(where: str, path: str, count: int, seconds: float) -> None:
    rate = count / seconds
    print(f"{where:8} | {path:58} | {count:6} | {rate:9,.0f} msg/s | {rate * len(BODY) / 2**20:6.1f} MiB/s", flush=True)


def fresh(client: ferrymq.Client) -> str:
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    client.admin().create_topic(topic, queues=8)
    return topic


def timed(action: Callable[[], None]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def bench_send(where: str, client: ferrymq.Client, count: int) -> None:
    producer = client.producer()
    topic = fresh(client)

    def run() -> None:
        for _ in range(count):
            producer.send(topic, BODY)

    report(where, "Producer.send, one at a time", count, timed(run))


def bench_batch(where: str, client: ferrymq.Client, count: int) -> str:
    producer = client.producer()
    topic = fresh(client)
    batch = [BODY] * 100

    def run() -> None:
        for _ in range(count // 100):
            producer.send_batch(topic, batch)

    report(where, "Producer.send_batch, 100 per batch", count // 100 * 100, timed(run))
    return topic


def bench_async_send(where: str, client: ferrymq.Client, count: int, url: str, path: str) -> None:
    topic = fresh(client)

    async def main() -> None:
        native = client
        producer = aio.Producer(native.producer())
        in_flight = 64

        async def worker(share: int) -> None:
            for _ in range(share):
                await producer.send(topic, BODY)

        await asyncio.gather(*(worker(count // in_flight) for _ in range(in_flight)))

    seconds = timed(lambda: asyncio.run(main()))
    report(where, "aio Producer.send, 64 concurrent", count // 64 * 64, seconds)


def bench_listener(where: str, client: ferrymq.Client, topic: str, count: int) -> None:
    done = threading.Event()
    seen = [0]
    lock = threading.Lock()

    def listener(message: ferrymq.Message) -> None:
        with lock:
            seen[0] += 1
            if seen[0] >= count:
                done.set()

    consumer = client.push_consumer(f"g-{uuid.uuid4().hex[:8]}", topic, listener=listener)
    started = time.perf_counter()
    consumer.start()
    assert done.wait(600), f"consumed {seen[0]} of {count}"
    seconds = time.perf_counter() - started
    consumer.close()
    report(where, "PushConsumer, listener, draining the backlog", count, seconds)


def bench_iterator(where: str, client: ferrymq.Client, topic: str, count: int) -> None:
    consumer = client.push_consumer(f"g-{uuid.uuid4().hex[:8]}", topic)
    started = time.perf_counter()
    consumer.start()
    got = 0
    for message in consumer:
        message.ack()
        got += 1
        if got >= count:
            break
    seconds = time.perf_counter() - started
    consumer.close()
    report(where, "PushConsumer, iterator + ack, draining the backlog", count, seconds)


def bench_simple(where: str, client: ferrymq.Client, topic: str, count: int) -> None:
    consumer = client.simple_consumer(f"g-{uuid.uuid4().hex[:8]}", topic)

    def run() -> None:
        got = 0
        while got < count:
            batch: List[ferrymq.Message] = consumer.receive(max_messages=64, wait_ms=1000)
            for message in batch:
                consumer.ack(message)
            got += len(batch)

    report(where, "SimpleConsumer, receive 64 + ack each", count, timed(run))


def run_all(where: str, client: ferrymq.Client, url: str) -> None:
    bench_send(where, client, n(5000 if where == "embedded" else 2000))
    backlog = n(20000)
    topic = bench_batch(where, client, backlog)
    bench_async_send(where, client, n(6400), url, where)
    bench_listener(where, client, topic, backlog // 100 * 100)
    bench_iterator(where, client, topic, backlog // 100 * 100)
    bench_simple(where, client, topic, n(5000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", help="also measure against the ferrymq serve at this URL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data, ferrymq.Client.embedded(data) as client:
        run_all("embedded", client, "")
    if args.url:
        with ferrymq.Client.connect(args.url) as client:
            run_all("remote", client, args.url)


if __name__ == "__main__":
    main()
