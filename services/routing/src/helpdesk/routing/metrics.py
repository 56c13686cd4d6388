"""Routing's business metrics: decisions and why, time to assignment, queues and load."""

from prometheus_client import Counter, Gauge, Histogram

DECISIONS = Counter(
    "helpdesk_routing_decisions_total",
    "Routing decisions, by the rule that decided (or none) and the outcome "
    "(assigned, queued, escalated, handed_over).",
    ["rule", "outcome"],
)
TIME_TO_ASSIGNMENT = Histogram(
    "helpdesk_routing_time_to_assignment_seconds",
    "From the ticket's creation to its first assignment to an agent.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14400, 86400),
)
QUEUE_DEPTH = Gauge(
    "helpdesk_routing_queue_depth",
    "Tickets waiting in a team's queue for an agent.",
    ["team"],
)
AGENT_LOAD = Gauge(
    "helpdesk_routing_agent_open_tickets",
    "Tickets an agent holds now.",
    ["agent"],
)
AGENT_CAPACITY = Gauge(
    "helpdesk_routing_agent_capacity",
    "The most tickets an agent may hold at once.",
    ["agent"],
)
