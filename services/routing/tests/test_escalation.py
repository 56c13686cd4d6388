"""Escalation: tiers, the team above, reopen counts and SLA breaches."""

import pytest

from helpdesk.routing.domain.directory import Team, Tier
from helpdesk.routing.domain.escalation import (
    Escalation,
    escalate,
    escalation_team,
    next_tier,
    on_breach,
    on_reopen,
    should_escalate_on_reopen,
    team_for_tier,
)

TEAMS = [
    Team("it-l1", "IT first line", "it", Tier.L1),
    Team("it-l2-net", "IT network", "it", Tier.L2),
    Team("it-l2-apps", "IT applications", "it", Tier.L2),
    Team("it-l3", "IT experts", "it", Tier.L3),
    Team("hr-l1", "HR desk", "hr", Tier.L1),
    Team("hr-l3", "HR legal experts", "hr", Tier.L3),
    Team("legal-l1", "Legal", "legal", Tier.L1),
]


def test_next_tier() -> None:
    assert next_tier(Tier.L1) == Tier.L2
    assert next_tier(Tier.L2) == Tier.L3
    assert next_tier(Tier.L3) is None


def test_the_team_above_is_in_the_same_department_and_chosen_by_id() -> None:
    team = escalation_team(TEAMS, "it-l1")
    assert team is not None
    assert team.id == "it-l2-apps"
    # The order of the directory does not matter.
    again = escalation_team(list(reversed(TEAMS)), "it-l1")
    assert again == team


def test_escalation_skips_a_tier_the_department_lacks() -> None:
    team = escalation_team(TEAMS, "hr-l1")
    assert team is not None
    assert team.id == "hr-l3"


def test_escalation_starts_from_the_tickets_tier_when_given() -> None:
    team = escalation_team(TEAMS, "it-l1", Tier.L2)
    assert team is not None
    assert team.id == "it-l3"


@pytest.mark.parametrize("current", ["it-l3", "legal-l1", "nowhere"])
def test_no_team_above(current: str) -> None:
    assert escalation_team(TEAMS, current) is None


def test_team_for_tier() -> None:
    team = team_for_tier(TEAMS, "it", Tier.L3)
    assert team is not None
    assert team.id == "it-l3"
    assert team_for_tier(TEAMS, "hr", Tier.L2) is None
    assert team_for_tier([], "it", Tier.L1) is None


def test_escalate_moves_up_a_tier_to_the_team_there() -> None:
    assert escalate(TEAMS, "it-l1", None, "by agent anna") == Escalation(
        True, "by agent anna; escalated L1 -> L2 (team it-l2-apps)", Tier.L2, "it-l2-apps"
    )
    assert escalate(TEAMS, "hr-l1", Tier.L1, "rule") == Escalation(
        True, "rule; escalated L1 -> L3 (team hr-l3)", Tier.L3, "hr-l3"
    )


def test_escalate_without_a_higher_team_raises_only_the_tier() -> None:
    assert escalate(TEAMS, "legal-l1", None, "rule") == Escalation(
        True, "rule; escalated L1 -> L2; department legal has no team above L1, team kept", Tier.L2
    )
    assert escalate(TEAMS, "", Tier.L2, "rule") == Escalation(
        True, "rule; escalated L2 -> L3; no known team to escalate from, team kept", Tier.L3
    )
    assert escalate(TEAMS, "", None, "rule").tier == Tier.L2


def test_a_ticket_is_at_least_at_its_teams_tier() -> None:
    # The ticket's own tier lags behind: it sits with an L2 team, so it goes to L3.
    assert escalate(TEAMS, "it-l2-net", Tier.L1, "rule") == Escalation(
        True, "rule; escalated L2 -> L3 (team it-l3)", Tier.L3, "it-l3"
    )


def test_escalate_stops_at_the_top_tier() -> None:
    assert escalate(TEAMS, "it-l3", None, "rule") == Escalation(
        False, "rule; already at L3, the top tier"
    )
    assert not escalate(TEAMS, "it-l1", Tier.L3, "rule").escalate


@pytest.mark.parametrize(
    ("reopens", "threshold", "expected"),
    [
        (0, 2, False),
        (1, 2, False),
        (2, 2, True),
        (3, 2, True),
        (5, 0, False),
        (5, -1, False),
        (1, 1, True),
    ],
)
def test_should_escalate_on_reopen(reopens: int, threshold: int, expected: bool) -> None:
    assert should_escalate_on_reopen(reopens, threshold) is expected


def test_on_reopen() -> None:
    up = on_reopen(TEAMS, "it-l1", Tier.L1, 2, 2)
    assert up == Escalation(
        True, "reopened 2 times; escalated L1 -> L2 (team it-l2-apps)", Tier.L2, "it-l2-apps"
    )
    assert on_reopen(TEAMS, "it-l1", Tier.L1, 1, 2) == Escalation(
        False, "reopened 1 time; escalation from 2"
    )
    assert on_reopen(TEAMS, "it-l1", Tier.L1, 9, 0) == Escalation(
        False, "reopened 9 times; no escalation on reopen"
    )


def test_on_breach_escalates_a_missed_resolution() -> None:
    assert on_breach(TEAMS, "it-l2-net", None, "resolution") == Escalation(
        True, "SLA resolution target breached; escalated L2 -> L3 (team it-l3)", Tier.L3, "it-l3"
    )


def test_on_breach_leaves_a_missed_first_response_in_its_tier_by_default() -> None:
    decision = on_breach(TEAMS, "it-l1", None, "first_response")
    assert decision == Escalation(
        False, "SLA first_response target breached; this target does not escalate"
    )
    chosen = on_breach(
        TEAMS, "it-l1", None, "first_response", escalating_targets={"first_response"}
    )
    assert chosen.escalate
    assert chosen.team == "it-l2-apps"


def test_on_breach_at_the_top_says_why_nothing_happens() -> None:
    decision = on_breach(TEAMS, "it-l3", Tier.L3, "resolution")
    assert not decision.escalate
    assert decision.reason == "SLA resolution target breached; already at L3, the top tier"
