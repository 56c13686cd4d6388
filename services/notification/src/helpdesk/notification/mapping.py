"""Ticket and SLA events read into the facts the notification rules look at."""

from dataclasses import replace

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.events.v1 import sla_events_pb2, ticket_events_pb2
from helpdesk.api.tickets.v1 import tickets_pb2
from helpdesk.core.ticket_words import channel_of, priority_of, status_of, status_word
from helpdesk.notification.domain.notices import Facts

_ROLES = {
    common_pb2.ACTOR_ROLE_REQUESTER: "requester",
    common_pb2.ACTOR_ROLE_AGENT: "agent",
    common_pb2.ACTOR_ROLE_SYSTEM: "system",
}


def _ticket_facts(event_id: str, event_type: str, ticket: tickets_pb2.Ticket) -> Facts:
    return Facts(
        event_id=event_id,
        event_type=event_type,
        ticket_id=ticket.id,
        number=ticket.number,
        subject=ticket.subject,
        status=status_of(ticket),
        priority=priority_of(ticket),
        team=ticket.team,
        assignee_id=ticket.assignee_id,
        requester_email=ticket.requester.email,
        requester_name=ticket.requester.name,
        requester_language=ticket.requester.language,
        channel=channel_of(ticket),
        custom_fields=dict(ticket.custom_fields),
    )


def _by(facts: Facts, actor: common_pb2.Actor) -> Facts:
    """Who made the change: nobody is told of their own action."""
    return replace(facts, actor_id=actor.id, actor_role=_ROLES.get(actor.role, ""))


def facts_from_event(event_type: str, event_id: str, body: bytes) -> Facts | None:
    """The facts of a ticket or SLA event by its CloudEvents type; None for types that
    notify nobody."""
    if event_type.startswith("helpdesk.sla."):
        return _sla_facts(event_type, event_id, body)
    kind = event_type.removeprefix("helpdesk.ticket.").removesuffix(".v1")
    name = f"ticket.{kind}"
    match kind:
        case "created":
            return _ticket_facts(
                event_id, name, ticket_events_pb2.TicketCreated.FromString(body).ticket
            )
        case "commented":
            commented = ticket_events_pb2.TicketCommented.FromString(body)
            facts = _ticket_facts(event_id, name, commented.ticket)
            return replace(
                _by(facts, commented.comment.author),
                comment_body=commented.comment.body,
                comment_internal=commented.comment.internal,
                comment_author_role=_ROLES.get(commented.comment.author.role, ""),
            )
        case "status_changed":
            moved = ticket_events_pb2.TicketStatusChanged.FromString(body)
            facts = _by(_ticket_facts(event_id, name, moved.ticket), moved.actor)
            return replace(
                facts,
                old_status=status_word(moved.from_status),
                new_status=status_word(moved.to_status),
            )
        case "assigned":
            assigned = ticket_events_pb2.TicketAssigned.FromString(body)
            return _by(_ticket_facts(event_id, name, assigned.ticket), assigned.actor)
        case "resolved":
            resolved = ticket_events_pb2.TicketResolved.FromString(body)
            return _by(_ticket_facts(event_id, name, resolved.ticket), resolved.actor)
        case "closed":
            closed = ticket_events_pb2.TicketClosed.FromString(body)
            return _by(_ticket_facts(event_id, name, closed.ticket), closed.actor)
        case "rated":
            rated = ticket_events_pb2.TicketRated.FromString(body)
            facts = _ticket_facts(event_id, name, rated.ticket)
            return replace(facts, rating_score=rated.ticket.rating.score, rating_bad=rated.bad)
        case _:
            return None


def _sla_facts(event_type: str, event_id: str, body: bytes) -> Facts | None:
    kind = event_type.removeprefix("helpdesk.sla.").removesuffix(".v1")
    if kind == "warning":
        clock = sla_events_pb2.SlaWarning.FromString(body).clock
    elif kind == "breached":
        clock = sla_events_pb2.SlaBreached.FromString(body).clock
    else:
        return None
    return Facts(
        event_id=event_id,
        event_type=f"sla.{kind}",
        ticket_id=clock.ticket_id,
        number=clock.ticket_number,
        priority=clock.priority,
        team=clock.team,
        assignee_id=clock.assignee_id,
        sla_metric=clock.metric,
        sla_due_at=clock.due_at.ToJsonString() if clock.HasField("due_at") else "",
    )
