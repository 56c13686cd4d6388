"""Wiring of the intake service: settings, store, Kafka, gRPC, HTTP, and an orderly stop."""

import asyncio
from datetime import timedelta

from helpdesk.api.reports.v1 import reports_pb2, reports_pb2_grpc
from helpdesk.api.tickets.v1 import tickets_pb2, tickets_pb2_grpc
from helpdesk.core.consumer_lag import consumer_lag_from
from helpdesk.core.grpc_server import GrpcServer, wait_for_shutdown
from helpdesk.core.health import dependency_checks
from helpdesk.core.kafka import (
    INTAKE_REQUESTS_TOPIC,
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
from helpdesk.intake.commands import TicketCommands
from helpdesk.intake.events import register_intake_subscriber, register_sla_subscriber
from helpdesk.intake.grpc_api import ReportApi, TicketService
from helpdesk.intake.http_api import ChatSecrets, HttpServer, MailPiping, create_app
from helpdesk.intake.knowledge_client import KnowledgeClient
from helpdesk.intake.mailbox import Mailbox
from helpdesk.intake.metrics import watch_backlog
from helpdesk.intake.settings import IntakeSettings
from helpdesk.intake.store import TicketStore

SERVICE = "intake"
log = get_logger(__name__)


def _mailbox(settings: IntakeSettings, commands: TicketCommands) -> Mailbox | None:
    """The IMAP poller, when a mailbox is configured."""
    if not settings.mail_imap_host:
        return None
    return Mailbox(
        commands,
        host=settings.mail_imap_host,
        port=settings.mail_imap_port,
        security=settings.mail_imap_security,
        ca_file=settings.mail_imap_ca_file,
        username=settings.mail_imap_username,
        password=settings.mail_imap_password.get_secret_value(),
        folder=settings.mail_imap_folder,
        processed_folder=settings.mail_imap_processed_folder,
        failed_folder=settings.mail_imap_failed_folder,
        poll_interval_seconds=settings.mail_poll_interval_seconds,
        number_prefix=settings.ticket_number_prefix,
        own_addresses=settings.mail_own_addresses,
        max_message_bytes=settings.mail_max_message_bytes,
        timeout_seconds=settings.mail_imap_timeout_seconds,
        max_attempts=settings.mail_max_attempts,
    )


async def main() -> None:
    settings = load_settings(IntakeSettings)
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    tracer_provider = setup_tracing(SERVICE)
    start_metrics_server(settings.metrics_port)

    mongo = mongo_client_from(settings, SERVICE)
    store = TicketStore(mongo[settings.database_name(SERVICE)])
    await store.create_indexes()

    broker = await broker_from(
        settings,
        SERVICE,
        [
            INTAKE_REQUESTS_TOPIC,
            TICKET_EVENTS_TOPIC,
            SLA_EVENTS_TOPIC,
            dead_letter_topic(settings.intake_consumer_group),
        ],
    )
    ticket_locks = DocumentLocks()
    relay = OutboxRelay(
        store.tickets,
        broker,
        sweep_interval=settings.outbox_sweep_interval_seconds,
        locks=ticket_locks,
    )
    knowledge = (
        KnowledgeClient(
            settings.knowledge_target,
            deadline_seconds=settings.knowledge_deadline_seconds,
            limit=settings.knowledge_suggestions,
        )
        if settings.knowledge_target
        else None
    )
    commands = TicketCommands(
        store,
        relay,
        number_prefix=settings.ticket_number_prefix,
        crash_after_store=settings.fault_crash_after_store,
        locks=ticket_locks,
        dedup_window=timedelta(seconds=settings.dedup_window_seconds),
        suggest=knowledge.suggest if knowledge else None,
    )
    register_intake_subscriber(broker, commands, group=settings.intake_consumer_group)
    register_sla_subscriber(broker, commands, group=settings.intake_consumer_group)
    await broker.start()
    relay.start()
    lag = consumer_lag_from(settings, broker)
    lag.start()
    mailbox = _mailbox(settings, commands)
    mail_task = asyncio.create_task(mailbox.run(), name="mailbox") if mailbox else None

    health_checks = dependency_checks(mongo, broker)
    # HTTP listens first: a port that cannot be bound stops the start before gRPC says
    # SERVING.
    http = None
    if settings.http_port:
        http = HttpServer(
            create_app(
                commands,
                alert_rules=settings.alert_rules(),
                checks=health_checks,
                max_body_bytes=settings.http_max_body_bytes,
                alertmanager_token=settings.alertmanager_bearer_token.get_secret_value(),
                chat_secrets=ChatSecrets(
                    telegram=settings.telegram_webhook_secret.get_secret_value(),
                    slack=settings.slack_signing_secret.get_secret_value(),
                ),
                mail=MailPiping(
                    token=settings.mail_inbound_token.get_secret_value(),
                    number_prefix=settings.ticket_number_prefix,
                    own_addresses=tuple(settings.mail_own_addresses),
                    max_message_bytes=settings.mail_max_message_bytes,
                ),
                tracer_provider=tracer_provider,
            ),
            host=settings.http_host,
            port=settings.http_port,
            grace=settings.shutdown_grace_seconds,
        )
        await http.start()

    server = GrpcServer(
        host=settings.grpc_host,
        port=settings.grpc_port,
        service_names=[
            tickets_pb2.DESCRIPTOR.services_by_name["TicketService"].full_name,
            reports_pb2.DESCRIPTOR.services_by_name["ReportService"].full_name,
        ],
        health_checks=health_checks,
        health_check_interval=settings.health_check_interval_seconds,
    )
    tickets_pb2_grpc.add_TicketServiceServicer_to_server(TicketService(commands), server.server)
    reports_pb2_grpc.add_ReportServiceServicer_to_server(ReportApi(commands), server.server)
    await server.start()
    backlog = asyncio.create_task(
        watch_backlog(commands.backlog, settings.backlog_refresh_seconds), name="backlog"
    )
    log.info("intake_ready", grpc_port=server.port, http_port=http.port if http else 0)

    await wait_for_shutdown()
    # Stop taking work, let what is in flight finish, publish what it stored, then close.
    # Both edges stop listening at once and drain side by side within the grace period.
    backlog.cancel()
    await lag.stop()
    draining = [server.stop(settings.shutdown_grace_seconds)]
    if http:
        draining.append(http.stop())
    await asyncio.gather(*draining)
    if mailbox and mail_task:
        await mailbox.stop()
        await mail_task
    log.info("stopping_consumers")
    await asyncio.gather(*(subscriber.stop() for subscriber in broker.subscribers))
    log.info("flushing_outbox")
    await relay.stop()
    log.info("closing_clients")
    await broker.stop()
    if knowledge:
        await knowledge.close()
    await mongo.close()
    shutdown_tracing(tracer_provider)
    log.info("intake_stopped")
