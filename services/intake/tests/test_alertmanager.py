"""Alertmanager's webhook as pure rules: parsing, label mapping, and what each notification
does to the alert's ticket."""

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpdesk.core.errors import InvalidArgument
from helpdesk.intake import alertmanager
from helpdesk.intake.alertmanager import (
    Alert,
    AlertRules,
    Outcome,
    parse_notification,
    plan_for,
    state_fields,
    ticket_draft,
)
from helpdesk.intake.domain import (
    CONTROL_CHARACTERS,
    MAX_DESCRIPTION,
    MAX_SUBJECT,
    Category,
    Channel,
    Priority,
    Status,
    Ticket,
    TicketDraft,
    open_ticket,
    ticket_id_for,
    validate_new_ticket,
)
from helpdesk.intake.settings import IntakeSettings

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
STARTS = "2026-03-02T09:00:00.123456789Z"
RULES = AlertRules()


def raw_alert(**overrides: Any) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "status": "firing",
        "labels": {
            "alertname": "DiskAlmostFull",
            "instance": "db-7:9100",
            "severity": "critical",
            "team": "DBA",
        },
        "annotations": {
            "summary": "Disk almost full on db-7",
            "description": "Free space below 5% on /var.",
            "runbook_url": "https://runbooks.example.com/disk",
        },
        "startsAt": STARTS,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=disk",
        "fingerprint": "8d3f2a1b0c9e7f6a",
    }
    alert.update(overrides)
    return alert


def payload(*alerts: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "version": "4",
        "groupKey": '{}:{alertname="DiskAlmostFull"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "helpdesk",
        "groupLabels": {"alertname": "DiskAlmostFull"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts) or [raw_alert()],
    }
    data.update(overrides)
    return data


def alert(**overrides: Any) -> Alert:
    return parse_notification(payload(raw_alert(**overrides))).alerts[0]


def ticket_for(a: Alert, rules: AlertRules = RULES, **changes: Any) -> Ticket:
    """The ticket the alert opened, as the store would hand it back."""
    new = validate_new_ticket(ticket_draft(a, rules), Channel.MONITORING)
    ticket = open_ticket(
        new,
        ticket_id=ticket_id_for(new.request_id),
        number="HD-1",
        sequence=1,
        request_id=new.request_id,
        now=NOW,
    )
    return replace(ticket, **changes)


def violations(data: Any) -> set[str]:
    with pytest.raises(InvalidArgument) as caught:
        parse_notification(data)
    return {v.field for v in caught.value.violations}


# ---- Parsing


def test_parses_version_4_payload() -> None:
    notification = parse_notification(payload())
    assert notification.receiver == "helpdesk"
    assert notification.external_url == "http://alertmanager:9093"
    (a,) = notification.alerts
    assert a.fingerprint == "8d3f2a1b0c9e7f6a"
    assert a.status == "firing"
    assert a.name == "DiskAlmostFull"
    assert a.starts_at == STARTS
    assert a.annotations["runbook_url"].startswith("https://")


def test_bad_payload_names_each_field() -> None:
    data = payload(
        raw_alert(fingerprint="", status="burning"),
        raw_alert(labels={"severity": 3}, annotations=[], startsAt=7),
        "not an alert",
        version="3",
    )
    assert violations(data) == {
        "version",
        "alerts[0].fingerprint",
        "alerts[0].status",
        "alerts[1].labels",
        "alerts[1].annotations",
        "alerts[1].startsAt",
        "alerts[2]",
    }


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ([], "$"),
        ("alerts", "$"),
        ({"version": "4"}, "alerts"),
        ({"alerts": {"a": 1}}, "alerts"),
        ({"alerts": [{"status": "firing"}]}, "alerts[0].fingerprint"),
        ({"alerts": [raw_alert(fingerprint="a b")]}, "alerts[0].fingerprint"),
        ({"alerts": [raw_alert(fingerprint="f" * 65)]}, "alerts[0].fingerprint"),
        ({"alerts": [raw_alert(startsAt="2026" * 20)]}, "alerts[0].startsAt"),
        ({"alerts": [raw_alert()] * (alertmanager.MAX_ALERTS + 1)}, "alerts"),
        ({"alerts": [], "receiver": 5}, "receiver"),
    ],
)
def test_wrong_shapes_are_refused(data: Any, field: str) -> None:
    assert field in violations(data)


def test_nulls_are_absent_and_version_is_optional() -> None:
    data = payload(raw_alert(annotations=None, generatorURL=None, endsAt=None))
    del data["version"]
    (a,) = parse_notification(data).alerts
    assert a.annotations == {}
    assert a.generator_url == ""


# ---- Mapping labels to ticket fields


def test_draft_maps_labels_to_fields() -> None:
    a = alert()
    draft = ticket_draft(a, RULES)
    assert draft.request_id == "alertmanager:8d3f2a1b0c9e7f6a"
    assert draft.subject == "DiskAlmostFull: Disk almost full on db-7 (alert 8d3f2a1b0c9e7f6a)"
    assert draft.priority == "urgent"
    assert draft.category == "incident"
    assert draft.channel == "monitoring"
    assert draft.requester_email == "alertmanager@helpdesk.local"
    assert draft.tags == ("alertname:diskalmostfull", "severity:critical")
    assert draft.custom_fields["alert_fingerprint"] == "8d3f2a1b0c9e7f6a"
    assert draft.custom_fields["alert_status"] == "firing"
    assert draft.custom_fields["alert_starts_at"] == STARTS
    assert "Free space below 5% on /var." in draft.description
    assert "instance = db-7:9100" in draft.description
    assert "runbook_url = https://runbooks.example.com/disk" in draft.description
    # The domain accepts what the mapping makes.
    new = validate_new_ticket(draft, Channel.MONITORING)
    assert new.priority == Priority.URGENT
    assert new.category == Category.INCIDENT
    assert alertmanager.team(a, RULES) == "dba"


@pytest.mark.parametrize(
    ("severity", "priority"),
    [
        ("critical", Priority.URGENT),
        ("CRITICAL", Priority.URGENT),
        ("warning", Priority.HIGH),
        ("info", Priority.LOW),
        ("page", Priority.NORMAL),
        ("", Priority.NORMAL),
    ],
)
def test_severity_maps_to_priority(severity: str, priority: Priority) -> None:
    labels = {"alertname": "X", "severity": severity}
    assert alertmanager.priority(alert(labels=labels), RULES) == priority


def test_rules_come_from_configuration() -> None:
    rules = AlertRules(
        priority_label="level",
        priorities={"p1": Priority.URGENT},
        default_priority=Priority.LOW,
        category_label="kind",
        default_category=Category.SERVICE_REQUEST,
        team_label="owner",
        tag_labels=("env", "alertname"),
        requester_email="ops@example.com",
    )
    a = alert(labels={"alertname": "X", "level": "P1", "owner": "Net Ops", "env": "prod"})
    draft = ticket_draft(a, rules)
    assert draft.priority == "urgent"
    assert draft.category == "service_request"
    assert draft.tags == ("env:prod", "alertname:x")
    assert draft.requester_email == "ops@example.com"
    assert alertmanager.team(a, rules) == "net-ops"
    b = alert(labels={"alertname": "X", "kind": "question", "level": "p9"})
    assert ticket_draft(b, rules).category == "question"
    assert ticket_draft(b, rules).priority == "low"


def test_settings_read_rules_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELPDESK_ALERTMANAGER_PRIORITIES", '{"Page": "urgent", "ticket": "low"}')
    monkeypatch.setenv("HELPDESK_ALERTMANAGER_TAG_LABELS", '["alertname", "env"]')
    monkeypatch.setenv("HELPDESK_ALERTMANAGER_RESOLVE_ON_RESOLVED", "false")
    monkeypatch.setenv("HELPDESK_ALERTMANAGER_REQUESTER_EMAIL", "Ops@Example.com")
    rules = IntakeSettings().alert_rules()
    assert rules.priorities == {"page": Priority.URGENT, "ticket": Priority.LOW}
    assert rules.tag_labels == ("alertname", "env")
    assert rules.resolve_on_resolved is False
    assert rules.requester_email == "ops@example.com"
    defaults = IntakeSettings.model_construct().alert_rules()
    assert dict(defaults.priorities) == dict(AlertRules().priorities)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HELPDESK_ALERTMANAGER_PRIORITIES", '{"critical": "asap"}'),
        ("HELPDESK_ALERTMANAGER_PRIORITIES", "not json"),
        ("HELPDESK_ALERTMANAGER_DEFAULT_CATEGORY", "chaos"),
        ("HELPDESK_ALERTMANAGER_REQUESTER_EMAIL", "nobody"),
        ("HELPDESK_HTTP_PORT", "70000"),
    ],
)
def test_bad_settings_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name.removeprefix("HELPDESK_").lower()):
        IntakeSettings()


def test_subject_without_summary_names_the_instance() -> None:
    a = alert(annotations={})
    assert alertmanager.subject(a) == "DiskAlmostFull on db-7:9100 (alert 8d3f2a1b0c9e7f6a)"
    b = alert(labels={}, annotations={})
    assert alertmanager.subject(b) == "Alert (alert 8d3f2a1b0c9e7f6a)"


def test_two_fingerprints_never_share_a_subject() -> None:
    """Intake deduplicates by requester and subject: alike alerts must stay apart."""
    one, two = alert(), alert(fingerprint="0000000000000001")
    assert alertmanager.subject(one) != alertmanager.subject(two)
    assert alertmanager.request_id(one) != alertmanager.request_id(two)


@given(
    labels=st.dictionaries(st.text(max_size=30), st.text(max_size=300), max_size=8),
    annotations=st.dictionaries(st.text(max_size=30), st.text(max_size=3000), max_size=8),
    fingerprint=st.from_regex(r"[0-9A-Za-z_-]{1,64}", fullmatch=True),
    starts=st.text(max_size=alertmanager.MAX_TIME).filter(lambda s: s.isprintable()),
)
def test_any_alert_makes_a_valid_ticket(
    labels: dict[str, str], annotations: dict[str, str], fingerprint: str, starts: str
) -> None:
    """Whatever the labels and annotations say, the alert becomes a ticket: the mapping
    never hands the domain something it refuses (a refused alert would be lost)."""
    rules = AlertRules(tag_labels=tuple(labels)[:5], team_label="team")
    a = Alert(fingerprint, "firing", labels, annotations, starts_at=starts)
    for key in (alertmanager.request_id(a), alertmanager.follow_up_request_id(a)):
        new = validate_new_ticket(ticket_draft(a, rules, key=key), Channel.MONITORING)
        assert len(new.subject) <= MAX_SUBJECT
        assert new.request_id == key
    team = alertmanager.team(a, rules)
    assert team == "" or team[0].isalnum()
    # The note and the recorded state of a later notification pass the domain too.
    plan = plan_for(ticket_for(a, rules, version=2), replace(a, status="resolved"), rules)
    assert plan.note.strip()
    assert not CONTROL_CHARACTERS.search(plan.note)
    assert len(plan.note) <= MAX_DESCRIPTION
    assert plan.custom_fields is not None
    validate_new_ticket(
        TicketDraft(
            subject="s", description="d", requester_email="a@b.cd", custom_fields=plan.custom_fields
        )
    )


# ---- What a notification does to the ticket


def test_the_same_notification_again_changes_nothing() -> None:
    a = alert()
    plan = plan_for(ticket_for(a, team="dba", version=2), a, RULES)
    assert plan == alertmanager.Plan(Outcome.UNCHANGED)


def test_a_fresh_ticket_gets_the_team_of_its_label() -> None:
    a = alert()
    plan = plan_for(ticket_for(a), a, RULES)
    assert plan.outcome == Outcome.UNCHANGED
    assert plan.team == "dba"
    assert not plan.note
    # Once set (or changed by a person), the label no longer decides.
    assert plan_for(ticket_for(a, team="storage"), a, RULES).team == ""
    assert plan_for(ticket_for(a, version=3), a, RULES).team == ""


def test_changed_annotations_add_a_note_and_record_the_state() -> None:
    a = alert()
    ticket = ticket_for(a, version=2, team="dba", status=Status.OPEN)
    changed = alert(annotations={**a.annotations, "summary": "Disk full on db-7"})
    plan = plan_for(ticket, changed, RULES)
    assert plan.outcome == Outcome.COMMENTED
    assert "annotations changed" in plan.note
    assert "Disk full on db-7" in plan.note
    assert plan.status == ""
    assert plan.custom_fields == {**ticket.custom_fields, **state_fields(changed)}
    # With the new state recorded, the same notification again is a no-op.
    noted = replace(ticket, custom_fields=plan.custom_fields)
    assert plan_for(noted, changed, RULES).outcome == Outcome.UNCHANGED


def test_other_custom_fields_are_kept() -> None:
    a = alert()
    ticket = ticket_for(a, version=2, team="dba")
    ticket = replace(ticket, custom_fields={**ticket.custom_fields, "host": "db-7"})
    plan = plan_for(ticket, alert(status="resolved"), RULES)
    assert plan.custom_fields is not None
    assert plan.custom_fields["host"] == "db-7"
    assert plan.custom_fields["alert_status"] == "resolved"


def test_a_resolved_alert_resolves_its_ticket() -> None:
    a = alert()
    for status in (Status.NEW, Status.OPEN, Status.PENDING, Status.ON_HOLD):
        ticket = ticket_for(a, version=2, team="dba", status=status)
        resolved = alert(status="resolved", endsAt="2026-03-02T10:00:00Z")
        plan = plan_for(ticket, resolved, RULES)
        assert plan.outcome == Outcome.RESOLVED
        assert plan.status == "resolved"
        assert "resolved at 2026-03-02T10:00:00Z" in plan.note
        done = replace(ticket, status=Status.RESOLVED, custom_fields=plan.custom_fields)
        assert plan_for(done, resolved, RULES).outcome == Outcome.UNCHANGED


def test_resolving_can_be_turned_off() -> None:
    a = alert()
    rules = AlertRules(resolve_on_resolved=False)
    ticket = ticket_for(a, rules, version=2, team="dba", status=Status.OPEN)
    plan = plan_for(ticket, alert(status="resolved"), rules)
    assert plan.outcome == Outcome.COMMENTED
    assert plan.status == ""
    assert plan.note.startswith("Alertmanager: the alert was resolved")


def test_a_resolved_alert_leaves_a_ticket_a_person_resolved_as_it_is() -> None:
    a = alert()
    ticket = ticket_for(a, version=3, team="dba", status=Status.RESOLVED)
    plan = plan_for(ticket, alert(status="resolved"), RULES)
    assert plan.outcome == Outcome.COMMENTED
    assert plan.status == ""


def test_a_new_firing_reopens_a_resolved_ticket() -> None:
    a = alert()
    ticket = ticket_for(a, version=4, team="dba", status=Status.RESOLVED)
    ticket = replace(ticket, custom_fields=state_fields(alert(status="resolved")))
    again = alert(startsAt="2026-03-03T08:00:00Z")
    plan = plan_for(ticket, again, RULES)
    assert plan.outcome == Outcome.REOPENED
    assert plan.status == "open"
    assert "fired again" in plan.note
    assert "started at 2026-03-03T08:00:00Z" in plan.note


def test_a_still_firing_alert_does_not_reopen_what_a_person_resolved() -> None:
    a = alert()
    ticket = ticket_for(a, version=3, team="dba", status=Status.RESOLVED)
    assert plan_for(ticket, a, RULES).outcome == Outcome.UNCHANGED


def test_a_closed_ticket_is_final() -> None:
    a = alert()
    closed = ticket_for(a, version=5, team="dba", status=Status.CLOSED)
    assert plan_for(closed, a, RULES) == alertmanager.Plan(Outcome.UNCHANGED)
    assert plan_for(closed, alert(status="resolved"), RULES).follow_up is False
    # A later firing opens a follow-up ticket of its own, keyed by its start.
    later = alert(startsAt="2026-03-09T08:00:00Z")
    assert plan_for(closed, later, RULES).follow_up is True
    assert alertmanager.follow_up_request_id(later) == (
        "alertmanager:8d3f2a1b0c9e7f6a:2026-03-09T08:00:00Z"
    )
    # Its resolution is looked for on the follow-up too.
    assert plan_for(closed, alert(status="resolved", startsAt=later.starts_at), RULES).follow_up
