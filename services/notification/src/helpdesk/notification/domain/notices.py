"""Who hears what: the default rules, admin subscriptions and people's contact preferences.

Defaults follow the ticket's life. The requester hears that the request was received, public
replies by agents, that the desk waits for them (pending), that the ticket was resolved (with
the CSAT survey) and that it was closed, by a person or automatically. The assignee hears of
assignment, requester replies and SLA warnings and breaches; while nobody is assigned, the
team hears those instead, and of new tickets waiting in its queue. Managers hear of breaches
and bad ratings. Agents hear when a colleague mentions them (`@anna`) in a reply or note.
Nobody is told of their own action, and muted people hear nothing.

Admin subscriptions add notices to the defaults. One recipient hears of one event once per
channel: the first notice for a (recipient, channel) pair wins, defaults before subscriptions.
"""

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from helpdesk.core.errors import FieldViolation, InvalidArgument
from helpdesk.notification.domain import payload
from helpdesk.notification.domain.payload import Problems, path
from helpdesk.notification.domain.template_texts import DEFAULT_LANGUAGE, LANGUAGES, TEMPLATE_KEYS


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"
    SLACK = "slack"
    TELEGRAM = "telegram"


class Audience(StrEnum):
    REQUESTER = "requester"
    ASSIGNEE = "assignee"
    TEAM = "team"
    MANAGER = "manager"
    # Agents named with @ in a comment.
    MENTIONED = "mentioned"
    # People an admin subscription names directly; never an audience of its own.
    WATCHER = "watcher"


# The ticket's vocabulary, as intake and the SLA service spell it.
PRIORITIES = ("low", "normal", "high", "urgent")
CATEGORIES = ("incident", "question", "service_request", "feedback")
STATUSES = ("new", "open", "pending", "on_hold", "resolved", "closed")
CHANNELS = ("api", "web", "email", "chat", "event", "monitoring")
METRICS = ("first_response", "next_response", "resolution", "periodic_update")

EVENT_TYPES = frozenset(
    {
        "ticket.created",
        "ticket.updated",
        "ticket.status_changed",
        "ticket.reopened",
        "ticket.resolved",
        "ticket.closed",
        "ticket.commented",
        "ticket.assigned",
        "ticket.rated",
        "ticket.merged",
        "ticket.linked",
        "sla.warning",
        "sla.breached",
        "sla.met",
    }
)
# The SLA service closes tickets that wait on a silent requester as this system actor.
AUTO_CLOSE_ACTOR_ROLE = "system"


@dataclass(frozen=True)
class Facts:
    """One event as the notification rules see it (plain strings)."""

    event_id: str
    # "ticket.created", "ticket.commented", "sla.breached", ...; the CloudEvents form
    # ("helpdesk.ticket.created.v1") is read the same.
    event_type: str
    ticket_id: str
    number: str = ""
    subject: str = ""
    status: str = ""
    priority: str = ""
    team: str = ""
    assignee_id: str = ""
    requester_email: str = ""
    requester_name: str = ""
    requester_language: str = ""
    # The ticket's intake channel (email, chat, ...).
    channel: str = ""
    comment_body: str = ""
    comment_internal: bool = False
    # requester | agent | system
    comment_author_role: str = ""
    old_status: str = ""
    new_status: str = ""
    rating_score: int = 0
    rating_bad: bool = False
    sla_metric: str = ""
    # ISO 8601
    sla_due_at: str = ""
    custom_fields: Mapping[str, str] = field(default_factory=dict)
    # Who made the change: an agent id, the requester's e-mail or a system's name ("sla");
    # for a comment, its author. Nobody is told of their own action.
    actor_id: str = ""
    # requester | agent | system; for a comment, comment_author_role is read first.
    actor_role: str = ""
    category: str = ""
    tags: tuple[str, ...] = ()
    rating_comment: str = ""


@dataclass(frozen=True)
class Person:
    """Someone the help desk can reach: an agent, a team, a manager (from preferences)."""

    id: str
    name: str = ""
    email: str = ""
    language: str = DEFAULT_LANGUAGE
    # Preferred.
    channel: Channel = Channel.EMAIL
    webhook_url: str = ""
    slack_webhook_url: str = ""
    telegram_chat_id: str = ""
    muted: bool = False


@dataclass(frozen=True)
class Notice:
    """One message to send."""

    event_id: str
    ticket_id: str
    # e.g. "ticket.created.requester"
    template: str
    audience: Audience
    # A stable key: e-mail address, person id or chat id; with channel and event_id the
    # dedup key.
    recipient: str
    channel: Channel
    # Where: e-mail address, URL or Telegram chat id.
    address: str
    # "ru" or "en"
    language: str
    name: str = ""


@dataclass(frozen=True)
class Subscription:
    """An admin's rule: on these events, when the conditions hold, tell these people."""

    id: str
    name: str
    event_types: frozenset[str]
    # Fact -> accepted values; all must hold, an absent fact accepts anything.
    conditions: Mapping[str, frozenset[str]]
    audience: Audience | None
    person_ids: tuple[str, ...]
    # None: each person's preferred channel.
    channel: Channel | None
    template: str
    enabled: bool = True


def event_kind(event_type: str) -> str:
    """ "helpdesk.ticket.created.v1" or "ticket.created" -> "ticket.created"."""
    return event_type.strip().removeprefix("helpdesk.").removesuffix(".v1")


def language_of(tag: str) -> str:
    """The primary subtag of a language tag when templates exist for it, else English."""
    primary = tag.strip().lower().replace("_", "-").split("-", 1)[0]
    return primary if primary in LANGUAGES else DEFAULT_LANGUAGE


def address_of(person: Person, channel: Channel) -> str:
    """Where a person is reached on a channel; "" when they gave no address for it."""
    match channel:
        case Channel.EMAIL:
            return person.email
        case Channel.WEBHOOK:
            return person.webhook_url
        case Channel.SLACK:
            return person.slack_webhook_url
        case Channel.TELEGRAM:
            return person.telegram_chat_id


# `@anna` or `@it-l1`, but not the domain of an e-mail address (anna@example.com).
_MENTION = re.compile(r"(?<![\w@.])@([A-Za-z0-9][A-Za-z0-9_.:@+-]*)")


def mentioned(body: str, people: Mapping[str, Person]) -> tuple[str, ...]:
    """Ids of the known people a comment names with @, in order of first mention."""
    by_folded = {person_id.casefold(): person_id for person_id in people}
    found: list[str] = []
    for match in _MENTION.finditer(body):
        # A sentence may end right after a mention: "ask @anna."
        word = match[1].rstrip(".:-")
        person_id = word if word in people else by_folded.get(word.casefold())
        if person_id and person_id not in found:
            found.append(person_id)
    return tuple(found)


def notices_for(
    facts: Facts,
    people: Mapping[str, Person],
    *,
    managers: Sequence[str],
    team_people: Mapping[str, Sequence[str]],
    subscriptions: Sequence[Subscription] = (),
) -> list[Notice]:
    """Every notice one event causes: the defaults, then what matching subscriptions add."""
    plan = _Plan(facts, people, managers, team_people)
    plan.defaults()
    for subscription in sorted(subscriptions, key=lambda s: s.id):
        wanted = subscription.enabled and plan.kind in subscription.event_types
        if wanted and matches(subscription.conditions, facts):
            plan.subscribed(subscription)
    return plan.notices


class _Plan:
    """The notices of one event as they are decided, deduplicated by recipient and channel."""

    def __init__(
        self,
        facts: Facts,
        people: Mapping[str, Person],
        managers: Sequence[str],
        team_people: Mapping[str, Sequence[str]],
    ) -> None:
        self.facts = facts
        self.people = people
        self.managers = managers
        self.team_people = team_people
        self.kind = event_kind(facts.event_type)
        self.author_id = facts.actor_id.strip()
        role = facts.comment_author_role if self.kind == "ticket.commented" else ""
        self.author_role = (role or facts.actor_role).strip().lower()
        self.notices: list[Notice] = []
        self._seen: set[tuple[str, Channel]] = set()

    def defaults(self) -> None:
        facts, kind = self.facts, self.kind
        match kind:
            case "ticket.created":
                # The acknowledgement goes out whoever opened the ticket.
                self.to_requester("ticket.created.requester", acknowledgement=True)
                if facts.assignee_id:
                    self.to_assignee("ticket.assigned.assignee")
                elif facts.team:
                    self.to_team("ticket.queued.team")
            case "ticket.commented":
                self._commented()
            case "ticket.status_changed":
                # Resolved and closed have events of their own, which tell the requester.
                if (facts.new_status or facts.status) == "pending":
                    self.to_requester("ticket.pending.requester")
            case "ticket.resolved":
                self.to_requester("ticket.resolved.requester")
            case "ticket.closed":
                auto = self.author_role == AUTO_CLOSE_ACTOR_ROLE
                self.to_requester(
                    "ticket.auto_closed.requester" if auto else "ticket.closed.requester"
                )
            case "ticket.auto_closed":
                self.to_requester("ticket.auto_closed.requester")
            case "ticket.assigned":
                if facts.assignee_id:
                    self.to_assignee("ticket.assigned.assignee")
                elif facts.team:
                    self.to_team("ticket.queued.team")
            case "ticket.rated":
                if facts.rating_bad:
                    self.to_managers("ticket.bad_rating.manager")
            case "sla.warning" | "sla.breached":
                if facts.assignee_id:
                    self.to_assignee(f"{kind}.assignee")
                else:
                    self.to_team(f"{kind}.team")
                if kind == "sla.breached":
                    self.to_managers("sla.breached.manager")

    def _commented(self) -> None:
        facts = self.facts
        if self.author_role == "agent":
            if not facts.comment_internal:
                self.to_requester("ticket.replied.requester")
            self.to_mentioned("ticket.mentioned.agent")
        elif self.author_role == "requester":
            if facts.assignee_id:
                self.to_assignee("ticket.requester_replied.assignee")
            else:
                self.to_team("ticket.requester_replied.team")

    def subscribed(self, subscription: Subscription) -> None:
        template, channel = subscription.template, subscription.channel
        match subscription.audience:
            case Audience.REQUESTER:
                # An internal note is never shown to the requester, whatever a rule says.
                if not (self.kind == "ticket.commented" and self.facts.comment_internal):
                    self.to_requester(template)
            case Audience.ASSIGNEE:
                self.to_assignee(template, channel)
            case Audience.TEAM:
                self.to_team(template, channel)
            case Audience.MANAGER:
                self.to_managers(template, channel)
            case Audience.MENTIONED:
                if self.author_role == "agent":
                    self.to_mentioned(template, channel)
            case _:
                pass
        for person_id in subscription.person_ids:
            self.to_person(person_id, Audience.WATCHER, template, channel)

    # --- audiences

    def to_requester(self, template: str, *, acknowledgement: bool = False) -> None:
        facts = self.facts
        email = facts.requester_email.strip().lower()
        by_requester = self.author_role == "requester" or (
            bool(self.author_id) and self.author_id.casefold() == email
        )
        if by_requester and not acknowledgement:
            return
        preferences = self.people.get(email) if email else None
        if preferences is not None and preferences.muted:
            return
        language = language_of(facts.requester_language)
        contact = self._chat_contact(preferences) or self._mail_contact(email)
        if contact is None:
            return
        channel, recipient, address = contact
        self._add(
            Notice(
                event_id=facts.event_id,
                ticket_id=facts.ticket_id,
                template=template,
                audience=Audience.REQUESTER,
                recipient=recipient,
                channel=channel,
                address=address,
                language=language,
                name=facts.requester_name,
            )
        )

    def _chat_contact(self, preferences: Person | None) -> tuple[Channel, str, str] | None:
        """A chat requester is answered in their chat where the help desk can post there."""
        facts = self.facts
        if facts.channel != "chat":
            return None
        platform = facts.custom_fields.get("chat_platform", "").strip().lower()
        chat_id = facts.custom_fields.get("chat_id", "").strip()
        if not chat_id:
            return None
        if platform == Channel.TELEGRAM:
            return Channel.TELEGRAM, chat_id, chat_id
        if platform == Channel.SLACK:
            # Slack takes messages only through a webhook someone configured for the chat.
            for config in (preferences, self.people.get(f"slack:{chat_id}")):
                if config is not None and config.slack_webhook_url and not config.muted:
                    return Channel.SLACK, chat_id, config.slack_webhook_url
        return None

    @staticmethod
    def _mail_contact(email: str) -> tuple[Channel, str, str] | None:
        # Chat requesters carry a made-up address in the reserved .invalid domain.
        if not email or payload.undeliverable(email):
            return None
        return Channel.EMAIL, email, email

    def to_assignee(self, template: str, channel: Channel | None = None) -> None:
        if self.facts.assignee_id:
            self.to_person(self.facts.assignee_id, Audience.ASSIGNEE, template, channel)

    def to_team(self, template: str, channel: Channel | None = None) -> None:
        for person_id in self._team_members():
            self.to_person(person_id, Audience.TEAM, template, channel)

    def _team_members(self) -> Sequence[str]:
        """The team's own contact (a shared channel) when it has one, else its members."""
        team = self.facts.team
        if not team:
            return ()
        if team in self.people:
            return (team,)
        return self.team_people.get(team, ())

    def to_managers(self, template: str, channel: Channel | None = None) -> None:
        for person_id in self.managers:
            self.to_person(person_id, Audience.MANAGER, template, channel)

    def to_mentioned(self, template: str, channel: Channel | None = None) -> None:
        for person_id in mentioned(self.facts.comment_body, self.people):
            self.to_person(person_id, Audience.MENTIONED, template, channel)

    def to_person(
        self, person_id: str, audience: Audience, template: str, channel: Channel | None
    ) -> None:
        person = self.people.get(person_id)
        if person is None or person.muted or self._is_author(person):
            return
        chosen = channel if channel is not None and address_of(person, channel) else person.channel
        address = address_of(person, chosen)
        if not address:
            return
        self._add(
            Notice(
                event_id=self.facts.event_id,
                ticket_id=self.facts.ticket_id,
                template=template,
                audience=audience,
                recipient=person.id,
                channel=chosen,
                address=address,
                language=language_of(person.language),
                name=person.name,
            )
        )

    def _is_author(self, person: Person) -> bool:
        author = self.author_id.casefold()
        return bool(author) and author in (person.id.casefold(), person.email.casefold())

    def _add(self, notice: Notice) -> None:
        key = (notice.recipient, notice.channel)
        if key not in self._seen:
            self._seen.add(key)
            self.notices.append(notice)


# --- subscriptions ---

SUBSCRIPTION_FIELDS = (
    "id",
    "name",
    "enabled",
    "event_types",
    "conditions",
    "audience",
    "person_ids",
    "channel",
    "template",
)
CONDITION_FIELDS = (
    "priority",
    "category",
    "team",
    "status",
    "channel",
    "sla_metric",
    "language",
    "tags",
)
CUSTOM_FIELD_PREFIX = "custom_fields."
SUBSCRIPTION_ID = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
SUBSCRIPTION_ID_RULE = "must be 1-64 lowercase letters, digits, '-', '_' or '.'"
# Agent ids keep their case (they may come from an identity provider); a requester's
# preferences are kept under their e-mail, a Slack chat's under "slack:<channel id>".
PERSON_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,253}")
PERSON_ID_RULE = "must be letters, digits, '-', '_', '.', ':', '@' or '+' (at most 254)"
TEAM = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")
TEAM_RULE = "must be lowercase letters, digits, '-', '_' or '.' (at most 100)"
TAG = re.compile(r"[\w\-.:/]{1,50}")
TAG_RULE = "must be 1-50 letters, digits or - _ . : /"
CUSTOM_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
TELEGRAM_CHAT = re.compile(r"-?[0-9]{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31}")
TELEGRAM_CHAT_RULE = "must be a numeric chat id such as -1001234567890 or a @channel name"
MAX_NAME = 200
MAX_EVENT_TYPES = 50
MAX_PERSON_IDS = 200
MAX_CONDITION_VALUES = 100
MAX_CUSTOM_VALUE = 1_000
# Checks one accepted value of a condition: the value as kept, or "" with a violation.
ValueCheck = Callable[[Any, str, Problems], str]


def matches(conditions: Mapping[str, frozenset[str]], facts: Facts) -> bool:
    """Whether every condition accepts the event's facts."""
    return all(
        not accepted.isdisjoint(_fact_values(facts, name)) for name, accepted in conditions.items()
    )


def _fact_values(facts: Facts, name: str) -> set[str]:
    if name.startswith(CUSTOM_FIELD_PREFIX):
        value = facts.custom_fields.get(name.removeprefix(CUSTOM_FIELD_PREFIX), "")
        return {" ".join(value.casefold().split())}
    if name == "tags":
        return {tag.strip().lower() for tag in facts.tags}
    if name == "language":
        return {language_of(facts.requester_language)}
    return {str(getattr(facts, name, "")).strip().lower()}


def parse_subscription(raw: Mapping[str, Any]) -> Subscription:
    """An admin's subscription, checked; raises InvalidArgument naming each bad field."""
    problems: Problems = []
    checked = payload.mapping(raw, "", problems)
    payload.unknown_fields(checked, SUBSCRIPTION_FIELDS, "", problems)
    subscription_id = payload.token(
        checked.get("id"),
        "id",
        problems,
        pattern=SUBSCRIPTION_ID,
        rule=SUBSCRIPTION_ID_RULE,
        required=True,
    )
    name = payload.text(checked.get("name"), "name", problems, limit=MAX_NAME, required=True)
    enabled = payload.boolean(checked.get("enabled"), "enabled", problems, default=True)
    event_types = _event_types(checked.get("event_types"), problems)
    conditions = _conditions(checked.get("conditions"), problems)
    audience = payload.choice(Audience, checked.get("audience"), "audience", problems)
    if audience is Audience.WATCHER:
        problems.append(FieldViolation("audience", "watchers are the people named in person_ids"))
        audience = None
    person_ids = _person_ids(checked.get("person_ids"), problems)
    if audience is None and not person_ids and checked.get("audience") in (None, ""):
        problems.append(FieldViolation("person_ids", "name an audience or at least one person"))
    channel = payload.choice(Channel, checked.get("channel"), "channel", problems)
    template = _template_key(checked.get("template"), problems)
    if problems:
        raise InvalidArgument(problems)
    return Subscription(
        id=subscription_id,
        name=name,
        event_types=event_types,
        conditions=conditions,
        audience=audience,
        person_ids=person_ids,
        channel=channel,
        template=template,
        enabled=enabled,
    )


def dump_subscription(subscription: Subscription) -> dict[str, Any]:
    """The raw form `parse_subscription` reads back to an equal subscription."""
    raw: dict[str, Any] = {
        "id": subscription.id,
        "name": subscription.name,
        "enabled": subscription.enabled,
        "event_types": sorted(subscription.event_types),
        "conditions": {
            name: sorted(values) for name, values in sorted(subscription.conditions.items())
        },
        "person_ids": list(subscription.person_ids),
        "template": subscription.template,
    }
    if subscription.audience is not None:
        raw["audience"] = subscription.audience.value
    if subscription.channel is not None:
        raw["channel"] = subscription.channel.value
    return raw


def _event_types(value: Any, problems: Problems) -> frozenset[str]:
    if value is None or value == []:
        problems.append(FieldViolation("event_types", "name at least one event type"))
        return frozenset()
    found: set[str] = set()
    for i, item in enumerate(payload.items(value, "event_types", MAX_EVENT_TYPES, problems)):
        kind = event_kind(item).lower() if isinstance(item, str) else ""
        if kind in EVENT_TYPES:
            found.add(kind)
        else:
            problems.append(
                FieldViolation(
                    path("event_types", i),
                    f"unknown event type {item!r}; known: {', '.join(sorted(EVENT_TYPES))}",
                )
            )
    return frozenset(found)


def _template_key(value: Any, problems: Problems) -> str:
    if value is None or value == "":
        problems.append(FieldViolation("template", "is required"))
        return ""
    key = value.strip() if isinstance(value, str) else ""
    if key not in TEMPLATE_KEYS:
        problems.append(
            FieldViolation(
                "template",
                f"unknown template key {value!r}; known: {', '.join(sorted(TEMPLATE_KEYS))}",
            )
        )
        return ""
    return key


def _person_ids(value: Any, problems: Problems) -> tuple[str, ...]:
    found: list[str] = []
    for i, item in enumerate(payload.items(value, "person_ids", MAX_PERSON_IDS, problems)):
        person_id = payload.token(
            item,
            path("person_ids", i),
            problems,
            pattern=PERSON_ID,
            rule=PERSON_ID_RULE,
            lower=False,
            required=True,
        )
        if person_id and person_id not in found:
            found.append(person_id)
    return tuple(found)


def _conditions(value: Any, problems: Problems) -> dict[str, frozenset[str]]:
    if value is None:
        return {}
    raw = payload.mapping(value, "conditions", problems)
    conditions: dict[str, frozenset[str]] = {}
    for name, given in raw.items():
        where = path("conditions", str(name))
        if name in CONDITION_FIELDS:
            accepted = _values(given, where, _condition_check(name), problems)
        elif isinstance(name, str) and name.startswith(CUSTOM_FIELD_PREFIX):
            if not CUSTOM_KEY.fullmatch(name.removeprefix(CUSTOM_FIELD_PREFIX)):
                problems.append(
                    FieldViolation(where, "custom field names are lowercase letters, digits, '_'")
                )
                continue
            accepted = _values(given, where, _custom_value, problems)
        else:
            known = ", ".join((*CONDITION_FIELDS, f"{CUSTOM_FIELD_PREFIX}<name>"))
            problems.append(FieldViolation(where, f"unknown condition; expected one of {known}"))
            continue
        if accepted:
            conditions[name] = accepted
    return conditions


def _values(value: Any, where: str, check: ValueCheck, problems: Problems) -> frozenset[str]:
    given = payload.items(value, where, MAX_CONDITION_VALUES, problems)
    if value is not None and isinstance(value, list | tuple) and not given:
        problems.append(FieldViolation(where, "name at least one value"))
    found: set[str] = set()
    for i, item in enumerate(given):
        accepted = check(item, path(where, i), problems)
        if accepted:
            found.add(accepted)
    return frozenset(found)


def _condition_check(name: str) -> ValueCheck:
    """The check of one value of a condition on a ticket fact."""
    words = {
        "priority": PRIORITIES,
        "category": CATEGORIES,
        "status": STATUSES,
        "channel": CHANNELS,
        "sla_metric": METRICS,
        "language": LANGUAGES,
    }
    if name in words:
        allowed = words[name]

        def one_of(item: Any, where: str, problems: Problems) -> str:
            word = item.strip().lower() if isinstance(item, str) else None
            if word not in allowed:
                problems.append(
                    FieldViolation(where, f"must be one of {', '.join(allowed)}; got {item!r}")
                )
                return ""
            return word

        return one_of
    pattern, rule = (TEAM, TEAM_RULE) if name == "team" else (TAG, TAG_RULE)

    def matching(item: Any, where: str, problems: Problems) -> str:
        return payload.token(item, where, problems, pattern=pattern, rule=rule, required=True)

    return matching


def _custom_value(item: Any, where: str, problems: Problems) -> str:
    # Compared without regard to case or runs of spaces, as the facts are.
    value = payload.text(item, where, problems, limit=MAX_CUSTOM_VALUE, required=True)
    return " ".join(value.casefold().split())


# --- people ---

PERSON_FIELDS = (
    "id",
    "name",
    "email",
    "language",
    "channel",
    "webhook_url",
    "slack_webhook_url",
    "telegram_chat_id",
    "muted",
)
# The field holding the address each channel needs.
ADDRESS_FIELDS: Mapping[Channel, str] = {
    Channel.EMAIL: "email",
    Channel.WEBHOOK: "webhook_url",
    Channel.SLACK: "slack_webhook_url",
    Channel.TELEGRAM: "telegram_chat_id",
}


def parse_person(raw: Mapping[str, Any]) -> Person:
    """A person's contact and preferences, checked; raises InvalidArgument naming each bad
    field."""
    problems: Problems = []
    checked = payload.mapping(raw, "", problems)
    payload.unknown_fields(checked, PERSON_FIELDS, "", problems)
    person_id = payload.token(
        checked.get("id"),
        "id",
        problems,
        pattern=PERSON_ID,
        rule=PERSON_ID_RULE,
        lower=False,
        required=True,
    )
    name = payload.text(checked.get("name"), "name", problems, limit=MAX_NAME)
    email = payload.email(checked.get("email"), "email", problems)
    language = _language(checked.get("language"), problems)
    channel = payload.choice(Channel, checked.get("channel"), "channel", problems)
    webhook_url = payload.url(checked.get("webhook_url"), "webhook_url", problems)
    slack_webhook_url = payload.url(checked.get("slack_webhook_url"), "slack_webhook_url", problems)
    telegram_chat_id = payload.token(
        checked.get("telegram_chat_id"),
        "telegram_chat_id",
        problems,
        pattern=TELEGRAM_CHAT,
        rule=TELEGRAM_CHAT_RULE,
        lower=False,
    )
    muted = payload.boolean(checked.get("muted"), "muted", problems, default=False)
    person = Person(
        id=person_id,
        name=name,
        email=email,
        language=language,
        channel=channel or Channel.EMAIL,
        webhook_url=webhook_url,
        slack_webhook_url=slack_webhook_url,
        telegram_chat_id=telegram_chat_id,
        muted=muted,
    )
    needed = ADDRESS_FIELDS[person.channel]
    # A bad channel or address is already reported; a missing address makes the preferred
    # channel useless.
    chosen = channel is not None or checked.get("channel") in (None, "")
    if chosen and not address_of(person, person.channel) and checked.get(needed) in (None, ""):
        problems.append(
            FieldViolation(needed, f"is required when the channel is {person.channel.value}")
        )
    if problems:
        raise InvalidArgument(problems)
    return person


def dump_person(person: Person) -> dict[str, Any]:
    """The raw form `parse_person` reads back to an equal person."""
    return {
        "id": person.id,
        "name": person.name,
        "email": person.email,
        "language": person.language,
        "channel": person.channel.value,
        "webhook_url": person.webhook_url,
        "slack_webhook_url": person.slack_webhook_url,
        "telegram_chat_id": person.telegram_chat_id,
        "muted": person.muted,
    }


def _language(value: Any, problems: Problems) -> str:
    if value is None or value == "":
        return DEFAULT_LANGUAGE
    tag = value.strip().lower().replace("_", "-") if isinstance(value, str) else ""
    primary = tag.split("-", 1)[0]
    if primary not in LANGUAGES:
        problems.append(
            FieldViolation("language", f"must be {' or '.join(LANGUAGES)}; got {value!r}")
        )
        return DEFAULT_LANGUAGE
    return primary


def people_by_id(people: Iterable[Person]) -> dict[str, Person]:
    """People keyed as `notices_for` looks them up."""
    return {person.id: person for person in people}
