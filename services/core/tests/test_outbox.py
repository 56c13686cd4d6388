"""The outbox's pure parts: events as sub-documents, the fields that enqueue them, their order."""

import uuid
from datetime import UTC, datetime, timedelta

from bson import Binary
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from helpdesk.core.kafka import CloudEvent
from helpdesk.core.outbox import OutboxEvent, outbox_fields, pending_events

MADE_AT = datetime(2024, 5, 1, 9, 30, 15, 123456, tzinfo=UTC)
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def make_event(
    sequence: int = 1, *, event_id: str = "", time: datetime = MADE_AT, subject: str = "t-1"
) -> OutboxEvent:
    return OutboxEvent(
        cloud_event=CloudEvent(
            id=event_id or str(uuid.uuid4()),
            type="helpdesk.ticket.created.v1",
            source="helpdesk/intake",
            time=time,
            subject=subject,
        ),
        topic="helpdesk.tickets.events.v1",
        key="t-1",
        payload=b"\x0a\x03t-1\x00\xff",
        sequence=sequence,
        traceparent=TRACEPARENT,
    )


# --- documents ---


def test_to_document_shape() -> None:
    event = make_event(event_id="e-1", sequence=3)

    doc = event.to_document()

    # Binary, so BSON keeps the bytes as they are.
    assert isinstance(doc["payload"], Binary)
    assert {**doc, "payload": bytes(doc["payload"])} == {
        "id": "e-1",
        "type": "helpdesk.ticket.created.v1",
        "source": "helpdesk/intake",
        "subject": "t-1",
        "time": MADE_AT,
        "topic": "helpdesk.tickets.events.v1",
        "key": "t-1",
        "payload": b"\x0a\x03t-1\x00\xff",
        "sequence": 3,
        "traceparent": TRACEPARENT,
    }


def test_document_round_trip() -> None:
    event = make_event(sequence=7)
    assert OutboxEvent.from_document(event.to_document()) == event


def test_document_round_trip_without_subject_or_trace() -> None:
    event = make_event(subject="")
    event = OutboxEvent(**{**event.__dict__, "traceparent": ""})
    assert OutboxEvent.from_document(event.to_document()) == event


def test_naive_time_from_mongodb_comes_back_as_utc() -> None:
    doc = make_event().to_document()
    # PyMongo without tz_aware hands back naive UTC datetimes, and bytes for Binary.
    doc["time"] = MADE_AT.replace(tzinfo=None)
    doc["payload"] = bytes(doc["payload"])

    event = OutboxEvent.from_document(doc)

    assert event.cloud_event.time == MADE_AT
    assert event.cloud_event.time.utcoffset() == timedelta(0)
    assert event.payload == b"\x0a\x03t-1\x00\xff"
    assert type(event.payload) is bytes


def test_document_of_an_older_shape_reads_with_defaults() -> None:
    doc = make_event().to_document()
    del doc["subject"]
    del doc["traceparent"]

    event = OutboxEvent.from_document(doc)

    assert event.cloud_event.subject == ""
    assert event.traceparent == ""


# --- outbox_fields ---


def test_outbox_fields_put_each_event_under_its_id_and_flag_the_document() -> None:
    first, second = make_event(1), make_event(2)

    fields = outbox_fields(iter([first, second]))

    assert fields == {
        f"outbox.{first.cloud_event.id}": first.to_document(),
        f"outbox.{second.cloud_event.id}": second.to_document(),
        "outbox_pending": True,
    }


def test_outbox_fields_of_no_events_change_nothing() -> None:
    assert outbox_fields([]) == {}


# --- pending_events ---


def test_pending_events_are_ordered_by_sequence() -> None:
    events = [make_event(3), make_event(1), make_event(2)]
    doc = {"_id": "t-1", "outbox": {e.cloud_event.id: e.to_document() for e in events}}

    assert [e.sequence for e in pending_events(doc)] == [1, 2, 3]


def test_pending_events_of_one_sequence_are_ordered_by_time() -> None:
    later = make_event(1, time=MADE_AT + timedelta(seconds=1))
    earlier = make_event(1, time=MADE_AT)
    doc = {"outbox": {e.cloud_event.id: e.to_document() for e in (later, earlier)}}

    assert pending_events(doc) == [earlier, later]


def test_pending_events_read_back_what_outbox_fields_wrote() -> None:
    events = [make_event(2), make_event(1)]
    # What MongoDB makes of `$set: {"outbox.<id>": ...}`: a nested sub-document.
    doc = {
        "outbox": {
            path.removeprefix("outbox."): value
            for path, value in outbox_fields(events).items()
            if path.startswith("outbox.")
        }
    }
    assert pending_events(doc) == [events[1], events[0]]


def test_no_pending_events() -> None:
    assert pending_events({"_id": "t-1"}) == []
    assert pending_events({"_id": "t-1", "outbox": {}}) == []
    assert pending_events({"_id": "t-1", "outbox": None}) == []


# --- OutboxEvent.new ---


def test_new_event_is_stamped_with_a_fresh_id_and_now() -> None:
    before = datetime.now(UTC)
    one = OutboxEvent.new(
        event_type="helpdesk.ticket.created.v1",
        source="helpdesk/intake",
        topic="helpdesk.tickets.events.v1",
        key="t-1",
        payload=b"p",
        sequence=1,
    )
    other = OutboxEvent.new(
        event_type="helpdesk.ticket.created.v1",
        source="helpdesk/intake",
        topic="helpdesk.tickets.events.v1",
        key="t-1",
        payload=b"p",
        sequence=1,
    )

    assert one.cloud_event.id != other.cloud_event.id
    assert uuid.UUID(one.cloud_event.id)
    assert before <= one.cloud_event.time <= datetime.now(UTC)
    assert one.cloud_event.subject == "t-1"  # the key: the ticket the event is about


def test_new_event_keeps_the_current_trace() -> None:
    span = NonRecordingSpan(
        SpanContext(
            trace_id=0x0AF7651916CD43DD8448EB211C80319C,
            span_id=0xB7AD6B7169203331,
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
    )
    with trace.use_span(span):
        event = OutboxEvent.new(
            event_type="helpdesk.ticket.created.v1",
            source="helpdesk/intake",
            topic="helpdesk.tickets.events.v1",
            key="t-1",
            payload=b"p",
            sequence=1,
        )
    assert event.traceparent == TRACEPARENT


def test_new_event_outside_a_trace_has_no_traceparent() -> None:
    event = OutboxEvent.new(
        event_type="helpdesk.ticket.created.v1",
        source="helpdesk/intake",
        topic="helpdesk.tickets.events.v1",
        key="t-1",
        payload=b"p",
        sequence=1,
    )
    assert event.traceparent == ""
