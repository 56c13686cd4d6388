"""Erasure rules: what goes, what stays."""

import pytest

from helpdesk.core.errors import InvalidArgument
from helpdesk.intake.privacy import (
    ERASED,
    alias_for,
    checked_email,
    erase_comments,
    erase_history,
)

EMAIL = "carol@example.com"
ALIAS = alias_for(EMAIL)


def test_alias_is_stable_and_reveals_nothing() -> None:
    assert alias_for(EMAIL) == ALIAS
    assert alias_for("dave@example.com") != ALIAS
    assert "carol" not in ALIAS
    assert ALIAS.endswith("@erased.invalid")


def test_checked_email_normalises_or_refuses() -> None:
    assert checked_email(" Carol@Example.com ") == EMAIL
    with pytest.raises(InvalidArgument) as refused:
        checked_email("nobody")
    assert refused.value.violations[0].field == "requester_email"


def test_only_the_requesters_comments_are_erased() -> None:
    comments = [
        {"author": {"id": EMAIL, "role": "requester"}, "body": "call me", "attachments": [{}]},
        {"author": {"id": "agent-7", "role": "agent"}, "body": "done", "attachments": []},
    ]
    erased = erase_comments(comments, EMAIL, ALIAS)
    assert erased[0] == {
        "author": {"id": ALIAS, "role": "requester"},
        "body": ERASED,
        "attachments": [],
    }
    assert erased[1] == comments[1]


def test_history_keeps_what_changed_but_not_who_or_the_address() -> None:
    history = [
        {"actor": {"id": EMAIL}, "action": "created", "changes": []},
        {
            "actor": {"id": "agent-7"},
            "action": "updated",
            "changes": [
                {"field": "custom_fields.contact", "old": "", "new": f"mail {EMAIL}"},
                {"field": "priority", "old": "low", "new": "high"},
            ],
        },
    ]
    erased = erase_history(history, EMAIL, ALIAS)
    assert erased[0]["actor"]["id"] == ALIAS
    assert erased[1]["changes"] == [
        {"field": "custom_fields.contact", "old": "", "new": ERASED},
        {"field": "priority", "old": "low", "new": "high"},
    ]
