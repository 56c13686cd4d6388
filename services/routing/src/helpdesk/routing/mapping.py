"""Routing's translations: protobuf tickets into rule facts, decisions back into protobuf."""

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.routing.v1 import routing_pb2
from helpdesk.api.tickets.v1 import tickets_pb2
from helpdesk.core.ticket_words import category_of, channel_of, priority_of
from helpdesk.routing.domain.assignment import Placement
from helpdesk.routing.domain.rules import Decision, TicketFacts


def facts_from_proto(ticket: tickets_pb2.Ticket) -> TicketFacts:
    """What routing rules look at, from a ticket as intake publishes it."""
    return TicketFacts(
        ticket_id=ticket.id,
        number=ticket.number,
        category=category_of(ticket),
        priority=priority_of(ticket),
        tags=tuple(ticket.tags),
        channel=channel_of(ticket),
        requester_email=ticket.requester.email,
        requester_organization=ticket.requester.organization,
        language=ticket.requester.language,
        subject=ticket.subject,
        description=ticket.description,
        custom_fields=dict(ticket.custom_fields),
        team=ticket.team,
        tier=ticket.tier,
        reopen_count=ticket.reopen_count,
        assignee_id=ticket.assignee_id,
    )


def priority_to_proto(priority: str) -> "common_pb2.Priority.ValueType":
    return common_pb2.Priority.Value(f"PRIORITY_{priority.upper()}")


def decision_to_proto(decision: Decision, placement: Placement) -> routing_pb2.RoutingDecision:
    return routing_pb2.RoutingDecision(
        team=placement.team,
        tier=placement.tier.value if placement.tier else "",
        priority=decision.priority,
        tags=list(decision.tags),
        required_skills=sorted(decision.required_skills),
        agent_id=placement.agent_id,
        matched_rules=list(decision.matched),
        explanation=placement.reason,
    )
