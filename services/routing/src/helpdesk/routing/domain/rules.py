"""Routing rules: ordered conditions on a ticket's facts and the actions they decide.

Rules run by `order`, then id; a rule matches when all its conditions hold (a rule with no
condition matches every ticket, which makes it a catch-all at the end of the list).
Conditions read the ticket as it arrived, never as an earlier rule changed it, so a rule
means the same wherever it stands. The first matching rule to set a value (team, tier,
priority, agent choice) decides it; tags and required skills add up. A matching rule with
`stop` (the default) ends the run: most rules route, and one routing decision should not
pick up a later rule's actions by accident; rules that only tag set `stop` to false.

When no rule matches, the decision keeps the ticket's team, tier and priority, adds nothing,
and leaves the agent to the team's assignment strategy.
"""

import re
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from helpdesk.core.errors import FieldViolation, InvalidArgument
from helpdesk.routing.domain.directory import (
    LANGUAGE,
    LANGUAGE_RULE,
    SKILL,
    SKILL_RULE,
    Tier,
    agent_id_of,
    team_id_of,
)
from helpdesk.routing.domain.hours import WeeklyHours, dump_hours, parse_hours
from helpdesk.routing.domain.raw import (
    Problems,
    at,
    check_choice,
    check_enum,
    check_keys,
    check_mapping,
    check_text,
    check_token,
    read_bool,
    read_int,
    read_list,
    read_text,
    read_time_zone,
    read_tokens,
    require_utc,
)

# The ticket's vocabulary, as plain strings: routing does not share intake's types.
CATEGORIES = ("incident", "question", "service_request", "feedback")
PRIORITIES = ("low", "normal", "high", "urgent")
CHANNELS = ("api", "web", "email", "chat", "event", "monitoring")

RULE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
TAG = re.compile(r"[\w\-.:/]{1,50}")
TAG_RULE = "must be 1-50 letters, digits or - _ . : /"
CUSTOM_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
DOMAIN = re.compile(r"[\w-]+(\.[\w-]+)+")
MAX_NAME = 200
MAX_CONDITIONS = 50
MAX_ACTIONS = 20
MAX_VALUES = 100
MAX_WORD = 100
MAX_PATTERN = 500
MAX_VALUE = 1_000
MAX_ORDER = 1_000_000
MAX_REOPENS = 1_000

RULE_FIELDS = ("id", "name", "enabled", "order", "stop", "conditions", "actions")


@dataclass(frozen=True)
class TicketFacts:
    """What rules may look at: a ticket's fields as plain strings."""

    ticket_id: str
    number: str = ""
    category: str = ""
    priority: str = ""
    tags: tuple[str, ...] = ()
    channel: str = ""
    requester_email: str = ""
    requester_organization: str = ""
    language: str = ""
    subject: str = ""
    description: str = ""
    custom_fields: Mapping[str, str] = field(default_factory=dict)
    team: str = ""
    tier: str = ""
    reopen_count: int = 0
    assignee_id: str = ""


class Where(StrEnum):
    SUBJECT = "subject"
    DESCRIPTION = "description"
    # Subject and description together.
    TEXT = "text"


def _fold(text: str) -> str:
    # Russian writers use е for ё freely; matching must not care which one they typed.
    return text.casefold().replace("ё", "е")


def _text(facts: TicketFacts, where: Where) -> str:
    if where == Where.SUBJECT:
        return facts.subject
    if where == Where.DESCRIPTION:
        return facts.description
    return f"{facts.subject}\n{facts.description}"


# --- conditions ---


@dataclass(frozen=True)
class Condition(ABC):
    """One test on a ticket; `negate` turns it around."""

    negate: bool = field(default=False, kw_only=True)

    def holds(self, facts: TicketFacts, now: datetime) -> bool:
        return self.test(facts, now) != self.negate

    @abstractmethod
    def test(self, facts: TicketFacts, now: datetime) -> bool:
        """Whether the condition holds, before `negate`."""

    @abstractmethod
    def dump(self) -> dict[str, Any]:
        """The raw form `parse_rule` reads back."""

    def _raw(self, kind: str, **values: Any) -> dict[str, Any]:
        raw: dict[str, Any] = {"type": kind, **values}
        if self.negate:
            raw["negate"] = True
        return raw


# Condition types comparing one ticket field with a list of values, and the fact each reads.
FIELD_CONDITIONS = {
    "category": "category",
    "priority": "priority",
    "channel": "channel",
    "organization": "requester_organization",
    "team": "team",
    "tier": "tier",
}


@dataclass(frozen=True)
class FieldIn(Condition):
    """The field (category, priority, channel, organization, team, tier) is one of values."""

    field: str
    values: tuple[str, ...]

    def test(self, facts: TicketFacts, now: datetime) -> bool:
        value = " ".join(_fold(getattr(facts, FIELD_CONDITIONS[self.field])).split())
        return value in {" ".join(_fold(v).split()) for v in self.values}

    def dump(self) -> dict[str, Any]:
        return self._raw(self.field, **{"in": list(self.values)})


@dataclass(frozen=True)
class LanguageIn(Condition):
    """The ticket's language is one of these; "en" and "en-gb" count as one."""

    languages: tuple[str, ...]

    def test(self, facts: TicketFacts, now: datetime) -> bool:
        primary = facts.language.strip().lower().split("-", 1)[0]
        return bool(primary) and primary in {v.split("-", 1)[0] for v in self.languages}

    def dump(self) -> dict[str, Any]:
        return self._raw("language", **{"in": list(self.languages)})


@dataclass(frozen=True)
class EmailDomainIn(Condition):
    """The requester writes from one of these domains or a subdomain of one."""

    domains: tuple[str, ...]

    def test(self, facts: TicketFacts, now: datetime) -> bool:
        domain = facts.requester_email.rpartition("@")[2].strip().lower()
        return bool(domain) and any(domain == d or domain.endswith(f".{d}") for d in self.domains)

    def dump(self) -> dict[str, Any]:
        return self._raw("email_domain", **{"in": list(self.domains)})


@dataclass(frozen=True)
class TagsMatch(Condition):
    """The ticket has at least one of `any_of` (when given) and all of `all_of`."""

    any_of: tuple[str, ...] = ()
    all_of: tuple[str, ...] = ()

    def test(self, facts: TicketFacts, now: datetime) -> bool:
        tags = {_fold(t) for t in facts.tags}
        some = not self.any_of or any(_fold(t) in tags for t in self.any_of)
        return some and all(_fold(t) in tags for t in self.all_of)

    def dump(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if self.any_of:
            values["any_of"] = list(self.any_of)
        if self.all_of:
            values["all_of"] = list(self.all_of)
        return self._raw("tags", **values)


def word_pattern(words: Iterable[str]) -> re.Pattern[str]:
    """Whole words or phrases, in any case; a trailing * matches any ending (почт* for почту)."""
    parts = []
    for word in words:
        stem = _fold(word.strip().rstrip("*"))
        body = r"\s+".join(re.escape(piece) for piece in stem.split())
        ending = "" if word.strip().endswith("*") else r"(?!\w)"
        parts.append(rf"(?<!\w){body}{ending}")
    return re.compile("|".join(parts))


@dataclass(frozen=True)
class WordsMatch(Condition):
    """Any of the words or phrases appears in the subject, description or both."""

    words: tuple[str, ...]
    where: Where = Where.TEXT
    _compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", word_pattern(self.words))

    def test(self, facts: TicketFacts, now: datetime) -> bool:
        return self._compiled.search(_fold(_text(facts, self.where))) is not None

    def dump(self) -> dict[str, Any]:
        return self._raw("words", words=list(self.words), where=self.where.value)


@dataclass(frozen=True)
class PatternMatch(Condition):
    """A regular expression (ignoring case) finds a match in the subject, description or both."""

    pattern: str
    where: Where = Where.TEXT
    _compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", re.compile(self.pattern, re.IGNORECASE))

    def test(self, facts: TicketFacts, now: datetime) -> bool:
        return self._compiled.search(_text(facts, self.where)) is not None

    def dump(self) -> dict[str, Any]:
        return self._raw("pattern", pattern=self.pattern, where=self.where.value)


@dataclass(frozen=True)
class CustomFieldEquals(Condition):
    """The custom field holds this value (ignoring case and surrounding space)."""

    name: str
    value: str

    def test(self, facts: TicketFacts, now: datetime) -> bool:
        return _fold(facts.custom_fields.get(self.name, "").strip()) == _fold(self.value)

    def dump(self) -> dict[str, Any]:
        return self._raw("custom_field", name=self.name, equals=self.value)


@dataclass(frozen=True)
class BusinessHours(Condition):
    """The rule runs inside (or, with `inside` false, outside) weekly hours in a time zone."""

    hours: WeeklyHours
    time_zone: str
    inside: bool = True

    def test(self, facts: TicketFacts, now: datetime) -> bool:
        return self.hours.covers(now, self.time_zone) == self.inside

    def dump(self) -> dict[str, Any]:
        return self._raw(
            "business_hours",
            hours=dump_hours(self.hours),
            time_zone=self.time_zone,
            inside=self.inside,
        )


@dataclass(frozen=True)
class ReopenCount(Condition):
    """The ticket was reopened at least this many times."""

    at_least: int

    def test(self, facts: TicketFacts, now: datetime) -> bool:
        return facts.reopen_count >= self.at_least

    def dump(self) -> dict[str, Any]:
        return self._raw("reopen_count", at_least=self.at_least)


# Each condition type and the keys it takes besides "type" and "negate".
CONDITION_KEYS: dict[str, tuple[str, ...]] = {
    **{name: ("in",) for name in FIELD_CONDITIONS},
    "language": ("in",),
    "email_domain": ("in",),
    "tags": ("any_of", "all_of"),
    "words": ("words", "where"),
    "pattern": ("pattern", "where"),
    "custom_field": ("name", "equals"),
    "business_hours": ("hours", "time_zone", "inside"),
    "reopen_count": ("at_least",),
}


# --- actions ---


@dataclass(frozen=True)
class SetTeam:
    team: str


@dataclass(frozen=True)
class SetTier:
    tier: Tier


@dataclass(frozen=True)
class SetPriority:
    priority: str


@dataclass(frozen=True)
class AddTags:
    tags: tuple[str, ...]


@dataclass(frozen=True)
class RequireSkills:
    skills: tuple[str, ...]


@dataclass(frozen=True)
class AssignAgent:
    agent_id: str


@dataclass(frozen=True)
class AssignOnDuty:
    """The team's on-duty agent takes the ticket; a team named here also becomes its team."""

    team: str = ""


@dataclass(frozen=True)
class LeaveInQueue:
    """No automatic assignment: agents of the team pick the ticket themselves."""


Action = (
    SetTeam
    | SetTier
    | SetPriority
    | AddTags
    | RequireSkills
    | AssignAgent
    | AssignOnDuty
    | LeaveInQueue
)

ACTION_KEYS: dict[str, tuple[str, ...]] = {
    "set_team": ("team",),
    "set_tier": ("tier",),
    "set_priority": ("priority",),
    "add_tags": ("tags",),
    "require_skills": ("skills",),
    "assign_agent": ("agent_id",),
    "assign_on_duty": ("team",),
    "leave_in_queue": (),
}
_AGENT_CHOICES = ("assign_agent", "assign_on_duty", "leave_in_queue")


def dump_action(action: Action) -> dict[str, Any]:
    """The raw form of one action."""
    match action:
        case SetTeam(team=team):
            return {"type": "set_team", "team": team}
        case SetTier(tier=tier):
            return {"type": "set_tier", "tier": tier.value}
        case SetPriority(priority=priority):
            return {"type": "set_priority", "priority": priority}
        case AddTags(tags=tags):
            return {"type": "add_tags", "tags": list(tags)}
        case RequireSkills(skills=skills):
            return {"type": "require_skills", "skills": list(skills)}
        case AssignAgent(agent_id=agent_id):
            return {"type": "assign_agent", "agent_id": agent_id}
        case AssignOnDuty(team=team):
            return {"type": "assign_on_duty", **({"team": team} if team else {})}
        case LeaveInQueue():
            return {"type": "leave_in_queue"}


# --- rules ---


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    conditions: tuple[Condition, ...]
    actions: tuple[Action, ...]
    enabled: bool = True
    order: int = 0
    stop: bool = True

    def matches(self, facts: TicketFacts, now: datetime) -> bool:
        """All conditions hold (a rule without conditions matches every ticket)."""
        return all(c.holds(facts, now) for c in self.conditions)


def parse_rule(raw: Mapping[str, Any]) -> Rule:
    """A rule from admin input, checked at save time; raises InvalidArgument naming each
    bad field by its path, e.g. `conditions[2].pattern`."""
    problems: Problems = []
    checked = check_mapping(raw, "", problems)
    if checked is None:
        raise InvalidArgument(problems)
    check_keys(checked, RULE_FIELDS, "", problems)
    rule_id = ""
    if checked.get("id") in (None, ""):
        problems.append(FieldViolation("id", "is required"))
    else:
        rule_id = check_token(
            checked["id"],
            "id",
            problems,
            pattern=RULE_ID,
            rule="must be letters, digits, '-', '_', '.' or ':' (at most 100)",
            lower=False,
        )
    name = read_text(checked, "name", "", problems, limit=MAX_NAME, required=True)
    enabled = read_bool(checked, "enabled", "", problems, default=True)
    order = read_int(
        checked, "order", "", problems, minimum=-MAX_ORDER, maximum=MAX_ORDER, default=0
    )
    stop = read_bool(checked, "stop", "", problems, default=True)
    conditions = [
        _condition(item, at("conditions", i), problems)
        for i, item in enumerate(
            read_list(checked, "conditions", "", problems, limit=MAX_CONDITIONS)
        )
    ]
    # A rule without actions is a mistake: it would only clutter the explanation.
    raw_actions = read_list(checked, "actions", "", problems, limit=MAX_ACTIONS, required=True)
    actions = [_action(item, at("actions", i), problems) for i, item in enumerate(raw_actions)]
    _check_conflicts(actions, problems)
    if problems:
        raise InvalidArgument(problems)
    return Rule(
        id=rule_id,
        name=name,
        conditions=tuple(c for c in conditions if c is not None),
        actions=tuple(a for a in actions if a is not None),
        enabled=enabled,
        order=order,
        stop=stop,
    )


def dump_rule(rule: Rule) -> dict[str, Any]:
    """The raw form `parse_rule` reads back to the same rule."""
    return {
        "id": rule.id,
        "name": rule.name,
        "enabled": rule.enabled,
        "order": rule.order,
        "stop": rule.stop,
        "conditions": [c.dump() for c in rule.conditions],
        "actions": [dump_action(a) for a in rule.actions],
    }


def _values(
    raw: Mapping[str, Any], key: str, path: str, problems: Problems
) -> list[tuple[str, Any]]:
    """The items of a required list with their field paths."""
    items = read_list(raw, key, path, problems, limit=MAX_VALUES, required=True)
    return [(at(at(path, key), i), item) for i, item in enumerate(items)]


def _distinct(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _field_values(kind: str, raw: Mapping[str, Any], path: str, problems: Problems) -> list[str]:
    values: list[str] = []
    for name, item in _values(raw, "in", path, problems):
        if kind == "category":
            values.append(check_choice(item, CATEGORIES, name, problems))
        elif kind == "priority":
            values.append(check_choice(item, PRIORITIES, name, problems))
        elif kind == "channel":
            values.append(check_choice(item, CHANNELS, name, problems))
        elif kind == "tier":
            tier = check_enum(Tier, item, name, problems)
            values.append(tier.value if tier else "")
        elif kind == "team":
            values.append(team_id_of(item, name, problems))
        elif kind == "organization":
            values.append(check_text(item, name, problems, limit=MAX_NAME, required=True))
        elif kind == "language":
            values.append(check_token(item, name, problems, pattern=LANGUAGE, rule=LANGUAGE_RULE))
        else:  # email_domain
            text = item.strip().lstrip("@") if isinstance(item, str) else item
            values.append(
                check_token(
                    text, name, problems, pattern=DOMAIN, rule="must be a domain like example.com"
                )
            )
    return values


def _where(raw: Mapping[str, Any], path: str, problems: Problems) -> Where:
    value = raw.get("where")
    if value is None:
        return Where.TEXT
    return check_enum(Where, value, at(path, "where"), problems) or Where.TEXT


def _words(raw: Mapping[str, Any], path: str, problems: Problems) -> tuple[str, ...]:
    words: list[str] = []
    for name, item in _values(raw, "words", path, problems):
        word = check_text(item, name, problems, limit=MAX_WORD, required=True)
        if not word:
            continue
        stem = word.rstrip("*")
        if "*" in stem or not re.search(r"\w", stem):
            problems.append(
                FieldViolation(
                    name, "must be a word or phrase; '*' only at the end, for any ending"
                )
            )
            continue
        words.append(" ".join(word.split()))
    return _distinct(words)


def _condition(value: Any, path: str, problems: Problems) -> Condition | None:
    raw = check_mapping(value, path, problems)
    if raw is None:
        return None
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in CONDITION_KEYS:
        known = ", ".join(CONDITION_KEYS)
        problems.append(
            FieldViolation(at(path, "type"), f"unknown condition {kind!r}; one of {known}")
        )
        return None
    check_keys(raw, ("type", "negate", *CONDITION_KEYS[kind]), path, problems)
    negate = read_bool(raw, "negate", path, problems, default=False)
    before = len(problems)
    condition: Condition | None = None
    if kind in FIELD_CONDITIONS:
        condition = FieldIn(
            kind, _distinct(_field_values(kind, raw, path, problems)), negate=negate
        )
    elif kind == "language":
        condition = LanguageIn(_distinct(_field_values(kind, raw, path, problems)), negate=negate)
    elif kind == "email_domain":
        condition = EmailDomainIn(
            _distinct(_field_values(kind, raw, path, problems)), negate=negate
        )
    elif kind == "tags":
        tags = {
            key: read_tokens(raw, key, path, problems, pattern=TAG, rule=TAG_RULE, limit=MAX_VALUES)
            for key in ("any_of", "all_of")
        }
        if not tags["any_of"] and not tags["all_of"] and len(problems) == before:
            problems.append(FieldViolation(path, "needs tags in any_of or all_of"))
        condition = TagsMatch(tags["any_of"], tags["all_of"], negate=negate)
    elif kind == "words":
        words = _words(raw, path, problems)
        where = _where(raw, path, problems)
        if words:
            condition = WordsMatch(words, where, negate=negate)
    elif kind == "pattern":
        condition = _pattern(raw, path, problems, negate)
    elif kind == "custom_field":
        name = ""
        if raw.get("name") in (None, ""):
            problems.append(FieldViolation(at(path, "name"), "is required"))
        else:
            name = check_token(
                raw["name"],
                at(path, "name"),
                problems,
                pattern=CUSTOM_KEY,
                rule="must start with a lowercase letter and use a-z, 0-9, _ (at most 64)",
                lower=False,
            )
        value = read_text(raw, "equals", path, problems, limit=MAX_VALUE)
        if "equals" not in raw:
            problems.append(FieldViolation(at(path, "equals"), "is required"))
        condition = CustomFieldEquals(name, value, negate=negate)
    elif kind == "business_hours":
        condition = _business_hours(raw, path, problems, negate)
    else:  # reopen_count
        at_least = read_int(raw, "at_least", path, problems, minimum=1, maximum=MAX_REOPENS)
        condition = ReopenCount(at_least, negate=negate)
    return condition if len(problems) == before else None


def _pattern(
    raw: Mapping[str, Any], path: str, problems: Problems, negate: bool
) -> Condition | None:
    where = _where(raw, path, problems)
    text = read_text(raw, "pattern", path, problems, limit=MAX_PATTERN, required=True)
    if not text:
        return None
    try:
        return PatternMatch(text, where, negate=negate)
    except (re.error, OverflowError, RecursionError) as error:
        problems.append(
            FieldViolation(at(path, "pattern"), f"is not a valid regular expression: {error}")
        )
        return None


def _business_hours(
    raw: Mapping[str, Any], path: str, problems: Problems, negate: bool
) -> Condition | None:
    if raw.get("time_zone") is None:
        problems.append(FieldViolation(at(path, "time_zone"), "is required"))
    time_zone = read_time_zone(raw, "time_zone", path, problems, default="UTC")
    hours = None
    if raw.get("hours") is None:
        problems.append(FieldViolation(at(path, "hours"), "is required"))
    else:
        hours = parse_hours(raw["hours"], at(path, "hours"), problems)
    inside = read_bool(raw, "inside", path, problems, default=True)
    return BusinessHours(hours, time_zone, inside, negate=negate) if hours else None


def _action(value: Any, path: str, problems: Problems) -> Action | None:
    raw = check_mapping(value, path, problems)
    if raw is None:
        return None
    kind = raw.get("type")
    if not isinstance(kind, str) or kind not in ACTION_KEYS:
        known = ", ".join(ACTION_KEYS)
        problems.append(
            FieldViolation(at(path, "type"), f"unknown action {kind!r}; one of {known}")
        )
        return None
    check_keys(raw, ("type", *ACTION_KEYS[kind]), path, problems)
    before = len(problems)
    action: Action | None = None
    if kind == "set_team":
        action = SetTeam(team_id_of(raw.get("team"), at(path, "team"), problems))
    elif kind == "set_tier":
        if raw.get("tier") is None:
            problems.append(FieldViolation(at(path, "tier"), "is required"))
        else:
            tier = check_enum(Tier, raw["tier"], at(path, "tier"), problems)
            action = SetTier(tier) if tier else None
    elif kind == "set_priority":
        priority = check_choice(raw.get("priority"), PRIORITIES, at(path, "priority"), problems)
        action = SetPriority(priority)
    elif kind == "add_tags":
        tags = read_tokens(
            raw, "tags", path, problems, pattern=TAG, rule=TAG_RULE, limit=MAX_VALUES, required=True
        )
        action = AddTags(tags)
    elif kind == "require_skills":
        skills = read_tokens(
            raw,
            "skills",
            path,
            problems,
            pattern=SKILL,
            rule=SKILL_RULE,
            limit=MAX_VALUES,
            required=True,
        )
        action = RequireSkills(skills)
    elif kind == "assign_agent":
        action = AssignAgent(agent_id_of(raw.get("agent_id"), at(path, "agent_id"), problems))
    elif kind == "assign_on_duty":
        team = ""
        if raw.get("team") not in (None, ""):
            team = team_id_of(raw["team"], at(path, "team"), problems)
        action = AssignOnDuty(team)
    else:
        action = LeaveInQueue()
    return action if len(problems) == before else None


def _check_conflicts(actions: list[Action | None], problems: Problems) -> None:
    """One rule decides each value at most once, so its meaning never depends on order."""
    setters: set[str] = set()
    choice = ""
    team = ""
    for i, action in enumerate(actions):
        if action is None:
            continue
        path = at("actions", i)
        kind = dump_action(action)["type"]
        if isinstance(action, SetTeam | SetTier | SetPriority):
            if kind in setters:
                what = kind.removeprefix("set_")
                problems.append(FieldViolation(path, f"the rule already sets the {what}"))
            setters.add(kind)
        if isinstance(action, AssignAgent | AssignOnDuty | LeaveInQueue):
            if choice:
                problems.append(
                    FieldViolation(
                        path,
                        f"the rule already chooses the agent with {choice}; "
                        f"use one of {', '.join(_AGENT_CHOICES)}",
                    )
                )
            choice = choice or kind
        new_team = action.team if isinstance(action, SetTeam | AssignOnDuty) else ""
        if new_team and team and new_team != team:
            problems.append(
                FieldViolation(at(path, "team"), f"the rule already sends the ticket to {team}")
            )
        team = team or new_team


def check_rule_references(
    rule: Rule, team_ids: Collection[str], agent_ids: Collection[str]
) -> None:
    """Refuses a rule whose actions name teams or agents the directory does not hold."""
    problems: Problems = []
    for i, action in enumerate(rule.actions):
        if (
            isinstance(action, SetTeam | AssignOnDuty)
            and action.team
            and action.team not in team_ids
        ):
            problems.append(
                FieldViolation(at(at("actions", i), "team"), f"no team {action.team!r}")
            )
        if isinstance(action, AssignAgent) and action.agent_id not in agent_ids:
            problems.append(
                FieldViolation(at(at("actions", i), "agent_id"), f"no agent {action.agent_id!r}")
            )
    if problems:
        raise InvalidArgument(problems)


# --- evaluation ---


class AgentChoice(StrEnum):
    # No rule chose: the team's assignment strategy picks.
    STRATEGY = "strategy"
    AGENT = "agent"
    ON_DUTY = "on_duty"
    QUEUE = "queue"


@dataclass(frozen=True)
class Decision:
    """Where the rules send a ticket. Team, tier and priority are the resulting values
    (the ticket's own when no rule set them); tags are only those to add."""

    team: str = ""
    tier: Tier | None = None
    priority: str = ""
    tags: tuple[str, ...] = ()
    required_skills: frozenset[str] = frozenset()
    choice: AgentChoice = AgentChoice.STRATEGY
    # Set when choice is AGENT.
    agent_id: str = ""
    # Names of the matching rules, in the order they ran.
    matched: tuple[str, ...] = ()

    def explanation(self) -> str:
        """One line for the ticket's history."""
        if not self.matched:
            return "no routing rule matched"
        return "routing rules: " + "; ".join(self.matched)


def tier_of(value: str) -> Tier | None:
    """The tier a ticket's tier string names, None when empty or unknown."""
    wanted = value.strip().upper()
    return next((t for t in Tier if t.value == wanted), None)


def ordered(rules: Iterable[Rule]) -> list[Rule]:
    """Enabled rules in the order they run."""
    return sorted((r for r in rules if r.enabled), key=lambda r: (r.order, r.id))


def evaluate(rules: Iterable[Rule], facts: TicketFacts, now: datetime) -> Decision:
    """Runs the rules on a ticket and says where it goes and why."""
    moment = require_utc(now)
    team: str | None = None
    tier: Tier | None = None
    priority: str | None = None
    choice: AgentChoice | None = None
    agent_id = ""
    present = {_fold(t) for t in facts.tags}
    tags: list[str] = []
    skills: set[str] = set()
    matched: list[str] = []
    for rule in ordered(rules):
        if not rule.matches(facts, moment):
            continue
        matched.append(rule.name)
        for action in rule.actions:
            match action:
                case SetTeam():
                    team = team if team is not None else action.team
                case SetTier():
                    tier = tier or action.tier
                case SetPriority():
                    priority = priority or action.priority
                case AddTags():
                    for tag in action.tags:
                        if _fold(tag) not in present:
                            present.add(_fold(tag))
                            tags.append(tag)
                case RequireSkills():
                    skills.update(action.skills)
                case AssignAgent():
                    if choice is None:
                        choice, agent_id = AgentChoice.AGENT, action.agent_id
                case AssignOnDuty():
                    choice = choice or AgentChoice.ON_DUTY
                    if action.team and team is None:
                        team = action.team
                case LeaveInQueue():
                    choice = choice or AgentChoice.QUEUE
        if rule.stop:
            break
    return Decision(
        team=facts.team if team is None else team,
        tier=tier or tier_of(facts.tier),
        priority=priority or facts.priority,
        tags=tuple(tags),
        required_skills=frozenset(skills),
        choice=choice or AgentChoice.STRATEGY,
        agent_id=agent_id,
        matched=tuple(matched),
    )
