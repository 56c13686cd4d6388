"""Intake's pure rules: what a valid new ticket is, its defaults, its number, its first form.

No I/O here: the edges turn gRPC, HTTP and Kafka input into a `TicketDraft`, and this
module decides.
"""

import base64
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from helpdesk.core.errors import FieldViolation, InvalidArgument


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Category(StrEnum):
    INCIDENT = "incident"
    QUESTION = "question"
    SERVICE_REQUEST = "service_request"
    FEEDBACK = "feedback"


class Channel(StrEnum):
    API = "api"
    WEB = "web"
    EMAIL = "email"
    CHAT = "chat"
    EVENT = "event"
    MONITORING = "monitoring"


class Status(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    ON_HOLD = "on_hold"
    RESOLVED = "resolved"
    CLOSED = "closed"


# Statuses in which a ticket is still being worked (it takes additions, counts as backlog).
OPEN_STATUSES = frozenset({Status.NEW, Status.OPEN, Status.PENDING, Status.ON_HOLD})


MAX_REQUEST_ID = 128
MAX_SUBJECT = 200
MAX_DESCRIPTION = 20_000
MAX_NAME = 200
MAX_EMAIL = 254
MAX_TAGS = 20
MAX_TAG = 50
MAX_CUSTOM_FIELDS = 50
MAX_CUSTOM_VALUE = 1_000

EMAIL_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", re.IGNORECASE)
_TAG = re.compile(r"[\w\-.:/]+")
_CUSTOM_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NUMBER = re.compile(r"([A-Z][A-Z0-9]*)-([0-9]+)")


@dataclass(frozen=True)
class Requester:
    email: str
    name: str = ""
    organization: str = ""
    language: str = ""


@dataclass(frozen=True)
class TicketDraft:
    """A request to open a ticket as a channel received it: unchecked strings."""

    subject: str = ""
    description: str = ""
    requester_email: str = ""
    requester_name: str = ""
    requester_organization: str = ""
    requester_language: str = ""
    priority: str = ""
    category: str = ""
    channel: str = ""
    tags: tuple[str, ...] = ()
    custom_fields: dict[str, str] = field(default_factory=dict)
    request_id: str = ""


@dataclass(frozen=True)
class NewTicket:
    """A request that passed validation, with defaults applied."""

    subject: str
    description: str
    requester: Requester
    priority: Priority
    category: Category
    channel: Channel
    tags: tuple[str, ...]
    custom_fields: dict[str, str]
    # Empty when the client gave none: then every call opens a new ticket.
    request_id: str


E = TypeVar("E", bound=StrEnum)


def _enum_value(
    enum: type[E], raw: str, default: E, name: str, problems: list[FieldViolation]
) -> E:
    value = raw.strip().lower()
    if not value:
        return default
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        problems.append(FieldViolation(name, f"must be one of {allowed}; got {raw!r}"))
        return default


def _text(
    raw: str,
    name: str,
    limit: int,
    problems: list[FieldViolation],
    *,
    required: bool,
    one_line: bool = False,
) -> str:
    """The trimmed text, or "" with a violation; `one_line` collapses runs of white space."""
    if CONTROL_CHARACTERS.search(raw):
        problems.append(FieldViolation(name, "must not contain control characters"))
        return ""
    value = " ".join(raw.split()) if one_line else raw.strip()
    if required and not value:
        problems.append(FieldViolation(name, "is required"))
    elif len(value) > limit:
        problems.append(
            FieldViolation(name, f"must be at most {limit} characters; got {len(value)}")
        )
    return value


def validate_new_ticket(draft: TicketDraft, default_channel: Channel = Channel.API) -> NewTicket:
    """Checks every field at once; raises InvalidArgument naming each bad one."""
    problems: list[FieldViolation] = []
    # Runs of white space in a subject collapse to one space before it is measured.
    subject = _text(draft.subject, "subject", MAX_SUBJECT, problems, required=True, one_line=True)
    description = _text(draft.description, "description", MAX_DESCRIPTION, problems, required=True)

    email = draft.requester_email.strip().lower()
    if not email:
        problems.append(FieldViolation("requester.email", "is required"))
    elif (
        len(email) > MAX_EMAIL
        or not EMAIL_ADDRESS.fullmatch(email)
        or CONTROL_CHARACTERS.search(email)
    ):
        problems.append(
            FieldViolation(
                "requester.email", f"is not an e-mail address: {draft.requester_email!r}"
            )
        )
    name = _text(draft.requester_name, "requester.name", MAX_NAME, problems, required=False)
    organization = _text(
        draft.requester_organization, "requester.organization", MAX_NAME, problems, required=False
    )
    language = draft.requester_language.strip()
    if language and not _LANGUAGE.fullmatch(language):
        problems.append(
            FieldViolation(
                "requester.language", f"must be a language tag like 'en' or 'ru'; got {language!r}"
            )
        )

    priority = _enum_value(Priority, draft.priority, Priority.NORMAL, "priority", problems)
    category = _enum_value(Category, draft.category, Category.QUESTION, "category", problems)
    channel = _enum_value(Channel, draft.channel, default_channel, "channel", problems)

    tags: list[str] = []
    if len(draft.tags) > MAX_TAGS:
        problems.append(FieldViolation("tags", f"at most {MAX_TAGS} tags; got {len(draft.tags)}"))
    for i, raw_tag in enumerate(draft.tags[:MAX_TAGS]):
        tag = raw_tag.strip().lower()
        if not tag or len(tag) > MAX_TAG or not _TAG.fullmatch(tag):
            problems.append(
                FieldViolation(
                    f"tags[{i}]",
                    f"must be 1-{MAX_TAG} letters, digits or - _ . : /; got {raw_tag!r}",
                )
            )
        elif tag not in tags:
            tags.append(tag)

    if len(draft.custom_fields) > MAX_CUSTOM_FIELDS:
        problems.append(
            FieldViolation(
                "custom_fields",
                f"at most {MAX_CUSTOM_FIELDS} fields; got {len(draft.custom_fields)}",
            )
        )
    for key, value in draft.custom_fields.items():
        if not _CUSTOM_KEY.fullmatch(key):
            problems.append(
                FieldViolation(
                    f"custom_fields.{key}",
                    "name must start with a lowercase letter and use a-z, 0-9, _ (at most 64)",
                )
            )
        elif CONTROL_CHARACTERS.search(value):
            problems.append(
                FieldViolation(f"custom_fields.{key}", "must not contain control characters")
            )
        elif len(value) > MAX_CUSTOM_VALUE:
            problems.append(
                FieldViolation(
                    f"custom_fields.{key}", f"must be at most {MAX_CUSTOM_VALUE} characters"
                )
            )

    request_id = draft.request_id.strip()
    if len(request_id) > MAX_REQUEST_ID:
        problems.append(
            FieldViolation("request_id", f"must be at most {MAX_REQUEST_ID} characters")
        )
    elif CONTROL_CHARACTERS.search(request_id):
        problems.append(FieldViolation("request_id", "must not contain control characters"))

    if problems:
        raise InvalidArgument(problems)
    return NewTicket(
        subject=subject,
        description=description,
        requester=Requester(email=email, name=name, organization=organization, language=language),
        priority=priority,
        category=category,
        channel=channel,
        tags=tuple(tags),
        custom_fields=dict(draft.custom_fields),
        request_id=request_id,
    )


_REPLY_PREFIX = re.compile(r"^\s*((re|fw|fwd|aw|wg|отв|пересл)\s*:\s*)+", re.IGNORECASE)
_NOT_WORD = re.compile(r"[\W_]+")


def normalized_subject(subject: str) -> str:
    """The subject as a person reads it: no reply prefixes, case, punctuation or spacing."""
    without_prefix = _REPLY_PREFIX.sub("", subject)
    return " ".join(_NOT_WORD.sub(" ", without_prefix.casefold()).split())


def dedup_key(new: NewTicket) -> str | None:
    """Requests with the same key within the dedup window are one problem; None: never."""
    subject = normalized_subject(new.subject)
    if not subject:
        return None
    digest = hashlib.sha256(f"{new.requester.email}\n{subject}".encode()).hexdigest()
    return f"requester-subject:{digest}"


def format_number(prefix: str, sequence: int) -> str:
    """The human-readable number of the n-th ticket, e.g. HD-1042."""
    return f"{prefix}-{sequence}"


def parse_number(text: str) -> tuple[str, int] | None:
    """("HD", 1042) for "HD-1042" (any case), None for anything that is not a number."""
    match = _NUMBER.fullmatch(text.strip().upper())
    return (match.group(1), int(match.group(2))) if match else None


@dataclass(frozen=True)
class Ticket:
    """A ticket as intake keeps it."""

    id: str
    number: str
    sequence: int
    request_id: str
    subject: str
    description: str
    requester: Requester
    priority: Priority
    category: Category
    channel: Channel
    status: Status
    tags: tuple[str, ...]
    custom_fields: dict[str, str]
    created_at: datetime
    updated_at: datetime
    version: int
    team: str = ""
    tier: str = ""
    assignee_id: str = ""
    first_response_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    reopen_count: int = 0
    # Idempotency keys of the latest assignments, so a redelivered decision changes nothing.
    assignment_keys: tuple[str, ...] = ()
    # Idempotency keys of the latest comments, so a retried or redelivered reply is added once.
    comment_keys: tuple[str, ...] = ()
    # What the SLA service last reported (see SLA_STATES); never written with the ticket.
    sla_state: str = ""
    rating: "Rating | None" = None
    # A bad rating waits for a person: automation may not close the ticket meanwhile.
    review_required: bool = False
    merged_into: str = ""
    links: tuple["Link", ...] = ()
    # Knowledge-base articles suggested when the ticket was filed, best first.
    suggestions: tuple["ArticleSuggestion", ...] = ()
    # The article the requester said solved the problem.
    solved_by_article_id: str = ""


@dataclass(frozen=True)
class ArticleSuggestion:
    article_id: str
    title: str
    score: float


@dataclass(frozen=True)
class Rating:
    score: int
    comment: str
    rated_at: datetime


@dataclass(frozen=True)
class Link:
    """A relation to another ticket, seen from this one."""

    kind: str
    ticket_number: str
    ticket_id: str


# Ticket ids derived from request ids live in their own UUID namespace.
_TICKET_ID_NAMESPACE = uuid.UUID("6f1c7d2e-4b8a-5e0f-9a3d-2c1b0e9f8a7d")


def ticket_id_for(request_id: str) -> str:
    """The ticket id a request id always leads to (UUID v5), so replays find the same ticket."""
    return str(uuid.uuid5(_TICKET_ID_NAMESPACE, request_id))


def open_ticket(
    new: NewTicket,
    *,
    ticket_id: str,
    number: str,
    sequence: int,
    request_id: str,
    now: datetime,
    suggestions: tuple[ArticleSuggestion, ...] = (),
) -> Ticket:
    """The first form of a ticket: status new, version 1."""
    return Ticket(
        id=ticket_id,
        number=number,
        sequence=sequence,
        request_id=request_id,
        subject=new.subject,
        description=new.description,
        requester=new.requester,
        priority=new.priority,
        category=new.category,
        channel=new.channel,
        status=Status.NEW,
        tags=new.tags,
        custom_fields=new.custom_fields,
        created_at=now,
        updated_at=now,
        version=1,
        suggestions=suggestions,
    )


MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


def page_size(requested: int) -> int:
    """The page size to use; refuses negative or too-large sizes."""
    if requested < 0 or requested > MAX_PAGE_SIZE:
        raise InvalidArgument(
            [FieldViolation("page_size", f"must be between 0 and {MAX_PAGE_SIZE}; got {requested}")]
        )
    return requested or DEFAULT_PAGE_SIZE


def json_string(obj: dict[str, Any], key: str, path: str, problems: list[FieldViolation]) -> str:
    """A string field of a JSON object: absent or null is "", another type is a violation."""
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.append(FieldViolation(path, f"must be a string; got {type(value).__name__}"))
        return ""
    return value


def draft_from_json(data: Any) -> TicketDraft:
    """A draft from the intake topic's JSON object; wrong shapes are refused by field."""
    if not isinstance(data, dict):
        raise InvalidArgument([FieldViolation("$", "must be a JSON object")])
    problems: list[FieldViolation] = []

    def text(obj: dict[str, Any], key: str, path: str) -> str:
        return json_string(obj, key, path, problems)

    # null means absent, as for every other field; other wrong shapes are refused.
    requester = data.get("requester")
    if requester is None:
        requester = {}
    elif not isinstance(requester, dict):
        problems.append(
            FieldViolation(
                "requester", "must be an object with email, name, organization, language"
            )
        )
        requester = {}
    tags = data.get("tags")
    if tags is None:
        tags = []
    elif not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        problems.append(FieldViolation("tags", "must be a list of strings"))
        tags = []
    custom = data.get("custom_fields")
    if custom is None:
        custom = {}
    elif not isinstance(custom, dict) or not all(isinstance(v, str) for v in custom.values()):
        problems.append(FieldViolation("custom_fields", "must be an object of string values"))
        custom = {}
    draft = TicketDraft(
        request_id=text(data, "request_id", "request_id"),
        subject=text(data, "subject", "subject"),
        description=text(data, "description", "description"),
        requester_email=text(requester, "email", "requester.email"),
        requester_name=text(requester, "name", "requester.name"),
        requester_organization=text(requester, "organization", "requester.organization"),
        requester_language=text(requester, "language", "requester.language"),
        priority=text(data, "priority", "priority"),
        category=text(data, "category", "category"),
        channel=text(data, "channel", "channel"),
        tags=tuple(tags),
        custom_fields={str(k): v for k, v in custom.items()},
    )
    if problems:
        raise InvalidArgument(problems)
    return draft


def encode_page_token(before_sequence: int, status: str) -> str:
    """An opaque token that continues a listing after the given ticket, for the same filter."""
    raw = json.dumps({"before": before_sequence, "status": status}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_page_token(token: str, status: str) -> int | None:
    """The sequence to continue before, None for the first page; refuses foreign tokens."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        before = data["before"]
        token_status = data["status"]
        if type(before) is not int or not isinstance(token_status, str):
            raise TypeError("wrong token field types")
    except (ValueError, KeyError, TypeError, RecursionError) as error:
        raise InvalidArgument(
            [FieldViolation("page_token", "is not a token from this listing")]
        ) from error
    if token_status != status:
        raise InvalidArgument(
            [FieldViolation("page_token", "belongs to a listing with another status filter")]
        )
    return before


ORDERS = ("newest", "oldest")
MAX_FILTER_VALUES = 50


# The SLA states a ticket can be listed by, as the SLA service's events set them.
SLA_STATES = ("at_risk", "breached")


@dataclass(frozen=True)
class TicketQuery:
    """Which tickets a listing shows, and in which order. Empty fields filter nothing."""

    statuses: tuple[Status, ...] = ()
    team: str = ""
    assignee_id: str = ""
    requester_email: str = ""
    priorities: tuple[Priority, ...] = ()
    tags: tuple[str, ...] = ()
    channel: Channel | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    subject_contains: str = ""
    order: str = "newest"
    sla_states: tuple[str, ...] = ()

    def fingerprint(self) -> str:
        """Names the listing, so a page token is only accepted by the listing it came from."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]


def ticket_query(
    *,
    statuses: list[Status],
    team: str,
    assignee_id: str,
    requester_email: str,
    priorities: list[Priority],
    tags: list[str],
    channel: Channel | None,
    created_after: datetime | None,
    created_before: datetime | None,
    updated_after: datetime | None,
    updated_before: datetime | None,
    subject_contains: str,
    order: str,
    sla_states: list[str] | None = None,
) -> TicketQuery:
    """A checked, normalised query; refuses contradictions and oversized filters by field."""
    problems: list[FieldViolation] = []
    order_value = order.strip().lower() or "newest"
    if order_value not in ORDERS:
        problems.append(FieldViolation("order_by", f"must be one of {', '.join(ORDERS)}"))
    for name, values in (("statuses", statuses), ("priorities", priorities), ("tags", tags)):
        if len(values) > MAX_FILTER_VALUES:
            problems.append(FieldViolation(name, f"at most {MAX_FILTER_VALUES} values"))
    for name, after, before in (
        ("created_before", created_after, created_before),
        ("updated_before", updated_after, updated_before),
    ):
        if after and before and before <= after:
            problems.append(FieldViolation(name, "must be later than the matching _after"))
    sla_wanted = sorted({s.strip().lower() for s in sla_states or ()})
    for i, state in enumerate(sla_wanted):
        if state not in SLA_STATES:
            problems.append(
                FieldViolation(f"sla_states[{i}]", f"must be one of {', '.join(SLA_STATES)}")
            )
    text = " ".join(subject_contains.split())
    if len(text) > MAX_SUBJECT:
        problems.append(FieldViolation("subject_contains", f"at most {MAX_SUBJECT} characters"))
    if problems:
        raise InvalidArgument(problems)
    return TicketQuery(
        statuses=tuple(sorted(set(statuses))),
        team=team.strip().lower(),
        assignee_id=assignee_id.strip(),
        requester_email=requester_email.strip().lower(),
        priorities=tuple(sorted(set(priorities))),
        tags=tuple(sorted({t.strip().lower() for t in tags if t.strip()})),
        channel=channel,
        created_after=created_after,
        created_before=created_before,
        updated_after=updated_after,
        updated_before=updated_before,
        subject_contains=text,
        order=order_value,
        sla_states=tuple(sla_wanted),
    )
