"""Typed shapes shared by the blocking and asyncio APIs."""

from __future__ import annotations

from typing import Dict, List, Literal, TypedDict, Union

#: What a local transaction or a transaction checker returns.
Verdict = Literal["commit", "rollback", "unknown"]

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
