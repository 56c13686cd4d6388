"""SLA translations: ticket SLA documents that read back equal (also through BSON), timer
documents, ticket facts from protobuf, and the gRPC and event views of the clocks."""

from datetime import UTC, datetime, timedelta
from random import Random
from typing import Any
from zoneinfo import ZoneInfo

import bson
import pytest
from bson.codec_options import CodecOptions
from hypothesis import given, settings
from hypothesis import strategies as st

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.tickets.v1 import tickets_pb2
from helpdesk.sla.domain.calendar import ALWAYS_OPEN, parse_calendar
from helpdesk.sla.domain.clocks import (
    AgentReplied,
    Deadline,
    DeadlineKind,
    Event,
    PolicyChanged,
    RequesterReplied,
    StatusChanged,
    TicketOpened,
    TicketSla,
    apply,
    due_bucket,
    fire_due,
    new_ticket_sla,
)
from helpdesk.sla.domain.policy import (
    PAUSABLE_STATUSES,
    Metric,
    Policy,
    TicketFacts,
)
from helpdesk.sla.mapping import (
    clock_to_event,
    deadline_from_document,
    deadline_to_document,
    facts_from_proto,
    sla_from_document,
    sla_to_document,
    ticket_sla_to_proto,
)

FR, NR, RES, PU = (
    Metric.FIRST_RESPONSE,
    Metric.NEXT_RESPONSE,
    Metric.RESOLUTION,
    Metric.PERIODIC_UPDATE,
)
H = timedelta(hours=1)
M = timedelta(minutes=1)
S = timedelta(seconds=1)
MSK = ZoneInfo("Europe/Moscow")
OFFICE = parse_calendar(
    {
        "id": "office",
        "name": "Office",
        "time_zone": "Europe/Moscow",
        "hours": {
            day: [{"start": "09:00", "end": "13:00"}, {"start": "14:00", "end": "18:00"}]
            for day in ("monday", "tuesday", "wednesday", "thursday", "friday")
        },
        "holidays": ["2026-06-12"],
    }
)
CALENDARS = {OFFICE.id: OFFICE}
STANDARD = Policy(
    id="standard",
    name="Standard",
    targets={FR: 4 * H, NR: 2 * H, RES: 16 * H, PU: 90 * S},
    calendar_id="office",
)
FACTS = TicketFacts(
    priority="high",
    category="incident",
    team="it-l2",
    requester_organization="Acme Corp",
    channel="email",
    tags=frozenset({"vpn", "vip"}),
)
# As the service's client reads: tz_aware, so dates come back as aware UTC datetimes.
BSON_OPTIONS = CodecOptions(tz_aware=True)


def msk(*args: int) -> datetime:
    """Moscow wall-clock time as a UTC instant. 1 June 2026 is a Monday."""
    return datetime(*args, tzinfo=MSK).astimezone(UTC)


MONDAY_9 = msk(2026, 6, 1, 9)


def opened(policy: Policy | None = STANDARD, status: str = "new") -> TicketSla:
    return apply(new_ticket_sla("t-1", policy), TicketOpened(MONDAY_9, FACTS, status), CALENDARS)


def run(state: TicketSla, *events: Event) -> TicketSla:
    for event in events:
        state = apply(state, event, CALENDARS)
    return state


def through_bson(doc: dict[str, Any]) -> dict[str, Any]:
    return bson.decode(bson.encode(doc), codec_options=BSON_OPTIONS)


# --- documents: round trips over whatever the clocks can become ----------------------------

# The walks draw from a seeded Random: hypothesis's own draws lean to small values, and most
# walks would then end before a clock is late, warned or closed by itself.
START = datetime(2026, 6, 1, 6, tzinfo=UTC)
# Weights by repetition. Closed is rare: a closed ticket's SLA no longer changes.
STEPS = ("agent",) * 4 + ("requester",) * 3 + ("status",) * 4 + ("fire",) * 2 + ("policy",)
WALK_STATUSES = ("new", "open", "open", "pending", "pending", "on_hold", "resolved", "closed")


def random_policy(rnd: Random) -> Policy | None:
    if rnd.random() < 0.15:
        return None
    return Policy(
        id=rnd.choice(("p", "q")),
        name="p",
        # Seconds to hours, whole minutes or not.
        targets={
            m: timedelta(hours=rnd.choice((0, 0, 1, 8)), seconds=rnd.randint(1, 3599))
            for m in Metric
            if rnd.random() < 0.7
        },
        calendar_id=rnd.choice(("", "office")),
        warn_share=rnd.uniform(0.05, 0.95),
        pause_statuses=frozenset(s for s in PAUSABLE_STATUSES if rnd.random() < 0.7),
        auto_close_after=timedelta(seconds=rnd.choice((0, 3, 36 * 60 * 60, 2 * 24 * 60 * 60))),
    )


def random_facts(rnd: Random) -> TicketFacts:
    return TicketFacts(
        priority=rnd.choice(("low", "normal", "urgent")),
        team=rnd.choice(("", "it-l1")),
        tags=frozenset(t for t in ("vip", "vpn", "printer") if rnd.random() < 0.3),
    )


def random_gap(rnd: Random) -> timedelta:
    """Seconds to two days, to the microsecond: the clocks keep whole seconds all the same."""
    return timedelta(
        hours=rnd.choice((0, 0, 0, 1, 2, 5, 24, 48)),
        seconds=rnd.randint(0, 3599),
        microseconds=rnd.randint(0, 999_999),
    )


def random_event(rnd: Random, at: datetime) -> Event | None:
    """One step of a ticket's life at `at`; None lets the timers fire what is due by then."""
    step = rnd.choice(STEPS)
    if step == "agent":
        return AgentReplied(at, public=rnd.random() < 0.8)
    if step == "requester":
        return RequesterReplied(at)
    if step == "status":
        return StatusChanged(at, "", rnd.choice(WALK_STATUSES))
    if step == "policy":
        facts = random_facts(rnd) if rnd.random() < 0.5 else None
        return PolicyChanged(at, random_policy(rnd), facts=facts)
    return None


@st.composite
def states(draw: st.DrawFn) -> TicketSla:
    """A ticket's SLA after a random life on the 24/7 calendar or the office's, or both."""
    rnd = draw(st.randoms(use_true_random=True))
    at = START + random_gap(rnd)
    opening = TicketOpened(at, random_facts(rnd), rnd.choice(WALK_STATUSES[:-1]))
    state = apply(new_ticket_sla("t-1", random_policy(rnd)), opening, CALENDARS)
    for _ in range(rnd.randint(0, 16)):
        at += random_gap(rnd)
        event = random_event(rnd, at)
        if event is None:
            state, _ = fire_due(state, CALENDARS, at)
        else:
            state = apply(state, event, CALENDARS)
    return state


@settings(deadline=None, max_examples=300)
@given(states())
def test_a_ticket_sla_reads_back_equal_from_its_document_and_from_bson(state: TicketSla) -> None:
    doc = sla_to_document(state)
    assert sla_from_document(doc) == state
    assert sla_from_document(through_bson(doc)) == state


def test_the_round_trips_keep_late_cycles_fired_timers_and_auto_close() -> None:
    def reads_back(state: TicketSla) -> None:
        assert sla_from_document(through_bson(sla_to_document(state))) == state

    state = run(opened(), AgentReplied(msk(2026, 6, 1, 10)))
    # The periodic update (90 s) warns at 72 s, then ends late before its breach fired.
    state, _ = fire_due(state, CALENDARS, msk(2026, 6, 1, 10, 1, 12))
    state = run(
        state,
        AgentReplied(msk(2026, 6, 1, 11)),
        RequesterReplied(msk(2026, 6, 1, 11, 30)),
        StatusChanged(msk(2026, 6, 1, 12), "new", "pending"),
    )
    assert state.late_cycles[0].warned_at == msk(2026, 6, 1, 10, 1, 12)
    assert state.awaiting_reply
    reads_back(state)
    state, fired = fire_due(state, CALENDARS, msk(2026, 6, 8, 12))
    assert {d.kind for d in fired} == {DeadlineKind.BREACH, DeadlineKind.AUTO_CLOSE}
    assert state.auto_close_fired_at == msk(2026, 6, 8, 12)
    assert state.clocks[PU].breached_at == msk(2026, 6, 8, 12)
    reads_back(state)


# --- documents: their shape ------------------------------------------------------------------


def test_a_document_holds_bson_friendly_values() -> None:
    state = run(opened(), StatusChanged(msk(2026, 6, 1, 10), "new", "pending"))
    doc = sla_to_document(state)
    assert doc["ticket_id"] == "t-1"
    assert doc["status"] == "pending"
    assert doc["targets"] == {
        "first_response": 4 * 3_600_000,
        "next_response": 2 * 3_600_000,
        "resolution": 16 * 3_600_000,
        "periodic_update": 90_000,
    }
    assert doc["pause_statuses"] == ["on_hold", "pending"]
    assert doc["pending_since"] == msk(2026, 6, 1, 10)
    assert doc["facts"] == {
        "priority": "high",
        "category": "incident",
        "team": "it-l2",
        "requester_organization": "Acme Corp",
        "channel": "email",
        "tags": ["vip", "vpn"],
    }
    assert list(doc["clocks"]) == ["first_response", "resolution"]
    assert doc["clocks"]["first_response"] == {
        "metric": "first_response",
        "started_at": MONDAY_9,
        "last_change": msk(2026, 6, 1, 10),
        "target": 4 * 3_600_000,
        "warn_after": 11_520_000,
        "elapsed": 3_600_000,
        "paused_for": 0,
        "state": "paused",
        "met_at": None,
        "warned_at": None,
        "breached_at": None,
    }
    assert doc["late_cycles"] == []
    assert doc["opened_at"].tzinfo is UTC


def test_instants_are_stored_in_utc_to_the_millisecond() -> None:
    local = datetime(2026, 6, 1, 12, 0, 0, 123_456, tzinfo=MSK)
    doc = sla_to_document(TicketSla("t-1", opened_at=local, updated_at=None))
    assert doc["opened_at"] == datetime(2026, 6, 1, 9, 0, 0, 123_000, tzinfo=UTC)
    assert doc["opened_at"].tzinfo is UTC
    assert doc["updated_at"] is None
    with pytest.raises(ValueError, match="timezone-aware"):
        sla_to_document(TicketSla("t-1", opened_at=datetime(2026, 6, 1)))


def test_reading_ignores_other_members_and_defaults_missing_ones() -> None:
    assert sla_from_document({"_id": "t-1", "ticket_id": "t-1", "version": 7}) == TicketSla("t-1")
    doc = sla_to_document(opened())
    assert sla_from_document({**doc, "risk": "ok", "number": "HD-1"}) == opened()


def test_a_state_stored_with_days_reads_its_auto_close_delay() -> None:
    doc = sla_to_document(opened())
    del doc["auto_close_after"]
    assert sla_from_document({**doc, "auto_close_after_days": 2}).auto_close_after == timedelta(
        days=2
    )
    assert sla_from_document(doc).auto_close_after == timedelta(days=5)


def test_dates_read_naive_count_as_utc() -> None:
    doc = sla_to_document(opened())
    doc["opened_at"] = doc["opened_at"].replace(tzinfo=None)
    read = sla_from_document(doc)
    assert read.opened_at == MONDAY_9
    assert read.opened_at is not None
    assert read.opened_at.tzinfo is UTC


@pytest.mark.parametrize(
    "deadline",
    [
        Deadline(FR, DeadlineKind.WARNING, msk(2026, 6, 1, 12, 12), MONDAY_9),
        Deadline(NR, DeadlineKind.BREACH, msk(2026, 6, 1, 12, 0, 20), msk(2026, 6, 1, 12)),
        Deadline(None, DeadlineKind.AUTO_CLOSE, msk(2026, 6, 6, 10), msk(2026, 6, 1, 10)),
    ],
)
def test_a_deadline_reads_back_equal_and_carries_its_due_minute(deadline: Deadline) -> None:
    doc = deadline_to_document(deadline)
    assert doc["bucket"] == due_bucket(deadline.at)
    assert doc["kind"] == deadline.kind.value
    assert doc["metric"] == (deadline.metric.value if deadline.metric else None)
    assert deadline_from_document(doc) == deadline
    assert deadline_from_document(through_bson(doc)) == deadline


def test_a_deadline_document_is_stored_to_the_millisecond() -> None:
    at = datetime(2026, 6, 1, 9, 0, 59, 999_999, tzinfo=UTC)
    doc = deadline_to_document(Deadline(FR, DeadlineKind.BREACH, at, MONDAY_9))
    assert doc["at"] == datetime(2026, 6, 1, 9, 0, 59, 999_000, tzinfo=UTC)
    assert doc["bucket"] == due_bucket(doc["at"])


# --- ticket facts from protobuf --------------------------------------------------------------


def test_facts_come_from_the_ticket_in_the_domain_words() -> None:
    ticket = tickets_pb2.Ticket(
        id="t-1",
        priority=common_pb2.PRIORITY_URGENT,
        category=common_pb2.CATEGORY_SERVICE_REQUEST,
        channel=common_pb2.CHANNEL_MONITORING,
        team="it-l2",
        requester=common_pb2.Requester(email="a@acme.test", organization="Acme Corp"),
        tags=["vpn", "vip", "vpn"],
    )
    assert facts_from_proto(ticket) == TicketFacts(
        priority="urgent",
        category="service_request",
        team="it-l2",
        requester_organization="Acme Corp",
        channel="monitoring",
        tags=frozenset({"vpn", "vip"}),
    )


def test_unset_ticket_enums_take_the_default_facts() -> None:
    assert facts_from_proto(tickets_pb2.Ticket(id="t-1")) == TicketFacts()


# --- the gRPC view ---------------------------------------------------------------------------


def test_a_running_clock_shows_its_target_counts_and_due_times() -> None:
    now = msk(2026, 6, 1, 12, 30)
    view = ticket_sla_to_proto(opened(), OFFICE, now, "HD-1042")
    assert (view.ticket_id, view.ticket_number, view.policy_id, view.calendar_id) == (
        "t-1",
        "HD-1042",
        "standard",
        "office",
    )
    assert view.status == "new"
    assert [m.metric for m in view.metrics] == ["first_response", "resolution"]
    first = view.metrics[0]
    assert (first.status, first.state) == ("at_risk", "running")
    assert first.target.ToTimedelta() == 4 * H
    # 09:00-12:30 with nothing paused.
    assert first.elapsed.ToTimedelta() == 3.5 * H
    assert first.remaining.ToTimedelta() == 0.5 * H
    assert first.HasField("paused")
    assert first.paused.ToTimedelta() == timedelta(0)
    assert first.started_at.ToDatetime(UTC) == MONDAY_9
    assert first.due_at.ToDatetime(UTC) == msk(2026, 6, 1, 13)
    assert first.warn_at.ToDatetime(UTC) == msk(2026, 6, 1, 12, 12)
    assert not first.HasField("met_at")
    assert not first.HasField("warned_at")
    assert not first.HasField("breached_at")
    # 16 hours of business time: Monday and Tuesday, each with its lunch hour off.
    assert view.metrics[1].due_at.ToDatetime(UTC) == msk(2026, 6, 2, 18)
    assert not view.HasField("auto_close_at")


def test_a_late_clock_has_negative_time_remaining() -> None:
    view = ticket_sla_to_proto(opened(), OFFICE, msk(2026, 6, 1, 16))
    first = view.metrics[0]
    assert first.status == "breached"
    # 09:00-13:00 and 14:00-16:00 counted against 4 hours.
    assert first.remaining.ToTimedelta() == -2 * H


def test_met_and_paused_clocks_have_no_due_time() -> None:
    state = run(opened(), AgentReplied(msk(2026, 6, 1, 10)))
    state, _ = fire_due(state, CALENDARS, msk(2026, 6, 1, 10, 1, 12))
    state, _ = fire_due(state, CALENDARS, msk(2026, 6, 1, 10, 1, 30))
    state = run(state, StatusChanged(msk(2026, 6, 1, 11), "new", "on_hold"))
    view = ticket_sla_to_proto(state, OFFICE, msk(2026, 6, 1, 15))
    by_metric = {m.metric: m for m in view.metrics}
    first, resolution = by_metric["first_response"], by_metric["resolution"]
    assert (first.status, first.state) == ("met", "stopped")
    assert first.met_at.ToDatetime(UTC) == msk(2026, 6, 1, 10)
    assert first.elapsed.ToTimedelta() == H
    assert not first.HasField("due_at")
    assert (resolution.status, resolution.state) == ("paused", "paused")
    assert not resolution.HasField("due_at")
    assert not resolution.HasField("warn_at")
    # 11:00-15:00 on hold, less the lunch hour.
    assert resolution.paused.ToTimedelta() == 3 * H
    update = by_metric["periodic_update"]
    assert update.status == "breached"
    assert update.warned_at.ToDatetime(UTC) == msk(2026, 6, 1, 10, 1, 12)
    assert update.breached_at.ToDatetime(UTC) == msk(2026, 6, 1, 10, 1, 30)


def test_a_clock_without_target_has_no_target_and_nothing_remaining() -> None:
    view = ticket_sla_to_proto(opened(policy=None), ALWAYS_OPEN, MONDAY_9 + H)
    first = view.metrics[0]
    assert first.status == "ok"
    assert not first.HasField("target")
    assert not first.HasField("remaining")
    assert first.elapsed.ToTimedelta() == H


def test_a_pending_ticket_shows_when_it_closes_itself() -> None:
    state = run(opened(), StatusChanged(msk(2026, 6, 1, 10), "new", "pending"))
    view = ticket_sla_to_proto(state, OFFICE, msk(2026, 6, 2, 10))
    assert view.auto_close_at.ToDatetime(UTC) == msk(2026, 6, 6, 10)
    answered = run(state, RequesterReplied(msk(2026, 6, 2, 10)))
    assert not ticket_sla_to_proto(answered, OFFICE, msk(2026, 6, 2, 11)).HasField("auto_close_at")


def test_the_view_needs_the_tickets_own_calendar() -> None:
    with pytest.raises(ValueError, match="calendar"):
        ticket_sla_to_proto(opened(), ALWAYS_OPEN, MONDAY_9)
    with pytest.raises(ValueError, match="calendar"):
        clock_to_event(opened(), FR, ALWAYS_OPEN, MONDAY_9, "HD-1", "", "", "")


# --- the event view --------------------------------------------------------------------------


def test_an_event_clock_tells_where_the_ticket_is() -> None:
    now = msk(2026, 6, 1, 12, 12)
    clock = clock_to_event(opened(), FR, OFFICE, now, "HD-1042", "it-l2", "agent-7", "high")
    assert (clock.ticket_id, clock.ticket_number, clock.metric, clock.policy_id) == (
        "t-1",
        "HD-1042",
        "first_response",
        "standard",
    )
    assert (clock.team, clock.assignee_id, clock.priority) == ("it-l2", "agent-7", "high")
    assert clock.target.ToTimedelta() == 4 * H
    assert clock.elapsed.ToTimedelta() == 3 * H + 12 * M
    assert clock.due_at.ToDatetime(UTC) == msk(2026, 6, 1, 13)


def test_an_event_clock_of_a_met_metric_has_no_due_time() -> None:
    state = run(opened(), AgentReplied(msk(2026, 6, 1, 10)))
    clock = clock_to_event(state, FR, OFFICE, msk(2026, 6, 1, 11), "HD-1", "", "", "normal")
    assert clock.elapsed.ToTimedelta() == H
    assert not clock.HasField("due_at")


def test_an_event_clock_needs_the_clock() -> None:
    with pytest.raises(ValueError, match="next_response"):
        clock_to_event(opened(), NR, OFFICE, MONDAY_9, "HD-1", "", "", "")
