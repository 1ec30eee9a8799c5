"""The exception hierarchy of the SDK: one class per error kind of the Rust client.

Every exception carries ``type``, the same URN as the REST problem type
(``urn:ferrymq:error:<kind>``), ``kind`` (the ``<kind>`` part), ``detail`` (the message) and,
for invalid arguments, ``field`` (a JSON-Pointer-like path such as ``/delay_level``), and
``retriable``: whether the same call may succeed if simply tried again later (a timeout, a broken
connection, an unavailable broker, a full disk), as opposed to one that will fail the same way.
:func:`_from_kind` is the one place where kinds become classes.
"""

from __future__ import annotations

import builtins
from typing import Dict, Optional, Type

_PREFIX = "urn:ferrymq:error:"


class FerryError(Exception):
    """Base class of every FerryMQ error."""

    #: The problem type of this class's usual kind; instances carry their exact kind's.
    type: str = _PREFIX + "internal"
    kind: str = "internal"
    #: True when trying the same call again later may succeed (the condition is transient).
    retriable: bool = False

    def __init__(self, detail: str = "", *, kind: Optional[str] = None, field: Optional[str] = None) -> None:
        super().__init__(detail)
        self.detail: str = detail
        if kind is not None:
            self.kind = kind
            self.type = _PREFIX + kind
        self.field: Optional[str] = field


class InvalidArgument(FerryError, ValueError):
    """A bad argument: a malformed name, an out-of-range number, a filter that does not parse
    (kind ``invalid-filter``), a body over the size limit (``payload-too-large``)."""

    type = _PREFIX + "invalid-argument"
    kind = "invalid-argument"


class NotFound(FerryError, LookupError):
    """Something named does not exist: a topic, group, message, transaction or receipt."""

    type = _PREFIX + "not-found"
    kind = "not-found"


class Conflict(FerryError):
    """The call conflicts with the current state: the topic exists, the receipt was acked or
    expired, the transaction ended, an idempotency key was reused (``idempotency-conflict``)."""

    type = _PREFIX + "conflict"
    kind = "conflict"


class Timeout(FerryError, TimeoutError):
    """The call did not complete in time."""

    type = _PREFIX + "timeout"
    kind = "timeout"
    retriable = True


class ConnectionError(FerryError, builtins.ConnectionError):
    """The server could not be reached or the connection broke."""

    type = _PREFIX + "connection"
    kind = "connection"
    retriable = True


class Unavailable(FerryError):
    """The broker cannot serve the call right now (starting, shutting down, overloaded); try
    again later."""

    type = _PREFIX + "unavailable"
    kind = "unavailable"
    retriable = True


class InsufficientStorage(FerryError):
    """The broker's disk is nearly full (over ``disk_max_used_ratio``): writes are refused
    until space is freed; what was stored stays readable."""

    type = _PREFIX + "insufficient-storage"
    kind = "insufficient-storage"
    retriable = True


class Unauthorized(FerryError, PermissionError):
    """Missing or invalid credentials (the server has an ``auth_file``)."""

    type = _PREFIX + "unauthorized"
    kind = "unauthorized"


class Forbidden(FerryError, PermissionError):
    """The token, or the topic's permission, does not allow this."""

    type = _PREFIX + "forbidden"
    kind = "forbidden"


_CLASSES: Dict[str, Type[FerryError]] = {
    "invalid-argument": InvalidArgument,
    "invalid-filter": InvalidArgument,
    "payload-too-large": InvalidArgument,
    "not-found": NotFound,
    "conflict": Conflict,
    "idempotency-conflict": Conflict,
    "timeout": Timeout,
    "connection": ConnectionError,
    "unauthorized": Unauthorized,
    "forbidden": Forbidden,
    "unavailable": Unavailable,
    "insufficient-storage": InsufficientStorage,
    # "internal" stays FerryError.
}


def _from_kind(kind: str, detail: str, field: Optional[str] = None) -> FerryError:
    """The exception for an error of this kind (called by the native module)."""
    return _CLASSES.get(kind, FerryError)(detail, kind=kind, field=field)
