"""`https://` URLs: the SDK verifies the server against a `ca_file` (or the system's roots),
publishes and consumes over TLS, and refuses a certificate nobody vouches for."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Iterator, Tuple

import pytest

import ferrymq
from ferrymq import aio

from conftest import Server


def self_signed(directory: Path) -> Tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1 and its key, made with the openssl CLI."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            # A leaf certificate, not a CA: rustls refuses a CA certificate as a server's own.
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[Server, Path]]:
    base = tmp_path_factory.mktemp("tls")
    cert, key = self_signed(base)
    server = Server(base / "data", base / "server.log", {"tls_cert": str(cert), "tls_key": str(key)}, ca_file=cert)
    yield server, cert
    server.stop()


def test_publish_and_consume_over_tls(tls_server: Tuple[Server, Path]) -> None:
    server, cert = tls_server
    assert server.url.startswith("https://")
    with ferrymq.Client.connect(server.url, ca_file=cert) as client:
        sent = client.producer().send("secure", b"sealed", tag="T")
        consumer = client.simple_consumer("readers", "secure")
        messages = consumer.receive(wait_ms=2000)
        assert [m.msg_id for m in messages] == [sent.msg_id]
        assert messages[0].body == b"sealed"
        consumer.ack(messages[0])


def test_asyncio_connects_over_tls(tls_server: Tuple[Server, Path]) -> None:
    server, cert = tls_server

    async def run() -> str:
        async with await aio.Client.connect(server.url, ca_file=str(cert)) as client:
            sent = await client.producer().send("secure-aio", b"x")
            return sent.msg_id

    assert asyncio.run(run())


def test_an_untrusted_certificate_is_refused(tls_server: Tuple[Server, Path], tmp_path: Path) -> None:
    server, _ = tls_server
    with pytest.raises(ferrymq.ConnectionError, match="(?i)certificate"):
        ferrymq.Client.connect(server.url)
    other, _ = self_signed(tmp_path)
    with pytest.raises(ferrymq.ConnectionError, match="(?i)certificate"):
        ferrymq.Client.connect(server.url, ca_file=other)


def test_a_ca_file_that_is_not_pem_is_invalid(tls_server: Tuple[Server, Path], tmp_path: Path) -> None:
    server, _ = tls_server
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate")
    with pytest.raises(ferrymq.InvalidArgument):
        ferrymq.Client.connect(server.url, ca_file=bogus)
