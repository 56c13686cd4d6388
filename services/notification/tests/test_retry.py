"""Retries: which failures are worth another try, and how long to wait before it."""

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpdesk.notification.domain.retry import (
    MAX_ATTEMPTS,
    Failure,
    backoff,
    classify_http,
    classify_smtp,
    should_retry,
)


@pytest.mark.parametrize(
    ("status", "timed_out", "expected"),
    [
        (None, True, Failure.TRANSIENT),
        # No answer at all: the connection failed.
        (None, False, Failure.TRANSIENT),
        (500, False, Failure.TRANSIENT),
        (502, False, Failure.TRANSIENT),
        (503, False, Failure.TRANSIENT),
        (429, False, Failure.TRANSIENT),
        (408, False, Failure.TRANSIENT),
        (400, False, Failure.PERMANENT),
        (401, False, Failure.PERMANENT),
        (403, False, Failure.PERMANENT),
        (404, False, Failure.PERMANENT),
        (410, False, Failure.PERMANENT),
        (301, False, Failure.PERMANENT),
    ],
)
def test_http_failures(status: int | None, timed_out: bool, expected: Failure) -> None:
    assert classify_http(status, timed_out) is expected


def test_a_success_is_not_a_failure() -> None:
    with pytest.raises(ValueError, match="success"):
        classify_http(200, False)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (None, Failure.TRANSIENT),
        (421, Failure.TRANSIENT),
        (450, Failure.TRANSIENT),
        (451, Failure.TRANSIENT),
        (452, Failure.TRANSIENT),
        (550, Failure.PERMANENT),
        (553, Failure.PERMANENT),
        (554, Failure.PERMANENT),
    ],
)
def test_smtp_failures(code: int | None, expected: Failure) -> None:
    assert classify_smtp(code) is expected


@given(
    attempt=st.integers(min_value=0, max_value=64),
    base=st.floats(min_value=0, max_value=60, allow_nan=False),
    cap=st.floats(min_value=0, max_value=3_600, allow_nan=False),
    seed=st.integers(),
)
def test_backoff_stays_within_the_exponential_ceiling(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    wait = backoff(attempt, base=base, cap=cap, rng=random.Random(seed))
    assert 0 <= wait <= min(cap, base * 2**attempt)


def test_backoff_is_jittered_and_grows() -> None:
    rng = random.Random(7)
    early = [backoff(1, base=1.0, cap=300.0, rng=rng) for _ in range(200)]
    late = [backoff(6, base=1.0, cap=300.0, rng=rng) for _ in range(200)]
    # Full jitter: waits spread over the whole range rather than repeating.
    assert len(set(early)) == 200
    assert max(early) <= 2 < max(late) <= 64
    assert sum(late) / len(late) > sum(early) / len(early)


def test_backoff_is_reproducible_with_a_seeded_generator() -> None:
    waits = [backoff(a, base=0.5, cap=30.0, rng=random.Random(1)) for a in range(5)]
    assert waits == [backoff(a, base=0.5, cap=30.0, rng=random.Random(1)) for a in range(5)]


def test_backoff_never_overflows() -> None:
    assert backoff(10_000, base=1.0, cap=60.0, rng=random.Random(0)) <= 60.0


def test_backoff_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="attempt"):
        backoff(-1, base=1.0, cap=1.0, rng=random.Random(0))
    with pytest.raises(ValueError, match="negative"):
        backoff(1, base=-1.0, cap=1.0, rng=random.Random(0))


def test_transient_failures_are_retried_up_to_the_limit() -> None:
    assert MAX_ATTEMPTS == 5
    assert should_retry(Failure.TRANSIENT, 1)
    assert should_retry(Failure.TRANSIENT, MAX_ATTEMPTS - 1)
    assert not should_retry(Failure.TRANSIENT, MAX_ATTEMPTS)
    assert not should_retry(Failure.PERMANENT, 1)
    assert should_retry(Failure.TRANSIENT, 5, max_attempts=8)
