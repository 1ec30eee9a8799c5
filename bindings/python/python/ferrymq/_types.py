"""Typed shapes shared by the blocking and asyncio APIs."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Literal, Optional, TypedDict, Union

#: What a local transaction or a transaction checker returns.
Verdict = Literal["commit", "rollback", "unknown"]

#: How a consumer group shares messages: each to one member, or each to every member.
Mode = Literal["clustering", "broadcasting"]

#: How a clustering group's queues are shared among its members.
Strategy = Literal["average", "average_by_circle", "consistent_hash", "machine_room"]

#: A topic's permission: publish and consume, consume only, publish only.
Perm = Literal["rw", "r", "w"]

#: Where a group with no committed offset on a queue begins: the first retained message, the
#: next one stored, or the first stored at or after an epoch-ms timestamp.
Start = Union[Literal["first", "last"], int]

#: Where ``Admin.reset_offsets(..., to=...)`` moves a group's offsets.
ResetTo = Literal["earliest", "latest"]

#: A change of a remote client's connection: it broke (the client reconnects with backoff), or
#: it is back (producer groups and push consumers registered again).
ConnectionState = Literal["dropped", "restored"]

#: ``on_connection(state, error)`` of ``Client.connect``: told ``("dropped", message)`` when
#: the connection breaks and ``("restored", None)`` when it is back.
ConnectionHook = Callable[[ConnectionState, Optional[str]], Any]

#: A property value: str, or an int, float or bool written as text.
PropertyValue = Union[str, int, float, bool]

#: A message body: bytes, or str sent as UTF-8.
Body = Union[bytes, bytearray, str]


class _MessageBody(TypedDict):
    body: Body


class MessageSpec(_MessageBody, total=False):
    """One entry of ``Producer.send_batch``: a body with the attributes ``send()`` takes."""

    tag: str
    keys: Union[str, List[str]]
    properties: Dict[str, PropertyValue]
    delay_level: int
    delay_ms: int
    deliver_at: int
    sharding_key: str
    idempotency_key: str


#: One entry of a batch: a plain body, or a body with attributes.
BatchEntry = Union[Body, MessageSpec]
