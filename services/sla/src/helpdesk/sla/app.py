"""Wiring of the SLA service: settings, store, outbox relay, intake client, Kafka, gRPC,
the timer loop, and an orderly stop."""

import asyncio

from helpdesk.api.sla.v1 import sla_pb2, sla_pb2_grpc
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
from helpdesk.core.mongo import DocumentLocks, mongo_client_from
from helpdesk.core.outbox import OutboxRelay
from helpdesk.core.settings import load_settings
from helpdesk.core.telemetry import setup_tracing, shutdown_tracing, start_metrics_server
from helpdesk.core.tickets_client import TicketsClient
from helpdesk.sla.commands import SLA_ACTOR, SlaCommands
from helpdesk.sla.events import register_event_subscribers
from helpdesk.sla.grpc_api import SlaApi
from helpdesk.sla.settings import SlaSettings
from helpdesk.sla.store import SlaStore
from helpdesk.sla.timers import TimerQueue

SERVICE = "sla"
log = get_logger(__name__)


async def main() -> None:
    settings = load_settings(SlaSettings)
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    tracer_provider = setup_tracing(SERVICE)
    start_metrics_server(settings.metrics_port)

    mongo = mongo_client_from(settings, SERVICE)
    store = SlaStore(mongo[settings.database_name(SERVICE)])
    await store.create_indexes()

    broker = await broker_from(
        settings,
        SERVICE,
        [
            TICKET_EVENTS_TOPIC,
            SLA_EVENTS_TOPIC,
            dead_letter_topic(settings.sla_consumer_group),
        ],
    )
    locks = DocumentLocks()
    relay = OutboxRelay(
        store.tickets, broker, sweep_interval=settings.outbox_sweep_interval_seconds, locks=locks
    )
    tickets = TicketsClient(
        settings.intake_target,
        actor_id=SLA_ACTOR,
        deadline_seconds=settings.intake_deadline_seconds,
    )
    commands = SlaCommands(store, relay, tickets, locks=locks)
    timers = TimerQueue(
        store,
        commands.fire,
        tick_seconds=settings.timer_tick_seconds,
        sweep_seconds=settings.timer_sweep_seconds,
        transient=TRANSIENT_ERRORS,
    )
    commands.arm = timers.arm
    register_event_subscribers(broker, commands, group=settings.sla_consumer_group)
    await broker.start()
    relay.start()
    lag = consumer_lag_from(settings, broker)
    lag.start()
    timers.start()

    health_checks = dependency_checks(mongo, broker)
    server = GrpcServer(
        host=settings.grpc_host,
        port=settings.grpc_port,
        service_names=[sla_pb2.DESCRIPTOR.services_by_name["SlaService"].full_name],
        health_checks=health_checks,
        health_check_interval=settings.health_check_interval_seconds,
    )
    sla_pb2_grpc.add_SlaServiceServicer_to_server(SlaApi(commands), server.server)
    await server.start()
    log.info("sla_ready", grpc_port=server.port)

    await wait_for_shutdown()
    await lag.stop()
    await server.stop(settings.shutdown_grace_seconds)
    await timers.stop()
    log.info("stopping_consumers")
    await asyncio.gather(*(subscriber.stop() for subscriber in broker.subscribers))
    log.info("flushing_outbox")
    await relay.stop()
    await broker.stop()
    await tickets.close()
    await mongo.close()
    shutdown_tracing(tracer_provider)
    log.info("sla_stopped")
