"""The asyncio API (ferrymq.aio): the same calls as coroutines, `async for` over a push
consumer, async listeners, checkers and local transactions, and cancellation."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Callable, List, Set, Tuple

import pytest

import ferrymq
from ferrymq import aio

from conftest import FAST, LEASE_TTL_MS, ORDERLY_SUSPEND_MS, Server


async def open_client(kind: str, tmp_path: Path, server: Callable[[], Server]) -> aio.Client:
    if kind == "embedded":
        return await aio.Client.embedded(tmp_path / "data", FAST)
    return await aio.Client.connect(server().url, lease_ttl_ms=LEASE_TTL_MS, orderly_suspend_ms=ORDERLY_SUSPEND_MS)


@pytest.fixture(params=["embedded", "remote"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def lazy_server(request: pytest.FixtureRequest) -> Callable[[], Server]:
    return lambda: request.getfixturevalue("server")


def test_send_and_async_for(kind: str, tmp_path: Path, lazy_server: Callable[[], Server], name: Callable[[str], str]) -> None:
    async def main() -> None:
        async with await open_client(kind, tmp_path, lazy_server) as client:
            assert client.transport == kind
            topic = name("t")
            producer = client.producer()
            sent = [await producer.send(topic, f"m{i}", tag="T", properties={"i": i}) for i in range(5)]
            results = await producer.send_batch(topic, [b"b0", {"body": b"b1", "tag": "T"}])
            expected = {r.msg_id for r in sent + results}
            got: List[str] = []
            async with client.push_consumer(name("g"), topic) as consumer:
                async for message in consumer:
                    got.append(message.msg_id)
                    await message.ack()
                    if len(got) == len(expected):
                        break
            assert set(got) == expected
            assert [t.name for t in await client.admin().topics() if t.name == topic] == [topic]

    asyncio.run(main())


def test_async_listener_and_simple_consumer(
    kind: str, tmp_path: Path, lazy_server: Callable[[], Server], name: Callable[[str], str]
) -> None:
    async def main() -> None:
        async with await open_client(kind, tmp_path, lazy_server) as client:
            topic = name("t")
            await client.producer().send(topic, b"to the listener")
            seen: asyncio.Queue[bytes] = asyncio.Queue()

            async def listener(message: aio.Message) -> None:
                await asyncio.sleep(0.01)
                await seen.put(message.body)

            consumer = client.push_consumer(name("g"), topic, listener=listener)
            await consumer.start()
            assert await asyncio.wait_for(seen.get(), 15) == b"to the listener"
            await consumer.close()

            simple = client.simple_consumer(name("g"), topic)
            [message] = await simple.receive(wait_ms=2000)
            await simple.change_invisible_duration(message, 5000)
            await simple.nack(message, delay_ms=50)
            [again] = await simple.receive(wait_ms=2000)
            assert again.reconsume_times == 1
            await simple.ack(again)
            with pytest.raises(ferrymq.Conflict):
                await simple.ack(again)
            await simple.close()

    asyncio.run(main())


def test_async_transactions(kind: str, tmp_path: Path, lazy_server: Callable[[], Server], name: Callable[[str], str]) -> None:
    async def main() -> None:
        async with await open_client(kind, tmp_path, lazy_server) as client:
            topic = name("t")
            await client.admin().create_topic(topic, queues=2)

            async def checker(message: aio.Message) -> ferrymq.Verdict:
                return "commit"

            async def local(message: aio.Message) -> ferrymq.Verdict:
                await asyncio.sleep(0)
                return "commit"

            async with await client.transaction_producer(name("pg"), checker) as producer:
                sent = await producer.send_in_transaction(topic, b"tx", local, keys=["k"])
                assert sent.transaction_id
            simple = client.simple_consumer(name("g"), topic)
            [message] = await simple.receive(wait_ms=3000)
            assert message.msg_id == sent.msg_id

    asyncio.run(main())


def test_async_errors_are_typed(kind: str, tmp_path: Path, lazy_server: Callable[[], Server], name: Callable[[str], str]) -> None:
    async def main() -> None:
        async with await open_client(kind, tmp_path, lazy_server) as client:
            with pytest.raises(ferrymq.NotFound):
                await client.admin().message("00000000000000000000000000000000")
            with pytest.raises(ferrymq.InvalidArgument):
                await client.producer().send(name("t"), b"x", delay_level=0)
            with pytest.raises(ferrymq.InvalidArgument) as bad:
                client.simple_consumer(name("g"), name("t"), sql="a >")
            assert bad.value.type == "urn:ferrymq:error:invalid-filter"

    asyncio.run(main())


def test_cancelling_a_wait(tmp_path: Path, name: Callable[[str], str]) -> None:
    async def main() -> None:
        async with await aio.Client.embedded(tmp_path / "data", FAST) as client:
            topic = name("t")
            await client.admin().create_topic(topic, queues=1)
            consumer = client.push_consumer(name("g"), topic)
            await consumer.start()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(consumer.recv(), 0.2)
            assert await consumer.recv(timeout_ms=100) is None
            # The cancelled wait took nothing: the next message still arrives.
            await client.producer().send(topic, b"after the cancel")
            message = await asyncio.wait_for(consumer.recv(), 10)
            assert message is not None and message.body == b"after the cancel"
            await message.ack()
            await consumer.close()
            assert await consumer.recv() is None

    asyncio.run(main())


def test_sync_and_async_share_one_client(tmp_path: Path, name: Callable[[str], str]) -> None:
    async def main() -> None:
        client = await aio.Client.embedded(tmp_path / "data")
        topic = name("t")
        await client.producer().send(topic, b"x")
        blocking = client.blocking
        assert isinstance(blocking, ferrymq.Client)
        [message] = await asyncio.get_running_loop().run_in_executor(
            None, lambda: blocking.simple_consumer(name("g"), topic).receive(wait_ms=2000)
        )
        assert message.body == b"x"
        await client.close()

    asyncio.run(main())


def test_async_with_opens_a_client_without_await(
    kind: str, tmp_path: Path, lazy_server: Callable[[], Server], name: Callable[[str], str]
) -> None:
    async def main() -> None:
        opening = (
            aio.Client.embedded(tmp_path / "data", FAST)
            if kind == "embedded"
            else aio.Client.connect(lazy_server().url, lease_ttl_ms=LEASE_TTL_MS)
        )
        async with opening as client:
            assert isinstance(client, aio.Client)
            assert client.transport == kind
            await client.producer().send(name("t"), b"x")
        # Leaving the block closed the client.
        with pytest.raises(ferrymq.FerryError):
            await client.producer().send(name("t"), b"after close")

    asyncio.run(main())


def test_messages_are_acked_and_nacked_with_await(tmp_path: Path, name: Callable[[str], str]) -> None:
    """`await message.ack()` / `await message.nack()` for a simple consumer's and a push
    consumer's messages: the settling runs on the Rust runtime, not on the loop."""

    async def main() -> None:
        async with aio.Client.embedded(tmp_path / "data", FAST) as client:
            topic = name("t")
            await client.admin().create_topic(topic, queues=1)
            await client.producer().send_batch(topic, [b"first", b"second"])

            simple = client.simple_consumer(name("g"), topic)
            first, second = await simple.receive(wait_ms=2000)
            assert isinstance(first, aio.Message)
            ack = first.ack()
            assert inspect.isawaitable(ack)
            await ack
            await second.nack(delay_ms=50)
            [again] = await simple.receive(wait_ms=3000)
            assert (again.body, again.reconsume_times) == (b"second", 1)
            await again.ack()
            with pytest.raises(ferrymq.Conflict):
                await again.ack()
            assert await simple.receive(wait_ms=200) == []

            async with client.push_consumer(name("p"), topic) as consumer:
                message = await asyncio.wait_for(consumer.recv(), 15)
                assert message is not None
                await message.nack(delay_ms=10)
                # The nacked message comes back; the other one arrives too.
                seen: List[bytes] = []
                async for delivered in consumer:
                    seen.append(delivered.body)
                    await delivered.ack()
                    if message.body in seen and b"first" in seen and b"second" in seen:
                        break

    asyncio.run(main())


def test_async_twins_live_only_in_ferrymq_aio() -> None:
    """The blocking classes (`ferrymq.X`, the native ones) show no coroutine-returning
    methods: their private `_<name>_async` twins are for `ferrymq.aio` alone."""
    classes: List[type] = [ferrymq.Client, ferrymq.Producer, ferrymq.TransactionProducer, ferrymq.PushConsumer]
    classes += [ferrymq.SimpleConsumer, ferrymq.Admin, ferrymq.Message]
    for cls in classes:
        public = [n for n in dir(cls) if not n.startswith("_")]
        assert [n for n in public if n.endswith("_async")] == [], cls
        assert not hasattr(cls, "__aiter__") and not hasattr(cls, "__anext__"), cls
        assert any(n.startswith("_") and n.endswith("_async") for n in dir(cls)), cls
    wrappers: List[type] = [aio.Client, aio.Producer, aio.PushConsumer, aio.SimpleConsumer, aio.Admin, aio.Message]
    for cls in wrappers:
        assert [n for n in dir(cls) if n.endswith("_async")] == [], cls


def test_async_rebalance_hooks(tmp_path: Path, name: Callable[[str], str]) -> None:
    async def main() -> None:
        async with aio.Client.embedded(tmp_path / "data", FAST) as client:
            topic = name("t")
            await client.admin().create_topic(topic, queues=2)
            held: Set[Tuple[str, int]] = set()

            async def on_assign(queues: List[Tuple[str, int]]) -> None:
                held.update(queues)

            def on_revoke(queues: List[Tuple[str, int]]) -> None:
                held.difference_update(queues)

            consumer = client.push_consumer(name("g"), topic, on_assign=on_assign, on_revoke=on_revoke)
            await consumer.start()

            async def settled() -> None:
                while not held or held != set(consumer.assignment()):
                    await asyncio.sleep(0.05)

            await asyncio.wait_for(settled(), 15)
            assert {queue_id for t, queue_id in held if t == topic} == {0, 1}
            await consumer.close()
            assert held == set()

    asyncio.run(main())
