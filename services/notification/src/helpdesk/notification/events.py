"""Kafka edge of the notification service: ticket and SLA events in, notices recorded.

Recording is quick and idempotent (the delivery's key is event, recipient and channel), so
an event is committed once its notices are recorded; sending happens in the worker. A
passing outage (MongoDB away) leaves the event uncommitted and it is read again.
"""

from datetime import UTC, datetime

from faststream.kafka import KafkaBroker

from helpdesk.core.kafka import (
    SLA_EVENTS_TOPIC,
    TICKET_EVENTS_TOPIC,
    ReceivedEvent,
    subscribe_events,
)
from helpdesk.notification.commands import NotificationCommands
from helpdesk.notification.mapping import facts_from_event


def _event_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def register_event_subscribers(
    broker: KafkaBroker, commands: NotificationCommands, *, group: str
) -> None:
    async def handle(event: ReceivedEvent) -> None:
        facts = facts_from_event(event.type, event.id, event.body)
        if facts is not None:
            await commands.on_event(facts, _event_time(event.time))

    subscribe_events(
        broker,
        [TICKET_EVENTS_TOPIC, SLA_EVENTS_TOPIC],
        group=group,
        handle=handle,
        invalid=(ValueError,),
    )
