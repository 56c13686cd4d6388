"""Per-ticket SLA clocks: starts, pauses, replies, resolution, policy changes, deadlines and
their firing once. Instants are whole seconds, as the clocks keep them."""

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpdesk.core.errors import NotFound
from helpdesk.sla.domain.calendar import (
    ALWAYS_OPEN,
    BusinessCalendar,
    add_business_time,
    business_time_between,
    parse_calendar,
)
from helpdesk.sla.domain.clocks import (
    AgentReplied,
    ClockState,
    ClockStatus,
    Deadline,
    DeadlineKind,
    Event,
    PolicyChanged,
    RequesterReplied,
    StatusChanged,
    TicketOpened,
    TicketSla,
    apply,
    calendar_edited,
    calendar_for,
    due_at,
    due_bucket,
    elapsed,
    fire_due,
    mark_fired,
    new_ticket_sla,
    next_deadlines,
    paused_time,
    policy_deleted,
    remaining,
    reporting_calendar,
    status_of,
    warn_at,
)
from helpdesk.sla.domain.policy import Conditions, Metric, Policy, TicketFacts, parse_policy

FR, NR, RES, PU = (
    Metric.FIRST_RESPONSE,
    Metric.NEXT_RESPONSE,
    Metric.RESOLUTION,
    Metric.PERIODIC_UPDATE,
)
WARNING, BREACH, AUTO_CLOSE = DeadlineKind.WARNING, DeadlineKind.BREACH, DeadlineKind.AUTO_CLOSE
H = timedelta(hours=1)
M = timedelta(minutes=1)
MSK = ZoneInfo("Europe/Moscow")


def msk(*args: int) -> datetime:
    """Moscow wall-clock time as a UTC instant. 1 June 2026 is a Monday."""
    return datetime(*args, tzinfo=MSK).astimezone(UTC)


def office(calendar_id: str, time_zone: str) -> BusinessCalendar:
    return parse_calendar(
        {
            "id": calendar_id,
            "name": calendar_id,
            "time_zone": time_zone,
            "hours": {
                day: [{"start": "09:00", "end": "18:00"}]
                for day in ("monday", "tuesday", "wednesday", "thursday", "friday")
            },
        }
    )


OFFICE = office("office", "Europe/Moscow")
BERLIN = office("berlin", "Europe/Berlin")
EVENINGS = parse_calendar(
    {
        "id": "evenings",
        "name": "Evenings in New York",
        "time_zone": "America/New_York",
        "hours": {
            day: [{"start": "06:00", "end": "08:30"}, {"start": "18:00", "end": "24:00"}]
            for day in ("monday", "wednesday", "saturday", "sunday")
        },
        "holidays": ["2026-07-04", "2026-11-01"],
    }
)
CALENDARS = {c.id: c for c in (OFFICE, BERLIN, EVENINGS)}
STANDARD = Policy(
    id="standard",
    name="Standard",
    targets={FR: 4 * H, NR: 2 * H, RES: 16 * H, PU: 8 * H},
    calendar_id="office",
)
URGENT = Policy(id="urgent", name="Urgent", targets={FR: 3 * H, RES: 6 * H})


MONDAY_9 = msk(2026, 6, 1, 9)


def opened(
    at: datetime = MONDAY_9, policy: Policy | None = STANDARD, status: str = "new"
) -> TicketSla:
    return apply(new_ticket_sla("t-1", policy), TicketOpened(at, TicketFacts(), status), CALENDARS)


def run(state: TicketSla, *events: Event) -> TicketSla:
    for event in events:
        state = apply(state, event, CALENDARS)
    return state


def moved(at: datetime, old: str, new: str) -> StatusChanged:
    return StatusChanged(at, old, new)


def kinds(deadlines: Sequence[Deadline]) -> list[tuple[Metric | None, DeadlineKind, datetime]]:
    return [(d.metric, d.kind, d.at) for d in deadlines]


# --- starting --------------------------------------------------------------------------------


def test_opening_starts_first_response_and_resolution_in_business_time() -> None:
    state = opened()
    assert set(state.clocks) == {FR, RES}
    assert state.status == "new"
    assert state.policy_id == "standard"
    assert state.calendar_id == "office"
    assert due_at(state.clocks[FR], OFFICE) == msk(2026, 6, 1, 13)
    # 9 hours on Monday, 7 on Tuesday.
    assert due_at(state.clocks[RES], OFFICE) == msk(2026, 6, 2, 16)
    # At risk at 80%: 3 h 12 min.
    assert warn_at(state.clocks[FR], OFFICE) == msk(2026, 6, 1, 12, 12)


def test_the_deadlines_to_arm_come_soonest_first() -> None:
    state = opened()
    assert kinds(next_deadlines(state, CALENDARS, msk(2026, 6, 1, 9))) == [
        (FR, WARNING, msk(2026, 6, 1, 12, 12)),
        (FR, BREACH, msk(2026, 6, 1, 13)),
        (RES, WARNING, msk(2026, 6, 2, 12, 48)),
        (RES, BREACH, msk(2026, 6, 2, 16)),
    ]
    assert all(
        d.since == msk(2026, 6, 1, 9) for d in next_deadlines(state, CALENDARS, msk(2026, 6, 1, 9))
    )


def test_a_ticket_opened_late_on_friday_is_due_on_monday() -> None:
    state = opened(msk(2026, 6, 5, 17))
    assert due_at(state.clocks[FR], OFFICE) == msk(2026, 6, 8, 12)
    assert elapsed(state.clocks[FR], OFFICE, msk(2026, 6, 8, 9, 30)) == 90 * M
    assert remaining(state.clocks[FR], OFFICE, msk(2026, 6, 8, 9, 30)) == 150 * M


def test_opening_again_changes_nothing() -> None:
    state = opened()
    assert apply(state, TicketOpened(msk(2026, 6, 1, 10)), CALENDARS) == state


def test_a_ticket_opened_pending_starts_paused_with_auto_close_armed() -> None:
    state = opened(status="pending")
    assert {c.state for c in state.clocks.values()} == {ClockState.PAUSED}
    assert state.pending_since == msk(2026, 6, 1, 9)
    assert kinds(next_deadlines(state, CALENDARS, msk(2026, 6, 1, 9))) == [
        (None, AUTO_CLOSE, msk(2026, 6, 6, 9))
    ]


def test_a_ticket_opened_resolved_has_met_everything() -> None:
    state = opened(status="resolved")
    assert {status_of(c, OFFICE, msk(2026, 6, 3)) for c in state.clocks.values()} == {
        ClockStatus.MET
    }
    assert next_deadlines(state, CALENDARS, msk(2026, 6, 3)) == []


def test_without_a_policy_clocks_measure_but_never_breach() -> None:
    state = opened(policy=None)
    assert state.calendar_id == ""
    assert state.clocks[FR].target is None
    assert next_deadlines(state, CALENDARS, msk(2026, 6, 1, 9)) == []
    later = msk(2026, 6, 6, 9)
    assert elapsed(state.clocks[FR], ALWAYS_OPEN, later) == 5 * 24 * H
    assert status_of(state.clocks[FR], ALWAYS_OPEN, later) is ClockStatus.OK
    # Auto-close still applies, after the default 5 days.
    pending = run(state, moved(later, "new", "pending"))
    assert kinds(next_deadlines(pending, CALENDARS, later)) == [
        (None, AUTO_CLOSE, later + 5 * 24 * H)
    ]


# --- replies ---------------------------------------------------------------------------------


def test_the_first_public_agent_reply_meets_first_response() -> None:
    state = run(opened(), AgentReplied(msk(2026, 6, 1, 11, 30)))
    clock = state.clocks[FR]
    assert clock.state is ClockState.STOPPED
    assert clock.met_at == msk(2026, 6, 1, 11, 30)
    assert clock.elapsed == 150 * M
    assert status_of(clock, OFFICE, msk(2026, 6, 3)) is ClockStatus.MET
    assert due_at(clock, OFFICE) is None
    assert FR not in {d.metric for d in next_deadlines(state, CALENDARS, msk(2026, 6, 1, 12))}


def test_an_internal_note_is_no_response() -> None:
    state = opened()
    assert run(state, AgentReplied(msk(2026, 6, 1, 10), public=False)).clocks == state.clocks


def test_a_late_first_reply_is_a_breach_announced_once() -> None:
    state = run(opened(), AgentReplied(msk(2026, 6, 1, 14)))
    assert status_of(state.clocks[FR], OFFICE, msk(2026, 6, 1, 14)) is ClockStatus.BREACHED
    # Its timer had not fired yet: the breach is owed now.
    now = msk(2026, 6, 1, 14, 0, 20)
    state, fired = fire_due(state, CALENDARS, now)
    assert kinds(fired) == [(FR, BREACH, now)]
    assert state.clocks[FR].breached_at == now
    assert fire_due(state, CALENDARS, now + H)[1] == []


def test_a_reply_exactly_at_the_due_instant_is_late() -> None:
    state = run(opened(), AgentReplied(msk(2026, 6, 1, 13)))
    assert status_of(state.clocks[FR], OFFICE, msk(2026, 6, 1, 13)) is ClockStatus.BREACHED
    in_time = run(opened(), AgentReplied(msk(2026, 6, 1, 12, 59, 59)))
    assert status_of(in_time.clocks[FR], OFFICE, msk(2026, 6, 1, 13)) is ClockStatus.MET


def test_next_response_starts_when_the_requester_writes_after_the_first_response() -> None:
    state = run(
        opened(),
        RequesterReplied(msk(2026, 6, 1, 9, 30)),  # still covered by the first response
        AgentReplied(msk(2026, 6, 1, 10)),
    )
    assert NR not in state.clocks
    assert not state.awaiting_reply
    state = run(state, RequesterReplied(msk(2026, 6, 1, 17)))
    assert state.awaiting_reply
    assert state.clocks[NR].started_at == msk(2026, 6, 1, 17)
    assert due_at(state.clocks[NR], OFFICE) == msk(2026, 6, 2, 10)
    # A second message does not move the due time: the oldest unanswered one counts.
    state = run(state, RequesterReplied(msk(2026, 6, 2, 9)))
    assert due_at(state.clocks[NR], OFFICE) == msk(2026, 6, 2, 10)
    state = run(state, AgentReplied(msk(2026, 6, 2, 9, 45)))
    assert state.clocks[NR].state is ClockState.STOPPED
    assert status_of(state.clocks[NR], OFFICE, msk(2026, 6, 2, 12)) is ClockStatus.MET
    assert not state.awaiting_reply
    # The next message starts a fresh cycle.
    state = run(state, RequesterReplied(msk(2026, 6, 2, 11)))
    assert state.clocks[NR].started_at == msk(2026, 6, 2, 11)
    assert state.clocks[NR].elapsed == timedelta(0)


def test_periodic_updates_are_due_a_target_after_each_public_reply() -> None:
    state = run(opened(), AgentReplied(msk(2026, 6, 1, 10)))
    assert due_at(state.clocks[PU], OFFICE) == msk(2026, 6, 1, 18)
    state = run(state, AgentReplied(msk(2026, 6, 1, 15)))
    assert state.clocks[PU].started_at == msk(2026, 6, 1, 15)
    assert due_at(state.clocks[PU], OFFICE) == msk(2026, 6, 2, 14)


def test_an_update_just_after_the_due_instant_still_owes_its_breach() -> None:
    state = run(opened(), AgentReplied(msk(2026, 6, 1, 10)))
    # The periodic update was due at 18:00; the agent posts before the breach timer fired.
    state = run(state, AgentReplied(msk(2026, 6, 1, 18, 0, 30)))
    assert [c.started_at for c in state.late_cycles] == [msk(2026, 6, 1, 10)]
    now = msk(2026, 6, 1, 18, 1)
    state, fired = fire_due(state, CALENDARS, now)
    assert [(d.metric, d.kind, d.since) for d in fired] == [(PU, BREACH, msk(2026, 6, 1, 10))]
    assert state.late_cycles == ()
    assert state.clocks[PU].breached_at is None  # the new cycle owes nothing
    assert fire_due(state, CALENDARS, now)[1] == []


# --- warnings and breaches fire once ---------------------------------------------------------


def test_the_warning_and_the_breach_each_fire_once() -> None:
    state = opened()
    state, fired = fire_due(state, CALENDARS, msk(2026, 6, 1, 12, 12))
    assert kinds(fired) == [(FR, WARNING, msk(2026, 6, 1, 12, 12))]
    assert state.clocks[FR].warned_at == msk(2026, 6, 1, 12, 12)
    assert fire_due(state, CALENDARS, msk(2026, 6, 1, 12, 30))[1] == []
    assert (FR, WARNING) not in {
        (d.metric, d.kind) for d in next_deadlines(state, CALENDARS, msk(2026, 6, 1, 12, 30))
    }
    state, fired = fire_due(state, CALENDARS, msk(2026, 6, 1, 13))
    assert kinds(fired) == [(FR, BREACH, msk(2026, 6, 1, 13))]
    assert status_of(state.clocks[FR], OFFICE, msk(2026, 6, 1, 13)) is ClockStatus.BREACHED
    assert fire_due(state, CALENDARS, msk(2026, 6, 1, 17))[1] == []
    # A late reply after the breach fired owes nothing more.
    state = run(state, AgentReplied(msk(2026, 6, 1, 14)))
    assert fire_due(state, CALENDARS, msk(2026, 6, 1, 14))[1] == []


def test_a_warning_overtaken_by_its_breach_is_not_sent() -> None:
    _, fired = fire_due(opened(), CALENDARS, msk(2026, 6, 1, 13, 5))
    assert kinds(fired) == [(FR, BREACH, msk(2026, 6, 1, 13, 5))]


def test_mark_fired_is_idempotent_and_ignores_timers_of_gone_cycles() -> None:
    state = opened()
    once = mark_fired(state, FR, BREACH, msk(2026, 6, 1, 13), since=msk(2026, 6, 1, 9))
    assert mark_fired(once, FR, BREACH, msk(2026, 6, 1, 14)) == once
    assert mark_fired(state, FR, BREACH, msk(2026, 6, 1, 13), since=msk(2026, 5, 1)) == state
    assert mark_fired(state, NR, WARNING, msk(2026, 6, 1, 13)) == state
    with pytest.raises(ValueError, match="metric"):
        mark_fired(state, None, BREACH, msk(2026, 6, 1, 13))


def test_status_of_tracks_the_clock_over_time() -> None:
    clock = opened().clocks[FR]
    assert status_of(clock, OFFICE, msk(2026, 6, 1, 10)) is ClockStatus.OK
    assert status_of(clock, OFFICE, msk(2026, 6, 1, 12, 12)) is ClockStatus.AT_RISK
    assert status_of(clock, OFFICE, msk(2026, 6, 1, 13)) is ClockStatus.BREACHED
    assert remaining(clock, OFFICE, msk(2026, 6, 1, 14)) == -H


# --- targets finer than a minute -------------------------------------------------------------

S = timedelta(seconds=1)


def chat_policy(target: str, **changes: object) -> Policy:
    return parse_policy(
        {"id": "chat", "name": "Chat", "targets": {"first_response": target}} | changes
    )


def test_a_20_second_target_warns_at_16_seconds_and_breaches_at_20() -> None:
    start = datetime(2026, 6, 1, 9, tzinfo=UTC)
    state = apply(new_ticket_sla("t-1", chat_policy("20s")), TicketOpened(start), CALENDARS)
    clock = state.clocks[FR]
    assert (clock.target, clock.warn_after) == (20 * S, 16 * S)
    assert warn_at(clock, ALWAYS_OPEN) == start + 16 * S
    assert due_at(clock, ALWAYS_OPEN) == start + 20 * S
    assert kinds(next_deadlines(state, CALENDARS, start)) == [
        (FR, WARNING, start + 16 * S),
        (FR, BREACH, start + 20 * S),
    ]
    assert status_of(clock, ALWAYS_OPEN, start + 15 * S) is ClockStatus.OK
    assert status_of(clock, ALWAYS_OPEN, start + 16 * S) is ClockStatus.AT_RISK
    assert status_of(clock, ALWAYS_OPEN, start + 19 * S) is ClockStatus.AT_RISK
    assert status_of(clock, ALWAYS_OPEN, start + 20 * S) is ClockStatus.BREACHED
    assert remaining(clock, ALWAYS_OPEN, start + 25 * S) == -5 * S

    assert fire_due(state, CALENDARS, start + 15 * S)[1] == []
    state, fired = fire_due(state, CALENDARS, start + 16 * S)
    assert kinds(fired) == [(FR, WARNING, start + 16 * S)]
    assert fire_due(state, CALENDARS, start + 19 * S)[1] == []
    state, fired = fire_due(state, CALENDARS, start + 20 * S)
    assert kinds(fired) == [(FR, BREACH, start + 20 * S)]
    assert state.clocks[FR].breached_at == start + 20 * S


def test_a_reply_a_second_before_a_20_second_target_is_in_time() -> None:
    start = datetime(2026, 6, 1, 9, tzinfo=UTC)
    state = apply(new_ticket_sla("t-1", chat_policy("20s")), TicketOpened(start), CALENDARS)
    in_time = run(state, AgentReplied(start + 19 * S)).clocks[FR]
    late = run(state, AgentReplied(start + 20 * S)).clocks[FR]
    assert status_of(in_time, ALWAYS_OPEN, start + H) is ClockStatus.MET
    assert status_of(late, ALWAYS_OPEN, start + H) is ClockStatus.BREACHED


@pytest.mark.parametrize(
    ("target", "warn_share", "warn_after"),
    [("20s", 0.8, 16 * S), ("19s", 0.8, 15 * S), ("21s", 0.75, 15 * S), ("1s", 0.8, 0 * S)],
)
def test_the_warning_point_of_a_seconds_target_rounds_down_to_the_second(
    target: str, warn_share: float, warn_after: timedelta
) -> None:
    start = datetime(2026, 6, 1, 9, tzinfo=UTC)
    policy = chat_policy(target, warn_share=warn_share)
    state = apply(new_ticket_sla("t-1", policy), TicketOpened(start), CALENDARS)
    assert state.clocks[FR].warn_after == warn_after
    assert warn_at(state.clocks[FR], ALWAYS_OPEN) == start + warn_after


def test_a_seconds_target_carries_over_closing_time_to_the_next_business_day() -> None:
    policy = replace(chat_policy("20s"), calendar_id="office")
    state = opened(msk(2026, 6, 1, 17, 59, 50), policy)
    # 10 seconds on Monday, 10 on Tuesday morning; the warning point at 16 s.
    assert due_at(state.clocks[FR], OFFICE) == msk(2026, 6, 2, 9, 0, 10)
    assert warn_at(state.clocks[FR], OFFICE) == msk(2026, 6, 2, 9, 0, 6)


# --- pauses ----------------------------------------------------------------------------------


def test_pending_pauses_every_clock_and_open_resumes_them() -> None:
    state = run(opened(), moved(msk(2026, 6, 1, 10), "new", "pending"))
    clock = state.clocks[FR]
    assert clock.state is ClockState.PAUSED
    assert due_at(clock, OFFICE) is None
    assert status_of(clock, OFFICE, msk(2026, 6, 2, 10)) is ClockStatus.PAUSED
    assert paused_time(clock, OFFICE, msk(2026, 6, 2, 10)) == 9 * H
    assert [d.kind for d in next_deadlines(state, CALENDARS, msk(2026, 6, 1, 10))] == [AUTO_CLOSE]
    state = run(state, moved(msk(2026, 6, 2, 10), "pending", "open"))
    clock = state.clocks[FR]
    assert clock.elapsed == H
    assert clock.paused_for == 9 * H  # the rest of Monday and Tuesday's first hour
    # Due 9 business hours later than without the pause.
    assert due_at(clock, OFFICE) == msk(2026, 6, 2, 13)
    assert due_at(clock, OFFICE) == add_business_time(OFFICE, msk(2026, 6, 1, 13), 9 * H)


def test_on_hold_pauses_too_unless_the_policy_says_otherwise() -> None:
    state = run(opened(), moved(msk(2026, 6, 1, 10), "new", "on_hold"))
    assert state.clocks[FR].state is ClockState.PAUSED
    assert state.pending_since is None  # auto-close waits on the requester only
    only_pending = replace(STANDARD, pause_statuses=frozenset({"pending"}))
    state = run(opened(policy=only_pending), moved(msk(2026, 6, 1, 10), "new", "on_hold"))
    assert state.clocks[FR].state is ClockState.RUNNING


def test_moving_between_pause_statuses_keeps_counting_paused_time() -> None:
    state = run(
        opened(),
        moved(msk(2026, 6, 1, 10), "new", "pending"),
        moved(msk(2026, 6, 1, 12), "pending", "on_hold"),
        moved(msk(2026, 6, 1, 15), "on_hold", "open"),
    )
    assert state.clocks[RES].elapsed == H
    assert state.clocks[RES].paused_for == 5 * H


# --- resolution, reopen, close ---------------------------------------------------------------


def test_resolving_meets_resolution_and_reopening_goes_on_from_its_count() -> None:
    state = run(
        opened(),
        AgentReplied(msk(2026, 6, 1, 10)),
        moved(msk(2026, 6, 1, 15), "open", "resolved"),
    )
    assert state.clocks[RES].state is ClockState.STOPPED
    assert state.clocks[RES].elapsed == 6 * H
    assert status_of(state.clocks[RES], OFFICE, msk(2026, 6, 2, 9)) is ClockStatus.MET
    assert next_deadlines(state, CALENDARS, msk(2026, 6, 1, 15)) == []
    state = run(state, moved(msk(2026, 6, 2, 9), "resolved", "open"))
    clock = state.clocks[RES]
    assert clock.state is ClockState.RUNNING
    assert clock.met_at is None
    assert clock.elapsed == 6 * H
    assert clock.started_at == msk(2026, 6, 1, 9)
    # 10 hours left from Tuesday 09:00; the time resolved did not count.
    assert due_at(clock, OFFICE) == msk(2026, 6, 3, 10)
    assert state.clocks[PU].started_at == msk(2026, 6, 2, 9)


def test_resolving_without_a_reply_fulfils_the_first_response() -> None:
    state = run(opened(), moved(msk(2026, 6, 1, 11), "new", "resolved"))
    assert status_of(state.clocks[FR], OFFICE, msk(2026, 6, 1, 11)) is ClockStatus.MET


def test_resolving_late_is_a_breach() -> None:
    state = run(opened(), AgentReplied(msk(2026, 6, 1, 10)))
    state, _ = fire_due(state, CALENDARS, msk(2026, 6, 2, 12, 48))  # the resolution warning
    state = run(state, moved(msk(2026, 6, 2, 16, 30), "open", "resolved"))
    assert status_of(state.clocks[RES], OFFICE, msk(2026, 6, 3)) is ClockStatus.BREACHED
    state, fired = fire_due(state, CALENDARS, msk(2026, 6, 2, 16, 31))
    assert kinds(fired) == [(RES, BREACH, msk(2026, 6, 2, 16, 31))]


def test_a_requester_reply_to_a_resolved_ticket_starts_next_response_on_reopen() -> None:
    state = run(
        opened(),
        AgentReplied(msk(2026, 6, 1, 10)),
        moved(msk(2026, 6, 1, 11), "open", "resolved"),
        RequesterReplied(msk(2026, 6, 1, 12)),
    )
    assert state.clocks.get(NR) is None
    state = run(state, moved(msk(2026, 6, 1, 12), "resolved", "open"))
    assert state.clocks[NR].state is ClockState.RUNNING
    assert due_at(state.clocks[NR], OFFICE) == msk(2026, 6, 1, 14)


def test_closing_stops_everything_for_good() -> None:
    state = run(opened(), moved(msk(2026, 6, 1, 11), "new", "closed"))
    assert {c.state for c in state.clocks.values()} == {ClockState.STOPPED}
    after = run(
        state,
        AgentReplied(msk(2026, 6, 1, 12)),
        RequesterReplied(msk(2026, 6, 1, 12)),
        moved(msk(2026, 6, 1, 12), "closed", "open"),
        PolicyChanged(msk(2026, 6, 1, 12), URGENT),
    )
    assert after == state
    assert next_deadlines(state, CALENDARS, msk(2026, 6, 2)) == []


# --- auto-close ------------------------------------------------------------------------------


def test_pending_arms_auto_close_after_5_calendar_days() -> None:
    state = run(opened(), moved(msk(2026, 6, 1, 10), "new", "pending"))
    assert state.pending_since == msk(2026, 6, 1, 10)
    assert kinds(next_deadlines(state, CALENDARS, msk(2026, 6, 1, 10))) == [
        (None, AUTO_CLOSE, msk(2026, 6, 6, 10))  # a Saturday: calendar days, not business
    ]
    state, fired = fire_due(state, CALENDARS, msk(2026, 6, 6, 10))
    assert kinds(fired) == [(None, AUTO_CLOSE, msk(2026, 6, 6, 10))]
    assert state.auto_close_fired_at == msk(2026, 6, 6, 10)
    assert fire_due(state, CALENDARS, msk(2026, 6, 7))[1] == []


def test_auto_close_keeps_the_local_time_over_a_clock_change() -> None:
    berlin = replace(STANDARD, calendar_id="berlin")
    start = datetime(2026, 3, 26, 10, tzinfo=ZoneInfo("Europe/Berlin"))
    state = run(opened(start, berlin), moved(start, "new", "pending"))
    closes = next_deadlines(state, CALENDARS, start)[-1]
    assert closes.kind is AUTO_CLOSE
    assert closes.at == datetime(2026, 3, 31, 10, tzinfo=ZoneInfo("Europe/Berlin"))


@pytest.mark.parametrize(
    "event",
    [RequesterReplied(msk(2026, 6, 2, 10)), moved(msk(2026, 6, 2, 10), "pending", "open")],
)
def test_a_requester_reply_or_leaving_pending_cancels_auto_close(event: Event) -> None:
    state = run(opened(), moved(msk(2026, 6, 1, 10), "new", "pending"), event)
    assert state.pending_since is None
    assert AUTO_CLOSE not in {d.kind for d in next_deadlines(state, CALENDARS, msk(2026, 6, 2, 10))}


def test_pending_again_arms_a_new_auto_close() -> None:
    state = run(opened(), moved(msk(2026, 6, 1, 10), "new", "pending"))
    state, _ = fire_due(state, CALENDARS, msk(2026, 6, 6, 10))
    state = run(
        state,
        moved(msk(2026, 6, 7, 10), "pending", "open"),
        moved(msk(2026, 6, 8, 10), "open", "pending"),
    )
    assert state.auto_close_fired_at is None
    assert next_deadlines(state, CALENDARS, msk(2026, 6, 8, 10))[-1].at == msk(2026, 6, 13, 10)


def test_auto_close_after_zero_is_off() -> None:
    never = replace(STANDARD, auto_close_after=timedelta(0))
    state = run(opened(policy=never), moved(msk(2026, 6, 1, 10), "new", "pending"))
    assert next_deadlines(state, CALENDARS, msk(2026, 6, 1, 10)) == []


def test_auto_close_can_come_in_seconds() -> None:
    quick = replace(STANDARD, auto_close_after=timedelta(seconds=3))
    state = run(opened(policy=quick), moved(msk(2026, 6, 1, 10), "new", "pending"))
    assert kinds(next_deadlines(state, CALENDARS, msk(2026, 6, 1, 10))) == [
        (None, AUTO_CLOSE, msk(2026, 6, 1, 10, 0, 3))  # any time, not business time
    ]
    assert fire_due(state, CALENDARS, msk(2026, 6, 1, 10, 0, 2))[1] == []
    assert kinds(fire_due(state, CALENDARS, msk(2026, 6, 1, 10, 0, 3))[1]) == [
        (None, AUTO_CLOSE, msk(2026, 6, 1, 10, 0, 3))
    ]


def test_auto_close_days_keep_the_local_time_and_hours_are_exact() -> None:
    # 36 hours from Saturday 10:00 over the switch to summer time: a local day, then 12 hours.
    berlin = replace(STANDARD, calendar_id="berlin", auto_close_after=36 * H)
    start = datetime(2026, 3, 28, 10, tzinfo=ZoneInfo("Europe/Berlin"))
    state = run(opened(start, berlin), moved(start, "new", "pending"))
    closes = next_deadlines(state, CALENDARS, start)[-1]
    assert closes.at == datetime(2026, 3, 29, 22, tzinfo=ZoneInfo("Europe/Berlin"))


# --- policy changes keep what was counted ----------------------------------------------------


def test_a_policy_change_keeps_the_business_time_already_elapsed() -> None:
    state = run(opened(), PolicyChanged(msk(2026, 6, 1, 11), URGENT))
    clock = state.clocks[FR]
    assert state.policy_id == "urgent"
    assert state.calendar_id == ""
    assert clock.elapsed == 2 * H
    assert clock.started_at == msk(2026, 6, 1, 9)
    assert clock.target == 3 * H
    # One hour left, now counted around the clock.
    assert due_at(clock, ALWAYS_OPEN) == msk(2026, 6, 1, 12)
    assert elapsed(clock, ALWAYS_OPEN, msk(2026, 6, 1, 23)) == 14 * H


def test_a_policy_change_keeps_the_time_paused() -> None:
    state = run(
        opened(),
        moved(msk(2026, 6, 1, 10), "new", "pending"),
        PolicyChanged(msk(2026, 6, 1, 12), URGENT),
    )
    clock = state.clocks[FR]
    assert clock.state is ClockState.PAUSED
    assert clock.elapsed == H
    assert clock.paused_for == 2 * H  # counted in the office calendar until the change
    state = run(state, moved(msk(2026, 6, 1, 20), "pending", "open"))
    assert state.clocks[FR].paused_for == 10 * H  # and around the clock after it
    assert due_at(state.clocks[FR], ALWAYS_OPEN) == msk(2026, 6, 1, 22)


def test_a_shorter_target_already_passed_is_due_at_once() -> None:
    strict = Policy(id="strict", name="Strict", targets={FR: H})
    state = run(opened(), PolicyChanged(msk(2026, 6, 1, 11), strict))
    now = msk(2026, 6, 1, 11, 0, 5)
    assert status_of(state.clocks[FR], ALWAYS_OPEN, now) is ClockStatus.BREACHED
    assert kinds(fire_due(state, CALENDARS, now)[1]) == [(FR, BREACH, now)]


def test_a_policy_change_keeps_what_has_fired_and_what_is_done() -> None:
    state = run(opened(), AgentReplied(msk(2026, 6, 1, 10)))
    state, _ = fire_due(state, CALENDARS, msk(2026, 6, 2, 12, 48))
    state = run(state, PolicyChanged(msk(2026, 6, 2, 13), replace(STANDARD, targets={RES: 40 * H})))
    assert state.clocks[RES].warned_at == msk(2026, 6, 2, 12, 48)
    assert state.clocks[RES].target == 40 * H
    assert state.clocks[FR].target == 4 * H  # met under the policy of its time
    assert state.clocks[PU].target is None
    assert [d.kind for d in next_deadlines(state, CALENDARS, msk(2026, 6, 2, 13))] == [BREACH]


def test_a_policy_with_other_pause_statuses_pauses_or_resumes_at_once() -> None:
    state = run(opened(), moved(msk(2026, 6, 1, 10), "new", "on_hold"))
    only_pending = replace(STANDARD, id="p", pause_statuses=frozenset({"pending"}))
    state = run(state, PolicyChanged(msk(2026, 6, 1, 11), only_pending))
    assert state.clocks[FR].state is ClockState.RUNNING
    assert state.clocks[FR].paused_for == H
    assert due_at(state.clocks[FR], OFFICE) == msk(2026, 6, 1, 14)


def test_a_policy_change_can_bring_an_edited_calendar() -> None:
    # The calendars given to apply still hold the old version; the event brings the new one.
    longer = parse_calendar(
        {
            "id": "office",
            "name": "office",
            "time_zone": "Europe/Moscow",
            "hours": {"monday": [{"start": "09:00", "end": "22:00"}]},
        }
    )
    state = run(opened(), PolicyChanged(msk(2026, 6, 1, 11), STANDARD, longer))
    assert state.clocks[FR].elapsed == 2 * H
    assert due_at(state.clocks[FR], longer) == msk(2026, 6, 1, 13)
    with pytest.raises(ValueError, match="calendar"):
        run(opened(), PolicyChanged(msk(2026, 6, 1, 11), STANDARD, BERLIN))


# --- an edited calendar applies from the edit on ----------------------------------------------


LATE_MONDAYS = parse_calendar(
    {
        "id": "office",
        "name": "office",
        "time_zone": "Europe/Moscow",
        "hours": {"monday": [{"start": "09:00", "end": "22:00"}]},
    }
)


def test_an_edited_calendar_keeps_the_time_counted_in_the_old_hours() -> None:
    # Edited at 20:00: the old hours counted 09-18; the new ones count from 20:00 only.
    state = calendar_edited(opened(), OFFICE, msk(2026, 6, 1, 20))
    assert state.clocks[RES].elapsed == 9 * H
    assert state.updated_at == msk(2026, 6, 1, 20)
    assert elapsed(state.clocks[RES], LATE_MONDAYS, msk(2026, 6, 1, 22)) == 11 * H
    # 16 hours: 11 by Monday night, the other 5 next Monday (the only day left open).
    assert due_at(state.clocks[RES], LATE_MONDAYS) == msk(2026, 6, 8, 14)
    # Re-read in the new hours from the start, it would have counted 13 by 22:00.
    assert elapsed(opened().clocks[RES], LATE_MONDAYS, msk(2026, 6, 1, 22)) == 13 * H


def test_an_edit_of_another_calendar_or_after_closing_changes_nothing() -> None:
    state = opened()
    assert calendar_edited(state, BERLIN, msk(2026, 6, 1, 20)) == state
    closed = run(state, moved(msk(2026, 6, 1, 12), "new", "closed"))
    assert calendar_edited(closed, OFFICE, msk(2026, 6, 1, 20)) == closed


# --- a deleted policy hands its tickets over ------------------------------------------------


def _opened_high(policy: Policy) -> TicketSla:
    facts = TicketFacts(priority="high")
    return apply(new_ticket_sla("t-1", policy), TicketOpened(MONDAY_9, facts), CALENDARS)


def test_a_deleted_policy_hands_the_ticket_to_the_one_its_facts_select() -> None:
    high = replace(URGENT, order=1, conditions=Conditions(priority=frozenset({"high"})))
    low = Policy(id="low", name="Low", order=2, conditions=Conditions(priority=frozenset({"low"})))
    state = policy_deleted(
        _opened_high(STANDARD), [STANDARD, low, high], msk(2026, 6, 1, 11), CALENDARS
    )
    assert state.policy_id == "urgent"
    assert state.calendar_id == ""
    assert state.clocks[FR].elapsed == 2 * H  # kept, counted in the office calendar
    assert state.clocks[FR].target == 3 * H
    assert due_at(state.clocks[FR], ALWAYS_OPEN) == msk(2026, 6, 1, 12)


def test_a_ticket_no_policy_selects_is_measured_without_targets() -> None:
    state = policy_deleted(_opened_high(STANDARD), [STANDARD], msk(2026, 6, 1, 11), CALENDARS)
    assert (state.policy_id, state.calendar_id, state.targets) == ("", "", {})
    assert state.clocks[RES].elapsed == 2 * H
    assert state.clocks[RES].target is None
    assert next_deadlines(state, CALENDARS, msk(2026, 6, 1, 11)) == []


def test_a_deleted_policy_keeps_what_fired_and_the_pause() -> None:
    state = run(_opened_high(STANDARD), moved(msk(2026, 6, 1, 10), "new", "pending"))
    state = policy_deleted(state, [URGENT], msk(2026, 6, 1, 12), CALENDARS)
    assert state.policy_id == "urgent"
    assert state.clocks[FR].state is ClockState.PAUSED
    assert state.clocks[FR].paused_for == 2 * H
    # Still waiting on the requester: auto-close stays armed from when the wait began.
    assert state.pending_since == msk(2026, 6, 1, 10)
    closed = run(state, moved(msk(2026, 6, 1, 13), "pending", "closed"))
    assert policy_deleted(closed, [], msk(2026, 6, 1, 14), CALENDARS) == closed


def test_a_closed_ticket_is_reported_after_its_calendar_is_deleted() -> None:
    closed = run(
        opened(), AgentReplied(msk(2026, 6, 1, 10)), moved(msk(2026, 6, 1, 12), "new", "closed")
    )
    calendar = reporting_calendar(closed, {})
    assert calendar.id == "office"
    later = msk(2026, 6, 9)
    assert elapsed(closed.clocks[RES], calendar, later) == 3 * H  # as counted in office hours
    assert status_of(closed.clocks[FR], calendar, later) is ClockStatus.MET
    # An open one still needs its hours.
    with pytest.raises(NotFound):
        reporting_calendar(opened(), {})
    assert reporting_calendar(opened(), CALENDARS) is OFFICE


# --- the edges -------------------------------------------------------------------------------


def test_events_out_of_order_count_as_simultaneous() -> None:
    state = run(opened(), moved(msk(2026, 6, 1, 12), "new", "pending"))
    state = run(state, moved(msk(2026, 6, 1, 11), "pending", "open"))
    assert state.clocks[FR].elapsed == 3 * H
    assert state.clocks[FR].last_change == msk(2026, 6, 1, 12)
    assert state.updated_at == msk(2026, 6, 1, 12)


def test_instants_are_kept_to_the_second() -> None:
    state = opened(msk(2026, 6, 1, 9) + timedelta(microseconds=999_999))
    assert state.clocks[FR].started_at == msk(2026, 6, 1, 9)


def test_bad_events_are_refused() -> None:
    with pytest.raises(ValueError, match="status"):
        run(opened(), moved(msk(2026, 6, 1, 10), "new", "waiting"))
    with pytest.raises(ValueError, match="TicketOpened"):
        apply(new_ticket_sla("t-2", STANDARD), AgentReplied(msk(2026, 6, 1, 10)), CALENDARS)
    with pytest.raises(ValueError, match="timezone-aware"):
        run(opened(), AgentReplied(datetime(2026, 6, 1, 10)))


def test_calendars_are_looked_up_by_id() -> None:
    assert calendar_for(CALENDARS, "") is ALWAYS_OPEN
    assert calendar_for(CALENDARS, "office") is OFFICE
    with pytest.raises(NotFound, match="missing"):
        calendar_for(CALENDARS, "missing")
    with pytest.raises(NotFound):
        opened(policy=replace(STANDARD, calendar_id="missing"))


def test_due_bucket_is_the_minute_a_deadline_has_come_by() -> None:
    assert due_bucket(datetime(1970, 1, 1, 0, 1, tzinfo=UTC)) == 1
    assert due_bucket(datetime(1970, 1, 1, 0, 1, 1, tzinfo=UTC)) == 2
    at = msk(2026, 6, 1, 13)
    assert due_bucket(at) == int(at.timestamp()) // 60
    assert due_bucket(at + timedelta(microseconds=1)) == int(at.timestamp()) // 60 + 1
    assert due_bucket(at.astimezone(MSK)) == due_bucket(at)
    with pytest.raises(ValueError, match="timezone-aware"):
        due_bucket(datetime(2026, 6, 1))


# --- laws ------------------------------------------------------------------------------------

CLOCK_CALENDARS = (ALWAYS_OPEN, OFFICE, BERLIN, EVENINGS)
START = datetime(2026, 1, 1, tzinfo=UTC)
instants = st.integers(0, 365 * 24 * 3600).map(lambda s: START + timedelta(seconds=s))
spans = st.integers(0, 20 * 24 * 3600).map(lambda s: timedelta(seconds=s))
# Whole seconds: targets need not be whole minutes.
targets = st.integers(1, 80 * 3600).map(lambda s: timedelta(seconds=s))


def _policy(calendar: BusinessCalendar, target: timedelta, policy_id: str = "p") -> Policy:
    return Policy(id=policy_id, name=policy_id, targets={RES: target}, calendar_id=calendar.id)


def _all_calendars() -> dict[str, BusinessCalendar]:
    return {c.id: c for c in CLOCK_CALENDARS if c.id}


@settings(deadline=None, max_examples=60)
@given(st.sampled_from(CLOCK_CALENDARS), instants, spans, spans, targets)
def test_a_pause_moves_the_due_time_by_exactly_the_business_time_paused(
    calendar: BusinessCalendar,
    start: datetime,
    before_pause: timedelta,
    paused: timedelta,
    target: timedelta,
) -> None:
    calendars = _all_calendars()
    state = apply(new_ticket_sla("t", _policy(calendar, target)), TicketOpened(start), calendars)
    due = due_at(state.clocks[RES], calendar)
    assert due == add_business_time(calendar, start, target)
    pause, resume = start + before_pause, start + before_pause + paused
    state = apply(state, StatusChanged(pause, "new", "pending"), calendars)
    state = apply(state, StatusChanged(resume, "pending", "open"), calendars)
    clock = state.clocks[RES]
    assert clock.paused_for == business_time_between(calendar, pause, resume)
    assert clock.elapsed == business_time_between(calendar, start, pause)
    if due > pause:
        assert due_at(clock, calendar) == add_business_time(calendar, due, clock.paused_for)
        assert business_time_between(calendar, due, due_at(clock, calendar)) == clock.paused_for


@settings(deadline=None, max_examples=60)
@given(
    st.sampled_from(CLOCK_CALENDARS),
    st.sampled_from(CLOCK_CALENDARS),
    instants,
    spans,
    spans,
    targets,
    targets,
)
def test_a_policy_change_mid_ticket_keeps_the_elapsed_time(
    old: BusinessCalendar,
    new: BusinessCalendar,
    start: datetime,
    until_change: timedelta,
    after_change: timedelta,
    old_target: timedelta,
    new_target: timedelta,
) -> None:
    calendars = _all_calendars()
    state = apply(new_ticket_sla("t", _policy(old, old_target)), TicketOpened(start), calendars)
    change, later = start + until_change, start + until_change + after_change
    counted = business_time_between(old, start, change)
    state = apply(state, PolicyChanged(change, _policy(new, new_target, "q")), calendars)
    clock = state.clocks[RES]
    assert state.calendar_id == new.id
    assert clock.elapsed == counted
    assert clock.target == new_target
    expected_due = (
        add_business_time(new, change, new_target - counted) if new_target > counted else change
    )
    assert due_at(clock, new) == expected_due
    assert elapsed(clock, new, later) == counted + business_time_between(new, change, later)


@settings(deadline=None, max_examples=60)
@given(
    st.sampled_from(CLOCK_CALENDARS),
    instants,
    st.lists(st.tuples(spans, st.sampled_from(("open", "pending", "on_hold", "new"))), max_size=8),
    spans,
)
def test_counted_and_paused_time_add_up_to_the_business_time_since_opening(
    calendar: BusinessCalendar,
    start: datetime,
    moves: list[tuple[timedelta, str]],
    tail: timedelta,
) -> None:
    calendars = _all_calendars()
    state = apply(new_ticket_sla("t", _policy(calendar, H)), TicketOpened(start), calendars)
    at, running_time = start, timedelta(0)
    for gap, status in moves:
        if state.status not in ("pending", "on_hold"):
            running_time += business_time_between(calendar, at, at + gap)
        at += gap
        state = apply(state, StatusChanged(at, state.status, status), calendars)
    now = at + tail
    if state.status not in ("pending", "on_hold"):
        running_time += business_time_between(calendar, at, now)
    clock = state.clocks[RES]
    assert elapsed(clock, calendar, now) == running_time
    assert elapsed(clock, calendar, now) + paused_time(clock, calendar, now) == (
        business_time_between(calendar, start, now)
    )
