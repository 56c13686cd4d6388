"""When a failed delivery is tried again, and when it is given up (to the dead-letter queue)."""

import random
from enum import StrEnum

# Tries in all, the first one included.
MAX_ATTEMPTS = 5


class Failure(StrEnum):
    # Worth another try later: the other side is busy, down or unreachable.
    TRANSIENT = "transient"
    # Will fail again the same way: a bad address, a refused message, a revoked webhook.
    PERMANENT = "permanent"


def classify_http(status: int | None, timed_out: bool) -> Failure:
    """A webhook or chat API failure: timeouts, no answer, 408, 429 and 5xx are transient;
    every other answer is permanent."""
    if timed_out or status is None:
        return Failure.TRANSIENT
    if 200 <= status < 300:
        raise ValueError(f"HTTP {status} is a success, not a failure")
    # 408 is the server's own timeout.
    if status in (408, 429) or status >= 500:
        return Failure.TRANSIENT
    return Failure.PERMANENT


def classify_smtp(code: int | None) -> Failure:
    """An SMTP failure: 5xx replies are permanent; 4xx replies and lost connections
    (no code) are transient."""
    if code is not None and 500 <= code < 600:
        return Failure.PERMANENT
    return Failure.TRANSIENT


def backoff(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before retrying after `attempt` failed tries: drawn uniformly from
    [0, min(cap, base * 2**attempt)] ("full jitter"), so that retries of many deliveries
    that failed together spread out instead of arriving together again."""
    if attempt < 0:
        raise ValueError(f"attempt must not be negative; got {attempt}")
    if base < 0 or cap < 0:
        raise ValueError("base and cap must not be negative")
    # Past a thousand doublings a float overflows; the cap has long been reached anyway.
    ceiling = cap if attempt > 1_000 else min(cap, base * 2.0**attempt)
    return rng.uniform(0, ceiling)


def should_retry(failure: Failure, attempts: int, *, max_attempts: int = MAX_ATTEMPTS) -> bool:
    """Whether a delivery that failed this way after `attempts` tries is tried again."""
    return failure is Failure.TRANSIENT and attempts < max_attempts
