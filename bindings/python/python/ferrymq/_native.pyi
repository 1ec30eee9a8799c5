"""Type stubs of the native module ``ferrymq._native`` (import from :mod:`ferrymq`).

The classes here are the blocking API that :mod:`ferrymq` exports as they are. Their
``_<name>_async`` methods are private twins returning asyncio futures, for :mod:`ferrymq.aio`
only; use the coroutines of that module instead.
"""

import asyncio
import os
from types import TracebackType
from typing import Any, Callable, Dict, Final, Iterable, List, Mapping, Optional, Tuple, Type, Union, final

from ferrymq._errors import FerryError
from ferrymq._types import (
    BatchEntry,
    Body,
    ConnectionHook,
    Mode,
    Perm,
    PropertyValue,
    ResetTo,
    Start,
    Strategy,
    Verdict,
)

__all__ = [
    "Admin",
    "BROKER_SETTINGS",
    "Client",
    "Group",
    "GroupOffset",
    "Member",
    "Message",
    "Producer",
    "PushConsumer",
    "QueueOffsets",
    "SendResult",
    "SimpleConsumer",
    "Subscription",
    "Topic",
    "TransactionProducer",
    "_at_exit",
]

#: The names of the broker settings ``Client.embedded(path, config)`` accepts.
BROKER_SETTINGS: Final[List[str]]

def _at_exit(timeout_ms: int = 10_000) -> None:
    """Closes every client still open and stops calls into Python (run at interpreter exit)."""

@final
class Message:
    """A message as delivered or looked up: the contract's "Message out" fields. A message
    from a consumer is settled with ``ack()`` or ``nack()``."""

    def __new__(
        cls,
        body: Optional[Body] = None,
        *,
        topic: str = "",
        msg_id: str = "",
        tag: Optional[str] = None,
        keys: Union[str, Iterable[str], None] = None,
        properties: Optional[Mapping[str, PropertyValue]] = None,
        receipt: Optional[str] = None,
        reconsume_times: int = 0,
        born_ts: int = 0,
        store_ts: int = 0,
    ) -> Message:
        """A message built by hand (for tests of listeners); it cannot be acked."""
    @property
    def msg_id(self) -> str:
        """The message id, stable across delay and retry redelivery."""
    @property
    def topic(self) -> str:
        """The topic (the real one, also for retried and dead-lettered messages)."""
    @property
    def queue_id(self) -> Optional[int]:
        """Its queue in the topic; None while scheduled or half."""
    @property
    def queue_offset(self) -> Optional[int]:
        """Its offset in that queue; None while scheduled or half."""
    @property
    def commit_offset(self) -> Optional[int]:
        """Its offset in the commit log; None while scheduled or half."""
    @property
    def body(self) -> bytes:
        """The body bytes."""
    @property
    def text(self) -> Optional[str]:
        """The body decoded as UTF-8, or None when it is not valid UTF-8."""
    @property
    def body_base64(self) -> str:
        """The body in standard base64."""
    @property
    def tag(self) -> Optional[str]:
        """The tag, or None."""
    @property
    def keys(self) -> List[str]:
        """The keys (indexed for lookup)."""
    @property
    def properties(self) -> Dict[str, str]:
        """The user properties."""
    @property
    def born_ts(self) -> int:
        """Creation time at the producer, epoch milliseconds."""
    @property
    def store_ts(self) -> int:
        """Time the broker stored it, epoch milliseconds."""
    @property
    def reconsume_times(self) -> int:
        """How many times it was redelivered after a failure."""
    @property
    def receipt(self) -> Optional[str]:
        """The receipt handle when it was received for a group, else None."""
    @property
    def state(self) -> str:
        """``"stored"``, ``"scheduled"`` (delayed) or ``"half"`` (transactional)."""
    def ack(self) -> None:
        """Marks the message consumed (a push consumer's or a simple consumer's)."""
    def nack(self, delay_ms: Optional[int] = None) -> None:
        """Marks the message failed: it is redelivered after `delay_ms`, by default after the
        retry delay (in place for orderly and broadcasting consumers)."""
    def _ack_async(self) -> asyncio.Future[None]:
        """``ack()`` for :mod:`ferrymq.aio` (internal)."""
    def _nack_async(self, delay_ms: Optional[int] = None) -> asyncio.Future[None]:
        """``nack()`` for :mod:`ferrymq.aio` (internal)."""

@final
class SendResult:
    """Where a published message landed."""

    @property
    def msg_id(self) -> str:
        """The message id."""
    @property
    def queue_id(self) -> Optional[int]:
        """Its queue; None for a delayed or transactional message not yet stored."""
    @property
    def queue_offset(self) -> Optional[int]:
        """Its offset in the queue; None for a delayed or transactional message."""
    @property
    def transaction_id(self) -> Optional[str]:
        """The transaction id of a transactional send, else None."""

@final
class QueueOffsets:
    """The offsets of one queue: `min` is the lowest retained, `max` the next to be written."""

    @property
    def queue_id(self) -> int:
        """Queue id."""
    @property
    def min(self) -> int:
        """Lowest retained offset."""
    @property
    def max(self) -> int:
        """Offset the next message will get."""

@final
class Topic:
    """A topic: name, queue count, permission and (from ``Admin.topic()``) queue offsets."""

    @property
    def name(self) -> str:
        """Name."""
    @property
    def queues(self) -> int:
        """Number of queues."""
    @property
    def perm(self) -> Perm:
        """Permission: ``"rw"``, ``"r"`` or ``"w"``."""
    @property
    def queue_offsets(self) -> Optional[List[QueueOffsets]]:
        """Offsets per queue, from ``Admin.topic()``; None in listings."""

@final
class Subscription:
    """A subscription of a group: a topic with a tag `filter` or an `sql` filter, and a mode."""

    @property
    def topic(self) -> str:
        """Topic."""
    @property
    def filter(self) -> Optional[str]:
        """Tag expression, when the filter is one."""
    @property
    def sql(self) -> Optional[str]:
        """SQL92 expression, when the filter is one."""
    @property
    def mode(self) -> Mode:
        """``"clustering"`` or ``"broadcasting"``."""

@final
class Member:
    """A live member of a group."""

    @property
    def client_id(self) -> str:
        """Client id, unique within the group."""
    @property
    def transport(self) -> str:
        """``"ws"``, ``"rest"`` or ``"native"``."""
    @property
    def since(self) -> int:
        """When it joined, epoch ms."""

@final
class GroupOffset:
    """A group's progress on one queue: ``lag = max - committed``."""

    @property
    def topic(self) -> str:
        """Topic."""
    @property
    def queue_id(self) -> int:
        """Queue."""
    @property
    def committed(self) -> int:
        """First offset not yet consumed."""
    @property
    def max(self) -> int:
        """Offset the next message will get."""
    @property
    def lag(self) -> int:
        """``max - committed``."""

@final
class Group:
    """A consumer group: its settings, subscriptions, live members and offsets."""

    @property
    def group(self) -> str:
        """Name."""
    @property
    def max_reconsume_times(self) -> int:
        """Redeliveries after which a failing message goes to the dead-letter queue."""
    @property
    def subscriptions(self) -> List[Subscription]:
        """Subscriptions."""
    @property
    def members(self) -> List[Member]:
        """Live members."""
    @property
    def offsets(self) -> List[GroupOffset]:
        """Committed offset, max and lag per queue."""

@final
class Producer:
    """Publishes messages to topics; a transient failure is retried twice before it raises.
    A failed ``send_oneway()`` goes to ``on_error``, or is raised by the next ``flush()``."""

    @property
    def group(self) -> Optional[str]:
        """The producer group, or None."""
    @property
    def on_error(self) -> Optional[Callable[[FerryError], Any]]:
        """Called with the error of each failed ``send_oneway()`` (on a worker thread); None
        keeps failures for ``flush()`` to raise. An exception in it is logged."""
    @on_error.setter
    def on_error(self, callback: Optional[Callable[[FerryError], Any]]) -> None:
        """Sets the callback (None: ``flush()`` raises failures)."""
    def send(
        self,
        topic: str,
        body: Body,
        *,
        tag: Optional[str] = ...,
        keys: Union[str, Iterable[str], None] = ...,
        properties: Optional[Mapping[str, PropertyValue]] = ...,
        delay_level: Optional[int] = ...,
        delay_ms: Optional[int] = ...,
        deliver_at: Optional[int] = ...,
        sharding_key: Optional[str] = ...,
        idempotency_key: Optional[str] = ...,
    ) -> SendResult:
        """Publishes one message and returns once it is stored (or scheduled, when delayed)."""
    def _send_async(
        self,
        topic: str,
        body: Body,
        *,
        tag: Optional[str] = ...,
        keys: Union[str, Iterable[str], None] = ...,
        properties: Optional[Mapping[str, PropertyValue]] = ...,
        delay_level: Optional[int] = ...,
        delay_ms: Optional[int] = ...,
        deliver_at: Optional[int] = ...,
        sharding_key: Optional[str] = ...,
        idempotency_key: Optional[str] = ...,
    ) -> asyncio.Future[SendResult]:
        """``send()`` for :mod:`ferrymq.aio` (internal)."""
    def send_batch(self, topic: str, messages: Iterable[BatchEntry]) -> List[SendResult]:
        """Publishes a batch atomically (all stored, or none); results come in order."""
    def _send_batch_async(self, topic: str, messages: Iterable[BatchEntry]) -> asyncio.Future[List[SendResult]]:
        """``send_batch()`` for :mod:`ferrymq.aio` (internal)."""
    def send_oneway(
        self,
        topic: str,
        body: Body,
        *,
        tag: Optional[str] = ...,
        keys: Union[str, Iterable[str], None] = ...,
        properties: Optional[Mapping[str, PropertyValue]] = ...,
        delay_level: Optional[int] = ...,
        delay_ms: Optional[int] = ...,
        deliver_at: Optional[int] = ...,
        sharding_key: Optional[str] = ...,
        idempotency_key: Optional[str] = ...,
    ) -> None:
        """Publishes one message without waiting; a failure goes to ``on_error``, or is
        raised by the next ``flush()``."""
    def flush(self) -> None:
        """Waits until every ``send_oneway()`` has finished, then raises the first failure
        that no ``on_error`` took since the last flush."""
    def _flush_async(self) -> asyncio.Future[None]:
        """``flush()`` for :mod:`ferrymq.aio` (internal)."""

@final
class TransactionProducer:
    """A producer of transactional messages for one producer group."""

    @property
    def group(self) -> str:
        """The producer group."""
    def send_in_transaction(
        self,
        topic: str,
        body: Body,
        local_transaction: Callable[[Message], Verdict],
        *,
        tag: Optional[str] = ...,
        keys: Union[str, Iterable[str], None] = ...,
        properties: Optional[Mapping[str, PropertyValue]] = ...,
        sharding_key: Optional[str] = ...,
        idempotency_key: Optional[str] = ...,
    ) -> SendResult:
        """Sends a half message, runs `local_transaction(message)` on a worker thread and
        commits or rolls back as it answers; returns the result with its ``transaction_id``."""
    def _send_in_transaction_async(
        self,
        topic: str,
        body: Body,
        local_transaction: Callable[[Message], Verdict],
        *,
        tag: Optional[str] = ...,
        keys: Union[str, Iterable[str], None] = ...,
        properties: Optional[Mapping[str, PropertyValue]] = ...,
        sharding_key: Optional[str] = ...,
        idempotency_key: Optional[str] = ...,
    ) -> asyncio.Future[SendResult]:
        """``send_in_transaction()`` for :mod:`ferrymq.aio` (internal)."""
    def end_transaction(self, transaction_id: str, status: Verdict) -> None:
        """Ends a transaction explicitly with ``"commit"`` or ``"rollback"``."""
    def _end_transaction_async(self, transaction_id: str, status: Verdict) -> asyncio.Future[None]:
        """``end_transaction()`` for :mod:`ferrymq.aio` (internal)."""
    def close(self) -> None:
        """Stops answering check-backs."""
    def __enter__(self) -> TransactionProducer:
        """Returns the producer."""
    def __exit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], tb: Optional[TracebackType]
    ) -> bool:
        """Closes the producer."""

@final
class PushConsumer:
    """A member of a consumer group on one topic; an iterator of messages when it has no
    listener. Nothing happens until ``start()``; ``close()`` leaves cleanly."""

    @property
    def group(self) -> str:
        """The consumer group."""
    @property
    def topic(self) -> str:
        """The topic."""
    @property
    def client_id(self) -> str:
        """This member's client id, unique in the group."""
    def assignment(self) -> List[Tuple[str, int]]:
        """The queues this member consumes now, as ``(topic, queue_id)`` pairs."""
    def start(self) -> None:
        """Joins the group and starts consuming. With ``start="last"`` it returns once the
        queues it took know where they start, so a message sent after ``start()`` returns is
        consumed."""
    def _start_async(self) -> asyncio.Future[None]:
        """``start()`` for :mod:`ferrymq.aio` (internal)."""
    def close(self) -> None:
        """Leaves the group cleanly (offsets committed, ``on_revoke`` told); ends iteration."""
    def _close_async(self) -> asyncio.Future[None]:
        """``close()`` for :mod:`ferrymq.aio` (internal)."""
    def recv(self, timeout_ms: Optional[int] = None) -> Optional[Message]:
        """The next message, waiting up to `timeout_ms` (forever when None); None on timeout
        or once closed."""
    def _recv_async(self, timeout_ms: Optional[int] = None) -> asyncio.Future[Optional[Message]]:
        """``recv()`` for :mod:`ferrymq.aio` (internal)."""
    def _next_async(self) -> asyncio.Future[Message]:
        """``__next__()`` for :mod:`ferrymq.aio` (internal)."""
    def __iter__(self) -> PushConsumer:
        """The consumer itself: ``for message in consumer``."""
    def __next__(self) -> Message:
        """The next message; ends once the consumer is closed."""
    def __enter__(self) -> PushConsumer:
        """Starts the consumer."""
    def __exit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], tb: Optional[TracebackType]
    ) -> bool:
        """Closes the consumer."""

@final
class SimpleConsumer:
    """A lease-based consumer of one topic for one group: ``receive()``, then ``ack()`` or
    ``nack()`` each message."""

    @property
    def group(self) -> str:
        """The consumer group."""
    @property
    def topic(self) -> str:
        """The topic."""
    def receive(self, max_messages: int = 16, wait_ms: int = 0, invisible_ms: int = 30_000) -> List[Message]:
        """Receives up to `max_messages`, waiting up to `wait_ms` when none is available; each
        stays invisible to the group for `invisible_ms` unless acked, nacked or changed."""
    def _receive_async(
        self, max_messages: int = 16, wait_ms: int = 0, invisible_ms: int = 30_000
    ) -> asyncio.Future[List[Message]]:
        """``receive()`` for :mod:`ferrymq.aio` (internal)."""
    def ack(self, message: Message) -> None:
        """Marks a received message done."""
    def _ack_async(self, message: Message) -> asyncio.Future[None]:
        """``ack()`` for :mod:`ferrymq.aio` (internal)."""
    def nack(self, message: Message, delay_ms: Optional[int] = None) -> None:
        """Gives a received message back, to return after `delay_ms` (default: retry delay)."""
    def _nack_async(self, message: Message, delay_ms: Optional[int] = None) -> asyncio.Future[None]:
        """``nack()`` for :mod:`ferrymq.aio` (internal)."""
    def change_invisible_duration(self, message: Message, ms: int) -> None:
        """Sets a received message's remaining invisibility; it gets a new receipt."""
    def _change_invisible_duration_async(self, message: Message, ms: int) -> asyncio.Future[None]:
        """``change_invisible_duration()`` for :mod:`ferrymq.aio` (internal)."""
    def close(self) -> None:
        """Leaves the group; unacknowledged messages go back at once."""
    def _close_async(self) -> asyncio.Future[None]:
        """``close()`` for :mod:`ferrymq.aio` (internal)."""
    def __enter__(self) -> SimpleConsumer:
        """Returns the consumer."""
    def __exit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], tb: Optional[TracebackType]
    ) -> bool:
        """Closes the consumer."""

@final
class Admin:
    """Administration of the broker behind a client: topics, groups, offsets, dead letters
    and message lookups."""

    def create_topic(self, name: str, queues: int = 8, perm: Perm = "rw") -> Topic:
        """Creates a topic; ``Conflict`` if it exists."""
    def _create_topic_async(self, name: str, queues: int = 8, perm: Perm = "rw") -> asyncio.Future[Topic]:
        """``create_topic()`` for :mod:`ferrymq.aio` (internal)."""
    def topics(self) -> List[Topic]:
        """Every topic."""
    def _topics_async(self) -> asyncio.Future[List[Topic]]:
        """``topics()`` for :mod:`ferrymq.aio` (internal)."""
    def topic(self, name: str) -> Topic:
        """One topic with the offsets of its queues; ``NotFound`` if it does not exist."""
    def _topic_async(self, name: str) -> asyncio.Future[Topic]:
        """``topic()`` for :mod:`ferrymq.aio` (internal)."""
    def delete_topic(self, name: str) -> None:
        """Deletes a topic: its queues and every group's offsets on it."""
    def _delete_topic_async(self, name: str) -> asyncio.Future[None]:
        """``delete_topic()`` for :mod:`ferrymq.aio` (internal)."""
    def group(self, name: str) -> Group:
        """A group: members, subscriptions, committed offsets and lag."""
    def _group_async(self, name: str) -> asyncio.Future[Group]:
        """``group()`` for :mod:`ferrymq.aio` (internal)."""
    def put_group(self, name: str, max_reconsume_times: Optional[int] = None) -> Group:
        """Creates a group, or sets its `max_reconsume_times`."""
    def _put_group_async(self, name: str, max_reconsume_times: Optional[int] = None) -> asyncio.Future[Group]:
        """``put_group()`` for :mod:`ferrymq.aio` (internal)."""
    def reset_offsets(
        self, group: str, topic: str, timestamp: Optional[int] = None, to: Optional[ResetTo] = None
    ) -> List[Tuple[int, int]]:
        """Moves a group's offsets to a timestamp (epoch ms), or ``to="earliest"`` /
        ``"latest"``; returns ``(queue_id, offset)`` per queue."""
    def _reset_offsets_async(
        self, group: str, topic: str, timestamp: Optional[int] = None, to: Optional[ResetTo] = None
    ) -> asyncio.Future[List[Tuple[int, int]]]:
        """``reset_offsets()`` for :mod:`ferrymq.aio` (internal)."""
    def dlq(self, group: str) -> List[Message]:
        """The group's dead letters, oldest first."""
    def _dlq_async(self, group: str) -> asyncio.Future[List[Message]]:
        """``dlq()`` for :mod:`ferrymq.aio` (internal)."""
    def resend_dlq(self, group: str, msg_id: str) -> SendResult:
        """Moves a dead letter back to its topic with ``reconsume_times`` 0."""
    def _resend_dlq_async(self, group: str, msg_id: str) -> asyncio.Future[SendResult]:
        """``resend_dlq()`` for :mod:`ferrymq.aio` (internal)."""
    def find_messages(
        self,
        topic: str,
        key: Optional[str] = None,
        from_ts: Optional[int] = None,
        to_ts: Optional[int] = None,
        limit: Optional[int] = None,
    ) -> List[Message]:
        """Messages of a topic by key and/or store time, oldest first."""
    def _find_messages_async(
        self,
        topic: str,
        key: Optional[str] = None,
        from_ts: Optional[int] = None,
        to_ts: Optional[int] = None,
        limit: Optional[int] = None,
    ) -> asyncio.Future[List[Message]]:
        """``find_messages()`` for :mod:`ferrymq.aio` (internal)."""
    def message(self, msg_id: str) -> Message:
        """One message by id: stored, scheduled or half; ``NotFound`` if unknown."""
    def _message_async(self, msg_id: str) -> asyncio.Future[Message]:
        """``message()`` for :mod:`ferrymq.aio` (internal)."""

@final
class Client:
    """A connection to one broker, embedded or remote; a context manager."""

    @staticmethod
    def connect(
        url: str,
        token: Optional[str] = None,
        *,
        request_timeout_ms: int = 30_000,
        lease_ttl_ms: Optional[int] = None,
        orderly_suspend_ms: Optional[int] = None,
        max_reconsume_times: Optional[int] = None,
        ca_file: Optional[Union[str, os.PathLike[str]]] = None,
        reconnect_backoff_ms: int = 100,
        reconnect_backoff_max_ms: int = 10_000,
        on_connection: Optional[ConnectionHook] = None,
    ) -> Client:
        """Connects to a gateway at `url` (``http://`` or ``https://``, verified against the
        system roots or `ca_file`), with a bearer `token` when the server has an auth file.

        When the connection drops, the client reconnects by itself with backoff (about
        `reconnect_backoff_ms` first, doubling up to `reconnect_backoff_max_ms`, jittered) and
        registers its producer groups and push consumers again; meanwhile a send waits up to
        `request_timeout_ms`, then raises :class:`Unavailable`. `on_connection(state, error)`
        is told ``("dropped", message)`` then ``("restored", None)``, on a worker thread, in
        order; an exception in it is logged."""
    @staticmethod
    def _connect_async(
        url: str,
        token: Optional[str] = None,
        *,
        request_timeout_ms: int = 30_000,
        lease_ttl_ms: Optional[int] = None,
        orderly_suspend_ms: Optional[int] = None,
        max_reconsume_times: Optional[int] = None,
        ca_file: Optional[Union[str, os.PathLike[str]]] = None,
        reconnect_backoff_ms: int = 100,
        reconnect_backoff_max_ms: int = 10_000,
        on_connection: Optional[ConnectionHook] = None,
    ) -> asyncio.Future[Client]:
        """``connect()`` for :mod:`ferrymq.aio` (internal)."""
    @staticmethod
    def embedded(path: Union[str, os.PathLike[str]], config: Optional[Dict[str, Any]] = None) -> Client:
        """Opens a broker in this process on the directory `path`; `config` takes the
        server's settings by name (see ``BROKER_SETTINGS``)."""
    @staticmethod
    def _embedded_async(
        path: Union[str, os.PathLike[str]], config: Optional[Dict[str, Any]] = None
    ) -> asyncio.Future[Client]:
        """``embedded()`` for :mod:`ferrymq.aio` (internal)."""
    @property
    def transport(self) -> str:
        """``"embedded"`` or ``"remote"``."""
    def producer(
        self, group: Optional[str] = None, *, on_error: Optional[Callable[[FerryError], Any]] = None
    ) -> Producer:
        """A producer, optionally in a producer group; `on_error(error)` is told of each
        failed ``send_oneway()``, else ``flush()`` raises them."""
    def transaction_producer(self, group: str, checker: Callable[[Message], Verdict]) -> TransactionProducer:
        """A transactional producer of `group`; `checker(message)` answers check-backs."""
    def _transaction_producer_async(
        self, group: str, checker: Callable[[Message], Verdict]
    ) -> asyncio.Future[TransactionProducer]:
        """``transaction_producer()`` for :mod:`ferrymq.aio` (internal)."""
    def push_consumer(
        self,
        group: str,
        topic: str,
        *,
        filter: str = "*",
        sql: Optional[str] = None,
        mode: Mode = "clustering",
        orderly: bool = False,
        strategy: Strategy = "average",
        listener: Optional[Callable[[Message], Any]] = None,
        start: Optional[Start] = None,
        consume_workers: int = 16,
        rebalance_interval_ms: int = 20_000,
        queue_rooms: Optional[Dict[int, str]] = None,
        on_assign: Optional[Callable[[List[Tuple[str, int]]], Any]] = None,
        on_revoke: Optional[Callable[[List[Tuple[str, int]]], Any]] = None,
    ) -> PushConsumer:
        """A push consumer: a member of `group` on `topic`. A `listener` returns to ack and
        raises to nack; without one, iterate. `on_revoke(queues)` / `on_assign(queues)` are
        told of each change of its ``(topic, queue_id)`` queues."""
    def simple_consumer(self, group: str, topic: str, *, filter: str = "*", sql: Optional[str] = None) -> SimpleConsumer:
        """A lease-based consumer of `topic` in `group`."""
    def admin(self) -> Admin:
        """Administration: topics, groups, offsets, dead letters, lookups."""
    def close(self) -> None:
        """Closes the push consumers made by this client, then the connection. Idempotent.
        After it, every call of the client and of what it made raises ``ConnectionError``."""
    def _close_async(self) -> asyncio.Future[None]:
        """``close()`` for :mod:`ferrymq.aio` (internal)."""
    def __enter__(self) -> Client:
        """Returns the client."""
    def __exit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], tb: Optional[TracebackType]
    ) -> bool:
        """Closes the client."""
