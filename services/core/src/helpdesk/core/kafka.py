"""Kafka plumbing: the broker every service uses, topics, CloudEvents headers."""

import contextlib
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from opentelemetry import propagate, trace
from prometheus_client import REGISTRY

# Topics of the house plan, keyed by ticket id.
INTAKE_REQUESTS_TOPIC = "helpdesk.intake.requests.v1"
TICKET_EVENTS_TOPIC = "helpdesk.tickets.events.v1"
SLA_EVENTS_TOPIC = "helpdesk.sla.events.v1"
KNOWLEDGE_EVENTS_TOPIC = "helpdesk.knowledge.events.v1"

PROTOBUF_CONTENT_TYPE = "application/x-protobuf"


def dead_letter_topic(group: str) -> str:
    """The dead-letter topic of one consumer group, e.g. helpdesk.dlq.helpdesk-intake.v1."""
    return f"helpdesk.dlq.{group}.v1"


def create_broker(bootstrap_servers: str, service: str) -> KafkaBroker:
    """An idempotent, acks=all producer and traced, measured consumers."""
    return KafkaBroker(
        bootstrap_servers.split(","),
        client_id=f"helpdesk-{service}",
        enable_idempotence=True,
        acks="all",
        request_timeout_ms=15_000,
        graceful_timeout=15.0,
        # FastStream's own lines go through the service's structured logging.
        logger=logging.getLogger(f"helpdesk.{service}.kafka"),
        middlewares=(
            KafkaTelemetryMiddleware(tracer_provider=trace.get_tracer_provider()),
            KafkaPrometheusMiddleware(registry=REGISTRY, app_name=f"helpdesk-{service}"),
        ),
    )


async def ensure_topics(bootstrap_servers: str, topics: Iterable[str], partitions: int = 3) -> None:
    """Creates topics that do not exist yet (the chart does this with a Job in clusters)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers.split(","))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name=t, num_partitions=partitions, replication_factor=1)
            for t in topics
            if t not in existing
        ]
        if missing:
            # A replica beside us may have created them first.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
    finally:
        await admin.close()


@dataclass(frozen=True)
class CloudEvent:
    """The CloudEvents attributes of one event (binary mode: they travel as Kafka headers)."""

    id: str
    type: str
    source: str
    time: datetime
    subject: str = ""

    @staticmethod
    def new(event_type: str, source: str, subject: str = "") -> "CloudEvent":
        return CloudEvent(
            id=str(uuid.uuid4()),
            type=event_type,
            source=source,
            time=datetime.now(UTC),
            subject=subject,
        )

    def headers(self, content_type: str = PROTOBUF_CONTENT_TYPE) -> dict[str, str]:
        headers = {
            "ce_specversion": "1.0",
            "ce_id": self.id,
            "ce_type": self.type,
            "ce_source": self.source,
            "ce_time": self.time.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "content-type": content_type,
        }
        if self.subject:
            headers["ce_subject"] = self.subject
        return headers


def current_traceparent() -> str:
    """The W3C traceparent of the current span, to store with an event for later publishing."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", "")
