"""Assignment: fair choice of agents, capacity, on-duty rota, hand-over, and placement."""

import random
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from helpdesk.routing.domain.assignment import (
    AgentLoad,
    Handover,
    Placement,
    choose_agent,
    duty_agent,
    fits,
    hand_over,
    route,
)
from helpdesk.routing.domain.directory import (
    Absence,
    Agent,
    Availability,
    Strategy,
    Team,
    Tier,
    is_available,
)
from helpdesk.routing.domain.hours import Shift, WeeklyHours
from helpdesk.routing.domain.rules import AgentChoice, Decision

NOW = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)  # a Monday
HOUR = timedelta(hours=1)


def agent(
    agent_id: str,
    *,
    capacity: int = 5,
    availability: Availability = Availability.ONLINE,
    teams: tuple[str, ...] = ("it-l1",),
    skills: frozenset[str] = frozenset(),
    languages: frozenset[str] = frozenset(),
    out_of_office: tuple[Absence, ...] = (),
    working_hours: WeeklyHours | None = None,
) -> Agent:
    return Agent(
        id=agent_id,
        name=agent_id.title(),
        email=f"{agent_id}@example.com",
        teams=teams,
        skills=skills,
        languages=languages,
        capacity=capacity,
        availability=availability,
        working_hours=working_hours,
        out_of_office=out_of_office,
    )


def load(
    agent_id: str,
    open_tickets: int = 0,
    last: datetime | None = None,
    seq: int = 0,
    **agent_fields: Any,
) -> AgentLoad:
    return AgentLoad(agent(agent_id, **agent_fields), open_tickets, last, seq)


def least_loaded(
    *candidates: AgentLoad, skills: frozenset[str] = frozenset(), language: str = ""
) -> str | None:
    return choose_agent(Strategy.LEAST_LOADED, candidates, skills, language, NOW)


def round_robin(*candidates: AgentLoad) -> str | None:
    return choose_agent(Strategy.ROUND_ROBIN, candidates, frozenset(), "", NOW)


# --- least loaded ---


def test_least_loaded_takes_the_lowest_share_of_capacity() -> None:
    # 2 of 10 is a lighter load than 1 of 2, though more tickets.
    assert least_loaded(load("anna", 1, capacity=2), load("boris", 2, capacity=10)) == "boris"
    assert least_loaded(load("anna", 0, capacity=2), load("boris", 2, capacity=10)) == "anna"


def test_a_tie_goes_to_whoever_was_assigned_least_recently_not_who_came_first() -> None:
    candidates = [
        load("anna", 1, last=NOW - HOUR),
        load("boris", 1, last=NOW - 3 * HOUR),
        load("carl", 1, last=NOW - 2 * HOUR),
    ]
    for order in (candidates, candidates[::-1], candidates[1:] + candidates[:1]):
        assert least_loaded(*order) == "boris"


def test_a_never_assigned_agent_wins_a_tie() -> None:
    assert least_loaded(load("anna", 1, last=NOW - 100 * HOUR), load("zoe", 1)) == "zoe"


def test_same_instant_ties_are_broken_by_sequence_then_id() -> None:
    assert (
        least_loaded(load("anna", 1, last=NOW, seq=8), load("boris", 1, last=NOW, seq=7)) == "boris"
    )
    assert (
        least_loaded(load("boris", 1, last=NOW, seq=7), load("anna", 1, last=NOW, seq=7)) == "anna"
    )
    assert least_loaded(load("boris"), load("anna")) == "anna"


def test_nobody_at_or_above_capacity_is_chosen() -> None:
    assert least_loaded(load("anna", 5, capacity=5), load("boris", 7, capacity=5)) is None
    assert least_loaded(load("anna", 0, capacity=0)) is None
    assert least_loaded(load("anna", 5, capacity=5), load("boris", 4, capacity=5)) == "boris"


@pytest.mark.parametrize(
    "unavailable",
    [
        {"availability": Availability.AWAY},
        {"availability": Availability.OFFLINE},
        {"out_of_office": (Absence(NOW - HOUR, NOW + HOUR, "boris"),)},
        # Works Mondays 12:00-18:00 UTC only; it is 10:00.
        {"working_hours": WeeklyHours(((Shift(time(12), time(18)),), (), (), (), (), (), ()))},
    ],
)
def test_unavailable_agents_are_not_chosen(unavailable: dict[str, Any]) -> None:
    assert least_loaded(load("anna", 0, **unavailable), load("boris", 4)) == "boris"


def test_required_skills_must_all_be_held() -> None:
    candidates = (
        load("anna", 0, skills=frozenset({"vpn"})),
        load("boris", 3, skills=frozenset({"vpn", "cisco"})),
    )
    assert least_loaded(*candidates, skills=frozenset({"vpn", "cisco"})) == "boris"
    assert least_loaded(*candidates, skills=frozenset({"vpn"})) == "anna"
    assert least_loaded(*candidates, skills=frozenset({"sap"})) is None


def test_the_ticket_language_must_be_spoken_when_the_agent_lists_languages() -> None:
    candidates = (
        load("anna", 0, languages=frozenset({"en"})),
        load("boris", 3, languages=frozenset({"ru", "en"})),
        load("carl", 4),
    )
    assert least_loaded(*candidates, language="ru-RU") == "boris"
    assert least_loaded(*candidates, language="de") == "carl"
    assert least_loaded(*candidates, language="") == "anna"


def test_excluded_agents_are_not_chosen_again() -> None:
    chosen = choose_agent(
        Strategy.LEAST_LOADED, [load("anna"), load("boris", 2)], (), "", NOW, exclude={"anna"}
    )
    assert chosen == "boris"


# --- round robin and queue only ---


def test_round_robin_takes_turns_regardless_of_load() -> None:
    candidates = [load("anna", 0, last=NOW - HOUR), load("boris", 3, last=NOW - 2 * HOUR)]
    assert round_robin(*candidates) == "boris"
    assert round_robin(load("anna", 0, last=NOW - HOUR), load("carl", 4)) == "carl"


def test_round_robin_skips_full_and_unavailable_agents() -> None:
    candidates = [
        load("anna", 5, capacity=5),
        load("boris", 0, availability=Availability.AWAY),
        load("carl", 1, last=NOW - HOUR),
    ]
    assert round_robin(*candidates) == "carl"


def test_round_robin_cycles_through_a_team() -> None:
    loads = {a: load(a, capacity=100) for a in ("anna", "boris", "carl")}
    order = []
    for step in range(6):
        chosen = round_robin(*loads.values())
        assert chosen is not None
        order.append(chosen)
        loads[chosen] = replace(
            loads[chosen],
            open_tickets=loads[chosen].open_tickets + 1,
            last_assigned_at=NOW + step * timedelta(seconds=1),
        )
    assert order == ["anna", "boris", "carl", "anna", "boris", "carl"]


def test_queue_only_never_assigns() -> None:
    assert choose_agent(Strategy.QUEUE_ONLY, [load("anna")], (), "", NOW) is None


def test_choose_agent_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        choose_agent(Strategy.LEAST_LOADED, [load("anna")], (), "", datetime(2025, 3, 3))


# --- properties ---


@settings(max_examples=4, deadline=None)
@given(
    agents=st.integers(min_value=2, max_value=8),
    capacity=st.integers(min_value=1, max_value=3_000),
    strategy=st.sampled_from([Strategy.LEAST_LOADED, Strategy.ROUND_ROBIN]),
)
# Teams with room for every ticket, so that all ten thousand are really assigned.
@example(agents=7, capacity=2_000, strategy=Strategy.LEAST_LOADED)
@example(agents=3, capacity=3_334, strategy=Strategy.ROUND_ROBIN)
def test_ten_thousand_tickets_spread_evenly_and_never_beyond_capacity(
    agents: int, capacity: int, strategy: Strategy
) -> None:
    loads = {f"agent-{i}": load(f"agent-{i}", capacity=capacity) for i in range(agents)}
    queued = 0
    for sequence in range(1, 10_001):
        chosen = choose_agent(strategy, loads.values(), frozenset(), "", NOW)
        if chosen is None:
            queued += 1
            continue
        before = loads[chosen]
        loads[chosen] = replace(
            before,
            open_tickets=before.open_tickets + 1,
            last_assigned_at=NOW + timedelta(seconds=sequence),
            last_assigned_seq=sequence,
        )
    counts = [c.open_tickets for c in loads.values()]
    assert max(counts) - min(counts) <= 1
    assert max(counts) <= capacity
    # Only a full team leaves a ticket queued.
    assert queued == max(0, 10_000 - agents * capacity)


@settings(max_examples=25, deadline=None)
@given(
    capacities=st.lists(st.integers(min_value=1, max_value=6), min_size=2, max_size=6),
    steps=st.lists(st.booleans(), min_size=50, max_size=300),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_with_resolutions_in_between_each_ticket_goes_to_the_least_loaded_agent(
    capacities: list[int], steps: list[bool], seed: int
) -> None:
    chooser = random.Random(seed)
    loads = {f"agent-{i}": load(f"agent-{i}", capacity=c) for i, c in enumerate(capacities)}
    for sequence, assign in enumerate(steps, start=1):
        if not assign:
            busy = [a for a, c in loads.items() if c.open_tickets > 0]
            if busy:
                resolved = chooser.choice(busy)
                loads[resolved] = replace(
                    loads[resolved], open_tickets=loads[resolved].open_tickets - 1
                )
            continue
        chosen = choose_agent(Strategy.LEAST_LOADED, loads.values(), frozenset(), "", NOW)
        with_room = [c for c in loads.values() if c.has_room]
        if chosen is None:
            assert not with_room
            continue
        share = Fraction(loads[chosen].open_tickets, loads[chosen].agent.capacity)
        assert all(share <= Fraction(c.open_tickets, c.agent.capacity) for c in with_room)
        loads[chosen] = replace(
            loads[chosen],
            open_tickets=loads[chosen].open_tickets + 1,
            last_assigned_at=NOW + timedelta(seconds=sequence),
        )
        assert all(c.open_tickets <= c.agent.capacity for c in loads.values())


SKILLS = ["vpn", "mail", "sap", "cisco"]

candidate_loads = st.builds(
    lambda i, capacity, open_tickets, availability, skills, away, last: AgentLoad(
        agent(
            f"agent-{i}",
            capacity=capacity,
            availability=availability,
            skills=frozenset(skills),
            languages=frozenset({"ru"}) if i % 3 == 0 else frozenset(),
            out_of_office=(Absence(NOW - HOUR, NOW + HOUR),) if away else (),
        ),
        open_tickets,
        None if last is None else NOW - timedelta(minutes=last),
    ),
    i=st.integers(min_value=0, max_value=50),
    capacity=st.integers(min_value=0, max_value=5),
    open_tickets=st.integers(min_value=0, max_value=7),
    availability=st.sampled_from(list(Availability)),
    skills=st.sets(st.sampled_from(SKILLS)),
    away=st.booleans(),
    last=st.none() | st.integers(min_value=0, max_value=600),
)


@settings(max_examples=200, deadline=None)
@given(
    candidates=st.lists(candidate_loads, max_size=8, unique_by=lambda c: c.agent.id),
    required=st.sets(st.sampled_from(SKILLS), max_size=2),
    language=st.sampled_from(["", "ru", "en"]),
    strategy=st.sampled_from(list(Strategy)),
)
def test_choose_agent_never_picks_a_full_unavailable_or_unskilled_agent(
    candidates: list[AgentLoad], required: set[str], language: str, strategy: Strategy
) -> None:
    chosen = choose_agent(strategy, candidates, frozenset(required), language, NOW)
    if chosen is None:
        if strategy != Strategy.QUEUE_ONLY:
            assert not any(fits(c, required, language, NOW) for c in candidates)
        return
    picked = next(c for c in candidates if c.agent.id == chosen)
    assert picked.open_tickets < picked.agent.capacity
    assert is_available(picked.agent, NOW)
    assert required <= picked.agent.skills
    assert not picked.agent.languages or language in ("", *picked.agent.languages)


# --- on duty ---


def test_the_on_duty_agent_is_the_first_free_one_on_the_rota() -> None:
    team = Team("it-oncall", "On call", "it", duty_rota=("anna", "boris", "carl"))
    candidates = [
        load("anna", availability=Availability.OFFLINE),
        load("boris", 5, capacity=5),
        load("carl", 4, capacity=5),
        load("dora", 0),
    ]
    assert duty_agent(team, candidates, NOW) == "carl"
    assert duty_agent(team, candidates, NOW, exclude={"carl"}) is None
    assert duty_agent(replace(team, duty_rota=()), candidates, NOW) is None
    assert duty_agent(replace(team, duty_rota=("ghost", "dora")), candidates, NOW) == "dora"


# --- hand-over ---


def away(backup: str = "boris") -> tuple[Absence, ...]:
    return (Absence(NOW - HOUR, NOW + 24 * HOUR, backup),)


def test_a_backup_takes_tickets_while_under_capacity_and_the_rest_are_queued() -> None:
    anna = agent("anna", out_of_office=away("boris"))
    plan = hand_over(anna, ["t1", "t2", "t3"], [load("boris", 3, capacity=5)], NOW)
    assert [(h.ticket_id, h.agent_id) for h in plan] == [
        ("t1", "boris"),
        ("t2", "boris"),
        ("t3", ""),
    ]
    assert plan[0].reason == "anna is out of office; backup boris takes over"
    assert plan[2].reason == "anna is out of office; backup boris is at capacity; back to the queue"


def test_an_unavailable_backup_sends_everything_back_to_the_queue() -> None:
    anna = agent("anna", out_of_office=away("boris"))
    plan = hand_over(anna, ["t1"], [load("boris", availability=Availability.OFFLINE)], NOW)
    assert plan == (
        Handover("t1", "", "anna is out of office; backup boris is unavailable; back to the queue"),
    )


def test_an_agent_without_absence_has_no_backup() -> None:
    anna = agent("anna", availability=Availability.OFFLINE)
    plan = hand_over(anna, ["t1"], [load("boris")], NOW)
    assert plan == (
        Handover("t1", "", "anna is unavailable; anna has no backup; back to the queue"),
    )


def test_a_backup_on_leave_hands_on_to_their_own_backup() -> None:
    anna = agent("anna", out_of_office=away("boris"))
    candidates = [load("boris", out_of_office=away("carl")), load("carl", 0)]
    assert [h.agent_id for h in hand_over(anna, ["t1"], candidates, NOW)] == ["carl"]


def test_backups_going_round_in_a_circle_end_in_the_queue() -> None:
    anna = agent("anna", out_of_office=away("boris"))
    candidates = [
        load("anna", out_of_office=away("boris")),
        load("boris", out_of_office=away("anna")),
    ]
    plan = hand_over(anna, ["t1"], candidates, NOW)
    assert plan[0].agent_id == ""
    assert "circle" in plan[0].reason


def test_a_backup_missing_from_the_directory_ends_in_the_queue() -> None:
    anna = agent("anna", out_of_office=away("ghost"))
    plan = hand_over(anna, ["t1", "t2"], [], NOW)
    assert [h.agent_id for h in plan] == ["", ""]
    assert "ghost is not in the directory" in plan[0].reason


def test_nothing_to_hand_over_is_an_empty_plan() -> None:
    assert hand_over(agent("anna", out_of_office=away()), [], [load("boris")], NOW) == ()


# --- route ---

TEAMS = [
    Team("it-l1", "IT L1", "it", Tier.L1, Strategy.LEAST_LOADED, duty_rota=("anna",)),
    Team("it-l2", "IT L2", "it", Tier.L2, Strategy.ROUND_ROBIN),
    Team("it-queue", "IT desk", "it", Tier.L1, Strategy.QUEUE_ONLY),
    Team("hr-l1", "HR", "hr", Tier.L1),
]


def test_route_uses_the_teams_strategy_among_its_members() -> None:
    candidates = [
        load("anna", 3),
        load("boris", 1),
        load("olga", 0, teams=("hr-l1",)),
    ]
    placement = route(Decision(team="it-l1"), "", TEAMS, candidates, NOW)
    assert placement == Placement(
        "it-l1",
        Tier.L1,
        "boris",
        "no routing rule matched; least_loaded in team it-l1: boris",
    )


def test_route_honours_skills_and_language() -> None:
    candidates = [
        load("anna", 0, languages=frozenset({"en"})),
        load("boris", 2, skills=frozenset({"vpn"})),
        load("carl", 1, languages=frozenset({"ru"})),
    ]
    decision = Decision(team="it-l1", required_skills=frozenset({"vpn"}))
    assert route(decision, "ru", TEAMS, candidates, NOW).agent_id == "boris"
    assert route(Decision(team="it-l1"), "ru", TEAMS, candidates, NOW).agent_id == "carl"


def test_route_moves_a_ticket_to_the_team_of_the_decided_tier() -> None:
    candidates = [load("anna", 0), load("vera", 0, teams=("it-l2",))]
    placement = route(Decision(team="it-l1", tier=Tier.L2), "", TEAMS, candidates, NOW)
    assert placement.team == "it-l2"
    assert placement.tier == Tier.L2
    assert placement.agent_id == "vera"
    assert "L2 work in it goes to team it-l2" in placement.reason


def test_route_keeps_the_team_when_its_department_has_no_such_tier() -> None:
    placement = route(
        Decision(team="hr-l1", tier=Tier.L3), "", TEAMS, [load("olga", teams=("hr-l1",))], NOW
    )
    assert (placement.team, placement.tier, placement.agent_id) == ("hr-l1", Tier.L3, "olga")
    assert "no L3 team in hr" in placement.reason


def test_route_to_a_named_agent() -> None:
    decision = Decision(team="it-l1", choice=AgentChoice.AGENT, agent_id="carl", matched=("VIP",))
    placement = route(decision, "", TEAMS, [load("anna"), load("carl", 4)], NOW)
    assert placement.agent_id == "carl"
    assert placement.reason == "routing rules: VIP; assigned to carl"


def test_a_named_agent_on_leave_yields_to_their_backup() -> None:
    decision = Decision(team="it-l1", choice=AgentChoice.AGENT, agent_id="carl")
    candidates = [load("carl", out_of_office=away("dora")), load("dora", teams=("it-l2",))]
    placement = route(decision, "", TEAMS, candidates, NOW)
    assert placement.agent_id == "dora"
    assert "carl is out of office; backup dora takes over" in placement.reason


def test_a_named_agent_who_is_full_yields_to_the_teams_strategy() -> None:
    decision = Decision(team="it-l1", choice=AgentChoice.AGENT, agent_id="carl")
    placement = route(decision, "", TEAMS, [load("carl", 5), load("anna", 1)], NOW)
    assert placement.agent_id == "anna"
    assert "carl is at capacity" in placement.reason


def test_route_to_the_on_duty_agent_or_else_the_strategy() -> None:
    decision = Decision(team="it-l1", choice=AgentChoice.ON_DUTY)
    assert route(decision, "", TEAMS, [load("anna", 4), load("boris", 0)], NOW).agent_id == "anna"
    busy = route(decision, "", TEAMS, [load("anna", 5), load("boris", 0)], NOW)
    assert busy.agent_id == "boris"
    assert "nobody on duty is free" in busy.reason


def test_route_leaves_the_ticket_queued_when_told_or_when_nobody_fits() -> None:
    queued = route(Decision(team="it-l1", choice=AgentChoice.QUEUE), "", TEAMS, [load("anna")], NOW)
    assert queued == Placement("it-l1", Tier.L1, "", "no routing rule matched; left in the queue")
    desk = route(Decision(team="it-queue"), "", TEAMS, [load("anna", teams=("it-queue",))], NOW)
    assert desk.agent_id == ""
    assert "works from its queue" in desk.reason
    full = route(Decision(team="it-l1"), "", TEAMS, [load("anna", 5)], NOW)
    assert full.agent_id == ""
    assert "no free agent in team it-l1 fits" in full.reason


def test_route_without_a_known_team() -> None:
    none = route(Decision(), "", TEAMS, [load("anna")], NOW)
    assert none == Placement("", None, "", "no routing rule matched; no team; left for triage")
    gone = route(Decision(team="gone"), "", TEAMS, [load("anna")], NOW)
    assert gone.team == "gone"
    assert gone.agent_id == ""
    assert "team gone is not in the directory" in gone.reason


def test_route_never_gives_a_ticket_back_to_an_excluded_agent() -> None:
    candidates = [load("anna", 0), load("boris", 4)]
    assert (
        route(Decision(team="it-l1"), "", TEAMS, candidates, NOW, exclude={"anna"}).agent_id
        == "boris"
    )
    named = Decision(team="it-l1", choice=AgentChoice.AGENT, agent_id="anna")
    assert route(named, "", TEAMS, candidates, NOW, exclude={"anna"}).agent_id == "boris"
