"""Reading admin payloads (decoded JSON objects): the shape checks every service's parsers
share. Each appends a FieldViolation naming the field and returns a harmless stand-in, so a
parser can report every bad field at once; the checks of values stay in each domain.
"""

from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

from helpdesk.core.errors import FieldViolation

Problems = list[FieldViolation]


def path(parent: str, name: str | int) -> str:
    """The path of a member: `hours.monday`, `event_types[1]`, `id` at the top."""
    if isinstance(name, int):
        return f"{parent}[{name}]"
    return f"{parent}.{name}" if parent else name


def mapping(value: Any, where: str, problems: Problems) -> Mapping[str, Any]:
    """The value as an object, or an empty one with a violation."""
    if isinstance(value, Mapping):
        return value
    problems.append(FieldViolation(where or "(root)", "must be an object"))
    return {}


def unknown_fields(
    raw: Mapping[str, Any], known: Collection[str], parent: str, problems: Problems
) -> None:
    """Flags members nobody reads, so a typo never silently turns into a default."""
    for key in raw:
        if key not in known:
            problems.append(
                FieldViolation(
                    path(parent, str(key)), f"unknown field; expected one of {', '.join(known)}"
                )
            )


def format_instant(moment: datetime) -> str:
    """An instant as stored in a payload: ISO 8601 in UTC with a `Z`."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def require_utc(now: datetime) -> datetime:
    """`now` in UTC; a naive datetime is a programming error, not a request to guess."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime; got {now!r}")
    return now.astimezone(UTC)
