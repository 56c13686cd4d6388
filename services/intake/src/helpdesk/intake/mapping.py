"""Translations of a ticket between the domain, protobuf and MongoDB documents."""

from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.tickets.v1 import tickets_pb2
from helpdesk.core.errors import FieldViolation, InvalidArgument
from helpdesk.intake.domain import (
    ArticleSuggestion,
    Category,
    Channel,
    Link,
    Priority,
    Rating,
    Requester,
    Status,
    Ticket,
    TicketDraft,
    TicketQuery,
    ticket_query,
)
from helpdesk.intake.lifecycle import (
    Actor,
    Attachment,
    Comment,
    FieldChange,
    HistoryEntry,
    Role,
    TicketPatch,
)
from helpdesk.intake.reports import TicketFacts

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


def _optional_timestamp(moment: datetime | None) -> Timestamp | None:
    return _timestamp(moment) if moment else None


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
        team=ticket.team,
        tier=ticket.tier,
        assignee_id=ticket.assignee_id,
        first_response_at=_optional_timestamp(ticket.first_response_at),
        resolved_at=_optional_timestamp(ticket.resolved_at),
        closed_at=_optional_timestamp(ticket.closed_at),
        reopen_count=ticket.reopen_count,
        rating=(
            tickets_pb2.Rating(
                score=ticket.rating.score,
                comment=ticket.rating.comment,
                rated_at=_timestamp(ticket.rating.rated_at),
            )
            if ticket.rating
            else None
        ),
        review_required=ticket.review_required,
        merged_into=ticket.merged_into,
        links=[link_to_proto(link) for link in ticket.links],
        sla_state=ticket.sla_state,
        suggestions=[
            tickets_pb2.ArticleSuggestion(article_id=s.article_id, title=s.title, score=s.score)
            for s in ticket.suggestions
        ],
        solved_by_article_id=ticket.solved_by_article_id,
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
        "team": ticket.team,
        "tier": ticket.tier,
        "assignee_id": ticket.assignee_id,
        "first_response_at": ticket.first_response_at,
        "resolved_at": ticket.resolved_at,
        "closed_at": ticket.closed_at,
        "reopen_count": ticket.reopen_count,
        "assignment_keys": list(ticket.assignment_keys),
        "comment_keys": list(ticket.comment_keys),
        "rating": (
            {
                "score": ticket.rating.score,
                "comment": ticket.rating.comment,
                "rated_at": ticket.rating.rated_at,
            }
            if ticket.rating
            else None
        ),
        "review_required": ticket.review_required,
        "merged_into": ticket.merged_into,
        "links": [
            {"kind": link.kind, "ticket_number": link.ticket_number, "ticket_id": link.ticket_id}
            for link in ticket.links
        ],
        "suggestions": [
            {"article_id": s.article_id, "title": s.title, "score": s.score}
            for s in ticket.suggestions
        ],
        "solved_by_article_id": ticket.solved_by_article_id,
    }


def as_utc(moment: datetime) -> datetime:
    """A stored instant as an aware UTC datetime (older documents may hold naive ones)."""
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
        created_at=as_utc(doc["created_at"]),
        updated_at=as_utc(doc["updated_at"]),
        version=int(doc["version"]),
        team=doc.get("team", ""),
        tier=doc.get("tier", ""),
        assignee_id=doc.get("assignee_id", ""),
        first_response_at=_optional_utc(doc.get("first_response_at")),
        resolved_at=_optional_utc(doc.get("resolved_at")),
        closed_at=_optional_utc(doc.get("closed_at")),
        reopen_count=int(doc.get("reopen_count", 0)),
        assignment_keys=tuple(doc.get("assignment_keys") or ()),
        comment_keys=tuple(doc.get("comment_keys") or ()),
        sla_state=str(doc.get("sla_state") or ""),
        rating=_rating_from_document(doc.get("rating")),
        review_required=bool(doc.get("review_required", False)),
        merged_into=doc.get("merged_into", ""),
        links=tuple(
            Link(kind=e["kind"], ticket_number=e["ticket_number"], ticket_id=e["ticket_id"])
            for e in doc.get("links") or ()
        ),
        suggestions=tuple(
            ArticleSuggestion(
                article_id=e["article_id"], title=e.get("title", ""), score=float(e["score"])
            )
            for e in doc.get("suggestions") or ()
        ),
        solved_by_article_id=doc.get("solved_by_article_id", ""),
    )


def _rating_from_document(doc: dict[str, Any] | None) -> Rating | None:
    if not doc:
        return None
    return Rating(
        score=int(doc["score"]), comment=doc.get("comment", ""), rated_at=as_utc(doc["rated_at"])
    )


def link_to_proto(link: Link) -> tickets_pb2.TicketLink:
    return tickets_pb2.TicketLink(
        kind=link.kind, ticket_number=link.ticket_number, ticket_id=link.ticket_id
    )


def _optional_utc(moment: datetime | None) -> datetime | None:
    return as_utc(moment) if moment else None


def facts_from_document(doc: dict[str, Any]) -> TicketFacts:
    """What reports need of one stored ticket."""
    rating = doc.get("rating") or {}
    return TicketFacts(
        created_at=as_utc(doc["created_at"]),
        status=Status(doc["status"]),
        channel=doc.get("channel", ""),
        team=doc.get("team", ""),
        assignee_id=doc.get("assignee_id", ""),
        first_response_at=_optional_utc(doc.get("first_response_at")),
        resolved_at=_optional_utc(doc.get("resolved_at")),
        reopen_count=int(doc.get("reopen_count", 0)),
        rating_score=int(rating.get("score", 0)),
        rated_at=_optional_utc(rating.get("rated_at")),
    )


ROLE_TO_PROTO = {r: common_pb2.ActorRole.Value(f"ACTOR_ROLE_{r.name}") for r in Role}


def actor_from_proto(actor: common_pb2.Actor) -> Actor:
    """The acting person or system; an unspecified role is a system acting."""
    name = _enum_name(common_pb2.ActorRole, actor.role, "ACTOR_ROLE_")
    try:
        role = Role(name) if name else Role.SYSTEM
    except ValueError:
        raise InvalidArgument(
            [FieldViolation("actor.role", f"unknown role {actor.role}")]
        ) from None
    return Actor(id=actor.id.strip(), role=role)


def actor_to_proto(actor: Actor) -> common_pb2.Actor:
    return common_pb2.Actor(id=actor.id, role=ROLE_TO_PROTO[actor.role])


def actor_to_document(actor: Actor) -> dict[str, Any]:
    return {"id": actor.id, "role": actor.role.value}


def actor_from_document(doc: dict[str, Any]) -> Actor:
    return Actor(id=doc.get("id", ""), role=Role(doc.get("role", Role.SYSTEM.value)))


def patch_from_proto(ticket: tickets_pb2.Ticket) -> TicketPatch:
    return TicketPatch(
        status=_enum_name(common_pb2.TicketStatus, ticket.status, "TICKET_STATUS_"),
        priority=_enum_name(common_pb2.Priority, ticket.priority, "PRIORITY_"),
        category=_enum_name(common_pb2.Category, ticket.category, "CATEGORY_"),
        tags=tuple(ticket.tags),
        team=ticket.team,
        custom_fields=dict(ticket.custom_fields),
    )


def attachments_from_proto(items: Any) -> list[Attachment]:
    return [Attachment(a.name, a.content_type, a.size_bytes, a.url) for a in items]


def comment_to_document(comment: Comment) -> dict[str, Any]:
    return {
        "id": comment.id,
        "author": actor_to_document(comment.author),
        "body": comment.body,
        "internal": comment.internal,
        "attachments": [
            {
                "name": a.name,
                "content_type": a.content_type,
                "size_bytes": a.size_bytes,
                "url": a.url,
            }
            for a in comment.attachments
        ],
        "created_at": comment.created_at,
    }


def comment_from_document(doc: dict[str, Any]) -> Comment:
    return Comment(
        id=doc["id"],
        author=actor_from_document(doc.get("author") or {}),
        body=doc["body"],
        internal=bool(doc.get("internal")),
        attachments=tuple(
            Attachment(a["name"], a["content_type"], int(a["size_bytes"]), a["url"])
            for a in doc.get("attachments") or ()
        ),
        created_at=as_utc(doc["created_at"]),
    )


def comment_to_proto(comment: Comment) -> tickets_pb2.Comment:
    return tickets_pb2.Comment(
        id=comment.id,
        author=actor_to_proto(comment.author),
        body=comment.body,
        internal=comment.internal,
        attachments=[
            tickets_pb2.Attachment(
                name=a.name, content_type=a.content_type, size_bytes=a.size_bytes, url=a.url
            )
            for a in comment.attachments
        ],
        created_at=_timestamp(comment.created_at),
    )


def change_to_proto(change: FieldChange) -> tickets_pb2.FieldChange:
    return tickets_pb2.FieldChange(field=change.field, old_value=change.old, new_value=change.new)


def history_entry_from_document(doc: dict[str, Any]) -> HistoryEntry:
    return HistoryEntry(
        at=as_utc(doc["at"]),
        actor=actor_from_document(doc.get("actor") or {}),
        action=doc["action"],
        changes=tuple(
            FieldChange(field=c["field"], old=c["old"], new=c["new"])
            for c in doc.get("changes") or ()
        ),
        event_id=doc.get("event_id", ""),
        version=int(doc.get("version", 0)),
        reason=doc.get("reason", ""),
    )


def history_entry_to_proto(entry: HistoryEntry) -> tickets_pb2.HistoryEntry:
    return tickets_pb2.HistoryEntry(
        at=_timestamp(entry.at),
        actor=actor_to_proto(entry.actor),
        action=entry.action,
        changes=[change_to_proto(c) for c in entry.changes],
        event_id=entry.event_id,
        version=entry.version,
        reason=entry.reason,
    )


def _enum_values(enum: Any, proto_enum: Any, numbers: Any, prefix: str, path: str) -> list[Any]:
    values = []
    for i, number in enumerate(numbers):
        name = _enum_name(proto_enum, number, prefix)
        try:
            values.append(enum(name))
        except ValueError:
            raise InvalidArgument(
                [FieldViolation(f"{path}[{i}]", f"unknown value {number}")]
            ) from None
    return values


def _optional_datetime(request: Any, name: str) -> datetime | None:
    return as_utc(getattr(request, name).ToDatetime()) if request.HasField(name) else None


def query_from_proto(request: tickets_pb2.ListTicketsRequest) -> TicketQuery:
    statuses = list(request.statuses)
    if request.status:
        statuses.append(request.status)
    channel = None
    if request.channel:
        channel = _enum_values(
            Channel, common_pb2.Channel, [request.channel], "CHANNEL_", "channel"
        )[0]
    return ticket_query(
        statuses=_enum_values(
            Status, common_pb2.TicketStatus, statuses, "TICKET_STATUS_", "statuses"
        ),
        team=request.team,
        assignee_id=request.assignee_id,
        requester_email=request.requester_email,
        priorities=_enum_values(
            Priority, common_pb2.Priority, request.priorities, "PRIORITY_", "priorities"
        ),
        tags=list(request.tags),
        channel=channel,
        created_after=_optional_datetime(request, "created_after"),
        created_before=_optional_datetime(request, "created_before"),
        updated_after=_optional_datetime(request, "updated_after"),
        updated_before=_optional_datetime(request, "updated_before"),
        subject_contains=request.subject_contains,
        order=request.order_by,
        sla_states=list(request.sla_states),
    )
