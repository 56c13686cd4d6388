"""The ticket lifecycle's pure rules: status moves, updates by mask, comments, assignment."""

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpdesk.core.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from helpdesk.intake.commands import change_records
from helpdesk.intake.domain import (
    MAX_DESCRIPTION,
    ArticleSuggestion,
    Category,
    Channel,
    Priority,
    Requester,
    Status,
    Ticket,
)
from helpdesk.intake.lifecycle import (
    MAX_ASSIGNMENT_KEYS,
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS,
    MAX_COMMENT_KEYS,
    MAX_IDEMPOTENCY_KEY,
    TRANSITIONS,
    UPDATABLE_FIELDS,
    Action,
    Actor,
    Attachment,
    Change,
    FieldChange,
    Role,
    TicketPatch,
    add_comment,
    assign,
    comment_id_for,
    move_status,
    solve_with_article,
    update_ticket,
)

CREATED = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
NOW = datetime(2024, 5, 2, 14, 0, tzinfo=UTC)

AGENT = Actor("agent-7", Role.AGENT)
REQUESTER = Actor("ann@example.com", Role.REQUESTER)
ROUTER = Actor("routing", Role.SYSTEM)

ACTIVE = (Status.NEW, Status.OPEN, Status.PENDING, Status.ON_HOLD)

# The lifecycle as the help desk defines it, written out here rather than read from the code.
LEGAL: dict[Status, set[Status]] = {
    Status.NEW: {Status.OPEN, Status.PENDING, Status.ON_HOLD, Status.RESOLVED, Status.CLOSED},
    Status.OPEN: {Status.PENDING, Status.ON_HOLD, Status.RESOLVED, Status.CLOSED},
    Status.PENDING: {Status.OPEN, Status.ON_HOLD, Status.RESOLVED, Status.CLOSED},
    Status.ON_HOLD: {Status.OPEN, Status.PENDING, Status.RESOLVED, Status.CLOSED},
    Status.RESOLVED: {Status.OPEN, Status.CLOSED},
    Status.CLOSED: set(),
}
LEGAL_PAIRS = [(a, b) for a in Status for b in Status if b in LEGAL[a]]
ILLEGAL_PAIRS = [(a, b) for a in Status for b in Status if a != b and b not in LEGAL[a]]


def make_ticket(**overrides: Any) -> Ticket:
    """An open ticket at version 3, with the given fields changed."""
    ticket = Ticket(
        id="6632f1c2-a1b2-4c3d-8e5f-60718293a4b5",
        number="HD-1042",
        sequence=1042,
        request_id="req-1",
        subject="VPN is down",
        description="Connection refused since 9:00.",
        requester=Requester(email="ann@example.com", name="Ann"),
        priority=Priority.NORMAL,
        category=Category.INCIDENT,
        channel=Channel.WEB,
        status=Status.OPEN,
        tags=("vpn",),
        custom_fields={"office": "berlin"},
        created_at=CREATED,
        updated_at=CREATED,
        version=3,
    )
    return replace(ticket, **overrides)


def refused(call: Callable[[], object]) -> dict[str, str]:
    """The violations, by field, of a call that must be refused as invalid."""
    with pytest.raises(InvalidArgument) as caught:
        call()
    return {v.field: v.description for v in caught.value.violations}


def update(
    ticket: Ticket, mask: list[str], actor: Actor = AGENT, now: datetime = NOW, **patch: Any
) -> Change:
    return update_ticket(ticket, TicketPatch(**patch), mask, actor, now)


def comment(
    ticket: Ticket,
    body: str = "Please restart the client.",
    *,
    author: Actor = AGENT,
    internal: bool = False,
    attachments: tuple[Attachment, ...] = (),
    now: datetime = NOW,
    key: str = "",
) -> Change:
    return add_comment(ticket, author, body, internal, list(attachments), now, key)


def route(
    ticket: Ticket,
    *,
    team: str = "network",
    tier: str = "",
    agent_id: str = "",
    key: str = "",
    reason: str = "",
    actor: Actor = ROUTER,
    now: datetime = NOW,
) -> Change:
    return assign(
        ticket,
        team=team,
        tier=tier,
        agent_id=agent_id,
        idempotency_key=key,
        reason=reason,
        actor=actor,
        now=now,
    )


def attachment(**overrides: Any) -> Attachment:
    fields: dict[str, Any] = {
        "name": "screenshot.png",
        "content_type": "image/png",
        "size_bytes": 48_213,
        "url": "https://files.example.com/a/screenshot.png",
    }
    fields.update(overrides)
    return Attachment(**fields)


def assert_noop(change: Change, ticket: Ticket) -> None:
    assert change.is_noop
    assert change.ticket is ticket
    assert change.before is ticket
    assert change.changes == ()
    assert change.actions == ()


def assert_finished(change: Change, before: Ticket, now: datetime = NOW) -> None:
    """A change that happened: one version up, stamped now, the old ticket kept as before."""
    assert not change.is_noop
    assert change.before is before
    assert change.ticket.version == before.version + 1
    assert change.ticket.updated_at == now


# --- move_status: the transitions table ---


def test_transitions_table_is_the_documented_lifecycle() -> None:
    assert {status: set(targets) for status, targets in TRANSITIONS.items()} == LEGAL


@pytest.mark.parametrize(("start", "to"), LEGAL_PAIRS)
def test_every_legal_move(start: Status, to: Status) -> None:
    ticket = make_ticket(status=start)

    moved, actions = move_status(ticket, to, NOW)

    assert moved.status is to
    assert actions[0] is Action.STATUS_CHANGED
    # Moving decides the status only; the version and stamp come when the change is finished.
    assert moved.version == ticket.version
    assert moved.updated_at == ticket.updated_at


@pytest.mark.parametrize(("start", "to"), ILLEGAL_PAIRS)
def test_every_illegal_move_is_refused_naming_both_states(start: Status, to: Status) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        move_status(make_ticket(status=start), to, NOW)

    assert caught.value.message == f"ticket HD-1042 cannot move from {start.value} to {to.value}"


def test_there_are_nineteen_legal_and_eleven_illegal_moves() -> None:
    # Guards the parametrization above: 6 x 6 pairs less the 6 same-status ones.
    assert (len(LEGAL_PAIRS), len(ILLEGAL_PAIRS)) == (19, 11)


@pytest.mark.parametrize("status", list(Status))
def test_same_status_is_no_move(status: Status) -> None:
    ticket = make_ticket(status=status)

    assert move_status(ticket, status, NOW) == (ticket, ())


@pytest.mark.parametrize("start", ACTIVE)
def test_resolving_stamps_resolved_at(start: Status) -> None:
    moved, actions = move_status(make_ticket(status=start), Status.RESOLVED, NOW)

    assert actions == (Action.STATUS_CHANGED, Action.RESOLVED)
    assert moved.resolved_at == NOW
    assert moved.closed_at is None


@pytest.mark.parametrize("start", [*ACTIVE, Status.RESOLVED])
def test_closing_stamps_closed_at(start: Status) -> None:
    moved, actions = move_status(make_ticket(status=start), Status.CLOSED, NOW)

    assert actions == (Action.STATUS_CHANGED, Action.CLOSED)
    assert moved.closed_at == NOW


def test_closing_a_resolved_ticket_keeps_when_it_was_resolved() -> None:
    moved, _ = move_status(
        make_ticket(status=Status.RESOLVED, resolved_at=CREATED), Status.CLOSED, NOW
    )

    assert moved.resolved_at == CREATED


def test_reopen_counts_and_clears_resolved_at() -> None:
    ticket = make_ticket(status=Status.RESOLVED, resolved_at=CREATED, reopen_count=2)

    moved, actions = move_status(ticket, Status.OPEN, NOW)

    assert actions == (Action.STATUS_CHANGED, Action.REOPENED)
    assert moved.status is Status.OPEN
    assert moved.reopen_count == 3
    assert moved.resolved_at is None
    assert moved.closed_at is None


@pytest.mark.parametrize(
    ("start", "to"), [(a, b) for a, b in LEGAL_PAIRS if a is not Status.RESOLVED]
)
def test_only_leaving_resolved_is_a_reopen(start: Status, to: Status) -> None:
    moved, actions = move_status(make_ticket(status=start, reopen_count=1), to, NOW)

    assert Action.REOPENED not in actions
    assert moved.reopen_count == 1


def test_resolving_again_after_a_reopen_stamps_the_new_time() -> None:
    reopened, _ = move_status(
        make_ticket(status=Status.RESOLVED, resolved_at=CREATED), Status.OPEN, NOW
    )
    later = NOW + timedelta(hours=2)

    resolved, _ = move_status(reopened, Status.RESOLVED, later)

    assert resolved.resolved_at == later
    assert resolved.reopen_count == 1


# --- update_ticket: the mask ---


def test_empty_mask_is_refused() -> None:
    assert refused(lambda: update(make_ticket(), [], priority="high")) == {
        "update_mask": "names no field to change"
    }


@pytest.mark.parametrize(
    "path",
    ["subject", "description", "requester", "assignee_id", "tier", "version", "Priority", ""],
)
def test_unknown_mask_path_is_refused_with_the_allowed_ones(path: str) -> None:
    assert refused(lambda: update(make_ticket(), ["priority", path], priority="high")) == {
        "update_mask": (
            f"cannot change {path}; only category, custom_fields, priority, status, tags, team"
        )
    }


def test_every_unknown_path_is_named() -> None:
    violations = refused(lambda: update(make_ticket(), ["subject", "tags", "ticket.priority"]))

    assert violations["update_mask"].startswith("cannot change subject, ticket.priority;")


def test_updatable_fields() -> None:
    assert {"status", "priority", "category", "tags", "team", "custom_fields"} == UPDATABLE_FIELDS


@pytest.mark.parametrize("path", sorted(UPDATABLE_FIELDS))
def test_closed_ticket_cannot_change(path: str) -> None:
    closed = make_ticket(status=Status.CLOSED, closed_at=CREATED)

    with pytest.raises(FailedPrecondition) as caught:
        update(closed, [path], status="open", priority="high", category="question", team="x")

    assert caught.value.message == "ticket HD-1042 is closed and cannot change"


@pytest.mark.parametrize("actor_id", ["", "   "])
def test_update_needs_an_actor(actor_id: str) -> None:
    actor = Actor(actor_id, Role.AGENT)

    assert refused(lambda: update(make_ticket(), ["priority"], actor, priority="high")) == {
        "actor.id": "is required"
    }


# --- update_ticket: each field changes only when masked ---

EVERYTHING = TicketPatch(
    status="pending",
    priority="urgent",
    category="feedback",
    tags=("printer",),
    team="facilities",
    custom_fields={"floor": "3"},
)
PATCHED = {
    "status": Status.PENDING,
    "priority": Priority.URGENT,
    "category": Category.FEEDBACK,
    "tags": ("printer",),
    "team": "facilities",
    "custom_fields": {"floor": "3"},
}


@pytest.mark.parametrize("path", sorted(UPDATABLE_FIELDS))
def test_only_the_masked_field_changes(path: str) -> None:
    ticket = make_ticket()

    change = update_ticket(ticket, EVERYTHING, [path], AGENT, NOW)

    for name, value in PATCHED.items():
        assert getattr(change.ticket, name) == (value if name == path else getattr(ticket, name))
    assert {c.field.split(".")[0] for c in change.changes} == {path}
    assert_finished(change, ticket)


def test_every_masked_field_changes_together() -> None:
    change = update_ticket(make_ticket(), EVERYTHING, sorted(UPDATABLE_FIELDS), AGENT, NOW)

    assert {name: getattr(change.ticket, name) for name in PATCHED} == PATCHED


def test_values_are_normalised_as_on_creation() -> None:
    change = update(
        make_ticket(),
        ["status", "priority", "category", "tags", "team"],
        status=" Pending ",
        priority=" HIGH ",
        category="Service_Request",
        tags=(" VPN ", "Network", "vpn"),
        team="  Network-EU ",
    )

    ticket = change.ticket
    assert ticket.status is Status.PENDING
    assert ticket.priority is Priority.HIGH
    assert ticket.category is Category.SERVICE_REQUEST
    assert ticket.tags == ("vpn", "network")
    assert ticket.team == "network-eu"


def test_bad_values_outside_the_mask_are_ignored() -> None:
    change = update(make_ticket(), ["tags"], priority="critical", team="no such team", tags=("a",))

    assert change.ticket.priority is Priority.NORMAL
    assert change.ticket.tags == ("a",)


def test_bad_tags_are_named_by_index() -> None:
    violations = refused(lambda: update(make_ticket(), ["tags"], tags=("ok", "has space")))

    [(field, description)] = violations.items()
    # The path prefix ("tags" or "ticket.tags") is not pinned here; the index is.
    assert field.endswith("tags[1]")
    assert description == "must be 1-50 letters, digits or - _ . : /; got 'has space'"


def test_too_many_tags_are_refused() -> None:
    tags = tuple(f"t{i}" for i in range(21))

    [(field, description)] = refused(lambda: update(make_ticket(), ["tags"], tags=tags)).items()

    assert field.endswith("tags")
    assert description == "at most 20 tags; got 21"


def test_bad_custom_fields_are_named_by_key() -> None:
    violations = refused(
        lambda: update(
            make_ticket(), ["custom_fields"], custom_fields={"Office": "x", "note": "v" * 1001}
        )
    )

    assert {field.rsplit(".", 1)[-1] for field in violations} == {"Office", "note"}


def test_unknown_priority_is_refused() -> None:
    [(field, description)] = refused(
        lambda: update(make_ticket(), ["priority"], priority="critical")
    ).items()

    assert field.endswith("priority")
    assert description == "must be one of low, normal, high, urgent; got 'critical'"


@pytest.mark.parametrize("path", ["priority", "category"])
def test_masked_enum_must_have_a_value(path: str) -> None:
    assert refused(lambda: update(make_ticket(), [path])) == {
        f"ticket.{path}": "is required when in the mask"
    }


@pytest.mark.parametrize("status", ["", "archived", "<9>"])
def test_unknown_status_is_refused_with_the_allowed_ones(status: str) -> None:
    assert refused(lambda: update(make_ticket(), ["status"], status=status)) == {
        "ticket.status": (
            f"must be one of new, open, pending, on_hold, resolved, closed; got {status!r}"
        )
    }


def test_illegal_status_through_an_update_is_refused() -> None:
    with pytest.raises(FailedPrecondition, match="cannot move from resolved to pending"):
        update(
            make_ticket(status=Status.RESOLVED),
            ["status", "priority"],
            status="pending",
            priority="low",
        )


@pytest.mark.parametrize("team", ["net work", "-network", "ops!", "a" * 101, "équipe"])
def test_bad_team_is_refused(team: str) -> None:
    assert refused(lambda: update(make_ticket(), ["team"], team=team)) == {
        "ticket.team": "must be lowercase letters, digits, '-', '_' or '.' (at most 100)"
    }


@pytest.mark.parametrize("team", ["a", "net-eu_2.x", "a" * 100])
def test_team_accepted(team: str) -> None:
    assert update(make_ticket(), ["team"], team=team).ticket.team == team


def test_masked_empty_team_clears_it() -> None:
    change = update(make_ticket(team="network"), ["team"], team="")

    assert change.ticket.team == ""
    assert change.changes == (FieldChange("team", "network", ""),)


# --- update_ticket: what happened ---


def test_field_changes_in_field_order_with_custom_fields_sorted_by_key() -> None:
    ticket = make_ticket(custom_fields={"zone": "eu", "office": "berlin"})

    change = update(
        ticket,
        ["status", "priority", "tags", "team", "custom_fields"],
        status="pending",
        priority="urgent",
        tags=("vpn", "printer"),
        team="facilities",
        custom_fields={"office": "paris", "floor": "3"},
    )

    assert change.changes == (
        FieldChange("status", "open", "pending"),
        FieldChange("priority", "normal", "urgent"),
        FieldChange("tags", "vpn", "vpn,printer"),
        FieldChange("team", "", "facilities"),
        FieldChange("custom_fields.floor", "", "3"),
        FieldChange("custom_fields.office", "berlin", "paris"),
        FieldChange("custom_fields.zone", "eu", ""),
    )


@pytest.mark.parametrize(
    ("mask", "patch", "actions"),
    [
        (["priority"], {"priority": "high"}, (Action.UPDATED,)),
        (["status"], {"status": "pending"}, (Action.STATUS_CHANGED,)),
        (
            ["status", "priority"],
            {"status": "resolved", "priority": "high"},
            (Action.UPDATED, Action.STATUS_CHANGED, Action.RESOLVED),
        ),
        (
            ["tags", "status"],
            {"status": "closed", "tags": ("done",)},
            (Action.UPDATED, Action.STATUS_CHANGED, Action.CLOSED),
        ),
        # A status in the mask that is already the ticket's adds no status action.
        (["status", "priority"], {"status": "open", "priority": "high"}, (Action.UPDATED,)),
    ],
)
def test_actions_updated_first_then_the_status_ones(
    mask: list[str], patch: dict[str, Any], actions: tuple[Action, ...]
) -> None:
    ticket = make_ticket()

    change = update(ticket, mask, **patch)

    assert change.actions == actions
    assert change.actor == AGENT
    assert_finished(change, ticket)


def test_reopening_through_an_update() -> None:
    ticket = make_ticket(status=Status.RESOLVED, resolved_at=CREATED)

    change = update(ticket, ["status"], status="open")

    assert change.actions == (Action.STATUS_CHANGED, Action.REOPENED)
    assert change.changes == (FieldChange("status", "resolved", "open"),)
    assert change.ticket.reopen_count == 1
    assert change.ticket.resolved_at is None


def test_resolving_through_an_update_stamps_it() -> None:
    change = update(make_ticket(), ["status"], status="resolved")

    assert change.ticket.resolved_at == NOW
    assert change.ticket.closed_at is None


def test_update_to_equal_values_changes_nothing() -> None:
    ticket = make_ticket(team="network", tags=("vpn", "network"))

    change = update(
        ticket,
        sorted(UPDATABLE_FIELDS),
        status="OPEN",
        priority="normal",
        category="incident",
        tags=("VPN", "network", "vpn"),
        team=" Network ",
        custom_fields={"office": "berlin"},
    )

    assert_noop(change, ticket)
    assert change.ticket.version == 3
    assert change.ticket.updated_at == CREATED


def test_reordering_tags_is_a_change() -> None:
    change = update(make_ticket(tags=("vpn", "network")), ["tags"], tags=("network", "vpn"))

    assert change.changes == (FieldChange("tags", "vpn,network", "network,vpn"),)


# --- add_comment ---


def test_a_public_reply() -> None:
    ticket = make_ticket(first_response_at=CREATED)
    shot = attachment()

    change = comment(ticket, "  Please restart the client.\n", attachments=(shot,))

    assert change.actions == (Action.COMMENTED,)
    assert change.changes == ()
    assert_finished(change, ticket)
    note = change.comment
    assert note is not None
    assert uuid.UUID(note.id)
    assert (note.author, note.body, note.internal, note.attachments, note.created_at) == (
        AGENT,
        "Please restart the client.",
        False,
        (shot,),
        NOW,
    )


def test_each_comment_gets_its_own_id() -> None:
    first, second = comment(make_ticket()), comment(make_ticket())

    assert first.comment is not None
    assert second.comment is not None
    assert first.comment.id != second.comment.id


def test_a_keyed_comment_has_the_id_of_its_key_and_is_remembered() -> None:
    ticket = make_ticket()

    first = comment(ticket, key="slack:C1:1700000000.1")

    assert first.comment is not None
    assert first.comment.id == comment_id_for(ticket.id, "slack:C1:1700000000.1")
    assert first.ticket.comment_keys == ("slack:C1:1700000000.1",)
    assert first.changes == ()


def test_a_repeated_key_adds_nothing_even_with_another_body() -> None:
    once = comment(make_ticket(), key="mail-1").ticket

    again = comment(once, "Different text", key=" mail-1 ")

    assert_noop(again, once)


def test_only_the_latest_comment_keys_are_remembered() -> None:
    ticket = make_ticket(comment_keys=tuple(f"k{i}" for i in range(MAX_COMMENT_KEYS)))

    keys = comment(ticket, key="new").ticket.comment_keys

    assert len(keys) == MAX_COMMENT_KEYS
    assert keys[0] == "k1"
    assert keys[-1] == "new"


def test_an_overlong_comment_key_is_refused_by_name() -> None:
    assert refused(lambda: comment(make_ticket(), key="k" * (MAX_IDEMPOTENCY_KEY + 1))) == {
        "idempotency_key": f"must be at most {MAX_IDEMPOTENCY_KEY} characters"
    }


@pytest.mark.parametrize("body", ["", "   ", "\n\t"])
def test_comment_body_is_required(body: str) -> None:
    assert refused(lambda: comment(make_ticket(), body)) == {"body": "is required"}


def test_comment_body_limit_after_trimming() -> None:
    at_limit = comment(make_ticket(), "  " + "x" * MAX_DESCRIPTION + "  ")
    assert at_limit.comment is not None
    assert at_limit.comment.body == "x" * MAX_DESCRIPTION

    assert refused(lambda: comment(make_ticket(), "x" * (MAX_DESCRIPTION + 1))) == {
        "body": "must be at most 20000 characters"
    }


@pytest.mark.parametrize("author_id", ["", "  "])
def test_comment_needs_an_author(author_id: str) -> None:
    author = Actor(author_id, Role.AGENT)

    assert refused(lambda: comment(make_ticket(), author=author)) == {"author.id": "is required"}


def test_requester_cannot_write_internal_notes() -> None:
    assert refused(lambda: comment(make_ticket(), author=REQUESTER, internal=True)) == {
        "internal": "requesters cannot write internal notes"
    }
    # Both problems at once.
    assert set(refused(lambda: comment(make_ticket(), "", author=REQUESTER, internal=True))) == {
        "body",
        "internal",
    }


@pytest.mark.parametrize("author", [AGENT, ROUTER])
def test_agents_and_systems_write_internal_notes(author: Actor) -> None:
    change = comment(make_ticket(), author=author, internal=True)

    assert change.comment is not None
    assert change.comment.internal


@pytest.mark.parametrize(
    "item",
    [
        attachment(size_bytes=0),
        attachment(size_bytes=MAX_ATTACHMENT_BYTES),
        attachment(name="n" * 255),
        attachment(
            content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        ),
        attachment(content_type="IMAGE/PNG"),
        attachment(url="http://files.example.com/a"),
        attachment(url="HTTPS://FILES.EXAMPLE.COM/A?x=1#y"),
    ],
)
def test_attachment_accepted(item: Attachment) -> None:
    change = comment(make_ticket(), attachments=(item,))

    assert change.comment is not None
    assert change.comment.attachments == (item,)


@pytest.mark.parametrize(
    ("item", "field", "description"),
    [
        (attachment(name=""), "name", "is required, at most 255 characters"),
        (attachment(name="   "), "name", "is required, at most 255 characters"),
        (attachment(name="n" * 256), "name", "is required, at most 255 characters"),
        (attachment(content_type=""), "content_type", "is not a MIME type: ''"),
        (attachment(content_type="png"), "content_type", "is not a MIME type: 'png'"),
        (attachment(content_type="/png"), "content_type", "is not a MIME type: '/png'"),
        (
            attachment(content_type="text/plain; charset=utf-8"),
            "content_type",
            "is not a MIME type: 'text/plain; charset=utf-8'",
        ),
        (attachment(size_bytes=-1), "size_bytes", "must be 0 to 26214400 bytes"),
        (
            attachment(size_bytes=MAX_ATTACHMENT_BYTES + 1),
            "size_bytes",
            "must be 0 to 26214400 bytes",
        ),
        (attachment(url=""), "url", "must be an http(s) URL"),
        (attachment(url="ftp://files.example.com/a"), "url", "must be an http(s) URL"),
        (attachment(url="files.example.com/a"), "url", "must be an http(s) URL"),
        (attachment(url="https://"), "url", "must be an http(s) URL"),
        (attachment(url="https://files.example.com/a b"), "url", "must be an http(s) URL"),
        (attachment(url="javascript:alert(1)"), "url", "must be an http(s) URL"),
        (attachment(url="https://e.com/" + "a" * 2000), "url", "must be an http(s) URL"),
    ],
)
def test_bad_attachment_is_named_by_index_and_field(
    item: Attachment, field: str, description: str
) -> None:
    assert refused(lambda: comment(make_ticket(), attachments=(attachment(), item))) == {
        f"attachments[1].{field}": description
    }


def test_every_problem_of_an_attachment_is_reported() -> None:
    bad = Attachment(name="", content_type="png", size_bytes=-5, url="ftp://x")

    assert set(refused(lambda: comment(make_ticket(), attachments=(bad,)))) == {
        "attachments[0].name",
        "attachments[0].content_type",
        "attachments[0].size_bytes",
        "attachments[0].url",
    }


def test_attachment_count_limit() -> None:
    twenty = tuple(attachment(name=f"f{i}.png") for i in range(MAX_ATTACHMENTS))
    change = comment(make_ticket(), attachments=twenty)
    assert change.comment is not None
    assert len(change.comment.attachments) == MAX_ATTACHMENTS

    assert refused(lambda: comment(make_ticket(), attachments=(*twenty, attachment()))) == {
        "attachments": "at most 20; got 21"
    }


@pytest.mark.parametrize("author", [AGENT, REQUESTER, ROUTER])
def test_closed_ticket_takes_no_comment(author: Actor) -> None:
    closed = make_ticket(status=Status.CLOSED, closed_at=CREATED)

    with pytest.raises(FailedPrecondition) as caught:
        comment(closed, author=author)

    assert caught.value.message == "ticket HD-1042 is closed; open a new ticket to follow up"


def test_first_public_agent_reply_is_the_first_response() -> None:
    ticket = make_ticket()

    change = comment(ticket)

    assert change.ticket.first_response_at == NOW
    # The first response is a stamp, not a field change to report.
    assert change.actions == (Action.COMMENTED,)
    assert change.changes == ()


def test_a_second_reply_keeps_the_first_response() -> None:
    first = comment(make_ticket()).ticket

    second = comment(first, now=NOW + timedelta(hours=1))

    assert second.ticket.first_response_at == NOW


@pytest.mark.parametrize(
    ("author", "internal"), [(AGENT, True), (REQUESTER, False), (ROUTER, False)]
)
def test_other_comments_are_no_first_response(author: Actor, internal: bool) -> None:
    change = comment(make_ticket(), author=author, internal=internal)

    assert change.ticket.first_response_at is None


def test_requester_reply_brings_a_pending_ticket_back_to_open() -> None:
    ticket = make_ticket(status=Status.PENDING)

    change = comment(ticket, "It still fails.", author=REQUESTER)

    assert change.ticket.status is Status.OPEN
    assert change.actions == (Action.COMMENTED, Action.STATUS_CHANGED)
    assert change.changes == (FieldChange("status", "pending", "open"),)
    assert change.ticket.reopen_count == 0
    assert_finished(change, ticket)


def test_requester_reply_reopens_a_resolved_ticket() -> None:
    ticket = make_ticket(status=Status.RESOLVED, resolved_at=CREATED, reopen_count=1)

    change = comment(ticket, "It is broken again.", author=REQUESTER)

    assert change.ticket.status is Status.OPEN
    assert change.actions == (Action.COMMENTED, Action.STATUS_CHANGED, Action.REOPENED)
    assert change.ticket.reopen_count == 2
    assert change.ticket.resolved_at is None
    assert_finished(change, ticket)


@pytest.mark.parametrize("status", [Status.NEW, Status.OPEN, Status.ON_HOLD])
def test_requester_reply_leaves_other_statuses(status: Status) -> None:
    change = comment(make_ticket(status=status), author=REQUESTER)

    assert change.ticket.status is status
    assert change.actions == (Action.COMMENTED,)


@pytest.mark.parametrize("status", [Status.PENDING, Status.RESOLVED])
@pytest.mark.parametrize("author", [AGENT, ROUTER])
def test_agent_and_system_replies_leave_the_status(status: Status, author: Actor) -> None:
    change = comment(make_ticket(status=status), author=author)

    assert change.ticket.status is status
    assert change.actions == (Action.COMMENTED,)


# --- assign ---


def test_assign_team_tier_and_agent() -> None:
    ticket = make_ticket()

    change = route(
        ticket, team="network", tier="l2", agent_id="agent-9", key="k1", reason="  VPN rule "
    )

    assert (change.ticket.team, change.ticket.tier, change.ticket.assignee_id) == (
        "network",
        "L2",
        "agent-9",
    )
    assert change.actions == (Action.ASSIGNED,)
    assert change.changes == (
        FieldChange("team", "", "network"),
        FieldChange("tier", "", "L2"),
        FieldChange("assignee_id", "", "agent-9"),
    )
    assert change.reason == "VPN rule"
    assert change.ticket.assignment_keys == ("k1",)
    assert change.ticket.status is Status.OPEN
    assert_finished(change, ticket)


def test_assigning_a_new_ticket_opens_it() -> None:
    ticket = make_ticket(status=Status.NEW)

    change = route(ticket, team="network")

    assert change.ticket.status is Status.OPEN
    assert change.actions == (Action.ASSIGNED, Action.STATUS_CHANGED)
    assert change.changes == (
        FieldChange("status", "new", "open"),
        FieldChange("team", "", "network"),
    )
    assert_finished(change, ticket)


@pytest.mark.parametrize("status", [Status.PENDING, Status.ON_HOLD])
def test_assigning_keeps_other_active_statuses(status: Status) -> None:
    change = route(make_ticket(status=status), team="network")

    assert change.ticket.status is status
    assert change.actions == (Action.ASSIGNED,)


@pytest.mark.parametrize(("tier", "stored"), [("L1", "L1"), ("l2", "L2"), (" l3 ", "L3")])
def test_tier_in_any_case(tier: str, stored: str) -> None:
    assert route(make_ticket(), tier=tier).ticket.tier == stored


@pytest.mark.parametrize("tier", ["L4", "L0", "tier1", "1", "L 1"])
def test_unknown_tier_is_refused(tier: str) -> None:
    assert refused(lambda: route(make_ticket(), tier=tier)) == {
        "tier": f"must be one of L1, L2, L3; got {tier!r}"
    }


@pytest.mark.parametrize(
    ("team", "stored"),
    [
        ("network", "network"),
        (" Network ", "network"),
        ("net-eu_2.x", "net-eu_2.x"),
        ("a" * 100, "a" * 100),
    ],
)
def test_team_pattern_accepted(team: str, stored: str) -> None:
    assert route(make_ticket(), team=team).ticket.team == stored


@pytest.mark.parametrize("team", ["net work", "-network", "_ops", "ops!", "a" * 101])
def test_team_pattern_refused(team: str) -> None:
    assert refused(lambda: route(make_ticket(), team=team)) == {
        "team": "must be lowercase letters, digits, '-', '_' or '.' (at most 100)"
    }


@pytest.mark.parametrize(("team", "agent_id"), [("", ""), ("  ", "  ")])
def test_a_team_or_an_agent_is_required(team: str, agent_id: str) -> None:
    assert refused(lambda: route(make_ticket(), team=team, agent_id=agent_id)) == {
        "team": "a team or an agent_id is required"
    }


def test_agent_alone_keeps_team_and_tier() -> None:
    ticket = make_ticket(team="network", tier="L2")

    change = route(ticket, team="", agent_id="agent-9")

    assert (change.ticket.team, change.ticket.tier, change.ticket.assignee_id) == (
        "network",
        "L2",
        "agent-9",
    )
    assert change.changes == (FieldChange("assignee_id", "", "agent-9"),)


def test_team_alone_leaves_the_ticket_unassigned_in_that_team() -> None:
    ticket = make_ticket(team="network", tier="L1", assignee_id="agent-7")

    change = route(ticket, team="network", tier="L2")

    assert change.ticket.assignee_id == ""
    assert change.changes == (
        FieldChange("tier", "L1", "L2"),
        FieldChange("assignee_id", "agent-7", ""),
    )


def test_long_agent_and_key_are_refused() -> None:
    assert refused(lambda: route(make_ticket(), agent_id="a" * 201, key="k" * 201)) == {
        "agent_id": "must be at most 200 characters",
        "idempotency_key": "must be at most 200 characters",
    }
    assert route(make_ticket(), agent_id="a" * 200, key="k" * 200).ticket.assignee_id == "a" * 200


def test_reason_is_trimmed_and_capped() -> None:
    assert route(make_ticket(), reason=" " + "r" * 600).reason == "r" * 500


@pytest.mark.parametrize("actor_id", ["", " "])
def test_assign_needs_an_actor(actor_id: str) -> None:
    actor = Actor(actor_id, Role.SYSTEM)

    assert refused(lambda: route(make_ticket(), actor=actor)) == {"actor.id": "is required"}


@pytest.mark.parametrize("status", [Status.RESOLVED, Status.CLOSED])
def test_resolved_or_closed_ticket_is_not_assigned(status: Status) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        route(make_ticket(status=status), team="network")

    assert caught.value.message == f"ticket HD-1042 is {status.value}; reopen it before assigning"


def test_replayed_key_changes_nothing() -> None:
    assigned = route(make_ticket(), team="network", key="decision-1").ticket

    # A redelivery, even with other (or invalid) values, is the decision already applied.
    replay = route(assigned, team="facilities", tier="L9", key="decision-1")

    assert_noop(replay, assigned)


def test_replayed_key_on_a_resolved_ticket_is_no_refusal() -> None:
    resolved = make_ticket(status=Status.RESOLVED, assignment_keys=("decision-1",))

    assert_noop(route(resolved, key="decision-1"), resolved)


def test_assignment_keys_keep_only_the_latest() -> None:
    keys = tuple(f"k{i}" for i in range(MAX_ASSIGNMENT_KEYS))
    ticket = make_ticket(assignment_keys=keys)

    change = route(ticket, team="network", key="k-new")

    assert change.ticket.assignment_keys == (*keys[1:], "k-new")
    assert len(change.ticket.assignment_keys) == MAX_ASSIGNMENT_KEYS
    # The oldest key is forgotten: it is a new decision again.
    assert not route(change.ticket, team="facilities", key="k0").is_noop


def test_assignment_without_a_key_records_none() -> None:
    ticket = make_ticket(assignment_keys=("k1",))

    assert route(ticket, team="network").ticket.assignment_keys == ("k1",)


def test_identical_assignment_changes_nothing() -> None:
    ticket = make_ticket(team="network", tier="L2", assignee_id="agent-9")

    change = route(ticket, team=" Network ", tier="l2", agent_id="agent-9", key="k2")

    assert_noop(change, ticket)
    assert change.ticket.assignment_keys == ()


# --- properties ---

STEPS = st.one_of(
    st.tuples(st.just("move"), st.sampled_from(Status)),
    st.tuples(st.just("comment"), st.sampled_from([AGENT, REQUESTER, ROUTER]), st.booleans()),
    st.tuples(
        st.just("assign"),
        st.sampled_from(["", "network", "facilities"]),
        st.sampled_from(["", "L1", "L2"]),
        st.sampled_from(["", "agent-7", "agent-9"]),
    ),
    st.tuples(st.just("update"), st.sampled_from(Priority), st.sampled_from(["", "vpn", "new"])),
)


def apply(ticket: Ticket, step: tuple[Any, ...], now: datetime) -> Change:
    match step:
        case ("move", Status() as to):
            return update(ticket, ["status"], now=now, status=to.value)
        case ("comment", Actor() as author, bool() as internal):
            return comment(
                ticket, author=author, internal=internal and author != REQUESTER, now=now
            )
        case ("assign", str() as team, str() as tier, str() as agent):
            return route(ticket, team=team or "network", tier=tier, agent_id=agent, now=now)
        case ("update", Priority() as priority, str() as tag):
            tags = (tag,) if tag else ()
            return update(ticket, ["priority", "tags"], now=now, priority=priority, tags=tags)
    raise AssertionError(step)


def refusal_expected(ticket: Ticket, step: tuple[Any, ...]) -> bool:
    if ticket.status is Status.CLOSED:
        return True
    if step[0] == "move":
        return step[1] is not ticket.status and step[1] not in LEGAL[ticket.status]
    return step[0] == "assign" and ticket.status is Status.RESOLVED


@given(st.lists(STEPS, max_size=25))
def test_any_sequence_of_commands_keeps_the_lifecycle(steps: list[tuple[Any, ...]]) -> None:
    ticket = make_ticket(status=Status.NEW, version=1)
    reopens = 0
    for i, step in enumerate(steps):
        now = NOW + timedelta(minutes=i)
        if refusal_expected(ticket, step):
            with pytest.raises(FailedPrecondition):
                apply(ticket, step, now)
            continue
        change = apply(ticket, step, now)
        after = change.ticket
        if change.is_noop:
            assert after is ticket
        else:
            assert after.version == ticket.version + 1
            assert after.updated_at == now
        assert after.status is ticket.status or after.status in LEGAL[ticket.status]
        assert (Action.STATUS_CHANGED in change.actions) == (after.status is not ticket.status)
        reopens += change.actions.count(Action.REOPENED)
        assert after.reopen_count == reopens
        assert (after.closed_at is not None) == (after.status is Status.CLOSED)
        if after.status is Status.RESOLVED:
            assert after.resolved_at is not None
        if after.status in ACTIVE:
            assert after.resolved_at is None
        ticket = after


@given(st.lists(st.integers(min_value=0, max_value=4), max_size=30))
def test_legal_moves_from_new_stay_in_the_table_and_closed_is_absorbing(
    choices: list[int],
) -> None:
    ticket = make_ticket(status=Status.NEW)
    for choice in choices:
        # Moves are drawn from the documented table, so a looser TRANSITIONS is caught too.
        targets = sorted(LEGAL[ticket.status])
        if not targets:
            assert ticket.status is Status.CLOSED
            for to in Status:
                if to is not Status.CLOSED:
                    with pytest.raises(FailedPrecondition):
                        move_status(ticket, to, NOW)
            break
        moved, actions = move_status(ticket, targets[choice % len(targets)], NOW)
        assert moved.status in TRANSITIONS[ticket.status]
        assert moved.status in TRANSITIONS
        assert actions[0] is Action.STATUS_CHANGED
        ticket = moved


@given(st.sampled_from(Status), st.sampled_from(Status))
def test_a_refused_move_names_the_ticket_and_both_states(start: Status, to: Status) -> None:
    ticket = make_ticket(status=start, number="HD-77")
    if to is start or to in LEGAL[start]:
        assert move_status(ticket, to, NOW)[0].status is to
        return
    with pytest.raises(FailedPrecondition) as caught:
        move_status(ticket, to, NOW)
    assert "HD-77" in caught.value.message
    assert f"from {start.value} to {to.value}" in caught.value.message


# --- closed as self-solved by a suggested article ---

SUGGESTED = (
    ArticleSuggestion("vpn-setup", "VPN setup", 3.1),
    ArticleSuggestion("vpn-errors", "VPN error codes", 1.2),
)


@pytest.mark.parametrize("status", [Status.NEW, Status.OPEN, Status.PENDING, Status.RESOLVED])
def test_the_ticket_closes_as_self_solved(status: Status) -> None:
    ticket = make_ticket(status=status, suggestions=SUGGESTED)

    change = solve_with_article(ticket, REQUESTER, "vpn-errors", NOW)

    solved = change.ticket
    assert (solved.status, solved.closed_at, solved.solved_by_article_id) == (
        Status.CLOSED,
        NOW,
        "vpn-errors",
    )
    assert change.actions[0] == Action.SELF_SOLVED
    assert Action.CLOSED in change.actions
    assert FieldChange("solved_by_article_id", "", "vpn-errors") in change.changes


def test_its_event_names_the_article() -> None:
    change = solve_with_article(make_ticket(suggestions=SUGGESTED), REQUESTER, "vpn-setup", NOW)

    events, history = change_records(change, datetime.now(UTC))

    types = [e.cloud_event.type for e in events]
    assert types[0] == "helpdesk.ticket.self_solved.v1"
    assert "helpdesk.ticket.closed.v1" in types
    assert history[0]["changes"] == [
        {"field": "solved_by_article_id", "old": "", "new": "vpn-setup"}
    ]


def test_saying_it_again_changes_nothing() -> None:
    first = solve_with_article(make_ticket(suggestions=SUGGESTED), REQUESTER, "vpn-setup", NOW)

    again = solve_with_article(first.ticket, REQUESTER, "vpn-setup", NOW)

    assert again.is_noop


def test_only_the_requester_may_say_it() -> None:
    ticket = make_ticket(suggestions=SUGGESTED)
    with pytest.raises(PermissionDenied):
        solve_with_article(ticket, AGENT, "vpn-setup", NOW)
    stranger = replace(REQUESTER, id="eve@example.com")
    with pytest.raises(PermissionDenied):
        solve_with_article(ticket, stranger, "vpn-setup", NOW)


def test_only_a_suggested_article_closes_it() -> None:
    with pytest.raises(InvalidArgument) as refused:
        solve_with_article(make_ticket(suggestions=SUGGESTED), REQUESTER, "printers", NOW)
    assert [v.field for v in refused.value.violations] == ["article_id"]
    with pytest.raises(InvalidArgument):
        solve_with_article(make_ticket(suggestions=SUGGESTED), REQUESTER, " ", NOW)


def test_a_closed_ticket_stays_as_it_was_closed() -> None:
    closed = make_ticket(status=Status.CLOSED, suggestions=SUGGESTED)
    with pytest.raises(FailedPrecondition):
        solve_with_article(closed, REQUESTER, "vpn-setup", NOW)
