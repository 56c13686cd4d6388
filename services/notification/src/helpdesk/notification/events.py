"""Kafka edge of the notification service: ticket and SLA events in, notices recorded.

Recording is quick and idempotent (the delivery's key is event, recipient and channel), so
an event is committed once its notices are recorded; sending happens in the worker. A
passing outage (MongoDB away) leaves the event uncommitted and it is read again.
"""

import asyncio
from datetime import UTC, datetime

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.middlewares import AckPolicy
from google.protobuf.message import DecodeError
from pymongo.errors import PyMongoError

from helpdesk.core.errors import FieldViolation, InvalidArgument
from helpdesk.core.kafka import (
    SLA_EVENTS_TOPIC,
    TICKET_EVENTS_TOPIC,
    publish_dead_letter,
    record_headers,
)
from helpdesk.core.logging import get_logger
from helpdesk.notification.commands import NotificationCommands
from helpdesk.notification.mapping import facts_from_event

log = get_logger(__name__)

RETRY_DELAY_SECONDS = 1.0


def _event_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return datetime.now(UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def register_event_subscribers(
    broker: KafkaBroker, commands: NotificationCommands, *, group: str
) -> None:
    async def handle(message: KafkaMessage) -> None:
        headers = record_headers(message)
        event_type, event_id = headers.get("ce_type", ""), headers.get("ce_id", "")
        try:
            if not event_id:
                raise InvalidArgument([FieldViolation("ce_id", "is required")])
            facts = facts_from_event(event_type, event_id, message.body)
            if facts is not None:
                await commands.on_event(facts, _event_time(headers.get("ce_time", "")))
        except (DecodeError, InvalidArgument, ValueError) as error:
            reason = f"cannot read {event_type or 'an event without ce_type'}: {error!r}"
            await publish_dead_letter(broker, group, message, reason, "invalid")
        except PyMongoError:
            log.warning("notification_event_retry", type=event_type, id=event_id, exc_info=True)
            await asyncio.sleep(RETRY_DELAY_SECONDS)
            raise  # nack: read again
        except Exception as error:
            log.exception("notification_event_failed", type=event_type, id=event_id)
            await publish_dead_letter(broker, group, message, repr(error), "error")

    for topic in (TICKET_EVENTS_TOPIC, SLA_EVENTS_TOPIC):
        broker.subscriber(
            topic, group_id=group, auto_offset_reset="earliest", ack_policy=AckPolicy.NACK_ON_ERROR
        )(handle)
