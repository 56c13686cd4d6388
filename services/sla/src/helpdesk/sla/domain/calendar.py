"""Business calendars: when the help desk works, and business-time arithmetic over them.

Business hours are wall-clock times of the calendar's zone. An opening runs from the first
instant the local clock shows its start to the first instant it shows its end. So:
- a 09:00-18:00 day is 9 hours on either side of a DST change;
- on the night of a change an opening counts the real time that passes: 01:00-04:00 is 2 hours
  when the clocks spring forward at 02:00 and 4 hours when they fall back at 03:00;
- a start or end inside the skipped hour is the instant the clocks jump (02:30 on a
  spring-forward night means the moment the clocks show 03:00); one inside the repeated hour
  is its first occurrence.
Business time is then plain real time inside openings, so arithmetic is exact (to the
microsecond) and `business_time_between` inverts `add_business_time`.

One assumption about the time zone database: no zone changes its UTC offset and changes it
back within 24 hours (tzdata's closest such pair is days apart).
"""

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from helpdesk.core.errors import FieldViolation, InvalidArgument
from helpdesk.sla.domain import payload

# 24:00: an opening that runs to the end of the day.
END_OF_DAY = time.max
ZERO = timedelta(0)
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)
WEEK = timedelta(days=7)
MAX_OPENINGS_PER_DAY = 12
MAX_HOLIDAYS = 1_000
CALENDAR_FIELDS = ("id", "name", "time_zone", "always_open", "hours", "holidays")
_CLOCK_TIME = re.compile(r"(\d{2}):(\d{2})(?::(\d{2}))?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# Keys zoneinfo resolves that are not zones of the IANA database (or depend on the machine).
_NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


class Weekday(StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"


# In `date.weekday()` order.
WEEKDAYS = tuple(Weekday)


@dataclass(frozen=True)
class Opening:
    """Business hours within one day, in local wall-clock time; END_OF_DAY stands for 24:00."""

    start: time
    end: time


@dataclass(frozen=True)
class BusinessCalendar:
    """When business time passes: weekly openings in a time zone, minus holidays; or 24/7."""

    id: str
    name: str
    time_zone: str
    # Weekday -> sorted, non-overlapping openings; a missing weekday is a day off.
    hours: Mapping[Weekday, tuple[Opening, ...]] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()
    always_open: bool = False
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)
    # Per `date.weekday()`: the openings as offsets from local midnight.
    _week: tuple[tuple[tuple[timedelta, timedelta], ...], ...] = field(
        init=False, repr=False, compare=False
    )
    _week_total: timedelta = field(init=False, repr=False, compare=False)
    _holiday_ordinals: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A copy, so that changing the caller's dict cannot change a frozen calendar.
        object.__setattr__(self, "hours", dict(self.hours))
        object.__setattr__(self, "_zone", ZoneInfo(self.time_zone))
        week: list[tuple[tuple[timedelta, timedelta], ...]] = []
        for weekday in WEEKDAYS:
            spans: list[tuple[timedelta, timedelta]] = []
            for opening in self.hours.get(weekday, ()):
                start, end = _since_midnight(opening.start), _since_midnight(opening.end)
                if opening.start == END_OF_DAY or start >= end or (spans and start < spans[-1][1]):
                    raise ValueError(f"{weekday}: openings must be sorted, non-empty, disjoint")
                spans.append((start, end))
            week.append(tuple(spans))
        object.__setattr__(self, "_week", tuple(week))
        total = sum((end - start for day in week for start, end in day), ZERO)
        object.__setattr__(self, "_week_total", total)
        object.__setattr__(
            self, "_holiday_ordinals", frozenset(d.toordinal() for d in self.holidays)
        )
        if self.always_open and (total or self.holidays):
            raise ValueError("an always-open calendar has no hours and no holidays")
        # Without any opening, adding business time would never end.
        if not self.always_open and not total:
            raise ValueError("a calendar needs business hours or always_open")

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    @property
    def weekly_hours(self) -> timedelta:
        """Business time in an ordinary week: no holiday, no clock change."""
        return self._week_total


# Tickets whose policy names no calendar count every hour of every day.
ALWAYS_OPEN = BusinessCalendar(id="", name="24/7", time_zone="UTC", always_open=True)


def _since_midnight(moment: time) -> timedelta:
    if moment == END_OF_DAY:
        return DAY
    return timedelta(
        hours=moment.hour,
        minutes=moment.minute,
        seconds=moment.second,
        microseconds=moment.microsecond,
    )


def _utc(instant: datetime, name: str) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware; got {instant!r}")
    return instant.astimezone(UTC)


def _first_instant(zone: ZoneInfo, local: datetime) -> datetime:
    """The first instant at which the zone's clock shows the naive `local` time or later."""
    instant = local.replace(tzinfo=zone).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == local:
        return instant  # fold 0: the first of two readings in a repeated hour
    # `local` lies in a gap; the answer is the instant the clocks jump over it, somewhere
    # between its readings with the offsets before and after the change.
    other = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    before = min(instant, other).replace(microsecond=0)
    steps = -(-(max(instant, other) - before) // SECOND)
    low, high = 0, steps  # `low` reads before `local`, `high` at or after it
    while high - low > 1:
        middle = (low + high) // 2
        if (before + middle * SECOND).astimezone(zone).replace(tzinfo=None) >= local:
            high = middle
        else:
            low = middle
    return before + high * SECOND


@lru_cache(maxsize=1024)
def _unsteady_days(time_zone: str, year: int) -> frozenset[int]:
    """Ordinals of the local dates of `year` (give or take two days) near a change of the
    zone's UTC offset."""
    zone = ZoneInfo(time_zone)
    days: set[int] = set()
    # Daily samples over the year, with room for offsets of up to 14 hours either way.
    instant = datetime(year - 1, 12, 30, tzinfo=UTC)
    end = datetime(year + 1, 1, 3, tzinfo=UTC)
    previous = instant.astimezone(zone)
    while instant < end:
        instant += DAY
        current = instant.astimezone(zone)
        if current.utcoffset() != previous.utcoffset():
            days.update(range(previous.toordinal() - 2, current.toordinal() + 3))
        previous = current
    return frozenset(days)


def _steady(calendar: BusinessCalendar, day: date) -> bool:
    """Whether the local day is 24 hours with one UTC offset, so openings map by addition."""
    return day.toordinal() not in _unsteady_days(calendar.time_zone, day.year)


def _plain_week(calendar: BusinessCalendar, first: date) -> bool:
    """Whether the 7 days from `first` hold exactly the weekly hours: no holiday, no change."""
    days = range(first.toordinal(), first.toordinal() + 7)
    last_year = date.fromordinal(days[-1]).year
    return (
        calendar._holiday_ordinals.isdisjoint(days)
        and _unsteady_days(calendar.time_zone, first.year).isdisjoint(days)
        and (
            last_year == first.year
            or _unsteady_days(calendar.time_zone, last_year).isdisjoint(days)
        )
    )


def _day(
    calendar: BusinessCalendar, day: date, midnight: datetime
) -> tuple[Iterator[tuple[datetime, datetime]], datetime]:
    """The business spans of a local day that starts at `midnight`, and the next midnight."""
    openings = calendar._week[day.weekday()]
    if _steady(calendar, day):
        following = midnight + DAY
        if day in calendar.holidays:
            return iter(()), following
        return ((midnight + start, midnight + end) for start, end in openings), following
    local = datetime.combine(day, time())
    following = _first_instant(calendar.zone, local + DAY)
    if day in calendar.holidays:
        return iter(()), following
    zone = calendar.zone
    spans = (
        (_first_instant(zone, local + start), _first_instant(zone, local + end))
        for start, end in openings
    )
    return spans, following


def _first_day(calendar: BusinessCalendar, instant: datetime) -> tuple[date, datetime]:
    """The local date of an instant and the instant its day began."""
    day = instant.astimezone(calendar.zone).date()
    return day, _first_instant(calendar.zone, datetime.combine(day, time()))


def add_business_time(calendar: BusinessCalendar, start: datetime, duration: timedelta) -> datetime:
    """The earliest instant by which `duration` of business time has passed since `start`."""
    start = _utc(start, "start")
    if duration < ZERO:
        raise ValueError(f"duration must not be negative; got {duration}")
    if calendar.always_open or not duration:
        return start + duration
    left, weekly = duration, calendar.weekly_hours
    day, midnight = _first_day(calendar, start)
    while True:
        # Take whole weeks at once while the end lies beyond them.
        if midnight >= start and left > weekly and _plain_week(calendar, day):
            left -= weekly
            day += WEEK
            midnight += WEEK
            continue
        spans, following = _day(calendar, day, midnight)
        for opens, closes in spans:
            opens = max(opens, start)
            if opens < closes:
                if left <= closes - opens:
                    return opens + left
                left -= closes - opens
        day += DAY
        midnight = following


def business_time_between(calendar: BusinessCalendar, a: datetime, b: datetime) -> timedelta:
    """Business time that passes from `a` to `b`; zero when `b` is not after `a`."""
    a, b = _utc(a, "a"), _utc(b, "b")
    if b <= a:
        return ZERO
    if calendar.always_open:
        return b - a
    total, weekly = ZERO, calendar.weekly_hours
    day, midnight = _first_day(calendar, a)
    while midnight < b:
        if midnight >= a and midnight + WEEK <= b and _plain_week(calendar, day):
            total += weekly
            day += WEEK
            midnight += WEEK
            continue
        spans, following = _day(calendar, day, midnight)
        for opens, closes in spans:
            opens, closes = max(opens, a), min(closes, b)
            if opens < closes:
                total += closes - opens
        day += DAY
        midnight = following
    return total


def add_calendar_days(calendar: BusinessCalendar, start: datetime, days: int) -> datetime:
    """The instant the calendar's local clock shows the same time `days` later (any day counts)."""
    start = _utc(start, "start")
    local = start.astimezone(calendar.zone).replace(tzinfo=None)
    return max(_first_instant(calendar.zone, local + days * DAY), start)


def _time_zone(value: Any, problems: list[FieldViolation]) -> str:
    where = "time_zone"
    if not isinstance(value, str) or not value:
        problems.append(FieldViolation(where, "is required, e.g. Europe/Moscow"))
        return ""
    try:
        known = value not in _NOT_ZONES and bool(ZoneInfo(value))
    except (ZoneInfoNotFoundError, ValueError, OSError):
        known = False
    if not known:
        problems.append(
            FieldViolation(where, f"must be an IANA time zone such as Europe/Moscow; got {value!r}")
        )
        return ""
    return value


def _clock_time(
    value: Any, where: str, problems: list[FieldViolation], *, end: bool
) -> time | None:
    latest = "23:59 (24:00 for the end of the day)" if end else "23:59"
    match = _CLOCK_TIME.fullmatch(value) if isinstance(value, str) else None
    if match:
        hour, minute, second = int(match[1]), int(match[2]), int(match[3] or 0)
        if end and (hour, minute, second) == (24, 0, 0):
            return END_OF_DAY
        if hour < 24 and minute < 60 and second < 60:
            return time(hour, minute, second)
    problems.append(
        FieldViolation(where, f"must be a time HH:MM from 00:00 to {latest}; got {value!r}")
    )
    return None


def _format_time(moment: time) -> str:
    if moment == END_OF_DAY:
        return "24:00"
    return moment.strftime("%H:%M:%S" if moment.second else "%H:%M")


def _day_hours(value: Any, where: str, problems: list[FieldViolation]) -> tuple[Opening, ...]:
    parsed: list[tuple[int, Opening]] = []
    for i, item in enumerate(payload.items(value, where, MAX_OPENINGS_PER_DAY, problems)):
        item_path = payload.path(where, i)
        if not isinstance(item, Mapping):
            problems.append(FieldViolation(item_path, "must be an object with start and end"))
            continue
        payload.unknown_fields(item, ("start", "end"), item_path, problems)
        start = _clock_time(item.get("start"), f"{item_path}.start", problems, end=False)
        end = _clock_time(item.get("end"), f"{item_path}.end", problems, end=True)
        if start is None or end is None:
            continue
        if start >= end:
            problems.append(FieldViolation(f"{item_path}.end", "must be after start"))
            continue
        parsed.append((i, Opening(start, end)))
    parsed.sort(key=lambda entry: entry[1].start)
    kept: list[Opening] = []
    for i, opening in parsed:
        if kept and opening.start < kept[-1].end:
            span = f"{_format_time(kept[-1].start)}-{_format_time(kept[-1].end)}"
            problems.append(FieldViolation(payload.path(where, i), f"overlaps {span}"))
            continue
        kept.append(opening)
    return tuple(kept)


def _hours(value: Any, problems: list[FieldViolation]) -> dict[Weekday, tuple[Opening, ...]]:
    hours: dict[Weekday, tuple[Opening, ...]] = {}
    week = payload.mapping(value, "hours", problems)
    for key, day in week.items():
        where = payload.path("hours", str(key))
        if key not in WEEKDAYS:
            problems.append(FieldViolation(where, f"not a weekday; use {', '.join(WEEKDAYS)}"))
            continue
        openings = _day_hours(day, where, problems)
        if openings:
            hours[Weekday(key)] = openings
    return hours


def _holidays(value: Any, problems: list[FieldViolation]) -> frozenset[date]:
    days: set[date] = set()
    for i, item in enumerate(payload.items(value, "holidays", MAX_HOLIDAYS, problems)):
        try:
            if not isinstance(item, str) or not _DATE.fullmatch(item):
                raise ValueError(item)
            days.add(date.fromisoformat(item))
        except ValueError:
            problems.append(
                FieldViolation(
                    payload.path("holidays", i), f"must be a date YYYY-MM-DD; got {item!r}"
                )
            )
    return frozenset(days)


def parse_calendar(raw: Mapping[str, Any]) -> BusinessCalendar:
    """An admin's calendar payload, checked; raises InvalidArgument naming each bad field."""
    problems: list[FieldViolation] = []
    payload.unknown_fields(raw, CALENDAR_FIELDS, "", problems)
    calendar_id = payload.identifier(raw.get("id"), "id", problems, required=True)
    name = payload.text(raw.get("name"), "name", problems)
    always_open = payload.boolean(raw.get("always_open"), "always_open", problems, default=False)
    time_zone = raw.get("time_zone")
    if always_open and time_zone is None:
        time_zone = "UTC"  # only auto-close reads the zone of a 24/7 calendar
    zone = _time_zone(time_zone, problems)
    hours = _hours(raw.get("hours", {}), problems)
    holidays = _holidays(raw.get("holidays", []), problems)
    bad_hours = any(p.field.startswith("hours") for p in problems)
    if always_open:
        if raw.get("hours"):
            problems.append(FieldViolation("hours", "must be empty when always_open is true"))
        if raw.get("holidays"):
            problems.append(FieldViolation("holidays", "must be empty when always_open is true"))
    elif not hours and not bad_hours:
        problems.append(
            FieldViolation(
                "hours", "must give business hours on at least one day, or set always_open"
            )
        )
    if problems:
        raise InvalidArgument(problems)
    return BusinessCalendar(
        id=calendar_id,
        name=name,
        time_zone=zone,
        hours=hours,
        holidays=holidays,
        always_open=always_open,
    )


def dump_calendar(calendar: BusinessCalendar) -> dict[str, Any]:
    """The calendar as a payload that `parse_calendar` reads back to an equal calendar."""
    return {
        "id": calendar.id,
        "name": calendar.name,
        "time_zone": calendar.time_zone,
        "always_open": calendar.always_open,
        "hours": {
            str(weekday): [
                {"start": _format_time(o.start), "end": _format_time(o.end)}
                for o in calendar.hours[weekday]
            ]
            for weekday in WEEKDAYS
            if calendar.hours.get(weekday)
        },
        "holidays": [day.isoformat() for day in sorted(calendar.holidays)],
    }
