"""Service desk figures over a period, as pure functions over the facts of tickets."""

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from helpdesk.core.errors import FieldViolation, InvalidArgument
from helpdesk.intake.domain import OPEN_STATUSES, Status

GROUPINGS = ("", "channel", "team", "agent")
MAX_PERIOD = timedelta(days=366)
GOOD_SCORE = 4


@dataclass(frozen=True)
class TicketFacts:
    """What a report needs of one ticket."""

    created_at: datetime
    status: Status
    channel: str
    team: str
    assignee_id: str
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    reopen_count: int = 0
    rating_score: int = 0
    rated_at: datetime | None = None


@dataclass(frozen=True)
class Figures:
    group: str
    created: int
    resolved: int
    first_responses: int
    first_response_seconds_mean: float
    first_response_seconds_p50: float
    first_response_seconds_p90: float
    resolution_seconds_mean: float
    resolution_seconds_p50: float
    backlog: int
    backlog_share: float
    reopen_rate: float
    ratings: int
    csat: float


def check_period(start: datetime | None, end: datetime | None, group_by: str) -> str:
    problems: list[FieldViolation] = []
    if start is None:
        problems.append(FieldViolation("period_start", "is required"))
    if end is None:
        problems.append(FieldViolation("period_end", "is required"))
    if start and end and end <= start:
        problems.append(FieldViolation("period_end", "must be after period_start"))
    elif start and end and end - start > MAX_PERIOD:
        problems.append(FieldViolation("period_end", "the period is at most 366 days"))
    grouping = group_by.strip().lower()
    if grouping not in GROUPINGS:
        problems.append(FieldViolation("group_by", "must be channel, team, agent or empty"))
    if problems:
        raise InvalidArgument(problems)
    return grouping


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def figures(group: str, facts: Iterable[TicketFacts], start: datetime, end: datetime) -> Figures:
    """The figures of one group of tickets over [start, end)."""
    all_facts = list(facts)
    created = [f for f in all_facts if start <= f.created_at < end]
    resolved = [f for f in all_facts if f.resolved_at and start <= f.resolved_at < end]
    rated = [f for f in all_facts if f.rated_at and start <= f.rated_at < end]
    first = [
        (f.first_response_at - f.created_at).total_seconds() for f in created if f.first_response_at
    ]
    resolution = [(f.resolved_at - f.created_at).total_seconds() for f in resolved if f.resolved_at]
    backlog = sum(1 for f in created if f.status in OPEN_STATUSES)
    return Figures(
        group=group,
        created=len(created),
        resolved=len(resolved),
        first_responses=len(first),
        first_response_seconds_mean=_mean(first),
        first_response_seconds_p50=percentile(first, 0.5),
        first_response_seconds_p90=percentile(first, 0.9),
        resolution_seconds_mean=_mean(resolution),
        resolution_seconds_p50=percentile(resolution, 0.5),
        backlog=backlog,
        backlog_share=_share(backlog, len(created)),
        reopen_rate=_share(sum(1 for f in resolved if f.reopen_count > 0), len(resolved)),
        ratings=len(rated),
        csat=_share(sum(1 for f in rated if f.rating_score >= GOOD_SCORE), len(rated)),
    )


def _group_key(grouping: str) -> Callable[[TicketFacts], str]:
    return {
        "channel": lambda f: f.channel,
        "team": lambda f: f.team,
        "agent": lambda f: f.assignee_id,
    }[grouping]


def report(
    facts: list[TicketFacts], start: datetime, end: datetime, grouping: str
) -> tuple[Figures, list[Figures]]:
    """The total and, when grouped, one line per group value (sorted; "" is unassigned)."""
    total = figures("", facts, start, end)
    if not grouping:
        return total, []
    key = _group_key(grouping)
    groups: dict[str, list[TicketFacts]] = {}
    for fact in facts:
        groups.setdefault(key(fact), []).append(fact)
    return total, [figures(name, groups[name], start, end) for name in sorted(groups)]
