"""Reading admin payloads (decoded JSON): the checks people, subscriptions and templates share.

Each reader appends a FieldViolation naming the field and returns a harmless stand-in, so a
parser can report every bad field at once.
"""

import re
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlsplit

from helpdesk.core.errors import FieldViolation
from helpdesk.core.payload import Problems as Problems
from helpdesk.core.payload import mapping as mapping
from helpdesk.core.payload import path as path
from helpdesk.core.payload import unknown_fields as unknown_fields

E = TypeVar("E", bound=StrEnum)

CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_EMAIL = 254
MAX_URL = 2_000


def items(value: Any, where: str, limit: int, problems: Problems) -> list[Any]:
    """The value as a list of at most `limit` items; absent is empty."""
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        problems.append(FieldViolation(where, "must be a list"))
        return []
    if len(value) > limit:
        problems.append(FieldViolation(where, f"at most {limit} items; got {len(value)}"))
        return []
    return list(value)


def text(value: Any, where: str, problems: Problems, *, limit: int, required: bool = False) -> str:
    """One line of trimmed text; absent is "" unless required."""
    if value is None or value == "":
        if required:
            problems.append(FieldViolation(where, "is required"))
        return ""
    if not isinstance(value, str):
        problems.append(FieldViolation(where, f"must be a string; got {value!r}"))
        return ""
    if CONTROL_CHARACTERS.search(value) or "\n" in value or "\r" in value:
        problems.append(FieldViolation(where, "must be one line without control characters"))
        return ""
    trimmed = value.strip()
    if required and not trimmed:
        problems.append(FieldViolation(where, "is required"))
    if len(trimmed) > limit:
        problems.append(FieldViolation(where, f"must be at most {limit} characters"))
        return ""
    return trimmed


def token(
    value: Any,
    where: str,
    problems: Problems,
    *,
    pattern: re.Pattern[str],
    rule: str,
    lower: bool = True,
    required: bool = False,
) -> str:
    """A word matching `pattern` (described by `rule`), lowercased unless told otherwise."""
    if value is None or value == "":
        if required:
            problems.append(FieldViolation(where, "is required"))
        return ""
    if not isinstance(value, str):
        problems.append(FieldViolation(where, f"{rule}; got {value!r}"))
        return ""
    word = value.strip().lower() if lower else value.strip()
    if not pattern.fullmatch(word):
        problems.append(FieldViolation(where, f"{rule}; got {value!r}"))
        return ""
    return word


def boolean(value: Any, where: str, problems: Problems, *, default: bool) -> bool:
    """true or false; absent is the default."""
    if value is None:
        return default
    if not isinstance(value, bool):
        problems.append(FieldViolation(where, f"must be true or false; got {value!r}"))
        return default
    return value


def choice(enum: type[E], value: Any, where: str, problems: Problems) -> E | None:
    """The member a string names (any case); None, with a violation unless absent."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        wanted = value.strip().lower()
        for member in enum:
            if member.value == wanted:
                return member
    allowed = ", ".join(member.value for member in enum)
    problems.append(FieldViolation(where, f"must be one of {allowed}; got {value!r}"))
    return None


def email(value: Any, where: str, problems: Problems, *, required: bool = False) -> str:
    """An e-mail address, lowercased."""
    address = text(value, where, problems, limit=MAX_EMAIL, required=required).lower()
    if not address:
        return ""
    if not EMAIL.fullmatch(address):
        problems.append(FieldViolation(where, f"is not an e-mail address: {address!r}"))
        return ""
    if undeliverable(address):
        # Intake names chat requesters with such addresses; mail to them goes nowhere.
        problems.append(FieldViolation(where, f"is in the reserved .invalid domain: {address!r}"))
        return ""
    return address


def undeliverable(address: str) -> bool:
    """An address in the reserved `.invalid` domain (RFC 2606), which no mail reaches."""
    return address.rpartition("@")[2].rstrip(".").lower().endswith(".invalid")


def url(value: Any, where: str, problems: Problems) -> str:
    """An http(s) URL with a host and no credentials in it; absent is ""."""
    if value is None or value == "":
        return ""
    address = text(value, where, problems, limit=MAX_URL)
    if not address:
        return ""
    try:
        parts = urlsplit(address)
        host = parts.hostname
    except ValueError:
        parts, host = None, None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not host:
        problems.append(FieldViolation(where, f"must be an http(s) URL; got {address!r}"))
        return ""
    if " " in address:
        problems.append(FieldViolation(where, "must not contain spaces"))
        return ""
    # Credentials belong in the service's secrets, not in a record anyone with admin can read.
    if parts.username is not None or parts.password is not None:
        problems.append(FieldViolation(where, "must not carry a user name or password"))
        return ""
    return address
