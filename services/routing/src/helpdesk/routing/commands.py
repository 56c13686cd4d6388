"""What routing does, in order: read the directory and load, let the domain decide, take a
capacity slot, then ask intake to assign. The edges (gRPC, Kafka, the sweep) call these.

Redelivered events change nothing: each ticket's placement remembers the events it
applied, a ticket keeps the slot it already holds, and intake ignores an AssignTicket whose
idempotency key (the event id) it has seen.
"""

import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from helpdesk.api.tickets.v1 import tickets_pb2
from helpdesk.core.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from helpdesk.core.logging import get_logger
from helpdesk.core.mongo import DocumentLocks
from helpdesk.core.ticket_words import status_of
from helpdesk.core.tickets_client import TicketsClient
from helpdesk.routing.domain import escalation
from helpdesk.routing.domain.assignment import (
    AgentLoad,
    Placement,
    choose_agent,
    hand_over,
    route,
)
from helpdesk.routing.domain.directory import (
    Agent,
    Availability,
    Team,
    check_agent_references,
    check_team_references,
    is_available,
    parse_agent,
    parse_team,
)
from helpdesk.routing.domain.rules import (
    AgentChoice,
    Decision,
    Rule,
    TicketFacts,
    check_rule_references,
    evaluate,
    parse_rule,
    tier_of,
)
from helpdesk.routing.mapping import facts_from_proto, priority_to_proto
from helpdesk.routing.metrics import (
    AGENT_CAPACITY,
    AGENT_LOAD,
    DECISIONS,
    QUEUE_DEPTH,
    TIME_TO_ASSIGNMENT,
)
from helpdesk.routing.store import RoutingStore

log = get_logger(__name__)

# Who routing is in the tickets' history.
ROUTING_ACTOR = "routing"
# How many applied event ids a placement remembers (redeliveries come soon after).
REMEMBERED_EVENTS = 20
# Tries to place a ticket when the chosen agent filled up in the meantime.
PLACE_ATTEMPTS = 3
# Changes that make routing look at a ticket again.
REROUTING_FIELDS = frozenset({"priority", "category", "tags"})
# At most this many waiting tickets are offered per team in one go.
OFFER_BATCH = 50


def _now() -> datetime:
    return datetime.now(UTC)


class RoutingCommands:
    def __init__(
        self,
        store: RoutingStore,
        tickets: TicketsClient,
        *,
        reopen_threshold: int = 2,
        locks: DocumentLocks | None = None,
    ) -> None:
        self._store = store
        self._tickets = tickets
        self._reopen_threshold = reopen_threshold
        # One decision per ticket at a time in this process; slots guard across replicas.
        self._locks = locks or DocumentLocks()

    # ---- the directory and the rules (admin API)

    async def put_team(self, raw: Mapping[str, Any]) -> Team:
        team = parse_team(raw)
        check_team_references(team, {a.id for a in await self._store.all_agents()})
        await self._store.put_team(team)
        await self.offer_waiting([team.id])
        return team

    async def put_agent(self, raw: Mapping[str, Any]) -> Agent:
        agent = parse_agent(raw)
        agents = {a.id for a in await self._store.all_agents()} | {agent.id}
        teams = {t.id for t in await self._store.all_teams()}
        check_agent_references(agent, teams, agents)
        await self._store.put_agent(agent)
        await self.availability_changed(agent)
        return agent

    async def set_availability(self, agent_id: str, value: str) -> Agent:
        try:
            availability = Availability(value.strip().lower())
        except ValueError:
            allowed = ", ".join(a.value for a in Availability)
            raise InvalidArgument(
                [FieldViolation("availability", f"must be one of {allowed}; got {value!r}")]
            ) from None
        if await self._store.agent(agent_id) is None:
            raise NotFound(f"agent {agent_id} not found")
        await self._store.set_availability(agent_id, availability)
        agent = await self._store.agent(agent_id)
        assert agent is not None
        await self.availability_changed(agent)
        return agent

    async def put_rule(self, raw: Mapping[str, Any]) -> Rule:
        rule = parse_rule(raw)
        check_rule_references(
            rule,
            {t.id for t in await self._store.all_teams()},
            {a.id for a in await self._store.all_agents()},
        )
        await self._store.put_rule(rule)
        return rule

    async def delete_rule(self, rule_id: str) -> None:
        if not await self._store.delete_rule(rule_id):
            raise NotFound(f"rule {rule_id} not found")

    async def teams(self) -> list[Team]:
        return await self._store.all_teams()

    async def rules(self) -> list[Rule]:
        return await self._store.all_rules()

    async def loads(self) -> list[AgentLoad]:
        return await self._store.loads()

    async def waiting_counts(self) -> dict[str, int]:
        return await self._store.waiting_counts()

    async def evaluate(self, facts: TicketFacts) -> tuple[Decision, Placement]:
        """What routing would decide now, and where that puts the ticket. Changes nothing."""
        now = _now()
        decision = evaluate(await self._store.all_rules(), facts, now)
        placement = route(
            decision, facts.language, await self._store.all_teams(), await self._store.loads(), now
        )
        return decision, placement

    # ---- ticket events

    async def ticket_opened(
        self, event_id: str, ticket: tickets_pb2.Ticket, facts: TicketFacts
    ) -> None:
        await self._decide(event_id, ticket, facts, created=True)

    async def ticket_changed(
        self, event_id: str, ticket: tickets_pb2.Ticket, facts: TicketFacts, fields: Collection[str]
    ) -> None:
        """A change of priority, category or tags routes the ticket again where rules say."""
        if not REROUTING_FIELDS & set(fields):
            return
        await self._decide(event_id, ticket, facts, created=False)

    async def ticket_reopened(
        self, event_id: str, ticket: tickets_pb2.Ticket, facts: TicketFacts
    ) -> None:
        """Back to work: escalates a ticket that keeps coming back, else routes it again."""
        teams = await self._store.all_teams()
        step = escalation.on_reopen(
            teams, facts.team, tier_of(facts.tier), facts.reopen_count, self._reopen_threshold
        )
        if not step.escalate:
            await self._decide(event_id, ticket, facts, created=False)
            return
        decision = Decision(
            team=step.team or facts.team,
            tier=step.tier,
            priority=facts.priority,
            matched=(f"escalation: {step.reason}",),
        )
        await self._decide(event_id, ticket, facts, created=False, decision=decision)

    async def sla_breached(self, event_id: str, ticket_id: str, metric: str) -> None:
        """A missed target escalates where the domain says (by default, resolution)."""
        try:
            ticket = await self._tickets.get(ticket_id)
        except NotFound:
            return
        if status_of(ticket) in ("resolved", "closed"):
            return
        facts = facts_from_proto(ticket)
        teams = await self._store.all_teams()
        step = escalation.on_breach(teams, facts.team, tier_of(facts.tier), metric)
        if not step.escalate:
            log.info("breach_not_escalated", ticket=ticket.number, reason=step.reason)
            return
        decision = Decision(
            team=step.team or facts.team,
            tier=step.tier,
            priority=facts.priority,
            matched=(f"escalation: {step.reason}",),
        )
        await self._decide(event_id, ticket, facts, created=False, decision=decision)

    async def ticket_done(self, ticket_id: str) -> None:
        """Resolved, closed or merged: the agent's slot frees and the queue moves."""
        async with self._locks.hold(ticket_id):
            freed = await self._store.release(ticket_id)
            await self._store.forget(ticket_id)
        if freed:
            agent = await self._store.agent(freed)
            if agent is not None:
                await self.offer_waiting(agent.teams)

    async def ticket_assigned(self, ticket: tickets_pb2.Ticket, actor_id: str) -> None:
        """A person assigned the ticket by hand: the load follows the ticket."""
        if actor_id == ROUTING_ACTOR:
            return
        async with self._locks.hold(ticket.id):
            holder = await self._store.holder(ticket.id)
            if holder == ticket.assignee_id:
                return
            if holder:
                await self._store.release(ticket.id)
            if ticket.assignee_id:
                agent = await self._store.agent(ticket.assignee_id)
                # A person may assign beyond capacity; the slot count then stays at the cap.
                if agent is not None:
                    await self._store.reserve(agent.id, agent.capacity, ticket.id)
            await self._store.place(
                ticket.id, {"team": ticket.team, "agent_id": ticket.assignee_id, "waiting": False}
            )
        if holder:
            agent = await self._store.agent(holder)
            if agent is not None:
                await self.offer_waiting(agent.teams)

    # ---- availability: hand-over and taking from the queue

    async def availability_changed(self, agent: Agent) -> None:
        """An agent who can no longer work hands over; one who can takes waiting tickets."""
        if is_available(agent, _now()):
            await self.offer_waiting(agent.teams)
            return
        held = await self._store.tickets_of(agent.id)
        if not held:
            return
        plan = hand_over(agent, held, await self._store.loads(), _now())
        for step in plan:
            await self._hand_over(step.ticket_id, agent.id, step.agent_id, step.reason)

    async def sweep(self) -> None:
        """Working hours begin and end and absences start without anyone calling: look."""
        for agent in await self._store.all_agents():
            await self.availability_changed(agent)
        await self.observe()

    async def offer_waiting(self, team_ids: Iterable[str]) -> None:
        """Waiting tickets of these teams, oldest first, to whoever has room now."""
        teams = {t.id: t for t in await self._store.all_teams()}
        for team_id in dict.fromkeys(team_ids):
            team = teams.get(team_id)
            if team is None:
                continue
            for waiting in (await self._store.waiting(team_id))[:OFFER_BATCH]:
                await self._offer(team, waiting)

    async def observe(self) -> None:
        """Queue depth and load as gauges."""
        for team, count in (await self._store.waiting_counts()).items():
            QUEUE_DEPTH.labels(team).set(count)
        for load in await self._store.loads():
            AGENT_LOAD.labels(load.agent.id).set(load.open_tickets)
            AGENT_CAPACITY.labels(load.agent.id).set(load.agent.capacity)

    # ---- the work itself

    async def _decide(
        self,
        event_id: str,
        ticket: tickets_pb2.Ticket,
        facts: TicketFacts,
        *,
        created: bool,
        decision: Decision | None = None,
    ) -> None:
        async with self._locks.hold(ticket.id):
            placed = await self._store.placement(ticket.id) or {}
            if event_id in placed.get("events", ()):
                return  # applied before: a redelivery
            now = _now()
            if decision is None:
                decision = evaluate(await self._store.all_rules(), facts, now)
            teams = await self._store.all_teams()
            holder = await self._store.holder(ticket.id)
            if created and holder:
                # A crash after the slot was taken: finish what was started, on the same agent.
                decision = replace(decision, choice=AgentChoice.AGENT, agent_id=holder)
            placement = await self._take_slot(decision, facts, teams, holder)
            if not placement.team and not placement.agent_id:
                # No rule and no team: it stays where it is for a person to triage.
                log.info("ticket_left_for_triage", ticket=ticket.number, reason=placement.reason)
                return
            try:
                await self._tickets.assign(
                    ticket.id,
                    team=placement.team,
                    tier=placement.tier.value if placement.tier else "",
                    agent_id=placement.agent_id,
                    key=event_id,
                    reason=placement.reason,
                )
                await self._apply_fields(ticket, facts, decision)
            except (FailedPrecondition, NotFound) as error:
                # Resolved, closed or gone meanwhile: nothing to route.
                log.info("routing_skipped", ticket=ticket.number, reason=error.message)
                await self._store.release(ticket.id)
                await self._store.forget(ticket.id)
                return
            await self._store.place(
                ticket.id,
                {
                    "number": ticket.number,
                    "team": placement.team,
                    "tier": placement.tier.value if placement.tier else "",
                    "agent_id": placement.agent_id,
                    "waiting": not placement.agent_id,
                    "language": facts.language,
                    "required_skills": sorted(decision.required_skills),
                    "events": [*placed.get("events", ()), event_id][-REMEMBERED_EVENTS:],
                },
            )
        rule = decision.matched[0] if decision.matched else "none"
        outcome = "assigned" if placement.agent_id else "queued"
        if decision.matched and decision.matched[0].startswith("escalation"):
            outcome = "escalated"
        DECISIONS.labels(rule, outcome).inc()
        if created and placement.agent_id and ticket.HasField("created_at"):
            TIME_TO_ASSIGNMENT.observe(
                max(0.0, time.time() - ticket.created_at.ToDatetime(UTC).timestamp())
            )
        log.info(
            "ticket_routed",
            ticket=ticket.number,
            team=placement.team,
            agent=placement.agent_id,
            reason=placement.reason,
        )

    async def _take_slot(
        self, decision: Decision, facts: TicketFacts, teams: list[Team], holder: str | None
    ) -> Placement:
        """The placement and, when it names an agent, a slot of theirs; moves the slot when
        the agent changes."""
        exclude: set[str] = set()
        placement: Placement | None = None
        for _ in range(PLACE_ATTEMPTS):
            loads = await self._store.loads()
            if holder:
                # The ticket's own slot is not load that keeps its agent from taking it.
                loads = [
                    replace(c, open_tickets=c.open_tickets - 1) if c.agent.id == holder else c
                    for c in loads
                ]
            placement = route(decision, facts.language, teams, loads, _now(), exclude=exclude)
            if not placement.agent_id or placement.agent_id == holder:
                break
            agent = next(c.agent for c in loads if c.agent.id == placement.agent_id)
            if await self._store.reserve(agent.id, agent.capacity, facts.ticket_id):
                break
            exclude.add(agent.id)  # filled up meanwhile (another replica): next best
            placement = None
        if placement is None:
            placement = route(
                replace(decision, choice=AgentChoice.QUEUE), facts.language, teams, [], _now()
            )
        if holder and placement.agent_id != holder:
            await self._store.release_from(facts.ticket_id, holder)
        return placement

    async def _apply_fields(
        self, ticket: tickets_pb2.Ticket, facts: TicketFacts, decision: Decision
    ) -> None:
        """Priority and tags the rules set go through UpdateTicket (AssignTicket has none)."""
        fields: list[str] = []
        patch = tickets_pb2.Ticket()
        if decision.priority and decision.priority != facts.priority:
            patch.priority = priority_to_proto(decision.priority)
            fields.append("priority")
        new_tags = [t for t in decision.tags if t not in facts.tags]
        if new_tags:
            patch.tags.extend([*facts.tags, *new_tags])
            fields.append("tags")
        if fields:
            await self._tickets.update(ticket.id, patch, fields)

    async def _offer(self, team: Team, waiting: dict[str, Any]) -> None:
        ticket_id = str(waiting["_id"])
        async with self._locks.hold(ticket_id):
            current = await self._store.placement(ticket_id)
            if not current or not current.get("waiting"):
                return
            members = [c for c in await self._store.loads() if team.id in c.agent.teams]
            agent_id = choose_agent(
                team.strategy,
                members,
                frozenset(waiting.get("required_skills") or ()),
                str(waiting.get("language") or ""),
                _now(),
            )
            if not agent_id:
                return
            agent = next(c.agent for c in members if c.agent.id == agent_id)
            if not await self._store.reserve(agent.id, agent.capacity, ticket_id):
                return
            reason = f"taken from the queue of team {team.id} by {agent.id}, who has room"
            try:
                await self._tickets.assign(
                    ticket_id,
                    team=team.id,
                    tier=str(waiting.get("tier") or ""),
                    agent_id=agent.id,
                    key=f"queue:{ticket_id}:{agent.id}:{time.time_ns()}",
                    reason=reason,
                )
            except (FailedPrecondition, NotFound):
                await self._store.release(ticket_id)
                await self._store.forget(ticket_id)
                return
            await self._store.place(ticket_id, {"agent_id": agent.id, "waiting": False})
        DECISIONS.labels("queue", "assigned").inc()
        log.info("ticket_taken_from_queue", ticket=waiting.get("number"), agent=agent.id)

    async def _hand_over(self, ticket_id: str, absent: str, backup: str, reason: str) -> None:
        async with self._locks.hold(ticket_id):
            current = await self._store.placement(ticket_id) or {}
            team = str(current.get("team") or "")
            if backup:
                agent = await self._store.agent(backup)
                if agent is None or not await self._store.reserve(
                    agent.id, agent.capacity, ticket_id
                ):
                    backup = ""
            try:
                await self._tickets.assign(
                    ticket_id,
                    team=team,
                    tier=str(current.get("tier") or ""),
                    agent_id=backup,
                    key=f"handover:{ticket_id}:{absent}:{time.time_ns()}",
                    reason=reason,
                )
            except (FailedPrecondition, NotFound):
                await self._store.release(ticket_id)
                await self._store.forget(ticket_id)
                return
            await self._store.release_from(ticket_id, absent)
            await self._store.place(ticket_id, {"agent_id": backup, "waiting": not backup})
        DECISIONS.labels("handover", "handed_over").inc()
        log.info("ticket_handed_over", ticket=ticket_id, absent=absent, to=backup or "queue")
