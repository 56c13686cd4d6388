"""The notification service under load, shared by its benchmark and its fault run.

Ticket events go straight onto the tickets topic as intake publishes them (CloudEvents
headers, protobuf TicketCreated payloads, keyed by ticket id). Every ticket has a requester
of its own (an e-mail acknowledgement each); every other one is created assigned to one of a
few agents who take their notices by webhook. Real receivers on loopback, an SMTP server and
an HTTP server, note every message they accept by its delivery id (X-Helpdesk-Delivery), so
that losses and duplicates show.
"""

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller
from google.protobuf import struct_pb2

from benchmarks.launcher import free_port
from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.events.v1 import ticket_events_pb2
from helpdesk.api.notification.v1 import notification_pb2, notification_pb2_grpc
from helpdesk.api.tickets.v1 import tickets_pb2
from helpdesk.core.kafka import TICKET_EVENTS_TOPIC, CloudEvent
from helpdesk.notification.domain.notices import Person, notices_for, parse_person
from helpdesk.notification.mapping import facts_from_event

TICKET_CREATED_TYPE = "helpdesk.ticket.created.v1"
EVENT_SOURCE = "helpdesk/benchmarks"
DELIVERY_HEADER = "X-Helpdesk-Delivery"
AGENTS = 20


@dataclass(frozen=True)
class PlannedEvent:
    """One ticket event to publish and the deliveries it must cause."""

    event_id: str
    ticket_id: str
    payload: bytes
    # Delivery ids (event:recipient:channel) the service must deliver for this event.
    expected: tuple[str, ...]


def agent_people(webhook_url: str) -> list[dict[str, Any]]:
    return [
        {"id": f"agent-{i}", "name": f"Agent {i}", "channel": "webhook", "webhook_url": webhook_url}
        for i in range(AGENTS)
    ]


def plan_events(count: int, run_id: str, people: Sequence[dict[str, Any]]) -> list[PlannedEvent]:
    """`count` TicketCreated events; what each must cause, as the service's own rules say."""
    directory: dict[str, Person] = {}
    for raw in people:
        person = parse_person(raw)
        directory[person.id] = person
    planned = []
    for n in range(count):
        ticket_id = f"nt-{run_id}-{n}"
        ticket = tickets_pb2.Ticket(
            id=ticket_id,
            number=f"HD-{n + 1}",
            subject=f"Printer {n} is jammed",
            description="Paper stuck in tray 2.",
            requester=common_pb2.Requester(
                email=f"r{n}-{run_id}@example.com",
                name=f"Requester {n}",
                language="ru" if n % 3 == 0 else "en",
            ),
            priority=common_pb2.PRIORITY_NORMAL,
            category=common_pb2.CATEGORY_INCIDENT,
            channel=common_pb2.CHANNEL_API,
            status=common_pb2.TICKET_STATUS_NEW,
            team="it",
            assignee_id=f"agent-{n % AGENTS}" if n % 2 else "",
            version=1,
        )
        payload = ticket_events_pb2.TicketCreated(ticket=ticket).SerializeToString()
        event_id = f"ev-{run_id}-{n}"
        facts = facts_from_event(TICKET_CREATED_TYPE, event_id, payload)
        assert facts is not None
        notices = notices_for(facts, directory, managers=(), team_people={})
        expected = tuple(f"{x.event_id}:{x.recipient}:{x.channel.value}" for x in notices)
        planned.append(PlannedEvent(event_id, ticket_id, payload, expected))
    return planned


def headers_of(event: PlannedEvent) -> list[tuple[str, bytes]]:
    """CloudEvents headers as intake's relay writes them, timed now."""
    cloud = CloudEvent(
        id=event.event_id,
        type=TICKET_CREATED_TYPE,
        source=EVENT_SOURCE,
        time=datetime.now(UTC),
        subject=event.ticket_id,
    )
    return [(k, v.encode()) for k, v in cloud.headers().items()]


async def publish(
    bootstrap: str, events: Sequence[PlannedEvent], rate: float = 0.0
) -> dict[str, float]:
    """Publishes the events (at `rate` per second, 0: as fast as the broker takes them);
    when each left, as time.time(), by event id."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap.split(","), acks="all", enable_idempotence=True
    )
    await producer.start()
    left: dict[str, float] = {}
    try:
        began = time.perf_counter()
        pending = []
        for i, event in enumerate(events):
            if rate > 0:
                delay = began + i / rate - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
            left[event.event_id] = time.time()
            pending.append(
                await producer.send(
                    TICKET_EVENTS_TOPIC,
                    event.payload,
                    key=event.ticket_id.encode(),
                    headers=headers_of(event),
                )
            )
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return left


class Receivers:
    """A real SMTP server and webhook HTTP server on loopback that note each message they
    accept by its delivery id, with the time (time.time()) of its first arrival."""

    def __init__(self) -> None:
        self.arrivals: Counter[str] = Counter()
        self.first_seen: dict[str, float] = {}
        self.unlabelled = 0
        self._lock = threading.Lock()
        self.smtp_port = 0
        self.webhook_url = ""

    def note(self, delivery_id: str | None) -> None:
        now = time.time()
        with self._lock:
            if not delivery_id:
                self.unlabelled += 1
                return
            self.arrivals[delivery_id] += 1
            self.first_seen.setdefault(delivery_id, now)

    def seen(self, expected: Sequence[str]) -> int:
        with self._lock:
            return sum(1 for d in expected if d in self.arrivals)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        headers = BytesHeaderParser().parsebytes(envelope.content)
        # A long header is folded (`X-Helpdesk-Delivery:` CRLF SP id); unfolded, the id
        # is what is left without the whitespace.
        delivery = headers.get(DELIVERY_HEADER)
        self.note("".join(delivery.split()) if delivery else None)
        return "250 OK"

    @contextmanager
    def running(self) -> Iterator["Receivers"]:
        receivers = self

        class Hook(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receivers.note(self.headers.get(DELIVERY_HEADER))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        http = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
        thread = threading.Thread(target=http.serve_forever, daemon=True)
        thread.start()
        self.smtp_port = free_port()
        smtp = Controller(self, hostname="127.0.0.1", port=self.smtp_port)
        smtp.start()
        self.webhook_url = f"http://127.0.0.1:{http.server_address[1]}/hook"
        try:
            yield self
        finally:
            smtp.stop()
            http.shutdown()
            http.server_close()


def notification_env(group: str, smtp_port: int) -> dict[str, str]:
    """The notification service's settings for a run: mail to the loopback receiver, no
    flood control (agents get many notices on purpose), quick retries."""
    return {
        "HELPDESK_NOTIFICATION_CONSUMER_GROUP": group,
        "HELPDESK_SMTP_HOST": "127.0.0.1",
        "HELPDESK_SMTP_PORT": str(smtp_port),
        "HELPDESK_THROTTLE_LIMIT": "1000000000",
        "HELPDESK_RETRY_BASE_SECONDS": "0.2",
        "HELPDESK_RETRY_CAP_SECONDS": "2",
        "HELPDESK_DELIVERY_SWEEP_SECONDS": "30",
        "HELPDESK_HEALTH_CHECK_INTERVAL_SECONDS": "1",
    }


async def put_people(target: str, people: Sequence[dict[str, Any]]) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = notification_pb2_grpc.NotificationServiceStub(channel)
        for raw in people:
            person = struct_pb2.Struct()
            person.update(raw)
            await stub.PutPerson(notification_pb2.PutPersonRequest(person=person), timeout=10)


def percentile(values: Sequence[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
