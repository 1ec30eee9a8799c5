"""Nothing fails silently: a failed `send_oneway` reaches the producer's `on_error` callback or
is raised by the next `flush()`, and what the Rust side logs reaches Python's `logging` on the
`ferrymq` logger."""

from __future__ import annotations

import asyncio
import logging
import queue
from pathlib import Path
from typing import Callable, List

import pytest

import ferrymq
from ferrymq import aio

from conftest import FAST, drain, wait_for

BAD_TOPIC = "not a topic!"


def test_flush_raises_a_failed_send_oneway(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic = name("t")
    producer = client.producer()
    producer.send_oneway(BAD_TOPIC, b"lost?")
    for n in range(3):
        producer.send_oneway(topic, f"ok {n}")
    with pytest.raises(ferrymq.InvalidArgument):
        producer.flush()
    # Reported once; the good sends were all stored by the time flush() returned.
    producer.flush()
    assert sorted(m.body for m in drain(client.simple_consumer(name("g"), topic), 3)) == [b"ok 0", b"ok 1", b"ok 2"]


def test_on_error_is_told_of_a_failed_send_oneway(client: ferrymq.Client) -> None:
    errors: "queue.Queue[ferrymq.FerryError]" = queue.Queue()
    producer = client.producer(on_error=errors.put)
    assert producer.on_error is not None
    producer.send_oneway(BAD_TOPIC, b"x")
    producer.flush()  # the callback took it: nothing to raise, and it has run
    error = errors.get_nowait()
    assert isinstance(error, ferrymq.InvalidArgument) and not error.retriable

    # Set (and unset) later, on a producer made without one.
    later = client.producer()
    seen: List[ferrymq.FerryError] = []
    later.on_error = seen.append
    later.send_oneway(BAD_TOPIC, b"y")
    later.flush()
    assert [type(e) for e in seen] == [ferrymq.InvalidArgument]
    later.on_error = None
    later.send_oneway(BAD_TOPIC, b"z")
    with pytest.raises(ferrymq.InvalidArgument):
        later.flush()


def test_an_on_error_that_raises_is_logged(embedded: ferrymq.Client, caplog: pytest.LogCaptureFixture) -> None:
    def broken(error: ferrymq.FerryError) -> None:
        raise RuntimeError("the callback broke")

    producer = embedded.producer(on_error=broken)
    producer.send_oneway(BAD_TOPIC, b"x")
    producer.flush()
    [record] = [r for r in caplog.records if "on_error" in r.getMessage()]
    assert record.name == "ferrymq" and record.exc_info and "the callback broke" in str(record.exc_info[1])


def test_asyncio_on_error_and_flush(tmp_path: Path) -> None:
    async def main() -> None:
        async with aio.Client.embedded(tmp_path / "data", FAST) as client:
            got: "asyncio.Queue[ferrymq.FerryError]" = asyncio.Queue()

            async def on_error(error: ferrymq.FerryError) -> None:
                await got.put(error)

            producer = client.producer(on_error=on_error)
            producer.send_oneway(BAD_TOPIC, b"x")
            await producer.flush()
            assert isinstance(got.get_nowait(), ferrymq.InvalidArgument)
            producer.on_error = None
            producer.send_oneway(BAD_TOPIC, b"y")
            with pytest.raises(ferrymq.InvalidArgument):
                await producer.flush()

    asyncio.run(main())


def test_rust_logs_reach_the_ferrymq_logger(
    client: ferrymq.Client, name: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ferrymq")
    producer = client.producer()
    producer.send_oneway(BAD_TOPIC, b"x")
    with pytest.raises(ferrymq.InvalidArgument):
        producer.flush()
    warning = wait_for(lambda: next((r for r in caplog.records if "one-way send failed" in r.getMessage()), None))
    assert warning.name == "ferrymq" and warning.levelno == logging.WARNING
    assert getattr(warning, "rust_target").startswith("ferrymq_python")
    assert warning.pathname.endswith(".rs") and warning.lineno > 0

    # The client's own debug events, once the logger asks for them.
    topic = name("t")
    client.admin().create_topic(topic, queues=2)
    with client.push_consumer(name("g"), topic, rebalance_interval_ms=200):
        wait_for(
            lambda: any(
                getattr(r, "rust_target", "").startswith("ferrymq_core") and r.levelno == logging.DEBUG
                for r in caplog.records
            )
        )
