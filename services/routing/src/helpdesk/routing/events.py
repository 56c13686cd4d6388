"""Kafka edge of routing: ticket and SLA events in, decisions out through intake.

A passing outage (MongoDB away, intake unavailable) leaves the event uncommitted and it is
read again; an event that can never be applied goes to the dead-letter topic with its
reason, and the partition moves on (core.kafka.subscribe_events).
"""

from faststream.kafka import KafkaBroker

from helpdesk.api.events.v1 import sla_events_pb2, ticket_events_pb2
from helpdesk.core.kafka import (
    SLA_EVENTS_TOPIC,
    TICKET_EVENTS_TOPIC,
    ReceivedEvent,
    subscribe_events,
)
from helpdesk.routing.commands import RoutingCommands
from helpdesk.routing.mapping import facts_from_proto

_PREFIX = "helpdesk.ticket."


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


def register_event_subscribers(
    broker: KafkaBroker, commands: RoutingCommands, *, group: str
) -> None:
    async def handle(event: ReceivedEvent) -> None:
        if event.type.startswith("helpdesk.sla."):
            await apply_sla_event(commands, event.type, event.id, event.body)
        else:
            await apply_event(commands, event.type, event.id, event.body)

    subscribe_events(broker, [TICKET_EVENTS_TOPIC, SLA_EVENTS_TOPIC], group=group, handle=handle)
