"""Reading admin payloads (JSON objects): the checks calendars and policies share.

Each reader appends a FieldViolation naming the field and returns a harmless stand-in, so a
parser can report every bad field at once.
"""

import re
from collections.abc import Collection, Mapping
from typing import Any

from helpdesk.core.errors import FieldViolation

MAX_NAME = 200
IDENTIFIER = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def path(parent: str, name: str | int) -> str:
    """The path of a member: `hours.monday`, `hours.monday[1]`, `id` at the top."""
    if isinstance(name, int):
        return f"{parent}[{name}]"
    return f"{parent}.{name}" if parent else name


def unknown_fields(
    raw: Mapping[str, Any], known: Collection[str], parent: str, problems: list[FieldViolation]
) -> None:
    """Flags members nobody reads, so a typo never silently turns into a default."""
    for key in raw:
        if key not in known:
            problems.append(
                FieldViolation(
                    path(parent, str(key)), f"unknown field; expected one of {', '.join(known)}"
                )
            )


def mapping(value: Any, where: str, problems: list[FieldViolation]) -> Mapping[str, Any]:
    """The value as an object, or an empty one with a violation."""
    if isinstance(value, Mapping):
        return value
    problems.append(FieldViolation(where, "must be an object"))
    return {}


def items(value: Any, where: str, limit: int, problems: list[FieldViolation]) -> list[Any]:
    """The value as a list of at most `limit` items, or an empty one with a violation."""
    if not isinstance(value, list | tuple):
        problems.append(FieldViolation(where, "must be a list"))
        return []
    if len(value) > limit:
        problems.append(FieldViolation(where, f"at most {limit} items; got {len(value)}"))
        return []
    return list(value)


def identifier(value: Any, where: str, problems: list[FieldViolation], *, required: bool) -> str:
    """A stable id: 1-64 lowercase letters, digits, '-', '_' or '.'."""
    if value is None or value == "":
        if required:
            problems.append(FieldViolation(where, "is required"))
        return ""
    if not isinstance(value, str) or not IDENTIFIER.fullmatch(value):
        problems.append(
            FieldViolation(
                where,
                "must be 1-64 lowercase letters, digits, '-', '_' or '.', "
                f"starting with a letter or digit; got {value!r}",
            )
        )
        return ""
    return value


def text(value: Any, where: str, problems: list[FieldViolation], *, limit: int = MAX_NAME) -> str:
    """Required one-line text, trimmed."""
    if not isinstance(value, str) or not value.strip():
        problems.append(FieldViolation(where, "is required"))
        return ""
    if CONTROL_CHARACTERS.search(value):
        problems.append(FieldViolation(where, "must not contain control characters"))
        return ""
    trimmed = value.strip()
    if len(trimmed) > limit:
        problems.append(FieldViolation(where, f"must be at most {limit} characters"))
        return ""
    return trimmed


def boolean(value: Any, where: str, problems: list[FieldViolation], *, default: bool) -> bool:
    """true or false; absent is the default."""
    if value is None:
        return default
    if not isinstance(value, bool):
        problems.append(FieldViolation(where, f"must be true or false; got {value!r}"))
        return default
    return value


def integer(
    value: Any,
    where: str,
    problems: list[FieldViolation],
    *,
    low: int,
    high: int,
    default: int | None = None,
) -> int | None:
    """A whole number in [low, high]; absent is the default if there is one, else a violation."""
    if value is None and default is not None:
        return default
    # bool is an int in Python, but `true` is not a number in a payload.
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(FieldViolation(where, f"must be a whole number; got {value!r}"))
        return None
    if not low <= value <= high:
        problems.append(FieldViolation(where, f"must be {low} to {high}; got {value}"))
        return None
    return value
