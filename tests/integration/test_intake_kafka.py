"""Intake's Kafka channel: JSON requests on the intake topic become tickets; what cannot,
goes to the dead-letter topic with its reason and never blocks the partition."""

import asyncio
import json
import time
import uuid
from typing import Any

from kafka_tools import TopicWatcher, headers_of, produce

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.tickets.v1 import tickets_pb2

INTAKE_TOPIC = "helpdesk.intake.requests.v1"


async def find_by_request_id(tickets: Any, request_id: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = await tickets.ListTickets(tickets_pb2.ListTicketsRequest(page_size=500), timeout=10)
        for ticket in page.tickets:
            if ticket.request_id == request_id:
                return ticket
        await asyncio.sleep(0.3)
    raise AssertionError(f"no ticket for request {request_id} after {timeout}s")


def request_json(request_id: str, **overrides: Any) -> bytes:
    body: dict[str, Any] = {
        "request_id": request_id,
        "subject": "Disk almost full on db-7",
        "description": "Free space below 5% on /var.",
        "requester": {"email": "monitoring@example.com", "name": "Monitoring"},
        "priority": "urgent",
        "category": "incident",
        "tags": ["disk", "db"],
        "custom_fields": {"host": "db-7"},
    }
    body.update(overrides)
    return json.dumps(body).encode()


async def test_json_message_becomes_ticket(infra: Any, tickets: Any) -> None:
    request_id = f"it-{uuid.uuid4()}"
    await produce(
        infra.kafka,
        INTAKE_TOPIC,
        [(b"db-7", request_json(request_id), [("content-type", b"application/json")])],
    )
    ticket = await find_by_request_id(tickets, request_id)
    assert ticket.subject == "Disk almost full on db-7"
    assert ticket.priority == common_pb2.PRIORITY_URGENT
    assert ticket.category == common_pb2.CATEGORY_INCIDENT
    assert ticket.channel == common_pb2.CHANNEL_EVENT
    assert dict(ticket.custom_fields) == {"host": "db-7"}


async def test_redelivered_message_opens_one_ticket(infra: Any, tickets: Any) -> None:
    request_id = f"it-{uuid.uuid4()}"
    body = request_json(request_id)
    await produce(infra.kafka, INTAKE_TOPIC, [(None, body, []), (None, body, [])])
    await find_by_request_id(tickets, request_id)
    await asyncio.sleep(1.0)
    page = await tickets.ListTickets(tickets_pb2.ListTicketsRequest(page_size=500), timeout=10)
    assert [t.request_id for t in page.tickets].count(request_id) == 1


async def test_malformed_messages_go_to_dead_letters(infra: Any, intake: Any, tickets: Any) -> None:
    group = intake.env["HELPDESK_INTAKE_CONSUMER_GROUP"]
    dlq = f"helpdesk.dlq.{group}.v1"
    marker = uuid.uuid4().hex
    good_id = f"it-{uuid.uuid4()}"
    async with TopicWatcher(infra.kafka, dlq) as watcher:
        await produce(
            infra.kafka,
            INTAKE_TOPIC,
            [
                (marker.encode(), b"{not json", [("x-test", b"broken-json")]),
                (
                    marker.encode(),
                    request_json("", subject="", requester={}),
                    [("x-test", b"invalid")],
                ),
                (marker.encode(), json.dumps({"subject": 5}).encode(), [("x-test", b"wrong-type")]),
                # Same key, so same partition: it must not be blocked by the bad ones before it.
                (marker.encode(), request_json(good_id), [("x-test", b"good")]),
            ],
        )
        dead = await watcher.collect(lambda r: r.key == marker.encode(), count=3, settle=1.0)
    ticket = await find_by_request_id(tickets, good_id)
    assert ticket.request_id == good_id

    by_kind = {headers_of(r)["x-test"]: headers_of(r) for r in dead}
    assert set(by_kind) == {"broken-json", "invalid", "wrong-type"}
    assert "malformed JSON" in by_kind["broken-json"]["x-dlq-reason"]
    assert "subject: is required" in by_kind["invalid"]["x-dlq-reason"]
    assert "requester.email: is required" in by_kind["invalid"]["x-dlq-reason"]
    assert "subject: must be a string" in by_kind["wrong-type"]["x-dlq-reason"]
    for headers in by_kind.values():
        assert headers["x-dlq-source-topic"] == INTAKE_TOPIC
        assert headers["x-dlq-consumer-group"] == group
        assert int(headers["x-dlq-source-offset"]) >= 0
    payloads = {headers_of(r)["x-test"]: r.value for r in dead}
    assert payloads["broken-json"] == b"{not json"  # the original bytes, untouched


async def test_the_topic_takes_every_field_the_other_channels_set(infra: Any, tickets: Any) -> None:
    """What a chat, e-mail or monitoring ticket carries can come over Kafka too, as JSON or
    as a protobuf CreateTicketRequest."""
    as_json, as_proto = f"it-{uuid.uuid4()}", f"it-{uuid.uuid4()}"
    json_body = request_json(
        as_json,
        channel="chat",
        requester={
            "email": "anna@example.ru",
            "name": "Анна Петрова",
            "organization": "ООО Ромашка",
            "language": "ru",
        },
        custom_fields={"chat_platform": "telegram", "chat_id": "4242"},
    )
    proto_body = tickets_pb2.CreateTicketRequest(
        request_id=as_proto,
        subject="Почта не открывается",
        description="С утра Outlook не запускается.",
        requester=common_pb2.Requester(
            email="boris@example.com", name="Boris", organization="Acme", language="en-GB"
        ),
        priority=common_pb2.PRIORITY_HIGH,
        category=common_pb2.CATEGORY_SERVICE_REQUEST,
        channel=common_pb2.CHANNEL_EMAIL,
        tags=["mail", "outlook"],
        custom_fields={"office": "berlin"},
    ).SerializeToString()
    await produce(
        infra.kafka,
        INTAKE_TOPIC,
        [
            (None, json_body, [("content-type", b"application/json")]),
            (None, proto_body, [("content-type", b"application/x-protobuf")]),
        ],
    )

    from_json = await find_by_request_id(tickets, as_json)
    assert from_json.channel == common_pb2.CHANNEL_CHAT
    assert (from_json.requester.organization, from_json.requester.language) == ("ООО Ромашка", "ru")
    assert dict(from_json.custom_fields) == {"chat_platform": "telegram", "chat_id": "4242"}
    from_proto = await find_by_request_id(tickets, as_proto)
    assert from_proto.channel == common_pb2.CHANNEL_EMAIL
    assert from_proto.category == common_pb2.CATEGORY_SERVICE_REQUEST
    assert from_proto.priority == common_pb2.PRIORITY_HIGH
    assert list(from_proto.tags) == ["mail", "outlook"]
    assert from_proto.requester.name == "Boris"
    assert from_proto.requester.language == "en-GB"
    assert dict(from_proto.custom_fields) == {"office": "berlin"}
