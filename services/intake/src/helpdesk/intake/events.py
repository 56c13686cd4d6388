"""Kafka edge of intake: tickets requested by other systems on the intake topic.

Each message becomes a ticket exactly once (its request id, or its topic/partition/offset,
is the idempotency key). A message that can never become a ticket goes to the dead-letter
topic with the reason in its headers and the partition moves on; a passing outage
(MongoDB away) leaves the message uncommitted and it is read again.
"""

import asyncio
import json
from dataclasses import replace

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy
from google.protobuf.message import DecodeError

from helpdesk.api.events.v1 import sla_events_pb2
from helpdesk.api.tickets.v1 import tickets_pb2
from helpdesk.core.errors import TRANSIENT_ERRORS, InvalidArgument
from helpdesk.core.kafka import (
    INTAKE_REQUESTS_TOPIC,
    PROTOBUF_CONTENT_TYPE,
    RETRY_DELAY_SECONDS,
    SLA_EVENTS_TOPIC,
    ReceivedEvent,
    publish_dead_letter,
    record_headers,
    subscribe_events,
)
from helpdesk.core.logging import get_logger
from helpdesk.intake.commands import TicketCommands
from helpdesk.intake.domain import Channel, TicketDraft, draft_from_json
from helpdesk.intake.mapping import draft_from_proto
from helpdesk.intake.metrics import INTAKE_MESSAGES

log = get_logger(__name__)


class Unprocessable(Exception):
    """The message can never become a ticket; the text says why."""


def parse_request(body: bytes, content_type: str) -> TicketDraft:
    """The draft a message carries: JSON (the default) or a protobuf CreateTicketRequest."""
    media_type = content_type.split(";")[0].strip().lower()
    if media_type in (PROTOBUF_CONTENT_TYPE, "application/protobuf"):
        try:
            return draft_from_proto(tickets_pb2.CreateTicketRequest.FromString(body))
        except DecodeError as error:
            raise Unprocessable(f"malformed protobuf CreateTicketRequest: {error}") from error
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise Unprocessable(f"body is not UTF-8: {error}") from error
    except (ValueError, RecursionError) as error:
        # JSONDecodeError, and the limits of the parser (huge numbers, deep nesting).
        raise Unprocessable(f"malformed JSON: {error}") from error
    return draft_from_json(data)


def register_intake_subscriber(
    broker: KafkaBroker, commands: TicketCommands, *, group: str
) -> None:

    @broker.subscriber(
        INTAKE_REQUESTS_TOPIC,
        group_id=group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_ticket_requested(message: KafkaMessage) -> None:
        record = message.raw_message
        assert not isinstance(record, tuple)  # not a batch subscriber
        position = f"{record.topic}:{record.partition}:{record.offset}"
        headers = record_headers(message)
        try:
            draft = parse_request(message.body, headers.get("content-type", ""))
            if not draft.request_id:
                draft = replace(draft, request_id=f"kafka:{position}")
            ticket = await commands.create(draft, default_channel=Channel.EVENT)
        except (Unprocessable, InvalidArgument) as error:
            await publish_dead_letter(broker, group, message, str(error), "invalid")
            INTAKE_MESSAGES.labels("dead_letter").inc()
            return
        except TRANSIENT_ERRORS:
            log.warning("intake_message_retry", position=position, exc_info=True)
            await asyncio.sleep(RETRY_DELAY_SECONDS)
            raise  # nack: the message is read again
        except Exception as error:
            log.exception("intake_message_failed", position=position)
            await publish_dead_letter(broker, group, message, repr(error), "error")
            INTAKE_MESSAGES.labels("dead_letter").inc()
            return
        INTAKE_MESSAGES.labels("created").inc()
        log.debug("intake_message_done", position=position, ticket=ticket.number)


# What each SLA event says about its metric.
SlaPayload = (
    type[sla_events_pb2.SlaWarning] | type[sla_events_pb2.SlaBreached] | type[sla_events_pb2.SlaMet]
)
_SLA_STATES: dict[str, tuple[SlaPayload, str]] = {
    "helpdesk.sla.warning.v1": (sla_events_pb2.SlaWarning, "at_risk"),
    "helpdesk.sla.breached.v1": (sla_events_pb2.SlaBreached, "breached"),
    "helpdesk.sla.met.v1": (sla_events_pb2.SlaMet, "met"),
}


def register_sla_subscriber(broker: KafkaBroker, commands: TicketCommands, *, group: str) -> None:
    """Keeps each ticket's SLA state as the SLA service reports it, for queue views."""

    async def handle(event: ReceivedEvent) -> None:
        known = _SLA_STATES.get(event.type)
        if known is None:
            return
        payload, state = known
        clock = payload.FromString(event.body).clock
        await commands.record_sla(clock.ticket_id, clock.metric, state, event.id)

    subscribe_events(broker, [SLA_EVENTS_TOPIC], group=group, handle=handle)
