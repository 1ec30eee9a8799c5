"""Type stubs of the native module ``ferrymq._native`` (import from :mod:`ferrymq`)."""

import asyncio
import os
from types import TracebackType
from typing import Any, Callable, Dict, Final, Iterable, List, Mapping, Optional, Tuple, Type, Union, final

from ferrymq._types import BatchEntry, Body, PropertyValue, Verdict

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

BROKER_SETTINGS: Final[List[str]]

def _at_exit(timeout_ms: int = 10_000) -> None:
    """Closes every client still open and stops calls into Python (run at interpreter exit)."""

@final
class Message:
    """A message as delivered or looked up."""

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
    ) -> Message: ...
    @property
    def msg_id(self) -> str: ...
    @property
    def topic(self) -> str: ...
    @property
    def queue_id(self) -> Optional[int]: ...
    @property
    def queue_offset(self) -> Optional[int]: ...
    @property
    def commit_offset(self) -> Optional[int]: ...
    @property
    def body(self) -> bytes: ...
    @property
    def text(self) -> Optional[str]: ...
    @property
    def body_base64(self) -> str: ...
    @property
    def tag(self) -> Optional[str]: ...
    @property
    def keys(self) -> List[str]: ...
    @property
    def properties(self) -> Dict[str, str]: ...
    @property
    def born_ts(self) -> int: ...
    @property
    def store_ts(self) -> int: ...
    @property
    def reconsume_times(self) -> int: ...
    @property
    def receipt(self) -> Optional[str]: ...
    @property
    def state(self) -> str: ...
    def ack(self) -> None:
        """Marks the message consumed."""
    def nack(self, delay_ms: Optional[int] = None) -> None:
        """Marks the message failed, to be redelivered."""
    def ack_async(self) -> asyncio.Future[None]: ...
    def nack_async(self, delay_ms: Optional[int] = None) -> asyncio.Future[None]: ...

@final
class SendResult:
    """Where a published message landed."""

    @property
    def msg_id(self) -> str: ...
    @property
    def queue_id(self) -> Optional[int]: ...
    @property
    def queue_offset(self) -> Optional[int]: ...
    @property
    def transaction_id(self) -> Optional[str]: ...

@final
class QueueOffsets:
    """The offsets of one queue."""

    @property
    def queue_id(self) -> int: ...
    @property
    def min(self) -> int: ...
    @property
    def max(self) -> int: ...

@final
class Topic:
    """A topic."""

    @property
    def name(self) -> str: ...
    @property
    def queues(self) -> int: ...
    @property
    def perm(self) -> str: ...
    @property
    def queue_offsets(self) -> Optional[List[QueueOffsets]]: ...

@final
class Subscription:
    """A subscription of a group."""

    @property
    def topic(self) -> str: ...
    @property
    def filter(self) -> Optional[str]: ...
    @property
    def sql(self) -> Optional[str]: ...
    @property
    def mode(self) -> str: ...

@final
class Member:
    """A live member of a group."""

    @property
    def client_id(self) -> str: ...
    @property
    def transport(self) -> str: ...
    @property
    def since(self) -> int: ...

@final
class GroupOffset:
    """A group's progress on one queue."""

    @property
    def topic(self) -> str: ...
    @property
    def queue_id(self) -> int: ...
    @property
    def committed(self) -> int: ...
    @property
    def max(self) -> int: ...
    @property
    def lag(self) -> int: ...

@final
class Group:
    """A consumer group."""

    @property
    def group(self) -> str: ...
    @property
    def max_reconsume_times(self) -> int: ...
    @property
    def subscriptions(self) -> List[Subscription]: ...
    @property
    def members(self) -> List[Member]: ...
    @property
    def offsets(self) -> List[GroupOffset]: ...

@final
class Producer:
    """Publishes messages to topics."""

    @property
    def group(self) -> Optional[str]: ...
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
        """Publishes one message."""
    def send_async(
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
    ) -> asyncio.Future[SendResult]: ...
    def send_batch(self, topic: str, messages: Iterable[BatchEntry]) -> List[SendResult]:
        """Publishes a batch atomically."""
    def send_batch_async(self, topic: str, messages: Iterable[BatchEntry]) -> asyncio.Future[List[SendResult]]: ...
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
        """Publishes one message without waiting."""

@final
class TransactionProducer:
    """A producer of transactional messages for one producer group."""

    @property
    def group(self) -> str: ...
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
        """Sends a half message, runs the local transaction and ends the transaction."""
    def send_in_transaction_async(
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
    ) -> asyncio.Future[SendResult]: ...
    def end_transaction(self, transaction_id: str, status: Verdict) -> None: ...
    def end_transaction_async(self, transaction_id: str, status: Verdict) -> asyncio.Future[None]: ...
    def close(self) -> None: ...
    def __enter__(self) -> TransactionProducer: ...
    def __exit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], tb: Optional[TracebackType]
    ) -> bool: ...

@final
class PushConsumer:
    """A member of a consumer group on one topic; an iterator when it has no listener."""

    @property
    def group(self) -> str: ...
    @property
    def topic(self) -> str: ...
    @property
    def client_id(self) -> str: ...
    def assignment(self) -> List[Tuple[str, int]]: ...
    def start(self) -> None: ...
    def start_async(self) -> asyncio.Future[None]: ...
    def close(self) -> None: ...
    def close_async(self) -> asyncio.Future[None]: ...
    def recv(self, timeout_ms: Optional[int] = None) -> Optional[Message]: ...
    def recv_async(self, timeout_ms: Optional[int] = None) -> asyncio.Future[Optional[Message]]: ...
    def __iter__(self) -> PushConsumer: ...
    def __next__(self) -> Message: ...
    def __aiter__(self) -> PushConsumer: ...
    def __anext__(self) -> asyncio.Future[Message]: ...
    def __enter__(self) -> PushConsumer: ...
    def __exit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], tb: Optional[TracebackType]
    ) -> bool: ...

@final
class SimpleConsumer:
    """A lease-based consumer of one topic for one group."""

    @property
    def group(self) -> str: ...
    @property
    def topic(self) -> str: ...
    def receive(self, max_messages: int = 16, wait_ms: int = 0, invisible_ms: int = 30_000) -> List[Message]: ...
    def receive_async(
        self, max_messages: int = 16, wait_ms: int = 0, invisible_ms: int = 30_000
    ) -> asyncio.Future[List[Message]]: ...
    def ack(self, message: Message) -> None: ...
    def ack_async(self, message: Message) -> asyncio.Future[None]: ...
    def nack(self, message: Message, delay_ms: Optional[int] = None) -> None: ...
    def nack_async(self, message: Message, delay_ms: Optional[int] = None) -> asyncio.Future[None]: ...
    def change_invisible_duration(self, message: Message, ms: int) -> None: ...
    def change_invisible_duration_async(self, message: Message, ms: int) -> asyncio.Future[None]: ...
    def close(self) -> None: ...
    def close_async(self) -> asyncio.Future[None]: ...
    def __enter__(self) -> SimpleConsumer: ...
    def __exit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], tb: Optional[TracebackType]
    ) -> bool: ...

@final
class Admin:
    """Administration of the broker behind a client."""

    def create_topic(self, name: str, queues: int = 8, perm: str = "rw") -> Topic: ...
    def create_topic_async(self, name: str, queues: int = 8, perm: str = "rw") -> asyncio.Future[Topic]: ...
    def topics(self) -> List[Topic]: ...
    def topics_async(self) -> asyncio.Future[List[Topic]]: ...
    def topic(self, name: str) -> Topic: ...
    def topic_async(self, name: str) -> asyncio.Future[Topic]: ...
    def delete_topic(self, name: str) -> None: ...
    def delete_topic_async(self, name: str) -> asyncio.Future[None]: ...
    def group(self, name: str) -> Group: ...
    def group_async(self, name: str) -> asyncio.Future[Group]: ...
    def put_group(self, name: str, max_reconsume_times: Optional[int] = None) -> Group: ...
    def put_group_async(self, name: str, max_reconsume_times: Optional[int] = None) -> asyncio.Future[Group]: ...
    def reset_offsets(
        self, group: str, topic: str, timestamp: Optional[int] = None, to: Optional[str] = None
    ) -> List[Tuple[int, int]]: ...
    def reset_offsets_async(
        self, group: str, topic: str, timestamp: Optional[int] = None, to: Optional[str] = None
    ) -> asyncio.Future[List[Tuple[int, int]]]: ...
    def dlq(self, group: str) -> List[Message]: ...
    def dlq_async(self, group: str) -> asyncio.Future[List[Message]]: ...
    def resend_dlq(self, group: str, msg_id: str) -> SendResult: ...
    def resend_dlq_async(self, group: str, msg_id: str) -> asyncio.Future[SendResult]: ...
    def find_messages(
        self,
        topic: str,
        key: Optional[str] = None,
        from_ts: Optional[int] = None,
        to_ts: Optional[int] = None,
        limit: Optional[int] = None,
    ) -> List[Message]: ...
    def find_messages_async(
        self,
        topic: str,
        key: Optional[str] = None,
        from_ts: Optional[int] = None,
        to_ts: Optional[int] = None,
        limit: Optional[int] = None,
    ) -> asyncio.Future[List[Message]]: ...
    def message(self, msg_id: str) -> Message: ...
    def message_async(self, msg_id: str) -> asyncio.Future[Message]: ...

@final
class Client:
    """A connection to one broker, embedded or remote."""

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
    ) -> Client: ...
    @staticmethod
    def connect_async(
        url: str,
        token: Optional[str] = None,
        *,
        request_timeout_ms: int = 30_000,
        lease_ttl_ms: Optional[int] = None,
        orderly_suspend_ms: Optional[int] = None,
        max_reconsume_times: Optional[int] = None,
        ca_file: Optional[Union[str, os.PathLike[str]]] = None,
    ) -> asyncio.Future[Client]: ...
    @staticmethod
    def embedded(path: Union[str, os.PathLike[str]], config: Optional[Dict[str, Any]] = None) -> Client: ...
    @staticmethod
    def embedded_async(
        path: Union[str, os.PathLike[str]], config: Optional[Dict[str, Any]] = None
    ) -> asyncio.Future[Client]: ...
    @property
    def transport(self) -> str: ...
    def producer(self, group: Optional[str] = None) -> Producer: ...
    def transaction_producer(self, group: str, checker: Callable[[Message], Verdict]) -> TransactionProducer: ...
    def transaction_producer_async(
        self, group: str, checker: Callable[[Message], Verdict]
    ) -> asyncio.Future[TransactionProducer]: ...
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
        listener: Optional[Callable[[Message], Any]] = None,
        start: Union[str, int, None] = None,
        consume_workers: int = 16,
        rebalance_interval_ms: int = 20_000,
        queue_rooms: Optional[Dict[int, str]] = None,
    ) -> PushConsumer: ...
    def simple_consumer(self, group: str, topic: str, *, filter: str = "*", sql: Optional[str] = None) -> SimpleConsumer: ...
    def admin(self) -> Admin: ...
    def close(self) -> None: ...
    def close_async(self) -> asyncio.Future[None]: ...
    def __enter__(self) -> Client: ...
    def __exit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], tb: Optional[TracebackType]
    ) -> bool: ...
