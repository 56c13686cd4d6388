"""Translations of a ticket between the domain, protobuf and MongoDB documents."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.tickets.v1 import tickets_pb2
from helpdesk.core.errors import InvalidArgument
from helpdesk.intake.domain import (
    ArticleSuggestion,
    Category,
    Channel,
    Priority,
    Requester,
    Status,
    Ticket,
    TicketDraft,
    validate_new_ticket,
)
from helpdesk.intake.mapping import (
    CATEGORY_TO_PROTO,
    CHANNEL_TO_PROTO,
    PRIORITY_TO_PROTO,
    STATUS_FROM_PROTO,
    STATUS_TO_PROTO,
    draft_from_proto,
    ticket_from_document,
    ticket_to_document,
    ticket_to_proto,
)

CREATED = datetime(2024, 5, 1, 9, 30, 15, 123456, tzinfo=UTC)


def make_ticket(**overrides: Any) -> Ticket:
    ticket = Ticket(
        id="6632f1c2a1b2c3d4e5f60718",
        number="HD-1042",
        sequence=1042,
        request_id="req-1",
        subject="VPN is down",
        description="Connection refused.",
        requester=Requester(
            email="ann@example.com", name="Ann", organization="ACME", language="en"
        ),
        priority=Priority.HIGH,
        category=Category.SERVICE_REQUEST,
        channel=Channel.EMAIL,
        status=Status.ON_HOLD,
        tags=("vpn", "network"),
        custom_fields={"office": "berlin"},
        created_at=CREATED,
        updated_at=CREATED + timedelta(minutes=5),
        version=3,
    )
    return replace(ticket, **overrides)


# --- enums ---

ENUM_MAPPINGS = [
    (Priority, PRIORITY_TO_PROTO, common_pb2.Priority, "PRIORITY_"),
    (Category, CATEGORY_TO_PROTO, common_pb2.Category, "CATEGORY_"),
    (Channel, CHANNEL_TO_PROTO, common_pb2.Channel, "CHANNEL_"),
    (Status, STATUS_TO_PROTO, common_pb2.TicketStatus, "TICKET_STATUS_"),
]


@pytest.mark.parametrize(("enum", "to_proto", "proto_enum", "prefix"), ENUM_MAPPINGS)
def test_every_domain_value_has_its_own_proto_value(
    enum: Any, to_proto: dict[Any, int], proto_enum: Any, prefix: str
) -> None:
    assert set(to_proto) == set(enum)
    for member in enum:
        assert proto_enum.Name(to_proto[member]) == prefix + member.value.upper()
    # ... and every proto value but the unspecified zero is a domain value.
    specified = {number for number in proto_enum.values() if number != 0}
    assert set(to_proto.values()) == specified


def test_status_from_proto_inverts_status_to_proto() -> None:
    assert {STATUS_FROM_PROTO[STATUS_TO_PROTO[s]] for s in Status} == set(Status)
    assert 0 not in STATUS_FROM_PROTO


# --- ticket_to_proto ---


def test_ticket_to_proto_carries_every_field() -> None:
    ticket = make_ticket()

    proto = ticket_to_proto(ticket)

    assert proto == tickets_pb2.Ticket(
        id="6632f1c2a1b2c3d4e5f60718",
        number="HD-1042",
        subject="VPN is down",
        description="Connection refused.",
        requester=common_pb2.Requester(
            email="ann@example.com", name="Ann", organization="ACME", language="en"
        ),
        priority=common_pb2.PRIORITY_HIGH,
        category=common_pb2.CATEGORY_SERVICE_REQUEST,
        channel=common_pb2.CHANNEL_EMAIL,
        status=common_pb2.TICKET_STATUS_ON_HOLD,
        tags=["vpn", "network"],
        custom_fields={"office": "berlin"},
        created_at=proto.created_at,
        updated_at=proto.updated_at,
        version=3,
        request_id="req-1",
    )
    assert proto.created_at.ToDatetime(tzinfo=UTC) == ticket.created_at
    assert proto.updated_at.ToDatetime(tzinfo=UTC) == ticket.updated_at


def test_ticket_to_proto_keeps_the_instant_of_a_non_utc_time() -> None:
    berlin_summer = datetime(2024, 5, 1, 13, 30, tzinfo=timezone(timedelta(hours=2)))
    proto = ticket_to_proto(make_ticket(created_at=berlin_summer))
    assert proto.created_at.ToDatetime(tzinfo=UTC) == datetime(2024, 5, 1, 11, 30, tzinfo=UTC)


@pytest.mark.parametrize("status", list(Status))
def test_ticket_to_proto_status_reads_back(status: Status) -> None:
    assert STATUS_FROM_PROTO[ticket_to_proto(make_ticket(status=status)).status] is status


# --- documents ---


def test_ticket_to_document_shape() -> None:
    doc = ticket_to_document(make_ticket())

    assert doc == {
        "_id": "6632f1c2a1b2c3d4e5f60718",
        "number": "HD-1042",
        "sequence": 1042,
        "request_id": "req-1",
        "subject": "VPN is down",
        "description": "Connection refused.",
        "requester": {
            "email": "ann@example.com",
            "name": "Ann",
            "organization": "ACME",
            "language": "en",
        },
        "priority": "high",
        "category": "service_request",
        "channel": "email",
        "status": "on_hold",
        "tags": ["vpn", "network"],
        "custom_fields": {"office": "berlin"},
        "created_at": CREATED,
        "updated_at": CREATED + timedelta(minutes=5),
        "version": 3,
        "team": "",
        "tier": "",
        "assignee_id": "",
        "first_response_at": None,
        "resolved_at": None,
        "closed_at": None,
        "reopen_count": 0,
        "assignment_keys": [],
        "comment_keys": [],
        "rating": None,
        "review_required": False,
        "merged_into": "",
        "links": [],
        "suggestions": [],
        "solved_by_article_id": "",
    }
    # Plain strings and lists, which BSON stores as such.
    assert type(doc["priority"]) is str
    assert type(doc["tags"]) is list


@pytest.mark.parametrize(
    "ticket",
    [
        make_ticket(),
        make_ticket(
            request_id="",
            requester=Requester(email="b@x.io"),
            priority=Priority.LOW,
            category=Category.FEEDBACK,
            channel=Channel.MONITORING,
            status=Status.NEW,
            tags=(),
            custom_fields={},
            version=1,
        ),
        make_ticket(
            suggestions=(ArticleSuggestion("vpn-setup", "VPN setup", 2.5),),
            solved_by_article_id="vpn-setup",
        ),
    ],
)
def test_document_round_trip(ticket: Ticket) -> None:
    assert ticket_from_document(ticket_to_document(ticket)) == ticket


def test_naive_datetimes_from_mongodb_come_back_as_utc() -> None:
    doc = ticket_to_document(make_ticket())
    # PyMongo without tz_aware hands back naive UTC datetimes.
    doc["created_at"] = CREATED.replace(tzinfo=None)
    doc["updated_at"] = CREATED.replace(tzinfo=None)

    ticket = ticket_from_document(doc)

    assert ticket.created_at == CREATED
    assert ticket.created_at.tzinfo is not None
    assert ticket.updated_at.utcoffset() == timedelta(0)


def test_ticket_from_document_defaults_missing_optional_fields() -> None:
    doc = ticket_to_document(make_ticket())
    for optional in ("request_id", "tags", "custom_fields", "requester"):
        del doc[optional]

    ticket = ticket_from_document(doc)

    assert ticket.request_id == ""
    assert ticket.tags == ()
    assert ticket.custom_fields == {}
    assert ticket.requester == Requester(email="", name="", organization="", language="")


def test_ticket_from_document_refuses_an_unknown_enum_value() -> None:
    doc = ticket_to_document(make_ticket())
    doc["status"] = "archived"
    with pytest.raises(ValueError, match="archived"):
        ticket_from_document(doc)


# --- draft_from_proto ---


def test_draft_from_proto_carries_every_field() -> None:
    request = tickets_pb2.CreateTicketRequest(
        request_id="req-1",
        subject="VPN is down",
        description="Connection refused.",
        requester=common_pb2.Requester(
            email="Ann@Example.com", name="Ann", organization="ACME", language="en"
        ),
        priority=common_pb2.PRIORITY_URGENT,
        category=common_pb2.CATEGORY_SERVICE_REQUEST,
        channel=common_pb2.CHANNEL_WEB,
        tags=["vpn", "Network"],
        custom_fields={"office": "berlin"},
    )

    assert draft_from_proto(request) == TicketDraft(
        request_id="req-1",
        subject="VPN is down",
        description="Connection refused.",
        requester_email="Ann@Example.com",
        requester_name="Ann",
        requester_organization="ACME",
        requester_language="en",
        priority="urgent",
        category="service_request",
        channel="web",
        tags=("vpn", "Network"),
        custom_fields={"office": "berlin"},
    )


def minimal_request() -> tickets_pb2.CreateTicketRequest:
    return tickets_pb2.CreateTicketRequest(
        subject="Hi", description="Hello", requester=common_pb2.Requester(email="a@b.co")
    )


def test_unspecified_enums_become_empty_and_take_the_defaults() -> None:
    draft = draft_from_proto(minimal_request())

    assert (draft.priority, draft.category, draft.channel) == ("", "", "")
    new = validate_new_ticket(draft, default_channel=Channel.EVENT)
    assert (new.priority, new.category, new.channel) == (
        Priority.NORMAL,
        Category.QUESTION,
        Channel.EVENT,
    )


@pytest.mark.parametrize(
    ("field", "proto_value", "domain_value"),
    [("priority", PRIORITY_TO_PROTO[p], p) for p in Priority]
    + [("category", CATEGORY_TO_PROTO[c], c) for c in Category]
    + [("channel", CHANNEL_TO_PROTO[c], c) for c in Channel],
)
def test_every_proto_enum_value_validates_to_its_domain_value(
    field: str, proto_value: int, domain_value: Any
) -> None:
    request = minimal_request()
    setattr(request, field, proto_value)
    assert getattr(validate_new_ticket(draft_from_proto(request)), field) is domain_value


@pytest.mark.parametrize("field", ["priority", "category", "channel"])
def test_unknown_enum_number_is_refused_naming_the_field(field: str) -> None:
    # proto3 enums are open: a newer client may send a number this build does not know.
    request = minimal_request()
    setattr(request, field, 99)
    draft = draft_from_proto(request)

    with pytest.raises(InvalidArgument) as caught:
        validate_new_ticket(draft)
    assert [v.field for v in caught.value.violations] == [field]
    assert "99" in caught.value.violations[0].description
