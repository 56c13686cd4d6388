"""Kafka edge of routing: ticket and SLA events in, decisions out through intake.

A passing outage (MongoDB away, intake unavailable) leaves the event uncommitted and it is
read again; an event that can never be applied goes to the dead-letter topic with its
reason, and the partition moves on.
"""

import asyncio
from collections.abc import Awaitable, Callable

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy
from google.protobuf.message import DecodeError
from pymongo.errors import PyMongoError

from helpdesk.api.events.v1 import sla_events_pb2, ticket_events_pb2
from helpdesk.core.errors import Aborted, FieldViolation, InvalidArgument, Unavailable
from helpdesk.core.kafka import (
    SLA_EVENTS_TOPIC,
    TICKET_EVENTS_TOPIC,
    publish_dead_letter,
    record_headers,
)
from helpdesk.core.logging import get_logger
from helpdesk.routing.commands import RoutingCommands
from helpdesk.routing.mapping import facts_from_proto

log = get_logger(__name__)

RETRY_DELAY_SECONDS = 1.0
TRANSIENT_ERRORS = (PyMongoError, Unavailable, Aborted)
_PREFIX = "helpdesk.ticket."

Applier = Callable[[RoutingCommands, str, str, bytes], Awaitable[None]]


async def apply_event(
    commands: RoutingCommands, event_type: str, event_id: str, body: bytes
) -> None:
    """One ticket event, by its CloudEvents type; types routing does not need are skipped."""
    kind = event_type.removeprefix(_PREFIX).removesuffix(".v1")
    match kind:
        case "created":
            created = ticket_events_pb2.TicketCreated.FromString(body)
            await commands.ticket_opened(event_id, created.ticket, facts_from_proto(created.ticket))
        case "updated":
            updated = ticket_events_pb2.TicketUpdated.FromString(body)
            fields = {change.field for change in updated.changes}
            await commands.ticket_changed(
                event_id, updated.ticket, facts_from_proto(updated.ticket), fields
            )
        case "reopened":
            reopened = ticket_events_pb2.TicketReopened.FromString(body)
            await commands.ticket_reopened(
                event_id, reopened.ticket, facts_from_proto(reopened.ticket)
            )
        case "resolved":
            await commands.ticket_done(ticket_events_pb2.TicketResolved.FromString(body).ticket.id)
        case "closed":
            await commands.ticket_done(ticket_events_pb2.TicketClosed.FromString(body).ticket.id)
        case "merged":
            await commands.ticket_done(ticket_events_pb2.TicketMerged.FromString(body).ticket.id)
        case "assigned":
            assigned = ticket_events_pb2.TicketAssigned.FromString(body)
            await commands.ticket_assigned(assigned.ticket, assigned.actor.id)
        case _:
            return


async def apply_sla_event(
    commands: RoutingCommands, event_type: str, event_id: str, body: bytes
) -> None:
    """An SLA event: a breach escalates; warnings and met targets are not routing's."""
    if event_type == "helpdesk.sla.breached.v1":
        clock = sla_events_pb2.SlaBreached.FromString(body).clock
        await commands.sla_breached(event_id, clock.ticket_id, clock.metric)


def register_ticket_subscriber(
    broker: KafkaBroker, commands: RoutingCommands, *, group: str
) -> None:
    async def handle(message: KafkaMessage, apply: Applier) -> None:
        headers = record_headers(message)
        event_type, event_id = headers.get("ce_type", ""), headers.get("ce_id", "")
        try:
            if not event_id:
                raise InvalidArgument([FieldViolation("ce_id", "is required")])
            await apply(commands, event_type, event_id, message.body)
        except (DecodeError, InvalidArgument) as error:
            reason = f"cannot apply {event_type or 'an event without ce_type'}: {error!r}"
            await publish_dead_letter(broker, group, message, reason, "invalid")
        except TRANSIENT_ERRORS:
            log.warning("event_retry", type=event_type, id=event_id, exc_info=True)
            await asyncio.sleep(RETRY_DELAY_SECONDS)
            raise  # nack: read again
        except Exception as error:
            log.exception("event_failed", type=event_type, id=event_id)
            await publish_dead_letter(broker, group, message, repr(error), "error")

    @broker.subscriber(
        TICKET_EVENTS_TOPIC,
        group_id=group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_ticket_event(message: KafkaMessage) -> None:
        await handle(message, apply_event)

    @broker.subscriber(
        SLA_EVENTS_TOPIC,
        group_id=group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_sla_event(message: KafkaMessage) -> None:
        await handle(message, apply_sla_event)
