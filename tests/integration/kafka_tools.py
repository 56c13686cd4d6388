"""Reading and writing the real Kafka topics from tests."""

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition


class TopicWatcher:
    """Reads a topic from its current end (no consumer group), for asserting what arrives."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
        self._consumer: AIOKafkaConsumer | None = None

    async def __aenter__(self) -> "TopicWatcher":
        consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, enable_auto_commit=False)
        await consumer.start()
        partitions: set[int] | None = None
        deadline = time.monotonic() + 30
        while not partitions and time.monotonic() < deadline:
            # Fresh metadata: the topic may have been created a moment ago.
            cluster = await consumer._client.fetch_all_metadata()
            partitions = cluster.partitions_for_topic(self._topic)
            if not partitions:
                await asyncio.sleep(0.5)
        assert partitions, f"topic {self._topic} does not exist"
        assigned = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_end(*assigned)
        for tp in assigned:  # resolve the end offsets now, before the action under test
            await consumer.position(tp)
        self._consumer = consumer
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._consumer:
            await self._consumer.stop()

    async def collect(
        self,
        predicate: Callable[[ConsumerRecord[Any, Any]], bool],
        *,
        count: int = 1,
        timeout: float = 30.0,
        settle: float = 0.0,
    ) -> list[ConsumerRecord[Any, Any]]:
        """Records matching the predicate; waits until `count` arrived (and `settle` more
        seconds, to catch unwanted extra ones) or the timeout."""
        assert self._consumer
        found: list[ConsumerRecord[Any, Any]] = []
        deadline = time.monotonic() + timeout
        settle_until: float | None = None
        while time.monotonic() < deadline:
            if settle_until is not None and time.monotonic() >= settle_until:
                break
            batches = await self._consumer.getmany(timeout_ms=200)
            for records in batches.values():
                found.extend(r for r in records if predicate(r))
            if len(found) >= count and settle_until is None:
                if not settle:
                    break
                settle_until = time.monotonic() + settle
        return found


def headers_of(record: ConsumerRecord[Any, Any]) -> dict[str, str]:
    return {k: v.decode() for k, v in (record.headers or ())}


async def produce(
    bootstrap: str,
    topic: str,
    messages: list[tuple[bytes | None, bytes, list[tuple[str, bytes]]]],
) -> None:
    """Publishes (key, value, headers) messages and waits for the broker's acks."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value, headers in messages:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()
