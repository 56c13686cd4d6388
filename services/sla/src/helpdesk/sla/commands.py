"""What the SLA service does, in order: read a ticket's SLA, let the domain apply the event
or fire what is due, then write the state, its timers and its events in one conditional
write; the outbox relay publishes the events. The edges (Kafka, gRPC, the timer loop)
call these.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from google.protobuf.message import Message

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.events.v1 import sla_events_pb2
from helpdesk.api.sla.v1 import sla_pb2
from helpdesk.api.tickets.v1 import tickets_pb2
from helpdesk.core.errors import (
    Aborted,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from helpdesk.core.kafka import SLA_EVENTS_TOPIC
from helpdesk.core.logging import get_logger
from helpdesk.core.mongo import DocumentLocks
from helpdesk.core.outbox import OutboxEvent, OutboxRelay, outbox_fields
from helpdesk.core.telemetry import continued_span, current_traceparent
from helpdesk.core.ticket_words import priority_of
from helpdesk.core.tickets_client import TicketsClient
from helpdesk.sla.domain.calendar import BusinessCalendar, parse_calendar
from helpdesk.sla.domain.clocks import (
    ClockState,
    ClockStatus,
    Deadline,
    DeadlineKind,
    Event,
    MetricClock,
    PolicyChanged,
    TicketOpened,
    TicketSla,
    apply,
    calendar_edited,
    calendar_for,
    due_at,
    due_bucket,
    fire_due,
    new_ticket_sla,
    next_deadlines,
    policy_deleted,
    reporting_calendar,
    status_of,
)
from helpdesk.sla.domain.policy import Policy, TicketFacts, parse_policy, select_policy
from helpdesk.sla.mapping import (
    clock_to_event,
    deadline_to_document,
    sla_from_document,
    sla_to_document,
    ticket_sla_to_proto,
)
from helpdesk.sla.metrics import AUTO_CLOSED, BREACHES, FIRING_LAG, MET, WARNINGS
from helpdesk.sla.store import SlaStore

log = get_logger(__name__)

SLA_ACTOR = "sla"
EVENT_SOURCE = "helpdesk/sla"
# How many applied event ids a ticket's SLA remembers (redeliveries come soon after).
REMEMBERED_EVENTS = 30
# Tries to write when another replica keeps writing the same ticket's SLA.
WRITE_ATTEMPTS = 5

Decide = Callable[[TicketSla | None, Mapping[str, BusinessCalendar]], "Outcome"]
Arm = Callable[[str, list[Deadline]], None]
Change = Callable[[TicketSla, Mapping[str, BusinessCalendar]], TicketSla]


@dataclass(frozen=True)
class Outcome:
    """What one decision produced: the new state (None: nothing to write) and the
    deadlines it fired."""

    state: TicketSla | None
    fired: list[Deadline] = field(default_factory=list)


class SlaCommands:
    def __init__(
        self,
        store: SlaStore,
        relay: OutboxRelay,
        tickets: TicketsClient,
        *,
        locks: DocumentLocks | None = None,
    ) -> None:
        self._store = store
        self._relay = relay
        self._tickets = tickets
        self._locks = locks or DocumentLocks()
        # The timer loop learns of new deadlines through this (set by the app).
        self.arm: Arm = lambda ticket_id, deadlines: None

    # ---- policies and calendars (admin API)

    async def put_calendar(self, raw: Mapping[str, Any]) -> BusinessCalendar:
        calendar = parse_calendar(raw)
        old = (await self._calendars()).get(calendar.id)
        await self._store.put_calendar(calendar)
        if old is None or old == calendar:
            return calendar
        # Open tickets counting in an edited calendar keep the time counted in the old hours
        # and count in the new ones from now on; their timers are armed anew.
        at = _now()

        def decide(state: TicketSla | None, calendars: Mapping[str, BusinessCalendar]) -> Outcome:
            if state is None or state.calendar_id != calendar.id:
                return Outcome(None)  # moved meanwhile
            return Outcome(calendar_edited(state, old, at))

        for ticket_id in await self._store.open_in_calendar(calendar.id):
            await self._change(ticket_id, None, decide, "")
        return calendar

    async def delete_calendar(self, calendar_id: str) -> None:
        """Deletes a calendar no policy and no open ticket counts in."""
        _require_id(calendar_id)
        naming = await self._store.policies_in_calendar(calendar_id)
        if naming:
            raise FailedPrecondition(
                f"calendar {calendar_id!r} is used by policies {', '.join(naming)}: "
                "give them another calendar or delete them first"
            )
        # A ticket left in it by an interrupted move would lose its business hours.
        counting = await self._store.open_in_calendar(calendar_id)
        if counting:
            raise FailedPrecondition(
                f"calendar {calendar_id!r} still counts the time of {len(counting)} open "
                f"tickets (e.g. {counting[0]}); try again once they have moved"
            )
        if not await self._store.delete_calendar(calendar_id):
            raise NotFound(f"calendar {calendar_id!r} does not exist")

    async def put_policy(self, raw: Mapping[str, Any]) -> Policy:
        policy = parse_policy(raw)
        if policy.calendar_id and policy.calendar_id not in await self._calendars():
            raise InvalidArgument(
                [FieldViolation("calendar_id", f"no calendar {policy.calendar_id!r}")]
            )
        await self._store.put_policy(policy)
        at = _now()
        # Open tickets under an edited policy are measured by it from now on, keeping the
        # business time they already used (their warnings and breaches stay fired).
        await self._move_open(
            policy.id, lambda state, calendars: apply(state, PolicyChanged(at, policy), calendars)
        )
        return policy

    async def delete_policy(self, policy_id: str) -> int:
        """Deletes a policy; each open ticket under it goes to the policy the others select
        for it. How many tickets moved."""
        _require_id(policy_id)
        # Deleted first, so that a ticket event meanwhile cannot select it again.
        deleted = await self._store.delete_policy(policy_id)
        # Tickets still under it after a deletion cut short are moved by a retry.
        under = await self._store.open_under_policy(policy_id)
        if not deleted and not under:
            raise NotFound(f"policy {policy_id!r} does not exist")
        remaining = await self._store.all_policies()
        at = _now()
        return await self._move_open(
            policy_id, lambda state, calendars: policy_deleted(state, remaining, at, calendars)
        )

    async def _move_open(self, policy_id: str, change: Change) -> int:
        """Applies `change` to each open ticket under a policy, one write each; how many."""

        def decide(state: TicketSla | None, calendars: Mapping[str, BusinessCalendar]) -> Outcome:
            if state is None or state.policy_id != policy_id or state.status == "closed":
                return Outcome(None)  # moved or closed meanwhile
            return Outcome(change(state, calendars))

        tickets = await self._store.open_under_policy(policy_id)
        for ticket_id in tickets:
            await self._change(ticket_id, None, decide, "")
        return len(tickets)

    async def calendars(self) -> list[BusinessCalendar]:
        return await self._store.all_calendars()

    async def policies(self) -> list[Policy]:
        return await self._store.all_policies()

    async def _calendars(self) -> dict[str, BusinessCalendar]:
        return {c.id: c for c in await self._store.all_calendars()}

    # ---- queries

    async def ticket_sla(self, ticket_id: str) -> sla_pb2.TicketSla:
        doc = await self._store.ticket(ticket_id)
        if doc is None:
            raise NotFound(f"no SLA recorded for ticket {ticket_id}")
        state = sla_from_document(doc["state"])
        calendar = reporting_calendar(state, await self._calendars())
        return ticket_sla_to_proto(state, calendar, _now(), doc.get("number", ""))

    async def at_risk(
        self, team: str, limit: int, include_breached: bool
    ) -> list[sla_pb2.TicketSla]:
        risks = ["at_risk", "breached"] if include_breached else ["at_risk"]
        calendars, now = await self._calendars(), _now()
        found = []
        for doc in await self._store.at_risk(risks, team, limit):
            state = sla_from_document(doc["state"])
            calendar = calendar_for(calendars, state.calendar_id)
            found.append(ticket_sla_to_proto(state, calendar, now, doc.get("number", "")))
        return found

    # ---- ticket events

    async def ticket_event(
        self,
        event_id: str,
        ticket: tickets_pb2.Ticket,
        events: list[Event],
        *,
        facts: TicketFacts | None = None,
        at: datetime | None = None,
    ) -> None:
        """Applies what a ticket event means to its SLA. `facts` (on creation and on changes
        of priority, category, team or tags) choose the policy again; a different one
        takes over, keeping the business time already elapsed."""
        policies = await self._store.all_policies()

        def decide(state: TicketSla | None, calendars: Mapping[str, BusinessCalendar]) -> Outcome:
            changes = list(events)
            if state is None:
                if not any(isinstance(e, TicketOpened) for e in changes):
                    return Outcome(None)  # a ticket from before this service: not measured
                policy = select_policy(policies, facts) if facts else None
                state = new_ticket_sla(ticket.id, policy)
            elif facts is not None and at is not None:
                policy = select_policy(policies, facts)
                if (policy.id if policy else "") != state.policy_id or facts != state.facts:
                    changes.append(PolicyChanged(at, policy, facts=facts))
            for event in changes:
                state = apply(state, event, calendars)
            return Outcome(state)

        await self._change(ticket.id, ticket, decide, event_id)

    async def fire(self, ticket_id: str) -> None:
        """Fires whatever of this ticket is due now; nothing when another replica did.

        The firing continues the trace of the ticket event that last changed its SLA (the
        one that armed these timers), so a warning, a breach or an auto-close and what
        follows from them sit in the trace of the ticket's story."""
        now = _now()

        def decide(state: TicketSla | None, calendars: Mapping[str, BusinessCalendar]) -> Outcome:
            if state is None:
                return Outcome(None)
            fired_state, fired = fire_due(state, calendars, now)
            return Outcome(fired_state, fired)

        doc = await self._store.ticket(ticket_id)
        traceparent = str(doc.get("traceparent", "")) if doc else ""
        with continued_span(
            "sla.timer.fire", traceparent, attributes={"helpdesk.ticket.id": ticket_id}
        ) as span:
            fired = await self._change(ticket_id, None, decide, "")
            span.set_attribute("helpdesk.sla.fired", [d.kind.value for d in fired])
            for deadline in fired:
                FIRING_LAG.observe(max(0.0, (now - deadline.at).total_seconds()))
                if deadline.kind is DeadlineKind.AUTO_CLOSE:
                    await self._auto_close(ticket_id, deadline)

    async def _auto_close(self, ticket_id: str, deadline: Deadline) -> None:
        key = f"auto-close:{ticket_id}:{deadline.since.isoformat()}"
        try:
            await self._tickets.comment(
                ticket_id,
                "Closed automatically: we have not heard back since "
                f"{deadline.since:%Y-%m-%d %H:%M} UTC. Reply to open a new request.",
                internal=False,
                key=key,
            )
            await self._tickets.update(
                ticket_id, tickets_pb2.Ticket(status=common_pb2.TICKET_STATUS_CLOSED), ["status"]
            )
        except (FailedPrecondition, NotFound) as error:
            # Answered, closed by a person or held for review meanwhile: nothing to close.
            log.info("auto_close_skipped", ticket=ticket_id, reason=error.message)
            return
        AUTO_CLOSED.inc()
        log.info("ticket_auto_closed", ticket=ticket_id)

    # ---- one decision, one write

    async def _change(
        self,
        ticket_id: str,
        ticket: tickets_pb2.Ticket | None,
        decide: Decide,
        event_id: str,
    ) -> list[Deadline]:
        """`ticket` is the ticket as its event tells it; None (a timer, a policy edit) keeps
        where the ticket was last seen."""
        for _ in range(WRITE_ATTEMPTS):
            async with self._locks.hold(ticket_id):
                doc = await self._store.ticket(ticket_id)
                if doc and event_id and event_id in doc.get("events", ()):
                    return []  # applied before: a redelivery
                before = sla_from_document(doc["state"]) if doc else None
                calendars = await self._calendars()
                outcome = decide(before, calendars)
                if outcome.state is None or (outcome.state == before and not outcome.fired):
                    return []
                now = _now()
                version = int(doc["version"]) if doc else 0
                where = _whereabouts(ticket, doc)
                events, met = self._events(before, outcome, where, calendars, version + 1, now)
                deadlines = next_deadlines(outcome.state, calendars, now)
                fields = self._fields(
                    outcome.state, where, doc, deadlines, calendars, now, event_id
                )
                outbox = outbox_fields(events)
                stored = (
                    await self._store.save(ticket_id, version, fields, outbox)
                    if doc
                    else await self._store.insert(ticket_id, fields, outbox)
                )
            if stored:
                self._relay.publish_soon(ticket_id, version + 1, events)
                self.arm(ticket_id, deadlines)
                self._count(outcome.state, outcome.fired, met, where["team"])
                return outcome.fired
        raise Aborted(f"the SLA of ticket {ticket_id} keeps changing; try again")

    def _fields(
        self,
        state: TicketSla,
        where: Mapping[str, str],
        doc: Mapping[str, Any] | None,
        deadlines: list[Deadline],
        calendars: Mapping[str, BusinessCalendar],
        now: datetime,
        event_id: str,
    ) -> dict[str, Any]:
        calendar = calendar_for(calendars, state.calendar_id)
        buckets = sorted({due_bucket(d.at) for d in deadlines})
        statuses = [status_of(c, calendar, now) for c in state.clocks.values()]
        dues = [d for d in (due_at(c, calendar) for c in state.clocks.values()) if d is not None]
        risk = "closed" if state.status == "closed" else "ok"
        if ClockStatus.BREACHED in statuses and state.status != "closed":
            risk = "breached"
        elif ClockStatus.AT_RISK in statuses and state.status != "closed":
            risk = "at_risk"
        previous = doc or {}
        remembered = list(previous.get("events", ()))
        # The trace of the last ticket event applied; the timers it armed continue it.
        traceparent = previous.get("traceparent", "")
        if event_id:
            remembered = [*remembered, event_id][-REMEMBERED_EVENTS:]
            traceparent = current_traceparent()
        return {
            "state": sla_to_document(state),
            "deadlines": [deadline_to_document(d) for d in deadlines],
            "buckets": buckets,
            "next_bucket": buckets[0] if buckets else None,
            "risk": risk,
            "next_due": min(dues) if dues else None,
            "number": where["ticket_number"],
            "team": where["team"],
            "assignee_id": where["assignee_id"],
            "priority": where["priority"],
            "events": remembered,
            "traceparent": traceparent,
        }

    def _events(
        self,
        before: TicketSla | None,
        outcome: Outcome,
        where: Mapping[str, str],
        calendars: Mapping[str, BusinessCalendar],
        version: int,
        now: datetime,
    ) -> tuple[list[OutboxEvent], list[tuple[str, bool]]]:
        """sla.warning / sla.breached for what fired, sla.met for clocks that stopped (and
        which metrics were met, late or not)."""
        state = outcome.state
        assert state is not None
        calendar = calendar_for(calendars, state.calendar_id)
        payloads: list[tuple[str, Message]] = []
        met_targets: list[tuple[str, bool]] = []
        for deadline in outcome.fired:
            if deadline.metric is None:
                continue
            # A breach owed by a cycle that already ended late reports that cycle.
            late = next(
                (
                    c
                    for c in (before.late_cycles if before else ())
                    if c.metric == deadline.metric and c.started_at == deadline.since
                ),
                None,
            )
            of = replace(state, clocks={**state.clocks, deadline.metric: late}) if late else state
            clock = clock_to_event(of, deadline.metric, calendar, now, **where)
            if deadline.kind is DeadlineKind.WARNING:
                payloads.append(("warning", sla_events_pb2.SlaWarning(clock=clock)))
            elif deadline.kind is DeadlineKind.BREACH:
                payloads.append(("breached", sla_events_pb2.SlaBreached(clock=clock)))
        for metric, clock_after in state.clocks.items():
            earlier = before.clocks.get(metric) if before else None
            stopped_now = clock_after.state is ClockState.STOPPED and (
                earlier is None or earlier.state is not ClockState.STOPPED
            )
            if stopped_now and clock_after.met_at is not None:
                met = sla_events_pb2.SlaMet(
                    clock=clock_to_event(state, metric, calendar, now, **where),
                    breached=clock_after.breached_at is not None or _late(clock_after),
                )
                met.met_at.FromDatetime(clock_after.met_at)
                payloads.append(("met", met))
                met_targets.append((metric.value, met.breached))
        events = [
            OutboxEvent.new(
                event_type=f"helpdesk.sla.{kind}.v1",
                source=EVENT_SOURCE,
                topic=SLA_EVENTS_TOPIC,
                key=state.ticket_id,
                payload=payload.SerializeToString(),
                sequence=version * 100 + i,
            )
            for i, (kind, payload) in enumerate(payloads)
        ]
        return events, met_targets

    @staticmethod
    def _count(
        state: TicketSla | None, fired: list[Deadline], met: list[tuple[str, bool]], team: str
    ) -> None:
        assert state is not None
        for deadline in fired:
            if deadline.metric is None:
                continue
            labels = (deadline.metric.value, state.policy_id, team)
            if deadline.kind is DeadlineKind.WARNING:
                WARNINGS.labels(*labels).inc()
            elif deadline.kind is DeadlineKind.BREACH:
                BREACHES.labels(*labels).inc()
        for metric, breached in met:
            MET.labels(metric, state.policy_id, team, str(breached).lower()).inc()


def _require_id(value: str) -> None:
    if not value:
        raise InvalidArgument([FieldViolation("id", "is required")])


def _whereabouts(
    ticket: tickets_pb2.Ticket | None, doc: Mapping[str, Any] | None
) -> dict[str, str]:
    """Where the ticket is, as its event tells or as last recorded: what events report."""
    if ticket is not None:
        return {
            "ticket_number": ticket.number,
            "team": ticket.team,
            "assignee_id": ticket.assignee_id,
            "priority": priority_of(ticket),
        }
    previous = doc or {}
    return {
        "ticket_number": str(previous.get("number", "")),
        "team": str(previous.get("team", "")),
        "assignee_id": str(previous.get("assignee_id", "")),
        "priority": str(previous.get("priority", "")),
    }


def _late(clock: MetricClock) -> bool:
    """Met at or after its target."""
    if clock.target is None or clock.met_at is None:
        return False
    return clock.elapsed >= clock.target


def _now() -> datetime:
    return datetime.now(UTC)
