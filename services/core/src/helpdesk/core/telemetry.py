"""Traces (OpenTelemetry, OTLP when configured) and Prometheus metrics for a service."""

import os

from opentelemetry import trace
from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorClient
from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
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


def start_metrics_server(port: int, registry: CollectorRegistry = REGISTRY) -> None:
    """Serves /metrics for Prometheus; port 0 means no endpoint (several replicas in tests)."""
    if port:
        start_http_server(port, registry=registry)
        log.info("metrics_listening", port=port)
