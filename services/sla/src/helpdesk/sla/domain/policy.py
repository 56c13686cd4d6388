"""SLA policies: which tickets they cover, their targets in business time, and how a ticket's
policy is chosen.

Targets in a payload are business time: a number of minutes, or a whole number with its unit
("90s", "30m", "4h", "2d"; a day is 24 hours). The policy keeps them as timedeltas of whole
seconds. The auto-close delay is written the same way but counts any time, not business time.
"""

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from helpdesk.core.errors import FieldViolation, InvalidArgument
from helpdesk.sla.domain import payload

PRIORITIES = ("low", "normal", "high", "urgent")
CATEGORIES = ("incident", "question", "service_request", "feedback")
CHANNELS = ("api", "web", "email", "chat", "event", "monitoring")
STATUSES = ("new", "open", "pending", "on_hold", "resolved", "closed")
# Waiting on the requester or on a third party; new and open are work, resolved and closed end.
PAUSABLE_STATUSES = ("pending", "on_hold")

DEFAULT_WARN_SHARE = 0.8
DEFAULT_PAUSE_STATUSES = frozenset(PAUSABLE_STATUSES)
DEFAULT_AUTO_CLOSE_AFTER = timedelta(days=5)
MAX_TARGET_MINUTES = 366 * 24 * 60
MIN_TARGET = timedelta(seconds=1)
MAX_AUTO_CLOSE_DAYS = 365
MAX_AUTO_CLOSE_AFTER = timedelta(days=MAX_AUTO_CLOSE_DAYS)
MAX_ORDER = 1_000_000
MAX_CONDITION_VALUES = 100
MAX_TAG = 50
POLICY_FIELDS = (
    "id",
    "name",
    "order",
    "enabled",
    "conditions",
    "targets",
    "calendar_id",
    "warn_share",
    "pause_statuses",
    "auto_close_after",
    # The earlier spelling, whole days; still read (stored policies carry it).
    "auto_close_after_days",
)
_TEAM = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")
_TAG = re.compile(r"[\w\-.:/]+")
# ASCII digits, and few of them: int() of a long string is slow or refused.
_DURATION = re.compile(r"([0-9]{1,12})([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 60 * 60, "d": 24 * 60 * 60}


class Metric(StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    RESOLUTION = "resolution"
    PERIODIC_UPDATE = "periodic_update"


@dataclass(frozen=True)
class TicketFacts:
    """What a policy's conditions look at; values as intake spells them."""

    priority: str = "normal"
    category: str = "question"
    team: str = ""
    requester_organization: str = ""
    channel: str = "api"
    tags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Conditions:
    """Sets of accepted values; an empty set accepts anything. All must hold."""

    priority: frozenset[str] = frozenset()
    category: frozenset[str] = frozenset()
    team: frozenset[str] = frozenset()
    # Compared without regard to case.
    requester_organization: frozenset[str] = frozenset()
    channel: frozenset[str] = frozenset()
    # Holds when the ticket carries any of these tags.
    tags: frozenset[str] = frozenset()


CONDITION_FIELDS = tuple(Conditions.__dataclass_fields__)


@dataclass(frozen=True)
class Policy:
    """Which tickets a policy covers, the targets it sets them and how its clocks behave."""

    id: str
    name: str
    order: int = 0
    enabled: bool = True
    conditions: Conditions = Conditions()
    # Business time per metric; a metric without a target is measured but never breached.
    targets: Mapping[Metric, timedelta] = field(default_factory=dict)
    # "" counts every hour of every day.
    calendar_id: str = ""
    # Share of a target used up when the team is warned that the ticket is at risk.
    warn_share: float = DEFAULT_WARN_SHARE
    pause_statuses: frozenset[str] = DEFAULT_PAUSE_STATUSES
    # How long (any time, not business time) a ticket pending on the requester waits before
    # closing itself; zero: never. Whole days are days of the calendar's zone.
    auto_close_after: timedelta = DEFAULT_AUTO_CLOSE_AFTER

    def __post_init__(self) -> None:
        # A copy, so that changing the caller's dict cannot change a frozen policy.
        object.__setattr__(self, "targets", dict(self.targets))
        if not 0 < self.warn_share < 1:
            raise ValueError(f"warn_share must be between 0 and 1; got {self.warn_share}")
        if any(target <= timedelta(0) for target in self.targets.values()):
            raise ValueError("targets must be positive")
        # Clocks keep time to the whole second.
        if any(target % MIN_TARGET for target in self.targets.values()):
            raise ValueError("targets must be whole seconds")
        if self.auto_close_after < timedelta(0) or self.auto_close_after % MIN_TARGET:
            raise ValueError("auto_close_after must be zero or positive whole seconds")
        if not self.pause_statuses <= DEFAULT_PAUSE_STATUSES:
            raise ValueError(f"pause_statuses must be among {', '.join(PAUSABLE_STATUSES)}")


def applies(conditions: Conditions, facts: TicketFacts) -> bool:
    """Whether every condition holds for the ticket."""
    organizations = {o.casefold() for o in conditions.requester_organization}
    return (
        (not conditions.priority or facts.priority.lower() in conditions.priority)
        and (not conditions.category or facts.category.lower() in conditions.category)
        and (not conditions.team or facts.team.lower() in conditions.team)
        and (not organizations or facts.requester_organization.strip().casefold() in organizations)
        and (not conditions.channel or facts.channel.lower() in conditions.channel)
        and (not conditions.tags or not conditions.tags.isdisjoint(t.lower() for t in facts.tags))
    )


def select_policy(policies: Iterable[Policy], facts: TicketFacts) -> Policy | None:
    """The first enabled policy, by order (then id), whose conditions all hold; None if none."""
    for policy in sorted(policies, key=lambda p: (p.order, p.id)):
        if policy.enabled and applies(policy.conditions, facts):
            return policy
    return None


def _one_of(accepted: tuple[str, ...]) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in accepted else f"must be one of {', '.join(accepted)}"

    return check


def _team(value: str) -> str | None:
    if _TEAM.fullmatch(value):
        return None
    return "must be lowercase letters, digits, '-', '_' or '.' (at most 100)"


def _tag(value: str) -> str | None:
    if len(value) <= MAX_TAG and _TAG.fullmatch(value):
        return None
    return f"must be 1-{MAX_TAG} letters, digits or - _ . : /"


def _organization(value: str) -> str | None:
    if len(value) <= payload.MAX_NAME and not payload.CONTROL_CHARACTERS.search(value):
        return None
    return f"must be at most {payload.MAX_NAME} characters, without control characters"


def _values(
    value: Any,
    where: str,
    problems: list[FieldViolation],
    check: Callable[[str], str | None],
    *,
    lowercase: bool = True,
) -> frozenset[str]:
    """A set of accepted values, each trimmed (and lowercased) and checked."""
    found: set[str] = set()
    for i, item in enumerate(payload.items(value, where, MAX_CONDITION_VALUES, problems)):
        item_path = payload.path(where, i)
        if not isinstance(item, str) or not item.strip():
            problems.append(FieldViolation(item_path, f"must be a non-empty string; got {item!r}"))
            continue
        trimmed = item.strip().lower() if lowercase else item.strip()
        problem = check(trimmed)
        if problem:
            problems.append(FieldViolation(item_path, f"{problem}; got {item!r}"))
        else:
            found.add(trimmed)
    return frozenset(found)


def _conditions(value: Any, problems: list[FieldViolation]) -> Conditions:
    raw = payload.mapping(value, "conditions", problems)
    payload.unknown_fields(raw, CONDITION_FIELDS, "conditions", problems)

    def read(
        name: str, check: Callable[[str], str | None], *, lowercase: bool = True
    ) -> frozenset[str]:
        return _values(
            raw.get(name, []), f"conditions.{name}", problems, check, lowercase=lowercase
        )

    return Conditions(
        priority=read("priority", _one_of(PRIORITIES)),
        category=read("category", _one_of(CATEGORIES)),
        team=read("team", _team),
        # Organizations are names people type; matching ignores case, storage keeps it.
        requester_organization=read("requester_organization", _organization, lowercase=False),
        channel=read("channel", _one_of(CHANNELS)),
        tags=read("tags", _tag),
    )


def _seconds(value: Any, where: str, problems: list[FieldViolation]) -> int | None:
    """A number of minutes, or a whole number with its unit ("90s", "30m", "4h", "2d"), in
    seconds; None (reported) when it is neither."""
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    # Counted in int seconds: a huge amount would overflow a timedelta.
    if match:
        return int(match[1]) * _UNIT_SECONDS[match[2]]
    # bool is an int in Python, but `true` is not a number in a payload.
    if isinstance(value, int) and not isinstance(value, bool):
        return value * 60
    problems.append(
        FieldViolation(
            where,
            'must be whole minutes, or a whole number with its unit such as "90s", "30m", '
            f'"4h" or "2d"; got {value!r}',
        )
    )
    return None


def _target(value: Any, where: str, problems: list[FieldViolation]) -> timedelta | None:
    seconds = _seconds(value, where, problems)
    if seconds is None:
        return None
    if not 1 <= seconds <= MAX_TARGET_MINUTES * 60:
        problems.append(FieldViolation(where, f"must be from 1 second to 366 days; got {value!r}"))
        return None
    return timedelta(seconds=seconds)


def _targets(value: Any, problems: list[FieldViolation]) -> dict[Metric, timedelta]:
    raw = payload.mapping(value, "targets", problems)
    payload.unknown_fields(raw, tuple(Metric), "targets", problems)
    targets: dict[Metric, timedelta] = {}
    for metric in Metric:
        given = raw.get(metric)
        if given is None:
            continue  # measured, never breached
        target = _target(given, f"targets.{metric}", problems)
        if target is not None:
            targets[metric] = target
    return targets


def _dump_target(target: timedelta) -> int | str:
    """Whole minutes as a number, as most payloads give them; anything else in seconds."""
    minutes, rest = divmod(target, timedelta(minutes=1))
    if not rest:
        return minutes
    return f"{target // MIN_TARGET}s"


def _auto_close_after(raw: Mapping[str, Any], problems: list[FieldViolation]) -> timedelta:
    """`auto_close_after` as a duration (0: never), or the earlier `auto_close_after_days`."""
    given, days = raw.get("auto_close_after"), raw.get("auto_close_after_days")
    if given is not None and days is not None:
        problems.append(
            FieldViolation("auto_close_after_days", "give auto_close_after or this, not both")
        )
        return DEFAULT_AUTO_CLOSE_AFTER
    if days is not None:
        whole = payload.integer(
            days, "auto_close_after_days", problems, low=0, high=MAX_AUTO_CLOSE_DAYS
        )
        return DEFAULT_AUTO_CLOSE_AFTER if whole is None else timedelta(days=whole)
    if given is None:
        return DEFAULT_AUTO_CLOSE_AFTER
    seconds = _seconds(given, "auto_close_after", problems)
    if seconds is None:
        return DEFAULT_AUTO_CLOSE_AFTER
    if not 0 <= seconds <= MAX_AUTO_CLOSE_AFTER.total_seconds():
        problems.append(
            FieldViolation(
                "auto_close_after",
                f"must be from 0 (never) to {MAX_AUTO_CLOSE_DAYS} days; got {given!r}",
            )
        )
        return DEFAULT_AUTO_CLOSE_AFTER
    return timedelta(seconds=seconds)


def _dump_auto_close(after: timedelta) -> int | str:
    """In the largest unit that divides it: "5d", "36h", "90m", "3s"; 0 for never."""
    if not after:
        return 0
    for unit in ("d", "h", "m", "s"):
        amount, rest = divmod(after, timedelta(seconds=_UNIT_SECONDS[unit]))
        if not rest:
            return f"{amount}{unit}"
    raise ValueError(f"auto_close_after must be whole seconds; got {after}")


def _warn_share(value: Any, problems: list[FieldViolation]) -> float:
    if value is None:
        return DEFAULT_WARN_SHARE
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        problems.append(
            FieldViolation(
                "warn_share", f"must be a number between 0 and 1 (exclusive); got {value!r}"
            )
        )
        return DEFAULT_WARN_SHARE
    return float(value)


def _pause_statuses(value: Any, problems: list[FieldViolation]) -> frozenset[str]:
    if value is None:
        return DEFAULT_PAUSE_STATUSES
    return _values(value, "pause_statuses", problems, _one_of(PAUSABLE_STATUSES))


def parse_policy(raw: Mapping[str, Any]) -> Policy:
    """An admin's policy payload, checked; raises InvalidArgument naming each bad field."""
    problems: list[FieldViolation] = []
    payload.unknown_fields(raw, POLICY_FIELDS, "", problems)
    policy_id = payload.identifier(raw.get("id"), "id", problems, required=True)
    name = payload.text(raw.get("name"), "name", problems)
    order = payload.integer(
        raw.get("order"), "order", problems, low=-MAX_ORDER, high=MAX_ORDER, default=0
    )
    enabled = payload.boolean(raw.get("enabled"), "enabled", problems, default=True)
    conditions = _conditions(raw.get("conditions", {}), problems)
    targets = _targets(raw.get("targets", {}), problems)
    calendar_id = payload.identifier(
        raw.get("calendar_id"), "calendar_id", problems, required=False
    )
    warn_share = _warn_share(raw.get("warn_share"), problems)
    pause_statuses = _pause_statuses(raw.get("pause_statuses"), problems)
    auto_close_after = _auto_close_after(raw, problems)
    if problems:
        raise InvalidArgument(problems)
    return Policy(
        id=policy_id,
        name=name,
        order=order or 0,
        enabled=enabled,
        conditions=conditions,
        targets=targets,
        calendar_id=calendar_id,
        warn_share=warn_share,
        pause_statuses=pause_statuses,
        auto_close_after=auto_close_after,
    )


def dump_policy(policy: Policy) -> dict[str, Any]:
    """The policy as a payload that `parse_policy` reads back to an equal policy."""
    conditions = policy.conditions
    return {
        "id": policy.id,
        "name": policy.name,
        "order": policy.order,
        "enabled": policy.enabled,
        "conditions": {
            name: sorted(getattr(conditions, name))
            for name in CONDITION_FIELDS
            if getattr(conditions, name)
        },
        "targets": {
            str(metric): _dump_target(policy.targets[metric])
            for metric in Metric
            if metric in policy.targets
        },
        "calendar_id": policy.calendar_id,
        "warn_share": policy.warn_share,
        "pause_statuses": sorted(policy.pause_statuses),
        "auto_close_after": _dump_auto_close(policy.auto_close_after),
    }
