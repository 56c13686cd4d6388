"""Readers of raw admin input (decoded JSON): each checks one value and, when it is bad,
records a violation under the value's field path instead of raising, so that one call
reports every bad field at once."""

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from helpdesk.core.errors import FieldViolation
from helpdesk.core.payload import format_instant as format_instant
from helpdesk.core.payload import require_utc as require_utc

Problems = list[FieldViolation]
E = TypeVar("E", bound=StrEnum)

CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_TIME_ZONE = 64


def at(path: str, key: str | int) -> str:
    """The field path of a key or list index below `path`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def check_mapping(value: Any, path: str, problems: Problems) -> Mapping[str, Any] | None:
    """The value as a mapping, or None with a violation."""
    if isinstance(value, Mapping):
        return value
    problems.append(FieldViolation(path or "(root)", "must be an object"))
    return None


def check_keys(
    raw: Mapping[str, Any], allowed: Iterable[str], path: str, problems: Problems
) -> None:
    """Flags keys nobody reads: a misspelt key would otherwise be silently ignored."""
    known = set(allowed)
    for key in raw:
        if key not in known:
            problems.append(
                FieldViolation(
                    at(path, str(key)), f"unknown field; known: {', '.join(sorted(known))}"
                )
            )


def read_text(
    raw: Mapping[str, Any],
    key: str,
    path: str,
    problems: Problems,
    *,
    limit: int,
    required: bool = False,
    default: str = "",
) -> str:
    """Trimmed text of at most `limit` characters without control characters."""
    name = at(path, key)
    value = raw.get(key)
    if value is None:
        if required:
            problems.append(FieldViolation(name, "is required"))
        return default
    return check_text(value, name, problems, limit=limit, required=required)


def check_text(
    value: Any, name: str, problems: Problems, *, limit: int, required: bool = False
) -> str:
    """`value` as trimmed text, or "" with a violation."""
    if not isinstance(value, str):
        problems.append(FieldViolation(name, "must be a string"))
        return ""
    if CONTROL_CHARACTERS.search(value):
        problems.append(FieldViolation(name, "must not contain control characters"))
        return ""
    text = value.strip()
    if required and not text:
        problems.append(FieldViolation(name, "is required"))
    elif len(text) > limit:
        problems.append(
            FieldViolation(name, f"must be at most {limit} characters; got {len(text)}")
        )
        return ""
    return text


def check_token(
    value: Any,
    name: str,
    problems: Problems,
    *,
    pattern: re.Pattern[str],
    rule: str,
    lower: bool = True,
) -> str:
    """`value` (lowercased) when it matches `pattern` (described by `rule`), else "" flagged."""
    if not isinstance(value, str):
        problems.append(FieldViolation(name, "must be a string"))
        return ""
    token = value.strip().lower() if lower else value.strip()
    if not pattern.fullmatch(token):
        problems.append(FieldViolation(name, f"{rule}; got {value!r}"))
        return ""
    return token


def read_bool(
    raw: Mapping[str, Any], key: str, path: str, problems: Problems, *, default: bool
) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        problems.append(FieldViolation(at(path, key), f"must be true or false; got {value!r}"))
        return default
    return value


def read_int(
    raw: Mapping[str, Any],
    key: str,
    path: str,
    problems: Problems,
    *,
    minimum: int,
    maximum: int,
    default: int | None = None,
) -> int:
    """An integer within bounds; required when there is no default."""
    name = at(path, key)
    value = raw.get(key)
    if value is None:
        if default is None:
            problems.append(FieldViolation(name, "is required"))
            return minimum
        return default
    # bool is an int in Python, never in a request
    if not isinstance(value, int) or isinstance(value, bool):
        problems.append(FieldViolation(name, f"must be a whole number; got {value!r}"))
        return default if default is not None else minimum
    if not minimum <= value <= maximum:
        problems.append(FieldViolation(name, f"must be {minimum} to {maximum}; got {value}"))
        return default if default is not None else minimum
    return value


def read_list(
    raw: Mapping[str, Any],
    key: str,
    path: str,
    problems: Problems,
    *,
    limit: int,
    required: bool = False,
) -> list[Any]:
    """A list of at most `limit` items; missing is empty unless required."""
    name = at(path, key)
    value = raw.get(key)
    if value is None:
        if required:
            problems.append(FieldViolation(name, "is required"))
        return []
    if not isinstance(value, list | tuple):
        problems.append(FieldViolation(name, "must be a list"))
        return []
    if required and not value:
        problems.append(FieldViolation(name, "must name at least one value"))
    if len(value) > limit:
        problems.append(FieldViolation(name, f"at most {limit} items; got {len(value)}"))
        return []
    return list(value)


def read_tokens(
    raw: Mapping[str, Any],
    key: str,
    path: str,
    problems: Problems,
    *,
    pattern: re.Pattern[str],
    rule: str,
    limit: int,
    required: bool = False,
) -> tuple[str, ...]:
    """Distinct lowercased tokens in their given order; each bad one named by index."""
    tokens: list[str] = []
    for i, item in enumerate(read_list(raw, key, path, problems, limit=limit, required=required)):
        token = check_token(item, at(at(path, key), i), problems, pattern=pattern, rule=rule)
        if token and token not in tokens:
            tokens.append(token)
    return tuple(tokens)


def check_enum(enum: type[E], value: Any, name: str, problems: Problems) -> E | None:
    """The enum member a string names (any case), or None with a violation."""
    allowed = ", ".join(e.value for e in enum)
    if isinstance(value, str):
        wanted = value.strip()
        for member in enum:
            if member.value.lower() == wanted.lower():
                return member
    problems.append(FieldViolation(name, f"must be one of {allowed}; got {value!r}"))
    return None


def read_enum(
    enum: type[E], raw: Mapping[str, Any], key: str, path: str, problems: Problems, default: E
) -> E:
    value = raw.get(key)
    if value is None:
        return default
    return check_enum(enum, value, at(path, key), problems) or default


def check_choice(value: Any, allowed: tuple[str, ...], name: str, problems: Problems) -> str:
    """One of a fixed set of lowercase words, or "" with a violation."""
    word = value.strip().lower() if isinstance(value, str) else None
    if word not in allowed:
        problems.append(FieldViolation(name, f"must be one of {', '.join(allowed)}; got {value!r}"))
        return ""
    return word


def read_time_zone(
    raw: Mapping[str, Any], key: str, path: str, problems: Problems, *, default: str
) -> str:
    """An IANA time zone name such as Europe/Moscow."""
    name = at(path, key)
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip():
        problems.append(FieldViolation(name, f"must be an IANA time zone name; got {value!r}"))
        return default
    zone = value.strip()
    if len(zone) > MAX_TIME_ZONE or not is_time_zone(zone):
        problems.append(
            FieldViolation(name, f"is not a known time zone (e.g. Europe/Moscow); got {value!r}")
        )
        return default
    return zone


def is_time_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def check_instant(value: Any, name: str, problems: Problems) -> datetime | None:
    """An ISO 8601 instant with an offset (or an aware datetime), in UTC."""
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            moment = None
    if moment is None:
        problems.append(
            FieldViolation(
                name, f"must be an ISO 8601 instant like 2025-01-31T09:00:00Z; got {value!r}"
            )
        )
        return None
    # A wall time alone is ambiguous between the agent's, the admin's and the server's zone.
    if moment.tzinfo is None or moment.utcoffset() is None:
        problems.append(FieldViolation(name, f"must carry a time zone offset; got {value!r}"))
        return None
    return moment.astimezone(UTC)
