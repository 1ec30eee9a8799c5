"""The same SDK with asyncio: `ferrymq.aio` has the same classes with coroutine methods,
and a push consumer without a listener is an async iterator."""

from __future__ import annotations

import asyncio
import tempfile

import ferrymq
from ferrymq import aio


async def main() -> None:
    with tempfile.TemporaryDirectory() as data:
        async with aio.Client.embedded(data) as client:
            producer = client.producer()
            for n in range(3):
                await producer.send("events", f"event {n}", sharding_key="device-1")

            async with client.push_consumer("dashboard", "events", orderly=True) as consumer:
                received = 0
                async for message in consumer:
                    print(f"{message.text} (queue {message.queue_id}, offset {message.queue_offset})")
                    await message.ack()
                    received += 1
                    if received == 3:
                        break

            async def checker(message: aio.Message) -> ferrymq.Verdict:
                return "rollback"

            async def save_to_database(message: aio.Message) -> ferrymq.Verdict:
                await asyncio.sleep(0)
                return "commit"

            payments = await client.transaction_producer("payments", checker)
            result = await payments.send_in_transaction("events", b"paid", save_to_database)
            print(f"committed {result.msg_id}")
            payments.close()


if __name__ == "__main__":
    asyncio.run(main())
