"""The ticket lifecycle as pure rules: legal status moves, updates by field mask,
comments, assignment. Each rule returns the changed ticket and what happened, for the
store to write and the outbox to publish; none does I/O."""

import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from helpdesk.core.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
)
from helpdesk.intake.domain import (
    CONTROL_CHARACTERS,
    MAX_DESCRIPTION,
    Category,
    Link,
    Priority,
    Rating,
    Status,
    Ticket,
    TicketDraft,
    validate_new_ticket,
)


class Role(StrEnum):
    REQUESTER = "requester"
    AGENT = "agent"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    id: str
    role: Role


# Where each status may go. Closed is final; a resolved ticket goes back to open (a reopen).
TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.NEW: frozenset(
        {Status.OPEN, Status.PENDING, Status.ON_HOLD, Status.RESOLVED, Status.CLOSED}
    ),
    Status.OPEN: frozenset({Status.PENDING, Status.ON_HOLD, Status.RESOLVED, Status.CLOSED}),
    Status.PENDING: frozenset({Status.OPEN, Status.ON_HOLD, Status.RESOLVED, Status.CLOSED}),
    Status.ON_HOLD: frozenset({Status.OPEN, Status.PENDING, Status.RESOLVED, Status.CLOSED}),
    Status.RESOLVED: frozenset({Status.OPEN, Status.CLOSED}),
    Status.CLOSED: frozenset(),
}

UPDATABLE_FIELDS = frozenset({"status", "priority", "category", "tags", "team", "custom_fields"})
TIERS = ("L1", "L2", "L3")
MAX_TEAM = 100
MAX_ATTACHMENTS = 20
MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
MAX_ASSIGNMENT_KEYS = 50
# How many comment idempotency keys a ticket remembers (a retry comes within minutes).
MAX_COMMENT_KEYS = 100
MAX_IDEMPOTENCY_KEY = 200
_TEAM = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*", re.IGNORECASE)
_URL = re.compile(r"https?://[^\s]+", re.IGNORECASE)


class Action(StrEnum):
    UPDATED = "updated"
    STATUS_CHANGED = "status_changed"
    REOPENED = "reopened"
    RESOLVED = "resolved"
    CLOSED = "closed"
    COMMENTED = "commented"
    ASSIGNED = "assigned"
    RATED = "rated"
    MERGED = "merged"
    LINKED = "linked"
    SELF_SOLVED = "self_solved"


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: str
    new: str


@dataclass(frozen=True)
class Attachment:
    name: str
    content_type: str
    size_bytes: int
    url: str


@dataclass(frozen=True)
class Comment:
    id: str
    author: Actor
    body: str
    internal: bool
    attachments: tuple[Attachment, ...]
    created_at: datetime


@dataclass(frozen=True)
class HistoryEntry:
    """One change as the ticket's history keeps it."""

    at: datetime
    actor: Actor
    action: str
    changes: tuple[FieldChange, ...]
    event_id: str
    version: int
    # Why, when the change says (e.g. the routing rules behind an assignment).
    reason: str = ""


@dataclass(frozen=True)
class Change:
    """A ticket after one command, and what happened to it (in order)."""

    before: Ticket
    ticket: Ticket
    actor: Actor
    changes: tuple[FieldChange, ...] = ()
    actions: tuple[Action, ...] = ()
    comment: Comment | None = None
    reason: str = ""
    link: Link | None = None

    @property
    def is_noop(self) -> bool:
        return not self.actions


@dataclass(frozen=True)
class TicketPatch:
    """New values for the fields named in a mask, as a channel received them."""

    status: str = ""
    priority: str = ""
    category: str = ""
    tags: tuple[str, ...] = ()
    team: str = ""
    custom_fields: dict[str, str] = field(default_factory=dict)


def check_actor(actor: Actor, path: str = "actor") -> None:
    if not actor.id.strip():
        raise InvalidArgument([FieldViolation(f"{path}.id", "is required")])


def move_status(ticket: Ticket, to: Status, now: datetime) -> tuple[Ticket, tuple[Action, ...]]:
    """The ticket in its new status and the actions that makes; refuses illegal moves."""
    if to == ticket.status:
        return ticket, ()
    if to not in TRANSITIONS[ticket.status]:
        raise FailedPrecondition(
            f"ticket {ticket.number} cannot move from {ticket.status.value} to {to.value}"
        )
    actions = [Action.STATUS_CHANGED]
    moved = replace(ticket, status=to)
    if ticket.status == Status.RESOLVED and to == Status.OPEN:
        moved = replace(moved, reopen_count=ticket.reopen_count + 1, resolved_at=None)
        actions.append(Action.REOPENED)
    if to == Status.RESOLVED:
        moved = replace(moved, resolved_at=now)
        actions.append(Action.RESOLVED)
    if to == Status.CLOSED:
        moved = replace(moved, closed_at=now)
        actions.append(Action.CLOSED)
    return moved, tuple(actions)


def _text_value(value: Any) -> str:
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    if isinstance(value, StrEnum):
        return value.value
    return "" if value is None else str(value)


def _validate_team(team: str, path: str) -> str:
    value = team.strip().lower()
    if value and not _TEAM.fullmatch(value):
        raise InvalidArgument(
            [
                FieldViolation(
                    path, "must be lowercase letters, digits, '-', '_' or '.' (at most 100)"
                )
            ]
        )
    return value


def update_ticket(
    ticket: Ticket, patch: TicketPatch, mask: list[str], actor: Actor, now: datetime
) -> Change:
    """Applies the masked fields of a patch; every value is checked as on creation."""
    check_actor(actor)
    if not mask:
        raise InvalidArgument([FieldViolation("update_mask", "names no field to change")])
    unknown = [path for path in mask if path not in UPDATABLE_FIELDS]
    if unknown:
        allowed = ", ".join(sorted(UPDATABLE_FIELDS))
        raise InvalidArgument(
            [FieldViolation("update_mask", f"cannot change {', '.join(unknown)}; only {allowed}")]
        )
    if ticket.status == Status.CLOSED:
        raise FailedPrecondition(f"ticket {ticket.number} is closed and cannot change")
    for name, value in (("priority", patch.priority), ("category", patch.category)):
        if name in mask and not value.strip():
            raise InvalidArgument(
                [FieldViolation(f"ticket.{name}", "is required when in the mask")]
            )
    # Reuse creation's checks for values; the draft carries only what the mask names, and
    # its field paths are named as in this request (ticket.<field>).
    try:
        checked = validate_new_ticket(
            TicketDraft(
                subject=ticket.subject,
                description=ticket.description,
                requester_email=ticket.requester.email,
                priority=patch.priority if "priority" in mask else ticket.priority.value,
                category=patch.category if "category" in mask else ticket.category.value,
                tags=patch.tags if "tags" in mask else ticket.tags,
                custom_fields=(
                    patch.custom_fields if "custom_fields" in mask else ticket.custom_fields
                ),
            )
        )
    except InvalidArgument as error:
        raise InvalidArgument(
            [FieldViolation(f"ticket.{v.field}", v.description) for v in error.violations]
        ) from None
    updated = replace(
        ticket,
        priority=Priority(checked.priority),
        category=Category(checked.category),
        tags=checked.tags,
        custom_fields=checked.custom_fields,
        team=_validate_team(patch.team, "ticket.team") if "team" in mask else ticket.team,
    )
    actions: tuple[Action, ...] = ()
    if "status" in mask:
        try:
            to = Status(patch.status.strip().lower())
        except ValueError:
            allowed = ", ".join(s.value for s in Status)
            raise InvalidArgument(
                [FieldViolation("ticket.status", f"must be one of {allowed}; got {patch.status!r}")]
            ) from None
        if to == Status.CLOSED and ticket.review_required and actor.role == Role.SYSTEM:
            raise FailedPrecondition(
                f"ticket {ticket.number} has a bad rating waiting for review; "
                "an agent must close it"
            )
        updated, actions = move_status(updated, to, now)
        if actions and to in (Status.CLOSED, Status.OPEN) and actor.role == Role.AGENT:
            updated = replace(updated, review_required=False)  # a person looked at it
    changes = _field_changes(ticket, updated)
    if [c for c in changes if c.field != "status"]:
        actions = (Action.UPDATED, *actions)
    return _finish(ticket, updated, actor, changes, actions, now)


def _field_changes(before: Ticket, after: Ticket) -> tuple[FieldChange, ...]:
    changes: list[FieldChange] = []
    for name in ("status", "priority", "category", "tags", "team", "tier", "assignee_id"):
        old, new = getattr(before, name), getattr(after, name)
        if old != new:
            changes.append(FieldChange(name, _text_value(old), _text_value(new)))
    for key in sorted(before.custom_fields.keys() | after.custom_fields.keys()):
        old_value = before.custom_fields.get(key, "")
        new_value = after.custom_fields.get(key, "")
        if old_value != new_value:
            changes.append(FieldChange(f"custom_fields.{key}", old_value, new_value))
    return tuple(changes)


def _finish(
    before: Ticket,
    after: Ticket,
    actor: Actor,
    changes: tuple[FieldChange, ...],
    actions: tuple[Action, ...],
    now: datetime,
    *,
    comment: Comment | None = None,
    reason: str = "",
    link: Link | None = None,
) -> Change:
    if not actions:
        return Change(before=before, ticket=before, actor=actor)
    done = replace(after, version=before.version + 1, updated_at=now)
    return Change(before, done, actor, changes, actions, comment, reason, link)


def _attachments(raw: list[Attachment]) -> tuple[Attachment, ...]:
    problems: list[FieldViolation] = []
    if len(raw) > MAX_ATTACHMENTS:
        problems.append(FieldViolation("attachments", f"at most {MAX_ATTACHMENTS}; got {len(raw)}"))
    for i, a in enumerate(raw[:MAX_ATTACHMENTS]):
        path = f"attachments[{i}]"
        if not a.name.strip() or len(a.name) > 255:
            problems.append(FieldViolation(f"{path}.name", "is required, at most 255 characters"))
        if not _CONTENT_TYPE.fullmatch(a.content_type):
            problems.append(
                FieldViolation(f"{path}.content_type", f"is not a MIME type: {a.content_type!r}")
            )
        if a.size_bytes < 0 or a.size_bytes > MAX_ATTACHMENT_BYTES:
            problems.append(
                FieldViolation(f"{path}.size_bytes", f"must be 0 to {MAX_ATTACHMENT_BYTES} bytes")
            )
        if not _URL.fullmatch(a.url) or len(a.url) > 2000:
            problems.append(FieldViolation(f"{path}.url", "must be an http(s) URL"))
    if problems:
        raise InvalidArgument(problems)
    return tuple(raw)


def comment_id_for(ticket_id: str, idempotency_key: str) -> str:
    """The id of the comment an idempotency key adds to a ticket: the same on every retry."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"comment:{ticket_id}:{idempotency_key}"))


def add_comment(
    ticket: Ticket,
    author: Actor,
    body: str,
    internal: bool,
    attachments: list[Attachment],
    now: datetime,
    idempotency_key: str = "",
) -> Change:
    """A reply or note; the first public agent reply is the first response, a requester's
    reply to a pending or resolved ticket brings it back to open. A key seen before on this
    ticket changes nothing (the comment it added is `comment_id_for` the key)."""
    key = idempotency_key.strip()
    if key and key in ticket.comment_keys:
        return Change(before=ticket, ticket=ticket, actor=author)
    check_actor(author, "author")
    text = body.strip()
    problems: list[FieldViolation] = []
    if len(key) > MAX_IDEMPOTENCY_KEY:
        problems.append(
            FieldViolation("idempotency_key", f"must be at most {MAX_IDEMPOTENCY_KEY} characters")
        )
    if not text:
        problems.append(FieldViolation("body", "is required"))
    elif CONTROL_CHARACTERS.search(text):
        problems.append(FieldViolation("body", "must not contain control characters"))
    elif len(text) > MAX_DESCRIPTION:
        problems.append(FieldViolation("body", f"must be at most {MAX_DESCRIPTION} characters"))
    if internal and author.role == Role.REQUESTER:
        problems.append(FieldViolation("internal", "requesters cannot write internal notes"))
    if problems:
        raise InvalidArgument(problems)
    checked = _attachments(attachments)
    if ticket.status == Status.CLOSED:
        raise FailedPrecondition(
            f"ticket {ticket.number} is closed; open a new ticket to follow up"
        )
    comment_id = comment_id_for(ticket.id, key) if key else str(uuid.uuid4())
    comment = Comment(comment_id, author, text, internal, checked, now)
    updated = ticket
    if key:
        updated = replace(updated, comment_keys=(*ticket.comment_keys, key)[-MAX_COMMENT_KEYS:])
    actions: tuple[Action, ...] = (Action.COMMENTED,)
    if author.role == Role.AGENT and not internal and ticket.first_response_at is None:
        updated = replace(updated, first_response_at=now)
    if author.role == Role.REQUESTER and ticket.status in (Status.PENDING, Status.RESOLVED):
        updated, moved = move_status(updated, Status.OPEN, now)
        actions = (*actions, *moved)
    changes = _field_changes(ticket, updated)
    return _finish(ticket, updated, author, changes, actions, now, comment=comment)


def assign(
    ticket: Ticket,
    *,
    team: str,
    tier: str,
    agent_id: str,
    idempotency_key: str,
    reason: str,
    actor: Actor,
    now: datetime,
) -> Change:
    """Sets team, tier and agent; a new ticket becomes open. A repeated key changes nothing."""
    check_actor(actor)
    if idempotency_key and idempotency_key in ticket.assignment_keys:
        return Change(before=ticket, ticket=ticket, actor=actor)
    problems: list[FieldViolation] = []
    team_value = _validate_team(team, "team")
    tier_value = tier.strip().upper()
    if tier_value and tier_value not in TIERS:
        problems.append(FieldViolation("tier", f"must be one of {', '.join(TIERS)}; got {tier!r}"))
    agent = agent_id.strip()
    if not team_value and not agent:
        problems.append(FieldViolation("team", "a team or an agent_id is required"))
    if len(agent) > 200:
        problems.append(FieldViolation("agent_id", "must be at most 200 characters"))
    if len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
        problems.append(
            FieldViolation("idempotency_key", f"must be at most {MAX_IDEMPOTENCY_KEY} characters")
        )
    if problems:
        raise InvalidArgument(problems)
    if ticket.status in (Status.RESOLVED, Status.CLOSED):
        raise FailedPrecondition(
            f"ticket {ticket.number} is {ticket.status.value}; reopen it before assigning"
        )
    updated = replace(
        ticket,
        team=team_value or ticket.team,
        tier=tier_value or ticket.tier,
        assignee_id=agent,
    )
    actions: tuple[Action, ...] = ()
    changes = _field_changes(ticket, updated)
    if changes:
        actions = (Action.ASSIGNED,)
        if ticket.status == Status.NEW:
            updated, moved = move_status(updated, Status.OPEN, now)
            actions = (*actions, *moved)
            changes = _field_changes(ticket, updated)
    if actions and idempotency_key:
        keys = (*ticket.assignment_keys, idempotency_key)[-MAX_ASSIGNMENT_KEYS:]
        updated = replace(updated, assignment_keys=keys)
    return _finish(ticket, updated, actor, changes, actions, now, reason=reason.strip()[:500])


MAX_RATING_COMMENT = 2_000
LINK_KINDS = ("duplicate_of", "related_to")
REVERSE_LINK = {
    "duplicate_of": "has_duplicate",
    "has_duplicate": "duplicate_of",
    "related_to": "related_to",
    "merged_into": "merged_from",
    "merged_from": "merged_into",
}
BAD_SCORE = 2


def rate(ticket: Ticket, actor: Actor, score: int, comment: str, now: datetime) -> Change:
    """The requester's satisfaction with a resolved ticket; a bad score asks for review."""
    check_actor(actor)
    problems: list[FieldViolation] = []
    if not 1 <= score <= 5:
        problems.append(FieldViolation("score", f"must be 1 to 5; got {score}"))
    text = comment.strip()
    if len(text) > MAX_RATING_COMMENT:
        problems.append(
            FieldViolation("comment", f"must be at most {MAX_RATING_COMMENT} characters")
        )
    if problems:
        raise InvalidArgument(problems)
    if actor.role != Role.REQUESTER or actor.id.lower() != ticket.requester.email:
        raise PermissionDenied(f"only the requester of {ticket.number} may rate it")
    if ticket.status not in (Status.RESOLVED, Status.CLOSED):
        raise FailedPrecondition(
            f"ticket {ticket.number} is {ticket.status.value}; it can be rated once resolved"
        )
    rated = replace(
        ticket,
        rating=Rating(score=score, comment=text, rated_at=now),
        review_required=score <= BAD_SCORE,
    )
    change = FieldChange(
        "rating",
        str(ticket.rating.score) if ticket.rating else "",
        str(score),
    )
    return _finish(ticket, rated, actor, (change,), (Action.RATED,), now)


def solve_with_article(ticket: Ticket, actor: Actor, article_id: str, now: datetime) -> Change:
    """The requester says a suggested article solved the problem: the ticket closes as
    self-solved. Saying it again about the same article changes nothing."""
    check_actor(actor)
    chosen = article_id.strip()
    if not chosen:
        raise InvalidArgument([FieldViolation("article_id", "is required")])
    if actor.role != Role.REQUESTER or actor.id.lower() != ticket.requester.email:
        raise PermissionDenied(f"only the requester of {ticket.number} may say it is solved")
    if ticket.solved_by_article_id == chosen:
        return Change(before=ticket, ticket=ticket, actor=actor)
    if chosen not in {s.article_id for s in ticket.suggestions}:
        raise InvalidArgument(
            [FieldViolation("article_id", f"is not an article suggested for {ticket.number}")]
        )
    if ticket.status == Status.CLOSED:
        raise FailedPrecondition(f"ticket {ticket.number} is closed already")
    solved = replace(ticket, solved_by_article_id=chosen)
    closed, moved = move_status(solved, Status.CLOSED, now)
    changes = (*_field_changes(ticket, closed), FieldChange("solved_by_article_id", "", chosen))
    return _finish(ticket, closed, actor, changes, (Action.SELF_SOLVED, *moved), now)


def _with_link(ticket: Ticket, link: Link) -> Ticket:
    return replace(ticket, links=(*ticket.links, link))


def _has_link(ticket: Ticket, kind: str, other: Ticket) -> bool:
    return any(e.kind == kind and e.ticket_id == other.id for e in ticket.links)


def check_link_kind(kind: str) -> str:
    """The link kind a caller may ask for (the reverse kinds are the other side's)."""
    value = kind.strip().lower()
    if value not in LINK_KINDS:
        raise InvalidArgument(
            [FieldViolation("kind", f"must be one of {', '.join(LINK_KINDS)}; got {kind!r}")]
        )
    return value


def link(ticket: Ticket, other: Ticket, kind: str, actor: Actor, now: datetime) -> Change:
    """Links a ticket to another (this side); linking again changes nothing."""
    check_actor(actor)
    if kind not in REVERSE_LINK:
        raise InvalidArgument([FieldViolation("kind", f"unknown link kind {kind!r}")])
    if ticket.id == other.id:
        raise InvalidArgument([FieldViolation("other_id", "a ticket cannot link to itself")])
    if _has_link(ticket, kind, other):
        return Change(before=ticket, ticket=ticket, actor=actor)
    new_link = Link(kind=kind, ticket_number=other.number, ticket_id=other.id)
    linked = _with_link(ticket, new_link)
    change = FieldChange("links", "", f"{kind} {other.number}")
    return _finish(ticket, linked, actor, (change,), (Action.LINKED,), now, link=new_link)


def check_merge(source: Ticket, target: Ticket) -> None:
    """Refuses a merge that can never happen; a merge already done passes (repeats are fine)."""
    if source.id == target.id:
        raise InvalidArgument([FieldViolation("target_id", "a ticket cannot merge into itself")])
    if source.status == Status.CLOSED and source.merged_into != target.number:
        raise FailedPrecondition(f"ticket {source.number} is closed and cannot be merged")


def merge_into(source: Ticket, target: Ticket, actor: Actor, now: datetime) -> Change:
    """The source's side of a merge: closed, pointing at the target. Repeats change nothing."""
    check_actor(actor)
    check_merge(source, target)
    if source.merged_into == target.number:
        return Change(before=source, ticket=source, actor=actor)
    new_link = Link(kind="merged_into", ticket_number=target.number, ticket_id=target.id)
    merged = replace(_with_link(source, new_link), merged_into=target.number)
    closed, moved = move_status(merged, Status.CLOSED, now)
    changes = (*_field_changes(source, closed), FieldChange("merged_into", "", target.number))
    return _finish(source, closed, actor, changes, (Action.MERGED, *moved), now, link=new_link)


def receive_merge(target: Ticket, source: Ticket, actor: Actor, now: datetime) -> Change:
    """The target's side of a merge: a link and an internal note with the source's request."""
    check_actor(actor)
    if _has_link(target, "merged_from", source):
        return Change(before=target, ticket=target, actor=actor)
    if target.status == Status.CLOSED:
        raise FailedPrecondition(f"ticket {target.number} is closed; merge into an open ticket")
    new_link = Link(kind="merged_from", ticket_number=source.number, ticket_id=source.id)
    note = Comment(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"merge:{source.id}:{target.id}")),
        author=actor,
        body=(
            f"{source.number} was merged into this ticket.\n\n"
            f"{source.subject}\n\n{source.description}"
        ),
        internal=True,
        attachments=(),
        created_at=now,
    )
    changes = (FieldChange("links", "", f"merged_from {source.number}"),)
    return _finish(
        target,
        _with_link(target, new_link),
        actor,
        changes,
        (Action.LINKED, Action.COMMENTED),
        now,
        comment=note,
        link=new_link,
    )
