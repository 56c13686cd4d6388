"""Routing on real servers: intake and routing as processes, ticket events over Kafka,
decisions applied through intake's AssignTicket, the directory in FerretDB."""

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from conftest import SLA_EVENTS_TOPIC, new_routing_group
from google.protobuf import struct_pb2
from google.protobuf.field_mask_pb2 import FieldMask
from kafka_tools import produce

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.events.v1 import sla_events_pb2
from helpdesk.api.routing.v1 import routing_pb2, routing_pb2_grpc
from helpdesk.api.tickets.v1 import tickets_pb2, tickets_pb2_grpc

AGENT_ACTOR = common_pb2.Actor(id="lead-1", role=common_pb2.ACTOR_ROLE_AGENT)


def struct(raw: dict[str, Any]) -> struct_pb2.Struct:
    document = struct_pb2.Struct()
    document.update(raw)
    return document


def agent(agent_id: str, team: str, capacity: int = 2, **more: Any) -> dict[str, Any]:
    return {
        "id": agent_id,
        "name": agent_id.title(),
        "email": f"{agent_id}@example.com",
        "teams": [team],
        "skills": ["email"],
        "languages": ["ru", "en"],
        "capacity": capacity,
        "availability": "online",
        **more,
    }


class Desk:
    """Intake and routing stubs, and the waits a scenario needs."""

    def __init__(self, tickets: Any, routing: Any) -> None:
        self.tickets = tickets
        self.routing = routing

    async def open(self, subject: str, **fields: Any) -> Any:
        return await self.tickets.CreateTicket(
            tickets_pb2.CreateTicketRequest(
                request_id=f"it-{uuid.uuid4()}",
                subject=subject,
                description=fields.pop("description", "Please help."),
                requester=common_pb2.Requester(email="anna@example.ru", language="ru"),
                **fields,
            ),
            timeout=10,
        )

    async def until(
        self, ticket_id: str, holds: Callable[[Any], bool], timeout: float = 45.0
    ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            ticket = await self.tickets.GetTicket(
                tickets_pb2.GetTicketRequest(id=ticket_id), timeout=10
            )
            if holds(ticket):
                return ticket
            if time.monotonic() > deadline:
                raise AssertionError(f"ticket {ticket.number} never got there: {ticket}")
            await asyncio.sleep(0.3)

    async def set_status(self, ticket_id: str, status: Any) -> Any:
        return await self.tickets.UpdateTicket(
            tickets_pb2.UpdateTicketRequest(
                id=ticket_id,
                ticket=tickets_pb2.Ticket(status=status),
                update_mask=FieldMask(paths=["status"]),
                actor=AGENT_ACTOR,
            ),
            timeout=10,
        )

    async def loads(self) -> dict[str, int]:
        reply = await self.routing.ListAgents(routing_pb2.ListAgentsRequest(), timeout=10)
        return {a.agent["id"]: a.open_tickets for a in reply.agents}


@pytest.fixture
async def desk(infra: Any, make_intake: Any, make_routing: Any) -> AsyncIterator[Desk]:
    intake = make_intake()
    intake.start()
    await intake.wait_serving()
    database, group = f"it_routing_{uuid.uuid4().hex[:8]}", new_routing_group(infra)
    routing = make_routing(intake, database, group, HELPDESK_AVAILABILITY_SWEEP_SECONDS="1")
    routing.start()
    await routing.wait_serving()
    async with (
        grpc.aio.insecure_channel(intake.target) as to_intake,
        grpc.aio.insecure_channel(routing.target) as to_routing,
    ):
        found = Desk(
            tickets_pb2_grpc.TicketServiceStub(to_intake),
            routing_pb2_grpc.RoutingServiceStub(to_routing),
        )
        found.intake, found.routing_process = intake, routing  # type: ignore[attr-defined]
        found.database, found.group = database, group  # type: ignore[attr-defined]
        yield found


async def directory(desk: Desk, capacity: int = 2) -> None:
    r = desk.routing
    for team, tier in (("it-l1", "L1"), ("it-l2", "L2")):
        await r.PutTeam(
            routing_pb2.PutTeamRequest(
                team=struct({"id": team, "name": team, "department": "it", "tier": tier})
            ),
            timeout=10,
        )
    for agent_id, team in (("anna", "it-l1"), ("boris", "it-l1"), ("vera", "it-l2")):
        await r.PutAgent(
            routing_pb2.PutAgentRequest(agent=struct(agent(agent_id, team, capacity))), timeout=10
        )
    await r.PutRule(
        routing_pb2.PutRuleRequest(
            rule=struct(
                {
                    "id": "mail",
                    "name": "Mail problems to IT L1",
                    "order": 10,
                    "conditions": [{"type": "words", "words": ["почт*", "outlook"]}],
                    "actions": [
                        {"type": "set_team", "team": "it-l1"},
                        {"type": "require_skills", "skills": ["email"]},
                        {"type": "add_tags", "tags": ["mail"]},
                    ],
                }
            )
        ),
        timeout=10,
    )


async def test_a_created_ticket_is_assigned_by_the_rules_and_says_why(desk: Desk) -> None:
    await directory(desk)

    ticket = await desk.open("Не работает почта")
    routed = await desk.until(ticket.id, lambda t: bool(t.assignee_id))

    assert routed.team == "it-l1"
    assert routed.tier == "L1"
    assert routed.assignee_id in {"anna", "boris"}
    assert routed.status == common_pb2.TICKET_STATUS_OPEN
    routed = await desk.until(ticket.id, lambda t: "mail" in t.tags)
    history = await desk.tickets.GetTicketHistory(
        tickets_pb2.GetTicketHistoryRequest(ticket_id=ticket.id), timeout=10
    )
    assigned = [e for e in history.entries if e.action == "assigned"]
    assert assigned[0].actor.id == "routing"
    assert "Mail problems to IT L1" in assigned[0].reason

    dry = await desk.routing.EvaluateRouting(
        routing_pb2.EvaluateRoutingRequest(ticket=tickets_pb2.Ticket(subject="Outlook завис")),
        timeout=10,
    )
    assert (dry.team, list(dry.matched_rules)) == ("it-l1", ["Mail problems to IT L1"])


async def test_bad_directory_input_is_refused_by_field(desk: Desk) -> None:
    await directory(desk)
    bad_rule = {
        "id": "broken",
        "name": "Broken",
        "conditions": [{"type": "pattern", "pattern": "(unclosed"}],
        "actions": [{"type": "set_team", "team": "nobody"}],
    }
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await desk.routing.PutRule(routing_pb2.PutRuleRequest(rule=struct(bad_rule)), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "conditions[0].pattern" in (caught.value.details() or "")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await desk.routing.PutAgent(
            routing_pb2.PutAgentRequest(agent=struct(agent("x", "it-l1", capacity=-1))), timeout=10
        )
    assert "capacity" in (caught.value.details() or "")


async def test_capacity_is_never_exceeded_and_the_queue_moves_when_it_frees(desk: Desk) -> None:
    await directory(desk, capacity=1)

    opened = [await desk.open(f"Почта не открывается {n}") for n in range(3)]
    assigned = [
        await desk.until(t.id, lambda t: t.team == "it-l1" and t.version > 1) for t in opened
    ]
    await asyncio.sleep(2)
    now = [
        await desk.tickets.GetTicket(tickets_pb2.GetTicketRequest(id=t.id), timeout=10)
        for t in assigned
    ]
    holders = Counter(t.assignee_id for t in now)
    assert holders == Counter({"anna": 1, "boris": 1, "": 1}), holders
    teams = await desk.routing.ListTeams(routing_pb2.ListTeamsRequest(), timeout=10)
    assert {t.team["id"]: t.waiting for t in teams.teams}["it-l1"] == 1

    waiting = next(t for t in now if not t.assignee_id)
    done = next(t for t in now if t.assignee_id)
    await desk.set_status(done.id, common_pb2.TICKET_STATUS_RESOLVED)
    taken = await desk.until(waiting.id, lambda t: bool(t.assignee_id))
    assert taken.assignee_id == done.assignee_id
    assert await desk.loads() == {"anna": 1, "boris": 1, "vera": 0}


async def test_two_replicas_never_overbook_an_agent(
    infra: Any, desk: Desk, make_routing: Any
) -> None:
    await directory(desk, capacity=2)
    second = make_routing(
        desk.intake,  # type: ignore[attr-defined]
        desk.database,  # type: ignore[attr-defined]
        desk.group,  # type: ignore[attr-defined]
    )
    second.start()
    await second.wait_serving()

    opened = await asyncio.gather(*(desk.open(f"Почта {n}") for n in range(8)))
    await asyncio.gather(*(desk.until(t.id, lambda t: t.version > 1) for t in opened))
    await asyncio.sleep(3)
    now = [
        await desk.tickets.GetTicket(tickets_pb2.GetTicketRequest(id=t.id), timeout=10)
        for t in opened
    ]
    holders = Counter(t.assignee_id for t in now if t.assignee_id)
    assert holders == Counter({"anna": 2, "boris": 2}), holders
    assert await desk.loads() == {"anna": 2, "boris": 2, "vera": 0}


async def test_out_of_office_hands_tickets_to_the_backup(desk: Desk) -> None:
    await directory(desk, capacity=3)
    ticket = await desk.open("Почта не работает")
    first = await desk.until(ticket.id, lambda t: bool(t.assignee_id))
    absent = first.assignee_id
    backup = "boris" if absent == "anna" else "anna"

    now = datetime.now(UTC)
    away = agent(
        absent,
        "it-l1",
        capacity=3,
        out_of_office=[
            {
                "start": (now - timedelta(minutes=1)).isoformat(),
                "end": (now + timedelta(hours=8)).isoformat(),
                "backup_agent_id": backup,
            }
        ],
    )
    await desk.routing.PutAgent(routing_pb2.PutAgentRequest(agent=struct(away)), timeout=10)

    moved = await desk.until(ticket.id, lambda t: t.assignee_id == backup)
    history = await desk.tickets.GetTicketHistory(
        tickets_pb2.GetTicketHistoryRequest(ticket_id=ticket.id), timeout=10
    )
    assert "out of office" in history.entries[-1].reason
    assert moved.team == "it-l1"
    assert (await desk.loads())[absent] == 0


async def test_a_ticket_reopened_too_often_goes_up_a_tier(desk: Desk) -> None:
    await directory(desk)
    ticket = await desk.open("Почта снова не работает")
    await desk.until(ticket.id, lambda t: bool(t.assignee_id))

    for _ in range(2):
        await desk.set_status(ticket.id, common_pb2.TICKET_STATUS_RESOLVED)
        await desk.set_status(ticket.id, common_pb2.TICKET_STATUS_OPEN)

    escalated = await desk.until(ticket.id, lambda t: t.tier == "L2")
    assert escalated.team == "it-l2"
    assert escalated.assignee_id == "vera"


async def test_a_resolution_breach_escalates_and_a_redelivery_does_not_again(
    infra: Any, desk: Desk
) -> None:
    await directory(desk)
    ticket = await desk.open("Почта не отправляется")
    await desk.until(ticket.id, lambda t: bool(t.assignee_id))
    breach = sla_events_pb2.SlaBreached(
        clock=sla_events_pb2.SlaClock(
            ticket_id=ticket.id, ticket_number=ticket.number, metric="resolution"
        )
    ).SerializeToString()
    headers = [("ce_id", f"sla-{uuid.uuid4()}".encode()), ("ce_type", b"helpdesk.sla.breached.v1")]

    # Delivered twice, as at-least-once delivery may.
    await produce(infra.kafka, SLA_EVENTS_TOPIC, [(ticket.id.encode(), breach, headers)] * 2)

    escalated = await desk.until(ticket.id, lambda t: t.tier == "L2")
    assert (escalated.team, escalated.assignee_id) == ("it-l2", "vera")
    await asyncio.sleep(2)
    history = await desk.tickets.GetTicketHistory(
        tickets_pb2.GetTicketHistoryRequest(ticket_id=ticket.id), timeout=10
    )
    escalations = [e for e in history.entries if e.action == "assigned" and "breached" in e.reason]
    assert len(escalations) == 1
    assert "SLA resolution target breached" in escalations[0].reason
