"""Configuration read on every event (rules, policies, people) kept for a moment.

Each replica reloads it after `ttl` seconds, and at once after its own change; another
replica's change shows within the ttl.
"""

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Snapshot(Generic[T]):
    def __init__(self, load: Callable[[], Awaitable[T]], *, ttl_seconds: float = 2.0) -> None:
        self._load = load
        self._ttl = ttl_seconds
        self._value: tuple[float, T] | None = None

    async def get(self) -> T:
        """The value, loaded again when older than the ttl."""
        if self._value is None or time.monotonic() - self._value[0] > self._ttl:
            self._value = (time.monotonic(), await self._load())
        return self._value[1]

    def drop(self) -> None:
        """Forget the value: the next get loads it (after a change made here)."""
        self._value = None
