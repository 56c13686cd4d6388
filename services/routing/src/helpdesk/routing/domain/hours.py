"""Weekly hours in local time: when an agent works, when a rule's business hours are."""

import re
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from helpdesk.core.errors import FieldViolation
from helpdesk.routing.domain.raw import Problems, at, check_mapping, require_utc

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# "24:00" closes a shift at midnight; a night shift is written as two shifts, one each side.
END_OF_DAY = time.max
MAX_SHIFTS_PER_DAY = 10
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")


@dataclass(frozen=True)
class Shift:
    """Local start and end of working time within one day; END_OF_DAY means midnight."""

    start: time
    end: time

    def covers(self, moment: time) -> bool:
        return self.start <= moment and (moment < self.end or self.end == END_OF_DAY)


@dataclass(frozen=True)
class WeeklyHours:
    """Shifts per weekday, Monday first (seven entries, empty on days off)."""

    days: tuple[tuple[Shift, ...], ...]

    def covers(self, now: datetime, time_zone: str) -> bool:
        """Whether `now` falls in a shift, read on the wall clock of `time_zone`."""
        local = require_utc(now).astimezone(ZoneInfo(time_zone))
        moment = local.time().replace(tzinfo=None)
        return any(shift.covers(moment) for shift in self.days[local.weekday()])


def format_clock(moment: time) -> str:
    return "24:00" if moment == END_OF_DAY else f"{moment.hour:02d}:{moment.minute:02d}"


def dump_hours(hours: WeeklyHours) -> dict[str, Any]:
    """The raw form `parse_hours` reads: only days with shifts."""
    return {
        day: [{"start": format_clock(s.start), "end": format_clock(s.end)} for s in shifts]
        for day, shifts in zip(WEEKDAYS, hours.days, strict=True)
        if shifts
    }


def _clock(value: Any, name: str, problems: Problems, *, end: bool) -> time | None:
    match = _CLOCK.fullmatch(value.strip()) if isinstance(value, str) else None
    if match:
        hour, minute = int(match.group(1)), int(match.group(2))
        if end and (hour, minute) == (24, 0):
            return END_OF_DAY
        if hour < 24 and minute < 60:
            return time(hour, minute)
    allowed = "00:00 to 24:00" if end else "00:00 to 23:59"
    problems.append(FieldViolation(name, f"must be a local time HH:MM, {allowed}; got {value!r}"))
    return None


def parse_hours(value: Any, path: str, problems: Problems) -> WeeklyHours | None:
    """Weekly hours from {"monday": [{"start": "09:00", "end": "18:00"}], ...}."""
    raw = check_mapping(value, path, problems)
    if raw is None:
        return None
    if not raw:
        problems.append(FieldViolation(path, "names no day; give at least one shift"))
        return None
    before = len(problems)
    days: list[tuple[Shift, ...]] = [() for _ in WEEKDAYS]
    for key, shifts in raw.items():
        day_path = at(path, str(key))
        day = str(key).strip().lower()
        if day not in WEEKDAYS:
            problems.append(FieldViolation(day_path, f"unknown day; one of {', '.join(WEEKDAYS)}"))
            continue
        days[WEEKDAYS.index(day)] = _day(shifts, day_path, problems)
    if not any(days) and len(problems) == before:
        problems.append(FieldViolation(path, "names no shift; give at least one"))
    return WeeklyHours(tuple(days))


def _day(value: Any, path: str, problems: Problems) -> tuple[Shift, ...]:
    if not isinstance(value, list | tuple):
        problems.append(FieldViolation(path, "must be a list of {start, end} shifts"))
        return ()
    if len(value) > MAX_SHIFTS_PER_DAY:
        problems.append(
            FieldViolation(path, f"at most {MAX_SHIFTS_PER_DAY} shifts; got {len(value)}")
        )
        return ()
    shifts: list[tuple[int, Shift]] = []
    for i, item in enumerate(value):
        shift_path = at(path, i)
        raw = check_mapping(item, shift_path, problems)
        if raw is None:
            continue
        bad_keys = [k for k in raw if k not in ("start", "end")]
        for key in bad_keys:
            problems.append(
                FieldViolation(at(shift_path, str(key)), "unknown field; known: end, start")
            )
        start = _clock(raw.get("start"), at(shift_path, "start"), problems, end=False)
        end = _clock(raw.get("end"), at(shift_path, "end"), problems, end=True)
        if start is None or end is None:
            continue
        if end <= start:
            problems.append(
                FieldViolation(
                    at(shift_path, "end"),
                    f"must be after start {format_clock(start)}; split a night shift at 24:00",
                )
            )
            continue
        shifts.append((i, Shift(start, end)))
    shifts.sort(key=lambda pair: pair[1].start)
    latest: Shift | None = None
    for i, shift in shifts:
        if latest is not None and shift.start < latest.end:
            problems.append(
                FieldViolation(
                    at(at(path, i), "start"),
                    f"overlaps the shift {format_clock(latest.start)}-{format_clock(latest.end)}",
                )
            )
        if latest is None or shift.end > latest.end:
            latest = shift
    return tuple(shift for _, shift in shifts)
