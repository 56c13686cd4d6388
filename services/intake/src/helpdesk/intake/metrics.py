"""Intake's business metrics."""

from prometheus_client import Counter

TICKETS_CREATED = Counter(
    "helpdesk_tickets_created_total",
    "Tickets opened, by channel and priority.",
    ["channel", "priority"],
)
TICKETS_DEDUPLICATED = Counter(
    "helpdesk_tickets_deduplicated_total",
    "Requests added to an open ticket instead of opening another, by channel.",
    ["channel"],
)
INTAKE_MESSAGES = Counter(
    "helpdesk_intake_messages_total",
    "Messages read from the intake topic, by outcome (created, duplicate, dead_letter).",
    ["outcome"],
)
