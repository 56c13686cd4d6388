"""Consumer lag, read from the real Kafka: the figures themselves, a Kafka that is away,
and the gauge on a running service's metrics port."""

import asyncio
import re
import urllib.request
import uuid
from typing import Any

import grpc
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from conftest import Infra, free_port, start_group_at_end
from prometheus_client import REGISTRY
from test_intake_kafka import INTAKE_TOPIC, find_by_request_id, request_json

from helpdesk.api.tickets.v1 import tickets_pb2_grpc
from helpdesk.core.consumer_lag import ConsumerLag

SLA_TOPIC = "helpdesk.sla.events.v1"


def lag_sample(group: str, topic: str, partition: int) -> float | None:
    return REGISTRY.get_sample_value(
        "helpdesk_kafka_consumer_lag",
        {"group": group, "topic": topic, "partition": str(partition)},
    )


async def _produce_to(bootstrap: str, topic: str, partition: int, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for n in range(count):
            await producer.send_and_wait(topic, f"m{n}".encode(), partition=partition)
    finally:
        await producer.stop()


async def _commit(bootstrap: str, group: str, offsets: dict[TopicPartition, int]) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()


async def test_lag_counts_what_the_group_has_not_committed(infra: Infra) -> None:
    topic = f"it.lag.{uuid.uuid4().hex[:8]}"
    group = f"it-lag-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(start_group_at_end, infra.kafka, group, topic)  # creates 3 partitions
    await _produce_to(infra.kafka, topic, 0, 5)
    await _produce_to(infra.kafka, topic, 1, 2)
    watch = ConsumerLag(infra.kafka, {group: [topic]})
    try:
        lags = await watch.refresh()
        assert [(lag.partition, lag.lag) for lag in lags] == [(0, 5), (1, 2), (2, 0)]
        assert lag_sample(group, topic, 0) == 5
        assert lag_sample(group, topic, 1) == 2
        assert lag_sample(group, topic, 2) == 0

        # The group reads three of partition 0's five and all of partition 1.
        await _commit(
            infra.kafka, group, {TopicPartition(topic, 0): 3, TopicPartition(topic, 1): 2}
        )
        lags = await watch.refresh()
        assert [(lag.partition, lag.lag) for lag in lags] == [(0, 2), (1, 0), (2, 0)]
        assert lag_sample(group, topic, 0) == 2
    finally:
        await watch.stop()


async def test_kafka_away_is_retried_not_fatal() -> None:
    watch = ConsumerLag(f"127.0.0.1:{free_port()}", {"it-lag-away": ["any"]}, interval_seconds=0.2)
    with pytest.raises(Exception, match=r"(?i)connect"):
        await watch.refresh()
    watch.start()
    await asyncio.sleep(1.5)  # several failed rounds
    assert watch.running, "the lag watch must keep trying while Kafka is away"
    await watch.stop()
    assert not watch.running


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


LAG_LINE = re.compile(
    r'^helpdesk_kafka_consumer_lag\{group="(?P<group>[^"]+)",partition="(?P<partition>\d+)",'
    r'topic="(?P<topic>[^"]+)"\} (?P<value>[0-9.e+-]+)$',
    re.MULTILINE,
)


async def test_intake_exports_the_lag_of_its_group(infra: Infra, make_intake: Any) -> None:
    metrics_port = free_port()
    group = f"it-intake-{uuid.uuid4().hex[:8]}"
    for topic in (INTAKE_TOPIC, SLA_TOPIC):
        await asyncio.to_thread(start_group_at_end, infra.kafka, group, topic)
    service = make_intake(
        group=group,
        HELPDESK_METRICS_PORT=str(metrics_port),
        HELPDESK_KAFKA_LAG_INTERVAL_SECONDS="0.5",
    )
    service.start()
    await service.wait_serving()

    request_ids = [f"it-lag-{uuid.uuid4()}" for _ in range(4)]
    producer = AIOKafkaProducer(bootstrap_servers=infra.kafka, acks="all")
    await producer.start()
    try:
        for request_id in request_ids:
            await producer.send_and_wait(
                INTAKE_TOPIC,
                request_json(request_id),
                key=request_id.encode(),
                headers=[("content-type", b"application/json")],
            )
    finally:
        await producer.stop()
    async with grpc.aio.insecure_channel(service.target) as channel:
        tickets = tickets_pb2_grpc.TicketServiceStub(channel)
        for request_id in request_ids:
            await find_by_request_id(tickets, request_id)

    # Consumed and committed: within a few refreshes every partition of both topics the
    # group reads is shown, none behind.
    seen: dict[tuple[str, int], float] = {}
    for _ in range(40):
        text = await asyncio.to_thread(scrape, metrics_port)
        seen = {
            (m["topic"], int(m["partition"])): float(m["value"])
            for m in LAG_LINE.finditer(text)
            if m["group"] == group
        }
        if len(seen) == 6 and not any(seen.values()):
            break
        await asyncio.sleep(0.25)
    assert sorted(seen) == [(t, p) for t in (INTAKE_TOPIC, SLA_TOPIC) for p in range(3)], seen
    assert all(value == 0 for value in seen.values()), seen
