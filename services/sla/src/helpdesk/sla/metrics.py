"""The SLA service's metrics: open timers, how late they fire, warnings, breaches, compliance."""

from prometheus_client import Counter, Gauge, Histogram

OPEN_TIMERS = Gauge(
    "helpdesk_sla_open_timers",
    "Timers armed in this replica's memory for the coming minutes.",
)
FIRING_LAG = Histogram(
    "helpdesk_sla_timer_lag_seconds",
    "How late a timer fired after its due instant.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
WARNINGS = Counter(
    "helpdesk_sla_warnings_total",
    "Tickets at risk: a share of a target used.",
    ["metric", "policy", "team"],
)
BREACHES = Counter(
    "helpdesk_sla_breaches_total",
    "Targets missed.",
    ["metric", "policy", "team"],
)
MET = Counter(
    "helpdesk_sla_met_total",
    "Targets reached, in time (breached=false) or late (breached=true).",
    ["metric", "policy", "team", "breached"],
)
AUTO_CLOSED = Counter(
    "helpdesk_sla_auto_closed_total",
    "Tickets closed after waiting on a silent requester.",
)
