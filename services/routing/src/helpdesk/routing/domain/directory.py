"""Teams and agents: who works where, at which tier, with what skills, languages, capacity
and hours; when an agent is available and who covers for them while away."""

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from helpdesk.core.errors import FieldViolation, InvalidArgument
from helpdesk.routing.domain.hours import WeeklyHours, dump_hours, parse_hours
from helpdesk.routing.domain.raw import (
    Problems,
    at,
    check_instant,
    check_keys,
    check_mapping,
    check_token,
    format_instant,
    read_enum,
    read_int,
    read_list,
    read_text,
    read_time_zone,
    read_tokens,
    require_utc,
)


class Tier(StrEnum):
    L1 = "L1"
    L2 = "L2"
    L3 = "L3"


class Strategy(StrEnum):
    LEAST_LOADED = "least_loaded"
    ROUND_ROBIN = "round_robin"
    # Agents take tickets from the team's queue themselves.
    QUEUE_ONLY = "queue_only"


class Availability(StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


# Team ids are what the ticket's `team` field holds, so they follow intake's rule for it.
TEAM_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")
TEAM_ID_RULE = "must be lowercase letters, digits, '-', '_' or '.' (at most 100)"
# Agent ids may come from an identity provider, so their case is kept.
AGENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")
AGENT_ID_RULE = "must be letters, digits, '-', '_', '.', ':' or '@' (at most 128)"
SKILL = re.compile(r"[\w][\w.:/+#-]{0,49}")
SKILL_RULE = "must be 1-50 letters, digits or - _ . : / + #"
LANGUAGE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})*")
LANGUAGE_RULE = "must be a language tag like 'en' or 'ru'"
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

MAX_NAME = 200
MAX_DEPARTMENT = 100
MAX_EMAIL = 254
MAX_TEAMS_PER_AGENT = 50
MAX_SKILLS = 100
MAX_LANGUAGES = 20
MAX_CAPACITY = 1_000
MAX_ABSENCES = 50
MAX_ROTA = 50

TEAM_FIELDS = ("id", "name", "department", "tier", "strategy", "duty_rota")
AGENT_FIELDS = (
    "id",
    "name",
    "email",
    "teams",
    "skills",
    "languages",
    "capacity",
    "availability",
    "time_zone",
    "working_hours",
    "out_of_office",
)
ABSENCE_FIELDS = ("start", "end", "backup_agent_id")


@dataclass(frozen=True)
class Team:
    id: str
    name: str
    # Free text such as "it", "hr", "finance"; escalation stays within a department.
    department: str
    tier: Tier = Tier.L1
    strategy: Strategy = Strategy.LEAST_LOADED
    # Agents on call, in order: the first one free is the team's on-duty agent.
    duty_rota: tuple[str, ...] = ()


@dataclass(frozen=True)
class Absence:
    """Out of office from `start` (inclusive) to `end` (exclusive); "" backup: the queue."""

    start: datetime
    end: datetime
    backup_agent_id: str = ""

    def covers(self, now: datetime) -> bool:
        return self.start <= now < self.end


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    email: str
    teams: tuple[str, ...] = ()
    skills: frozenset[str] = frozenset()
    # Empty: the agent takes tickets in any language.
    languages: frozenset[str] = frozenset()
    # Most open tickets at once; 0 takes none automatically.
    capacity: int = 0
    availability: Availability = Availability.OFFLINE
    time_zone: str = "UTC"
    # None: the agent works whenever online.
    working_hours: WeeklyHours | None = None
    out_of_office: tuple[Absence, ...] = ()


def parse_team(raw: Mapping[str, Any]) -> Team:
    """A team from admin input; raises InvalidArgument naming each bad field."""
    problems: Problems = []
    checked = check_mapping(raw, "", problems)
    if checked is None:
        raise InvalidArgument(problems)
    check_keys(checked, TEAM_FIELDS, "", problems)
    team_id = _team_id(checked.get("id"), "id", problems, required=True)
    name = read_text(checked, "name", "", problems, limit=MAX_NAME, required=True)
    department = " ".join(
        read_text(checked, "department", "", problems, limit=MAX_DEPARTMENT, required=True)
        .lower()
        .split()
    )
    tier = read_enum(Tier, checked, "tier", "", problems, Tier.L1)
    strategy = read_enum(Strategy, checked, "strategy", "", problems, Strategy.LEAST_LOADED)
    rota: list[str] = []
    for i, item in enumerate(read_list(checked, "duty_rota", "", problems, limit=MAX_ROTA)):
        agent_id = agent_id_of(item, at("duty_rota", i), problems)
        if agent_id in rota:
            problems.append(
                FieldViolation(at("duty_rota", i), f"{agent_id} is already on the rota")
            )
        elif agent_id:
            rota.append(agent_id)
    if problems:
        raise InvalidArgument(problems)
    return Team(team_id, name, department, tier, strategy, tuple(rota))


def parse_agent(raw: Mapping[str, Any]) -> Agent:
    """An agent from admin input; raises InvalidArgument naming each bad field."""
    problems: Problems = []
    checked = check_mapping(raw, "", problems)
    if checked is None:
        raise InvalidArgument(problems)
    check_keys(checked, AGENT_FIELDS, "", problems)
    agent_id = agent_id_of(checked.get("id"), "id", problems, required=True)
    name = read_text(checked, "name", "", problems, limit=MAX_NAME, required=True)
    email = read_text(checked, "email", "", problems, limit=MAX_EMAIL, required=True).lower()
    if email and not EMAIL.fullmatch(email):
        problems.append(FieldViolation("email", f"is not an e-mail address: {email!r}"))
    teams: list[str] = []
    for i, item in enumerate(read_list(checked, "teams", "", problems, limit=MAX_TEAMS_PER_AGENT)):
        team_id = _team_id(item, at("teams", i), problems, required=True)
        if team_id and team_id not in teams:
            teams.append(team_id)
    skills = read_tokens(
        checked, "skills", "", problems, pattern=SKILL, rule=SKILL_RULE, limit=MAX_SKILLS
    )
    languages = read_tokens(
        checked,
        "languages",
        "",
        problems,
        pattern=LANGUAGE,
        rule=LANGUAGE_RULE,
        limit=MAX_LANGUAGES,
    )
    capacity = read_int(checked, "capacity", "", problems, minimum=0, maximum=MAX_CAPACITY)
    availability = read_enum(
        Availability, checked, "availability", "", problems, Availability.OFFLINE
    )
    time_zone = read_time_zone(checked, "time_zone", "", problems, default="UTC")
    hours = None
    if checked.get("working_hours") is not None:
        hours = parse_hours(checked["working_hours"], "working_hours", problems)
    absences = _absences(checked, agent_id, problems)
    if problems:
        raise InvalidArgument(problems)
    return Agent(
        id=agent_id,
        name=name,
        email=email,
        teams=tuple(teams),
        skills=frozenset(skills),
        languages=frozenset(languages),
        capacity=capacity,
        availability=availability,
        time_zone=time_zone,
        working_hours=hours,
        out_of_office=absences,
    )


def _absences(raw: Mapping[str, Any], agent_id: str, problems: Problems) -> tuple[Absence, ...]:
    found: list[tuple[int, Absence]] = []
    for i, item in enumerate(read_list(raw, "out_of_office", "", problems, limit=MAX_ABSENCES)):
        path = at("out_of_office", i)
        period = check_mapping(item, path, problems)
        if period is None:
            continue
        check_keys(period, ABSENCE_FIELDS, path, problems)
        start = check_instant(period.get("start"), at(path, "start"), problems)
        end = check_instant(period.get("end"), at(path, "end"), problems)
        backup = ""
        if period.get("backup_agent_id") not in (None, ""):
            backup = agent_id_of(period["backup_agent_id"], at(path, "backup_agent_id"), problems)
            if backup and backup == agent_id:
                problems.append(
                    FieldViolation(
                        at(path, "backup_agent_id"), "an agent cannot be their own backup"
                    )
                )
        if start is None or end is None:
            continue
        if end <= start:
            problems.append(FieldViolation(at(path, "end"), "must be after start"))
            continue
        found.append((i, Absence(start, end, backup)))
    found.sort(key=lambda pair: pair[1].start)
    # Overlaps would make the backup at a given moment ambiguous.
    latest: Absence | None = None
    for i, absence in found:
        if latest is not None and absence.start < latest.end:
            problems.append(
                FieldViolation(
                    at(at("out_of_office", i), "start"),
                    f"overlaps the period ending {format_instant(latest.end)}",
                )
            )
        if latest is None or absence.end > latest.end:
            latest = absence
    return tuple(absence for _, absence in found)


def _team_id(value: Any, name: str, problems: Problems, *, required: bool = False) -> str:
    if value is None or value == "":
        if required:
            problems.append(FieldViolation(name, "is required"))
        return ""
    return check_token(value, name, problems, pattern=TEAM_ID, rule=TEAM_ID_RULE)


def agent_id_of(value: Any, name: str, problems: Problems, *, required: bool = True) -> str:
    """An agent id, or "" with a violation."""
    if value is None or value == "":
        if required:
            problems.append(FieldViolation(name, "is required"))
        return ""
    return check_token(value, name, problems, pattern=AGENT_ID, rule=AGENT_ID_RULE, lower=False)


def team_id_of(value: Any, name: str, problems: Problems) -> str:
    """A team id as the ticket holds it, or "" with a violation."""
    return _team_id(value, name, problems, required=True)


def check_team_references(team: Team, agent_ids: Collection[str]) -> None:
    """Refuses a rota naming agents the directory does not hold."""
    problems = [
        FieldViolation(at("duty_rota", i), f"no agent {agent_id!r} in the directory")
        for i, agent_id in enumerate(team.duty_rota)
        if agent_id not in agent_ids
    ]
    if problems:
        raise InvalidArgument(problems)


def check_agent_references(
    agent: Agent, team_ids: Collection[str], agent_ids: Collection[str]
) -> None:
    """Refuses an agent naming teams or backups the directory does not hold."""
    problems = [
        FieldViolation(at("teams", i), f"no team {team_id!r} in the directory")
        for i, team_id in enumerate(agent.teams)
        if team_id not in team_ids
    ]
    problems += [
        FieldViolation(
            at(at("out_of_office", i), "backup_agent_id"),
            f"no agent {absence.backup_agent_id!r} in the directory",
        )
        for i, absence in enumerate(agent.out_of_office)
        if absence.backup_agent_id and absence.backup_agent_id not in agent_ids
    ]
    if problems:
        raise InvalidArgument(problems)


def dump_team(team: Team) -> dict[str, Any]:
    """The raw form `parse_team` reads back to the same team."""
    return {
        "id": team.id,
        "name": team.name,
        "department": team.department,
        "tier": team.tier.value,
        "strategy": team.strategy.value,
        "duty_rota": list(team.duty_rota),
    }


def dump_agent(agent: Agent) -> dict[str, Any]:
    """The raw form `parse_agent` reads back to the same agent."""
    raw: dict[str, Any] = {
        "id": agent.id,
        "name": agent.name,
        "email": agent.email,
        "teams": list(agent.teams),
        "skills": sorted(agent.skills),
        "languages": sorted(agent.languages),
        "capacity": agent.capacity,
        "availability": agent.availability.value,
        "time_zone": agent.time_zone,
        "out_of_office": [
            {
                "start": format_instant(a.start),
                "end": format_instant(a.end),
                "backup_agent_id": a.backup_agent_id,
            }
            for a in agent.out_of_office
        ],
    }
    if agent.working_hours is not None:
        raw["working_hours"] = dump_hours(agent.working_hours)
    return raw


def absence_at(agent: Agent, now: datetime) -> Absence | None:
    """The out-of-office period covering `now`, if any."""
    moment = require_utc(now)
    return next((a for a in agent.out_of_office if a.covers(moment)), None)


def is_working(agent: Agent, now: datetime) -> bool:
    """Within the agent's working hours (always, when they have none)."""
    hours = agent.working_hours
    return hours is None or hours.covers(now, agent.time_zone)


def is_available(agent: Agent, now: datetime) -> bool:
    """Online, within working hours if any, and not out of office."""
    return (
        agent.availability == Availability.ONLINE
        and is_working(agent, now)
        and absence_at(agent, now) is None
    )


def backup_for(agent: Agent, now: datetime) -> str | None:
    """Who covers for the agent at `now`: the backup of their current absence, if named."""
    absence = absence_at(agent, now)
    return (absence.backup_agent_id or None) if absence else None


def speaks(agent: Agent, language: str) -> bool:
    """Whether the agent takes a ticket in `language`; "en" and "en-gb" count as one."""
    if not language or not agent.languages:
        return True
    wanted = _primary(language)
    return any(_primary(spoken) == wanted for spoken in agent.languages)


def _primary(language: str) -> str:
    return language.strip().lower().split("-", 1)[0]
