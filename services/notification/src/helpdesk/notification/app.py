"""Wiring of the notification service: settings, store, senders, Kafka, gRPC, the delivery
worker, and an orderly stop."""

import asyncio
import contextlib
from datetime import timedelta

from helpdesk.api.notification.v1 import notification_pb2, notification_pb2_grpc
from helpdesk.core.consumer_lag import consumer_lag_from
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
from helpdesk.notification.channels import MailSettings, Senders
from helpdesk.notification.commands import NotificationCommands
from helpdesk.notification.events import register_event_subscribers
from helpdesk.notification.grpc_api import NotificationApi
from helpdesk.notification.settings import NotificationSettings
from helpdesk.notification.store import NotificationStore

SERVICE = "notification"
log = get_logger(__name__)


async def main() -> None:
    settings = load_settings(NotificationSettings)
    configure_logging(SERVICE, settings.log_level, settings.log_format)
    tracer_provider = setup_tracing(SERVICE)
    start_metrics_server(settings.metrics_port)

    mongo = mongo_client_from(settings, SERVICE)
    store = NotificationStore(mongo[settings.database_name(SERVICE)])
    await store.create_indexes()
    await store.backfill_keys()

    group = settings.notification_consumer_group
    broker = await broker_from(
        settings, SERVICE, [TICKET_EVENTS_TOPIC, SLA_EVENTS_TOPIC, dead_letter_topic(group)]
    )
    senders = Senders(
        MailSettings(
            host=settings.smtp_host,
            port=settings.smtp_port,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=settings.smtp_password.get_secret_value(),
            timeout=settings.smtp_timeout_seconds,
            sender=settings.mail_from,
            reply_to=settings.mail_reply_to,
        ),
        webhook_secret=settings.webhook_secret.get_secret_value(),
        telegram_token=settings.telegram_bot_token.get_secret_value(),
        telegram_api_url=settings.telegram_api_url,
        http_timeout=settings.http_timeout_seconds,
    )
    commands = NotificationCommands(
        store,
        senders,
        broker,
        group=group,
        managers=settings.managers,
        team_people=settings.team_people,
        portal_url=settings.portal_url,
        survey_url=settings.survey_url,
        typical_resolution=settings.typical_resolution,
        max_attempts=settings.max_attempts,
        retry_base=settings.retry_base_seconds,
        retry_cap=settings.retry_cap_seconds,
        throttle_limit=settings.throttle_limit,
        throttle_window=timedelta(seconds=settings.throttle_window_seconds),
    )
    register_event_subscribers(broker, commands, group=group)
    await broker.start()
    lag = consumer_lag_from(settings, broker)
    lag.start()
    worker = asyncio.create_task(commands.run(settings.delivery_sweep_seconds), name="deliveries")

    health_checks = dependency_checks(mongo, broker)
    server = GrpcServer(
        host=settings.grpc_host,
        port=settings.grpc_port,
        service_names=[
            notification_pb2.DESCRIPTOR.services_by_name["NotificationService"].full_name
        ],
        health_checks=health_checks,
        health_check_interval=settings.health_check_interval_seconds,
    )
    notification_pb2_grpc.add_NotificationServiceServicer_to_server(
        NotificationApi(commands), server.server
    )
    await server.start()
    log.info("notification_ready", grpc_port=server.port)

    await wait_for_shutdown()
    await lag.stop()
    await server.stop(settings.shutdown_grace_seconds)
    log.info("stopping_consumers")
    await asyncio.gather(*(subscriber.stop() for subscriber in broker.subscribers))
    # Attempts in flight finish (within the grace); what is not sent stays pending for the
    # next start: nothing is lost.
    commands.stop()
    try:
        await asyncio.wait_for(worker, timeout=settings.shutdown_grace_seconds)
    except TimeoutError:
        log.warning("deliveries_cut_short")
    with contextlib.suppress(asyncio.CancelledError):
        await worker
    await senders.close()
    await broker.stop()
    await mongo.close()
    shutdown_tracing(tracer_provider)
    log.info("notification_stopped")
