"""SLA policies: payload checks naming each field, and which policy a ticket gets."""

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpdesk.core.errors import InvalidArgument
from helpdesk.sla.domain.policy import (
    DEFAULT_PAUSE_STATUSES,
    Conditions,
    Metric,
    Policy,
    TicketFacts,
    applies,
    dump_policy,
    parse_policy,
    select_policy,
)


def valid(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": "gold-urgent",
        "name": "Gold customers, urgent",
        "order": 10,
        "conditions": {
            "priority": ["urgent", "High"],
            "requester_organization": ["ACME Corp"],
            "tags": ["VIP"],
        },
        "targets": {"first_response": 30, "resolution": 240},
        "calendar_id": "moscow-office",
    }
    raw.update(changes)
    return raw


def violations(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        parse_policy(raw)
    return {v.field: v.description for v in caught.value.violations}


def test_a_valid_payload_reads_into_a_policy() -> None:
    policy = parse_policy(valid())
    assert policy.id == "gold-urgent"
    assert policy.order == 10
    assert policy.enabled
    assert policy.conditions == Conditions(
        priority=frozenset({"urgent", "high"}),
        requester_organization=frozenset({"ACME Corp"}),
        tags=frozenset({"vip"}),
    )
    assert policy.targets == {
        Metric.FIRST_RESPONSE: timedelta(minutes=30),
        Metric.RESOLUTION: timedelta(hours=4),
    }
    assert policy.calendar_id == "moscow-office"


def test_defaults_warn_at_80_percent_pause_when_waiting_and_close_after_5_days() -> None:
    policy = parse_policy({"id": "default", "name": "Everything else"})
    assert policy.warn_share == 0.8
    assert policy.pause_statuses == DEFAULT_PAUSE_STATUSES == {"pending", "on_hold"}
    assert policy.auto_close_after == timedelta(days=5)
    assert policy.targets == {}
    assert policy.calendar_id == ""
    assert policy.conditions == Conditions()


def test_nulls_take_the_defaults() -> None:
    policy = parse_policy(
        valid(order=None, enabled=None, warn_share=None, pause_statuses=None, calendar_id=None)
        | {"auto_close_after_days": None}
    )
    assert (policy.order, policy.enabled, policy.warn_share) == (0, True, 0.8)
    assert policy.pause_statuses == DEFAULT_PAUSE_STATUSES
    assert policy.calendar_id == ""
    assert policy.auto_close_after == timedelta(days=5)


def test_a_dumped_policy_reads_back_equal() -> None:
    policy = parse_policy(
        valid(
            warn_share=0.75,
            pause_statuses=["pending"],
            auto_close_after=0,
            enabled=False,
            targets={"next_response": 60, "periodic_update": 1440},
        )
    )
    assert parse_policy(dump_policy(policy)) == policy


@pytest.mark.parametrize(
    ("given", "after", "dumped"),
    [
        ("3s", timedelta(seconds=3), "3s"),
        ("90s", timedelta(seconds=90), "90s"),
        (90, timedelta(minutes=90), "90m"),
        ("36h", timedelta(hours=36), "36h"),
        ("48h", timedelta(days=2), "2d"),
        ("365d", timedelta(days=365), "365d"),
        (0, timedelta(0), 0),
    ],
)
def test_auto_close_is_a_duration_like_the_targets(
    given: Any, after: timedelta, dumped: Any
) -> None:
    policy = parse_policy(valid(auto_close_after=given))
    assert policy.auto_close_after == after
    assert dump_policy(policy)["auto_close_after"] == dumped
    assert parse_policy(dump_policy(policy)) == policy


@pytest.mark.parametrize(("days", "after"), [(0, timedelta(0)), (2, timedelta(days=2))])
def test_a_policy_stored_with_days_still_reads(days: int, after: timedelta) -> None:
    stored = {
        k: v for k, v in dump_policy(parse_policy(valid())).items() if k != "auto_close_after"
    }
    policy = parse_policy({**stored, "auto_close_after_days": days})
    assert policy.auto_close_after == after
    assert "auto_close_after_days" not in dump_policy(policy)


@pytest.mark.parametrize(
    ("given", "target"),
    [
        (30, timedelta(minutes=30)),
        ("1s", timedelta(seconds=1)),
        ("45s", timedelta(seconds=45)),
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("4h", timedelta(hours=4)),
        ("2d", timedelta(days=2)),
        ("366d", timedelta(days=366)),
        (366 * 24 * 60, timedelta(days=366)),
    ],
)
def test_targets_are_minutes_or_a_number_with_its_unit(given: Any, target: timedelta) -> None:
    assert parse_policy(valid(targets={"first_response": given})).targets == {
        Metric.FIRST_RESPONSE: target
    }


def test_targets_dump_as_minutes_when_whole_else_as_seconds() -> None:
    policy = parse_policy(
        valid(
            targets={
                "first_response": "90s",
                "next_response": "45s",
                "resolution": "4h",
                "periodic_update": "120s",
            }
        )
    )
    dumped = dump_policy(policy)
    assert dumped["targets"] == {
        "first_response": "90s",
        "next_response": "45s",
        "resolution": 240,
        "periodic_update": 2,
    }
    assert parse_policy(dumped) == policy


@given(st.integers(1, 366 * 24 * 60 * 60))
def test_any_target_of_whole_seconds_dumps_and_reads_back_equal(seconds: int) -> None:
    policy = Policy(id="p", name="p", targets={Metric.RESOLUTION: timedelta(seconds=seconds)})
    assert parse_policy(dump_policy(policy)) == policy


def test_a_bad_target_says_what_is_allowed() -> None:
    found = violations(valid(targets={"first_response": "4 hours", "resolution": "0s"}))
    assert found["targets.first_response"] == (
        'must be whole minutes, or a whole number with its unit such as "90s", "30m", "4h" '
        "or \"2d\"; got '4 hours'"
    )
    assert found["targets.resolution"] == "must be from 1 second to 366 days; got '0s'"


def test_null_targets_mean_no_target() -> None:
    policy = parse_policy(valid(targets={"first_response": None, "resolution": 60}))
    assert policy.targets == {Metric.RESOLUTION: timedelta(hours=1)}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": None}, "id"),
        ({"id": "Gold Urgent"}, "id"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"order": "first"}, "order"),
        ({"order": True}, "order"),
        ({"order": 1.5}, "order"),
        ({"order": 10**9}, "order"),
        ({"enabled": "yes"}, "enabled"),
        ({"priority": ["urgent"]}, "priority"),
        ({"conditions": ["urgent"]}, "conditions"),
        ({"conditions": {"region": ["eu"]}}, "conditions.region"),
        ({"conditions": {"priority": "urgent"}}, "conditions.priority"),
        ({"conditions": {"priority": ["urgent", "critical"]}}, "conditions.priority[1]"),
        ({"conditions": {"priority": ["urgent", 3]}}, "conditions.priority[1]"),
        ({"conditions": {"category": ["complaint"]}}, "conditions.category[0]"),
        ({"conditions": {"channel": ["fax"]}}, "conditions.channel[0]"),
        ({"conditions": {"team": ["it", "Service Desk"]}}, "conditions.team[1]"),
        ({"conditions": {"tags": ["ok", "no spaces"]}}, "conditions.tags[1]"),
        ({"conditions": {"tags": ["x" * 51]}}, "conditions.tags[0]"),
        ({"conditions": {"requester_organization": [" "]}}, "conditions.requester_organization[0]"),
        (
            {"conditions": {"requester_organization": ["a\nb"]}},
            "conditions.requester_organization[0]",
        ),
        ({"conditions": {"tags": ["t"] * 101}}, "conditions.tags"),
        ({"targets": [30]}, "targets"),
        ({"targets": {"first_reply": 30}}, "targets.first_reply"),
        ({"targets": {"first_response": 0}}, "targets.first_response"),
        ({"targets": {"first_response": -5}}, "targets.first_response"),
        ({"targets": {"resolution": "4"}}, "targets.resolution"),
        ({"targets": {"resolution": "4 h"}}, "targets.resolution"),
        ({"targets": {"resolution": "4H"}}, "targets.resolution"),
        ({"targets": {"resolution": "1.5h"}}, "targets.resolution"),
        ({"targets": {"resolution": "-5s"}}, "targets.resolution"),
        ({"targets": {"resolution": "4w"}}, "targets.resolution"),
        ({"targets": {"resolution": "0s"}}, "targets.resolution"),
        ({"targets": {"resolution": "367d"}}, "targets.resolution"),
        ({"targets": {"resolution": "9" * 12 + "d"}}, "targets.resolution"),
        ({"targets": {"resolution": "9" * 13 + "s"}}, "targets.resolution"),
        ({"targets": {"resolution": "٣s"}}, "targets.resolution"),
        ({"targets": {"resolution": ""}}, "targets.resolution"),
        ({"targets": {"resolution": 2.5}}, "targets.resolution"),
        ({"targets": {"resolution": 10**30}}, "targets.resolution"),
        ({"targets": {"next_response": 366 * 24 * 60 + 1}}, "targets.next_response"),
        ({"targets": {"periodic_update": True}}, "targets.periodic_update"),
        ({"calendar_id": "Moscow Office"}, "calendar_id"),
        ({"warn_share": 1}, "warn_share"),
        ({"warn_share": 0}, "warn_share"),
        ({"warn_share": 1.5}, "warn_share"),
        ({"warn_share": "0.8"}, "warn_share"),
        ({"warn_share": True}, "warn_share"),
        ({"pause_statuses": "pending"}, "pause_statuses"),
        ({"pause_statuses": ["pending", "open"]}, "pause_statuses[1]"),
        ({"pause_statuses": ["resolved"]}, "pause_statuses[0]"),
        ({"auto_close_after_days": -1}, "auto_close_after_days"),
        ({"auto_close_after_days": 366}, "auto_close_after_days"),
        ({"auto_close_after_days": "5"}, "auto_close_after_days"),
        ({"auto_close_after_days": 2, "auto_close_after": "2d"}, "auto_close_after_days"),
        ({"auto_close_after": -1}, "auto_close_after"),
        ({"auto_close_after": "366d"}, "auto_close_after"),
        ({"auto_close_after": "5 days"}, "auto_close_after"),
        ({"auto_close_after": 1.5}, "auto_close_after"),
    ],
)
def test_each_bad_field_is_named(changes: dict[str, Any], field: str) -> None:
    assert field in violations(valid(**changes))


def test_every_problem_is_reported_at_once() -> None:
    found = violations(
        {
            "id": "ok",
            "name": "ok",
            "conditions": {"priority": ["p1"], "channel": ["email", "pigeon"]},
            "targets": {"resolution": 0},
            "warn_share": 2,
        }
    )
    assert set(found) == {
        "conditions.priority[0]",
        "conditions.channel[1]",
        "targets.resolution",
        "warn_share",
    }
    assert "must be one of low, normal, high, urgent" in found["conditions.priority[0]"]


def test_no_pause_statuses_means_clocks_never_pause() -> None:
    assert parse_policy(valid(pause_statuses=[])).pause_statuses == frozenset()


def test_a_policy_cannot_be_built_with_impossible_settings() -> None:
    with pytest.raises(ValueError, match="warn_share"):
        Policy(id="p", name="p", warn_share=1.0)
    with pytest.raises(ValueError, match="positive"):
        Policy(id="p", name="p", targets={Metric.RESOLUTION: timedelta(0)})
    with pytest.raises(ValueError, match="whole seconds"):
        Policy(id="p", name="p", targets={Metric.RESOLUTION: timedelta(seconds=1.5)})
    with pytest.raises(ValueError, match="pause_statuses"):
        Policy(id="p", name="p", pause_statuses=frozenset({"open"}))


# --- choosing the policy ---------------------------------------------------------------------

URGENT = TicketFacts(
    priority="urgent",
    category="incident",
    team="it-l2",
    requester_organization="Acme Corp",
    channel="monitoring",
    tags=frozenset({"vip", "vpn"}),
)


def policy(policy_id: str, order: int, **conditions: frozenset[str]) -> Policy:
    return Policy(id=policy_id, name=policy_id, order=order, conditions=Conditions(**conditions))


def test_the_first_matching_policy_by_order_wins() -> None:
    policies = [
        policy("catch-all", 100),
        policy("urgent", 10, priority=frozenset({"urgent"})),
        policy("incidents", 20, category=frozenset({"incident"})),
    ]
    assert select_policy(policies, URGENT) == policies[1]
    assert select_policy(policies, TicketFacts(category="incident")) == policies[2]
    assert select_policy(policies, TicketFacts()) == policies[0]


def test_disabled_policies_are_skipped() -> None:
    urgent = Policy(
        id="urgent", name="u", enabled=False, conditions=Conditions(priority=frozenset({"urgent"}))
    )
    assert select_policy([urgent, policy("rest", 5)], URGENT) == policy("rest", 5)


def test_no_policy_matches_gives_none() -> None:
    assert select_policy([policy("hr", 1, team=frozenset({"hr"}))], URGENT) is None
    assert select_policy([], URGENT) is None


def test_equal_orders_are_broken_by_id() -> None:
    assert select_policy([policy("b", 1), policy("a", 1)], URGENT) == policy("a", 1)


@pytest.mark.parametrize(
    ("conditions", "holds"),
    [
        ({}, True),
        ({"priority": frozenset({"urgent", "high"})}, True),
        ({"priority": frozenset({"low"})}, False),
        ({"category": frozenset({"incident"})}, True),
        ({"category": frozenset({"question"})}, False),
        ({"team": frozenset({"it-l2"})}, True),
        ({"team": frozenset({"it-l1"})}, False),
        ({"requester_organization": frozenset({"ACME CORP"})}, True),
        ({"requester_organization": frozenset({"Initech"})}, False),
        ({"channel": frozenset({"monitoring", "email"})}, True),
        ({"channel": frozenset({"web"})}, False),
        ({"tags": frozenset({"vpn", "printer"})}, True),
        ({"tags": frozenset({"printer"})}, False),
        ({"priority": frozenset({"urgent"}), "channel": frozenset({"web"})}, False),
    ],
)
def test_every_condition_must_hold(conditions: dict[str, frozenset[str]], holds: bool) -> None:
    assert applies(Conditions(**conditions), URGENT) is holds


def test_a_ticket_without_team_does_not_meet_a_team_condition() -> None:
    assert not applies(Conditions(team=frozenset({"it-l2"})), TicketFacts())


def test_parsed_conditions_match_ticket_values_whatever_their_case() -> None:
    parsed = parse_policy(valid())
    facts = TicketFacts(
        priority="HIGH", requester_organization=" acme corp ", tags=frozenset({"Vip"})
    )
    assert select_policy([parsed], facts) == parsed
