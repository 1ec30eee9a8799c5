"""The asyncio API: the classes of :mod:`ferrymq` with coroutine methods.

>>> import asyncio, tempfile
>>> from ferrymq.aio import Client
>>> async def main() -> None:
...     async with await Client.embedded(tempfile.mkdtemp()) as client:
...         await client.producer().send("orders", b"hello")
...         async with client.push_consumer("billing", "orders") as consumer:
...             async for message in consumer:
...                 print(message.body)
...                 message.ack()
...                 break
>>> asyncio.run(main())
b'hello'

Each call runs on the module's Rust runtime and resolves an asyncio future of the running
loop. Listeners, checkers and local transactions may be plain functions (run on a worker
thread) or ``async def`` functions (run on the loop that created the consumer or producer).
A push consumer's ``message.ack()`` never blocks; for a simple consumer's messages use
``await consumer.ack(message)``.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from types import TracebackType
from typing import Any, Awaitable, Callable, Dict, Iterable, List, Mapping, Optional, Tuple, Type, TypeVar, Union

from ferrymq import _native
from ferrymq._native import Group, Message, SendResult, Topic
from ferrymq._types import BatchEntry, Body, PropertyValue, Verdict

__all__ = ["Admin", "Client", "Producer", "PushConsumer", "SimpleConsumer", "TransactionProducer"]

_R = TypeVar("_R")

#: A listener: returns to ack, raises to nack; sync or async.
Listener = Union[Callable[[Message], Any], Callable[[Message], Awaitable[Any]]]
#: A checker or local transaction: returns a verdict; sync or async.
Decider = Union[Callable[[Message], Verdict], Callable[[Message], Awaitable[Verdict]]]


def _on_worker(function: Callable[[Message], Any]) -> Callable[[Message], Any]:
    """A callable the native side can run on a worker thread: an ``async def`` function is
    run on the running loop (so call this from a coroutine) and waited for; a plain one is
    returned as it is."""
    if not inspect.iscoroutinefunction(function):
        return function
    coroutine_function = function
    loop = asyncio.get_running_loop()

    def call(message: Message) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine_function(message), loop).result()

    return call


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
    """Publishes messages (see :class:`ferrymq.Producer`)."""

    def __init__(self, native: _native.Producer) -> None:
        self._native = native

    @property
    def group(self) -> Optional[str]:
        """The producer group, or None."""
        return self._native.group

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
        return await self._native.send_async(topic, body, **attrs)

    async def send_batch(self, topic: str, messages: Iterable[BatchEntry]) -> List[SendResult]:
        """Publishes a batch atomically; results come in order."""
        return await self._native.send_batch_async(topic, list(messages))

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
        """Publishes one message in the background without waiting; failures are logged."""
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
        decide = _on_worker(local_transaction)
        return await self._native.send_in_transaction_async(topic, body, decide, **attrs)

    async def end_transaction(self, transaction_id: str, status: Verdict) -> None:
        """Ends a transaction explicitly with ``"commit"`` or ``"rollback"``."""
        await self._native.end_transaction_async(transaction_id, status)

    def close(self) -> None:
        """Stops answering check-backs."""
        self._native.close()

    async def __aenter__(self) -> TransactionProducer:
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
        await self._native.start_async()

    async def close(self) -> None:
        """Leaves the group cleanly (offsets committed); ends iteration."""
        await self._native.close_async()

    async def recv(self, timeout_ms: Optional[int] = None) -> Optional[Message]:
        """The next message, or None on timeout or once closed."""
        return await self._native.recv_async(timeout_ms)

    def __aiter__(self) -> PushConsumer:
        return self

    async def __anext__(self) -> Message:
        return await self._native.__anext__()

    async def __aenter__(self) -> PushConsumer:
        await self.start()
        return self

    async def __aexit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
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
        return await self._native.receive_async(max_messages, wait_ms, invisible_ms)

    async def ack(self, message: Message) -> None:
        """Marks a received message done."""
        await self._native.ack_async(message)

    async def nack(self, message: Message, delay_ms: Optional[int] = None) -> None:
        """Gives a received message back, to return after `delay_ms` (default: retry delay)."""
        await self._native.nack_async(message, delay_ms)

    async def change_invisible_duration(self, message: Message, ms: int) -> None:
        """Sets a received message's remaining invisibility; it gets a new receipt."""
        await self._native.change_invisible_duration_async(message, ms)

    async def close(self) -> None:
        """Leaves the group; unacknowledged messages go back at once."""
        await self._native.close_async()

    async def __aenter__(self) -> SimpleConsumer:
        return self

    async def __aexit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        await self.close()


class Admin:
    """Administration (see :class:`ferrymq.Admin`)."""

    def __init__(self, native: _native.Admin) -> None:
        self._native = native

    async def create_topic(self, name: str, queues: int = 8, perm: str = "rw") -> Topic:
        """Creates a topic."""
        return await self._native.create_topic_async(name, queues, perm)

    async def topics(self) -> List[Topic]:
        """Every topic."""
        return await self._native.topics_async()

    async def topic(self, name: str) -> Topic:
        """One topic with the offsets of its queues."""
        return await self._native.topic_async(name)

    async def delete_topic(self, name: str) -> None:
        """Deletes a topic."""
        await self._native.delete_topic_async(name)

    async def group(self, name: str) -> Group:
        """A group: members, subscriptions, offsets and lag."""
        return await self._native.group_async(name)

    async def put_group(self, name: str, max_reconsume_times: Optional[int] = None) -> Group:
        """Creates a group or sets its `max_reconsume_times`."""
        return await self._native.put_group_async(name, max_reconsume_times)

    async def reset_offsets(
        self, group: str, topic: str, timestamp: Optional[int] = None, to: Optional[str] = None
    ) -> List[Tuple[int, int]]:
        """Moves a group's offsets to a timestamp, or ``to="earliest"`` / ``"latest"``."""
        return await self._native.reset_offsets_async(group, topic, timestamp, to)

    async def dlq(self, group: str) -> List[Message]:
        """The group's dead letters, oldest first."""
        return await self._native.dlq_async(group)

    async def resend_dlq(self, group: str, msg_id: str) -> SendResult:
        """Moves a dead letter back to its topic."""
        return await self._native.resend_dlq_async(group, msg_id)

    async def find_messages(
        self,
        topic: str,
        key: Optional[str] = None,
        from_ts: Optional[int] = None,
        to_ts: Optional[int] = None,
        limit: Optional[int] = None,
    ) -> List[Message]:
        """Messages of a topic by key and/or store time, oldest first."""
        return await self._native.find_messages_async(topic, key, from_ts, to_ts, limit)

    async def message(self, msg_id: str) -> Message:
        """One message by id."""
        return await self._native.message_async(msg_id)


class Client:
    """A connection to one broker, for asyncio: ``await Client.embedded(path)`` or
    ``await Client.connect(url)``; an async context manager."""

    def __init__(self, native: _native.Client) -> None:
        self._native = native

    @classmethod
    async def connect(
        cls,
        url: str,
        token: Optional[str] = None,
        *,
        request_timeout_ms: int = 30_000,
        lease_ttl_ms: Optional[int] = None,
        orderly_suspend_ms: Optional[int] = None,
        max_reconsume_times: Optional[int] = None,
        ca_file: Optional[Union[str, os.PathLike[str]]] = None,
    ) -> Client:
        """Connects to a gateway at `url` (see :meth:`ferrymq.Client.connect`)."""
        native = await _native.Client.connect_async(
            url,
            token,
            request_timeout_ms=request_timeout_ms,
            lease_ttl_ms=lease_ttl_ms,
            orderly_suspend_ms=orderly_suspend_ms,
            max_reconsume_times=max_reconsume_times,
            ca_file=ca_file,
        )
        return cls(native)

    @classmethod
    async def embedded(cls, path: Union[str, os.PathLike[str]], config: Optional[Dict[str, Any]] = None) -> Client:
        """Opens a broker in this process on `path` (see :meth:`ferrymq.Client.embedded`)."""
        return cls(await _native.Client.embedded_async(path, config))

    @property
    def blocking(self) -> _native.Client:
        """The same client with the blocking API."""
        return self._native

    @property
    def transport(self) -> str:
        """``"embedded"`` or ``"remote"``."""
        return self._native.transport

    def producer(self, group: Optional[str] = None) -> Producer:
        """A producer, optionally in a producer group."""
        return Producer(self._native.producer(group))

    async def transaction_producer(self, group: str, checker: Decider) -> TransactionProducer:
        """A transactional producer of `group`; `checker(message)` (sync or async) answers
        check-backs with ``"commit"``, ``"rollback"`` or ``"unknown"``."""
        decide = _on_worker(checker)
        return TransactionProducer(await self._native.transaction_producer_async(group, decide))

    def push_consumer(
        self,
        group: str,
        topic: str,
        *,
        filter: str = "*",
        sql: Optional[str] = None,
        mode: str = "clustering",
        orderly: bool = False,
        strategy: str = "average",
        listener: Optional[Listener] = None,
        start: Union[str, int, None] = None,
        consume_workers: int = 16,
        rebalance_interval_ms: int = 20_000,
        queue_rooms: Optional[Dict[int, str]] = None,
    ) -> PushConsumer:
        """A push consumer (see :meth:`ferrymq.Client.push_consumer`); an ``async def``
        listener runs on the running loop (create the consumer from a coroutine then)."""
        callback = None if listener is None else _on_worker(listener)
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
        )
        return PushConsumer(native)

    def simple_consumer(self, group: str, topic: str, *, filter: str = "*", sql: Optional[str] = None) -> SimpleConsumer:
        """A lease-based consumer of `topic` in `group`."""
        return SimpleConsumer(self._native.simple_consumer(group, topic, filter=filter, sql=sql))

    def admin(self) -> Admin:
        """Administration: topics, groups, offsets, dead letters, lookups."""
        return Admin(self._native.admin())

    async def close(self) -> None:
        """Closes the push consumers made by this client, then the connection."""
        await self._native.close_async()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], tb: Optional[TracebackType]
    ) -> None:
        await self.close()
