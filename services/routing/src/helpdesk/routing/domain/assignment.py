"""Choosing the agent for a ticket: fair by load or in turn, never beyond capacity, never
someone away; handing an absent agent's tickets to their backup; the whole placement of a
ticket after the rules decided."""

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction

from helpdesk.routing.domain.directory import (
    Agent,
    Strategy,
    Team,
    Tier,
    absence_at,
    backup_for,
    is_available,
    speaks,
)
from helpdesk.routing.domain.escalation import team_for_tier
from helpdesk.routing.domain.raw import require_utc
from helpdesk.routing.domain.rules import AgentChoice, Decision

_NEVER = datetime.min.replace(tzinfo=UTC)
# How far a hand-over follows backups of backups before giving up.
MAX_BACKUP_CHAIN = 5


@dataclass(frozen=True)
class AgentLoad:
    """An agent with what assignment needs to know about their work right now."""

    agent: Agent
    open_tickets: int
    last_assigned_at: datetime | None = None
    # A counter the store bumps on every assignment: orders those made in the same instant.
    last_assigned_seq: int = 0

    @property
    def has_room(self) -> bool:
        return self.open_tickets < self.agent.capacity


def recency(load: AgentLoad) -> tuple[bool, datetime, int, str]:
    """Sort key: never assigned first, then longest since the last assignment, then by id."""
    assigned = load.last_assigned_at
    return (assigned is not None, assigned or _NEVER, load.last_assigned_seq, load.agent.id)


def fits(load: AgentLoad, required_skills: Collection[str], language: str, now: datetime) -> bool:
    """Available, under capacity, with every required skill and the ticket's language."""
    return (
        load.has_room
        and is_available(load.agent, now)
        and all(skill in load.agent.skills for skill in required_skills)
        and speaks(load.agent, language)
    )


def choose_agent(
    strategy: Strategy,
    candidates: Iterable[AgentLoad],
    required_skills: Collection[str],
    language: str,
    now: datetime,
    *,
    exclude: Collection[str] = (),
) -> str | None:
    """The agent who takes the ticket under the team's strategy, None to leave it queued.

    least_loaded: lowest open/capacity share; round_robin: the one waiting longest for a
    ticket. Ties go to whoever was assigned least recently, never to who came online first.
    """
    if strategy == Strategy.QUEUE_ONLY:
        return None
    moment = require_utc(now)
    fitting = [
        c
        for c in candidates
        if c.agent.id not in exclude and fits(c, required_skills, language, moment)
    ]
    if not fitting:
        return None
    if strategy == Strategy.ROUND_ROBIN:
        return min(fitting, key=recency).agent.id
    # has_room guarantees a positive capacity.
    chosen = min(fitting, key=lambda c: (Fraction(c.open_tickets, c.agent.capacity), recency(c)))
    return chosen.agent.id


def duty_agent(
    team: Team, candidates: Iterable[AgentLoad], now: datetime, *, exclude: Collection[str] = ()
) -> str | None:
    """The team's on-duty agent: the first on its rota who is available and under capacity.

    Skills and language are not checked: the rota is the admins' explicit choice of who
    answers whatever comes.
    """
    moment = require_utc(now)
    loads = {c.agent.id: c for c in candidates}
    for agent_id in team.duty_rota:
        load = loads.get(agent_id)
        if (
            load is not None
            and agent_id not in exclude
            and load.has_room
            and is_available(load.agent, moment)
        ):
            return agent_id
    return None


def _covering(
    agent: Agent, loads: dict[str, AgentLoad], now: datetime, exclude: Collection[str]
) -> tuple[AgentLoad | None, str]:
    """The backup who can take work for an absent agent, following backups of absent backups,
    and a note saying who and why not."""
    seen = {agent.id}
    current = agent
    for _ in range(MAX_BACKUP_CHAIN):
        backup_id = backup_for(current, now)
        if backup_id is None:
            return None, f"{current.id} has no backup"
        if backup_id in seen:
            return None, f"backups of {agent.id} go round in a circle"
        seen.add(backup_id)
        load = loads.get(backup_id)
        if load is None:
            return None, f"backup {backup_id} is not in the directory"
        if backup_id in exclude:
            return None, f"backup {backup_id} already worked this ticket"
        if is_available(load.agent, now):
            if load.has_room:
                return load, f"backup {backup_id} takes over"
            return None, f"backup {backup_id} is at capacity"
        if absence_at(load.agent, now) is None:
            return None, f"backup {backup_id} is unavailable"
        current = load.agent
    return None, f"no available backup within {MAX_BACKUP_CHAIN} steps"


@dataclass(frozen=True)
class Handover:
    """Where one of an absent agent's open tickets goes; "" agent: back to its team's queue."""

    ticket_id: str
    agent_id: str
    reason: str


def hand_over(
    agent: Agent,
    ticket_ids: Sequence[str],
    candidates: Iterable[AgentLoad],
    now: datetime,
) -> tuple[Handover, ...]:
    """The plan for an agent going away: their backup takes tickets while under capacity (in the
    order given, so pass the most pressing first), the rest go back to the queue.

    Only an out-of-office period names a backup; an agent merely offline or away has none.
    Skills are not checked: the backup is the admins' explicit choice.
    """
    moment = require_utc(now)
    loads = {c.agent.id: c for c in candidates}
    backup, note = _covering(agent, loads, moment, ())
    room = backup.agent.capacity - backup.open_tickets if backup else 0
    absent = "out of office" if absence_at(agent, moment) else "unavailable"
    plan: list[Handover] = []
    for ticket_id in ticket_ids:
        if backup is not None and room > 0:
            plan.append(Handover(ticket_id, backup.agent.id, f"{agent.id} is {absent}; {note}"))
            room -= 1
        else:
            why = note if backup is None else f"backup {backup.agent.id} is at capacity"
            plan.append(
                Handover(ticket_id, "", f"{agent.id} is {absent}; {why}; back to the queue")
            )
    return tuple(plan)


@dataclass(frozen=True)
class Placement:
    """Where a ticket ends up: team, tier and agent ("" agent: the team's queue), and why."""

    team: str
    tier: Tier | None
    agent_id: str
    reason: str


def route(
    decision: Decision,
    language: str,
    teams: Iterable[Team],
    candidates: Iterable[AgentLoad],
    now: datetime,
    *,
    exclude: Collection[str] = (),
) -> Placement:
    """Turns the rules' decision into a placement: the team that works the decided tier, and
    the agent the decision names, or on duty, or by the team's strategy, or none.

    A named agent on leave yields to their backup. A named or on-duty agent who still cannot
    take the ticket (away, at capacity) yields to the team's strategy: the ticket still needs
    someone. `exclude` holds agents who already worked the ticket.
    """
    moment = require_utc(now)
    directory = list(teams)
    loads = {c.agent.id: c for c in candidates}
    notes = [decision.explanation()]
    team = next((t for t in directory if t.id == decision.team), None)
    if decision.team and team is None:
        notes.append(f"team {decision.team} is not in the directory")
    tier = decision.tier
    if team is not None and tier is not None and team.tier != tier:
        other = team_for_tier(directory, team.department, tier)
        if other is not None:
            notes.append(f"{tier} work in {team.department} goes to team {other.id}")
            team = other
        else:
            notes.append(f"no {tier} team in {team.department}; team {team.id} keeps it")
    if tier is None and team is not None:
        tier = team.tier
    team_id = team.id if team is not None else decision.team

    agent_id: str | None = None
    if decision.choice == AgentChoice.QUEUE:
        notes.append("left in the queue")
        return Placement(team_id, tier, "", "; ".join(notes))
    if decision.choice == AgentChoice.AGENT:
        agent_id = _named(decision.agent_id, loads, moment, exclude, notes)
    elif decision.choice == AgentChoice.ON_DUTY:
        if team is not None:
            agent_id = duty_agent(team, loads.values(), moment, exclude=exclude)
            notes.append(f"on duty: {agent_id}" if agent_id else "nobody on duty is free")
        else:
            notes.append("no team to take an on-duty agent from")
    if agent_id is None and team is not None:
        members = [c for c in loads.values() if team.id in c.agent.teams]
        agent_id = choose_agent(
            team.strategy, members, decision.required_skills, language, moment, exclude=exclude
        )
        if agent_id:
            notes.append(f"{team.strategy} in team {team.id}: {agent_id}")
        elif team.strategy == Strategy.QUEUE_ONLY:
            notes.append(f"team {team.id} works from its queue")
        else:
            notes.append(f"no free agent in team {team.id} fits; left in the queue")
    elif agent_id is None:
        notes.append("no team; left for triage")
    return Placement(team_id, tier, agent_id or "", "; ".join(notes))


def _named(
    agent_id: str,
    loads: dict[str, AgentLoad],
    now: datetime,
    exclude: Collection[str],
    notes: list[str],
) -> str | None:
    load = loads.get(agent_id)
    if load is None:
        notes.append(f"agent {agent_id} is not in the directory")
        return None
    if agent_id in exclude:
        notes.append(f"{agent_id} already worked this ticket")
        return None
    if is_available(load.agent, now) and load.has_room:
        notes.append(f"assigned to {agent_id}")
        return agent_id
    if absence_at(load.agent, now) is not None:
        backup, note = _covering(load.agent, loads, now, exclude)
        notes.append(f"{agent_id} is out of office; {note}")
        return backup.agent.id if backup else None
    notes.append(f"{agent_id} is {'at capacity' if not load.has_room else 'unavailable'}")
    return None
