"""The SLA service's translations: ticket SLA states and deadlines to MongoDB documents and
back, protobuf tickets into policy facts, and states into gRPC and event messages.

Documents hold BSON-friendly values: aware UTC datetimes at millisecond precision (what
MongoDB keeps), timedeltas as whole milliseconds, enums and sets as strings and sorted lists.
"""

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import duration_pb2, timestamp_pb2

from helpdesk.api.events.v1 import sla_events_pb2
from helpdesk.api.sla.v1 import sla_pb2
from helpdesk.api.tickets.v1 import tickets_pb2
from helpdesk.core.mongo import store_precision
from helpdesk.core.ticket_words import category_of, channel_of, priority_of
from helpdesk.sla.domain.calendar import BusinessCalendar
from helpdesk.sla.domain.clocks import (
    ClockState,
    Deadline,
    DeadlineKind,
    MetricClock,
    TicketSla,
    due_at,
    due_bucket,
    elapsed,
    next_deadlines,
    paused_time,
    remaining,
    status_of,
    warn_at,
)
from helpdesk.sla.domain.policy import (
    DEFAULT_AUTO_CLOSE_AFTER,
    DEFAULT_PAUSE_STATUSES,
    DEFAULT_WARN_SHARE,
    Metric,
    TicketFacts,
)

Document = dict[str, Any]
MILLISECOND = timedelta(milliseconds=1)


# ---- values


def _stored(moment: datetime) -> datetime:
    """An aware instant in UTC at millisecond precision, as MongoDB keeps it."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"instants must be timezone-aware; got {moment!r}")
    return store_precision(moment.astimezone(UTC))


def _stored_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else _stored(moment)


def _read(value: datetime) -> datetime:
    # BSON dates are UTC; a client without tz_aware reads them naive.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _read_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _read(value)


def _millis(amount: timedelta | None) -> int | None:
    return None if amount is None else amount // MILLISECOND


def _read_millis(value: int | None) -> timedelta | None:
    return None if value is None else timedelta(milliseconds=value)


# ---- documents


def _clock_to_document(clock: MetricClock) -> Document:
    return {
        "metric": clock.metric.value,
        "started_at": _stored(clock.started_at),
        "last_change": _stored(clock.last_change),
        "target": _millis(clock.target),
        "warn_after": _millis(clock.warn_after),
        "elapsed": _millis(clock.elapsed),
        "paused_for": _millis(clock.paused_for),
        "state": clock.state.value,
        "met_at": _stored_or_none(clock.met_at),
        "warned_at": _stored_or_none(clock.warned_at),
        "breached_at": _stored_or_none(clock.breached_at),
    }


def _clock_from_document(doc: Mapping[str, Any]) -> MetricClock:
    return MetricClock(
        metric=Metric(doc["metric"]),
        started_at=_read(doc["started_at"]),
        last_change=_read(doc["last_change"]),
        target=_read_millis(doc.get("target")),
        warn_after=_read_millis(doc.get("warn_after")),
        elapsed=timedelta(milliseconds=doc.get("elapsed", 0)),
        paused_for=timedelta(milliseconds=doc.get("paused_for", 0)),
        state=ClockState(doc.get("state", ClockState.RUNNING)),
        met_at=_read_or_none(doc.get("met_at")),
        warned_at=_read_or_none(doc.get("warned_at")),
        breached_at=_read_or_none(doc.get("breached_at")),
    )


def _facts_to_document(facts: TicketFacts | None) -> Document | None:
    if facts is None:
        return None
    return {
        "priority": facts.priority,
        "category": facts.category,
        "team": facts.team,
        "requester_organization": facts.requester_organization,
        "channel": facts.channel,
        "tags": sorted(facts.tags),
    }


def _facts_from_document(doc: Mapping[str, Any] | None) -> TicketFacts | None:
    if doc is None:
        return None
    default = TicketFacts()
    return TicketFacts(
        priority=doc.get("priority", default.priority),
        category=doc.get("category", default.category),
        team=doc.get("team", default.team),
        requester_organization=doc.get("requester_organization", default.requester_organization),
        channel=doc.get("channel", default.channel),
        tags=frozenset(doc.get("tags", ())),
    )


def sla_to_document(state: TicketSla) -> dict[str, Any]:
    """A ticket's SLA as a BSON-friendly document; `sla_from_document` reads it back equal."""
    return {
        "ticket_id": state.ticket_id,
        "policy_id": state.policy_id,
        "calendar_id": state.calendar_id,
        "status": state.status,
        "clocks": {
            metric.value: _clock_to_document(state.clocks[metric])
            for metric in Metric
            if metric in state.clocks
        },
        "targets": {
            metric.value: _millis(state.targets[metric])
            for metric in Metric
            if metric in state.targets
        },
        "warn_share": state.warn_share,
        "pause_statuses": sorted(state.pause_statuses),
        "auto_close_after": _millis(state.auto_close_after),
        "pending_since": _stored_or_none(state.pending_since),
        "auto_close_fired_at": _stored_or_none(state.auto_close_fired_at),
        "awaiting_reply": state.awaiting_reply,
        "late_cycles": [_clock_to_document(cycle) for cycle in state.late_cycles],
        "facts": _facts_to_document(state.facts),
        "opened_at": _stored_or_none(state.opened_at),
        "updated_at": _stored_or_none(state.updated_at),
    }


def sla_from_document(doc: Mapping[str, Any]) -> TicketSla:
    """A ticket's SLA from its document; other members are ignored, missing ones defaulted."""
    clocks: Mapping[str, Mapping[str, Any]] = doc.get("clocks", {})
    targets: Mapping[str, int] = doc.get("targets", {})
    late_cycles: Iterable[Mapping[str, Any]] = doc.get("late_cycles", ())
    return TicketSla(
        ticket_id=doc["ticket_id"],
        policy_id=doc.get("policy_id", ""),
        calendar_id=doc.get("calendar_id", ""),
        status=doc.get("status", ""),
        clocks={Metric(key): _clock_from_document(clock) for key, clock in clocks.items()},
        targets={Metric(key): timedelta(milliseconds=ms) for key, ms in targets.items()},
        warn_share=doc.get("warn_share", DEFAULT_WARN_SHARE),
        pause_statuses=frozenset(doc.get("pause_statuses", DEFAULT_PAUSE_STATUSES)),
        auto_close_after=_auto_close_after(doc),
        pending_since=_read_or_none(doc.get("pending_since")),
        auto_close_fired_at=_read_or_none(doc.get("auto_close_fired_at")),
        awaiting_reply=doc.get("awaiting_reply", False),
        late_cycles=tuple(_clock_from_document(cycle) for cycle in late_cycles),
        facts=_facts_from_document(doc.get("facts")),
        opened_at=_read_or_none(doc.get("opened_at")),
        updated_at=_read_or_none(doc.get("updated_at")),
    )


def _auto_close_after(doc: Mapping[str, Any]) -> timedelta:
    # States written before the delay could be any duration hold whole days.
    if "auto_close_after" in doc:
        return timedelta(milliseconds=doc["auto_close_after"])
    return timedelta(days=doc.get("auto_close_after_days", DEFAULT_AUTO_CLOSE_AFTER.days))


def deadline_to_document(deadline: Deadline) -> dict[str, Any]:
    """A timer to arm, with `bucket`, the due minute the timer store looks it up by."""
    at = _stored(deadline.at)
    return {
        "metric": deadline.metric.value if deadline.metric is not None else None,
        "kind": deadline.kind.value,
        "at": at,
        "since": _stored(deadline.since),
        # Of the stored instant, so that the document agrees with itself.
        "bucket": due_bucket(at),
    }


def deadline_from_document(doc: Mapping[str, Any]) -> Deadline:
    """A timer from its document; `bucket` is derived, so it is not read."""
    metric = doc.get("metric")
    return Deadline(
        metric=Metric(metric) if metric is not None else None,
        kind=DeadlineKind(doc["kind"]),
        at=_read(doc["at"]),
        since=_read(doc["since"]),
    )


# ---- protobuf


def facts_from_proto(ticket: tickets_pb2.Ticket) -> TicketFacts:
    """What policy conditions look at, from a ticket as intake publishes it."""
    default = TicketFacts()
    # An unset enum stands for intake's default (normal, question).
    return TicketFacts(
        priority=priority_of(ticket) or default.priority,
        category=category_of(ticket) or default.category,
        team=ticket.team,
        requester_organization=ticket.requester.organization,
        channel=channel_of(ticket) or default.channel,
        tags=frozenset(ticket.tags),
    )


def _timestamp(moment: datetime | None) -> timestamp_pb2.Timestamp | None:
    if moment is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _duration(amount: timedelta | None) -> duration_pb2.Duration | None:
    if amount is None:
        return None
    duration = duration_pb2.Duration()
    duration.FromTimedelta(amount)
    return duration


def _check_calendar(state: TicketSla, calendar: BusinessCalendar) -> None:
    # Another calendar would give plausible but wrong due times.
    if calendar.id != state.calendar_id:
        raise ValueError(
            f"ticket {state.ticket_id} counts in calendar {state.calendar_id!r}, "
            f"not {calendar.id!r}"
        )


def _metric_sla(clock: MetricClock, calendar: BusinessCalendar, now: datetime) -> sla_pb2.MetricSla:
    return sla_pb2.MetricSla(
        metric=clock.metric.value,
        status=status_of(clock, calendar, now).value,
        state=clock.state.value,
        target=_duration(clock.target),
        elapsed=_duration(elapsed(clock, calendar, now)),
        remaining=_duration(remaining(clock, calendar, now)),
        paused=_duration(paused_time(clock, calendar, now)),
        started_at=_timestamp(clock.started_at),
        due_at=_timestamp(due_at(clock, calendar)),
        warn_at=_timestamp(warn_at(clock, calendar)),
        met_at=_timestamp(clock.met_at),
        warned_at=_timestamp(clock.warned_at),
        breached_at=_timestamp(clock.breached_at),
    )


def _auto_close_at(state: TicketSla, calendar: BusinessCalendar, now: datetime) -> datetime | None:
    """When the auto-close timer fires, as armed: unset unless pending and not fired yet."""
    for deadline in next_deadlines(state, {calendar.id: calendar}, now):
        if deadline.kind is DeadlineKind.AUTO_CLOSE:
            return deadline.at
    return None


def ticket_sla_to_proto(
    state: TicketSla, calendar: BusinessCalendar, now: datetime, ticket_number: str = ""
) -> sla_pb2.TicketSla:
    """A ticket's SLA as it stands at `now`, every clock in metric order; `calendar` is the
    ticket's."""
    _check_calendar(state, calendar)
    return sla_pb2.TicketSla(
        ticket_id=state.ticket_id,
        ticket_number=ticket_number,
        policy_id=state.policy_id,
        calendar_id=state.calendar_id,
        status=state.status,
        metrics=[
            _metric_sla(state.clocks[metric], calendar, now)
            for metric in Metric
            if metric in state.clocks
        ],
        auto_close_at=_timestamp(_auto_close_at(state, calendar, now)),
    )


def clock_to_event(
    state: TicketSla,
    metric: Metric,
    calendar: BusinessCalendar,
    now: datetime,
    ticket_number: str,
    team: str,
    assignee_id: str,
    priority: str,
) -> sla_events_pb2.SlaClock:
    """The current cycle of one of a ticket's clocks at `now`, for an SLA event."""
    _check_calendar(state, calendar)
    clock = state.clocks.get(metric)
    if clock is None:
        raise ValueError(f"ticket {state.ticket_id} has no {metric} clock")
    return sla_events_pb2.SlaClock(
        ticket_id=state.ticket_id,
        ticket_number=ticket_number,
        metric=metric.value,
        policy_id=state.policy_id,
        target=_duration(clock.target),
        elapsed=_duration(elapsed(clock, calendar, now)),
        due_at=_timestamp(due_at(clock, calendar)),
        team=team,
        assignee_id=assignee_id,
        priority=priority,
    )
