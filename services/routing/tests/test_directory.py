"""The directory's pure rules: validation of teams and agents, availability, backups."""

from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

import pytest

from helpdesk.core.errors import InvalidArgument
from helpdesk.routing.domain.directory import (
    Absence,
    Agent,
    Availability,
    Strategy,
    Team,
    Tier,
    backup_for,
    check_agent_references,
    check_team_references,
    dump_agent,
    dump_team,
    is_available,
    parse_agent,
    parse_team,
    speaks,
)
from helpdesk.routing.domain.hours import END_OF_DAY, Shift, WeeklyHours

# A Monday.
MONDAY = datetime(2025, 3, 3, tzinfo=UTC)


def team_raw(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"id": "it-l1", "name": "IT first line", "department": "it"}
    raw.update(overrides)
    return raw


def agent_raw(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": "anna",
        "name": "Anna Ivanova",
        "email": "anna@example.com",
        "capacity": 5,
    }
    raw.update(overrides)
    return raw


def refused(parse: Any, raw: Any) -> dict[str, str]:
    """Field path -> description of every violation a parser reports."""
    with pytest.raises(InvalidArgument) as caught:
        parse(raw)
    return {v.field: v.description for v in caught.value.violations}


def weekdays(start: str, end: str) -> dict[str, Any]:
    days = ("monday", "tuesday", "wednesday", "thursday", "friday")
    return {day: [{"start": start, "end": end}] for day in days}


# --- teams ---


def test_team_defaults_and_normalisation() -> None:
    team = parse_team(team_raw(department="  Human   Resources ", id=" HR-L1 "))
    assert team == Team(
        id="hr-l1",
        name="IT first line",
        department="human resources",
        tier=Tier.L1,
        strategy=Strategy.LEAST_LOADED,
        duty_rota=(),
    )


def test_team_with_every_field() -> None:
    team = parse_team(team_raw(tier="l2", strategy="ROUND_ROBIN", duty_rota=["Anna", "boris"]))
    assert team.tier == Tier.L2
    assert team.strategy == Strategy.ROUND_ROBIN
    # Agent ids keep their case: they may come from an identity provider.
    assert team.duty_rota == ("Anna", "boris")


def test_team_round_trips_through_its_raw_form() -> None:
    team = parse_team(team_raw(tier="L3", strategy="queue_only", duty_rota=["a", "b"]))
    assert parse_team(dump_team(team)) == team


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"id": ""}, "id"),
        ({"id": "IT team!"}, "id"),
        ({"id": 7}, "id"),
        ({"name": "  "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"department": None}, "department"),
        ({"tier": "L4"}, "tier"),
        ({"strategy": "random"}, "strategy"),
        ({"duty_rota": "anna"}, "duty_rota"),
        ({"duty_rota": ["anna", "bad id"]}, "duty_rota[1]"),
        ({"duty_rota": ["anna", "anna"]}, "duty_rota[1]"),
        ({"queue": "it"}, "queue"),
    ],
)
def test_team_refusals_name_the_field(overrides: dict[str, Any], field: str) -> None:
    raw = team_raw(**overrides)
    raw = {k: v for k, v in raw.items() if v is not None}
    assert field in refused(parse_team, raw)


def test_team_refusal_lists_every_bad_field_at_once() -> None:
    problems = refused(parse_team, {"id": "", "tier": "L9", "strategy": "x"})
    assert set(problems) == {"id", "name", "department", "tier", "strategy"}


def test_team_must_be_an_object() -> None:
    assert refused(parse_team, ["it"]) == {"(root)": "must be an object"}


def test_team_references_check_the_rota() -> None:
    team = parse_team(team_raw(duty_rota=["anna", "ghost"]))
    check_team_references(team, {"anna", "ghost"})
    with pytest.raises(InvalidArgument) as caught:
        check_team_references(team, {"anna"})
    assert [v.field for v in caught.value.violations] == ["duty_rota[1]"]


# --- agents: validation ---


def test_agent_defaults() -> None:
    agent = parse_agent(agent_raw())
    assert agent == Agent(id="anna", name="Anna Ivanova", email="anna@example.com", capacity=5)
    assert agent.availability == Availability.OFFLINE
    assert agent.time_zone == "UTC"
    assert agent.working_hours is None


def test_agent_with_every_field() -> None:
    agent = parse_agent(
        agent_raw(
            email="Anna@Example.COM",
            teams=["it-l1", "IT-L2", "it-l1"],
            skills=["VPN", "email", "vpn"],
            languages=["ru", "en-GB"],
            availability="Online",
            time_zone="Europe/Moscow",
            working_hours={
                "monday": [{"start": "09:00", "end": "13:00"}, {"start": "14:00", "end": "18:00"}],
                "Saturday": [{"start": "22:00", "end": "24:00"}],
            },
            out_of_office=[
                {
                    "start": "2025-07-01T00:00:00+03:00",
                    "end": "2025-07-15T00:00:00+03:00",
                    "backup_agent_id": "boris",
                }
            ],
        )
    )
    assert agent.email == "anna@example.com"
    assert agent.teams == ("it-l1", "it-l2")
    assert agent.skills == frozenset({"vpn", "email"})
    assert agent.languages == frozenset({"ru", "en-gb"})
    assert agent.availability == Availability.ONLINE
    assert agent.working_hours is not None
    assert agent.working_hours.days[0] == (
        Shift(time(9), time(13)),
        Shift(time(14), time(18)),
    )
    assert agent.working_hours.days[5] == (Shift(time(22), END_OF_DAY),)
    assert agent.working_hours.days[6] == ()
    assert agent.out_of_office == (
        Absence(
            datetime(2025, 6, 30, 21, tzinfo=UTC), datetime(2025, 7, 14, 21, tzinfo=UTC), "boris"
        ),
    )


def test_agent_round_trips_through_its_raw_form() -> None:
    agent = parse_agent(
        agent_raw(
            teams=["it-l1"],
            skills=["vpn"],
            languages=["ru"],
            availability="away",
            time_zone="Asia/Vladivostok",
            working_hours=weekdays("08:30", "24:00"),
            out_of_office=[
                {"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z"},
                {
                    "start": "2025-02-01T00:00:00Z",
                    "end": "2025-02-02T00:00:00Z",
                    "backup_agent_id": "boris",
                },
            ],
        )
    )
    assert parse_agent(dump_agent(agent)) == agent


def test_agent_accepts_aware_datetimes_and_converts_them_to_utc() -> None:
    moscow = timezone(timedelta(hours=3))
    agent = parse_agent(
        agent_raw(
            out_of_office=[
                {"start": datetime(2025, 1, 1, 3, tzinfo=moscow), "end": "2025-01-02T00:00:00Z"}
            ]
        )
    )
    assert agent.out_of_office[0].start == datetime(2025, 1, 1, tzinfo=UTC)
    assert agent.out_of_office[0].start.tzinfo == UTC


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"id": None}, "id"),
        ({"id": "anna ivanova"}, "id"),
        ({"name": ""}, "name"),
        ({"email": "anna"}, "email"),
        ({"email": None}, "email"),
        ({"teams": ["it-l1", "IT L2"]}, "teams[1]"),
        ({"teams": "it-l1"}, "teams"),
        ({"skills": ["vpn", ""]}, "skills[1]"),
        ({"skills": ["x" * 51]}, "skills[0]"),
        ({"languages": ["russian"]}, "languages[0]"),
        ({"capacity": None}, "capacity"),
        ({"capacity": -1}, "capacity"),
        ({"capacity": 1001}, "capacity"),
        ({"capacity": "5"}, "capacity"),
        ({"capacity": True}, "capacity"),
        ({"capacity": 2.5}, "capacity"),
        ({"availability": "busy"}, "availability"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": "../etc/passwd"}, "time_zone"),
        ({"time_zone": ""}, "time_zone"),
        ({"working_hours": []}, "working_hours"),
        ({"working_hours": {}}, "working_hours"),
        ({"working_hours": {"mon": [{"start": "09:00", "end": "18:00"}]}}, "working_hours.mon"),
        ({"working_hours": {"monday": {"start": "09:00"}}}, "working_hours.monday"),
        (
            {"working_hours": {"monday": [{"start": "9am", "end": "18:00"}]}},
            "working_hours.monday[0].start",
        ),
        (
            {"working_hours": {"monday": [{"start": "24:00", "end": "24:00"}]}},
            "working_hours.monday[0].start",
        ),
        (
            {"working_hours": {"monday": [{"start": "09:00", "end": "25:00"}]}},
            "working_hours.monday[0].end",
        ),
        (
            {"working_hours": {"monday": [{"start": "09:00", "end": "08:00"}]}},
            "working_hours.monday[0].end",
        ),
        (
            {"working_hours": {"monday": [{"start": "09:00", "end": "09:00"}]}},
            "working_hours.monday[0].end",
        ),
        (
            {"working_hours": {"monday": [{"start": "09:00"}]}},
            "working_hours.monday[0].end",
        ),
        (
            {
                "working_hours": {
                    "monday": [
                        {"start": "09:00", "end": "18:00"},
                        {"start": "12:00", "end": "13:00"},
                    ]
                }
            },
            "working_hours.monday[1].start",
        ),
        (
            {"working_hours": {"monday": [{"start": "09:00", "end": "18:00", "lunch": "13:00"}]}},
            "working_hours.monday[0].lunch",
        ),
        ({"out_of_office": {"start": "2025-01-01T00:00:00Z"}}, "out_of_office"),
        ({"out_of_office": ["tomorrow"]}, "out_of_office[0]"),
        (
            {"out_of_office": [{"start": "2025-01-02", "end": "2025-01-03T00:00:00Z"}]},
            "out_of_office[0].start",
        ),
        (
            {"out_of_office": [{"start": "2025-01-02T00:00:00Z", "end": "next week"}]},
            "out_of_office[0].end",
        ),
        (
            {"out_of_office": [{"start": "2025-01-02T00:00:00Z", "end": "2025-01-01T00:00:00Z"}]},
            "out_of_office[0].end",
        ),
        (
            {
                "out_of_office": [
                    {"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z"},
                    {
                        "start": "2025-02-01T00:00:00Z",
                        "end": "2025-02-02T00:00:00Z",
                        "backup_agent_id": "anna",
                    },
                ]
            },
            "out_of_office[1].backup_agent_id",
        ),
        (
            {
                "out_of_office": [
                    {
                        "start": "2025-01-01T00:00:00Z",
                        "end": "2025-01-02T00:00:00Z",
                        "backup_agent_id": "boris ivanov",
                    }
                ]
            },
            "out_of_office[0].backup_agent_id",
        ),
        (
            {
                "out_of_office": [
                    {"start": "2025-01-01T00:00:00Z", "end": "2025-01-10T00:00:00Z"},
                    {"start": "2025-01-05T00:00:00Z", "end": "2025-01-06T00:00:00Z"},
                ]
            },
            "out_of_office[1].start",
        ),
        ({"skill": ["vpn"]}, "skill"),
    ],
)
def test_agent_refusals_name_the_field(overrides: dict[str, Any], field: str) -> None:
    raw = {k: v for k, v in agent_raw(**overrides).items() if v is not None}
    assert field in refused(parse_agent, raw)


def test_a_naive_out_of_office_instant_is_refused_as_such() -> None:
    problems = refused(
        parse_agent,
        agent_raw(out_of_office=[{"start": "2025-01-01T00:00:00", "end": "2025-01-02T00:00:00Z"}]),
    )
    assert problems == {
        "out_of_office[0].start": "must carry a time zone offset; got '2025-01-01T00:00:00'"
    }


def test_agent_refusal_lists_every_bad_field_at_once() -> None:
    problems = refused(
        parse_agent,
        {
            "id": "anna",
            "name": "Anna",
            "email": "anna@example.com",
            "capacity": -3,
            "time_zone": "Nowhere/Land",
            "working_hours": {"friday": [{"start": "10:00", "end": "09:00"}]},
            "out_of_office": [
                {"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T00:00:00Z"},
                {
                    "start": "2025-03-01T00:00:00Z",
                    "end": "2025-03-02T00:00:00Z",
                    "backup_agent_id": "anna",
                },
            ],
        },
    )
    assert set(problems) == {
        "capacity",
        "time_zone",
        "working_hours.friday[0].end",
        "out_of_office[1].backup_agent_id",
    }


def test_agent_references_check_teams_and_backups() -> None:
    agent = parse_agent(
        agent_raw(
            teams=["it-l1", "gone"],
            out_of_office=[
                {
                    "start": "2025-01-01T00:00:00Z",
                    "end": "2025-01-02T00:00:00Z",
                    "backup_agent_id": "boris",
                },
                {
                    "start": "2025-02-01T00:00:00Z",
                    "end": "2025-02-02T00:00:00Z",
                    "backup_agent_id": "ghost",
                },
            ],
        )
    )
    check_agent_references(agent, {"it-l1", "gone"}, {"anna", "boris", "ghost"})
    with pytest.raises(InvalidArgument) as caught:
        check_agent_references(agent, {"it-l1"}, {"anna", "boris"})
    assert [v.field for v in caught.value.violations] == [
        "teams[1]",
        "out_of_office[1].backup_agent_id",
    ]


# --- availability ---


def test_availability_follows_the_agents_status() -> None:
    online = Agent("a", "A", "a@example.com", capacity=1, availability=Availability.ONLINE)
    assert is_available(online, MONDAY)
    for status in (Availability.AWAY, Availability.OFFLINE):
        away = Agent("a", "A", "a@example.com", capacity=1, availability=status)
        assert not is_available(away, MONDAY)


def test_working_hours_are_read_in_the_agents_time_zone() -> None:
    # Vladivostok is UTC+10 all year: Monday 09:00-18:00 there is Sunday 23:00 to Monday
    # 08:00 in UTC.
    agent = parse_agent(
        agent_raw(
            availability="online",
            time_zone="Asia/Vladivostok",
            working_hours={"monday": [{"start": "09:00", "end": "18:00"}]},
        )
    )
    sunday_utc = datetime(2025, 3, 2, 23, 30, tzinfo=UTC)
    assert is_available(agent, sunday_utc)
    assert is_available(agent, datetime(2025, 3, 3, 7, 59, tzinfo=UTC))
    assert not is_available(agent, datetime(2025, 3, 3, 8, 0, tzinfo=UTC))
    assert not is_available(agent, datetime(2025, 3, 3, 9, 30, tzinfo=UTC))  # 19:30 local
    assert not is_available(agent, datetime(2025, 3, 2, 22, 59, tzinfo=UTC))


def test_working_hours_follow_daylight_saving_time() -> None:
    agent = parse_agent(
        agent_raw(
            availability="online",
            time_zone="America/New_York",
            working_hours=weekdays("09:00", "17:00"),
        )
    )
    # 13:30 UTC is 08:30 in New York in winter (UTC-5) and 09:30 in summer (UTC-4).
    winter = datetime(2025, 1, 6, 13, 30, tzinfo=UTC)
    summer = datetime(2025, 7, 7, 13, 30, tzinfo=UTC)
    assert not is_available(agent, winter)
    assert is_available(agent, summer)


def test_a_shift_to_midnight_covers_the_last_minute_of_the_day() -> None:
    agent = parse_agent(
        agent_raw(
            availability="online", working_hours={"monday": [{"start": "20:00", "end": "24:00"}]}
        )
    )
    assert is_available(agent, MONDAY.replace(hour=23, minute=59, second=59))
    assert not is_available(agent, MONDAY + timedelta(days=1))  # Tuesday 00:00
    assert not is_available(agent, MONDAY.replace(hour=19, minute=59))


def test_a_night_shift_is_split_at_midnight() -> None:
    hours = WeeklyHours(
        (
            (Shift(time(22), END_OF_DAY),),
            (Shift(time(0), time(6)),),
            (),
            (),
            (),
            (),
            (),
        )
    )
    agent = Agent(
        "n",
        "Night",
        "n@example.com",
        capacity=1,
        availability=Availability.ONLINE,
        working_hours=hours,
    )
    assert is_available(agent, MONDAY.replace(hour=23))
    assert is_available(agent, MONDAY + timedelta(days=1, hours=5))
    assert not is_available(agent, MONDAY + timedelta(days=1, hours=6))


def test_out_of_office_makes_an_agent_unavailable_and_names_the_backup() -> None:
    start = MONDAY
    agent = Agent(
        "anna",
        "Anna",
        "anna@example.com",
        capacity=3,
        availability=Availability.ONLINE,
        out_of_office=(
            Absence(start, start + timedelta(days=7), "boris"),
            Absence(start + timedelta(days=14), start + timedelta(days=15)),
        ),
    )
    assert is_available(agent, start - timedelta(seconds=1))
    assert backup_for(agent, start - timedelta(seconds=1)) is None
    assert not is_available(agent, start)
    assert backup_for(agent, start) == "boris"
    assert backup_for(agent, start + timedelta(days=7) - timedelta(seconds=1)) == "boris"
    # The end is exclusive: the agent is back at that moment.
    assert is_available(agent, start + timedelta(days=7))
    assert backup_for(agent, start + timedelta(days=7)) is None
    # A period without a backup: unavailable, and nobody named.
    assert not is_available(agent, start + timedelta(days=14, hours=1))
    assert backup_for(agent, start + timedelta(days=14, hours=1)) is None


def test_a_naive_now_is_a_programming_error() -> None:
    agent = Agent("a", "A", "a@example.com", capacity=1, availability=Availability.ONLINE)
    with pytest.raises(ValueError, match="timezone-aware"):
        is_available(agent, datetime(2025, 1, 1))


def test_a_time_zone_other_than_utc_gives_the_same_answer_for_the_same_instant() -> None:
    agent = parse_agent(
        agent_raw(
            availability="online",
            time_zone="Europe/Moscow",
            working_hours=weekdays("09:00", "18:00"),
        )
    )
    utc = datetime(2025, 3, 3, 6, 30, tzinfo=UTC)  # 09:30 in Moscow
    assert is_available(agent, utc)
    assert is_available(agent, utc.astimezone(timezone(timedelta(hours=-7))))


@pytest.mark.parametrize(
    ("languages", "ticket", "expected"),
    [
        (frozenset(), "ru", True),
        (frozenset({"ru"}), "", True),
        (frozenset({"ru"}), "ru-RU", True),
        (frozenset({"en-gb"}), "en", True),
        (frozenset({"en"}), "ru", False),
    ],
)
def test_speaks(languages: frozenset[str], ticket: str, expected: bool) -> None:
    agent = Agent("a", "A", "a@example.com", languages=languages)
    assert speaks(agent, ticket) is expected
