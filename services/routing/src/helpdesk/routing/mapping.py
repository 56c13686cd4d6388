"""Routing's translations: protobuf tickets into rule facts, JSON documents (Struct) into
the raw mappings the domain validates, and decisions back into protobuf."""

from typing import Any

from google.protobuf import json_format, struct_pb2

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.routing.v1 import routing_pb2
from helpdesk.api.tickets.v1 import tickets_pb2
from helpdesk.routing.domain.assignment import Placement
from helpdesk.routing.domain.rules import Decision, TicketFacts


def _enum_word(name: str, prefix: str) -> str:
    """PRIORITY_HIGH -> "high"; the unspecified value -> ""."""
    word = name.removeprefix(prefix).lower()
    return "" if word == "unspecified" else word


def status_of(ticket: tickets_pb2.Ticket) -> str:
    return _enum_word(common_pb2.TicketStatus.Name(ticket.status), "TICKET_STATUS_")


def facts_from_proto(ticket: tickets_pb2.Ticket) -> TicketFacts:
    """What routing rules look at, from a ticket as intake publishes it."""
    return TicketFacts(
        ticket_id=ticket.id,
        number=ticket.number,
        category=_enum_word(common_pb2.Category.Name(ticket.category), "CATEGORY_"),
        priority=_enum_word(common_pb2.Priority.Name(ticket.priority), "PRIORITY_"),
        tags=tuple(ticket.tags),
        channel=_enum_word(common_pb2.Channel.Name(ticket.channel), "CHANNEL_"),
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


def to_raw(document: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain JSON values; whole numbers come back as int, not float."""
    raw: dict[str, Any] = _ints(json_format.MessageToDict(document))
    return raw


def _ints(value: Any) -> Any:
    # Struct keeps every number as a double; the domain wants counts as int.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints(v) for v in value]
    return value


def to_struct(raw: dict[str, Any]) -> struct_pb2.Struct:
    document = struct_pb2.Struct()
    document.update(_json_safe(raw))
    return document


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_safe(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


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
