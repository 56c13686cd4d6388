"""Traces (OpenTelemetry, OTLP when configured) and Prometheus metrics for a service."""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient
from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.util.types import AttributeValue
from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

from helpdesk.core.logging import get_logger

log = get_logger(__name__)


def setup_tracing(service: str) -> TracerProvider:
    """Installs the global tracer provider; spans go out by OTLP when an endpoint is set.

    The exporter reads the standard OTEL_EXPORTER_OTLP_* variables itself. Without an
    endpoint, spans are still made (so trace ids reach logs and Kafka headers) but not sent.
    """
    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service)})
    provider = TracerProvider(resource=resource)
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        log.info("tracing_export_enabled")
    trace.set_tracer_provider(provider)
    GrpcAioInstrumentorClient().instrument(  # type: ignore[no-untyped-call]
        tracer_provider=provider
    )
    PymongoInstrumentor().instrument(tracer_provider=provider)
    return provider


def shutdown_tracing(provider: TracerProvider) -> None:
    provider.shutdown()


def current_traceparent() -> str:
    """The W3C traceparent of the current span, to store with work done later (an event
    published by the outbox, a timer, a queued delivery); empty outside a trace."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", "")


def stored_context(traceparent: str) -> Context | None:
    """The trace context a stored traceparent names; None when it names none (empty or
    malformed), so the caller's own context applies."""
    if not traceparent:
        return None
    found = propagate.extract({"traceparent": traceparent})
    if not trace.get_current_span(found).get_span_context().is_valid:
        return None
    return found


@contextmanager
def continued_span(
    name: str,
    traceparent: str,
    *,
    kind: trace.SpanKind = trace.SpanKind.INTERNAL,
    attributes: Mapping[str, AttributeValue] | None = None,
) -> Iterator[trace.Span]:
    """A current span that is a child of the stored traceparent, so work done later, away
    from the request that caused it (a timer firing, a queued delivery), stays in its
    trace. Without a stored trace it is a child of the current context, if any."""
    tracer = trace.get_tracer("helpdesk.core")
    with tracer.start_as_current_span(
        name, context=stored_context(traceparent), kind=kind, attributes=attributes
    ) as span:
        yield span


def start_metrics_server(port: int, registry: CollectorRegistry = REGISTRY) -> None:
    """Serves /metrics for Prometheus; port 0 means no endpoint (several replicas in tests)."""
    if port:
        start_http_server(port, registry=registry)
        log.info("metrics_listening", port=port)
