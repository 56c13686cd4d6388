"""CloudEvents attributes as Kafka headers (binary mode), and dead-letter topic names."""

import uuid
from datetime import UTC, datetime

import pytest

from helpdesk.core.kafka import (
    PROTOBUF_CONTENT_TYPE,
    CloudEvent,
    ReceivedEvent,
    consumer_attributes,
    dead_letter_topic,
)

AT = datetime(2024, 5, 1, 9, 30, 15, 123456, tzinfo=UTC)


def test_headers_carry_every_attribute() -> None:
    event = CloudEvent(
        id="e-1",
        type="helpdesk.ticket.created.v1",
        source="helpdesk/intake",
        time=AT,
        subject="t-1",
    )

    assert event.headers() == {
        "ce_specversion": "1.0",
        "ce_id": "e-1",
        "ce_type": "helpdesk.ticket.created.v1",
        "ce_source": "helpdesk/intake",
        "ce_time": "2024-05-01T09:30:15.123456Z",
        "content-type": PROTOBUF_CONTENT_TYPE,
        "ce_subject": "t-1",
    }


def test_subject_header_only_when_there_is_a_subject() -> None:
    event = CloudEvent(id="e-1", type="t", source="s", time=AT)
    assert "ce_subject" not in event.headers()


@pytest.mark.parametrize(
    ("time", "ce_time"),
    [
        (AT, "2024-05-01T09:30:15.123456Z"),
        (datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC), "2024-12-31T23:59:59Z"),
    ],
)
def test_time_is_rfc3339_in_utc_with_z(time: datetime, ce_time: str) -> None:
    headers = CloudEvent(id="e-1", type="t", source="s", time=time).headers()
    assert headers["ce_time"] == ce_time
    assert datetime.fromisoformat(headers["ce_time"]) == time


def test_content_type_can_be_chosen() -> None:
    headers = CloudEvent(id="e-1", type="t", source="s", time=AT).headers("application/json")
    assert headers["content-type"] == "application/json"


def test_new_event_has_a_fresh_uuid_and_the_current_utc_time() -> None:
    before = datetime.now(UTC)
    one = CloudEvent.new("helpdesk.ticket.created.v1", "helpdesk/intake", subject="t-1")
    other = CloudEvent.new("helpdesk.ticket.created.v1", "helpdesk/intake")

    assert one.id != other.id
    assert uuid.UUID(one.id).version == 4
    assert before <= one.time <= datetime.now(UTC)
    assert one.headers()["ce_time"].endswith("Z")
    assert (one.type, one.source, one.subject, other.subject) == (
        "helpdesk.ticket.created.v1",
        "helpdesk/intake",
        "t-1",
        "",
    )


@pytest.mark.parametrize(
    ("group", "topic"),
    [
        ("helpdesk-intake", "helpdesk.dlq.helpdesk-intake.v1"),
        ("helpdesk-sla", "helpdesk.dlq.helpdesk-sla.v1"),
    ],
)
def test_dead_letter_topic(group: str, topic: str) -> None:
    assert dead_letter_topic(group) == topic


def test_consumer_attributes_follow_the_messaging_and_cloudevents_conventions() -> None:
    event = ReceivedEvent("helpdesk.ticket.created.v1", "e-1", "", b"")

    assert consumer_attributes("helpdesk.tickets.events.v1", "helpdesk-routing", event) == {
        "messaging.destination.name": "helpdesk.tickets.events.v1",
        "messaging.consumer.group.name": "helpdesk-routing",
        "messaging.operation.type": "process",
        "cloudevents.event_id": "e-1",
        "cloudevents.event_type": "helpdesk.ticket.created.v1",
    }


def test_consumer_attributes_leave_out_what_the_event_lacks() -> None:
    attributes = consumer_attributes("t", "g", ReceivedEvent("", "", "", b""))
    assert "cloudevents.event_id" not in attributes
    assert "cloudevents.event_type" not in attributes
