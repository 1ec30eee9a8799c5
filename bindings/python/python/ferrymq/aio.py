"""The asyncio API: the classes of :mod:`ferrymq` with coroutine methods.

>>> import asyncio, tempfile
>>> from ferrymq.aio import Client
>>> async def main(data: str) -> None:
...     async with Client.embedded(data) as client:
...         await client.producer().send("orders", b"hello")
...         async with client.push_consumer("billing", "orders") as consumer:
...             async for message in consumer:
...                 print(message.body)
...                 await message.ack()
...                 break
>>> with tempfile.TemporaryDirectory() as data:
...     asyncio.run(main(data))
b'hello'

Everything that waits is a coroutine: each call runs on the module's Rust runtime and
resolves an asyncio future of the running loop, so the loop never blocks. That includes
``await message.ack()`` and ``await message.nack()`` on the :class:`Message` objects this
module hands out, and ``Client.embedded(...)`` / ``Client.connect(...)``, which may be awaited
or entered directly: ``async with Client.embedded(path) as client``. Listeners, checkers,
local transactions and rebalance hooks may be plain functions (run on a worker thread) or
``async def`` functions (run on the loop that created the consumer or producer).
"""

from __future__ import annotations

import asyncio
import inspect
import os
from types import TracebackType
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Generator,
    Iterable,
    List,
    Mapping,
    Optional,
    Tuple,
    Type,
    TypeVar,
    Union,
)

from ferrymq import _native
from ferrymq._errors import FerryError
from ferrymq._native import Group, SendResult, Topic
from ferrymq._types import (
    BatchEntry,
    Body,
    ConnectionState,
    Mode,
    Perm,
    PropertyValue,
    ResetTo,
    Start,
    Strategy,
    Verdict,
)

__all__ = ["Admin", "Client", "Message", "Producer", "PushConsumer", "SimpleConsumer", "TransactionProducer"]

_A = TypeVar("_A")

#: A listener: returns to ack, raises to nack; sync or async.
Listener = Union[Callable[["Message"], Any], Callable[["Message"], Awaitable[Any]]]
#: A checker or local transaction: returns a verdict; sync or async.
Decider = Union[Callable[["Message"], Verdict], Callable[["Message"], Awaitable[Verdict]]]
#: A rebalance hook: called with ``(topic, queue_id)`` pairs; sync or async.
QueuesHook = Union[Callable[[List[Tuple[str, int]]], Any], Callable[[List[Tuple[str, int]]], Awaitable[Any]]]
#: Told of each failed ``send_oneway``; sync or async.
ErrorHook = Union[Callable[[FerryError], Any], Callable[[FerryError], Awaitable[Any]]]
#: Told of each change of a remote client's connection, ``(state, error)``; sync or async.
ConnectionHook = Union[
    Callable[[ConnectionState, Optional[str]], Any], Callable[[ConnectionState, Optional[str]], Awaitable[Any]]
]


def _on_worker(function: Callable[[_A], Any]) -> Callable[[_A], Any]:
    """A callable the native side can run on a worker thread: an ``async def`` function is
    run on the running loop (so call this from a coroutine) and waited for; a plain one is
    returned as it is."""
    if not inspect.iscoroutinefunction(function):
        return function
    coroutine_function = function
    loop = asyncio.get_running_loop()

    def call(argument: _A) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine_function(argument), loop).result()

    return call


def _connection_hook(function: ConnectionHook) -> Callable[[ConnectionState, Optional[str]], Any]:
    """`on_connection` for the native side's worker thread: an ``async def`` one is run on the
    running loop (so call this from a coroutine) and waited for."""
    if not inspect.iscoroutinefunction(function):
        return function
    coroutine_function = function
    loop = asyncio.get_running_loop()

    def call(state: ConnectionState, error: Optional[str]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine_function(state, error), loop).result()

    return call


def _with_message(function: Callable[[Message], _A]) -> Callable[[_native.Message], _A]:
    """`function` taking the native module's messages, as this module's :class:`Message`."""

    def call(native: _native.Message) -> _A:
        return function(Message(native))

    return call


class Message:
    """A message as delivered or looked up (see :class:`ferrymq.Message`), whose ``ack()``
    and ``nack()`` are coroutines."""

    __slots__ = ("_native",)

    def __init__(self, native: _native.Message) -> None:
        self._native = native

    @property
    def blocking(self) -> _native.Message:
        """The same message with the blocking API (``ferrymq.Message``)."""
        return self._native

    @property
    def msg_id(self) -> str:
        """The message id, stable across delay and retry redelivery."""
        return self._native.msg_id

    @property
    def topic(self) -> str:
        """The topic (the real one, also for retried and dead-lettered messages)."""
        return self._native.topic

    @property
    def queue_id(self) -> Optional[int]:
        """The queue it is stored in; None until a delayed or half message is stored."""
        return self._native.queue_id

    @property
    def queue_offset(self) -> Optional[int]:
        """Its offset in the queue; None until a delayed or half message is stored."""
        return self._native.queue_offset

    @property
    def commit_offset(self) -> Optional[int]:
        """Its position in the commit log; None until a delayed or half message is stored."""
        return self._native.commit_offset

    @property
    def body(self) -> bytes:
        """The body."""
        return self._native.body

    @property
    def text(self) -> Optional[str]:
        """The body as text when it is valid UTF-8, else None."""
        return self._native.text

    @property
    def body_base64(self) -> str:
        """The body in base64."""
        return self._native.body_base64

    @property
    def tag(self) -> Optional[str]:
        """The tag, or None."""
        return self._native.tag

    @property
    def keys(self) -> List[str]:
        """The keys (indexed for lookup)."""
        return self._native.keys

    @property
    def properties(self) -> Dict[str, str]:
        """The user properties."""
        return self._native.properties

    @property
    def born_ts(self) -> int:
        """When the producer sent it, epoch ms."""
        return self._native.born_ts

    @property
    def store_ts(self) -> int:
        """When the broker stored it, epoch ms."""
        return self._native.store_ts

    @property
    def reconsume_times(self) -> int:
        """How many times it was redelivered after a failure or an expired lease."""
        return self._native.reconsume_times

    @property
    def receipt(self) -> Optional[str]:
        """The receipt handle of a received message, else None."""
        return self._native.receipt

    @property
    def state(self) -> str:
        """``"stored"``, ``"scheduled"`` (delayed) or ``"half"`` (transactional)."""
        return self._native.state

    async def ack(self) -> None:
        """Marks the message consumed (a push consumer's or a simple consumer's)."""
        await self._native._ack_async()

    async def nack(self, delay_ms: Optional[int] = None) -> None:
        """Marks the message failed: it comes back after `delay_ms`, by default after the
        retry delay."""
        await self._native._nack_async(delay_ms)

    def __repr__(self) -> str:
        return repr(self._native)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Message) and other._native is self._native

    def __hash__(self) -> int:
        return id(self._native)


def _messages(natives: List[_native.Message]) -> List[Message]:
    return [Message(m) for m in natives]


def _native_message(message: Union[Message, _native.Message]) -> _native.Message:
    return message._native if isinstance(message, Message) else message


def _attrs(
    tag: Optional[str],
    keys: Union[str, Iterable[str], None],
    properties: Optional[Mapping[str, PropertyValue]],
    delay_level: Optional[int],
    delay_ms: Optional[int],
    deliver_at: Optional[int],
    sharding_key: Optional[str],
    idempotency_key: Optional[str],
) -> Dict[str, Any]:
    given = {
        "tag": tag,
        "keys": keys,
        "properties": properties,
        "delay_level": delay_level,
        "delay_ms": delay_ms,
        "deliver_at": deliver_at,
        "sharding_key": sharding_key,
        "idempotency_key": idempotency_key,
    }
    return {name: value for name, value in given.items() if value is not None}


class Producer:
    """Publishes messages (see :class:`ferrymq.Producer`). A failed ``send_oneway()`` goes to
    ``on_error`` when set, else ``await flush()`` raises it."""

    def __init__(self, native: _native.Producer) -> None:
        self._native = native

    @property
    def group(self) -> Optional[str]:
        """The producer group, or None."""
        return self._native.group

    @property
    def on_error(self) -> Optional[Callable[[FerryError], Any]]:
        """Called with the :class:`~ferrymq.FerryError` of each failed ``send_oneway()``
        (sync, or ``async def`` run on the loop that set it); None: ``flush()`` raises them."""
        return self._native.on_error

    @on_error.setter
    def on_error(self, callback: Optional[ErrorHook]) -> None:
        self._native.on_error = None if callback is None else _on_worker(callback)

    async def flush(self) -> None:
        """Waits until every ``send_oneway()`` finished; raises the first failure that no
        ``on_error`` took since the last flush."""
        await self._native._flush_async()

    async def send(
        self,
        topic: str,
        body: Body,
        *,
        tag: Optional[str] = None,
        keys: Union[str, Iterable[str], None] = None,
        properties: Optional[Mapping[str, PropertyValue]] = None,
        delay_level: Optional[int] = None,
        delay_ms: Optional[int] = None,
        deliver_at: Optional[int] = None,
        sharding_key: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> SendResult:
        """Publishes one message; returns once it is stored (or scheduled)."""
        attrs = _attrs(tag, keys, properties, delay_level, delay_ms, deliver_at, sharding_key, idempotency_key)
        return await self._native._send_async(topic, body, **attrs)

    async def send_batch(self, topic: str, messages: Iterable[BatchEntry]) -> List[SendResult]:
        """Publishes a batch atomically; results come in order."""
        return await self._native._send_batch_async(topic, list(messages))

    def send_oneway(
        self,
        topic: str,
        body: Body,
        *,
        tag: Optional[str] = None,
        keys: Union[str, Iterable[str], None] = None,
        properties: Optional[Mapping[str, PropertyValue]] = None,
        delay_level: Optional[int] = None,
        delay_ms: Optional[int] = None,
        deliver_at: Optional[int] = None,
        sharding_key: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> None:
        """Publishes one message in the background without waiting; a failure goes to
        ``on_error``, or is raised by the next ``flush()``."""
        attrs = _attrs(tag, keys, properties, delay_level, delay_ms, deliver_at, sharding_key, idempotency_key)
        self._native.send_oneway(topic, body, **attrs)


class TransactionProducer:
    """Sends transactional messages (see :class:`ferrymq.TransactionProducer`)."""

    def __init__(self, native: _native.TransactionProducer) -> None:
        self._native = native

    @property
    def group(self) -> str:
        """The producer group."""
        return self._native.group

    async def send_in_transaction(
        self,
        topic: str,
        body: Body,
        local_transaction: Decider,
        *,
        tag: Optional[str] = None,
        keys: Union[str, Iterable[str], None] = None,
        properties: Optional[Mapping[str, PropertyValue]] = None,
        sharding_key: Optional[str] = None,
        idempotency_key: Optional[str] = None,
    ) -> SendResult:
        """Sends a half message, runs `local_transaction(message)` (sync or async) and ends
        the transaction as it answers; returns the result with its ``transaction_id``."""
        attrs = _attrs(tag, keys, properties, None, None, None, sharding_key, idempotency_key)
        decide = _with_message(_on_worker(local_transaction))
        return await self._native._send_in_transaction_async(topic, body, decide, **attrs)

    async def end_transaction(self, transaction_id: str, status: Verdict) -> None:
        """Ends a transaction explicitly with ``"commit"`` or ``"rollback"``."""
        await self._native._end_transaction_async(transaction_id, status)

    def close(self) -> None:
        """Stops answering check-backs."""
        self._native.close()

    async def __aenter__(self) -> TransactionProducer:
        """Returns the producer."""
        return self

    async def __aexit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        self.close()


class PushConsumer:
    """A member of a consumer group (see :class:`ferrymq.PushConsumer`); without a listener,
    an async iterator of messages: ``async for message in consumer``."""

    def __init__(self, native: _native.PushConsumer) -> None:
        self._native = native

    @property
    def group(self) -> str:
        """The consumer group."""
        return self._native.group

    @property
    def topic(self) -> str:
        """The topic."""
        return self._native.topic

    @property
    def client_id(self) -> str:
        """This member's client id."""
        return self._native.client_id

    def assignment(self) -> List[Tuple[str, int]]:
        """The queues this member consumes now, as ``(topic, queue_id)`` pairs."""
        return self._native.assignment()

    async def start(self) -> None:
        """Joins the group and starts consuming."""
        await self._native._start_async()

    async def close(self) -> None:
        """Leaves the group cleanly (offsets committed); ends iteration. Returns after
        ``on_revoke`` was told of the queues it gave up."""
        await self._native._close_async()

    async def recv(self, timeout_ms: Optional[int] = None) -> Optional[Message]:
        """The next message, or None on timeout or once closed."""
        native = await self._native._recv_async(timeout_ms)
        return None if native is None else Message(native)

    def __aiter__(self) -> PushConsumer:
        """The consumer itself: ``async for message in consumer``."""
        return self

    async def __anext__(self) -> Message:
        """The next message; ends once the consumer is closed."""
        return Message(await self._native._next_async())

    async def __aenter__(self) -> PushConsumer:
        """Starts the consumer."""
        await self.start()
        return self

    async def __aexit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        """Closes it."""
        await self.close()


class SimpleConsumer:
    """A lease-based consumer (see :class:`ferrymq.SimpleConsumer`)."""

    def __init__(self, native: _native.SimpleConsumer) -> None:
        self._native = native

    @property
    def group(self) -> str:
        """The consumer group."""
        return self._native.group

    @property
    def topic(self) -> str:
        """The topic."""
        return self._native.topic

    async def receive(self, max_messages: int = 16, wait_ms: int = 0, invisible_ms: int = 30_000) -> List[Message]:
        """Receives up to `max_messages`, waiting up to `wait_ms` when none is available."""
        return _messages(await self._native._receive_async(max_messages, wait_ms, invisible_ms))

    async def ack(self, message: Message) -> None:
        """Marks a received message done (the same as ``await message.ack()``)."""
        await self._native._ack_async(_native_message(message))

    async def nack(self, message: Message, delay_ms: Optional[int] = None) -> None:
        """Gives a received message back, to return after `delay_ms` (default: retry delay)."""
        await self._native._nack_async(_native_message(message), delay_ms)

    async def change_invisible_duration(self, message: Message, ms: int) -> None:
        """Sets a received message's remaining invisibility; it gets a new receipt."""
        await self._native._change_invisible_duration_async(_native_message(message), ms)

    async def close(self) -> None:
        """Leaves the group; unacknowledged messages go back at once."""
        await self._native._close_async()

    async def __aenter__(self) -> SimpleConsumer:
        """Returns the consumer."""
        return self

    async def __aexit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        """Closes it."""
        await self.close()


class Admin:
    """Administration (see :class:`ferrymq.Admin`)."""

    def __init__(self, native: _native.Admin) -> None:
        self._native = native

    async def create_topic(self, name: str, queues: int = 8, perm: Perm = "rw") -> Topic:
        """Creates a topic."""
        return await self._native._create_topic_async(name, queues, perm)

    async def topics(self) -> List[Topic]:
        """Every topic."""
        return await self._native._topics_async()

    async def topic(self, name: str) -> Topic:
        """One topic with the offsets of its queues."""
        return await self._native._topic_async(name)

    async def delete_topic(self, name: str) -> None:
        """Deletes a topic."""
        await self._native._delete_topic_async(name)

    async def group(self, name: str) -> Group:
        """A group: members, subscriptions, offsets and lag."""
        return await self._native._group_async(name)

    async def put_group(self, name: str, max_reconsume_times: Optional[int] = None) -> Group:
        """Creates a group or sets its `max_reconsume_times`."""
        return await self._native._put_group_async(name, max_reconsume_times)

    async def reset_offsets(
        self, group: str, topic: str, timestamp: Optional[int] = None, to: Optional[ResetTo] = None
    ) -> List[Tuple[int, int]]:
        """Moves a group's offsets to a timestamp, or ``to="earliest"`` / ``"latest"``."""
        return await self._native._reset_offsets_async(group, topic, timestamp, to)

    async def dlq(self, group: str) -> List[Message]:
        """The group's dead letters, oldest first."""
        return _messages(await self._native._dlq_async(group))

    async def resend_dlq(self, group: str, msg_id: str) -> SendResult:
        """Moves a dead letter back to its topic."""
        return await self._native._resend_dlq_async(group, msg_id)

    async def find_messages(
        self,
        topic: str,
        key: Optional[str] = None,
        from_ts: Optional[int] = None,
        to_ts: Optional[int] = None,
        limit: Optional[int] = None,
    ) -> List[Message]:
        """Messages of a topic by key and/or store time, oldest first."""
        return _messages(await self._native._find_messages_async(topic, key, from_ts, to_ts, limit))

    async def message(self, msg_id: str) -> Message:
        """One message by id."""
        return Message(await self._native._message_async(msg_id))


class _Opening(Awaitable["Client"]):
    """A client being opened: ``await`` it for the :class:`Client`, or use it directly as an
    async context manager (``async with Client.embedded(path) as client``), which closes the
    client on the way out."""

    __slots__ = ("_open", "_client")

    def __init__(self, open: Callable[[], Awaitable[_native.Client]]) -> None:
        self._open = open
        self._client: Optional[Client] = None

    async def _opened(self) -> Client:
        if self._client is None:
            self._client = Client(await self._open())
        return self._client

    def __await__(self) -> Generator[Any, None, Client]:
        """Opens the client."""
        return self._opened().__await__()

    async def __aenter__(self) -> Client:
        """Opens the client."""
        return await self._opened()

    async def __aexit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        """Closes the client."""
        if self._client is not None:
            await self._client.close()


class Client:
    """A connection to one broker, for asyncio: ``Client.embedded(path)`` or
    ``Client.connect(url)``, either awaited (``client = await Client.embedded(path)``) or
    entered directly (``async with Client.embedded(path) as client``); an async context
    manager."""

    def __init__(self, native: _native.Client) -> None:
        self._native = native

    @classmethod
    def connect(
        cls,
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
    ) -> _Opening:
        """Connects to a gateway at `url` (see :meth:`ferrymq.Client.connect`); await the
        result, or ``async with`` it. `on_connection(state, error)` (sync or async; an
        ``async def`` one runs on the loop that connected) is told ``("dropped", message)``
        when the connection breaks and ``("restored", None)`` when the client, reconnecting
        with backoff, is back; sends made meanwhile wait up to `request_timeout_ms`."""

        def open() -> Awaitable[_native.Client]:
            hook = None if on_connection is None else _connection_hook(on_connection)
            return _native.Client._connect_async(
                url,
                token,
                request_timeout_ms=request_timeout_ms,
                lease_ttl_ms=lease_ttl_ms,
                orderly_suspend_ms=orderly_suspend_ms,
                max_reconsume_times=max_reconsume_times,
                ca_file=ca_file,
                reconnect_backoff_ms=reconnect_backoff_ms,
                reconnect_backoff_max_ms=reconnect_backoff_max_ms,
                on_connection=hook,
            )

        return _Opening(open)

    @classmethod
    def embedded(cls, path: Union[str, os.PathLike[str]], config: Optional[Dict[str, Any]] = None) -> _Opening:
        """Opens a broker in this process on `path` (see :meth:`ferrymq.Client.embedded`);
        await the result, or ``async with`` it."""
        return _Opening(lambda: _native.Client._embedded_async(path, config))

    @property
    def blocking(self) -> _native.Client:
        """The same client with the blocking API."""
        return self._native

    @property
    def transport(self) -> str:
        """``"embedded"`` or ``"remote"``."""
        return self._native.transport

    def producer(self, group: Optional[str] = None, *, on_error: Optional[ErrorHook] = None) -> Producer:
        """A producer, optionally in a producer group; `on_error(error)` (sync or async) is
        told of each failed ``send_oneway()``, else ``await producer.flush()`` raises them."""
        callback = None if on_error is None else _on_worker(on_error)
        return Producer(self._native.producer(group, on_error=callback))

    async def transaction_producer(self, group: str, checker: Decider) -> TransactionProducer:
        """A transactional producer of `group`; `checker(message)` (sync or async) answers
        check-backs with ``"commit"``, ``"rollback"`` or ``"unknown"``."""
        decide = _with_message(_on_worker(checker))
        return TransactionProducer(await self._native._transaction_producer_async(group, decide))

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
        listener: Optional[Listener] = None,
        start: Optional[Start] = None,
        consume_workers: int = 16,
        rebalance_interval_ms: int = 20_000,
        queue_rooms: Optional[Dict[int, str]] = None,
        on_assign: Optional[QueuesHook] = None,
        on_revoke: Optional[QueuesHook] = None,
    ) -> PushConsumer:
        """A push consumer (see :meth:`ferrymq.Client.push_consumer`); an ``async def``
        listener, `on_assign` or `on_revoke` runs on the running loop (create the consumer
        from a coroutine then)."""
        callback = None if listener is None else _with_message(_on_worker(listener))
        native = self._native.push_consumer(
            group,
            topic,
            filter=filter,
            sql=sql,
            mode=mode,
            orderly=orderly,
            strategy=strategy,
            listener=callback,
            start=start,
            consume_workers=consume_workers,
            rebalance_interval_ms=rebalance_interval_ms,
            queue_rooms=queue_rooms,
            on_assign=None if on_assign is None else _on_worker(on_assign),
            on_revoke=None if on_revoke is None else _on_worker(on_revoke),
        )
        return PushConsumer(native)

    def simple_consumer(self, group: str, topic: str, *, filter: str = "*", sql: Optional[str] = None) -> SimpleConsumer:
        """A lease-based consumer of `topic` in `group`."""
        return SimpleConsumer(self._native.simple_consumer(group, topic, filter=filter, sql=sql))

    def admin(self) -> Admin:
        """Administration: topics, groups, offsets, dead letters, lookups."""
        return Admin(self._native.admin())

    async def close(self) -> None:
        """Closes the push consumers made by this client, then the connection. Idempotent.
        After it, every call of the client and of what it made raises ``ConnectionError``."""
        await self._native._close_async()

    async def __aenter__(self) -> Client:
        """Returns the client."""
        return self

    async def __aexit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        """Closes it."""
        await self.close()
