"""Intake over gRPC on real Kafka and FerretDB: create, get, list, validation, events."""

import asyncio
import uuid
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from kafka_tools import TopicWatcher, headers_of

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.events.v1 import ticket_events_pb2
from helpdesk.api.tickets.v1 import tickets_pb2

TICKET_EVENTS = "helpdesk.tickets.events.v1"


def new_request(**overrides: Any) -> tickets_pb2.CreateTicketRequest:
    fields: dict[str, Any] = {
        "request_id": f"it-{uuid.uuid4()}",
        "subject": "VPN is down",
        "description": "Since 9:00 the VPN client says 'connection refused'.",
        "requester": common_pb2.Requester(email="Ann@Example.com", name="Ann", language="en"),
        "priority": common_pb2.PRIORITY_HIGH,
        "category": common_pb2.CATEGORY_INCIDENT,
        "tags": ["vpn", "Network"],
        "custom_fields": {"office": "berlin"},
    }
    fields.update(overrides)
    return tickets_pb2.CreateTicketRequest(**fields)


async def test_create_get_and_list(tickets: Any) -> None:
    created = await tickets.CreateTicket(new_request(), timeout=10)
    assert created.number.startswith("HD-")
    assert created.status == common_pb2.TICKET_STATUS_NEW
    assert created.requester.email == "ann@example.com"
    assert list(created.tags) == ["vpn", "network"]
    assert created.channel == common_pb2.CHANNEL_API
    assert created.version == 1

    by_id = await tickets.GetTicket(tickets_pb2.GetTicketRequest(id=created.id), timeout=10)
    by_number = await tickets.GetTicket(
        tickets_pb2.GetTicketRequest(id=created.number.lower()), timeout=10
    )
    assert by_id == created
    assert by_number == created

    for _ in range(4):
        await tickets.CreateTicket(new_request(), timeout=10)
    seen: list[str] = []
    token = ""
    while True:
        page = await tickets.ListTickets(
            tickets_pb2.ListTicketsRequest(
                page_size=2, page_token=token, status=common_pb2.TICKET_STATUS_NEW
            ),
            timeout=10,
        )
        assert len(page.tickets) <= 2
        seen.extend(t.number for t in page.tickets)
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == 5
    assert len(set(seen)) == 5
    numbers = [int(n.split("-")[1]) for n in seen]
    assert numbers == sorted(numbers, reverse=True)  # newest first, no gaps or repeats

    closed = await tickets.ListTickets(
        tickets_pb2.ListTicketsRequest(status=common_pb2.TICKET_STATUS_CLOSED), timeout=10
    )
    assert list(closed.tickets) == []


async def test_bad_input_names_each_field(tickets: Any) -> None:
    bad = new_request(
        subject="",
        requester=common_pb2.Requester(email="not-an-address"),
        tags=["ok", "no spaces allowed"],
        priority=42,
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tickets.CreateTicket(bad, timeout=10)
    error = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(error)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    fields = {v.field for v in bad_request.field_violations}
    assert fields == {"subject", "requester.email", "tags[1]", "priority"}


async def test_unknown_ticket_is_not_found(tickets: Any) -> None:
    for key in ("HD-999999", str(uuid.uuid4())):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await tickets.GetTicket(tickets_pb2.GetTicketRequest(id=key), timeout=10)
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
        assert key in (caught.value.details() or "")


async def test_bad_page_token_is_refused(tickets: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tickets.ListTickets(tickets_pb2.ListTicketsRequest(page_token="junk"), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_created_event_reaches_kafka(infra: Any, tickets: Any) -> None:
    caller_trace = uuid.uuid4().hex
    caller = (("traceparent", f"00-{caller_trace}-{uuid.uuid4().hex[:16]}-01"),)
    async with TopicWatcher(infra.kafka, TICKET_EVENTS) as watcher:
        created = await tickets.CreateTicket(new_request(), timeout=10, metadata=caller)
        records = await watcher.collect(lambda r: r.key == created.id.encode(), settle=1.0)
    assert len(records) == 1, "exactly one TicketCreated per ticket"
    headers = headers_of(records[0])
    assert headers["ce_type"] == "helpdesk.ticket.created.v1"
    assert headers["ce_source"] == "helpdesk/intake"
    assert headers["ce_specversion"] == "1.0"
    assert headers["ce_id"]
    assert headers["ce_time"].endswith("Z")
    assert headers["content-type"] == "application/x-protobuf"
    version, trace_id, _span_id, _flags = headers["traceparent"].split("-")
    assert version == "00"
    assert trace_id == caller_trace, "the event continues the caller's trace"
    event = ticket_events_pb2.TicketCreated.FromString(records[0].value)
    assert event.ticket == created


async def test_concurrent_creates_get_distinct_numbers(tickets: Any) -> None:
    results = await asyncio.gather(
        *(tickets.CreateTicket(new_request(), timeout=60) for _ in range(200))
    )
    numbers = {t.number for t in results}
    ids = {t.id for t in results}
    assert len(numbers) == 200
    assert len(ids) == 200


async def test_same_request_id_gives_one_ticket(tickets: Any) -> None:
    request = new_request()
    first = await tickets.CreateTicket(request, timeout=10)
    again = await tickets.CreateTicket(request, timeout=10)
    assert again == first

    racing = new_request()
    raced = await asyncio.gather(*(tickets.CreateTicket(racing, timeout=30) for _ in range(10)))
    assert len({t.id for t in raced}) == 1


async def test_health_and_reflection(intake: Any) -> None:
    async with grpc.aio.insecure_channel(intake.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(
            health_pb2.HealthCheckRequest(service="helpdesk.api.tickets.v1.TicketService"),
            timeout=5,
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)

        async def ask() -> Any:
            yield reflection_pb2.ServerReflectionRequest(list_services="")

        async for answer in reflection.ServerReflectionInfo(ask(), timeout=5):
            names = {s.name for s in answer.list_services_response.service}
            assert "helpdesk.api.tickets.v1.TicketService" in names
            assert "grpc.health.v1.Health" in names
            break
