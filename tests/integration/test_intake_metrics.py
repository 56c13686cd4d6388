"""Prometheus metrics on the service's metrics port, after real traffic."""

import asyncio
import urllib.request
from typing import Any

import grpc
from conftest import free_port
from test_intake_grpc import new_request

from helpdesk.api.tickets.v1 import tickets_pb2_grpc


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


async def test_metrics_port_serves_red_and_business_figures(make_intake: Any) -> None:
    metrics_port = free_port()
    service = make_intake(
        HELPDESK_METRICS_PORT=str(metrics_port), HELPDESK_BACKLOG_REFRESH_SECONDS="0.5"
    )
    service.start()
    await service.wait_serving()
    async with grpc.aio.insecure_channel(service.target) as channel:
        tickets = tickets_pb2_grpc.TicketServiceStub(channel)
        for _ in range(3):
            await tickets.CreateTicket(new_request(), timeout=10)
    text = ""
    for _ in range(40):
        text = await asyncio.to_thread(scrape, metrics_port)
        if 'helpdesk_backlog_tickets{status="new",team=""} 3.0' in text:
            break
        await asyncio.sleep(0.25)
    assert 'helpdesk_backlog_tickets{status="new",team=""} 3.0' in text
    assert (
        'grpc_server_handled_total{grpc_code="OK",grpc_method="CreateTicket",'
        'grpc_service="helpdesk.api.tickets.v1.TicketService"} 3.0'
    ) in text
    assert 'helpdesk_tickets_created_total{channel="api",priority="high"} 3.0' in text
    assert "helpdesk_outbox_published_total" in text
    assert 'helpdesk_dependency_up{dependency="mongodb"} 1.0' in text
