"""Trace context stored with later work (events, timers, deliveries) and continued from it."""

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from helpdesk.core.telemetry import continued_span, current_traceparent, stored_context

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
SPAN_ID = 0xB7AD6B7169203331
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    trace.set_tracer_provider(provider)
    # The global provider is set once per process: no other test may have set it first.
    assert trace.get_tracer_provider() is provider
    yield exported
    exported.clear()


def caller_span() -> NonRecordingSpan:
    return NonRecordingSpan(
        SpanContext(
            trace_id=TRACE_ID,
            span_id=SPAN_ID,
            is_remote=False,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
    )


def test_current_traceparent_names_the_current_span() -> None:
    with trace.use_span(caller_span()):
        assert current_traceparent() == TRACEPARENT


def test_current_traceparent_is_empty_outside_a_trace() -> None:
    assert current_traceparent() == ""


@pytest.mark.parametrize(
    "stored", ["", "not-a-traceparent", "00-" + "0" * 32 + "-" + "0" * 16 + "-01"]
)
def test_no_context_from_an_empty_or_malformed_traceparent(stored: str) -> None:
    assert stored_context(stored) is None


def test_stored_context_is_the_remote_parent_it_names() -> None:
    context = stored_context(TRACEPARENT)

    assert context is not None
    parent = trace.get_current_span(context).get_span_context()
    assert (parent.trace_id, parent.span_id, parent.is_remote) == (TRACE_ID, SPAN_ID, True)


def test_continued_span_is_a_child_of_the_stored_traceparent(
    exporter: InMemorySpanExporter,
) -> None:
    exporter.clear()
    # Whatever runs now (another event's span) is not the parent: the stored trace is.
    other = NonRecordingSpan(
        SpanContext(trace_id=1, span_id=2, is_remote=False, trace_flags=TraceFlags(1))
    )
    with (
        trace.use_span(other),
        continued_span(
            "sla.timer.fire",
            TRACEPARENT,
            kind=trace.SpanKind.CLIENT,
            attributes={"helpdesk.ticket.id": "t-1"},
        ) as span,
    ):
        inside = current_traceparent()

    (finished,) = exporter.get_finished_spans()
    assert finished.name == "sla.timer.fire"
    assert finished.kind is trace.SpanKind.CLIENT
    assert finished.context is not None
    assert finished.parent is not None
    assert finished.context.trace_id == TRACE_ID
    assert finished.parent.span_id == SPAN_ID
    assert finished.attributes == {"helpdesk.ticket.id": "t-1"}
    # Inside, the span is current: events stored there carry it onward.
    assert inside.split("-")[2] == f"{span.get_span_context().span_id:016x}"


def test_continued_span_without_a_stored_trace_starts_one(
    exporter: InMemorySpanExporter,
) -> None:
    exporter.clear()
    with continued_span("notification.deliver email", ""):
        pass

    (finished,) = exporter.get_finished_spans()
    assert finished.parent is None
