"""Report figures from ticket facts."""

from datetime import UTC, datetime, timedelta

import pytest

from helpdesk.core.errors import InvalidArgument
from helpdesk.intake.domain import Status
from helpdesk.intake.reports import TicketFacts, check_period, percentile, report

START = datetime(2026, 11, 1, tzinfo=UTC)
END = START + timedelta(days=7)


def fact(hours: float, status: Status = Status.OPEN, **extra: object) -> TicketFacts:
    created = START + timedelta(hours=hours)
    fields: dict[str, object] = {
        "created_at": created,
        "status": status,
        "channel": "api",
        "team": "it",
        "assignee_id": "",
    }
    fields.update(extra)
    return TicketFacts(**fields)  # type: ignore[arg-type]


def test_figures_of_a_week() -> None:
    t0 = START + timedelta(hours=1)
    facts = [
        fact(
            1,
            Status.RESOLVED,
            first_response_at=t0 + timedelta(minutes=10),
            resolved_at=t0 + timedelta(hours=2),
            rating_score=5,
            rated_at=t0 + timedelta(hours=3),
        ),
        fact(
            1,
            Status.RESOLVED,
            first_response_at=t0 + timedelta(minutes=30),
            resolved_at=t0 + timedelta(hours=4),
            reopen_count=1,
            rating_score=2,
            rated_at=t0 + timedelta(hours=5),
        ),
        fact(1, Status.OPEN, channel="email", team="hr"),
        fact(-48, Status.OPEN),  # created before the period: not counted as created
        fact(200, Status.NEW),  # after the period
    ]
    total, groups = report(facts, START, END, "channel")
    assert total.created == 3
    assert total.resolved == 2
    assert total.first_responses == 2
    assert total.first_response_seconds_mean == 20 * 60
    assert total.first_response_seconds_p50 == 10 * 60
    assert total.resolution_seconds_mean == 3 * 3600
    assert total.backlog == 1
    assert total.backlog_share == pytest.approx(1 / 3)
    assert total.reopen_rate == 0.5
    assert total.ratings == 2
    assert total.csat == 0.5
    assert {g.group: g.created for g in groups} == {"api": 2, "email": 1}


def test_empty_period_has_zero_figures() -> None:
    total, groups = report([], START, END, "team")
    assert (total.created, total.csat, total.backlog_share) == (0, 0.0, 0.0)
    assert groups == []


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.5) == 0.0
    assert percentile([5.0, 1.0, 3.0], 0.5) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.9) == 4.0


@pytest.mark.parametrize(
    ("start", "end", "group_by", "field"),
    [
        (None, END, "", "period_start"),
        (START, None, "", "period_end"),
        (END, START, "", "period_end"),
        (START, START + timedelta(days=400), "", "period_end"),
        (START, END, "priority", "group_by"),
    ],
)
def test_bad_periods_name_the_field(
    start: datetime | None, end: datetime | None, group_by: str, field: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_period(start, end, group_by)
    assert field in {v.field for v in refused.value.violations}
