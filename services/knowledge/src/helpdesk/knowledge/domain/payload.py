"""Reading admin payloads (decoded JSON): the checks articles and macros share.

Each reader appends a FieldViolation naming the field and returns a harmless stand-in, so a
parser can report every bad field at once.
"""

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from helpdesk.core.errors import FieldViolation, InvalidArgument
from helpdesk.core.payload import Problems as Problems
from helpdesk.core.payload import format_instant as format_instant
from helpdesk.core.payload import mapping as mapping
from helpdesk.core.payload import path as path
from helpdesk.core.payload import require_utc as require_utc
from helpdesk.core.payload import unknown_fields as unknown_fields

E = TypeVar("E", bound=StrEnum)

MAX_NAME = 200
MAX_TAG = 50
MAX_TAGS = 20
# Article and macro ids are chosen by admins and appear in links, so they stay readable.
IDENTIFIER = re.compile(r"[a-z0-9][a-z0-9_.-]{0,99}")
IDENTIFIER_RULE = "must be 1-100 lowercase letters, digits, '-', '_' or '.'"
# Agent ids may come from an identity provider, so their case is kept (routing's rule).
PERSON = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}")
PERSON_RULE = "must be letters, digits, '-', '_', '.', ':' or '@' (at most 128)"
# Intake's rule for ticket tags, so that a macro adds only tags a ticket can hold.
TAG = re.compile(r"[\w\-.:/]{1,50}")
TAG_RULE = f"must be 1-{MAX_TAG} letters, digits or - _ . : /"
ONE_LINE_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# Long text keeps its line breaks and tabs.
TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def top(raw: Any) -> Mapping[str, Any]:
    """A whole payload as an object; anything else is refused before any field is read."""
    if not isinstance(raw, Mapping):
        raise InvalidArgument([FieldViolation("(root)", "must be an object")])
    return raw


def token(
    value: Any,
    where: str,
    problems: Problems,
    *,
    pattern: re.Pattern[str],
    rule: str,
    lower: bool = True,
    required: bool = True,
) -> str:
    """A trimmed (and lowercased) word matching `pattern`, or "" with a violation."""
    if value is None or value == "":
        if required:
            problems.append(FieldViolation(where, "is required"))
        return ""
    if not isinstance(value, str):
        problems.append(FieldViolation(where, f"must be a string; got {value!r}"))
        return ""
    word = value.strip().lower() if lower else value.strip()
    if not pattern.fullmatch(word):
        problems.append(FieldViolation(where, f"{rule}; got {value!r}"))
        return ""
    return word


def line(value: Any, where: str, problems: Problems, *, limit: int = MAX_NAME) -> str:
    """Required one-line text, trimmed."""
    if value is None or (isinstance(value, str) and not value.strip()):
        problems.append(FieldViolation(where, "is required"))
        return ""
    if not isinstance(value, str):
        problems.append(FieldViolation(where, f"must be a string; got {value!r}"))
        return ""
    if ONE_LINE_CONTROL.search(value):
        problems.append(FieldViolation(where, "must be one line without control characters"))
        return ""
    trimmed = value.strip()
    if len(trimmed) > limit:
        problems.append(
            FieldViolation(where, f"must be at most {limit} characters; got {len(trimmed)}")
        )
        return ""
    return trimmed


def text(value: Any, where: str, problems: Problems, *, limit: int, required: bool = True) -> str:
    """Multi-line text with its line ends made "\\n", trimmed at both ends."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            problems.append(FieldViolation(where, "is required"))
        return ""
    if not isinstance(value, str):
        problems.append(FieldViolation(where, f"must be a string; got {value!r}"))
        return ""
    if TEXT_CONTROL.search(value):
        problems.append(FieldViolation(where, "must not contain control characters"))
        return ""
    trimmed = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if len(trimmed) > limit:
        problems.append(
            FieldViolation(where, f"must be at most {limit} characters; got {len(trimmed)}")
        )
        return ""
    return trimmed


def choice(enum: type[E], value: Any, where: str, problems: Problems, *, default: E | None) -> E:
    """The member a string names (any case); absent is the default, or a violation if none."""
    allowed = ", ".join(member.value for member in enum)
    if value is None and default is not None:
        return default
    if isinstance(value, str):
        wanted = value.strip().lower()
        for member in enum:
            if member.value == wanted:
                return member
    problems.append(FieldViolation(where, f"must be one of {allowed}; got {value!r}"))
    return default if default is not None else next(iter(enum))


def tags(value: Any, where: str, problems: Problems) -> tuple[str, ...]:
    """Distinct lowercased tags in their given order; each bad one named by index."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        problems.append(FieldViolation(where, "must be a list"))
        return ()
    if len(value) > MAX_TAGS:
        problems.append(FieldViolation(where, f"at most {MAX_TAGS} items; got {len(value)}"))
        return ()
    found: list[str] = []
    for i, item in enumerate(value):
        tag = token(item, path(where, i), problems, pattern=TAG, rule=TAG_RULE)
        if tag and tag not in found:
            found.append(tag)
    return tuple(found)


def integer(value: Any, where: str, problems: Problems, *, low: int, high: int) -> int:
    """A required whole number in [low, high], or `low` with a violation."""
    # bool is an int in Python, but `true` is not a number in a payload.
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(FieldViolation(where, f"must be a whole number; got {value!r}"))
        return low
    if not low <= value <= high:
        problems.append(FieldViolation(where, f"must be {low} to {high}; got {value}"))
        return low
    return value


def instant(value: Any, where: str, problems: Problems) -> datetime:
    """An ISO 8601 instant with an offset, in UTC; the epoch with a violation."""
    moment: datetime | None = None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            moment = None
    # A wall time alone is ambiguous between the admin's zone and the server's.
    if moment is None or moment.tzinfo is None or moment.utcoffset() is None:
        problems.append(
            FieldViolation(
                where,
                f"must be an ISO 8601 instant with an offset, like 2025-01-31T09:00:00Z; "
                f"got {value!r}",
            )
        )
        return datetime.fromtimestamp(0, UTC)
    return moment.astimezone(UTC)
