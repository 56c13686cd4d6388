"""A ticket's SLA as pure data: one clock per metric, a pure transition per event, and the
deadlines a timer store arms.

A clock counts business time of the ticket's calendar towards its target. `elapsed` is brought
up to date at `last_change` whenever something happens to the ticket; in between the clock runs
(or not) by its state, so nothing needs to tick.

Time is kept to the whole second: instants are truncated to the second as they come in,
targets are whole seconds (see policies) and the warning point is rounded down to the second.
A target's due instant belongs to the breach: a goal reached at it or later is late.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import assert_never

from helpdesk.core.errors import NotFound
from helpdesk.sla.domain.calendar import (
    ALWAYS_OPEN,
    BusinessCalendar,
    add_business_time,
    add_calendar_days,
    business_time_between,
)
from helpdesk.sla.domain.policy import (
    DEFAULT_AUTO_CLOSE_AFTER,
    DEFAULT_PAUSE_STATUSES,
    DEFAULT_WARN_SHARE,
    STATUSES,
    Metric,
    Policy,
    TicketFacts,
    select_policy,
)

ZERO = timedelta(0)
SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FINAL_STATUSES = frozenset({"resolved", "closed"})


class ClockState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


class ClockStatus(StrEnum):
    OK = "ok"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    MET = "met"
    PAUSED = "paused"


class DeadlineKind(StrEnum):
    WARNING = "warning"
    BREACH = "breach"
    AUTO_CLOSE = "auto_close"


@dataclass(frozen=True)
class MetricClock:
    """One metric of one ticket (one cycle of it): business time counted towards a target."""

    metric: Metric
    started_at: datetime
    # `elapsed` and `paused_for` are counted up to this instant.
    last_change: datetime
    # None: measured, never breached.
    target: timedelta | None = None
    # Business time after which the ticket is at risk.
    warn_after: timedelta | None = None
    elapsed: timedelta = ZERO
    # Business time spent paused: reported, never counted towards the target.
    paused_for: timedelta = ZERO
    state: ClockState = ClockState.RUNNING
    # When the goal was reached (the reply, the resolution or the close); set once stopped.
    met_at: datetime | None = None
    # When the warning and the breach fired; each fires at most once per clock.
    warned_at: datetime | None = None
    breached_at: datetime | None = None


@dataclass(frozen=True)
class TicketSla:
    """The SLA of one ticket: the settings of its policy, its status and its clocks."""

    ticket_id: str
    policy_id: str = ""
    # "" counts every hour of every day.
    calendar_id: str = ""
    # "" until the ticket is opened.
    status: str = ""
    clocks: Mapping[Metric, MetricClock] = field(default_factory=dict)
    # The policy's targets, also for clocks not started yet.
    targets: Mapping[Metric, timedelta] = field(default_factory=dict)
    warn_share: float = DEFAULT_WARN_SHARE
    pause_statuses: frozenset[str] = DEFAULT_PAUSE_STATUSES
    auto_close_after: timedelta = DEFAULT_AUTO_CLOSE_AFTER
    # Set while the ticket waits on the requester; auto-close counts from here.
    pending_since: datetime | None = None
    auto_close_fired_at: datetime | None = None
    # A requester wrote after the first response and waits for an agent's public reply.
    awaiting_reply: bool = False
    # Cycles of next_response / periodic_update replaced by a new cycle after ending late,
    # before their breach fired: the breach is still owed.
    late_cycles: tuple[MetricClock, ...] = ()
    facts: TicketFacts | None = None
    opened_at: datetime | None = None
    # The latest event instant applied: time never runs backwards.
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Deadline:
    """A moment a timer must fire: a warning or breach of a metric, or the auto-close."""

    metric: Metric | None  # None for auto-close
    kind: DeadlineKind
    at: datetime
    # The start of the clock cycle (or of the wait on the requester) it belongs to: with the
    # ticket, metric and kind it names one firing.
    since: datetime


@dataclass(frozen=True)
class TicketOpened:
    at: datetime
    facts: TicketFacts = field(default_factory=TicketFacts)
    status: str = "new"


@dataclass(frozen=True)
class AgentReplied:
    at: datetime
    # Internal notes do not answer the requester.
    public: bool = True


@dataclass(frozen=True)
class RequesterReplied:
    at: datetime


@dataclass(frozen=True)
class StatusChanged:
    at: datetime
    # As the event tells it; the SLA goes by its own record of the status.
    old: str
    new: str


@dataclass(frozen=True)
class PolicyChanged:
    """The ticket moves to another policy (or to an edited version of its own).

    `calendar` is the new policy's calendar; None looks it up in the calendars given to
    `apply`, which must still hold the old calendar the ticket counted in until now.
    """

    at: datetime
    policy: Policy | None
    calendar: BusinessCalendar | None = None
    facts: TicketFacts | None = None


Event = TicketOpened | AgentReplied | RequesterReplied | StatusChanged | PolicyChanged


def _second(instant: datetime, name: str = "at") -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware; got {instant!r}")
    return instant.astimezone(UTC).replace(microsecond=0)


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise ValueError(f"unknown ticket status {status!r}; expected one of {', '.join(STATUSES)}")
    return status


def calendar_for(calendars: Mapping[str, BusinessCalendar], calendar_id: str) -> BusinessCalendar:
    """The calendar with this id; "" is the built-in 24/7 one."""
    if not calendar_id:
        return ALWAYS_OPEN
    try:
        return calendars[calendar_id]
    except KeyError:
        raise NotFound(f"calendar {calendar_id!r} does not exist") from None


def reporting_calendar(
    state: TicketSla, calendars: Mapping[str, BusinessCalendar]
) -> BusinessCalendar:
    """The calendar to report a ticket's SLA in. A closed ticket's calendar may have been
    deleted since: its clocks are all stopped, so the figures no longer need the hours."""
    if state.status == "closed" and state.calendar_id and state.calendar_id not in calendars:
        return replace(ALWAYS_OPEN, id=state.calendar_id, name=state.calendar_id)
    return calendar_for(calendars, state.calendar_id)


def _warn_after(target: timedelta | None, share: float) -> timedelta | None:
    if target is None:
        return None
    return (target * share) // SECOND * SECOND


def _bind(state: TicketSla, policy: Policy | None) -> TicketSla:
    """The state with the settings of `policy`; clocks untouched."""
    if policy is None:
        return replace(
            state,
            policy_id="",
            calendar_id="",
            targets={},
            warn_share=DEFAULT_WARN_SHARE,
            pause_statuses=DEFAULT_PAUSE_STATUSES,
            auto_close_after=DEFAULT_AUTO_CLOSE_AFTER,
        )
    return replace(
        state,
        policy_id=policy.id,
        calendar_id=policy.calendar_id,
        targets=dict(policy.targets),
        warn_share=policy.warn_share,
        pause_statuses=policy.pause_statuses,
        auto_close_after=policy.auto_close_after,
    )


def new_ticket_sla(ticket_id: str, policy: Policy | None) -> TicketSla:
    """A ticket's SLA before its first event, under its policy (None: no targets, 24/7)."""
    return _bind(TicketSla(ticket_id=ticket_id), policy)


def _start(state: TicketSla, metric: Metric, at: datetime) -> MetricClock:
    """A new clock (cycle) for `metric`, paused if the ticket's status pauses clocks."""
    target = state.targets.get(metric)
    paused = state.status in state.pause_statuses
    return MetricClock(
        metric=metric,
        started_at=at,
        last_change=at,
        target=target,
        warn_after=_warn_after(target, state.warn_share),
        state=ClockState.PAUSED if paused else ClockState.RUNNING,
    )


def _checkpoint(clock: MetricClock, calendar: BusinessCalendar, at: datetime) -> MetricClock:
    """The clock with its counts brought up to `at`."""
    if clock.state is ClockState.STOPPED or at <= clock.last_change:
        return clock
    passed = business_time_between(calendar, clock.last_change, at)
    if clock.state is ClockState.RUNNING:
        return replace(clock, elapsed=clock.elapsed + passed, last_change=at)
    return replace(clock, paused_for=clock.paused_for + passed, last_change=at)


def _stop(clock: MetricClock, calendar: BusinessCalendar, at: datetime) -> MetricClock:
    if clock.state is ClockState.STOPPED:
        return clock
    return replace(_checkpoint(clock, calendar, at), state=ClockState.STOPPED, met_at=at)


def _switch(
    clock: MetricClock, calendar: BusinessCalendar, at: datetime, to: ClockState
) -> MetricClock:
    """Pauses or resumes a clock that is not stopped."""
    if clock.state is ClockState.STOPPED or clock.state is to:
        return clock
    return replace(_checkpoint(clock, calendar, at), state=to)


def _late(clock: MetricClock) -> bool:
    """Whether the counted time has reached the target (as of `last_change`)."""
    return clock.target is not None and clock.elapsed >= clock.target


def _new_cycle(
    state: TicketSla,
    clocks: dict[Metric, MetricClock],
    late: list[MetricClock],
    metric: Metric,
    calendar: BusinessCalendar,
    at: datetime,
) -> None:
    """Ends the current cycle of `metric` and starts another; a breach it owes is kept."""
    old = clocks.get(metric)
    if old is not None:
        old = _stop(old, calendar, at)
        if _late(old) and old.breached_at is None:
            late.append(old)
    clocks[metric] = _start(state, metric, at)


def _open(
    state: TicketSla, event: TicketOpened, calendars: Mapping[str, BusinessCalendar]
) -> TicketSla:
    if state.status:
        return state  # delivered again
    status = _check_status(event.status)
    at = _second(event.at)
    calendar = calendar_for(calendars, state.calendar_id)
    opened = replace(state, status="new", facts=event.facts, opened_at=at, updated_at=at)
    clocks = {m: _start(opened, m, at) for m in (Metric.FIRST_RESPONSE, Metric.RESOLUTION)}
    return _move(replace(opened, clocks=clocks), status, calendar, at)


def _move(state: TicketSla, new: str, calendar: BusinessCalendar, at: datetime) -> TicketSla:
    old = state.status
    if new == old:
        return state
    moved = replace(state, status=new)  # new cycles start in the new status
    clocks = dict(state.clocks)
    late = list(state.late_cycles)
    awaiting_reply = state.awaiting_reply
    paused = new in state.pause_statuses
    if new in FINAL_STATUSES:
        # Resolving answers the requester: every clock still going has reached its goal.
        for metric, clock in clocks.items():
            clocks[metric] = _stop(clock, calendar, at)
        awaiting_reply = False
    elif old in FINAL_STATUSES:
        # Reopened: resolution goes on from what it had counted; the time resolved is not
        # counted, and neither is it time paused.
        resolution = clocks.get(Metric.RESOLUTION)
        if resolution is not None:
            clocks[Metric.RESOLUTION] = replace(
                resolution,
                state=ClockState.PAUSED if paused else ClockState.RUNNING,
                met_at=None,
                last_change=at,
            )
        if Metric.PERIODIC_UPDATE in clocks:
            _new_cycle(moved, clocks, late, Metric.PERIODIC_UPDATE, calendar, at)
        if awaiting_reply:
            _new_cycle(moved, clocks, late, Metric.NEXT_RESPONSE, calendar, at)
    else:
        to = ClockState.PAUSED if paused else ClockState.RUNNING
        for metric, clock in clocks.items():
            clocks[metric] = _switch(clock, calendar, at, to)
    pending_since, auto_close_fired_at = None, state.auto_close_fired_at
    if new == "pending":
        pending_since, auto_close_fired_at = at, None
    return replace(
        moved,
        clocks=clocks,
        late_cycles=tuple(late),
        awaiting_reply=awaiting_reply,
        pending_since=pending_since,
        auto_close_fired_at=auto_close_fired_at,
    )


def _agent_replied(
    state: TicketSla, public: bool, calendar: BusinessCalendar, at: datetime
) -> TicketSla:
    if not public or state.status in FINAL_STATUSES:
        return state
    clocks = dict(state.clocks)
    late = list(state.late_cycles)
    for metric in (Metric.FIRST_RESPONSE, Metric.NEXT_RESPONSE):
        clock = clocks.get(metric)
        if clock is not None:
            clocks[metric] = _stop(clock, calendar, at)
    # Each public reply is an update: the next one is due a target later.
    _new_cycle(state, clocks, late, Metric.PERIODIC_UPDATE, calendar, at)
    return replace(state, clocks=clocks, late_cycles=tuple(late), awaiting_reply=False)


def _requester_replied(state: TicketSla, calendar: BusinessCalendar, at: datetime) -> TicketSla:
    # The requester answered: the wait on them, and with it auto-close, is over.
    replied = replace(state, pending_since=None)
    first = state.clocks.get(Metric.FIRST_RESPONSE)
    if first is None or first.state is not ClockState.STOPPED:
        return replied  # the first response is still owed and covers this message too
    replied = replace(replied, awaiting_reply=True)
    current = state.clocks.get(Metric.NEXT_RESPONSE)
    if state.status in FINAL_STATUSES or (
        current is not None and current.state is not ClockState.STOPPED
    ):
        # Resolved: the cycle starts when the ticket reopens. Running: the oldest unanswered
        # message sets the due time.
        return replied
    clocks = dict(state.clocks)
    late = list(state.late_cycles)
    _new_cycle(replied, clocks, late, Metric.NEXT_RESPONSE, calendar, at)
    return replace(replied, clocks=clocks, late_cycles=tuple(late))


def _change_policy(
    state: TicketSla,
    event: PolicyChanged,
    calendar: BusinessCalendar,
    calendars: Mapping[str, BusinessCalendar],
    at: datetime,
) -> TicketSla:
    wanted = event.policy.calendar_id if event.policy else ""
    new_calendar = event.calendar or calendar_for(calendars, wanted)
    if event.policy is not None and new_calendar.id != wanted:
        raise ValueError(
            f"policy {event.policy.id} counts in calendar {wanted!r}, not {new_calendar.id!r}"
        )
    # Everything counted so far is counted in the old calendar and kept; the new calendar and
    # targets apply from `at` on.
    clocks = {m: _checkpoint(c, calendar, at) for m, c in state.clocks.items()}
    bound = replace(_bind(state, event.policy), calendar_id=new_calendar.id)
    if event.facts is not None:
        bound = replace(bound, facts=event.facts)
    to = ClockState.PAUSED if state.status in bound.pause_statuses else ClockState.RUNNING
    for metric, clock in clocks.items():
        if clock.state is ClockState.STOPPED:
            continue  # met or breached under the policy of its time
        target = bound.targets.get(metric)
        # Checkpointed at `at`, so switching needs no further counting.
        clocks[metric] = replace(
            clock, target=target, warn_after=_warn_after(target, bound.warn_share), state=to
        )
    return replace(bound, clocks=clocks)


def apply(state: TicketSla, event: Event, calendars: Mapping[str, BusinessCalendar]) -> TicketSla:
    """The ticket's SLA after an event. An event older than the last one applied counts as
    simultaneous with it; a closed ticket's SLA no longer changes."""
    if isinstance(event, TicketOpened):
        return _open(state, event, calendars)
    if not state.status:
        raise ValueError(f"ticket {state.ticket_id}: its SLA starts with TicketOpened")
    if state.status == "closed":
        return state
    at = _second(event.at)
    if state.updated_at is not None:
        at = max(at, state.updated_at)
    calendar = calendar_for(calendars, state.calendar_id)
    if isinstance(event, AgentReplied):
        changed = _agent_replied(state, event.public, calendar, at)
    elif isinstance(event, RequesterReplied):
        changed = _requester_replied(state, calendar, at)
    elif isinstance(event, StatusChanged):
        changed = _move(state, _check_status(event.new), calendar, at)
    elif isinstance(event, PolicyChanged):
        changed = _change_policy(state, event, calendar, calendars, at)
    else:
        assert_never(event)
    return replace(changed, updated_at=at)


def calendar_edited(state: TicketSla, old: BusinessCalendar, at: datetime) -> TicketSla:
    """The ticket's SLA once its calendar is edited: the time counted until `at` in the `old`
    hours is kept, and the clocks count in the new hours from `at` on (their due times are
    computed anew from the calendar then stored)."""
    if state.calendar_id != old.id or state.status in ("", "closed"):
        return state
    at = _second(at)
    if state.updated_at is not None:
        at = max(at, state.updated_at)
    clocks = {m: _checkpoint(c, old, at) for m, c in state.clocks.items()}
    return replace(state, clocks=clocks, updated_at=at)


def policy_deleted(
    state: TicketSla,
    remaining: Iterable[Policy],
    at: datetime,
    calendars: Mapping[str, BusinessCalendar],
) -> TicketSla:
    """The ticket's SLA once its policy is deleted: the policy the remaining ones select by
    the ticket's recorded facts takes over (none: measured without targets, 24/7), keeping
    the business time already used, as when the ticket's facts select another policy."""
    policy = select_policy(
        (p for p in remaining if p.id != state.policy_id), state.facts or TicketFacts()
    )
    return apply(state, PolicyChanged(at, policy), calendars)


def _reach(clock: MetricClock, calendar: BusinessCalendar, amount: timedelta) -> datetime:
    """When the clock's count reaches `amount` if it runs on (its last change if already)."""
    if clock.elapsed >= amount:
        return clock.last_change
    return add_business_time(calendar, clock.last_change, amount - clock.elapsed)


def due_at(clock: MetricClock, calendar: BusinessCalendar) -> datetime | None:
    """When the target is reached if the clock keeps running; None if paused, stopped or
    without target. A target already reached gives the clock's last change."""
    if clock.state is not ClockState.RUNNING or clock.target is None:
        return None
    return _reach(clock, calendar, clock.target)


def warn_at(clock: MetricClock, calendar: BusinessCalendar) -> datetime | None:
    """When the ticket becomes at risk if the clock keeps running; None like `due_at`."""
    if clock.state is not ClockState.RUNNING or clock.warn_after is None:
        return None
    return _reach(clock, calendar, clock.warn_after)


def elapsed(clock: MetricClock, calendar: BusinessCalendar, now: datetime) -> timedelta:
    """Business time counted towards the target by `now`."""
    if clock.state is ClockState.RUNNING:
        return clock.elapsed + business_time_between(calendar, clock.last_change, now)
    return clock.elapsed


def paused_time(clock: MetricClock, calendar: BusinessCalendar, now: datetime) -> timedelta:
    """Business time the clock has spent paused by `now`."""
    if clock.state is ClockState.PAUSED:
        return clock.paused_for + business_time_between(calendar, clock.last_change, now)
    return clock.paused_for


def remaining(clock: MetricClock, calendar: BusinessCalendar, now: datetime) -> timedelta | None:
    """Business time left until the target by `now`, negative once late; None without target."""
    if clock.target is None:
        return None
    return clock.target - elapsed(clock, calendar, now)


def status_of(clock: MetricClock, calendar: BusinessCalendar, now: datetime) -> ClockStatus:
    """How the clock stands at `now`: a late clock is breached whether running, paused or done."""
    used = elapsed(clock, calendar, now)
    if clock.target is not None and used >= clock.target:
        return ClockStatus.BREACHED
    if clock.state is ClockState.STOPPED:
        return ClockStatus.MET
    if clock.state is ClockState.PAUSED:
        return ClockStatus.PAUSED
    if clock.warn_after is not None and used >= clock.warn_after:
        return ClockStatus.AT_RISK
    return ClockStatus.OK


def _breach(clock: MetricClock, calendar: BusinessCalendar) -> datetime | None:
    """When the clock's breach comes due, if it is owed and not fired yet."""
    if clock.target is None or clock.breached_at is not None:
        return None
    if _late(clock):
        return clock.last_change
    if clock.state is ClockState.RUNNING:
        return _reach(clock, calendar, clock.target)
    return None


def next_deadlines(
    state: TicketSla, calendars: Mapping[str, BusinessCalendar], now: datetime
) -> list[Deadline]:
    """The deadlines not fired yet, soonest first; one already passed comes due at `now`."""
    now = _second(now, "now")
    if not state.status:
        return []
    calendar = calendar_for(calendars, state.calendar_id)
    deadlines = [
        Deadline(cycle.metric, DeadlineKind.BREACH, now, cycle.started_at)
        for cycle in state.late_cycles
    ]
    for metric in Metric:
        clock = state.clocks.get(metric)
        if clock is None:
            continue
        breach = _breach(clock, calendar)
        if breach is None:
            continue
        deadlines.append(Deadline(metric, DeadlineKind.BREACH, max(breach, now), clock.started_at))
        warning = warn_at(clock, calendar)
        # A breach already due makes its warning pointless.
        if warning is not None and clock.warned_at is None and breach > now:
            deadlines.append(
                Deadline(metric, DeadlineKind.WARNING, max(warning, now), clock.started_at)
            )
    if (
        state.status == "pending"
        and state.pending_since is not None
        and state.auto_close_after
        and state.auto_close_fired_at is None
    ):
        # Whole days keep the local time of day across a clock change; the rest is exact.
        days, rest = divmod(state.auto_close_after, DAY)
        closes = add_calendar_days(calendar, state.pending_since, days) + rest
        deadlines.append(
            Deadline(None, DeadlineKind.AUTO_CLOSE, max(closes, now), state.pending_since)
        )
    return sorted(deadlines, key=lambda d: d.at)


def mark_fired(
    state: TicketSla,
    metric: Metric | None,
    kind: DeadlineKind,
    at: datetime,
    since: datetime | None = None,
) -> TicketSla:
    """Records that a deadline fired at `at`, so it never fires again. `since` (a deadline's)
    names the cycle; without it, the oldest cycle still owing that firing."""
    at = _second(at)
    if kind is DeadlineKind.AUTO_CLOSE:
        if state.auto_close_fired_at is not None or (since and since != state.pending_since):
            return state
        return replace(state, auto_close_fired_at=at)
    if metric is None:
        raise ValueError(f"a {kind} deadline needs its metric")
    if kind is DeadlineKind.BREACH:
        for i, cycle in enumerate(state.late_cycles):
            if cycle.metric == metric and since in (None, cycle.started_at):
                return replace(
                    state, late_cycles=state.late_cycles[:i] + state.late_cycles[i + 1 :]
                )
    clock = state.clocks.get(metric)
    if clock is None or since not in (None, clock.started_at):
        return state  # a timer of a cycle that is gone
    if kind is DeadlineKind.WARNING and clock.warned_at is None:
        clock = replace(clock, warned_at=at)
    elif kind is DeadlineKind.BREACH and clock.breached_at is None:
        clock = replace(clock, breached_at=at)
    else:
        return state
    return replace(state, clocks={**state.clocks, metric: clock})


def fire_due(
    state: TicketSla, calendars: Mapping[str, BusinessCalendar], now: datetime
) -> tuple[TicketSla, list[Deadline]]:
    """The deadlines due by `now`, and the state with them marked fired: what a timer publishes."""
    now = _second(now, "now")
    due = [d for d in next_deadlines(state, calendars, now) if d.at <= now]
    for deadline in due:
        state = mark_fired(state, deadline.metric, deadline.kind, now, deadline.since)
    return state, due


def due_bucket(at: datetime) -> int:
    """The minute since the epoch at whose start `at` has come (rounded up, so a timer armed
    for it never fires early): the timer store's equality key."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"at must be timezone-aware; got {at!r}")
    minutes, rest = divmod(at - EPOCH, MINUTE)
    return minutes + (1 if rest else 0)
