"""Wiring of the routing service: settings, store, intake client, Kafka, gRPC, the
availability sweep, and an orderly stop."""

import asyncio
import contextlib

from helpdesk.api.routing.v1 import routing_pb2, routing_pb2_grpc
from helpdesk.core.consumer_lag import consumer_lag_from
from helpdesk.core.errors import TRANSIENT_ERRORS
from helpdesk.core.grpc_server import GrpcServer, wait_for_shutdown
from helpdesk.core.health import dependency_checks
from helpdesk.core.kafka import (
    SLA_EVENTS_TOPIC,
    TICKET_EVENTS_TOPIC,
    broker_from,
    dead_letter_topic,
)
from helpdesk.core.logging import configure_logging, get_logger
from helpdesk.core.mongo import mongo_client_from
from helpdesk.core.settings import load_settings
from helpdesk.core.telemetry import setup_tracing, shutdown_tracing, start_metrics_server
from helpdesk.core.tickets_client import TicketsClient
from helpdesk.routing.commands import ROUTING_ACTOR, RoutingCommands
from helpdesk.routing.events import register_event_subscribers
from helpdesk.routing.grpc_api import RoutingApi
from helpdesk.routing.settings import RoutingSettings
from helpdesk.routing.store import RoutingStore

SERVICE = "routing"
log = get_logger(__name__)


async def _sweep_forever(commands: RoutingCommands, interval: float) -> None:
    """Working hours and absences change with the clock: look again now and then."""
    while True:
        try:
            await commands.sweep()
        except TRANSIENT_ERRORS:
            log.warning("availability_sweep_failed", exc_info=True)
        await asyncio.sleep(interval)


async def main() -> None:
    settings = load_settings(RoutingSettings)
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    tracer_provider = setup_tracing(SERVICE)
    start_metrics_server(settings.metrics_port)

    mongo = mongo_client_from(settings, SERVICE)
    store = RoutingStore(mongo[settings.database_name(SERVICE)])
    await store.create_indexes()

    broker = await broker_from(
        settings,
        SERVICE,
        [
            TICKET_EVENTS_TOPIC,
            SLA_EVENTS_TOPIC,
            dead_letter_topic(settings.routing_consumer_group),
        ],
    )
    tickets = TicketsClient(
        settings.intake_target,
        actor_id=ROUTING_ACTOR,
        deadline_seconds=settings.intake_deadline_seconds,
    )
    commands = RoutingCommands(
        store, tickets, reopen_threshold=settings.reopen_escalation_threshold
    )
    register_event_subscribers(broker, commands, group=settings.routing_consumer_group)
    await broker.start()
    lag = consumer_lag_from(settings, broker)
    lag.start()

    health_checks = dependency_checks(mongo, broker)
    server = GrpcServer(
        host=settings.grpc_host,
        port=settings.grpc_port,
        service_names=[routing_pb2.DESCRIPTOR.services_by_name["RoutingService"].full_name],
        health_checks=health_checks,
        health_check_interval=settings.health_check_interval_seconds,
    )
    routing_pb2_grpc.add_RoutingServiceServicer_to_server(RoutingApi(commands), server.server)
    await server.start()
    sweep = asyncio.create_task(
        _sweep_forever(commands, settings.availability_sweep_seconds), name="sweep"
    )
    log.info("routing_ready", grpc_port=server.port)

    await wait_for_shutdown()
    sweep.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sweep
    await lag.stop()
    await server.stop(settings.shutdown_grace_seconds)
    log.info("stopping_consumers")
    await asyncio.gather(*(subscriber.stop() for subscriber in broker.subscribers))
    await broker.stop()
    await tickets.close()
    await mongo.close()
    shutdown_tracing(tracer_provider)
    log.info("routing_stopped")
