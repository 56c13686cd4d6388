"""The SLA service on real servers: intake and sla as processes, ticket events over Kafka,
timers in FerretDB, warnings and breaches on helpdesk.sla.events.v1. Policies are measured
(and auto-close) in seconds so that the clocks run out while the test waits."""

import asyncio
import signal
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from conftest import SLA_EVENTS_TOPIC
from google.protobuf import struct_pb2
from google.protobuf.field_mask_pb2 import FieldMask
from kafka_tools import TopicWatcher, headers_of

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.events.v1 import sla_events_pb2
from helpdesk.api.sla.v1 import sla_pb2, sla_pb2_grpc
from helpdesk.api.tickets.v1 import tickets_pb2, tickets_pb2_grpc

AGENT = common_pb2.Actor(id="agent-7", role=common_pb2.ACTOR_ROLE_AGENT)


def struct(raw: dict[str, Any]) -> struct_pb2.Struct:
    document = struct_pb2.Struct()
    document.update(raw)
    return document


class Desk:
    def __init__(self, tickets: Any, sla: Any) -> None:
        self.tickets = tickets
        self.sla = sla

    async def policy(self, **raw: Any) -> None:
        body = {"id": "p-" + uuid.uuid4().hex[:6], "name": "Seconds", **raw}
        await self.sla.PutPolicy(sla_pb2.PutPolicyRequest(policy=struct(body)), timeout=10)

    async def open(self, subject: str = "VPN is down") -> Any:
        return await self.tickets.CreateTicket(
            tickets_pb2.CreateTicketRequest(
                request_id=f"it-{uuid.uuid4()}",
                subject=subject,
                description="Since this morning.",
                requester=common_pb2.Requester(email="anna@example.com"),
                priority=common_pb2.PRIORITY_HIGH,
            ),
            timeout=10,
        )

    async def status(self, ticket_id: str, status: Any) -> None:
        await self.tickets.UpdateTicket(
            tickets_pb2.UpdateTicketRequest(
                id=ticket_id,
                ticket=tickets_pb2.Ticket(status=status),
                update_mask=FieldMask(paths=["status"]),
                actor=AGENT,
            ),
            timeout=10,
        )

    async def measured(self, ticket_id: str, timeout: float = 30) -> Any:
        """The ticket's SLA once the service has seen it."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return await self.sla.GetTicketSla(
                    sla_pb2.GetTicketSlaRequest(ticket_id=ticket_id), timeout=10
                )
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.3)


@pytest.fixture
async def desk(make_intake: Any, make_sla: Any) -> AsyncIterator[Desk]:
    intake = make_intake()
    intake.start()
    await intake.wait_serving()
    sla = make_sla(intake)
    sla.start()
    await sla.wait_serving()
    async with (
        grpc.aio.insecure_channel(intake.target) as to_intake,
        grpc.aio.insecure_channel(sla.target) as to_sla,
    ):
        found = Desk(
            tickets_pb2_grpc.TicketServiceStub(to_intake), sla_pb2_grpc.SlaServiceStub(to_sla)
        )
        found.process = sla  # type: ignore[attr-defined]
        found.intake = intake  # type: ignore[attr-defined]
        yield found


def for_ticket(ticket_id: str, kind: str) -> Any:
    def matches(record: Any) -> bool:
        return record.key == ticket_id.encode() and headers_of(record)["ce_type"] == (
            f"helpdesk.sla.{kind}.v1"
        )

    return matches


async def test_a_warning_then_a_breach_arrive_on_time(infra: Any, desk: Desk) -> None:
    await desk.policy(targets={"first_response": "8s"}, warn_share=0.5)
    async with TopicWatcher(infra.kafka, SLA_EVENTS_TOPIC) as watcher:
        ticket = await desk.open()
        opened = time.monotonic()
        (warning,) = await watcher.collect(for_ticket(ticket.id, "warning"), timeout=30)
        warned = time.monotonic() - opened
        (breach,) = await watcher.collect(for_ticket(ticket.id, "breached"), timeout=30)
        breached = time.monotonic() - opened

    assert 3.0 <= warned <= 6.5, warned
    assert 7.0 <= breached <= 10.5, breached
    clock = sla_events_pb2.SlaBreached.FromString(breach.value).clock
    assert (clock.metric, clock.ticket_number) == ("first_response", ticket.number)
    assert clock.target.seconds == 8
    assert clock.priority == "high"
    assert sla_events_pb2.SlaWarning.FromString(warning.value).clock.metric == "first_response"

    sla = await desk.measured(ticket.id)
    first = next(m for m in sla.metrics if m.metric == "first_response")
    assert first.status == "breached"
    assert first.HasField("breached_at")
    at_risk = await desk.sla.ListAtRisk(
        sla_pb2.ListAtRiskRequest(include_breached=True), timeout=10
    )
    assert ticket.id in [t.ticket_id for t in at_risk.tickets]

    # Intake keeps the state for its queue views.
    deadline = time.monotonic() + 20
    while (await desk.tickets.GetTicket(tickets_pb2.GetTicketRequest(id=ticket.id))).sla_state != (
        "breached"
    ):
        assert time.monotonic() < deadline, "intake never recorded the breach"
        await asyncio.sleep(0.3)
    listed = await desk.tickets.ListTickets(
        tickets_pb2.ListTicketsRequest(sla_states=["breached"]), timeout=10
    )
    assert [t.id for t in listed.tickets] == [ticket.id]
    history = await desk.tickets.GetTicketHistory(
        tickets_pb2.GetTicketHistoryRequest(ticket_id=ticket.id), timeout=10
    )
    changes = [
        (c.old_value, c.new_value)
        for e in history.entries
        for c in e.changes
        if c.field == "sla_state"
    ]
    assert changes == [("", "at_risk"), ("at_risk", "breached")]


async def test_a_public_reply_meets_the_target_and_nothing_fires(infra: Any, desk: Desk) -> None:
    await desk.policy(targets={"first_response": "6s"})
    async with TopicWatcher(infra.kafka, SLA_EVENTS_TOPIC) as watcher:
        ticket = await desk.open()
        await desk.measured(ticket.id)
        await desk.tickets.AddComment(
            tickets_pb2.AddCommentRequest(ticket_id=ticket.id, author=AGENT, body="On it."),
            timeout=10,
        )
        (met,) = await watcher.collect(for_ticket(ticket.id, "met"), timeout=30)
        late = await watcher.collect(
            lambda r: (
                r.key == ticket.id.encode() and headers_of(r)["ce_type"] != "helpdesk.sla.met.v1"
            ),
            count=0,
            timeout=10.0,
            settle=8.0,
        )

    assert late == []
    assert sla_events_pb2.SlaMet.FromString(met.value).breached is False
    first = next(
        m for m in (await desk.measured(ticket.id)).metrics if m.metric == "first_response"
    )
    assert first.status == "met"


async def test_waiting_on_the_requester_pauses_the_clock(infra: Any, desk: Desk) -> None:
    await desk.policy(targets={"resolution": "8s"}, warn_share=0.9)
    async with TopicWatcher(infra.kafka, SLA_EVENTS_TOPIC) as watcher:
        opening = time.monotonic()
        ticket = await desk.open()
        await desk.measured(ticket.id)
        await desk.status(ticket.id, common_pb2.TICKET_STATUS_PENDING)
        await asyncio.sleep(6)
        paused = await desk.measured(ticket.id)
        resolution = next(m for m in paused.metrics if m.metric == "resolution")
        assert (resolution.state, resolution.status) == ("paused", "paused")
        await desk.status(ticket.id, common_pb2.TICKET_STATUS_OPEN)
        (breach,) = await watcher.collect(for_ticket(ticket.id, "breached"), timeout=40)
        breached = time.monotonic() - opening

    # 8 s of business time plus the 6 s and more spent waiting on the requester; the SLA
    # counts whole seconds, so the start and the pause may each round down by up to one.
    assert breached >= 12.0, breached
    clock = sla_events_pb2.SlaBreached.FromString(breach.value).clock
    assert clock.metric == "resolution"


async def test_timers_fire_after_a_crash_and_restart(infra: Any, desk: Desk) -> None:
    await desk.policy(targets={"first_response": "5s"})
    async with TopicWatcher(infra.kafka, SLA_EVENTS_TOPIC) as watcher:
        opened = [await desk.open(f"Printer {n}") for n in range(4)]
        for ticket in opened:
            await desk.measured(ticket.id)
        process = desk.process  # type: ignore[attr-defined]
        process.signal(signal.SIGKILL)
        process.wait_exit()
        await asyncio.sleep(7)  # every timer is overdue while nobody runs
        process.start()
        await process.wait_serving()
        wanted = {t.id.encode() for t in opened}
        breaches = await watcher.collect(
            lambda r: r.key in wanted and headers_of(r)["ce_type"] == "helpdesk.sla.breached.v1",
            count=4,
            timeout=30,
            settle=3.0,
        )

    # Each overdue timer fired, and exactly once.
    assert sorted(r.key for r in breaches) == sorted(wanted)


async def test_an_edited_policy_applies_to_open_tickets(infra: Any, desk: Desk) -> None:
    body = {"id": "edited-" + uuid.uuid4().hex[:6], "name": "Edited"}
    put = desk.sla.PutPolicy
    await put(sla_pb2.PutPolicyRequest(policy=struct({**body, "targets": {"first_response": 60}})))
    async with TopicWatcher(infra.kafka, SLA_EVENTS_TOPIC) as watcher:
        ticket = await desk.open()
        await desk.measured(ticket.id)
        tightened = {**body, "targets": {"first_response": "6s"}}
        await put(sla_pb2.PutPolicyRequest(policy=struct(tightened)), timeout=30)
        (breach,) = await watcher.collect(for_ticket(ticket.id, "breached"), timeout=30)

    clock = sla_events_pb2.SlaBreached.FromString(breach.value).clock
    assert (clock.metric, clock.target.seconds) == ("first_response", 6)


async def test_a_deleted_policy_hands_its_open_tickets_to_the_next_one(
    infra: Any, desk: Desk
) -> None:
    suffix = uuid.uuid4().hex[:6]
    hours = {"id": f"hours-{suffix}", "name": "Around the clock", "always_open": True}
    await desk.sla.PutCalendar(sla_pb2.PutCalendarRequest(calendar=struct(hours)), timeout=10)
    high = f"high-{suffix}"
    await desk.policy(
        id=high,
        order=1,
        conditions={"priority": ["high"]},
        targets={"first_response": 60},
        calendar_id=hours["id"],
    )
    await desk.policy(id=f"rest-{suffix}", order=2, targets={"first_response": "6s"})
    async with TopicWatcher(infra.kafka, SLA_EVENTS_TOPIC) as watcher:
        ticket = await desk.open()
        assert (await desk.measured(ticket.id)).policy_id == high

        # The calendar is in use: refused, naming the policy.
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await desk.sla.DeleteCalendar(sla_pb2.DeleteCalendarRequest(id=hours["id"]))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert high in (refused.value.details() or "")

        deleted = await desk.sla.DeletePolicy(sla_pb2.DeletePolicyRequest(id=high), timeout=30)
        assert deleted.tickets_moved == 1
        moved = await desk.measured(ticket.id)
        assert (moved.policy_id, moved.calendar_id) == (f"rest-{suffix}", "")
        (breach,) = await watcher.collect(for_ticket(ticket.id, "breached"), timeout=30)

    # Measured from its opening under the policy that took over.
    clock = sla_events_pb2.SlaBreached.FromString(breach.value).clock
    assert (clock.policy_id, clock.target.seconds) == (f"rest-{suffix}", 6)
    listed = await desk.sla.ListPolicies(sla_pb2.ListPoliciesRequest(), timeout=10)
    assert [p.policy["id"] for p in listed.policies] == [f"rest-{suffix}"]

    # Nothing counts in the calendar any more; then both are gone.
    await desk.sla.DeleteCalendar(sla_pb2.DeleteCalendarRequest(id=hours["id"]), timeout=10)
    for call, request in (
        (desk.sla.DeletePolicy, sla_pb2.DeletePolicyRequest(id=high)),
        (desk.sla.DeleteCalendar, sla_pb2.DeleteCalendarRequest(id=hours["id"])),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await call(request, timeout=10)
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_silent_requester_s_ticket_closes_itself_and_a_reply_keeps_it_open(
    infra: Any, desk: Desk
) -> None:
    await desk.policy(auto_close_after="4s")
    silent, answering = await desk.open("Silent"), await desk.open("Answering")
    for ticket in (silent, answering):
        await desk.measured(ticket.id)
    set_pending = time.monotonic()
    for ticket in (silent, answering):
        await desk.status(ticket.id, common_pb2.TICKET_STATUS_PENDING)
    # The SLA service learns of the wait from the ticket events (on a slow machine it may
    # have closed the ticket already).
    deadline = time.monotonic() + 20
    while True:
        seen = await desk.measured(silent.id)
        if seen.HasField("auto_close_at") or seen.status == "closed":
            break
        assert time.monotonic() < deadline, "auto-close was never armed"
        await asyncio.sleep(0.2)
    await desk.tickets.AddComment(
        tickets_pb2.AddCommentRequest(
            ticket_id=answering.id,
            author=common_pb2.Actor(id="anna@example.com", role=common_pb2.ACTOR_ROLE_REQUESTER),
            body="Restarted it, still down.",
        ),
        timeout=10,
    )

    async def status_of(ticket_id: str) -> Any:
        found = await desk.tickets.GetTicket(tickets_pb2.GetTicketRequest(id=ticket_id), timeout=10)
        return found.status

    deadline = time.monotonic() + 30
    while await status_of(silent.id) != common_pb2.TICKET_STATUS_CLOSED:
        assert time.monotonic() < deadline, "the silent requester's ticket never closed"
        await asyncio.sleep(0.3)
    closed_after = time.monotonic() - set_pending
    # Four seconds after the ticket went pending; the SLA counts whole seconds, so the start
    # of the wait may round down by up to one.
    assert closed_after >= 3.0, closed_after

    # Closed by the SLA service through intake, with a public note saying why.
    history = await desk.tickets.GetTicketHistory(
        tickets_pb2.GetTicketHistoryRequest(ticket_id=silent.id), timeout=10
    )
    (note,) = [c for c in history.comments if c.author.role == common_pb2.ACTOR_ROLE_SYSTEM]
    assert note.author.id == "sla"
    assert not note.internal
    assert note.body.startswith("Closed automatically")
    closing = [e for e in history.entries if any(c.new_value == "closed" for c in e.changes)]
    assert [e.actor.id for e in closing] == ["sla"]

    # The reply came before the delay: long past it, that ticket is still open, untouched.
    await asyncio.sleep(max(0.0, set_pending + 8 - time.monotonic()))
    assert await status_of(answering.id) == common_pb2.TICKET_STATUS_OPEN
    replied = await desk.tickets.GetTicketHistory(
        tickets_pb2.GetTicketHistoryRequest(ticket_id=answering.id), timeout=10
    )
    assert [c.author.role for c in replied.comments] == [common_pb2.ACTOR_ROLE_REQUESTER]
    assert not (await desk.measured(answering.id)).HasField("auto_close_at")


async def test_an_edited_calendar_applies_to_open_tickets(infra: Any, desk: Desk) -> None:
    # Open around the clock, but today and tomorrow are holidays: the clock stands still.
    today = datetime.now(UTC).date()
    days = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    hours = {
        "id": "hours-" + uuid.uuid4().hex[:6],
        "name": "Every day",
        "time_zone": "UTC",
        "hours": {day: [{"start": "00:00", "end": "24:00"}] for day in days},
    }
    holidays = [str(today), str(today + timedelta(days=1))]
    put = desk.sla.PutCalendar
    await put(sla_pb2.PutCalendarRequest(calendar=struct({**hours, "holidays": holidays})))
    await desk.policy(targets={"first_response": "6s"}, calendar_id=hours["id"])
    async with TopicWatcher(infra.kafka, SLA_EVENTS_TOPIC) as watcher:
        ticket = await desk.open()
        await desk.measured(ticket.id)
        await asyncio.sleep(2)
        editing = time.monotonic()
        await put(sla_pb2.PutCalendarRequest(calendar=struct(hours)), timeout=30)
        (breach,) = await watcher.collect(for_ticket(ticket.id, "breached"), timeout=30)
        breached = time.monotonic() - editing

    # Six seconds of the new hours from the edit on (less up to one for the whole-second
    # rounding); the two seconds of holiday before it counted nothing.
    assert breached >= 5.0, breached
    clock = sla_events_pb2.SlaBreached.FromString(breach.value).clock
    assert (clock.metric, clock.target.seconds) == ("first_response", 6)
