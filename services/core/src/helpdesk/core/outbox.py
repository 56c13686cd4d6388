"""The transactional outbox: events ride in the owning document, a relay publishes them.

A state change and the events it causes are stored in one single-document write
(`outbox.<event id>` sub-documents plus `outbox_pending: true`), which MongoDB and
FerretDB both make atomic. The relay publishes each event to Kafka and only then removes
it from the document, so a crash in between re-publishes (consumers dedup by `ce_id`)
and never loses. Only equality filters are used, which FerretDB pushes down to its backend.
"""

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bson import Binary
from faststream.kafka import KafkaBroker
from opentelemetry import context as otel_context
from pymongo.asynchronous.collection import AsyncCollection

from helpdesk.core.kafka import PROTOBUF_CONTENT_TYPE, CloudEvent
from helpdesk.core.logging import get_logger
from helpdesk.core.metrics import OUTBOX_LAG_SECONDS, OUTBOX_PUBLISH_FAILURES, OUTBOX_PUBLISHED
from helpdesk.core.mongo import DocumentLocks
from helpdesk.core.telemetry import current_traceparent, stored_context

log = get_logger(__name__)

Document = dict[str, Any]


@dataclass(frozen=True)
class OutboxEvent:
    """One event waiting in its document to be published."""

    cloud_event: CloudEvent
    topic: str
    key: str
    payload: bytes
    # Orders the events of one document (e.g. the document's version when it was made).
    sequence: int
    traceparent: str = ""

    @staticmethod
    def new(
        *, event_type: str, source: str, topic: str, key: str, payload: bytes, sequence: int
    ) -> "OutboxEvent":
        """An event stamped with a fresh id, the current time and the current trace."""
        return OutboxEvent(
            cloud_event=CloudEvent.new(event_type, source, subject=key),
            topic=topic,
            key=key,
            payload=payload,
            sequence=sequence,
            traceparent=current_traceparent(),
        )

    def to_document(self) -> Document:
        ce = self.cloud_event
        return {
            "id": ce.id,
            "type": ce.type,
            "source": ce.source,
            "subject": ce.subject,
            "time": ce.time,
            "topic": self.topic,
            "key": self.key,
            "payload": Binary(self.payload),
            "sequence": self.sequence,
            "traceparent": self.traceparent,
        }

    @staticmethod
    def from_document(doc: Mapping[str, Any]) -> "OutboxEvent":
        time: datetime = doc["time"]
        if time.tzinfo is None:
            time = time.replace(tzinfo=UTC)
        return OutboxEvent(
            cloud_event=CloudEvent(
                id=doc["id"],
                type=doc["type"],
                source=doc["source"],
                time=time,
                subject=doc.get("subject", ""),
            ),
            topic=doc["topic"],
            key=doc["key"],
            payload=bytes(doc["payload"]),
            sequence=int(doc["sequence"]),
            traceparent=doc.get("traceparent", ""),
        )


def outbox_fields(events: Iterable[OutboxEvent]) -> Document:
    """The fields to `$set` (or put in an inserted document) that enqueue these events."""
    fields: Document = {f"outbox.{e.cloud_event.id}": e.to_document() for e in events}
    if fields:
        fields["outbox_pending"] = True
    return fields


def pending_events(doc: Mapping[str, Any]) -> list[OutboxEvent]:
    """The events still waiting in a document, oldest first."""
    outbox: Mapping[str, Any] = doc.get("outbox") or {}
    events = [OutboxEvent.from_document(e) for e in outbox.values()]
    return sorted(events, key=lambda e: (e.sequence, e.cloud_event.time))


@dataclass(frozen=True)
class StoredEvents:
    """Events a writer has just stored in a document at a given version."""

    doc_id: Any
    version: int
    events: tuple[OutboxEvent, ...]


class OutboxRelay:
    """Publishes the outbox events of one collection and clears them once Kafka has them.

    Writers hand over what they stored (`publish_soon`), so events leave within
    milliseconds without reading the document back; a sweep at start and then every
    `sweep_interval` picks up whatever a crash left behind. Documents must carry a
    `version` that every write increments: the outbox is marked empty only if the
    document is still at the version whose events were published.
    """

    def __init__(
        self,
        collection: AsyncCollection[Document],
        broker: KafkaBroker,
        *,
        sweep_interval: float = 5.0,
        batch_size: int = 200,
        locks: DocumentLocks | None = None,
    ) -> None:
        self._collection = collection
        self._broker = broker
        self._sweep_interval = sweep_interval
        self._batch_size = batch_size
        # Shared with the writers of the collection, so clearing never races a write.
        self._locks = locks or DocumentLocks()
        self._queue: asyncio.Queue[StoredEvents | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def publish_soon(self, doc_id: Any, version: int, events: Iterable[OutboxEvent]) -> None:
        self._queue.put_nowait(StoredEvents(doc_id, version, tuple(events)))

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Publishes what was handed over, then stops."""
        self._stopping.set()
        if self._task:
            self._queue.put_nowait(None)  # wake the loop
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()  # sweep once at start: a crash may have left events behind
        while True:
            batch = await self._next_batch(wait=max(0.0, next_sweep - loop.time()))
            try:
                if batch:
                    await self._publish_all(batch)
                elif not self._stopping.is_set():
                    await self.sweep()
                    next_sweep = loop.time() + self._sweep_interval
            except asyncio.CancelledError:
                raise
            except Exception:
                # Kafka or MongoDB away: the events stay in their documents for the next sweep.
                OUTBOX_PUBLISH_FAILURES.inc()
                log.exception("outbox_relay_failed")
                await asyncio.sleep(1.0)
            if self._stopping.is_set() and self._queue.empty():
                return

    async def _next_batch(self, wait: float) -> list[StoredEvents]:
        """What writers handed over; waits at most `wait` seconds for the first of it."""
        items: list[StoredEvents | None] = []
        if self._queue.empty() and wait > 0:
            with contextlib.suppress(TimeoutError):
                items.append(await asyncio.wait_for(self._queue.get(), timeout=wait))
        while len(items) < self._batch_size and not self._queue.empty():
            items.append(self._queue.get_nowait())
        return [item for item in items if item is not None]

    async def sweep(self) -> int:
        """Publishes every pending outbox in the collection; returns how many events."""
        published = 0
        while not self._stopping.is_set():
            docs = await self._collection.find(
                {"outbox_pending": True}, {"outbox": 1, "version": 1}, limit=self._batch_size
            ).to_list()
            if not docs:
                break
            published += await self._publish_all(
                [StoredEvents(d["_id"], int(d["version"]), tuple(pending_events(d))) for d in docs]
            )
            if len(docs) < self._batch_size:
                break
        return published

    async def _publish_all(self, batch: list[StoredEvents]) -> int:
        # Documents in parallel (the producer batches them); events of one document in order.
        await asyncio.gather(*(self._publish_in_order(stored.events) for stored in batch))
        pending = [stored for stored in batch if stored.events]
        if pending:
            await self._clear_all(pending)
        return sum(len(stored.events) for stored in batch)

    async def _clear_all(self, batch: list[StoredEvents]) -> None:
        """Empties the outboxes of documents still at the version whose events were
        published, in one command (one read of the collection on FerretDB, where every
        filter scans); documents that changed meanwhile are cleared one by one."""
        # One version per document: the newest hand-over covers the events of older ones.
        newest: dict[Any, StoredEvents] = {}
        for stored in batch:
            if stored.doc_id not in newest or stored.version > newest[stored.doc_id].version:
                newest[stored.doc_id] = stored
        async with contextlib.AsyncExitStack() as held:
            for doc_id in sorted(newest, key=str):
                await held.enter_async_context(self._locks.hold(doc_id))
            result = await self._collection.update_many(
                {"$or": [{"_id": s.doc_id, "version": s.version} for s in newest.values()]},
                {"$unset": {"outbox": ""}, "$set": {"outbox_pending": False}},
            )
        if result.matched_count < len(newest):
            for stored in batch:
                await self._clear(stored)

    async def _publish_in_order(self, events: tuple[OutboxEvent, ...]) -> None:
        for event in events:
            await publish_event(self._broker, event)

    async def _clear(self, stored: StoredEvents) -> None:
        """Removes published events; marks the outbox empty only if nothing was added since."""
        published = {f"outbox.{e.cloud_event.id}": "" for e in stored.events}
        async with self._locks.hold(stored.doc_id):
            result = await self._collection.update_one(
                {"_id": stored.doc_id, "version": stored.version},
                {"$unset": published, "$set": {"outbox_pending": False}},
            )
            if result.matched_count == 0:
                # Changed since: newer events wait in it; their own hand-over clears the flag.
                await self._collection.update_one({"_id": stored.doc_id}, {"$unset": published})


async def publish_event(broker: KafkaBroker, event: OutboxEvent) -> None:
    """Publishes one event, continuing the trace it was made in: the publish span is a
    child of the stored traceparent, and the headers carry the publish's own context."""
    parent = stored_context(event.traceparent)
    token = otel_context.attach(parent) if parent is not None else None
    try:
        await broker.publish(
            event.payload,
            topic=event.topic,
            key=event.key.encode(),
            headers=event.cloud_event.headers(PROTOBUF_CONTENT_TYPE),
            correlation_id=event.cloud_event.id,
        )
    finally:
        if token is not None:
            otel_context.detach(token)
    OUTBOX_PUBLISHED.labels(event.topic, event.cloud_event.type).inc()
    lag = (datetime.now(UTC) - event.cloud_event.time).total_seconds()
    OUTBOX_LAG_SECONDS.observe(max(lag, 0.0))
