"""Fixtures of the Python SDK suite: an embedded broker per test in a temporary directory,
and one `ferrymq serve` per session on a free port, both with fast settings (millisecond
delay levels, short leases and transaction checks) so that delay, retry and check-back
behaviour shows within seconds.

`client` is parametrized over both transports; tests that need one transport take
`embedded` or `remote`. The server binary is `$FERRYMQ_BIN`, else `target/debug/ferrymq`
(`cargo build -p ferrymq-gateway`).
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, TypeVar

import pytest

import ferrymq

ROOT = Path(__file__).resolve().parents[3]

# 18 levels as in production, but fast: levels 3+ (the retry delays) are 300 ms.
DELAY_LEVELS = "100ms 200ms " + " ".join(["300ms"] * 16)
LEASE_TTL_MS = 3000
ORDERLY_SUSPEND_MS = 100

FAST: Dict[str, Any] = {
    "delay_levels": DELAY_LEVELS,
    "timer_precision": "100ms",
    "lease_ttl": f"{LEASE_TTL_MS}ms",
    "orderly_suspend": f"{ORDERLY_SUSPEND_MS}ms",
    "transaction_timeout": "1s",
    "transaction_check_interval": "1s",
    "transaction_check_max": 5,
    "segment_bytes": "8MiB",
}

T = TypeVar("T")


def wait_for(condition: Callable[[], Optional[T]], timeout: float = 15.0, every: float = 0.05) -> T:
    """Polls `condition` until it returns something truthy; fails the test after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(every)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A `ferrymq serve` child process."""

    def __init__(
        self,
        data_dir: Path,
        log: Path,
        extra: Optional[Dict[str, str]] = None,
        ca_file: Optional[Path] = None,
        port: Optional[int] = None,
    ) -> None:
        """`ca_file`: the server speaks HTTPS (its `extra` sets `tls_cert` and `tls_key`) with
        a certificate this CA file vouches for. `port`: a given one (to restart a killed
        server where its clients look for it) instead of a free one."""
        binary = Path(os.environ.get("FERRYMQ_BIN", ROOT / "target" / "debug" / "ferrymq"))
        if not binary.exists():
            raise RuntimeError(f"{binary} is missing: run `cargo build -p ferrymq-gateway` first")
        self.port = port or free_port()
        self.url = f"{'https' if ca_file else 'http'}://localhost:{self.port}"
        health_context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
        self.log = log
        args = [str(binary), "serve", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{self.port}"]
        for key, value in {**FAST, **(extra or {})}.items():
            args += ["--set", f"{key}={value}"]
        self._log_file = open(log, "wb")
        self.process = subprocess.Popen(args, stdout=self._log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"ferrymq serve exited with {self.process.returncode}:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1, context=health_context) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"ferrymq serve did not become healthy:\n{log.read_text()}")
            time.sleep(0.1)

    def connect(self) -> ferrymq.Client:
        return ferrymq.Client.connect(self.url, lease_ttl_ms=LEASE_TTL_MS, orderly_suspend_ms=ORDERLY_SUSPEND_MS)

    def kill(self) -> None:
        """Kills the server at once (SIGKILL), as a crash would."""
        self.process.kill()
        self.process.wait()
        self._log_file.close()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log_file.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("server")
    running = Server(base / "data", base / "server.log")
    yield running
    running.stop()


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[ferrymq.Client]:
    client = ferrymq.Client.embedded(tmp_path / "data", FAST)
    yield client
    client.close()


@pytest.fixture
def remote(server: Server) -> Iterator[ferrymq.Client]:
    client = server.connect()
    yield client
    client.close()


@pytest.fixture(params=["embedded", "remote"])
def client(request: pytest.FixtureRequest) -> ferrymq.Client:
    """The same test against an embedded broker and against `ferrymq serve`."""
    client: ferrymq.Client = request.getfixturevalue(request.param)
    return client


@pytest.fixture
def name() -> Callable[[str], str]:
    """Unique topic and group names (the server lives for the whole session)."""

    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    return make


def drain(consumer: ferrymq.SimpleConsumer, expected: int, timeout: float = 15.0) -> List[ferrymq.Message]:
    """Receives and acks until `expected` messages came (or fails after `timeout`)."""
    received: List[ferrymq.Message] = []
    deadline = time.monotonic() + timeout
    while len(received) < expected:
        if time.monotonic() > deadline:
            pytest.fail(f"received {len(received)} of {expected} messages")
        batch = consumer.receive(max_messages=64, wait_ms=500)
        for message in batch:
            consumer.ack(message)
        received.extend(batch)
    return received
