"""`Client.embedded(path, config)` reads settings exactly as `ferrymq serve` does: both go
through core's one configuration table. The same settings give the same behaviour, and the same
bad values are refused for the same reason, including the keys whose parsers used to disagree
(a bare int as a duration, `retention_hours`, `transaction_check_max`, `max_delay`,
`dedup_window`)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest

import ferrymq

from conftest import FAST, ROOT, Server

BINARY = Path(os.environ.get("FERRYMQ_BIN", ROOT / "target" / "debug" / "ferrymq"))

# Values the old embedded parser read differently from the server; text as `--set` takes it.
SETTINGS: Dict[str, str] = {
    "default_queues": "2",
    "dedup_window": "0s",
    "max_message_bytes": "1KiB",
    "max_delay": "1h",
    "retention_hours": "1",
    "transaction_check_max": "1",
}


def observe(client: ferrymq.Client, topic: str) -> List[Any]:
    """What SETTINGS change, as a client sees it."""
    producer = client.producer()
    first = producer.send(topic, b"x", idempotency_key="k")
    again = producer.send(topic, b"x", idempotency_key="k")
    with pytest.raises(ferrymq.FerryError) as too_large:
        producer.send(topic, b"x" * 2048)
    with pytest.raises(ferrymq.InvalidArgument):
        producer.send(topic, b"late", delay_ms=2 * 3600 * 1000)
    producer.send(topic, b"soon", delay_ms=30 * 60 * 1000)
    return [
        client.admin().topic(topic).queues,
        first.msg_id != again.msg_id,  # the dedup window is off
        too_large.value.kind,
    ]


def test_same_settings_behave_the_same_embedded_and_served(tmp_path: Path) -> None:
    with ferrymq.Client.embedded(tmp_path / "embedded", {**FAST, **SETTINGS}) as client:
        embedded = observe(client, "settings")
    server = Server(tmp_path / "served", tmp_path / "server.log", SETTINGS)
    try:
        with server.connect() as client:
            served = observe(client, "settings")
    finally:
        server.stop()
    assert embedded == served == [2, True, "payload-too-large"]


def test_native_python_values_mean_what_their_text_means(tmp_path: Path) -> None:
    typed: Dict[str, Any] = {
        "default_queues": 2,
        "dedup_window": "0s",
        "max_message_bytes": 1024,
        "max_delay": "1h",
        "retention_hours": 1,
        "transaction_check_max": 1,
        "delay_levels": ["100ms", "200ms"] + ["300ms"] * 16,
        "disk_max_used_ratio": 1,
        "auto_create_topics": True,
    }
    with ferrymq.Client.embedded(tmp_path / "data", typed) as client:
        assert observe(client, "typed") == [2, True, "payload-too-large"]


def server_refusal(tmp_path: Path, args: List[str]) -> str:
    """The reason `ferrymq serve` gives for a bad setting (it exits with status 2)."""
    done = subprocess.run(
        [str(BINARY), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "served"), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert "invalid value" in line, line
    return line.split(": ", 2)[2]


def embedded_refusal(tmp_path: Path, key: str, value: Any) -> str:
    """The reason `Client.embedded` gives for the same setting."""
    with pytest.raises(ferrymq.InvalidArgument) as refused:
        ferrymq.Client.embedded(tmp_path / "embedded", {key: value})
    assert refused.value.field == f"/config/{key}"
    return str(refused.value).split(" is not valid: ", 1)[1]


@pytest.mark.parametrize(
    "key, value",
    [
        ("max_delay", "0s"),
        ("lease_ttl", "30"),
        ("retention_hours", "0"),
        ("transaction_check_max", "0"),
        ("max_batch_messages", "0"),
        ("default_queues", "0"),
        ("segment_bytes", "8M"),
        ("flush", "sometimes"),
    ],
)
def test_bad_text_is_refused_for_the_same_reason(tmp_path: Path, key: str, value: str) -> None:
    served = server_refusal(tmp_path, ["--set", f"{key}={value}"])
    assert served == embedded_refusal(tmp_path, key, value)


# A TOML file holds typed values, as a Python dict does.
TYPED: List[Tuple[str, Any, str]] = [
    ("max_delay", 3_600_000, "3600000"),
    ("lease_ttl", 30, "30"),
    ("retention_hours", 0, "0"),
    ("transaction_check_max", 0, "0"),
    ("delay_levels", [100, "1s"], '[100, "1s"]'),
    ("disk_max_used_ratio", 2, "2"),
    ("auto_create_topics", 1, "1"),
]


@pytest.mark.parametrize("key, value, toml", TYPED, ids=[key for key, _, _ in TYPED])
def test_bad_typed_values_are_refused_for_the_same_reason(tmp_path: Path, key: str, value: Any, toml: str) -> None:
    file = tmp_path / "ferrymq.toml"
    file.write_text(f"{key} = {toml}\n")
    served = server_refusal(tmp_path, ["--config", str(file)])
    assert served == embedded_refusal(tmp_path, key, value)


def test_a_bare_int_is_not_a_duration(tmp_path: Path) -> None:
    reason = embedded_refusal(tmp_path, "lease_ttl", 3000)
    assert "needs a unit" in reason


@pytest.mark.parametrize("key, value", [("auth_file", "auth.toml"), ("ws_ticket_ttl", "5s")])
def test_server_only_keys_are_refused_by_name(tmp_path: Path, key: str, value: str) -> None:
    with pytest.raises(ferrymq.InvalidArgument, match="server-only") as refused:
        ferrymq.Client.embedded(tmp_path / "data", {key: value})
    assert refused.value.field == f"/config/{key}"
    assert key not in ferrymq.BROKER_SETTINGS


def test_values_of_no_setting_type_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ferrymq.InvalidArgument, match="expected a str, int, float, bool or list"):
        ferrymq.Client.embedded(tmp_path / "data", {"lease_ttl": None})
    with pytest.raises(ferrymq.InvalidArgument) as unknown:
        ferrymq.Client.embedded(tmp_path / "data", {"segment_bites": None})
    assert unknown.value.field == "/config/segment_bites"
