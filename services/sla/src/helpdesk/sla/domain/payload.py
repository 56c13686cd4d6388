"""Reading admin payloads (JSON objects): the checks calendars and policies share.

Each reader appends a FieldViolation naming the field and returns a harmless stand-in, so a
parser can report every bad field at once.
"""

import re
from typing import Any

from helpdesk.core.errors import FieldViolation
from helpdesk.core.payload import Problems as Problems
from helpdesk.core.payload import mapping as mapping
from helpdesk.core.payload import path as path
from helpdesk.core.payload import unknown_fields as unknown_fields

MAX_NAME = 200
IDENTIFIER = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def items(value: Any, where: str, limit: int, problems: Problems) -> list[Any]:
    """The value as a list of at most `limit` items, or an empty one with a violation."""
    if not isinstance(value, list | tuple):
        problems.append(FieldViolation(where, "must be a list"))
        return []
    if len(value) > limit:
        problems.append(FieldViolation(where, f"at most {limit} items; got {len(value)}"))
        return []
    return list(value)


def identifier(value: Any, where: str, problems: Problems, *, required: bool) -> str:
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


def text(value: Any, where: str, problems: Problems, *, limit: int = MAX_NAME) -> str:
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


def boolean(value: Any, where: str, problems: Problems, *, default: bool) -> bool:
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
    problems: Problems,
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
