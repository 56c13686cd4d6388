"""Business calendars: payload checks, business-time arithmetic across DST changes and
holidays, and its laws. Instants and durations are whole seconds throughout."""

import time as stopwatch
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpdesk.core.errors import InvalidArgument
from helpdesk.sla.domain.calendar import (
    ALWAYS_OPEN,
    END_OF_DAY,
    BusinessCalendar,
    Opening,
    Weekday,
    add_business_time,
    add_calendar_days,
    business_time_between,
    dump_calendar,
    parse_calendar,
)

WORKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
H = timedelta(hours=1)


def office(time_zone: str, holidays: list[str] | None = None) -> BusinessCalendar:
    """09:00-18:00 Monday to Friday."""
    return parse_calendar(
        {
            "id": "office",
            "name": "Office",
            "time_zone": time_zone,
            "hours": {day: [{"start": "09:00", "end": "18:00"}] for day in WORKDAYS},
            "holidays": holidays or [],
        }
    )


def sundays(time_zone: str, start: str, end: str) -> BusinessCalendar:
    """One opening on Sundays only: the nights clocks change on in Europe and America."""
    return parse_calendar(
        {
            "id": "sundays",
            "name": "Sundays",
            "time_zone": time_zone,
            "hours": {"sunday": [{"start": start, "end": end}]},
        }
    )


def local(time_zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(time_zone))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def valid(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": "moscow-office",
        "name": "Moscow office",
        "time_zone": "Europe/Moscow",
        "hours": {
            "monday": [{"start": "09:00", "end": "13:00"}, {"start": "14:00", "end": "18:00"}]
        },
        "holidays": ["2027-01-01"],
    }
    raw.update(changes)
    return raw


def violations(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        parse_calendar(raw)
    return {v.field: v.description for v in caught.value.violations}


# --- payload checks -----------------------------------------------------------------------


def test_a_valid_payload_reads_into_a_calendar() -> None:
    calendar = parse_calendar(
        valid(
            hours={
                "monday": [{"start": "14:00", "end": "24:00"}, {"start": "09:00", "end": "13:00"}],
                "saturday": [{"start": "10:00:30", "end": "12:00"}],
            }
        )
    )
    assert calendar.time_zone == "Europe/Moscow"
    assert calendar.hours[Weekday.MONDAY] == (
        Opening(time(9), time(13)),
        Opening(time(14), END_OF_DAY),
    )
    assert calendar.hours[Weekday.SATURDAY] == (Opening(time(10, 0, 30), time(12)),)
    assert calendar.holidays == frozenset({date(2027, 1, 1)})
    assert calendar.weekly_hours == timedelta(hours=14, minutes=119, seconds=30)


def test_a_dumped_calendar_reads_back_equal() -> None:
    calendar = parse_calendar(
        valid(hours={"friday": [{"start": "00:00", "end": "24:00"}], "monday": []})
    )
    assert parse_calendar(dump_calendar(calendar)) == calendar
    assert dump_calendar(calendar)["hours"] == {"friday": [{"start": "00:00", "end": "24:00"}]}


def test_an_always_open_calendar_needs_no_zone_hours_or_holidays() -> None:
    calendar = parse_calendar({"id": "any", "name": "24/7", "always_open": True})
    assert calendar.always_open
    assert calendar.time_zone == "UTC"
    assert parse_calendar(dump_calendar(calendar)) == calendar


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"id": None}, "id"),
        ({"id": "Moscow Office"}, "id"),
        ({"name": " "}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"time_zone": None}, "time_zone"),
        ({"time_zone": "Mars/Olympus_Mons"}, "time_zone"),
        ({"time_zone": "Europe"}, "time_zone"),
        ({"time_zone": "../../etc/passwd"}, "time_zone"),
        ({"time_zone": "localtime"}, "time_zone"),
        ({"time_zone": 3}, "time_zone"),
        ({"always_open": "yes"}, "always_open"),
        ({"timezone": "UTC"}, "timezone"),
        ({"hours": []}, "hours"),
        ({"hours": {}}, "hours"),
        ({"hours": {"funday": [{"start": "09:00", "end": "18:00"}]}}, "hours.funday"),
        ({"hours": {"monday": {"start": "09:00"}}}, "hours.monday"),
        ({"hours": {"monday": ["09:00-18:00"]}}, "hours.monday[0]"),
        (
            {
                "hours": {
                    "monday": [{"start": "09:00", "end": "13:00"}, {"start": "9am", "end": "18:00"}]
                }
            },
            "hours.monday[1].start",
        ),
        ({"hours": {"monday": [{"start": "24:00", "end": "24:00"}]}}, "hours.monday[0].start"),
        ({"hours": {"monday": [{"start": "09:00", "end": "24:30"}]}}, "hours.monday[0].end"),
        ({"hours": {"monday": [{"start": "09:00", "end": "09:60"}]}}, "hours.monday[0].end"),
        ({"hours": {"monday": [{"start": "09:00"}]}}, "hours.monday[0].end"),
        ({"hours": {"monday": [{"start": "18:00", "end": "09:00"}]}}, "hours.monday[0].end"),
        ({"hours": {"monday": [{"start": "09:00", "end": "09:00"}]}}, "hours.monday[0].end"),
        (
            {"hours": {"monday": [{"start": "09:00", "end": "18:00", "lunch": "13:00"}]}},
            "hours.monday[0].lunch",
        ),
        (
            {
                "hours": {
                    "tuesday": [
                        {"start": "12:00", "end": "18:00"},
                        {"start": "09:00", "end": "12:30"},
                    ]
                }
            },
            "hours.tuesday[0]",
        ),
        ({"hours": {"monday": [{"start": "09:00", "end": "18:00"}] * 13}}, "hours.monday"),
        ({"holidays": "2027-01-01"}, "holidays"),
        ({"holidays": ["2027-01-01", "2027-01-02", "2027-01-07", "2027-02-30"]}, "holidays[3]"),
        ({"holidays": ["01.05.2027"]}, "holidays[0]"),
        ({"holidays": ["20270501"]}, "holidays[0]"),
        ({"holidays": [20270501]}, "holidays[0]"),
        ({"holidays": ["2027-01-01"] * 1001}, "holidays"),
        ({"always_open": True}, "hours"),
    ],
)
def test_each_bad_field_is_named(changes: dict[str, Any], field: str) -> None:
    assert field in violations(valid(**changes))


def test_overlapping_openings_name_the_later_one() -> None:
    found = violations(
        valid(
            hours={
                "monday": [
                    {"start": "09:00", "end": "13:00"},
                    {"start": "12:00", "end": "18:00"},
                ]
            }
        )
    )
    assert found == {"hours.monday[1]": "overlaps 09:00-13:00"}


def test_openings_that_touch_do_not_overlap() -> None:
    calendar = parse_calendar(
        valid(
            hours={
                "monday": [{"start": "09:00", "end": "13:00"}, {"start": "13:00", "end": "18:00"}]
            }
        )
    )
    assert calendar.weekly_hours == 9 * H


def test_holidays_on_an_always_open_calendar_are_refused() -> None:
    assert "holidays" in violations(
        {"id": "any", "name": "24/7", "always_open": True, "holidays": ["2027-01-01"]}
    )


def test_every_problem_is_reported_at_once() -> None:
    found = violations(
        {
            "id": "",
            "name": "",
            "time_zone": "Nowhere",
            "hours": {"monday": [{"start": "x", "end": "18:00"}]},
            "holidays": ["tomorrow"],
        }
    )
    assert set(found) == {"id", "name", "time_zone", "hours.monday[0].start", "holidays[0]"}


def test_a_calendar_without_any_business_hours_cannot_be_built() -> None:
    # add_business_time would look for the end forever.
    with pytest.raises(ValueError, match="business hours"):
        BusinessCalendar(id="x", name="x", time_zone="UTC")
    with pytest.raises(ValueError, match="disjoint"):
        BusinessCalendar(
            id="x",
            name="x",
            time_zone="UTC",
            hours={Weekday.MONDAY: (Opening(time(10), time(12)), Opening(time(11), time(13)))},
        )


# --- arithmetic: an office in Moscow (UTC+3 all year) -----------------------------------------

MSK = "Europe/Moscow"


def test_moscow_office_within_a_day() -> None:
    calendar = office(MSK)
    start = local(MSK, 2026, 6, 1, 10)  # a Monday
    assert add_business_time(calendar, start, 3 * H) == local(MSK, 2026, 6, 1, 13)
    assert business_time_between(calendar, start, local(MSK, 2026, 6, 1, 13)) == 3 * H


def test_moscow_office_over_the_weekend() -> None:
    calendar = office(MSK)
    friday = local(MSK, 2026, 6, 5, 17)
    assert add_business_time(calendar, friday, 2 * H) == local(MSK, 2026, 6, 8, 10)
    assert add_business_time(calendar, friday, 2 * H) == utc(2026, 6, 8, 7)
    assert business_time_between(calendar, friday, local(MSK, 2026, 6, 8, 10)) == 2 * H


def test_moscow_office_from_outside_hours_starts_at_opening() -> None:
    calendar = office(MSK)
    saturday = local(MSK, 2026, 6, 6, 12)
    assert add_business_time(calendar, saturday, 30 * timedelta(minutes=1)) == local(
        MSK, 2026, 6, 8, 9, 30
    )
    evening = local(MSK, 2026, 6, 8, 20)
    assert add_business_time(calendar, evening, H) == local(MSK, 2026, 6, 9, 10)


def test_the_end_of_a_day_is_reached_at_closing_not_next_morning() -> None:
    calendar = office(MSK)
    assert add_business_time(calendar, local(MSK, 2026, 6, 1, 9), 9 * H) == local(
        MSK, 2026, 6, 1, 18
    )


def test_adding_nothing_stays_put_even_outside_hours() -> None:
    calendar = office(MSK)
    sunday = local(MSK, 2026, 6, 7, 3)
    assert add_business_time(calendar, sunday, timedelta(0)) == sunday


def test_a_full_week_is_45_hours() -> None:
    calendar = office(MSK)
    assert calendar.weekly_hours == 45 * H
    start = local(MSK, 2026, 6, 3, 11)
    assert business_time_between(calendar, start, start + timedelta(days=7)) == 45 * H
    assert business_time_between(calendar, start, start + timedelta(days=70)) == 450 * H


def test_between_is_zero_backwards() -> None:
    calendar = office(MSK)
    a = local(MSK, 2026, 6, 1, 10)
    assert business_time_between(calendar, a, a - H) == timedelta(0)
    assert business_time_between(calendar, a, a) == timedelta(0)


def test_holidays_are_skipped() -> None:
    # Russian New Year holidays 2027: Friday 1 January to Friday 8 January.
    new_year = [f"2027-01-0{day}" for day in range(1, 9)]
    calendar = office(MSK, new_year)
    eve = local(MSK, 2026, 12, 31, 17)
    assert add_business_time(calendar, eve, 2 * H) == local(MSK, 2027, 1, 11, 10)
    assert business_time_between(calendar, eve, local(MSK, 2027, 1, 11, 10)) == 2 * H
    # Without the holidays the second hour lands on the first of January.
    assert add_business_time(office(MSK), eve, 2 * H) == local(MSK, 2027, 1, 1, 10)


def test_a_holiday_inside_an_otherwise_plain_week_is_not_counted() -> None:
    calendar = office(MSK, ["2026-06-12"])  # Russia Day, a Friday
    start = local(MSK, 2026, 6, 1, 0)
    assert business_time_between(calendar, start, start + timedelta(days=14)) == 81 * H
    # Thursday's closing ends the second week; the next hour is Monday's first.
    assert add_business_time(calendar, start, 81 * H) == local(MSK, 2026, 6, 11, 18)
    assert add_business_time(calendar, start, 82 * H) == local(MSK, 2026, 6, 15, 10)


def test_a_30_day_target_takes_well_under_a_millisecond() -> None:
    calendar = office("Europe/Berlin", ["2026-12-25", "2026-12-26"])
    start = local("Europe/Berlin", 2026, 9, 14, 10)
    target = timedelta(days=30)
    due = add_business_time(calendar, start, target)  # also loads the zone's clock changes
    assert business_time_between(calendar, start, due) == target
    runs = []
    for _ in range(30):
        began = stopwatch.perf_counter()
        add_business_time(calendar, start, target)
        runs.append(stopwatch.perf_counter() - began)
    assert min(runs) < 0.001


# --- arithmetic across DST changes -----------------------------------------------------------

BERLIN = "Europe/Berlin"  # 2026: spring forward 29 March 02:00, fall back 25 October 03:00
NEW_YORK = "America/New_York"  # 2026: spring forward 8 March 02:00, fall back 1 November 02:00


@pytest.mark.parametrize(
    ("zone", "friday", "monday_utc"),
    [
        (BERLIN, (2026, 3, 27), utc(2026, 3, 30, 8)),  # Monday 10:00 CEST
        (BERLIN, (2026, 10, 23), utc(2026, 10, 26, 9)),  # Monday 10:00 CET
        (NEW_YORK, (2026, 3, 6), utc(2026, 3, 9, 14)),  # Monday 10:00 EDT
        (NEW_YORK, (2026, 10, 30), utc(2026, 11, 2, 15)),  # Monday 10:00 EST
    ],
)
def test_office_hours_keep_their_wall_clock_across_a_change_weekend(
    zone: str, friday: tuple[int, int, int], monday_utc: datetime
) -> None:
    calendar = office(zone)
    start = local(zone, *friday, 17)
    assert add_business_time(calendar, start, 2 * H) == monday_utc
    assert business_time_between(calendar, start, monday_utc) == 2 * H
    # A day is 9 hours on either side of the change.
    for day in (start.date(), monday_utc.astimezone(ZoneInfo(zone)).date()):
        opens = local(zone, day.year, day.month, day.day, 9)
        assert business_time_between(calendar, opens, opens + timedelta(hours=12)) == 9 * H
    week_before = local(zone, *friday, 9) - timedelta(days=4)
    assert business_time_between(calendar, week_before, monday_utc) == 46 * H


@pytest.mark.parametrize(
    ("zone", "sunday", "hours"),
    [
        (BERLIN, (2026, 3, 29), 23),
        (BERLIN, (2026, 10, 25), 25),
        (NEW_YORK, (2026, 3, 8), 23),
        (NEW_YORK, (2026, 11, 1), 25),
    ],
)
def test_a_whole_day_opening_counts_the_real_length_of_the_change_day(
    zone: str, sunday: tuple[int, int, int], hours: int
) -> None:
    calendar = sundays(zone, "00:00", "24:00")
    midnight = local(zone, *sunday)
    assert (
        business_time_between(calendar, midnight - H, midnight + 2 * timedelta(days=1)) == hours * H
    )
    assert add_business_time(calendar, midnight, hours * H) == local(zone, *sunday) + timedelta(
        days=1
    )  # wall-clock arithmetic: the next local midnight


def test_a_night_opening_counts_real_time_when_clocks_spring_forward() -> None:
    calendar = sundays(BERLIN, "01:00", "04:00")
    sunday = local(BERLIN, 2026, 3, 29)
    assert business_time_between(calendar, sunday, sunday + timedelta(days=1)) == 2 * H
    # 01:00 CET is 00:00 UTC; the second business hour ends at 04:00 CEST = 02:00 UTC.
    assert add_business_time(calendar, sunday, 2 * H) == utc(2026, 3, 29, 2)


def test_a_night_opening_counts_real_time_when_clocks_fall_back() -> None:
    calendar = sundays(BERLIN, "01:00", "04:00")
    sunday = local(BERLIN, 2026, 10, 25)
    assert business_time_between(calendar, sunday, sunday + timedelta(days=1)) == 4 * H
    assert add_business_time(calendar, sunday, 4 * H) == utc(2026, 10, 25, 3)


def test_a_start_in_the_skipped_hour_is_the_moment_the_clocks_jump() -> None:
    calendar = sundays(BERLIN, "02:30", "05:00")
    sunday = local(BERLIN, 2026, 3, 29)
    # 02:30 never shows; business starts when the clocks jump to 03:00 CEST (01:00 UTC).
    assert add_business_time(calendar, sunday, timedelta(minutes=1)) == utc(2026, 3, 29, 1, 1)
    assert business_time_between(calendar, sunday, sunday + timedelta(days=1)) == 2 * H


def test_an_end_in_the_skipped_hour_is_the_moment_the_clocks_jump() -> None:
    calendar = sundays(NEW_YORK, "01:00", "02:30")
    sunday = local(NEW_YORK, 2026, 3, 8)
    assert business_time_between(calendar, sunday, sunday + timedelta(days=1)) == H
    assert add_business_time(calendar, sunday, H) == utc(2026, 3, 8, 7)  # 03:00 EDT


def test_a_start_in_the_repeated_hour_is_its_first_occurrence() -> None:
    calendar = sundays(BERLIN, "02:30", "03:30")
    sunday = local(BERLIN, 2026, 10, 25)
    # From 02:30 CEST (00:30 UTC) to the first 03:30, which is CET (02:30 UTC).
    assert add_business_time(calendar, sunday, timedelta(minutes=1)) == utc(2026, 10, 25, 0, 31)
    assert business_time_between(calendar, sunday, sunday + timedelta(days=1)) == 2 * H


def test_an_end_in_the_repeated_hour_is_its_first_occurrence() -> None:
    calendar = sundays(NEW_YORK, "00:00", "01:30")
    sunday = local(NEW_YORK, 2026, 11, 1)
    assert business_time_between(calendar, sunday, sunday + timedelta(days=1)) == 90 * timedelta(
        minutes=1
    )
    # 01:30 EDT, before the clocks go back to 01:00 EST.
    assert add_business_time(calendar, sunday, 90 * timedelta(minutes=1)) == utc(2026, 11, 1, 5, 30)


def test_calendar_days_keep_the_local_time_across_a_change() -> None:
    calendar = office(BERLIN)
    pending = local(BERLIN, 2026, 3, 26, 10)  # CET
    assert add_calendar_days(calendar, pending, 5) == local(BERLIN, 2026, 3, 31, 10)  # CEST
    assert add_calendar_days(calendar, pending, 5) - pending == timedelta(days=5) - H
    assert add_calendar_days(ALWAYS_OPEN, pending, 5) == pending.astimezone(UTC) + timedelta(days=5)


# --- 24/7 ------------------------------------------------------------------------------------


def test_always_open_counts_every_second() -> None:
    start = local(BERLIN, 2026, 3, 28, 23, 30)  # across the spring-forward night
    assert add_business_time(ALWAYS_OPEN, start, 3 * H) == utc(2026, 3, 29, 1, 30)
    assert business_time_between(ALWAYS_OPEN, start, utc(2026, 5, 7, 22, 30)) == timedelta(days=40)


def test_naive_instants_and_negative_durations_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        add_business_time(office(MSK), datetime(2026, 6, 1, 10), H)
    with pytest.raises(ValueError, match="timezone-aware"):
        business_time_between(office(MSK), utc(2026, 6, 1), datetime(2026, 6, 2))
    with pytest.raises(ValueError, match="negative"):
        add_business_time(office(MSK), utc(2026, 6, 1), -H)


# --- laws, on random calendars ---------------------------------------------------------------

ZONES = (
    "UTC",
    BERLIN,
    NEW_YORK,
    MSK,
    "Asia/Kolkata",  # +05:30
    "Pacific/Chatham",  # +12:45, DST
    "Australia/Lord_Howe",  # a 30-minute DST change
    "America/Santiago",  # changes at midnight
    "America/Havana",  # changes at midnight
    "Asia/Gaza",  # changes and changes back within a week around Ramadan
    "Africa/Casablanca",
)
FIRST = datetime(2025, 1, 1, tzinfo=UTC)
LAST = datetime(2028, 1, 1, tzinfo=UTC)


# Minutes of a day where openings begin or end; paired in order into disjoint openings.
day_bounds = st.lists(st.integers(0, 24 * 60), unique=True, max_size=6).map(sorted)


@st.composite
def calendars(draw: st.DrawFn) -> BusinessCalendar:
    hours: dict[Weekday, tuple[Opening, ...]] = {}
    for weekday in Weekday:
        bounds = draw(day_bounds)
        openings = tuple(
            Opening(_clock(bounds[i]), _clock(bounds[i + 1])) for i in range(0, len(bounds) - 1, 2)
        )
        if openings:
            hours[weekday] = openings
    if not hours:
        hours[Weekday.WEDNESDAY] = (Opening(time(9), time(17)),)
    holidays = draw(st.frozensets(st.dates(date(2025, 1, 1), date(2027, 12, 31)), max_size=8))
    return BusinessCalendar(
        id="random",
        name="random",
        time_zone=draw(st.sampled_from(ZONES)),
        hours=hours,
        holidays=holidays,
    )


def _clock(minutes: int) -> time:
    return END_OF_DAY if minutes == 24 * 60 else time(minutes // 60, minutes % 60)


instants = st.integers(int(FIRST.timestamp()), int(LAST.timestamp())).map(
    lambda seconds: datetime.fromtimestamp(seconds, UTC)
)


def durations(calendar: BusinessCalendar, weeks: int = 6) -> st.SearchStrategy[timedelta]:
    """Up to some weeks of the calendar's business time, in whole seconds."""
    most = int(calendar.weekly_hours.total_seconds()) * weeks
    return st.integers(0, most).map(lambda seconds: timedelta(seconds=seconds))


@settings(deadline=None, max_examples=100)
@given(st.data(), calendars(), instants)
def test_between_undoes_add(
    data: st.DataObject, calendar: BusinessCalendar, start: datetime
) -> None:
    duration = data.draw(durations(calendar))
    end = add_business_time(calendar, start, duration)
    assert business_time_between(calendar, start, end) == duration
    # ... and `end` is the earliest such instant.
    if duration:
        assert business_time_between(calendar, start, end - timedelta(seconds=1)) < duration


@settings(deadline=None, max_examples=80)
@given(st.data(), calendars(), instants)
def test_add_is_additive(data: st.DataObject, calendar: BusinessCalendar, start: datetime) -> None:
    first = data.draw(durations(calendar, weeks=3))
    second = data.draw(durations(calendar, weeks=3))
    assert add_business_time(calendar, add_business_time(calendar, start, first), second) == (
        add_business_time(calendar, start, first + second)
    )


@settings(deadline=None, max_examples=80)
@given(st.data(), calendars(), instants, instants)
def test_add_and_between_are_monotonic(
    data: st.DataObject, calendar: BusinessCalendar, one: datetime, other: datetime
) -> None:
    early, late = sorted((one, other))
    short, long = sorted((data.draw(durations(calendar, 3)), data.draw(durations(calendar, 3))))
    assert add_business_time(calendar, early, short) <= add_business_time(calendar, early, long)
    assert add_business_time(calendar, early, short) <= add_business_time(calendar, late, short)
    middle = early + (late - early) / 3
    assert business_time_between(calendar, early, middle) <= business_time_between(
        calendar, early, late
    )
    # Business time is part of real time, and splits at any instant.
    assert business_time_between(calendar, early, late) <= late - early
    assert business_time_between(calendar, early, middle) + business_time_between(
        calendar, middle, late
    ) == business_time_between(calendar, early, late)


def _reference_between(calendar: BusinessCalendar, a: datetime, b: datetime) -> timedelta:
    """Business time by brute force, minute by minute, straight from the documented rule."""
    zone = ZoneInfo(calendar.time_zone)
    start, end = a - timedelta(days=2), b + timedelta(days=2)
    minutes = [
        start + n * timedelta(minutes=1) for n in range(int((end - start) / timedelta(minutes=1)))
    ]
    readings = [m.astimezone(zone).replace(tzinfo=None) for m in minutes]

    def first(wall: datetime) -> datetime:
        return next(m for m, r in zip(minutes, readings, strict=True) if r >= wall)

    total = timedelta(0)
    day = (a - timedelta(days=1)).astimezone(zone).date()
    while day <= (b + timedelta(days=1)).astimezone(zone).date():
        if day not in calendar.holidays:
            for opening in calendar.hours.get(WEEKDAY_OF[day.weekday()], ()):
                midnight = datetime.combine(day, time())
                opens = first(midnight + _offset(opening.start))
                closes = first(midnight + _offset(opening.end))
                overlap = min(closes, b) - max(opens, a)
                total += max(overlap, timedelta(0))
        day += timedelta(days=1)
    return total


WEEKDAY_OF = tuple(Weekday)


def _offset(moment: time) -> timedelta:
    if moment == END_OF_DAY:
        return timedelta(days=1)
    return timedelta(hours=moment.hour, minutes=moment.minute)


# Days of clock changes in 2026, where the arithmetic leaves its fast paths.
CHANGE_DAYS = {
    BERLIN: (date(2026, 3, 29), date(2026, 10, 25)),
    NEW_YORK: (date(2026, 3, 8), date(2026, 11, 1)),
    "Australia/Lord_Howe": (date(2026, 4, 5), date(2026, 10, 4)),
    "America/Santiago": (date(2026, 4, 5), date(2026, 9, 6)),
    "Asia/Gaza": (date(2026, 3, 28), date(2026, 10, 24)),
}


@settings(deadline=None, max_examples=15)
@given(
    calendars(),
    st.sampled_from(sorted(CHANGE_DAYS)),
    st.integers(0, 1),
    st.integers(-3 * 24 * 60, 2 * 24 * 60),
    st.integers(0, 2 * 24 * 60),
)
def test_arithmetic_matches_a_brute_force_count_around_clock_changes(
    calendar: BusinessCalendar, zone: str, which: int, shift: int, length: int
) -> None:
    calendar = BusinessCalendar(
        id=calendar.id, name=calendar.name, time_zone=zone, hours=calendar.hours
    )
    day = CHANGE_DAYS[zone][which]
    a = datetime.combine(day, time(), UTC) + timedelta(minutes=shift)
    b = a + timedelta(minutes=length)
    assert business_time_between(calendar, a, b) == _reference_between(calendar, a, b)
