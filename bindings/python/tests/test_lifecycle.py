"""The module's life in a process: clients left open are closed at exit (consumers commit
their offsets), a blocking wait yields to Ctrl-C, a forked child gets a runtime of its own,
and the GIL is released while Rust works."""

from __future__ import annotations

import os
import signal
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Callable

import ferrymq

from conftest import wait_for


def python(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True, timeout=timeout
    )


def test_open_clients_are_closed_at_exit(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    first = python(
        """
        import sys, threading, ferrymq
        client = ferrymq.Client.embedded(sys.argv[1], {"segment_bytes": "8MiB"})
        producer = client.producer()
        for i in range(20):
            producer.send("events", f"e{i}")
        seen = []
        done = threading.Event()
        def listener(message):
            seen.append(message.body)
            if len(seen) == 20:
                done.set()
        consumer = client.push_consumer("readers", "events", listener=listener)
        consumer.start()
        assert done.wait(20)
        print("consumed", len(seen))
        # No close: the client and its consumer are closed at exit.
        """,
        data,
    )
    assert first.returncode == 0, first.stderr
    assert "consumed 20" in first.stdout
    # The group's offsets were committed: a new member starts after the 20.
    with ferrymq.Client.embedded(data, {"segment_bytes": "8MiB"}) as client:
        group = client.admin().group("readers")
        assert sum(o.lag for o in group.offsets if o.topic == "events") == 0


def test_ctrl_c_interrupts_a_blocking_wait(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, ferrymq
                client = ferrymq.Client.embedded(sys.argv[1], {"segment_bytes": "8MiB"})
                client.admin().create_topic("quiet")
                with client.push_consumer("g", "quiet") as consumer:
                    print("waiting", flush=True)
                    try:
                        next(consumer)
                    except KeyboardInterrupt:
                        print("interrupted", flush=True)
                """
            ),
            str(tmp_path / "data"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "waiting"
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert "interrupted" in out, err
    assert process.returncode == 0, err


def test_a_forked_child_gets_its_own_runtime(tmp_path: Path, embedded: ferrymq.Client) -> None:
    embedded.producer().send("parent", b"before the fork")
    child = python(
        """
        import os, sys, ferrymq
        parent = ferrymq.Client.embedded(sys.argv[1] + "/parent", {"segment_bytes": "8MiB"})
        parent.producer().send("t", b"x")
        pid = os.fork()
        if pid == 0:
            with ferrymq.Client.embedded(sys.argv[1] + "/child", {"segment_bytes": "8MiB"}) as client:
                client.producer().send("t", b"from the child")
                [m] = client.simple_consumer("g", "t").receive(wait_ms=2000)
                os._exit(0 if m.body == b"from the child" else 3)
        _, status = os.waitpid(pid, 0)
        parent.producer().send("t", b"parent still works")
        print("child exit", os.waitstatus_to_exitcode(status))
        """,
        str(tmp_path),
    )
    assert child.returncode == 0, child.stderr
    assert "child exit 0" in child.stdout


def test_the_gil_is_released_while_waiting(embedded: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic = name("t")
    embedded.admin().create_topic(topic, queues=1)
    consumer = embedded.simple_consumer(name("g"), topic)
    ticks: list[int] = []
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        assert consumer.receive(wait_ms=500) == []
    finally:
        stop.set()
        spinner.join()
    assert len(ticks) > 50, "another Python thread ran during the long poll"


def test_listener_threads_stop_on_close(embedded: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic = name("t")
    embedded.admin().create_topic(topic, queues=2)
    before = threading.active_count()

    def names() -> list[str]:
        return os.listdir(f"/proc/{os.getpid()}/task")

    tasks_before = len(names())
    consumer = embedded.push_consumer(name("g"), topic, listener=lambda m: None, consume_workers=4)
    consumer.start()
    assert len(names()) >= tasks_before + 4
    consumer.close()
    wait_for(lambda: len(names()) <= tasks_before + 2, timeout=10)
    assert threading.active_count() == before


def test_asyncio_programs_exit_cleanly(tmp_path: Path) -> None:
    """A future resolved from a runtime thread right before the program ends must not leave
    that thread re-entering a finalizing interpreter (which aborts the process)."""
    code = """
        import asyncio, sys
        from ferrymq import aio

        async def main():
            async with await aio.Client.embedded(sys.argv[1], {"segment_bytes": "8MiB"}) as client:
                await client.producer().send("orders", b"hello")
                async with client.push_consumer("billing", "orders") as consumer:
                    async for message in consumer:
                        await message.ack()
                        break
                await client.admin().topics()

        asyncio.run(main())
        """
    for run in range(10):
        done = python(code, str(tmp_path / f"data{run}"))
        assert done.returncode == 0, f"run {run}: exit {done.returncode}\n{done.stderr}"
        shutil.rmtree(tmp_path / f"data{run}")


def test_exit_with_busy_listeners(tmp_path: Path) -> None:
    code = """
        import sys, time, threading, ferrymq
        client = ferrymq.Client.embedded(sys.argv[1], {"segment_bytes": "8MiB"})
        producer = client.producer()
        producer.send_batch("busy", [b"x"] * 200)
        started = threading.Event()
        def listener(message):
            started.set()
            time.sleep(0.01)
        consumer = client.push_consumer("g", "busy", listener=listener)
        consumer.start()
        assert started.wait(10)
        # Exit while listeners run: at exit the client is closed and the process ends cleanly.
        """
    for run in range(3):
        done = python(code, str(tmp_path / f"data{run}"))
        assert done.returncode == 0, f"run {run}: exit {done.returncode}\n{done.stderr}"
        shutil.rmtree(tmp_path / f"data{run}")


def test_a_closed_client_refuses_every_call(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    """After `close()`, the client and everything it made raise `ConnectionError`: nothing is
    published, leased or read through a closed client. Closing again is harmless."""
    topic = name("t")
    admin = client.admin()
    admin.create_topic(topic, queues=1)
    producer = client.producer()
    producer.send(topic, b"kept")
    consumer = client.simple_consumer(name("g"), topic)
    client.close()
    calls: list[tuple[str, Callable[[], object]]] = [
        ("send", lambda: producer.send(topic, b"late")),
        ("send_batch", lambda: producer.send_batch(topic, [b"late"])),
        ("receive", lambda: consumer.receive(max_messages=16)),
        ("topics", lambda: admin.topics()),
        ("create_topic", lambda: admin.create_topic(name("t"), queues=1)),
        ("find_messages", lambda: admin.find_messages(topic)),
        ("a new admin", lambda: client.admin().topics()),
    ]
    for what, call in calls:
        try:
            call()
        except ferrymq.ConnectionError as e:
            assert "closed" in str(e), (what, e)
        else:
            raise AssertionError(f"{what} worked after close()")
    client.close()
