"""What one lifecycle change leaves behind: outbox events and history entries, in order."""

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf.message import Message

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.events.v1 import ticket_events_pb2
from helpdesk.api.tickets.v1 import tickets_pb2
from helpdesk.core.kafka import TICKET_EVENTS_TOPIC
from helpdesk.intake.commands import EVENT_SOURCE, change_records
from helpdesk.intake.domain import Category, Channel, Priority, Requester, Status, Ticket
from helpdesk.intake.lifecycle import (
    Actor,
    Attachment,
    Change,
    Role,
    TicketPatch,
    add_comment,
    assign,
    update_ticket,
)

CREATED = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
NOW = datetime(2024, 5, 2, 14, 0, tzinfo=UTC)

AGENT = Actor("agent-7", Role.AGENT)
REQUESTER = Actor("ann@example.com", Role.REQUESTER)
ROUTER = Actor("routing", Role.SYSTEM)


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


def update_and_close() -> Change:
    patch = TicketPatch(priority="urgent", status="closed")
    return update_ticket(make_ticket(), patch, ["priority", "status"], AGENT, NOW)


def requester_reopens() -> Change:
    resolved = make_ticket(status=Status.RESOLVED, resolved_at=CREATED)
    shot = Attachment("log.txt", "text/plain", 120, "https://files.example.com/log.txt")
    return add_comment(resolved, REQUESTER, "Broken again.", False, [shot], NOW)


def route_new_ticket() -> Change:
    ticket = make_ticket(status=Status.NEW, team="triage", assignee_id="agent-1")
    return assign(
        ticket,
        team="network",
        tier="L2",
        agent_id="agent-9",
        idempotency_key="decision-1",
        reason="VPN rule",
        actor=ROUTER,
        now=NOW,
    )


def resolve() -> Change:
    return update_ticket(make_ticket(), TicketPatch(status="resolved"), ["status"], AGENT, NOW)


CHANGES = [update_and_close, requester_reopens, route_new_ticket, resolve]


def types(change: Change) -> list[str]:
    return [e.cloud_event.type for e in change_records(change, NOW)[0]]


def test_event_types_follow_the_actions() -> None:
    assert types(update_and_close()) == [
        "helpdesk.ticket.updated.v1",
        "helpdesk.ticket.status_changed.v1",
        "helpdesk.ticket.closed.v1",
    ]
    assert types(requester_reopens()) == [
        "helpdesk.ticket.commented.v1",
        "helpdesk.ticket.status_changed.v1",
        "helpdesk.ticket.reopened.v1",
    ]
    assert types(route_new_ticket()) == [
        "helpdesk.ticket.assigned.v1",
        "helpdesk.ticket.status_changed.v1",
    ]
    assert types(resolve()) == [
        "helpdesk.ticket.status_changed.v1",
        "helpdesk.ticket.resolved.v1",
    ]


@pytest.mark.parametrize("make", CHANGES)
def test_every_event_is_addressed_to_the_ticket_in_order(make: Any) -> None:
    change = make()
    ticket = change.ticket

    events, history = change_records(change, NOW)

    assert len(events) == len(history) == len(change.actions)
    assert len({e.cloud_event.id for e in events}) == len(events)
    for i, event in enumerate(events):
        assert event.topic == TICKET_EVENTS_TOPIC
        assert event.key == ticket.id
        assert event.cloud_event.subject == ticket.id
        assert event.cloud_event.source == EVENT_SOURCE
        # Ordered within the version, and after every event of earlier versions.
        assert event.sequence == ticket.version * 100 + i


@pytest.mark.parametrize("make", CHANGES)
def test_every_history_entry_points_at_its_event(make: Any) -> None:
    change = make()

    events, history = change_records(change, NOW)

    for action, event, entry in zip(change.actions, events, history, strict=True):
        assert entry["action"] == action.value
        assert entry["event_id"] == event.cloud_event.id
        assert entry["version"] == change.ticket.version
        assert entry["at"] == NOW
        assert entry["actor"] == {"id": change.actor.id, "role": change.actor.role.value}


@pytest.mark.parametrize("make", CHANGES)
def test_every_payload_carries_the_changed_ticket(make: Any) -> None:
    change = make()
    message_types: dict[str, type[Message]] = {
        "updated": ticket_events_pb2.TicketUpdated,
        "status_changed": ticket_events_pb2.TicketStatusChanged,
        "reopened": ticket_events_pb2.TicketReopened,
        "resolved": ticket_events_pb2.TicketResolved,
        "closed": ticket_events_pb2.TicketClosed,
        "commented": ticket_events_pb2.TicketCommented,
        "assigned": ticket_events_pb2.TicketAssigned,
    }

    events, _ = change_records(change, NOW)

    for action, event in zip(change.actions, events, strict=True):
        payload = message_types[action.value].FromString(event.payload)
        ticket = getattr(payload, "ticket")  # noqa: B009 - every ticket event has one
        assert ticket.id == change.ticket.id
        assert ticket.version == change.ticket.version


def test_update_records_the_other_fields_then_the_status() -> None:
    change = update_and_close()

    events, history = change_records(change, NOW)

    updated = ticket_events_pb2.TicketUpdated.FromString(events[0].payload)
    assert list(updated.changes) == [
        tickets_pb2.FieldChange(field="priority", old_value="normal", new_value="urgent")
    ]
    assert updated.actor == common_pb2.Actor(id="agent-7", role=common_pb2.ACTOR_ROLE_AGENT)
    moved = ticket_events_pb2.TicketStatusChanged.FromString(events[1].payload)
    assert (moved.from_status, moved.to_status) == (
        common_pb2.TICKET_STATUS_OPEN,
        common_pb2.TICKET_STATUS_CLOSED,
    )
    closed = ticket_events_pb2.TicketClosed.FromString(events[2].payload)
    assert closed.ticket.closed_at.ToDatetime(tzinfo=UTC) == NOW
    assert [entry["changes"] for entry in history] == [
        [{"field": "priority", "old": "normal", "new": "urgent"}],
        [{"field": "status", "old": "open", "new": "closed"}],
        [],
    ]


def test_comment_event_carries_the_comment() -> None:
    change = requester_reopens()
    assert change.comment is not None

    events, history = change_records(change, NOW)

    commented = ticket_events_pb2.TicketCommented.FromString(events[0].payload)
    assert commented.comment.id == change.comment.id
    assert commented.comment.body == "Broken again."
    assert not commented.comment.internal
    assert commented.comment.author == common_pb2.Actor(
        id="ann@example.com", role=common_pb2.ACTOR_ROLE_REQUESTER
    )
    assert [a.name for a in commented.comment.attachments] == ["log.txt"]
    moved = ticket_events_pb2.TicketStatusChanged.FromString(events[1].payload)
    assert (moved.from_status, moved.to_status) == (
        common_pb2.TICKET_STATUS_RESOLVED,
        common_pb2.TICKET_STATUS_OPEN,
    )
    reopened = ticket_events_pb2.TicketReopened.FromString(events[2].payload)
    assert reopened.ticket.reopen_count == 1
    assert not reopened.ticket.HasField("resolved_at")
    assert [entry["changes"] for entry in history] == [
        [],
        [{"field": "status", "old": "resolved", "new": "open"}],
        [],
    ]


def test_assignment_event_carries_who_had_it_before_and_why() -> None:
    change = route_new_ticket()

    events, history = change_records(change, NOW)

    assigned = ticket_events_pb2.TicketAssigned.FromString(events[0].payload)
    assert (assigned.previous_team, assigned.previous_assignee_id, assigned.reason) == (
        "triage",
        "agent-1",
        "VPN rule",
    )
    assert (assigned.ticket.team, assigned.ticket.tier, assigned.ticket.assignee_id) == (
        "network",
        "L2",
        "agent-9",
    )
    assert assigned.actor == common_pb2.Actor(id="routing", role=common_pb2.ACTOR_ROLE_SYSTEM)
    moved = ticket_events_pb2.TicketStatusChanged.FromString(events[1].payload)
    assert (moved.from_status, moved.to_status) == (
        common_pb2.TICKET_STATUS_NEW,
        common_pb2.TICKET_STATUS_OPEN,
    )
    assert [entry["changes"] for entry in history] == [
        [
            {"field": "team", "old": "triage", "new": "network"},
            {"field": "tier", "old": "", "new": "L2"},
            {"field": "assignee_id", "old": "agent-1", "new": "agent-9"},
        ],
        [{"field": "status", "old": "new", "new": "open"}],
    ]


def test_resolved_event_carries_when() -> None:
    events, _ = change_records(resolve(), NOW)

    resolved = ticket_events_pb2.TicketResolved.FromString(events[1].payload)
    assert resolved.ticket.resolved_at.ToDatetime(tzinfo=UTC) == NOW
    assert resolved.ticket.status == common_pb2.TICKET_STATUS_RESOLVED


def test_a_noop_leaves_no_records() -> None:
    ticket = make_ticket()
    change = update_ticket(ticket, TicketPatch(priority="normal"), ["priority"], AGENT, NOW)

    assert change.is_noop
    assert change_records(change, NOW) == ([], [])
