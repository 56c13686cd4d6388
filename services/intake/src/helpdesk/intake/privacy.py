"""Erasing a requester's personal data from a ticket, as pure functions over the ticket and
its stored history and comments. The ticket stays (numbers, times and statuses are the
service desk's own records); what identifies or describes the person goes."""

import hashlib
from dataclasses import replace
from typing import Any

from helpdesk.core.errors import FieldViolation, InvalidArgument
from helpdesk.intake.domain import EMAIL_ADDRESS, Requester, Ticket

ERASED = "[erased]"
ALIAS_DOMAIN = "erased.invalid"


def checked_email(email: str) -> str:
    value = email.strip().lower()
    if not EMAIL_ADDRESS.fullmatch(value):
        raise InvalidArgument(
            [FieldViolation("requester_email", f"is not an e-mail address: {email!r}")]
        )
    return value


def alias_for(email: str) -> str:
    """The stand-in address of an erased requester: stable, so their tickets still group."""
    digest = hashlib.sha256(email.encode()).hexdigest()[:16]
    return f"erased-{digest}@{ALIAS_DOMAIN}"


def erase_ticket(ticket: Ticket, alias: str) -> Ticket:
    return replace(
        ticket,
        requester=Requester(email=alias, language=ticket.requester.language),
        subject=ERASED,
        description=ERASED,
        custom_fields={},
    )


def erase_comments(comments: list[dict[str, Any]], email: str, alias: str) -> list[dict[str, Any]]:
    """The requester's own comments lose body and attachments; agents' replies stay."""
    erased = []
    for comment in comments:
        author = comment.get("author") or {}
        if author.get("id", "").lower() == email:
            comment = {
                **comment,
                "author": {**author, "id": alias},
                "body": ERASED,
                "attachments": [],
            }
        erased.append(comment)
    return erased


def erase_history(history: list[dict[str, Any]], email: str, alias: str) -> list[dict[str, Any]]:
    """Entries keep what changed and when; the requester's address becomes the alias."""
    erased = []
    for entry in history:
        actor = entry.get("actor") or {}
        if actor.get("id", "").lower() == email:
            entry = {**entry, "actor": {**actor, "id": alias}}
        entry = {
            **entry,
            "changes": [
                {
                    **change,
                    "old": ERASED if email in str(change.get("old", "")).lower() else change["old"],
                    "new": ERASED if email in str(change.get("new", "")).lower() else change["new"],
                }
                for change in entry.get("changes") or ()
            ],
        }
        erased.append(entry)
    return erased
