"""A server with an auth_file: no or a wrong token is Unauthorized, a token outside its grant
is Forbidden, each with the REST problem type; a token with the grant works."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

import ferrymq

from conftest import Server

AUTH = """
[[tokens]]
token = "admin-secret"
topics = ["*"]
groups = ["*"]
actions = ["publish", "consume", "admin"]

[[tokens]]
token = "reader-secret"
topics = ["public-*"]
groups = ["*"]
actions = ["consume"]
"""


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("guarded")
    auth = base / "auth.toml"
    auth.write_text(AUTH)
    server = Server(base / "data", base / "server.log", extra={"auth_file": str(auth)})
    yield server
    server.stop()


def test_tokens_are_checked(guarded: Server) -> None:
    with pytest.raises(ferrymq.Unauthorized) as missing:
        client = ferrymq.Client.connect(guarded.url)
        client.producer().send("public-news", b"x")
    assert missing.value.type == "urn:ferrymq:error:unauthorized"
    with pytest.raises(ferrymq.Unauthorized):
        ferrymq.Client.connect(guarded.url, token="wrong").admin().topics()

    with ferrymq.Client.connect(guarded.url, token="admin-secret") as admin_client:
        admin_client.producer().send("public-news", b"hello")
        admin_client.admin().create_topic("private-notes")

    with ferrymq.Client.connect(guarded.url, token="reader-secret") as reader:
        [message] = reader.simple_consumer("readers", "public-news").receive(wait_ms=2000)
        assert message.body == b"hello"
        with pytest.raises(ferrymq.Forbidden) as publish:
            reader.producer().send("public-news", b"not allowed")
        assert publish.value.type == "urn:ferrymq:error:forbidden"
        with pytest.raises(ferrymq.Forbidden):
            reader.simple_consumer("readers", "private-notes").receive()
        with pytest.raises(ferrymq.Forbidden):
            reader.admin().create_topic("public-new")
