"""Prometheus metrics shared by every service (RED of RPCs, outbox relay, consumer lag)."""

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

GRPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by method and status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
GRPC_HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time to handle an RPC on the server.",
    ["grpc_service", "grpc_method"],
    buckets=LATENCY_BUCKETS,
)
HTTP_HANDLED = Counter(
    "http_server_requests_total",
    "HTTP requests completed, by method, route and status code.",
    ["method", "route", "code"],
)
HTTP_HANDLING_SECONDS = Histogram(
    "http_server_request_duration_seconds",
    "Time to handle an HTTP request.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
)
OUTBOX_PUBLISHED = Counter(
    "helpdesk_outbox_published_total",
    "Events published from the outbox to Kafka.",
    ["topic", "event_type"],
)
OUTBOX_PUBLISH_FAILURES = Counter(
    "helpdesk_outbox_publish_failures_total",
    "Outbox publish attempts that failed and will be retried.",
)
OUTBOX_LAG_SECONDS = Histogram(
    "helpdesk_outbox_lag_seconds",
    "Time from an event being stored to its publication on Kafka.",
    buckets=LATENCY_BUCKETS,
)
DEPENDENCY_UP = Gauge(
    "helpdesk_dependency_up",
    "1 when the last health check of a dependency succeeded.",
    ["dependency"],
)
DEAD_LETTERS = Counter(
    "helpdesk_dead_letters_total",
    "Messages sent to a dead-letter topic, by source topic and reason kind.",
    ["topic", "reason"],
)
KAFKA_CONSUMER_LAG = Gauge(
    "helpdesk_kafka_consumer_lag",
    "Messages a consumer group has still to read: the partition's log end offset minus the "
    "group's committed offset.",
    ["group", "topic", "partition"],
)
