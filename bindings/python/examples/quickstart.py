"""FerryMQ from Python in one file: an embedded broker in a temporary directory, a producer,
a push consumer with a listener, a simple consumer, a transaction and a lookup.

Run it with `python examples/quickstart.py`; point `Client.connect("http://127.0.0.1:8080")`
at a running `ferrymq serve` instead of `Client.embedded(...)` to use a server.
"""

from __future__ import annotations

import tempfile
import threading

import ferrymq


def main() -> None:
    with tempfile.TemporaryDirectory() as data, ferrymq.Client.embedded(data) as client:
        # Publish: a body (bytes or str) and optional attributes.
        producer = client.producer()
        sent = producer.send("orders", b"order 42 created", tag="created", keys=["order-42"])
        producer.send("orders", "order 42 paid", tag="paid", properties={"amount": 99})
        print(f"sent {sent.msg_id} to queue {sent.queue_id} at offset {sent.queue_offset}")

        # Push consumption: a listener per message; returning acks, raising nacks (retry).
        done = threading.Event()
        paid: list[str] = []

        def on_paid(message: ferrymq.Message) -> None:
            paid.append(message.text or "")
            done.set()

        with client.push_consumer("billing", "orders", filter="paid", listener=on_paid):
            done.wait(10)
        print(f"billing saw: {paid}")

        # Simple consumption: receive, then ack each message by its receipt.
        audit = client.simple_consumer("audit", "orders", sql="amount > 50")
        for message in audit.receive(max_messages=10, wait_ms=1000):
            print(f"audit saw: {message.text} (tag {message.tag})")
            audit.ack(message)

        # A transaction: the message becomes visible only if the local transaction commits.
        def checker(message: ferrymq.Message) -> ferrymq.Verdict:
            return "commit"

        def charge_card(message: ferrymq.Message) -> ferrymq.Verdict:
            return "commit"

        with client.transaction_producer("payments", checker) as payments:
            receipt = payments.send_in_transaction("orders", b"order 42 charged", charge_card, tag="charged")
        print(f"transaction {receipt.transaction_id} committed")

        # Lookups and administration.
        admin = client.admin()
        [created] = admin.find_messages("orders", key="order-42")
        print(f"looked up by key: {created.text}")
        print(f"topics: {[topic.name for topic in admin.topics()]}")
        try:
            admin.message("00000000000000000000000000000000")
        except ferrymq.NotFound as error:
            print(f"errors are typed: {type(error).__name__} ({error.type})")


if __name__ == "__main__":
    main()
