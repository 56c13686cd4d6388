"""Queue views: ListTickets filters and sorts on the real servers."""

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from test_intake_grpc import new_request

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.tickets.v1 import tickets_pb2

ROUTING = common_pb2.Actor(id="routing", role=common_pb2.ACTOR_ROLE_SYSTEM)


async def numbers(tickets: Any, **filters: Any) -> list[str]:
    found: list[str] = []
    token = ""
    while True:
        page = await tickets.ListTickets(
            tickets_pb2.ListTicketsRequest(page_size=2, page_token=token, **filters), timeout=10
        )
        found.extend(t.number for t in page.tickets)
        token = page.next_page_token
        if not token:
            return found


async def test_filters_combine_and_page(tickets: Any) -> None:
    vpn = await tickets.CreateTicket(
        new_request(subject="VPN drops every hour", tags=["vpn", "network"]), timeout=10
    )
    mail = await tickets.CreateTicket(
        new_request(
            subject="Mailbox full",
            tags=["mail"],
            priority=common_pb2.PRIORITY_LOW,
            requester=common_pb2.Requester(email="bob@example.com"),
        ),
        timeout=10,
    )
    printer = await tickets.CreateTicket(
        new_request(subject="Printer jam", tags=["printer"], priority=common_pb2.PRIORITY_URGENT),
        timeout=10,
    )
    await tickets.AssignTicket(
        tickets_pb2.AssignTicketRequest(
            ticket_id=vpn.id, team="network", agent_id="agent-1", actor=ROUTING
        ),
        timeout=10,
    )
    await tickets.AssignTicket(
        tickets_pb2.AssignTicketRequest(ticket_id=printer.id, team="network", actor=ROUTING),
        timeout=10,
    )

    assert await numbers(tickets, team="network") == [printer.number, vpn.number]
    assert await numbers(tickets, team="network", order_by="oldest") == [
        vpn.number,
        printer.number,
    ]
    assert await numbers(tickets, assignee_id="agent-1") == [vpn.number]
    assert await numbers(tickets, requester_email="BOB@example.com") == [mail.number]
    assert await numbers(
        tickets, priorities=[common_pb2.PRIORITY_LOW, common_pb2.PRIORITY_URGENT]
    ) == [printer.number, mail.number]
    assert await numbers(tickets, tags=["vpn", "network"]) == [vpn.number]
    assert await numbers(tickets, tags=["vpn", "mail"]) == []
    assert await numbers(tickets, subject_contains="mailBOX") == [mail.number]
    assert await numbers(
        tickets, statuses=[common_pb2.TICKET_STATUS_NEW], channel=common_pb2.CHANNEL_API
    ) == [mail.number]

    now = datetime.now(UTC)
    after = Timestamp()
    after.FromDatetime(now - timedelta(minutes=5))
    before = Timestamp()
    before.FromDatetime(now + timedelta(minutes=5))
    assert set(await numbers(tickets, created_after=after, created_before=before)) == {
        vpn.number,
        mail.number,
        printer.number,
    }
    assert await numbers(tickets, created_after=before) == []


async def test_bad_queries_name_the_field(tickets: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as bad_order:
        await tickets.ListTickets(tickets_pb2.ListTicketsRequest(order_by="priority"), timeout=10)
    assert bad_order.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "order_by" in (bad_order.value.details() or "")

    first = await tickets.ListTickets(
        tickets_pb2.ListTicketsRequest(page_size=1, team="network"), timeout=10
    )
    await tickets.CreateTicket(new_request(), timeout=10)
    await tickets.CreateTicket(new_request(), timeout=10)
    page = await tickets.ListTickets(tickets_pb2.ListTicketsRequest(page_size=1), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await tickets.ListTickets(
            tickets_pb2.ListTicketsRequest(page_size=1, team="hr", page_token=page.next_page_token),
            timeout=10,
        )
    assert foreign.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in (foreign.value.details() or "")
    assert list(first.tickets) == []
