"""Consumer lag: how many messages each of the service's consumer groups has still to read.

Kafka knows both numbers: a partition's log end offset and the offset a group committed.
A background task asks for them every few seconds and sets the gauge
helpdesk_kafka_consumer_lag{group,topic,partition}. It reads the whole group's commits,
not only the partitions this replica holds, so every replica reports the same figures
(dashboards and alerts take the max across replicas) and a partition whose consumer died
is still seen falling behind.
"""

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka import KafkaBroker
from faststream.kafka.subscriber.usecase import LogicSubscriber

from helpdesk.core.kafka import KafkaSecurity, security_from
from helpdesk.core.logging import get_logger
from helpdesk.core.metrics import KAFKA_CONSUMER_LAG

if TYPE_CHECKING:
    from helpdesk.core.settings import ServiceSettings

log = get_logger(__name__)

# (topic, partition): aiokafka's TopicPartition is a named tuple of the same two fields.
Partition = tuple[str, int]


@dataclass(frozen=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    lag: int


def partition_lags(
    group: str,
    end: Mapping[Partition, int],
    beginning: Mapping[Partition, int],
    committed: Mapping[Partition, int],
) -> list[PartitionLag]:
    """Messages behind per partition: the log end offset minus where the group goes on from.

    The group goes on from its committed offset; with nothing committed (-1 or absent) or a
    commit older than the log's retention, from the log's first offset, as the consumers'
    auto_offset_reset=earliest does. Never negative (a topic recreated under a group)."""
    lags = []
    for (topic, partition), end_offset in sorted(end.items()):
        first = beginning.get((topic, partition), 0)
        resume = max(committed.get((topic, partition), -1), first)
        lags.append(PartitionLag(group, topic, partition, max(end_offset - resume, 0)))
    return lags


def consumer_groups(broker: KafkaBroker) -> dict[str, set[str]]:
    """The consumer groups of the broker's subscribers and the topics each reads."""
    groups: dict[str, set[str]] = {}
    for subscriber in broker.subscribers:
        # A subscriber without a group commits nothing: it has no lag to tell.
        if isinstance(subscriber, LogicSubscriber) and subscriber.group_id:
            groups.setdefault(subscriber.group_id, set()).update(subscriber.topic_names)
    return groups


@dataclass
class ConsumerLag:
    """Keeps helpdesk_kafka_consumer_lag up to date for the given groups until stopped."""

    bootstrap_servers: str
    groups: Mapping[str, Iterable[str]]
    security: KafkaSecurity = field(default_factory=KafkaSecurity)
    interval_seconds: float = 5.0
    _admin: AIOKafkaAdminClient | None = None
    _offsets: AIOKafkaConsumer | None = None
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="consumer_lag")

    @property
    def running(self) -> bool:
        """True from start() until stop(): a failed refresh does not end it."""
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close()

    async def refresh(self) -> list[PartitionLag]:
        """Reads the offsets once and sets the gauge; raises when Kafka does not answer."""
        admin, offsets = await self._clients()
        lags: list[PartitionLag] = []
        for group, topics in sorted(self.groups.items()):
            partitions = [
                TopicPartition(t["topic"], p["partition"])
                for t in await admin.describe_topics(sorted(topics))
                if not t["error_code"]  # a topic not created yet has no lag
                for p in t["partitions"]
            ]
            if not partitions:
                continue
            commits = await admin.list_consumer_group_offsets(group, partitions=partitions)
            lags += partition_lags(
                group,
                await offsets.end_offsets(partitions),
                await offsets.beginning_offsets(partitions),
                {tp: meta.offset for tp, meta in commits.items()},
            )
        for lag in lags:
            KAFKA_CONSUMER_LAG.labels(lag.group, lag.topic, str(lag.partition)).set(lag.lag)
        return lags

    async def _run(self) -> None:
        while True:
            try:
                # A broker that accepts the connection but never answers must not stall it.
                async with asyncio.timeout(max(self.interval_seconds * 3, 15.0)):
                    await self.refresh()
            except Exception:
                # Kafka away for a while is a dependency's trouble, reported by the health
                # checks; the figures stay as last read and the clients connect afresh.
                log.warning("consumer_lag_refresh_failed", exc_info=True)
                await self._close()
            await asyncio.sleep(self.interval_seconds)

    async def _clients(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is None or self._offsets is None:
            servers = self.bootstrap_servers.split(",")
            options = self.security.client_options()
            admin = AIOKafkaAdminClient(bootstrap_servers=servers, **options)
            # Joins no group and reads no record: it only asks for the partitions' offsets.
            offsets = AIOKafkaConsumer(
                bootstrap_servers=servers, group_id=None, enable_auto_commit=False, **options
            )
            self._admin, self._offsets = admin, offsets
            await admin.start()
            await offsets.start()
        return self._admin, self._offsets

    async def _close(self) -> None:
        admin, offsets = self._admin, self._offsets
        self._admin = self._offsets = None
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()
        if offsets is not None:
            with contextlib.suppress(Exception):
                await offsets.stop()


def consumer_lag_from(settings: "ServiceSettings", broker: KafkaBroker) -> ConsumerLag:
    """The lag watch of the groups the broker's subscribers consume in, as the settings say;
    call it once the subscribers are registered, then start() it."""
    return ConsumerLag(
        settings.kafka_bootstrap_servers,
        consumer_groups(broker),
        security_from(settings),
        settings.kafka_lag_interval_seconds,
    )
