"""Durable timers in memory for the coming minutes: a heap fed by equality reads of the due
minute, fired through the commands (which decide from the stored state, so a timer that is
stale, doubled or already fired by another replica fires nothing).

Every minute the next minute's timers are read by equality (`buckets == m`, an index
lookup on MongoDB). At start, and every sweep interval, one range read picks up whatever
is overdue: timers armed by a replica that died, or armed into minutes already read.
"""

import asyncio
import heapq
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from helpdesk.core.logging import get_logger
from helpdesk.sla.domain.clocks import Deadline, due_bucket
from helpdesk.sla.metrics import OPEN_TIMERS
from helpdesk.sla.store import SlaStore

log = get_logger(__name__)

# Minutes read ahead, so a timer is in memory before it is due.
LOOKAHEAD_MINUTES = 1


class TimerQueue:
    def __init__(
        self,
        store: SlaStore,
        fire: Callable[[str], Awaitable[None]],
        *,
        tick_seconds: float,
        sweep_seconds: float,
        transient: tuple[type[BaseException], ...],
    ) -> None:
        self._store = store
        self._fire = fire
        self._tick = tick_seconds
        self._sweep = sweep_seconds
        self._transient = transient
        self._heap: list[tuple[datetime, str]] = []
        self._queued: set[tuple[datetime, str]] = set()
        self._loaded_through = 0
        self._task: asyncio.Task[None] | None = None

    def arm(self, ticket_id: str, deadlines: Iterable[Deadline]) -> None:
        """Deadlines just written: those in minutes already read go into memory now."""
        for deadline in deadlines:
            if due_bucket(deadline.at) <= self._loaded_through:
                self._push(deadline.at, ticket_id)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="sla-timers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        next_sweep = 0.0
        loop = asyncio.get_running_loop()
        while True:
            now = datetime.now(UTC)
            # Each step on its own: a slow sweep must not keep due timers from firing.
            if loop.time() >= next_sweep:
                # The next sweep is due an interval from now, whether this one succeeds.
                next_sweep = loop.time() + self._sweep
                await self._step(self._sweep_overdue(due_bucket(now)))
            await self._step(self._read_ahead(due_bucket(now) + LOOKAHEAD_MINUTES))
            await self._step(self._fire_due())
            await asyncio.sleep(self._tick)

    async def _step(self, work: Awaitable[None]) -> None:
        try:
            await work
        except self._transient:
            log.warning("sla_timers_retry", exc_info=True)
        except Exception:
            log.exception("sla_timers_failed")

    async def _sweep_overdue(self, bucket: int) -> None:
        await self._load(await self._store.due_by(bucket))

    async def _read_ahead(self, through: int) -> None:
        if self._loaded_through == 0:
            self._loaded_through = through - LOOKAHEAD_MINUTES - 1
        for bucket in range(self._loaded_through + 1, through + 1):
            await self._load(await self._store.due_in(bucket))
            self._loaded_through = bucket

    async def _load(self, docs: Iterable[dict[str, Any]]) -> None:
        for doc in docs:
            for deadline in doc.get("deadlines") or ():
                self._push(deadline["at"], str(doc["_id"]))

    def _push(self, at: datetime, ticket_id: str) -> None:
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        entry = (at, ticket_id)
        if entry not in self._queued:
            self._queued.add(entry)
            heapq.heappush(self._heap, entry)
        OPEN_TIMERS.set(len(self._heap))

    async def _fire_due(self) -> None:
        now = datetime.now(UTC)
        due: dict[str, None] = {}
        while self._heap and self._heap[0][0] <= now:
            entry = heapq.heappop(self._heap)
            self._queued.discard(entry)
            due[entry[1]] = None
        OPEN_TIMERS.set(len(self._heap))
        pending = list(due)
        for i, ticket_id in enumerate(pending):
            try:
                await self._fire(ticket_id)
            except self._transient:
                # Back in a tick, this one and those not tried yet: their stored states
                # still say they are due.
                for waiting in pending[i:]:
                    self._push(now, waiting)
                raise
