"""Routing rules: validation at save time, matching, and the decision with its explanation."""

from datetime import UTC, datetime
from typing import Any

import pytest

from helpdesk.core.errors import InvalidArgument
from helpdesk.routing.domain.directory import Tier
from helpdesk.routing.domain.rules import (
    AddTags,
    AgentChoice,
    AssignAgent,
    AssignOnDuty,
    Decision,
    FieldIn,
    Rule,
    SetTeam,
    TicketFacts,
    Where,
    WordsMatch,
    check_rule_references,
    dump_rule,
    evaluate,
    parse_rule,
)

# Monday 10:00 in Moscow (UTC+3).
NOW = datetime(2025, 3, 3, 7, 0, tzinfo=UTC)


def facts(**overrides: Any) -> TicketFacts:
    values: dict[str, Any] = {
        "ticket_id": "t-1",
        "number": "HD-1",
        "category": "incident",
        "priority": "normal",
        "channel": "email",
        "requester_email": "ivan@corp.example.com",
        "subject": "VPN is down",
        "description": "Since 9:00 the client says connection refused.",
    }
    values.update(overrides)
    return TicketFacts(**values)


def rule(*conditions: dict[str, Any], **fields: Any) -> Rule:
    """A rule with the given conditions; by default it sends the ticket to team `it-l1`."""
    raw: dict[str, Any] = {
        "id": fields.pop("id", "r1"),
        "name": fields.pop("name", "rule"),
        "conditions": list(conditions),
        "actions": fields.pop("actions", [{"type": "set_team", "team": "it-l1"}]),
    }
    raw.update(fields)
    return parse_rule(raw)


def matches(condition: dict[str, Any], ticket: TicketFacts, now: datetime = NOW) -> bool:
    return rule(condition).matches(ticket, now)


def refused(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        parse_rule(raw)
    return {v.field: v.description for v in caught.value.violations}


def valid_raw(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": "urgent",
        "name": "Urgent to on-duty",
        "conditions": [{"type": "tags", "any_of": ["urgent"]}],
        "actions": [{"type": "assign_on_duty", "team": "it-oncall"}],
    }
    raw.update(overrides)
    return raw


# --- parse_rule ---


def test_rule_defaults() -> None:
    parsed = parse_rule(valid_raw())
    assert parsed.enabled is True
    assert parsed.stop is True
    assert parsed.order == 0
    assert parsed.actions == (AssignOnDuty("it-oncall"),)


EVERY_CONDITION: list[dict[str, Any]] = [
    {"type": "category", "in": ["incident", "Service_Request"]},
    {"type": "priority", "in": ["urgent"], "negate": True},
    {"type": "channel", "in": ["email", "chat"]},
    {"type": "organization", "in": ["Acme Corp"]},
    {"type": "team", "in": ["it-l1"]},
    {"type": "tier", "in": ["l1", "L2"]},
    {"type": "language", "in": ["ru", "en-GB"]},
    {"type": "email_domain", "in": ["@example.com"]},
    {"type": "tags", "any_of": ["vpn"], "all_of": ["network", "office"]},
    {"type": "words", "words": ["почта", "не  работает", "почт*"], "where": "subject"},
    {"type": "pattern", "pattern": r"error\s+\d{3}", "where": "description"},
    {"type": "custom_field", "name": "asset_type", "equals": "Laptop"},
    {
        "type": "business_hours",
        "time_zone": "Europe/Moscow",
        "hours": {"monday": [{"start": "09:00", "end": "18:00"}]},
        "inside": False,
    },
    {"type": "reopen_count", "at_least": 2},
]

EVERY_ACTION: list[dict[str, Any]] = [
    {"type": "set_team", "team": "it-l2"},
    {"type": "set_tier", "tier": "l2"},
    {"type": "set_priority", "priority": "HIGH"},
    {"type": "add_tags", "tags": ["vpn", "Network"]},
    {"type": "require_skills", "skills": ["cisco", "vpn"]},
    {"type": "assign_agent", "agent_id": "Anna"},
]


def test_every_condition_and_action_round_trips_through_the_raw_form() -> None:
    parsed = parse_rule(
        valid_raw(conditions=EVERY_CONDITION, actions=EVERY_ACTION, order=-5, stop=False)
    )
    assert len(parsed.conditions) == len(EVERY_CONDITION)
    assert len(parsed.actions) == len(EVERY_ACTION)
    assert parse_rule(dump_rule(parsed)) == parsed
    for raw_action in (
        [{"type": "assign_on_duty"}],
        [{"type": "leave_in_queue"}],
        [{"type": "assign_on_duty", "team": "it-oncall"}],
    ):
        again = parse_rule(valid_raw(actions=raw_action))
        assert parse_rule(dump_rule(again)) == again


def test_values_are_normalised_at_save_time() -> None:
    parsed = parse_rule(valid_raw(conditions=EVERY_CONDITION, actions=EVERY_ACTION))
    assert parsed.conditions[0] == FieldIn("category", ("incident", "service_request"))
    assert parsed.conditions[5] == FieldIn("tier", ("L1", "L2"))
    assert parsed.conditions[9] == WordsMatch(
        ("почта", "не работает", "почт*"), where=Where.SUBJECT
    )
    assert AddTags(("vpn", "network")) in parsed.actions
    assert AssignAgent("Anna") in parsed.actions


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"id": ""}, "id"),
        ({"id": "bad id"}, "id"),
        ({"name": ""}, "name"),
        ({"enabled": "yes"}, "enabled"),
        ({"stop": 1}, "stop"),
        ({"order": "first"}, "order"),
        ({"order": 10**9}, "order"),
        ({"priority": 1}, "priority"),
        ({"conditions": "urgent"}, "conditions"),
        ({"actions": []}, "actions"),
        ({"actions": None}, "actions"),
        ({"actions": [{"type": "set_team", "team": "x"}] * 21}, "actions"),
    ],
)
def test_rule_refusals_name_the_field(overrides: dict[str, Any], field: str) -> None:
    raw = {k: v for k, v in valid_raw(**overrides).items() if v is not None}
    assert field in refused(raw)


@pytest.mark.parametrize(
    ("condition", "field"),
    [
        ("urgent", "conditions[2]"),
        ({"type": "subject"}, "conditions[2].type"),
        ({"in": ["incident"]}, "conditions[2].type"),
        ({"type": "category", "in": ["incident", "wish"]}, "conditions[2].in[1]"),
        ({"type": "category"}, "conditions[2].in"),
        ({"type": "category", "in": []}, "conditions[2].in"),
        ({"type": "category", "in": "incident"}, "conditions[2].in"),
        ({"type": "priority", "in": ["critical"]}, "conditions[2].in[0]"),
        ({"type": "channel", "in": ["fax"]}, "conditions[2].in[0]"),
        ({"type": "tier", "in": ["L0"]}, "conditions[2].in[0]"),
        ({"type": "team", "in": ["IT Team"]}, "conditions[2].in[0]"),
        ({"type": "organization", "in": [""]}, "conditions[2].in[0]"),
        ({"type": "language", "in": ["Russian"]}, "conditions[2].in[0]"),
        ({"type": "email_domain", "in": ["localhost"]}, "conditions[2].in[0]"),
        ({"type": "category", "in": ["incident"], "negate": "no"}, "conditions[2].negate"),
        ({"type": "category", "values": ["incident"]}, "conditions[2].values"),
        ({"type": "tags"}, "conditions[2]"),
        ({"type": "tags", "any": ["vpn"]}, "conditions[2].any"),
        ({"type": "tags", "any_of": ["two words"]}, "conditions[2].any_of[0]"),
        ({"type": "words", "words": []}, "conditions[2].words"),
        ({"type": "words", "words": ["vpn", "по*чта"]}, "conditions[2].words[1]"),
        ({"type": "words", "words": ["*"]}, "conditions[2].words[0]"),
        ({"type": "words", "words": ["vpn"], "where": "body"}, "conditions[2].where"),
        ({"type": "pattern", "pattern": "vpn("}, "conditions[2].pattern"),
        ({"type": "pattern", "pattern": "a{99999999999}"}, "conditions[2].pattern"),
        ({"type": "pattern"}, "conditions[2].pattern"),
        ({"type": "pattern", "pattern": "x" * 501}, "conditions[2].pattern"),
        ({"type": "custom_field", "equals": "x"}, "conditions[2].name"),
        ({"type": "custom_field", "name": "Asset Type", "equals": "x"}, "conditions[2].name"),
        ({"type": "custom_field", "name": "asset"}, "conditions[2].equals"),
        (
            {"type": "business_hours", "hours": {"monday": [{"start": "09:00", "end": "18:00"}]}},
            "conditions[2].time_zone",
        ),
        (
            {
                "type": "business_hours",
                "time_zone": "Moscow",
                "hours": {"monday": [{"start": "09:00", "end": "18:00"}]},
            },
            "conditions[2].time_zone",
        ),
        ({"type": "business_hours", "time_zone": "UTC"}, "conditions[2].hours"),
        (
            {
                "type": "business_hours",
                "time_zone": "UTC",
                "hours": {"monday": [{"start": "18:00", "end": "09:00"}]},
            },
            "conditions[2].hours.monday[0].end",
        ),
        ({"type": "reopen_count", "at_least": 0}, "conditions[2].at_least"),
        ({"type": "reopen_count"}, "conditions[2].at_least"),
    ],
)
def test_condition_refusals_name_the_field(condition: Any, field: str) -> None:
    conditions = [
        {"type": "category", "in": ["incident"]},
        {"type": "tags", "any_of": ["vpn"]},
        condition,
    ]
    assert field in refused(valid_raw(conditions=conditions))


@pytest.mark.parametrize(
    ("actions", "field"),
    [
        ([{"type": "escalate_to_mars"}], "actions[0].type"),
        (["set_team"], "actions[0]"),
        ([{"type": "set_team"}], "actions[0].team"),
        ([{"type": "set_team", "team": "IT Team"}], "actions[0].team"),
        ([{"type": "set_tier", "tier": "L4"}], "actions[0].tier"),
        ([{"type": "set_tier"}], "actions[0].tier"),
        ([{"type": "set_priority", "priority": "asap"}], "actions[0].priority"),
        ([{"type": "add_tags", "tags": []}], "actions[0].tags"),
        ([{"type": "add_tags", "tags": ["ok", "not ok"]}], "actions[0].tags[1]"),
        ([{"type": "require_skills"}], "actions[0].skills"),
        ([{"type": "assign_agent"}], "actions[0].agent_id"),
        ([{"type": "assign_agent", "agent_id": "anna ivanova"}], "actions[0].agent_id"),
        ([{"type": "assign_on_duty", "team": "On Call"}], "actions[0].team"),
        ([{"type": "leave_in_queue", "team": "it"}], "actions[0].team"),
        (
            [{"type": "set_team", "team": "a"}, {"type": "set_team", "team": "b"}],
            "actions[1]",
        ),
        (
            [{"type": "set_tier", "tier": "L2"}, {"type": "set_tier", "tier": "L3"}],
            "actions[1]",
        ),
        (
            [{"type": "assign_agent", "agent_id": "anna"}, {"type": "leave_in_queue"}],
            "actions[1]",
        ),
        (
            [{"type": "set_team", "team": "it-l1"}, {"type": "assign_on_duty", "team": "it-l2"}],
            "actions[1].team",
        ),
    ],
)
def test_action_refusals_name_the_field(actions: list[Any], field: str) -> None:
    assert field in refused(valid_raw(actions=actions))


def test_a_rule_refusal_lists_every_bad_field_at_once() -> None:
    problems = refused(
        {
            "id": "r",
            "name": "",
            "conditions": [
                {"type": "category", "in": ["incident"]},
                {"type": "nope"},
                {"type": "pattern", "pattern": "[a-"},
            ],
            "actions": [{"type": "set_priority", "priority": "meh"}],
        }
    )
    assert set(problems) == {
        "name",
        "conditions[1].type",
        "conditions[2].pattern",
        "actions[0].priority",
    }
    assert problems["conditions[2].pattern"].startswith("is not a valid regular expression")


def test_same_team_twice_in_one_rule_is_no_conflict() -> None:
    parsed = parse_rule(
        valid_raw(
            actions=[
                {"type": "set_team", "team": "it-l1"},
                {"type": "assign_on_duty", "team": "it-l1"},
            ]
        )
    )
    assert parsed.actions == (SetTeam("it-l1"), AssignOnDuty("it-l1"))


def test_rule_references_check_teams_and_agents() -> None:
    parsed = parse_rule(
        valid_raw(
            actions=[
                {"type": "set_team", "team": "gone"},
                {"type": "assign_agent", "agent_id": "ghost"},
            ]
        )
    )
    check_rule_references(parsed, {"gone"}, {"ghost"})
    with pytest.raises(InvalidArgument) as caught:
        check_rule_references(parsed, {"it-l1"}, {"anna"})
    assert [v.field for v in caught.value.violations] == ["actions[0].team", "actions[1].agent_id"]


# --- conditions ---


def test_russian_words_match_in_any_case() -> None:
    condition = {"type": "words", "words": ["почта"]}
    assert matches(condition, facts(subject="Не работает почта", description=""))
    assert matches(condition, facts(subject="ПОЧТА не открывается", description=""))
    assert matches(condition, facts(subject="Re: «Почта», снова", description=""))
    # Whole words only: a postman is not the post.
    assert not matches(condition, facts(subject="Пришёл почтальон", description=""))
    assert not matches(condition, facts(subject="Не могу открыть почту", description=""))


def test_a_trailing_star_matches_any_word_ending() -> None:
    condition = {"type": "words", "words": ["почт*"]}
    assert matches(condition, facts(subject="Не могу открыть почту", description=""))
    assert matches(condition, facts(subject="Почтовый ящик полон", description=""))
    assert not matches(condition, facts(subject="Отправил запрос", description=""))


def test_yo_and_ye_are_one_letter_for_words() -> None:
    condition = {"type": "words", "words": ["ещё"]}
    assert matches(condition, facts(subject="Еще не работает", description=""))
    assert matches({"type": "words", "words": ["еще"]}, facts(subject="ЕЩЁ раз"))


def test_phrases_match_across_any_white_space() -> None:
    condition = {"type": "words", "words": ["не работает"]}
    assert matches(condition, facts(subject="VPN не\n  работает", description=""))
    assert not matches(condition, facts(subject="VPN не работал", description=""))


def test_words_look_where_they_are_told() -> None:
    ticket = facts(subject="Printer", description="Paper jam on floor 3")
    assert matches({"type": "words", "words": ["jam"]}, ticket)
    assert matches({"type": "words", "words": ["jam"], "where": "description"}, ticket)
    assert not matches({"type": "words", "words": ["jam"], "where": "subject"}, ticket)
    assert matches({"type": "words", "words": ["printer"], "where": "subject"}, ticket)


def test_words_with_regex_characters_are_taken_literally() -> None:
    condition = {"type": "words", "words": ["c++", "1.5"]}
    assert matches(condition, facts(subject="Visual c++ crashes", description=""))
    assert matches(condition, facts(subject="Version 1.5", description=""))
    assert not matches(condition, facts(subject="Version 105", description=""))


def test_patterns_ignore_case_also_in_cyrillic() -> None:
    condition = {"type": "pattern", "pattern": r"ошибка\s+\d{3}"}
    assert matches(condition, facts(description="Выдаёт ОШИБКА  404 при входе"))
    assert not matches(condition, facts(description="ошибка без кода"))
    assert matches({"type": "pattern", "pattern": "^vpn"}, facts(subject="VPN is down"))
    assert not matches(
        {"type": "pattern", "pattern": "refused", "where": "subject"},
        facts(description="connection refused"),
    )


@pytest.mark.parametrize(
    ("condition", "ticket", "expected"),
    [
        ({"type": "category", "in": ["incident"]}, {}, True),
        ({"type": "category", "in": ["question"]}, {}, False),
        ({"type": "priority", "in": ["urgent", "high"]}, {"priority": "high"}, True),
        ({"type": "channel", "in": ["chat"]}, {}, False),
        ({"type": "channel", "in": ["email"]}, {}, True),
        (
            {"type": "organization", "in": ["Acme  Corp"]},
            {"requester_organization": "acme corp"},
            True,
        ),
        ({"type": "organization", "in": ["Acme"]}, {"requester_organization": "Acme Corp"}, False),
        (
            {"type": "organization", "in": ["ООО Ромашка"]},
            {"requester_organization": "ооо ромашка"},
            True,
        ),
        ({"type": "team", "in": ["it-l1"]}, {"team": "it-l1"}, True),
        ({"type": "team", "in": ["it-l1"]}, {"team": ""}, False),
        ({"type": "tier", "in": ["L2"]}, {"tier": "L2"}, True),
        ({"type": "language", "in": ["ru"]}, {"language": "ru-RU"}, True),
        ({"type": "language", "in": ["en-gb"]}, {"language": "en"}, True),
        ({"type": "language", "in": ["ru"]}, {"language": ""}, False),
        ({"type": "email_domain", "in": ["example.com"]}, {}, True),
        ({"type": "email_domain", "in": ["corp.example.com"]}, {}, True),
        (
            {"type": "email_domain", "in": ["example.com"]},
            {"requester_email": "a@notexample.com"},
            False,
        ),
        ({"type": "email_domain", "in": ["example.org"]}, {}, False),
        ({"type": "tags", "any_of": ["vpn", "urgent"]}, {"tags": ("Urgent",)}, True),
        ({"type": "tags", "any_of": ["vpn"]}, {"tags": ()}, False),
        ({"type": "tags", "all_of": ["vpn", "office"]}, {"tags": ("vpn", "office", "x")}, True),
        ({"type": "tags", "all_of": ["vpn", "office"]}, {"tags": ("vpn",)}, False),
        (
            {"type": "tags", "any_of": ["a", "b"], "all_of": ["c"]},
            {"tags": ("b", "c")},
            True,
        ),
        ({"type": "tags", "any_of": ["a", "b"], "all_of": ["c"]}, {"tags": ("c",)}, False),
        (
            {"type": "custom_field", "name": "asset", "equals": "Laptop"},
            {"custom_fields": {"asset": " laptop "}},
            True,
        ),
        (
            {"type": "custom_field", "name": "asset", "equals": "laptop"},
            {"custom_fields": {"asset": "phone"}},
            False,
        ),
        ({"type": "custom_field", "name": "asset", "equals": ""}, {"custom_fields": {}}, True),
        ({"type": "reopen_count", "at_least": 2}, {"reopen_count": 2}, True),
        ({"type": "reopen_count", "at_least": 2}, {"reopen_count": 1}, False),
        ({"type": "category", "in": ["incident"], "negate": True}, {}, False),
        ({"type": "tags", "any_of": ["vip"], "negate": True}, {"tags": ("x",)}, True),
    ],
)
def test_conditions(condition: dict[str, Any], ticket: dict[str, Any], expected: bool) -> None:
    assert matches(condition, facts(**ticket)) is expected


def test_business_hours_are_read_in_the_rules_time_zone() -> None:
    inside = {
        "type": "business_hours",
        "time_zone": "Europe/Moscow",
        "hours": {"monday": [{"start": "09:00", "end": "18:00"}]},
    }
    outside = {**inside, "inside": False}
    ticket = facts()
    # 06:30 UTC is 09:30 in Moscow on a Monday.
    monday_morning = datetime(2025, 3, 3, 6, 30, tzinfo=UTC)
    assert matches(inside, ticket, monday_morning)
    assert not matches(outside, ticket, monday_morning)
    # 15:30 UTC is 18:30 in Moscow: after hours.
    evening = datetime(2025, 3, 3, 15, 30, tzinfo=UTC)
    assert not matches(inside, ticket, evening)
    assert matches(outside, ticket, evening)
    # 05:59 UTC is 08:59 there, still before opening.
    assert not matches(inside, ticket, datetime(2025, 3, 3, 5, 59, tzinfo=UTC))


def test_a_rule_without_conditions_matches_every_ticket() -> None:
    catch_all = rule()
    assert catch_all.matches(facts(), NOW)
    assert catch_all.matches(TicketFacts(ticket_id="t"), NOW)


def test_all_conditions_must_hold() -> None:
    both = rule({"type": "category", "in": ["incident"]}, {"type": "channel", "in": ["chat"]})
    assert not both.matches(facts(channel="email"), NOW)
    assert both.matches(facts(channel="chat"), NOW)


# --- evaluate ---


def test_no_rule_matching_keeps_the_ticket_as_it_is() -> None:
    decision = evaluate(
        [rule({"type": "category", "in": ["question"]})],
        facts(team="it-l2", tier="L2", priority="high"),
        NOW,
    )
    assert decision == Decision(team="it-l2", tier=Tier.L2, priority="high")
    assert decision.choice == AgentChoice.STRATEGY
    assert decision.matched == ()
    assert decision.explanation() == "no routing rule matched"


def test_no_rules_at_all_is_the_default_decision() -> None:
    decision = evaluate([], facts(tier="bogus"), NOW)
    assert decision == Decision(team="", tier=None, priority="normal")


def test_urgent_tickets_go_to_the_on_duty_engineer() -> None:
    rules = [
        parse_rule(
            {
                "id": "urgent",
                "name": "Urgent to on-duty",
                "conditions": [{"type": "tags", "any_of": ["urgent"]}],
                "actions": [
                    {"type": "set_priority", "priority": "urgent"},
                    {"type": "assign_on_duty", "team": "it-oncall"},
                ],
            }
        ),
        rule(name="Everything else", order=100),
    ]
    decision = evaluate(rules, facts(tags=("urgent",)), NOW)
    assert decision.team == "it-oncall"
    assert decision.priority == "urgent"
    assert decision.choice == AgentChoice.ON_DUTY
    assert decision.matched == ("Urgent to on-duty",)
    assert decision.explanation() == "routing rules: Urgent to on-duty"
    other = evaluate(rules, facts(tags=("vpn",)), NOW)
    assert other.team == "it-l1"
    assert other.matched == ("Everything else",)


def test_a_russian_mail_rule_routes_by_a_word_in_the_subject() -> None:
    mail = parse_rule(
        {
            "id": "mail",
            "name": "Почта -> IT L1",
            "conditions": [{"type": "words", "words": ["почта", "e-mail"], "where": "subject"}],
            "actions": [
                {"type": "set_team", "team": "it-mail"},
                {"type": "require_skills", "skills": ["exchange"]},
                {"type": "add_tags", "tags": ["mail"]},
            ],
        }
    )
    decision = evaluate([mail], facts(subject="Не открывается Почта в Outlook", language="ru"), NOW)
    assert decision.team == "it-mail"
    assert decision.required_skills == frozenset({"exchange"})
    assert decision.tags == ("mail",)
    assert decision.matched == ("Почта -> IT L1",)


def test_rules_run_by_order_then_id_and_the_first_match_stops_by_default() -> None:
    rules = [
        rule(id="b", name="second", order=10, actions=[{"type": "set_team", "team": "b"}]),
        rule(id="c", name="third", order=20, actions=[{"type": "set_team", "team": "c"}]),
        rule(id="a", name="first", order=10, actions=[{"type": "set_team", "team": "a"}]),
    ]
    decision = evaluate(rules, facts(), NOW)
    assert decision.team == "a"
    assert decision.matched == ("first",)


def test_without_stop_later_rules_add_but_never_override() -> None:
    rules = [
        rule(
            id="tag",
            name="tag vpn",
            order=1,
            stop=False,
            actions=[
                {"type": "add_tags", "tags": ["vpn"]},
                {"type": "set_priority", "priority": "high"},
                {"type": "require_skills", "skills": ["vpn"]},
            ],
        ),
        rule(
            id="route",
            name="route",
            order=2,
            actions=[
                {"type": "set_priority", "priority": "low"},
                {"type": "set_team", "team": "it-net"},
                {"type": "set_tier", "tier": "L2"},
                {"type": "add_tags", "tags": ["vpn", "network"]},
                {"type": "require_skills", "skills": ["cisco"]},
                {"type": "assign_agent", "agent_id": "anna"},
            ],
        ),
        rule(id="never", name="never", order=3, actions=[{"type": "set_team", "team": "x"}]),
    ]
    decision = evaluate(rules, facts(tags=("network",)), NOW)
    assert decision == Decision(
        team="it-net",
        tier=Tier.L2,
        priority="high",  # the earlier rule decided it
        tags=("vpn",),  # "network" was already on the ticket
        required_skills=frozenset({"vpn", "cisco"}),
        choice=AgentChoice.AGENT,
        agent_id="anna",
        matched=("tag vpn", "route"),
    )


def test_the_first_agent_choice_wins() -> None:
    rules = [
        rule(id="1", name="queue", order=1, stop=False, actions=[{"type": "leave_in_queue"}]),
        rule(id="2", name="duty", order=2, actions=[{"type": "assign_on_duty", "team": "oncall"}]),
    ]
    decision = evaluate(rules, facts(team="it-l1"), NOW)
    assert decision.choice == AgentChoice.QUEUE
    # The on-duty rule still names the team, as no earlier rule did.
    assert decision.team == "oncall"


def test_conditions_read_the_ticket_as_it_arrived() -> None:
    rules = [
        rule(
            id="1",
            name="tagger",
            order=1,
            stop=False,
            actions=[{"type": "add_tags", "tags": ["vip"]}],
        ),
        rule({"type": "tags", "any_of": ["vip"]}, id="2", name="vip", order=2),
    ]
    decision = evaluate(rules, facts(), NOW)
    assert decision.matched == ("tagger",)


def test_disabled_rules_do_not_run() -> None:
    rules = [rule(name="off", enabled=False), rule(id="r2", name="on", order=5)]
    assert evaluate(rules, facts(), NOW).matched == ("on",)


def test_evaluate_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate([], facts(), datetime(2025, 1, 1))
