"""Prometheus Alertmanager's webhook (payload version 4) as intake reads it: pure rules.

One ticket per alert fingerprint: its request id is `alertmanager:<fingerprint>`, so the
ticket id follows from it and a repeated notification never opens a second ticket. The
ticket records the alert's last known state in custom fields (`alert_status`,
`alert_starts_at`, `alert_digest` of the annotations); a notification that changes none of
them changes nothing, one that does adds a system note (a new firing of a resolved ticket
reopens it), and a resolved alert resolves its ticket when the rules say so. A closed ticket
is final: a later firing of the same alert opens a follow-up ticket keyed by fingerprint and
start time (`alertmanager:<fingerprint>:<startsAt>`).

No I/O here: the HTTP edge parses with `parse_notification`, asks `plan_for` what to do and
carries it out through the ticket commands.
"""

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from helpdesk.core.errors import FieldViolation, InvalidArgument
from helpdesk.intake.domain import (
    CONTROL_CHARACTERS,
    MAX_CUSTOM_VALUE,
    MAX_DESCRIPTION,
    MAX_SUBJECT,
    MAX_TAG,
    MAX_TAGS,
    OPEN_STATUSES,
    Category,
    Channel,
    Priority,
    Status,
    Ticket,
    TicketDraft,
    json_string,
)

PAYLOAD_VERSION = "4"
REQUEST_PREFIX = "alertmanager:"
# Who changes tickets on Alertmanager's behalf (history and notes name it).
ACTOR_ID = "alertmanager"
MAX_ALERTS = 500
MAX_LABELS = 100
# RFC 3339 with nanoseconds and an offset is 35; the follow-up key must fit 128.
MAX_TIME = 40
FIRING = "firing"
RESOLVED = "resolved"

_FINGERPRINT = re.compile(r"[0-9A-Za-z_-]{1,64}")
_NOT_TAG = re.compile(r"[^\w\-.:/]+")
_NOT_TEAM = re.compile(r"[^a-z0-9_.-]+")
# Where the alert's state lives on its ticket.
FIELD_FINGERPRINT = "alert_fingerprint"
FIELD_NAME = "alert_name"
FIELD_STATUS = "alert_status"
FIELD_STARTS_AT = "alert_starts_at"
FIELD_DIGEST = "alert_digest"
FIELD_SOURCE = "alert_source"


@dataclass(frozen=True)
class AlertRules:
    """How labels become ticket fields; from settings (`HELPDESK_ALERTMANAGER_*`)."""

    requester_email: str = "alertmanager@helpdesk.local"
    requester_name: str = "Alertmanager"
    priority_label: str = "severity"
    priorities: Mapping[str, Priority] = field(
        default_factory=lambda: {
            "critical": Priority.URGENT,
            "warning": Priority.HIGH,
            "info": Priority.LOW,
        }
    )
    default_priority: Priority = Priority.NORMAL
    category_label: str = "category"
    default_category: Category = Category.INCIDENT
    team_label: str = "team"
    tag_labels: tuple[str, ...] = ("alertname", "severity")
    resolve_on_resolved: bool = True


@dataclass(frozen=True)
class Alert:
    fingerprint: str
    status: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    starts_at: str = ""
    ends_at: str = ""
    generator_url: str = ""

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")


@dataclass(frozen=True)
class Notification:
    receiver: str
    status: str
    external_url: str
    alerts: tuple[Alert, ...]


def _strings(
    value: Any, path: str, problems: list[FieldViolation], *, limit: int = MAX_LABELS
) -> dict[str, str]:
    """An object of string values (null: empty), or {} with a violation."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        problems.append(FieldViolation(path, "must be an object of string values"))
        return {}
    if len(value) > limit:
        problems.append(FieldViolation(path, f"at most {limit} entries; got {len(value)}"))
        return {}
    return {str(k): v for k, v in value.items()}


def _status(obj: dict[str, Any], path: str, problems: list[FieldViolation]) -> str:
    raw = json_string(obj, "status", path, problems)
    if raw not in (FIRING, RESOLVED):
        problems.append(FieldViolation(path, f"must be firing or resolved; got {raw!r}"))
    return raw


def _alert(raw: Any, path: str, problems: list[FieldViolation]) -> Alert | None:
    if not isinstance(raw, dict):
        problems.append(FieldViolation(path, "must be an object"))
        return None
    found = len(problems)
    fingerprint = json_string(raw, "fingerprint", f"{path}.fingerprint", problems)
    if not _FINGERPRINT.fullmatch(fingerprint):
        problems.append(
            FieldViolation(
                f"{path}.fingerprint",
                f"is required: 1-64 letters, digits, '-' or '_'; got {fingerprint!r}",
            )
        )
    times = {}
    for key in ("startsAt", "endsAt"):
        times[key] = json_string(raw, key, f"{path}.{key}", problems)
        if len(times[key]) > MAX_TIME or CONTROL_CHARACTERS.search(times[key]):
            problems.append(FieldViolation(f"{path}.{key}", "is not a timestamp"))
    alert = Alert(
        fingerprint=fingerprint,
        status=_status(raw, f"{path}.status", problems),
        labels=_strings(raw.get("labels"), f"{path}.labels", problems),
        annotations=_strings(raw.get("annotations"), f"{path}.annotations", problems),
        starts_at=times["startsAt"],
        ends_at=times["endsAt"],
        generator_url=json_string(raw, "generatorURL", f"{path}.generatorURL", problems),
    )
    return alert if len(problems) == found else None


def parse_notification(data: Any) -> Notification:
    """A webhook notification from its JSON; wrong shapes are refused by field."""
    if not isinstance(data, dict):
        raise InvalidArgument([FieldViolation("$", "must be a JSON object")])
    problems: list[FieldViolation] = []
    version = data.get("version")
    if version is not None and version != PAYLOAD_VERSION:
        problems.append(
            FieldViolation("version", f"must be {PAYLOAD_VERSION!r} (webhook payload version 4)")
        )
    raw_alerts = data.get("alerts")
    alerts: list[Alert] = []
    if not isinstance(raw_alerts, list):
        problems.append(FieldViolation("alerts", "is required: a list of alerts"))
    elif len(raw_alerts) > MAX_ALERTS:
        problems.append(
            FieldViolation("alerts", f"at most {MAX_ALERTS} alerts; got {len(raw_alerts)}")
        )
    else:
        for i, raw in enumerate(raw_alerts):
            alert = _alert(raw, f"alerts[{i}]", problems)
            if alert is not None:
                alerts.append(alert)
    receiver = json_string(data, "receiver", "receiver", problems)
    external_url = json_string(data, "externalURL", "externalURL", problems)
    status = json_string(data, "status", "status", problems)
    if problems:
        raise InvalidArgument(problems)
    return Notification(receiver, status, external_url, tuple(alerts))


def request_id(alert: Alert) -> str:
    """The idempotency key of the alert's ticket: one ticket per fingerprint."""
    return f"{REQUEST_PREFIX}{alert.fingerprint}"


def follow_up_request_id(alert: Alert) -> str:
    """The key of the ticket a firing opens after the fingerprint's ticket was closed."""
    # Stripped as the domain strips request ids, or a replay would look under another id.
    return f"{REQUEST_PREFIX}{alert.fingerprint}:{alert.starts_at.strip()}"


def _clean(text: str) -> str:
    """Text without control characters (the domain refuses them in one-line fields)."""
    return CONTROL_CHARACTERS.sub(" ", text)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _label(labels: Mapping[str, str], name: str) -> str:
    return labels.get(name, "").strip() if name else ""


def priority(alert: Alert, rules: AlertRules) -> Priority:
    """The priority its severity label maps to (any case), else the default."""
    value = _label(alert.labels, rules.priority_label).lower()
    return rules.priorities.get(value, rules.default_priority)


def category(alert: Alert, rules: AlertRules) -> Category:
    """The category its category label names, else the default (incident)."""
    value = _label(alert.labels, rules.category_label).lower()
    try:
        return Category(value)
    except ValueError:
        return rules.default_category


def team(alert: Alert, rules: AlertRules) -> str:
    """The team its team label names, made a team name ('' when it has none)."""
    value = _NOT_TEAM.sub("-", _label(alert.labels, rules.team_label).lower()).strip("-_.")
    return value[:100]


def tags(alert: Alert, rules: AlertRules) -> tuple[str, ...]:
    """`<label>:<value>` for each configured label the alert has, as valid tags."""
    found: list[str] = []
    for name in rules.tag_labels:
        value = _label(alert.labels, name)
        if not value:
            continue
        tag = _NOT_TAG.sub("_", f"{name}:{value}".lower())[:MAX_TAG].strip("_")
        if tag and tag not in found:
            found.append(tag)
    return tuple(found[:MAX_TAGS])


def digest(alert: Alert) -> str:
    """A short fingerprint of the annotations, to notice when they change."""
    text = json.dumps(dict(alert.annotations), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def state_fields(alert: Alert) -> dict[str, str]:
    """The custom fields that record the alert's state on its ticket."""
    fields = {
        FIELD_FINGERPRINT: alert.fingerprint,
        FIELD_NAME: _clip(_clean(alert.name), MAX_CUSTOM_VALUE),
        FIELD_STATUS: alert.status,
        FIELD_STARTS_AT: alert.starts_at,
        FIELD_DIGEST: digest(alert),
    }
    url = _clean(alert.generator_url)
    if url and len(url) <= MAX_CUSTOM_VALUE:
        fields[FIELD_SOURCE] = url
    return fields


def subject(alert: Alert) -> str:
    """`<alertname>: <summary>` (or the instance) and the fingerprint, which keeps two
    alerts with the same summary apart when intake deduplicates by subject."""
    name = alert.name or "Alert"
    summary = alert.annotations.get("summary") or alert.annotations.get("title") or ""
    instance = alert.labels.get("instance", "")
    core = f"{name}: {summary}" if summary else f"{name} on {instance}" if instance else name
    suffix = f" (alert {alert.fingerprint})"
    core = " ".join(_clean(core).split())
    return _clip(core, MAX_SUBJECT - len(suffix)) + suffix


def _listing(title: str, values: Mapping[str, str]) -> list[str]:
    if not values:
        return []
    return [f"{title}:", *(f"  {k} = {v}" for k, v in sorted(values.items()))]


def description(alert: Alert, notification: Notification | None = None) -> str:
    """What a person needs: the alert's own description, its labels, annotations, source."""
    text = alert.annotations.get("description") or alert.annotations.get("summary") or ""
    lines = [text.strip(), ""] if text.strip() else []
    since = f" since {alert.starts_at}" if alert.starts_at else ""
    lines.append(f"Alert {alert.name or alert.fingerprint} is {alert.status}{since}.")
    lines += _listing("Labels", alert.labels)
    other = {k: v for k, v in alert.annotations.items() if k not in ("description", "summary")}
    lines += _listing("Annotations", other)
    if alert.generator_url:
        lines.append(f"Source: {alert.generator_url}")
    if notification and notification.external_url:
        lines.append(f"Alertmanager: {notification.external_url}")
    lines.append(f"Fingerprint: {alert.fingerprint}")
    return _clip(_clean("\n".join(lines)), MAX_DESCRIPTION)


def ticket_draft(
    alert: Alert,
    rules: AlertRules,
    notification: Notification | None = None,
    *,
    key: str = "",
) -> TicketDraft:
    """The ticket request an alert makes (under `key`, by default its fingerprint's)."""
    return TicketDraft(
        request_id=key or request_id(alert),
        subject=subject(alert),
        description=description(alert, notification),
        requester_email=rules.requester_email,
        requester_name=rules.requester_name,
        priority=priority(alert, rules).value,
        category=category(alert, rules).value,
        channel=Channel.MONITORING.value,
        tags=tags(alert, rules),
        custom_fields=state_fields(alert),
    )


class Outcome(StrEnum):
    CREATED = "created"
    COMMENTED = "commented"
    REOPENED = "reopened"
    RESOLVED = "resolved"
    UNCHANGED = "unchanged"
    IGNORED = "ignored"


@dataclass(frozen=True)
class Plan:
    """What one notification of an alert does to the ticket it has."""

    outcome: Outcome
    # A system note to add first ("" for none).
    note: str = ""
    # "open" to reopen, "resolved" to resolve, "" to leave the status alone.
    status: str = ""
    # The ticket's custom fields with the alert's new state (None: leave them).
    custom_fields: dict[str, str] | None = None
    # The team to set on a ticket just opened ("" for none).
    team: str = ""
    # The ticket is closed and this is a later firing: look at the follow-up ticket.
    follow_up: bool = False


def _changes(ticket: Ticket, alert: Alert) -> list[str]:
    recorded = ticket.custom_fields
    changed = []
    if recorded.get(FIELD_STARTS_AT) != alert.starts_at:
        changed.append(f"started at {alert.starts_at or 'an unknown time'}")
    if recorded.get(FIELD_DIGEST) != digest(alert):
        changed.append("annotations changed")
    return changed


def _note(alert: Alert, headline: str) -> str:
    lines = [headline]
    summary = alert.annotations.get("summary")
    if summary:
        lines.append(f"Summary: {summary}")
    lines += _listing("Annotations", {k: v for k, v in alert.annotations.items() if k != "summary"})
    return _clip(_clean("\n".join(lines)), MAX_DESCRIPTION)


def plan_for(ticket: Ticket, alert: Alert, rules: AlertRules) -> Plan:
    """Decides what a notification does to the alert's ticket: only a change in the alert
    (status, start time, annotations) adds a note, so repeats of the same notification
    (Alertmanager's repeat_interval, HA replicas) change nothing."""
    recorded = ticket.custom_fields
    new_firing = recorded.get(FIELD_STARTS_AT) != alert.starts_at
    if ticket.status == Status.CLOSED:
        return Plan(Outcome.UNCHANGED, follow_up=new_firing)
    fresh = ticket.version == 1 and not ticket.team
    new_team = team(alert, rules) if fresh else ""
    state = state_fields(alert)
    if all(recorded.get(k) == v for k, v in state.items() if k != FIELD_SOURCE):
        return Plan(Outcome.UNCHANGED, team=new_team)
    fields = {**recorded, **state}
    if alert.status == FIRING:
        changes = ", ".join(_changes(ticket, alert)) or "firing again"
        if ticket.status == Status.RESOLVED and new_firing:
            note = _note(alert, f"Alertmanager: the alert fired again ({changes}).")
            return Plan(Outcome.REOPENED, note, Status.OPEN.value, fields, new_team)
        note = _note(alert, f"Alertmanager: the alert is still firing ({changes}).")
        return Plan(Outcome.COMMENTED, note, "", fields, new_team)
    ended = f" at {alert.ends_at}" if alert.ends_at else ""
    note = _note(alert, f"Alertmanager: the alert was resolved{ended}.")
    if rules.resolve_on_resolved and ticket.status in OPEN_STATUSES:
        return Plan(Outcome.RESOLVED, note, Status.RESOLVED.value, fields, new_team)
    return Plan(Outcome.COMMENTED, note, "", fields, new_team)
