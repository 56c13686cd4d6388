"""Kafka edge of the knowledge base.

Article events: every replica follows all of them (no consumer group, from the newest), so
its search index holds what any replica wrote. The follower's position is fixed before the
index is built from MongoDB, so no change falls between the two; events from before the
build are skipped by revision.

Ticket events (one group for all replicas): the suggestions shown on created tickets and the
articles that solved tickets are counted once per event.
"""

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.subscriber.usecase import LogicSubscriber

from helpdesk.api.events.v1 import knowledge_events_pb2, ticket_events_pb2
from helpdesk.core.kafka import (
    KNOWLEDGE_EVENTS_TOPIC,
    TICKET_EVENTS_TOPIC,
    ReceivedEvent,
    record_headers,
    subscribe_events,
)
from helpdesk.core.logging import get_logger
from helpdesk.knowledge.commands import KnowledgeCommands
from helpdesk.knowledge.domain.feedback import FeedbackKind
from helpdesk.knowledge.mapping import article_from_proto

log = get_logger(__name__)

ARTICLE_EVENT_PREFIX = "helpdesk.article."
ASSIGNMENT_POLLS = 600


def follow_article_events(broker: KafkaBroker, commands: KnowledgeCommands) -> LogicSubscriber[Any]:
    """Subscribes this replica's index to every article event; returns the subscriber, whose
    position `pin_positions` fixes once the broker has started."""

    async def follow(message: KafkaMessage) -> None:
        event_type = record_headers(message).get("ce_type", "")
        if not event_type.startswith(ARTICLE_EVENT_PREFIX):
            return
        try:
            changed = knowledge_events_pb2.ArticleChanged.FromString(message.body)
            article = article_from_proto(changed.article)
        except Exception:
            # Another replica's index would be no wiser: nothing to park it for.
            log.exception("article_event_unreadable", type=event_type)
            return
        await commands.article_changed(article, changed.revision)

    subscriber = broker.subscriber(KNOWLEDGE_EVENTS_TOPIC, auto_offset_reset="latest")
    subscriber(follow)
    return subscriber


async def pin_positions(subscriber: LogicSubscriber[Any]) -> None:
    """Waits until the follower has its partitions and has fixed its position in each (the
    log end now), so that every later article event reaches it."""
    consumer: AIOKafkaConsumer | None = getattr(subscriber, "consumer", None)
    if consumer is None:
        raise RuntimeError("the article follower has not started")
    # Assignment without a group is the client's own, right after it reads the metadata.
    for _ in range(ASSIGNMENT_POLLS):
        if consumer.assignment():
            break
        await asyncio.sleep(0.05)
    else:
        raise TimeoutError(f"no partitions of {KNOWLEDGE_EVENTS_TOPIC} assigned")
    for partition in consumer.assignment():
        await consumer.position(partition)


def register_ticket_subscribers(
    broker: KafkaBroker, commands: KnowledgeCommands, *, group: str
) -> None:
    async def handle(event: ReceivedEvent) -> None:
        await apply_ticket_event(commands, event.type, event.id, event.body)

    subscribe_events(broker, [TICKET_EVENTS_TOPIC], group=group, handle=handle)


async def apply_ticket_event(
    commands: KnowledgeCommands, event_type: str, event_id: str, body: bytes
) -> None:
    """Counts what a ticket event says about articles; other events are skipped."""
    match event_type:
        case "helpdesk.ticket.created.v1":
            ticket = ticket_events_pb2.TicketCreated.FromString(body).ticket
            shown = [s.article_id for s in ticket.suggestions]
            await commands.ticket_feedback(event_id, shown, FeedbackKind.SUGGESTED)
        case "helpdesk.ticket.self_solved.v1":
            solved = ticket_events_pb2.TicketSelfSolved.FromString(body)
            await commands.ticket_feedback(event_id, [solved.article_id], FeedbackKind.DEFLECTION)
        case _:
            return
