"""Wiring of the knowledge base: settings, store, outbox relay, intake client, Kafka (the
article follower and the ticket events), the search index built at start, gRPC, and an
orderly stop."""

import asyncio

from helpdesk.api.knowledge.v1 import knowledge_pb2, knowledge_pb2_grpc
from helpdesk.core.consumer_lag import consumer_lag_from
from helpdesk.core.grpc_server import GrpcServer, wait_for_shutdown
from helpdesk.core.health import dependency_checks
from helpdesk.core.kafka import (
    KNOWLEDGE_EVENTS_TOPIC,
    TICKET_EVENTS_TOPIC,
    broker_from,
    dead_letter_topic,
)
from helpdesk.core.logging import configure_logging, get_logger
from helpdesk.core.mongo import DocumentLocks, mongo_client_from
from helpdesk.core.outbox import OutboxRelay
from helpdesk.core.settings import load_settings
from helpdesk.core.telemetry import setup_tracing, shutdown_tracing, start_metrics_server
from helpdesk.core.tickets_client import TicketsClient
from helpdesk.knowledge.commands import KnowledgeCommands
from helpdesk.knowledge.events import (
    follow_article_events,
    pin_positions,
    register_ticket_subscribers,
)
from helpdesk.knowledge.grpc_api import KnowledgeApi
from helpdesk.knowledge.settings import KnowledgeSettings
from helpdesk.knowledge.store import KnowledgeStore

SERVICE = "knowledge"
KNOWLEDGE_ACTOR = "knowledge"
log = get_logger(__name__)


async def main() -> None:
    settings = load_settings(KnowledgeSettings)
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    tracer_provider = setup_tracing(SERVICE)
    start_metrics_server(settings.metrics_port)

    mongo = mongo_client_from(settings, SERVICE)
    store = KnowledgeStore(mongo[settings.database_name(SERVICE)])
    await store.create_indexes()

    broker = await broker_from(
        settings,
        SERVICE,
        [
            KNOWLEDGE_EVENTS_TOPIC,
            TICKET_EVENTS_TOPIC,
            dead_letter_topic(settings.knowledge_consumer_group),
        ],
    )
    locks = DocumentLocks()
    relay = OutboxRelay(
        store.articles, broker, sweep_interval=settings.outbox_sweep_interval_seconds, locks=locks
    )
    tickets = TicketsClient(
        settings.intake_target,
        actor_id=KNOWLEDGE_ACTOR,
        deadline_seconds=settings.intake_deadline_seconds,
    )
    commands = KnowledgeCommands(store, relay, tickets, locks=locks, portal_url=settings.portal_url)
    follower = follow_article_events(broker, commands)
    register_ticket_subscribers(broker, commands, group=settings.knowledge_consumer_group)
    await broker.start()
    # Position first, then the build: a change made in between arrives as an event.
    await pin_positions(follower)
    await commands.build_index()
    relay.start()
    lag = consumer_lag_from(settings, broker)
    lag.start()

    server = GrpcServer(
        host=settings.grpc_host,
        port=settings.grpc_port,
        service_names=[knowledge_pb2.DESCRIPTOR.services_by_name["KnowledgeService"].full_name],
        health_checks=dependency_checks(mongo, broker),
        health_check_interval=settings.health_check_interval_seconds,
    )
    knowledge_pb2_grpc.add_KnowledgeServiceServicer_to_server(KnowledgeApi(commands), server.server)
    await server.start()
    log.info("knowledge_ready", grpc_port=server.port, articles=len(commands.live.index))

    await wait_for_shutdown()
    await lag.stop()
    await server.stop(settings.shutdown_grace_seconds)
    log.info("stopping_consumers")
    await asyncio.gather(*(subscriber.stop() for subscriber in broker.subscribers))
    log.info("flushing_outbox")
    await relay.stop()
    await broker.stop()
    await tickets.close()
    await mongo.close()
    shutdown_tracing(tracer_provider)
    log.info("knowledge_stopped")
