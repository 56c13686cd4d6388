"""Macros: payload checks, templates limited to placeholders, rendering in the sandbox."""

from typing import Any

import pytest

from helpdesk.core.errors import FailedPrecondition, InvalidArgument
from helpdesk.knowledge.domain.articles import Visibility
from helpdesk.knowledge.domain.macros import (
    PLACEHOLDERS,
    Macro,
    MacroActions,
    RenderedMacro,
    TicketStatus,
    dump_macro,
    parse_macro,
    placeholders_in,
    render_macro,
)

CONTEXT: dict[str, dict[str, object]] = {
    "ticket": {"number": "HD-1042", "subject": "VPN drops", "status": "open"},
    "requester": {"name": "Анна Иванова", "email": "anna@example.com", "organization": None},
    "agent": {"name": "Boris"},
}


def valid(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": "password-reset",
        "name": "Password reset link",
        "body": (
            "Здравствуйте, {{ requester.name }}!\n"
            "{% if requester.organization is defined %}"
            "({{ requester.organization }})\n"
            "{% endif %}"
            "Ссылка для сброса пароля отправлена на {{ requester.email }}.\n"
            "{{ agent.name | upper }}, заявка {{ ticket['number'] }}\n"
        ),
        "actions": {"status": "Pending", "add_tags": ["password", "Password", "self-service"]},
        "visibility": "public",
    }
    raw.update(changes)
    return raw


def violations(raw: Any) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        parse_macro(raw)
    return {v.field: v.description for v in caught.value.violations}


def body_problems(body: str) -> str:
    """Every problem found in a body, one a line."""
    with pytest.raises(InvalidArgument) as caught:
        parse_macro(valid(body=body))
    return "\n".join(v.description for v in caught.value.violations if v.field == "body")


# --- the admin's payload ---


def test_a_valid_payload_reads_into_a_macro() -> None:
    macro = parse_macro(valid())
    assert macro.id == "password-reset"
    assert macro.actions == MacroActions(TicketStatus.PENDING, ("password", "self-service"))
    assert macro.visibility == Visibility.PUBLIC
    assert parse_macro(dump_macro(macro)) == macro


def test_a_macro_may_only_change_the_ticket() -> None:
    macro = parse_macro(valid(body="", actions={"status": "resolved", "add_tags": ["spam"]}))
    assert render_macro(macro, CONTEXT) == RenderedMacro(
        "", TicketStatus.RESOLVED, ("spam",), Visibility.PUBLIC
    )
    assert parse_macro(dump_macro(macro)) == macro


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("id", "", "is required"),
        ("id", "Password Reset", "lowercase letters"),
        ("name", None, "is required"),
        ("name", "x" * 201, "at most 200"),
        ("body", 7, "must be a string"),
        ("body", "x" * 20_001, "at most 20000"),
        ("actions", ["pending"], "must be an object"),
        ("visibility", "everyone", "must be one of public, internal"),
    ],
)
def test_each_bad_field_is_named(field: str, value: Any, message: str) -> None:
    found = violations(valid(**{field: value}))
    assert list(found) == [field]
    assert message in found[field]


@pytest.mark.parametrize(
    ("actions", "field", "message"),
    [
        ({"status": "closed"}, "actions.status", "open, pending, on_hold, resolved"),
        ({"status": "new"}, "actions.status", "open, pending, on_hold, resolved"),
        ({"add_tags": ["ok", "not ok"]}, "actions.add_tags[1]", "letters, digits"),
        ({"add_tags": "vip"}, "actions.add_tags", "must be a list"),
        ({"assign_to": "boris"}, "actions.assign_to", "unknown field"),
    ],
)
def test_bad_actions_are_named(actions: dict[str, Any], field: str, message: str) -> None:
    found = violations(valid(actions=actions))
    assert list(found) == [field]
    assert message in found[field]


def test_a_macro_that_does_nothing_is_refused() -> None:
    assert violations(valid(body="  ", actions={})) == {
        "body": "is required when the macro has no actions"
    }


def test_every_bad_field_is_reported_at_once() -> None:
    found = violations(valid(id="", name="", body="{{ nope }}", visibility="x", extra=1))
    assert set(found) == {"id", "name", "body", "visibility", "extra"}


# --- templates ---


def test_a_template_that_does_not_compile_is_refused_with_its_line() -> None:
    assert body_problems("Hello\n{% if requester.name %}no end").startswith("line 2:")
    assert "line 1:" in body_problems("{{ requester.name ")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("Dear {{ customer.name }}", "unknown placeholder customer"),
        ("Dear {{ requester.phone }}", "unknown placeholder requester.phone"),
        ("Dear {{ requester['phone'] }}", "unknown placeholder requester.phone"),
        ("Dear {{ requester }}", "requester is not a placeholder"),
        ("{{ requester.name.upper() }}", "only placeholders may be looked into"),
        ("{{ ticket.items }}", "unknown placeholder ticket.items"),
        ("{{ requester.name | reverse }}", "filter 'reverse' not allowed"),
        ("{% if ticket.status is odd %}x{% endif %}", "test 'odd' not allowed"),
        ("{% for t in ticket.subject %}{{ t }}{% endfor %}", "{% for %} loops not allowed"),
        ("{% set x = 1 %}", "{% set %} not allowed"),
        ("{{ ticket.subject * 1000000 }}", "arithmetic not allowed"),
        ("{% include 'other' %}", "{% include %} not allowed"),
        ("{{ lipsum() }}", "calls not allowed"),
    ],
)
def test_templates_beyond_placeholders_are_refused(body: str, message: str) -> None:
    assert message in body_problems(body)


@pytest.mark.parametrize(
    "body",
    [
        "{{ ticket.subject | truncate('x') }}",
        "{{ ticket.subject | default(1, 2, 3, 4) }}",
        "{{ ticket.subject | truncate(end=5) }}",
    ],
)
def test_filter_arguments_that_cannot_work_are_refused(body: str) -> None:
    assert "does not render with sample values" in body_problems(body)


def test_a_filter_failing_on_a_tickets_values_is_a_refusal() -> None:
    # Only this ticket's branch reaches the bad filter.
    body = "{% if ticket.priority == 'urgent' %}{{ ticket.subject | truncate('x') }}{% endif %}"
    macro = parse_macro(valid(body=body))
    urgent = {"ticket": {"priority": "urgent", "subject": "VPN"}}
    with pytest.raises(FailedPrecondition, match="cannot be rendered"):
        render_macro(macro, urgent)


@pytest.mark.parametrize(
    "body",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ requester.name.__class__ }}",
        "{{ requester['__class__'] }}",
        "{{ ticket.number.format.__globals__ }}",
        "{{ self.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os }}",
    ],
)
def test_attribute_tricks_are_refused_when_saved(body: str) -> None:
    problems = body_problems(body)
    assert "only placeholders" in problems or "unknown placeholder" in problems


@pytest.mark.parametrize(
    "body",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ requester.name.__class__.__base__ }}",
        "{{ requester.name.format.__globals__ }}",
    ],
)
def test_the_sandbox_refuses_attribute_tricks_in_a_macro_made_otherwise(body: str) -> None:
    # A macro built without parse_macro: the sandbox is the second line.
    macro = Macro("tricky", "Tricky", body)
    with pytest.raises(FailedPrecondition, match="unsafe"):
        render_macro(macro, CONTEXT)


def test_placeholders_are_documented() -> None:
    for name in (
        "ticket.number",
        "ticket.subject",
        "requester.name",
        "requester.email",
        "agent.name",
    ):
        assert name in PLACEHOLDERS
    assert placeholders_in(valid()["body"]) == {
        "requester.name",
        "requester.organization",
        "requester.email",
        "agent.name",
        "ticket.number",
    }


# --- rendering ---


def test_rendering_fills_placeholders_and_carries_the_actions() -> None:
    rendered = render_macro(parse_macro(valid()), CONTEXT)
    assert rendered == RenderedMacro(
        text=(
            "Здравствуйте, Анна Иванова!\n"
            "Ссылка для сброса пароля отправлена на anna@example.com.\n"
            "BORIS, заявка HD-1042"
        ),
        status=TicketStatus.PENDING,
        tags=("password", "self-service"),
        visibility=Visibility.PUBLIC,
    )


def test_an_optional_value_is_shown_when_present() -> None:
    context = CONTEXT | {"requester": CONTEXT["requester"] | {"organization": "ACME"}}
    assert "(ACME)" in render_macro(parse_macro(valid()), context).text


def test_a_missing_value_is_named_not_left_blank() -> None:
    context = CONTEXT | {"requester": {"name": "Анна"}}
    with pytest.raises(FailedPrecondition) as caught:
        render_macro(parse_macro(valid()), context)
    assert "requester.email" in caught.value.message
    assert "password-reset" in caught.value.message


def test_conditions_choose_the_words() -> None:
    macro = parse_macro(
        valid(
            body=(
                "{% if ticket.priority in ['high', 'urgent'] and not agent.name is none %}"
                "{{ agent.name }} is on it"
                "{% elif ticket.priority == 'low' %}We will look soon"
                "{% else %}Queued{% endif %}: "
                "{{ ticket.number ~ ' / ' ~ ticket.subject | truncate(9) }}"
            )
        )
    )
    urgent = CONTEXT | {"ticket": CONTEXT["ticket"] | {"priority": "urgent"}}
    low = CONTEXT | {"ticket": CONTEXT["ticket"] | {"priority": "low"}}
    assert render_macro(macro, urgent).text == "Boris is on it: HD-1042 / VPN drops"
    assert render_macro(macro, low).text == "We will look soon: HD-1042 / VPN drops"


def test_default_fills_a_missing_value() -> None:
    macro = parse_macro(valid(body="Hello {{ requester.name | default('colleague') }}"))
    assert render_macro(macro, {}).text == "Hello colleague"


def test_values_are_plain_text() -> None:
    # Replies are text; a channel showing them as HTML escapes them itself.
    macro = parse_macro(valid(body="{{ ticket.subject }}"))
    context = {"ticket": {"subject": "<b>VPN</b> & Wi-Fi"}}
    assert render_macro(macro, context).text == "<b>VPN</b> & Wi-Fi"


def test_a_value_cannot_inject_template_code() -> None:
    macro = parse_macro(valid(body="{{ ticket.subject }}"))
    context = {"ticket": {"subject": "{{ ''.__class__ }}"}}
    assert render_macro(macro, context).text == "{{ ''.__class__ }}"
