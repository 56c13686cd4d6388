"""Reading a ticket request off the intake topic: JSON or protobuf, and what is refused."""

import json
from typing import Any

import pytest

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.tickets.v1 import tickets_pb2
from helpdesk.core.errors import InvalidArgument
from helpdesk.intake.domain import TicketDraft
from helpdesk.intake.events import Unprocessable, parse_request

REQUEST_JSON = {
    "request_id": "monitoring-4711",
    "subject": "Disk almost full on db-3",
    "description": "/var is 97% full.",
    "requester": {"email": "alerts@example.com", "name": "Monitoring"},
    "priority": "high",
    "category": "incident",
    "tags": ["disk", "db"],
    "custom_fields": {"host": "db-3"},
}

EXPECTED_DRAFT = TicketDraft(
    request_id="monitoring-4711",
    subject="Disk almost full on db-3",
    description="/var is 97% full.",
    requester_email="alerts@example.com",
    requester_name="Monitoring",
    priority="high",
    category="incident",
    tags=("disk", "db"),
    custom_fields={"host": "db-3"},
)


def proto_request() -> tickets_pb2.CreateTicketRequest:
    return tickets_pb2.CreateTicketRequest(
        request_id="monitoring-4711",
        subject="Disk almost full on db-3",
        description="/var is 97% full.",
        requester=common_pb2.Requester(email="alerts@example.com", name="Monitoring"),
        priority=common_pb2.PRIORITY_HIGH,
        category=common_pb2.CATEGORY_INCIDENT,
        tags=["disk", "db"],
        custom_fields={"host": "db-3"},
    )


# --- JSON ---


@pytest.mark.parametrize(
    "content_type", ["", "application/json", "application/json; charset=utf-8", "text/plain"]
)
def test_json_is_the_default(content_type: str) -> None:
    assert parse_request(json.dumps(REQUEST_JSON).encode(), content_type) == EXPECTED_DRAFT


def test_json_in_utf8_keeps_non_ascii_text() -> None:
    body = json.dumps({"subject": "Drucker läuft nicht ☹"}, ensure_ascii=False).encode()
    assert parse_request(body, "application/json").subject == "Drucker läuft nicht ☹"


@pytest.mark.parametrize(
    "body",
    [b"", b"   ", b'{"subject": ', b"{'subject': 'single quotes'}", b"subject=hi", b"{}{}"],
)
def test_malformed_json_is_unprocessable(body: bytes) -> None:
    with pytest.raises(Unprocessable, match=r"^malformed JSON: \w"):
        parse_request(body, "application/json")


@pytest.mark.parametrize("body", [b"\xff\xfe{}", b'{"subject": "caf\xe9"}', b"\xc3("])
def test_body_that_is_not_utf8_is_unprocessable(body: bytes) -> None:
    with pytest.raises(Unprocessable, match=r"^body is not UTF-8: "):
        parse_request(body, "application/json")


@pytest.mark.parametrize("body", [b"1" * 5000, b"[" * 100_000], ids=["huge-int", "deep"])
def test_json_the_parser_gives_up_on_is_unprocessable(body: bytes) -> None:
    with pytest.raises(Unprocessable):
        parse_request(body, "application/json")


def test_protobuf_body_without_the_protobuf_content_type_is_not_misread() -> None:
    with pytest.raises(Unprocessable):
        parse_request(proto_request().SerializeToString(), "application/json")


# --- wrong shapes inside valid JSON ---


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([REQUEST_JSON], "$"),
        ("a ticket", "$"),
        (None, "$"),
        ({**REQUEST_JSON, "subject": 42}, "subject"),
        ({**REQUEST_JSON, "requester": {"email": ["a@b.co"]}}, "requester.email"),
        ({**REQUEST_JSON, "requester": "alerts@example.com"}, "requester"),
        ({**REQUEST_JSON, "tags": "disk"}, "tags"),
        ({**REQUEST_JSON, "custom_fields": {"host": 3}}, "custom_fields"),
    ],
)
def test_wrong_field_types_are_refused_by_field(data: Any, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_request(json.dumps(data).encode(), "application/json")
    assert [v.field for v in caught.value.violations] == [field]


# --- protobuf ---


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-protobuf",
        "application/x-protobuf; proto=helpdesk.api.tickets.v1.CreateTicketRequest",
        "application/protobuf",
    ],
)
def test_protobuf_create_ticket_request(content_type: str) -> None:
    draft = parse_request(proto_request().SerializeToString(), content_type)
    assert draft == EXPECTED_DRAFT


def test_empty_protobuf_body_is_an_empty_request() -> None:
    # Every proto3 field has a default, so zero bytes are a valid (and empty) message.
    assert parse_request(b"", "application/x-protobuf") == TicketDraft()


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xff\xff\xff",
        b"\x12\x10too short",  # subject claims 16 bytes, has 9
        b"\x12\x02\xff\xfe",  # subject that is not UTF-8
        json.dumps(REQUEST_JSON).encode(),
    ],
)
def test_garbage_protobuf_is_unprocessable(body: bytes) -> None:
    with pytest.raises(Unprocessable, match=r"^malformed protobuf CreateTicketRequest: "):
        parse_request(body, "application/x-protobuf")
