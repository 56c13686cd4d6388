"""Flood control per recipient: past a limit within a window, notices are held back and go
out later as one digest (`digest`), so that a burst of events never buries anyone."""

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from helpdesk.notification.domain.templates import Rendered, digest

__all__ = ["Rendered", "Verdict", "decide", "digest", "release_at"]


class Verdict(StrEnum):
    SEND = "send"
    # Kept for the recipient's next digest.
    HOLD = "hold"


def decide(
    sent_recently: Sequence[datetime], now: datetime, *, limit: int, window: timedelta
) -> Verdict:
    """SEND while fewer than `limit` notices went to the recipient within `window` before
    `now`, else HOLD."""
    return (
        Verdict.HOLD if len(_within(sent_recently, now, limit, window)) >= limit else Verdict.SEND
    )


def release_at(
    sent_recently: Sequence[datetime], now: datetime, *, limit: int, window: timedelta
) -> datetime:
    """The first moment `decide` says SEND again, assuming nothing else is sent ("now" if
    it already does)."""
    recent = sorted(_within(sent_recently, now, limit, window))
    if len(recent) < limit:
        return now
    # Once all but limit - 1 of them have left the window, one more fits.
    return recent[len(recent) - limit] + window


def _within(
    sent_recently: Sequence[datetime], now: datetime, limit: int, window: timedelta
) -> list[datetime]:
    if limit < 1:
        raise ValueError(f"limit must be at least 1; got {limit}")
    if window <= timedelta(0):
        raise ValueError(f"window must be positive; got {window}")
    start = now - window
    # A send stamped after `now` (clocks of several workers) still counts against the limit.
    return [moment for moment in sent_recently if moment > start]
