"""Intake's business metrics."""

import asyncio
from collections.abc import Awaitable, Callable

from prometheus_client import Counter, Gauge, Histogram

from helpdesk.core.logging import get_logger
from helpdesk.intake.lifecycle import Action, Change

log = get_logger(__name__)

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
SUGGESTION_CALLS = Counter(
    "helpdesk_intake_suggestion_calls_total",
    "Calls to the knowledge base for a new ticket's suggestions, by outcome "
    "(found, none, failed: the ticket was created without).",
    ["outcome"],
)
ALERTS_RECEIVED = Counter(
    "helpdesk_alertmanager_alerts_total",
    "Alerts received from Alertmanager, by what they did to their ticket.",
    ["outcome"],
)
MAIL_MESSAGES = Counter(
    "helpdesk_intake_mail_messages_total",
    "E-mail messages read, by outcome (created, commented, duplicate, ignored, refused).",
    ["outcome"],
)
CHAT_MESSAGES = Counter(
    "helpdesk_intake_chat_messages_total",
    "Chat messages received (Telegram, Slack), by platform and outcome.",
    ["platform", "outcome"],
)
INTAKE_MESSAGES = Counter(
    "helpdesk_intake_messages_total",
    "Messages read from the intake topic, by outcome (created, duplicate, dead_letter).",
    ["outcome"],
)

# Seconds, from minutes to weeks: first responses and resolutions of a service desk.
DURATION_BUCKETS = (60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 604800)

FIRST_RESPONSE_SECONDS = Histogram(
    "helpdesk_first_response_seconds",
    "Time from a ticket's creation to the first public agent reply, by channel and priority.",
    ["channel", "priority"],
    buckets=DURATION_BUCKETS,
)
RESOLUTION_SECONDS = Histogram(
    "helpdesk_resolution_seconds",
    "Time from a ticket's creation to its resolution, by channel and priority.",
    ["channel", "priority"],
    buckets=DURATION_BUCKETS,
)
TICKETS_RESOLVED = Counter(
    "helpdesk_tickets_resolved_total", "Tickets resolved, by team.", ["team"]
)
TICKETS_REOPENED = Counter(
    "helpdesk_tickets_reopened_total", "Resolved tickets that came back, by team.", ["team"]
)
RATINGS = Counter(
    "helpdesk_csat_ratings_total",
    "CSAT ratings by verdict (satisfied: 4-5, neutral: 3, unsatisfied: 1-2).",
    ["verdict"],
)
STATUS_CHANGES = Counter(
    "helpdesk_ticket_status_changes_total", "Status moves, by new status.", ["status"]
)


def observe_change(change: Change) -> None:
    """Counts what a stored change did for the business dashboards."""
    before, after = change.before, change.ticket
    labels = (after.channel.value, after.priority.value)
    if after.first_response_at and not before.first_response_at:
        FIRST_RESPONSE_SECONDS.labels(*labels).observe(
            (after.first_response_at - after.created_at).total_seconds()
        )
    for action in change.actions:
        if action == Action.RESOLVED and after.resolved_at:
            RESOLUTION_SECONDS.labels(*labels).observe(
                (after.resolved_at - after.created_at).total_seconds()
            )
            TICKETS_RESOLVED.labels(after.team).inc()
        elif action == Action.REOPENED:
            TICKETS_REOPENED.labels(after.team).inc()
        elif action == Action.STATUS_CHANGED:
            STATUS_CHANGES.labels(after.status.value).inc()
        elif action == Action.RATED and after.rating:
            score = after.rating.score
            RATINGS.labels(
                "satisfied" if score >= 4 else "neutral" if score == 3 else "unsatisfied"
            ).inc()


BACKLOG = Gauge(
    "helpdesk_backlog_tickets",
    "Tickets still being worked (new, open, pending, on hold), by team and status.",
    ["team", "status"],
)


async def watch_backlog(
    count: Callable[[], Awaitable[dict[tuple[str, str], int]]], interval: float
) -> None:
    """Refreshes the backlog gauge every `interval` seconds until cancelled."""
    while True:
        try:
            counts = await count()
        except Exception:
            log.warning("backlog_refresh_failed", exc_info=True)
        else:
            BACKLOG.clear()  # a team whose backlog emptied must not keep its last value
            for (team, status), n in counts.items():
                BACKLOG.labels(team, status).set(n)
        await asyncio.sleep(interval)
