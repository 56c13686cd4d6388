"""The shared shape checks of admin payloads: field paths and unknown members."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from helpdesk.core.errors import FieldViolation
from helpdesk.core.payload import format_instant, mapping, path, require_utc, unknown_fields


def test_a_member_s_path_names_it_from_the_top() -> None:
    assert path("", "id") == "id"
    assert path("hours", "monday") == "hours.monday"
    assert path("hours.monday", 1) == "hours.monday[1]"


def test_a_non_object_and_unknown_members_are_named() -> None:
    problems: list[FieldViolation] = []
    assert mapping([1], "", problems) == {}
    checked = mapping({"name": "x", "nmae": "y"}, "conditions", problems)
    unknown_fields(checked, ("name",), "conditions", problems)
    assert [(p.field, p.description) for p in problems] == [
        ("(root)", "must be an object"),
        ("conditions.nmae", "unknown field; expected one of name"),
    ]


def test_instants_are_utc_and_naive_ones_are_refused() -> None:
    moscow = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=3)))
    assert require_utc(moscow) == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    assert format_instant(moscow) == "2026-03-01T09:00:00Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        require_utc(datetime(2026, 3, 1, 12, 0))
