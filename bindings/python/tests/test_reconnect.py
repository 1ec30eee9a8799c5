"""A remote client rides out its server being killed: the client reconnects by itself with
backoff, tells ``on_connection`` ``("dropped", message)`` then ``("restored", None)``, registers
its push consumer again, and loses nothing a send acknowledged. While the server is gone a
send waits for it, or raises the retriable ``Unavailable`` once its timeout has passed."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Callable, List, Optional, Set, Tuple

import pytest

import ferrymq
from ferrymq import aio
from conftest import LEASE_TTL_MS, ORDERLY_SUSPEND_MS, Server, wait_for

Event = Tuple[ferrymq.ConnectionState, Optional[str]]


def connect(server: Server, events: List[Event], request_timeout_ms: int) -> ferrymq.Client:
    def on_connection(state: ferrymq.ConnectionState, error: Optional[str]) -> None:
        events.append((state, error))

    return ferrymq.Client.connect(
        server.url,
        lease_ttl_ms=LEASE_TTL_MS,
        orderly_suspend_ms=ORDERLY_SUSPEND_MS,
        request_timeout_ms=request_timeout_ms,
        reconnect_backoff_ms=20,
        reconnect_backoff_max_ms=200,
        on_connection=on_connection,
    )


def test_a_client_reconnects_after_the_server_is_killed(tmp_path: Path, name: Callable[[str], str]) -> None:
    server = Server(tmp_path / "data", tmp_path / "server.log")
    events: List[Event] = []
    impatient_events: List[Event] = []
    try:
        client = connect(server, events, request_timeout_ms=20_000)
        impatient = connect(server, impatient_events, request_timeout_ms=300)
        topic, group = name("reconnect"), name("billing")
        client.admin().create_topic(topic, queues=2)
        seen: List[bytes] = []
        lock = threading.Lock()

        def listener(message: ferrymq.Message) -> None:
            with lock:
                seen.append(message.body)

        def seen_all(expected: Set[bytes]) -> bool:
            with lock:
                return set(seen) >= expected

        consumer = client.push_consumer(group, topic, listener=listener)
        consumer.start()
        producer = client.producer()
        acknowledged: Set[bytes] = set()
        for i in range(10):
            producer.send(topic, f"before{i}")
            acknowledged.add(f"before{i}".encode())
        wait_for(lambda: seen_all(acknowledged))

        server.kill()
        wait_for(lambda: events and impatient_events)
        state, error = events[0]
        assert state == "dropped" and error, events
        with pytest.raises(ferrymq.Unavailable) as raised:
            impatient.producer().send(topic, "never")
        assert raised.value.retriable

        # A send made while the server is down waits for it to come back.
        waiting: List[ferrymq.SendResult] = []
        sender = threading.Thread(target=lambda: waiting.append(producer.send(topic, "during")))
        sender.start()
        server = Server(tmp_path / "data", tmp_path / "server-again.log", port=server.port)
        wait_for(lambda: len(events) >= 2 and len(impatient_events) >= 2, timeout=30)
        assert events == [events[0], ("restored", None)]
        assert [s for s, _ in impatient_events] == ["dropped", "restored"]
        sender.join(timeout=30)
        assert len(waiting) == 1, "the send made while disconnected succeeded after the reconnect"
        acknowledged.add(b"during")

        members = client.admin().group(group).members
        assert len(members) == 1, "the consumer is a member again"
        for i in range(10):
            producer.send(topic, f"after{i}")
            acknowledged.add(f"after{i}".encode())
        wait_for(lambda: seen_all(acknowledged), timeout=30)
        with lock:
            assert set(seen) == acknowledged, "nothing acknowledged was lost, nothing unsent appeared"
        consumer.close()
        client.close()
        impatient.close()
        assert len(events) == 2, "closing reports nothing"
    finally:
        server.stop()


def test_asyncio_on_connection_may_be_a_coroutine(tmp_path: Path, name: Callable[[str], str]) -> None:
    server = Server(tmp_path / "data", tmp_path / "server.log")
    events: List[Event] = []

    async def main() -> None:
        nonlocal server
        changed = asyncio.Event()

        async def on_connection(state: ferrymq.ConnectionState, error: Optional[str]) -> None:
            events.append((state, error))
            changed.set()

        async with aio.Client.connect(
            server.url, reconnect_backoff_ms=20, reconnect_backoff_max_ms=200, on_connection=on_connection
        ) as client:
            topic = name("reconnect-aio")
            await client.admin().create_topic(topic, queues=1)
            server.kill()
            await asyncio.wait_for(changed.wait(), 30)
            changed.clear()
            server = Server(tmp_path / "data", tmp_path / "server-again.log", port=server.port)
            await asyncio.wait_for(changed.wait(), 30)
            assert [s for s, _ in events] == ["dropped", "restored"]
            assert events[1][1] is None
            sent = await client.producer().send(topic, b"after")
            assert sent.queue_offset == 0

    try:
        asyncio.run(main())
    finally:
        server.stop()


def test_reconnect_options_are_checked(server: Server) -> None:
    with pytest.raises(ferrymq.InvalidArgument, match="reconnect_backoff_ms"):
        ferrymq.Client.connect(server.url, reconnect_backoff_ms=0)
    with pytest.raises(ferrymq.InvalidArgument, match="reconnect_backoff_max_ms"):
        ferrymq.Client.connect(server.url, reconnect_backoff_ms=500, reconnect_backoff_max_ms=100)
