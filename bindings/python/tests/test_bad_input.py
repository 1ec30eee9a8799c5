"""Bad input from Python: wrong types raise TypeError; bad values raise the typed FerryError
of their kind, whose `type` is the REST problem type; nothing crashes."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

import ferrymq


def test_error_hierarchy_and_types() -> None:
    for cls, kind in [
        (ferrymq.InvalidArgument, "invalid-argument"),
        (ferrymq.NotFound, "not-found"),
        (ferrymq.Conflict, "conflict"),
        (ferrymq.Timeout, "timeout"),
        (ferrymq.ConnectionError, "connection"),
        (ferrymq.Unauthorized, "unauthorized"),
        (ferrymq.Forbidden, "forbidden"),
    ]:
        assert issubclass(cls, ferrymq.FerryError)
        assert cls.type == f"urn:ferrymq:error:{kind}"
    assert issubclass(ferrymq.InvalidArgument, ValueError)
    assert issubclass(ferrymq.NotFound, LookupError)
    assert issubclass(ferrymq.Timeout, TimeoutError)
    assert issubclass(ferrymq.ConnectionError, ConnectionError)
    assert ferrymq.ConnectionError is not ConnectionError


def test_wrong_types_raise_type_error(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    producer = client.producer()
    topic = name("t")
    bad: Any = 42
    with pytest.raises(TypeError, match="body must be bytes or str, not int"):
        producer.send(topic, bad)
    with pytest.raises(TypeError, match="tag must be str"):
        producer.send(topic, b"x", tag=bad)
    with pytest.raises(TypeError, match="properties"):
        producer.send(topic, b"x", properties=["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="delay_level must be int"):
        producer.send(topic, b"x", delay_level="2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        producer.send(topic, b"x", colour="red")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        producer.send_batch(topic, b"not a list")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.simple_consumer(name("g"), topic).ack("receipt")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.push_consumer(name("g"), topic, listener=bad)
    with pytest.raises(TypeError, match="asyncio"):

        async def coroutine_listener(message: ferrymq.Message) -> None:
            pass

        client.push_consumer(name("g"), topic, listener=coroutine_listener)


def test_bad_values_raise_invalid_argument(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    producer = client.producer()
    topic = name("t")
    with pytest.raises(ferrymq.InvalidArgument) as bad_level:
        producer.send(topic, b"x", delay_level=99)
    assert bad_level.value.type == "urn:ferrymq:error:invalid-argument"
    assert bad_level.value.field is not None and bad_level.value.field.endswith("delay_level")
    with pytest.raises(ferrymq.InvalidArgument) as negative:
        producer.send(topic, b"x", delay_ms=-5)
    assert negative.value.field == "/delay_ms"
    with pytest.raises(ferrymq.InvalidArgument, match="at most one"):
        producer.send(topic, b"x", delay_ms=10, delay_level=1)
    with pytest.raises(ferrymq.InvalidArgument):
        producer.send("bad topic name!", b"x")
    with pytest.raises(ferrymq.InvalidArgument) as in_batch:
        producer.send_batch(topic, [b"ok", {"body": b"x", "colour": "red"}])  # type: ignore[list-item]
    assert in_batch.value.field == "/messages/1/colour"
    with pytest.raises(ferrymq.InvalidArgument):
        client.admin().create_topic(name("t"), queues=-1)
    with pytest.raises(ferrymq.InvalidArgument):
        client.admin().create_topic("%RETRY%mine")
    with pytest.raises(ferrymq.InvalidArgument):
        client.admin().reset_offsets(name("g"), topic)
    # Literal types reject these for a type checker; at run time they are InvalidArgument.
    sometimes: Any = "sometimes"
    random: Any = "random"
    with pytest.raises(ferrymq.InvalidArgument):
        client.push_consumer(name("g"), topic, mode=sometimes)
    with pytest.raises(ferrymq.InvalidArgument):
        client.push_consumer(name("g"), topic, strategy=random)
    with pytest.raises(ferrymq.InvalidArgument):
        client.simple_consumer(name("g"), topic).receive(max_messages=0)


def test_bad_filters_raise_invalid_argument_of_kind_invalid_filter(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic = name("t")
    with pytest.raises(ferrymq.InvalidArgument) as sql:
        client.simple_consumer(name("g"), topic, sql="price >")
    assert sql.value.type == "urn:ferrymq:error:invalid-filter" and sql.value.kind == "invalid-filter"
    with pytest.raises(ferrymq.InvalidArgument) as tag:
        client.push_consumer(name("g"), topic, filter="A ||")
    assert tag.value.type == "urn:ferrymq:error:invalid-filter"
    with pytest.raises(ferrymq.InvalidArgument):
        client.simple_consumer(name("g"), topic, filter="A", sql="a = 1")


def test_unknown_receipts(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic = name("t")
    client.producer().send(topic, b"x")
    mine = client.simple_consumer(name("g"), topic)
    other = client.simple_consumer(name("g"), topic)
    [message] = mine.receive(wait_ms=2000)
    # A well-formed receipt that this group does not hold.
    with pytest.raises(ferrymq.NotFound) as unknown:
        other.ack(message)
    assert unknown.value.type == "urn:ferrymq:error:not-found"
    mine.ack(message)
    with pytest.raises(ferrymq.Conflict):
        mine.ack(message)
    with pytest.raises(ferrymq.NotFound):
        mine.change_invisible_duration(message, 5000)
    # No receipt at all, and one the broker cannot parse.
    with pytest.raises(ferrymq.InvalidArgument):
        mine.ack(ferrymq.Message(b"hand made", topic=topic))
    with pytest.raises((ferrymq.InvalidArgument, ferrymq.NotFound)):
        mine.ack(ferrymq.Message(b"forged", topic=topic, receipt="not-a-receipt"))
    looked_up = client.admin().message(message.msg_id)
    with pytest.raises(ferrymq.InvalidArgument):
        looked_up.ack()


def test_missing_things_raise_not_found(client: ferrymq.Client, name: Callable[[str], str]) -> None:
    admin = client.admin()
    with pytest.raises(ferrymq.NotFound):
        admin.message("00000000000000000000000000000000")
    with pytest.raises(ferrymq.NotFound):
        admin.group(name("never-seen"))
    with pytest.raises(ferrymq.NotFound):
        admin.topic(name("nope"))
    with pytest.raises(ferrymq.NotFound):
        client.push_consumer(name("g"), name("nope")).start()
    topic = name("t")
    admin.create_topic(topic)
    with pytest.raises(ferrymq.Conflict):
        admin.create_topic(topic)


def test_push_consumer_lifecycle_errors(embedded: ferrymq.Client, name: Callable[[str], str]) -> None:
    topic = name("t")
    embedded.admin().create_topic(topic)
    consumer = embedded.push_consumer(name("g"), topic, listener=lambda m: None)
    consumer.start()
    with pytest.raises(ferrymq.Conflict):
        consumer.start()
    with pytest.raises(TypeError, match="listener"):
        next(iter(consumer))
    consumer.close()
    consumer.close()


def test_embedded_config_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ferrymq.InvalidArgument) as unknown:
        ferrymq.Client.embedded(tmp_path / "a", {"segment_bites": 1024})
    assert unknown.value.field == "/config/segment_bites"
    with pytest.raises(ferrymq.InvalidArgument):
        ferrymq.Client.embedded(tmp_path / "b", {"delay_levels": "1s fast"})
    with pytest.raises(ferrymq.InvalidArgument):
        ferrymq.Client.embedded(tmp_path / "c", {"disk_max_used_ratio": 2})
    # A duration needs a unit, in a list too (an int used to mean milliseconds here only).
    with pytest.raises(ferrymq.InvalidArgument, match="needs a unit"):
        ferrymq.Client.embedded(tmp_path / "e", {"delay_levels": [100, "1s"]})
    with ferrymq.Client.embedded(
        tmp_path / "d", {"delay_levels": ["100ms", "1s"], "flush": "sync", "auto_create_topics": False, "default_queues": 2}
    ) as client:
        with pytest.raises(ferrymq.NotFound):
            client.producer().send("not-created", b"x")
        assert client.admin().create_topic("made").queues == 8
    assert "delay_levels" in ferrymq.BROKER_SETTINGS


def test_one_directory_one_broker(tmp_path: Path) -> None:
    with ferrymq.Client.embedded(tmp_path / "data"):
        with pytest.raises(ferrymq.FerryError):
            ferrymq.Client.embedded(tmp_path / "data")


def test_connection_errors() -> None:
    with pytest.raises(ferrymq.ConnectionError) as refused:
        ferrymq.Client.connect("http://127.0.0.1:9", request_timeout_ms=2000)
    assert refused.value.type == "urn:ferrymq:error:connection"
    with pytest.raises(ferrymq.InvalidArgument):
        ferrymq.Client.connect("ftp://example")


def test_closed_client_refuses_calls(tmp_path: Path) -> None:
    client = ferrymq.Client.embedded(tmp_path / "data")
    producer = client.producer()
    client.close()
    client.close()
    with pytest.raises(ferrymq.FerryError):
        producer.send("t", b"x")


def test_transient_errors_are_typed_and_retriable() -> None:
    for cls, kind in [(ferrymq.Unavailable, "unavailable"), (ferrymq.InsufficientStorage, "insufficient-storage")]:
        assert issubclass(cls, ferrymq.FerryError)
        assert cls.type == f"urn:ferrymq:error:{kind}"
    retriable = {ferrymq.Timeout, ferrymq.ConnectionError, ferrymq.Unavailable, ferrymq.InsufficientStorage}
    for cls in [
        ferrymq.FerryError,
        ferrymq.InvalidArgument,
        ferrymq.NotFound,
        ferrymq.Conflict,
        ferrymq.Unauthorized,
        ferrymq.Forbidden,
        *retriable,
    ]:
        assert cls("x").retriable is (cls in retriable), cls


def test_a_full_disk_raises_insufficient_storage(tmp_path: Path, name: Callable[[str], str]) -> None:
    # Any disk is fuller than this ratio: every write is refused, as on a nearly full disk.
    with ferrymq.Client.embedded(tmp_path / "data", {"disk_max_used_ratio": 1e-9}) as client:
        with pytest.raises(ferrymq.InsufficientStorage) as raised:
            client.producer().send(name("t"), b"x")
        assert raised.value.retriable
        assert raised.value.kind == "insufficient-storage"
