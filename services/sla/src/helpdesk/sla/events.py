"""Kafka edge of the SLA service: ticket events in, read into the domain's SLA events.

A passing outage (MongoDB away) leaves the event uncommitted and it is read again; an
event that can never be applied goes to the dead-letter topic with its reason.
"""

import asyncio
from datetime import UTC, datetime

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp
from pymongo.errors import PyMongoError

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.events.v1 import ticket_events_pb2
from helpdesk.core.errors import Aborted, FieldViolation, InvalidArgument, Unavailable
from helpdesk.core.kafka import TICKET_EVENTS_TOPIC, publish_dead_letter, record_headers
from helpdesk.core.logging import get_logger
from helpdesk.core.ticket_words import status_word
from helpdesk.sla.commands import SlaCommands
from helpdesk.sla.domain.clocks import AgentReplied, RequesterReplied, StatusChanged, TicketOpened
from helpdesk.sla.mapping import facts_from_proto

log = get_logger(__name__)

RETRY_DELAY_SECONDS = 1.0
TRANSIENT_ERRORS = (PyMongoError, Unavailable, Aborted)


def _at(stamp: Timestamp) -> datetime:
    return stamp.ToDatetime(UTC)


async def apply_event(commands: SlaCommands, event_type: str, event_id: str, body: bytes) -> None:
    """One ticket event, by its CloudEvents type; types the SLA does not measure are skipped."""
    kind = event_type.removeprefix("helpdesk.ticket.").removesuffix(".v1")
    match kind:
        case "created":
            ticket = ticket_events_pb2.TicketCreated.FromString(body).ticket
            facts = facts_from_proto(ticket)
            opened = TicketOpened(_at(ticket.created_at), facts, status_word(ticket.status))
            await commands.ticket_event(event_id, ticket, [opened], facts=facts)
        case "commented":
            commented = ticket_events_pb2.TicketCommented.FromString(body)
            comment, at = commented.comment, _at(commented.comment.created_at)
            role = comment.author.role
            if role == common_pb2.ACTOR_ROLE_AGENT:
                event: AgentReplied | RequesterReplied = AgentReplied(at, not comment.internal)
            elif role == common_pb2.ACTOR_ROLE_REQUESTER:
                event = RequesterReplied(at)
            else:
                return  # the system's own notes answer nobody
            await commands.ticket_event(event_id, commented.ticket, [event])
        case "status_changed":
            moved = ticket_events_pb2.TicketStatusChanged.FromString(body)
            change = StatusChanged(
                _at(moved.ticket.updated_at),
                status_word(moved.from_status),
                status_word(moved.to_status),
            )
            await commands.ticket_event(event_id, moved.ticket, [change])
        case "updated" | "assigned":
            message = (
                ticket_events_pb2.TicketUpdated
                if kind == "updated"
                else ticket_events_pb2.TicketAssigned
            )
            ticket = message.FromString(body).ticket
            await commands.ticket_event(
                event_id, ticket, [], facts=facts_from_proto(ticket), at=_at(ticket.updated_at)
            )
        case _:
            return


def register_ticket_subscriber(broker: KafkaBroker, commands: SlaCommands, *, group: str) -> None:
    @broker.subscriber(
        TICKET_EVENTS_TOPIC,
        group_id=group,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_ticket_event(message: KafkaMessage) -> None:
        headers = record_headers(message)
        event_type, event_id = headers.get("ce_type", ""), headers.get("ce_id", "")
        try:
            if not event_id:
                raise InvalidArgument([FieldViolation("ce_id", "is required")])
            await apply_event(commands, event_type, event_id, message.body)
        except (DecodeError, InvalidArgument, ValueError) as error:
            reason = f"cannot apply {event_type or 'an event without ce_type'}: {error!r}"
            await publish_dead_letter(broker, group, message, reason, "invalid")
        except TRANSIENT_ERRORS:
            log.warning("ticket_event_retry", type=event_type, id=event_id, exc_info=True)
            await asyncio.sleep(RETRY_DELAY_SECONDS)
            raise  # nack: read again
        except Exception as error:
            log.exception("ticket_event_failed", type=event_type, id=event_id)
            await publish_dead_letter(broker, group, message, repr(error), "error")
