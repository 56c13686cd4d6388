"""The notification service on real servers: intake and notification as processes, ticket
events over Kafka, a real SMTP server (aiosmtpd) and a real HTTP receiver on loopback."""

import asyncio
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import grpc
import pytest
from aiosmtpd.controller import Controller
from conftest import TICKET_EVENTS_TOPIC, free_port
from google.protobuf import struct_pb2
from kafka_tools import TopicWatcher, produce
from pymongo import AsyncMongoClient

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.notification.v1 import notification_pb2, notification_pb2_grpc
from helpdesk.api.tickets.v1 import tickets_pb2, tickets_pb2_grpc

WEBHOOK_SECRET = "hook-secret"
LEAD = common_pb2.Actor(id="lead-1", role=common_pb2.ACTOR_ROLE_AGENT)


class Mailbox:
    """An SMTP server's inbox: every message it accepted."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in str(m["To"])]


class Receiver(BaseHTTPRequestHandler):
    """Answers 503 to the first `failures` posts, then 200; keeps what it accepted."""

    failures: ClassVar[int] = 0
    seen: ClassVar[list[tuple[dict[str, str], bytes]]] = []
    accepted: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        headers = {k.lower(): v for k, v in self.headers.items()}
        type(self).seen.append((headers, body))
        if type(self).failures > 0:
            type(self).failures -= 1
            self.send_response(503)
        else:
            type(self).accepted.append((headers, body))
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@pytest.fixture
def webhook() -> Iterator[tuple[type[Receiver], str]]:
    Receiver.failures, Receiver.seen, Receiver.accepted = 0, [], []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Receiver, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


@pytest.fixture
async def desk(
    make_intake: Any, make_notification: Any, smtp: tuple[Mailbox, int]
) -> AsyncIterator[tuple[Any, Any]]:
    intake = make_intake()
    intake.start()
    await intake.wait_serving()
    notification = make_notification(
        HELPDESK_SMTP_PORT=str(smtp[1]), HELPDESK_WEBHOOK_SECRET=WEBHOOK_SECRET
    )
    notification.start()
    await notification.wait_serving()
    async with (
        grpc.aio.insecure_channel(intake.target) as to_intake,
        grpc.aio.insecure_channel(notification.target) as to_notification,
    ):
        yield (
            tickets_pb2_grpc.TicketServiceStub(to_intake),
            notification_pb2_grpc.NotificationServiceStub(to_notification),
        )


async def eventually(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, "not in time"
        await asyncio.sleep(0.2)


async def test_the_requester_is_acknowledged_once_even_when_the_event_comes_again(
    infra: Any, desk: tuple[Any, Any], smtp: tuple[Mailbox, int]
) -> None:
    tickets, notification = desk
    box, _ = smtp
    email = f"anna-{uuid.uuid4().hex[:6]}@example.ru"
    async with TopicWatcher(infra.kafka, TICKET_EVENTS_TOPIC) as watcher:
        ticket = await tickets.CreateTicket(
            tickets_pb2.CreateTicketRequest(
                request_id=f"it-{uuid.uuid4()}",
                subject="Не работает почта",
                description="Outlook не открывается.",
                requester=common_pb2.Requester(email=email, name="Анна", language="ru"),
            ),
            timeout=10,
        )
        (created,) = await watcher.collect(lambda r: r.key == ticket.id.encode())

    (mail,) = await eventually(lambda: box.to(email))
    assert f"[{ticket.number}]" in mail["Subject"]
    assert mail["Auto-Submitted"] == "auto-generated"
    body = mail.get_body(preferencelist=("plain",))
    assert body is not None
    assert any("а" <= ch <= "я" for ch in body.get_content().lower()), "Russian text"

    # At-least-once delivery hands the same event over again: nobody hears twice.
    await produce(
        infra.kafka, TICKET_EVENTS_TOPIC, [(created.key, created.value, list(created.headers))]
    )
    await asyncio.sleep(3)
    assert len(box.to(email)) == 1
    listed = await notification.ListDeliveries(
        notification_pb2.ListDeliveriesRequest(ticket_id=ticket.id), timeout=10
    )
    assert [(d.recipient, d.channel, d.status) for d in listed.deliveries] == [
        (email, "email", "sent")
    ]


async def test_a_failing_webhook_is_retried_and_delivered_once_signed(
    desk: tuple[Any, Any], webhook: tuple[type[Receiver], str]
) -> None:
    tickets, notification = desk
    receiver, url = webhook
    receiver.failures = 2
    agent_id = f"agent-{uuid.uuid4().hex[:6]}"
    person = struct_pb2.Struct()
    person.update({"id": agent_id, "name": "Boris", "channel": "webhook", "webhook_url": url})
    await notification.PutPerson(notification_pb2.PutPersonRequest(person=person), timeout=10)
    ticket = await tickets.CreateTicket(
        tickets_pb2.CreateTicketRequest(
            request_id=f"it-{uuid.uuid4()}",
            subject="VPN is down",
            description="Since the morning.",
            requester=common_pb2.Requester(email="carl@example.com"),
        ),
        timeout=10,
    )
    trace_id = uuid.uuid4().hex
    await tickets.AssignTicket(
        tickets_pb2.AssignTicketRequest(
            ticket_id=ticket.id, team="it", agent_id=agent_id, idempotency_key="a1", actor=LEAD
        ),
        timeout=10,
        metadata=(("traceparent", f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"),),
    )

    ((headers, body),) = await eventually(lambda: receiver.accepted)
    # The webhook continues the trace of the assignment that caused it.
    assert headers["traceparent"].split("-")[1] == trace_id
    await asyncio.sleep(2)
    assert len(receiver.accepted) == 1
    assert len(receiver.seen) == 3  # two 503s, then the delivery
    expected = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-helpdesk-signature"] == f"sha256={expected}"
    assert json.loads(body)["ticket_id"] == ticket.id
    listed = await notification.ListDeliveries(
        notification_pb2.ListDeliveriesRequest(recipient=agent_id), timeout=10
    )
    (delivery,) = listed.deliveries
    assert (delivery.status, delivery.attempts, delivery.channel) == ("sent", 3, "webhook")


async def test_a_permanent_failure_is_dead_and_can_be_replayed(
    desk: tuple[Any, Any], webhook: tuple[type[Receiver], str]
) -> None:
    tickets, notification = desk
    _, url = webhook
    agent_id = f"agent-{uuid.uuid4().hex[:6]}"
    person = struct_pb2.Struct()
    person.update(
        {"id": agent_id, "name": "Vera", "channel": "webhook", "webhook_url": url + "/gone"}
    )
    await notification.PutPerson(notification_pb2.PutPersonRequest(person=person), timeout=10)
    Receiver.failures = 0
    original = Receiver.do_POST

    def gone(self: Receiver) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(410 if self.path.endswith("/gone") else 200)
        self.end_headers()

    Receiver.do_POST = gone  # type: ignore[method-assign]
    try:
        ticket = await tickets.CreateTicket(
            tickets_pb2.CreateTicketRequest(
                request_id=f"it-{uuid.uuid4()}",
                subject="Printer",
                description="Jammed.",
                requester=common_pb2.Requester(email="dora@example.com"),
            ),
            timeout=10,
        )
        await tickets.AssignTicket(
            tickets_pb2.AssignTicketRequest(
                ticket_id=ticket.id, team="it", agent_id=agent_id, idempotency_key="a1", actor=LEAD
            ),
            timeout=10,
        )

        async def dead() -> Any:
            listed = await notification.ListDeliveries(
                notification_pb2.ListDeliveriesRequest(recipient=agent_id, status="dead"),
                timeout=10,
            )
            return listed.deliveries

        deadline = time.monotonic() + 30
        while not (found := await dead()):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.3)
        (delivery,) = found
        assert delivery.attempts == 1  # a permanent failure is not retried
        assert "410" in delivery.last_error
    finally:
        Receiver.do_POST = original  # type: ignore[method-assign]

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await notification.ReplayDelivery(
            notification_pb2.ReplayDeliveryRequest(id="no-such-delivery"), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    replayed = await notification.ReplayDelivery(
        notification_pb2.ReplayDeliveryRequest(id=delivery.id), timeout=10
    )
    assert replayed.status == "pending"


async def test_templates_are_checked_previewed_and_test_sent(
    desk: tuple[Any, Any], smtp: tuple[Mailbox, int]
) -> None:
    _, notification = desk
    box, _ = smtp
    broken = struct_pb2.Struct()
    broken.update(
        {
            "key": "ticket.created.requester",
            "language": "ru",
            "subject": "{{ ticket.number ",
            "text": "{{ nothing.here }}",
            "html": "<p>ok</p>",
        }
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await notification.PutTemplate(notification_pb2.PutTemplateRequest(template=broken))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "subject" in (caught.value.details() or "")

    mine = struct_pb2.Struct()
    mine.update(
        {
            "key": "ticket.created.requester",
            "language": "ru",
            "subject": "Заявка {{ ticket.number }} принята",
            "text": "Здравствуйте! Мы получили вашу заявку «{{ ticket.subject }}».",
            "html": "<p>Мы получили вашу заявку «{{ ticket.subject }}».</p>",
        }
    )
    await notification.PutTemplate(notification_pb2.PutTemplateRequest(template=mine), timeout=10)
    preview = await notification.PreviewTemplate(
        notification_pb2.PreviewTemplateRequest(key="ticket.created.requester", language="ru"),
        timeout=10,
    )
    assert "принята" in preview.subject
    assert "[HD-" in preview.subject  # the ticket token stays, for replies to thread

    await notification.TestSend(
        notification_pb2.TestSendRequest(
            key="ticket.created.requester",
            language="ru",
            channel="email",
            address="tester@example.com",
        ),
        timeout=30,
    )
    (sent,) = await eventually(lambda: box.to("tester@example.com"))
    assert sent["Subject"] == preview.subject


def _left_delivery(key: str, address: str, status: str, **extra: Any) -> dict[str, Any]:
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "_id": key,
        "event_id": key.split(":")[0],
        "ticket_id": "t-left",
        "template": "ticket.created.requester",
        "audience": "requester",
        "recipient": address,
        "channel": "email",
        "address": address,
        "language": "en",
        "event_time": now,
        "traceparent": "",
        "subject": f"[HD-1] {key}",
        "text": "Left by a crash.",
        "html": "",
        "status": status,
        "attempts": 0,
        "next_at": now,
        "created_at": now,
        "last_error": "",
        **extra,
    }


async def test_what_a_crash_left_is_finished_and_never_sent_twice(
    make_notification: Any, smtp: tuple[Mailbox, int], mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    """The store as a SIGKILL can leave it: a delivery sent and marked so but still open, one
    pending, and a database of the older layout (one deliveries collection) with a pending
    delivery in it. At start the pending ones go out once, the sent one never again."""
    box, port = smtp
    notification = make_notification(HELPDESK_SMTP_PORT=str(port))
    db = mongo[notification.env["HELPDESK_MONGODB_DATABASE"]]
    sent_at = datetime.now(UTC).replace(microsecond=0)
    await db["delivery_keys"].insert_many([{"_id": "e1:a@example.com:email"}])
    await db["open_deliveries"].insert_one(
        _left_delivery("e1:a@example.com:email", "a@example.com", "sent", sent_at=sent_at)
    )
    # Older layout: no key for these two yet, both in deliveries.
    await db["deliveries"].insert_many(
        [
            _left_delivery("e2:b@example.com:email", "b@example.com", "pending"),
            _left_delivery("e3:c@example.com:email", "c@example.com", "sent", sent_at=sent_at),
        ]
    )
    notification.start()
    await notification.wait_serving()
    await eventually(lambda: box.to("b@example.com"))
    await asyncio.sleep(2)  # a sweep or two more: nothing else goes out
    assert len(box.messages) == 1
    assert box.to("b@example.com")

    async with grpc.aio.insecure_channel(notification.target) as channel:
        stub = notification_pb2_grpc.NotificationServiceStub(channel)
        listed = await stub.ListDeliveries(
            notification_pb2.ListDeliveriesRequest(ticket_id="t-left"), timeout=10
        )
    assert sorted((d.id, d.status) for d in listed.deliveries) == [
        ("e1:a@example.com:email", "sent"),
        ("e2:b@example.com:email", "sent"),
        ("e3:c@example.com:email", "sent"),
    ]
    assert await db["open_deliveries"].count_documents({}) == 0
    keys = {doc["_id"] async for doc in db["delivery_keys"].find({})}
    assert {"e1:a@example.com:email", "e2:b@example.com:email", "e3:c@example.com:email"} <= keys


async def test_a_flood_to_one_requester_is_held_and_sent_as_one_digest(
    make_intake: Any, make_notification: Any, smtp: tuple[Mailbox, int]
) -> None:
    box, port = smtp
    intake = make_intake()
    intake.start()
    notification = make_notification(
        HELPDESK_SMTP_PORT=str(port),
        HELPDESK_THROTTLE_LIMIT="1",
        HELPDESK_THROTTLE_WINDOW_SECONDS="3",
    )
    notification.start()
    await intake.wait_serving()
    await notification.wait_serving()
    email = f"flood-{uuid.uuid4().hex[:6]}@example.com"
    async with (
        grpc.aio.insecure_channel(intake.target) as to_intake,
        grpc.aio.insecure_channel(notification.target) as to_notification,
    ):
        tickets = tickets_pb2_grpc.TicketServiceStub(to_intake)
        stub = notification_pb2_grpc.NotificationServiceStub(to_notification)
        for n in range(3):
            await tickets.CreateTicket(
                tickets_pb2.CreateTicketRequest(
                    request_id=f"it-{uuid.uuid4()}",
                    subject=f"Printer {n} is jammed",
                    description="Paper stuck.",
                    requester=common_pb2.Requester(email=email),
                ),
                timeout=10,
            )
        # The first goes out; the other two are held, then go as one digest.
        await eventually(lambda: len(box.to(email)) >= 2)
        await asyncio.sleep(2)
        assert len(box.to(email)) == 2
        listed = await stub.ListDeliveries(
            notification_pb2.ListDeliveriesRequest(recipient=email), timeout=10
        )
    statuses = sorted(d.status for d in listed.deliveries)
    assert statuses == ["digested", "digested", "sent", "sent"], statuses
