"""Kafka plumbing: the broker every service uses, topics, CloudEvents headers."""

import asyncio
import contextlib
import logging
import ssl
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.kafka.security import parse_security
from faststream.middlewares import AckPolicy
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from google.protobuf.message import DecodeError
from opentelemetry import trace
from opentelemetry.util.types import AttributeValue
from prometheus_client import REGISTRY

from helpdesk.core.errors import TRANSIENT_ERRORS, FieldViolation, InvalidArgument
from helpdesk.core.logging import get_logger
from helpdesk.core.metrics import DEAD_LETTERS

if TYPE_CHECKING:
    from helpdesk.core.settings import ServiceSettings

# Topics of the house plan, keyed by ticket id.
INTAKE_REQUESTS_TOPIC = "helpdesk.intake.requests.v1"
TICKET_EVENTS_TOPIC = "helpdesk.tickets.events.v1"
SLA_EVENTS_TOPIC = "helpdesk.sla.events.v1"
KNOWLEDGE_EVENTS_TOPIC = "helpdesk.knowledge.events.v1"

PROTOBUF_CONTENT_TYPE = "application/x-protobuf"


def dead_letter_topic(group: str) -> str:
    """The dead-letter topic of one consumer group, e.g. helpdesk.dlq.helpdesk-intake.v1."""
    return f"helpdesk.dlq.{group}.v1"


@dataclass(frozen=True)
class KafkaSecurity:
    """How to reach a secured Kafka: TLS, SASL, or both."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "PLAIN"
    username: str = ""
    password: str = ""
    cafile: str = ""
    certfile: str = ""
    keyfile: str = ""

    def faststream(self) -> BaseSecurity | None:
        """FastStream's form of these settings; None for plain TCP."""
        use_ssl = self.protocol in ("SSL", "SASL_SSL")
        context = None
        if use_ssl:
            context = ssl.create_default_context(cafile=self.cafile or None)
            if self.certfile:
                context.load_cert_chain(self.certfile, self.keyfile or None)
        if self.protocol.startswith("SASL_"):
            sasl = {
                "PLAIN": SASLPlaintext,
                "SCRAM-SHA-256": SASLScram256,
                "SCRAM-SHA-512": SASLScram512,
            }[self.sasl_mechanism]
            return sasl(self.username, self.password, ssl_context=context, use_ssl=use_ssl)
        if use_ssl:
            return BaseSecurity(ssl_context=context, use_ssl=True)
        return None

    def client_options(self) -> dict[str, Any]:
        """The same settings as aiokafka client keyword arguments (admin, plain clients)."""
        security = self.faststream()
        return parse_security(security) if security else {}


def security_from(settings: "ServiceSettings") -> KafkaSecurity:
    return KafkaSecurity(
        protocol=settings.kafka_security_protocol,
        sasl_mechanism=settings.kafka_sasl_mechanism,
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value(),
        cafile=settings.kafka_ssl_cafile,
        certfile=settings.kafka_ssl_certfile,
        keyfile=settings.kafka_ssl_keyfile,
    )


def create_broker(
    bootstrap_servers: str, service: str, security: KafkaSecurity | None = None
) -> KafkaBroker:
    """An idempotent, acks=all producer and traced, measured consumers."""
    return KafkaBroker(
        bootstrap_servers.split(","),
        security=security.faststream() if security else None,
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


async def broker_from(
    settings: "ServiceSettings", service: str, topics: Iterable[str]
) -> KafkaBroker:
    """The service's broker as its settings say, after creating the topics it uses (unless
    the deployment creates them, HELPDESK_KAFKA_CREATE_TOPICS=false)."""
    security = security_from(settings)
    if settings.kafka_create_topics:
        await ensure_topics(settings.kafka_bootstrap_servers, topics, security=security)
    return create_broker(settings.kafka_bootstrap_servers, service, security)


async def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[str],
    partitions: int = 3,
    security: KafkaSecurity | None = None,
) -> None:
    """Creates topics that do not exist yet (the chart does this with a Job in clusters)."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers.split(","),
        **(security.client_options() if security else {}),
    )
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


async def kafka_ping(broker: KafkaBroker) -> None:
    """A health check: raises when no broker answers within three seconds."""
    if not await broker.ping(timeout=3.0):
        raise ConnectionError("Kafka did not answer")


def record_headers(message: KafkaMessage) -> dict[str, str]:
    """A consumed record's headers as text."""
    record = message.raw_message
    assert not isinstance(record, tuple)  # not a batch subscriber
    return {k: v.decode("utf-8", "replace") for k, v in (record.headers or ())}


async def publish_dead_letter(
    broker: KafkaBroker, group: str, message: KafkaMessage, reason: str, kind: str
) -> None:
    """Parks a message on the group's dead-letter topic with why it failed, its original
    bytes and headers untouched; if this publish fails the caller's message is read again."""
    record = message.raw_message
    assert not isinstance(record, tuple)
    await broker.publish(
        message.body,
        topic=dead_letter_topic(group),
        key=record.key,
        headers={
            **record_headers(message),
            "x-dlq-reason": reason[:2000],
            "x-dlq-source-topic": record.topic,
            "x-dlq-source-partition": str(record.partition),
            "x-dlq-source-offset": str(record.offset),
            "x-dlq-consumer-group": group,
            "x-dlq-failed-at": datetime.now(UTC).isoformat(),
        },
    )
    DEAD_LETTERS.labels(record.topic, kind).inc()
    get_logger(__name__).warning(
        "message_dead_lettered", topic=record.topic, group=group, kind=kind, reason=reason[:500]
    )


@dataclass(frozen=True)
class ReceivedEvent:
    """A consumed CloudEvent: its type, id and time (from the headers) and its payload."""

    type: str
    id: str
    time: str
    body: bytes


def consumer_attributes(topic: str, group: str, event: ReceivedEvent) -> dict[str, AttributeValue]:
    """What OpenTelemetry's messaging and CloudEvents conventions name on a consumer span
    that FastStream's own span leaves out: the topic as messaging.destination.name (it
    sets only messaging.destination_publish.name), the group, the operation type of the
    current conventions, and the event's id and type."""
    attributes: dict[str, AttributeValue] = {
        "messaging.destination.name": topic,
        "messaging.consumer.group.name": group,
        "messaging.operation.type": "process",
    }
    if event.id:
        attributes["cloudevents.event_id"] = event.id
    if event.type:
        attributes["cloudevents.event_type"] = event.type
    return attributes


# Wait before a message is read again after a passing outage, so it does not spin.
RETRY_DELAY_SECONDS = 1.0


def subscribe_events(
    broker: KafkaBroker,
    topics: Iterable[str],
    *,
    group: str,
    handle: Callable[[ReceivedEvent], Awaitable[None]],
    invalid: tuple[type[Exception], ...] = (),
) -> None:
    """Feeds every CloudEvent of these topics to `handle`, committing after it.

    A passing outage (TRANSIENT_ERRORS) leaves the message uncommitted and it is read again;
    one that can never be applied (undecodable, refused, or an `invalid` kind) and any other
    failure go to the group's dead-letter topic with the reason, and the partition moves on.
    """
    log = get_logger(__name__)
    refusals: tuple[type[Exception], ...] = (DecodeError, InvalidArgument, *invalid)

    async def consume(message: KafkaMessage) -> None:
        headers = record_headers(message)
        event = ReceivedEvent(
            headers.get("ce_type", ""),
            headers.get("ce_id", ""),
            headers.get("ce_time", ""),
            message.body,
        )
        # FastStream's middleware made this consumer span from the record's traceparent.
        record = message.raw_message
        assert not isinstance(record, tuple)
        trace.get_current_span().set_attributes(consumer_attributes(record.topic, group, event))
        try:
            if not event.id:
                raise InvalidArgument([FieldViolation("ce_id", "is required")])
            await handle(event)
        except refusals as error:
            reason = f"cannot apply {event.type or 'an event without ce_type'}: {error!r}"
            await publish_dead_letter(broker, group, message, reason, "invalid")
        except TRANSIENT_ERRORS:
            log.warning("event_retry", type=event.type, id=event.id, exc_info=True)
            await asyncio.sleep(RETRY_DELAY_SECONDS)
            raise  # nack: read again
        except Exception as error:
            log.exception("event_failed", type=event.type, id=event.id)
            await publish_dead_letter(broker, group, message, repr(error), "error")

    for topic in topics:
        broker.subscriber(
            topic, group_id=group, auto_offset_reset="earliest", ack_policy=AckPolicy.NACK_ON_ERROR
        )(consume)
