"""FerryMQ's Python SDK: a thin layer over the Rust client of ``ferrymq-core``.

One :class:`Client` per process and broker: ``Client.embedded(path)`` runs a broker in this
process on a local directory, ``Client.connect("http://host:port")`` talks to a running
``ferrymq serve``. From it come the :class:`Producer`, the :class:`TransactionProducer`, the
:class:`PushConsumer` (a group member with a listener, or an iterator), the
:class:`SimpleConsumer` (receive, ack, nack) and the :class:`Admin`.

This module is the blocking API; :mod:`ferrymq.aio` has the same classes for asyncio. Calls
release the GIL while Rust works, on one runtime owned by the module. Errors are
:class:`FerryError` and its subclasses, each with the REST problem ``type``.

>>> import tempfile, ferrymq
>>> with tempfile.TemporaryDirectory() as data, ferrymq.Client.embedded(data) as client:
...     sent = client.producer().send("orders", b"hello", tag="new")
...     consumer = client.simple_consumer("billing", "orders")
...     [m.body for m in consumer.receive(wait_ms=1000)]
[b'hello']
"""

from __future__ import annotations

import atexit

from ferrymq._errors import (
    Conflict,
    ConnectionError,
    FerryError,
    Forbidden,
    InsufficientStorage,
    InvalidArgument,
    NotFound,
    Timeout,
    Unauthorized,
    Unavailable,
)
from ferrymq._types import (
    BatchEntry,
    Body,
    ConnectionHook,
    ConnectionState,
    MessageSpec,
    Mode,
    Perm,
    PropertyValue,
    ResetTo,
    Start,
    Strategy,
    Verdict,
)
from ferrymq._native import (
    BROKER_SETTINGS,
    Admin,
    Client,
    Group,
    GroupOffset,
    Member,
    Message,
    Producer,
    PushConsumer,
    QueueOffsets,
    SendResult,
    SimpleConsumer,
    Subscription,
    Topic,
    TransactionProducer,
    _at_exit,
)

__all__ = [
    "BROKER_SETTINGS",
    "Admin",
    "BatchEntry",
    "Body",
    "Client",
    "Conflict",
    "ConnectionError",
    "ConnectionHook",
    "ConnectionState",
    "FerryError",
    "Forbidden",
    "Group",
    "GroupOffset",
    "InsufficientStorage",
    "InvalidArgument",
    "Member",
    "Message",
    "MessageSpec",
    "Mode",
    "NotFound",
    "Perm",
    "Producer",
    "PropertyValue",
    "PushConsumer",
    "QueueOffsets",
    "ResetTo",
    "SendResult",
    "SimpleConsumer",
    "Start",
    "Strategy",
    "Subscription",
    "Timeout",
    "Topic",
    "TransactionProducer",
    "Unauthorized",
    "Unavailable",
    "Verdict",
]

# Clients still open at exit are closed, so that push consumers commit their offsets and an
# embedded broker shuts down cleanly; then the runtime's threads stop calling into Python
# before the interpreter finalizes.
atexit.register(_at_exit)
