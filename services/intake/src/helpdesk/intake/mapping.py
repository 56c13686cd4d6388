"""Translations of a ticket between the domain, protobuf and MongoDB documents."""

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.tickets.v1 import tickets_pb2
from helpdesk.intake.domain import (
    Category,
    Channel,
    Priority,
    Requester,
    Status,
    Ticket,
    TicketDraft,
)

# Domain value <-> protobuf enum number; the unspecified zero maps to "" (the default).
PRIORITY_TO_PROTO = {p: common_pb2.Priority.Value(f"PRIORITY_{p.name}") for p in Priority}
CATEGORY_TO_PROTO = {c: common_pb2.Category.Value(f"CATEGORY_{c.name}") for c in Category}
CHANNEL_TO_PROTO = {c: common_pb2.Channel.Value(f"CHANNEL_{c.name}") for c in Channel}
STATUS_TO_PROTO = {s: common_pb2.TicketStatus.Value(f"TICKET_STATUS_{s.name}") for s in Status}
STATUS_FROM_PROTO = {v: k for k, v in STATUS_TO_PROTO.items()}


def _enum_name(proto_enum: Any, number: int, prefix: str) -> str:
    """The domain spelling of a protobuf enum number ("" when unspecified or unknown)."""
    if number == 0:
        return ""
    try:
        return str(proto_enum.Name(number)).removeprefix(prefix).lower()
    except ValueError:
        return f"<{number}>"  # an unknown number: validation names the field


def draft_from_proto(request: tickets_pb2.CreateTicketRequest) -> TicketDraft:
    return TicketDraft(
        request_id=request.request_id,
        subject=request.subject,
        description=request.description,
        requester_email=request.requester.email,
        requester_name=request.requester.name,
        requester_organization=request.requester.organization,
        requester_language=request.requester.language,
        priority=_enum_name(common_pb2.Priority, request.priority, "PRIORITY_"),
        category=_enum_name(common_pb2.Category, request.category, "CATEGORY_"),
        channel=_enum_name(common_pb2.Channel, request.channel, "CHANNEL_"),
        tags=tuple(request.tags),
        custom_fields=dict(request.custom_fields),
    )


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def ticket_to_proto(ticket: Ticket) -> tickets_pb2.Ticket:
    return tickets_pb2.Ticket(
        id=ticket.id,
        number=ticket.number,
        subject=ticket.subject,
        description=ticket.description,
        requester=common_pb2.Requester(
            email=ticket.requester.email,
            name=ticket.requester.name,
            organization=ticket.requester.organization,
            language=ticket.requester.language,
        ),
        priority=PRIORITY_TO_PROTO[ticket.priority],
        category=CATEGORY_TO_PROTO[ticket.category],
        channel=CHANNEL_TO_PROTO[ticket.channel],
        status=STATUS_TO_PROTO[ticket.status],
        tags=list(ticket.tags),
        custom_fields=ticket.custom_fields,
        created_at=_timestamp(ticket.created_at),
        updated_at=_timestamp(ticket.updated_at),
        version=ticket.version,
        request_id=ticket.request_id,
    )


def ticket_to_document(ticket: Ticket) -> dict[str, Any]:
    return {
        "_id": ticket.id,
        "number": ticket.number,
        "sequence": ticket.sequence,
        "request_id": ticket.request_id,
        "subject": ticket.subject,
        "description": ticket.description,
        "requester": {
            "email": ticket.requester.email,
            "name": ticket.requester.name,
            "organization": ticket.requester.organization,
            "language": ticket.requester.language,
        },
        "priority": ticket.priority.value,
        "category": ticket.category.value,
        "channel": ticket.channel.value,
        "status": ticket.status.value,
        "tags": list(ticket.tags),
        "custom_fields": ticket.custom_fields,
        "created_at": ticket.created_at,
        "updated_at": ticket.updated_at,
        "version": ticket.version,
    }


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def ticket_from_document(doc: dict[str, Any]) -> Ticket:
    requester = doc.get("requester") or {}
    return Ticket(
        id=doc["_id"],
        number=doc["number"],
        sequence=int(doc["sequence"]),
        request_id=doc.get("request_id", ""),
        subject=doc["subject"],
        description=doc["description"],
        requester=Requester(
            email=requester.get("email", ""),
            name=requester.get("name", ""),
            organization=requester.get("organization", ""),
            language=requester.get("language", ""),
        ),
        priority=Priority(doc["priority"]),
        category=Category(doc["category"]),
        channel=Channel(doc["channel"]),
        status=Status(doc["status"]),
        tags=tuple(doc.get("tags") or ()),
        custom_fields=dict(doc.get("custom_fields") or {}),
        created_at=_utc(doc["created_at"]),
        updated_at=_utc(doc["updated_at"]),
        version=int(doc["version"]),
    )
