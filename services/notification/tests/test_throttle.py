"""Flood control: when a recipient's notices are held back, when they may flow again, and the
digest the held ones go out as."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpdesk.notification.domain.notices import Audience, Channel, Facts, Notice
from helpdesk.notification.domain.templates import Rendered, context_for, render
from helpdesk.notification.domain.throttle import Verdict, decide, digest, release_at

NOW = datetime(2025, 3, 3, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=10)


def ago(*minutes: float) -> list[datetime]:
    return [NOW - timedelta(minutes=m) for m in minutes]


def test_notices_flow_until_the_limit_is_reached() -> None:
    assert decide([], NOW, limit=3, window=WINDOW) == Verdict.SEND
    assert decide(ago(1, 2), NOW, limit=3, window=WINDOW) == Verdict.SEND
    assert decide(ago(1, 2, 3), NOW, limit=3, window=WINDOW) == Verdict.HOLD


def test_only_sends_within_the_window_count() -> None:
    # Exactly one window ago has just left it.
    assert decide(ago(10, 11, 60, 1), NOW, limit=2, window=WINDOW) == Verdict.SEND
    assert decide(ago(9.99, 1), NOW, limit=2, window=WINDOW) == Verdict.HOLD


def test_sends_stamped_later_than_now_still_count() -> None:
    # Workers' clocks differ a little; a send "from the future" happened all the same.
    later = [NOW + timedelta(seconds=2)]
    assert decide(later, NOW, limit=1, window=WINDOW) == Verdict.HOLD


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="limit"):
        decide([], NOW, limit=0, window=WINDOW)
    with pytest.raises(ValueError, match="window"):
        decide([], NOW, limit=1, window=timedelta(0))


def test_held_notices_may_flow_once_enough_sends_left_the_window() -> None:
    sent = ago(8, 6, 1)
    assert release_at(sent, NOW, limit=2, window=WINDOW) == NOW + timedelta(minutes=4)
    assert release_at(sent, NOW, limit=5, window=WINDOW) == NOW


moments = st.lists(st.integers(min_value=-3_600, max_value=60), max_size=30).map(
    lambda seconds: [NOW + timedelta(seconds=s) for s in seconds]
)


@given(sent=moments, limit=st.integers(min_value=1, max_value=10))
def test_hold_exactly_when_the_window_is_full(sent: list[datetime], limit: int) -> None:
    recent = [moment for moment in sent if moment > NOW - WINDOW]
    expected = Verdict.HOLD if len(recent) >= limit else Verdict.SEND
    assert decide(sent, NOW, limit=limit, window=WINDOW) == expected


@given(sent=moments, limit=st.integers(min_value=1, max_value=10))
def test_release_is_the_first_moment_that_sends(sent: list[datetime], limit: int) -> None:
    free = release_at(sent, NOW, limit=limit, window=WINDOW)
    assert free >= NOW
    assert decide(sent, free, limit=limit, window=WINDOW) == Verdict.SEND
    if free > NOW:
        before = free - timedelta(microseconds=1)
        assert decide(sent, before, limit=limit, window=WINDOW) == Verdict.HOLD


# --- digests ---


def notice(number: str, subject: str, text: str, html: str = "") -> Rendered:
    return Rendered(f"[{number}] {subject}", text, html)


def test_a_digest_gathers_the_held_notices() -> None:
    combined = digest(
        [
            notice("HD-1", "Assigned to you", "Ticket HD-1 is yours."),
            notice("HD-2", "SLA at risk", "Ticket HD-2 is due soon."),
        ],
        "en",
    )
    assert combined.subject == "2 notifications from the service desk"
    assert "[HD-1] Assigned to you" in combined.text
    assert "Ticket HD-2 is due soon." in combined.text
    assert combined.text.index("HD-1") < combined.text.index("HD-2")
    assert combined.html.startswith('<!DOCTYPE html>\n<html lang="en">')


def test_a_digest_of_one_tickets_notices_threads_into_it() -> None:
    combined = digest(
        [notice("HD-7", "Ответ заявителя", "Раз"), notice("HD-7", "Ответ заявителя", "Два")],
        "ru",
    )
    assert combined.subject == "[HD-7] Служба поддержки: 2 уведомления"
    assert "собрали их вместе" in combined.text
    five = digest([notice(f"HD-{n}", "x", "y") for n in range(5)], "ru-RU")
    assert five.subject == "Служба поддержки: 5 уведомлений"


def test_a_digest_keeps_html_bodies_and_escapes_subjects() -> None:
    facts = Facts("evt-1", "ticket.closed", "t-9", number="HD-9", subject="<b>x</b>")
    to_anna = Notice(
        "evt-1",
        "t-9",
        "ticket.closed.requester",
        Audience.REQUESTER,
        "anna@example.com",
        Channel.EMAIL,
        "anna@example.com",
        "en",
        name="<Anna>",
    )
    context = context_for(facts, to_anna, portal_url="", survey_url="", typical_resolution="")
    rendered = render("ticket.closed.requester", "en", context)
    combined = digest([rendered, notice("HD-10", "<i>plain</i>", "line one\nline <two>")], "en")
    assert "<p>Hello &lt;Anna&gt;,</p>" in combined.html
    assert "<b>HD-9</b> (&lt;b&gt;x&lt;/b&gt;)" in combined.html
    assert "<i>plain</i>" not in combined.html
    assert "&lt;i&gt;plain&lt;/i&gt;" in combined.html
    assert "line one<br>\nline &lt;two&gt;" in combined.html
    # One document, not documents inside a document.
    assert combined.html.count("<body") == 1
