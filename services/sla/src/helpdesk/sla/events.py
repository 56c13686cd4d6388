"""Kafka edge of the SLA service: ticket events in, read into the domain's SLA events
(retries and dead letters as core.kafka.subscribe_events does them)."""

from datetime import UTC, datetime

from faststream.kafka import KafkaBroker
from google.protobuf.timestamp_pb2 import Timestamp

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.events.v1 import ticket_events_pb2
from helpdesk.core.kafka import TICKET_EVENTS_TOPIC, ReceivedEvent, subscribe_events
from helpdesk.core.ticket_words import status_word
from helpdesk.sla.commands import SlaCommands
from helpdesk.sla.domain.clocks import AgentReplied, RequesterReplied, StatusChanged, TicketOpened
from helpdesk.sla.mapping import facts_from_proto


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


def register_event_subscribers(broker: KafkaBroker, commands: SlaCommands, *, group: str) -> None:
    async def handle(event: ReceivedEvent) -> None:
        await apply_event(commands, event.type, event.id, event.body)

    # A ValueError is the domain refusing an event it cannot place (a naive time, an
    # unknown status): it will never apply.
    subscribe_events(
        broker, [TICKET_EVENTS_TOPIC], group=group, handle=handle, invalid=(ValueError,)
    )
