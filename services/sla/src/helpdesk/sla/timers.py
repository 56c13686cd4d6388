"""Durable timers in memory for the coming minutes: a heap fed by lookups of each due
minute's buckets, fired through the commands (which decide from the stored state, so a
timer that is stale, doubled or already fired by another replica fires nothing).

- At start, every bucket up to the coming minute is read (a range read of the buckets,
  which hold only the last hour and the future): what came due while the service was
  down fires at once.
- Each minute's buckets are read by `_id` a minute ahead, so a timer is in memory before
  it is due; a replica's own new timers in a minute already read go into memory directly.
- The last few minutes are read again every minute: a replica that died between entering
  a timer in a minute others had read and firing it leaves it there for them.
- Buckets an hour old are forgotten.
- The ticket documents themselves are swept for anything overdue every sweep interval, and
  never more than a tenth of the time (a read of them all on FerretDB): the safety net.
"""

import asyncio
import heapq
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime

from helpdesk.core.logging import get_logger
from helpdesk.sla.domain.clocks import Deadline, due_bucket, whole_second_up
from helpdesk.sla.metrics import OPEN_TIMERS
from helpdesk.sla.store import SlaStore

log = get_logger(__name__)

Entry = tuple[datetime, str]  # (when to wake, ticket id)

# Minutes read ahead, so a timer is in memory before it is due.
LOOKAHEAD_MINUTES = 1
# Past minutes read again every RECHECK_SECONDS for timers others entered and never fired.
RECHECK_MINUTES = 5
RECHECK_SECONDS = 60.0
# Buckets older than this are dropped; what they held is long fired or swept.
KEEP_MINUTES = 60
# A sweep of the ticket documents is followed by at least this many times its duration.
SWEEP_SPACING = 10
# Tickets fired at once (their reads overlap; FerretDB v1 writes one at a time anyway).
FIRE_CONCURRENCY = 4


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
        self._heap: list[Entry] = []
        self._queued: set[Entry] = set()
        # Entries fired here lately, so that reading their minute again does not refire.
        self._fired: set[Entry] = set()
        self._loaded_through = 0  # the last minute whose buckets were read
        self._caught_up = False  # the start's read of every bucket succeeded
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
        sweeper = asyncio.create_task(self._sweep_periodically(), name="sla-timer-sweep")
        loop = asyncio.get_running_loop()
        next_recheck = loop.time() + RECHECK_SECONDS
        try:
            while True:
                minute = due_bucket(datetime.now(UTC))
                # Each step on its own: a failing read must not keep due timers from firing.
                if not self._caught_up:
                    await self._step(self._catch_up(minute))
                elif loop.time() >= next_recheck:
                    next_recheck = loop.time() + RECHECK_SECONDS
                    await self._step(self._recheck(minute))
                await self._step(self._read_ahead(minute + LOOKAHEAD_MINUTES))
                await self._step(self._fire_due())
                await asyncio.sleep(self._tick)
        finally:
            sweeper.cancel()
            await asyncio.gather(sweeper, return_exceptions=True)

    async def _step(self, work: Awaitable[None]) -> None:
        try:
            await work
        except self._transient:
            log.warning("sla_timers_retry", exc_info=True)
        except Exception:
            log.exception("sla_timers_failed")

    async def _catch_up(self, minute: int) -> None:
        self._load(await self._store.entered_by(minute))
        await self._store.forget_before(minute - KEEP_MINUTES)
        self._caught_up = True

    async def _read_ahead(self, through: int) -> None:
        if not self._loaded_through:
            self._loaded_through = through - LOOKAHEAD_MINUTES - 1
        for minute in range(self._loaded_through + 1, through + 1):
            # Counted as read before the read, so that a timer armed meanwhile goes into
            # memory through `arm` if the read missed it.
            self._loaded_through = minute
            try:
                self._load(await self._store.due_in(minute))
            except BaseException:
                self._loaded_through = minute - 1
                raise
            await self._store.forget_minute(minute - KEEP_MINUTES)

    async def _recheck(self, minute: int) -> None:
        for past in range(minute - RECHECK_MINUTES, minute + 1):
            self._load(await self._store.due_in(past))
        # What fired before the minutes read again cannot come back.
        oldest = datetime.fromtimestamp((minute - RECHECK_MINUTES - 1) * 60, UTC)
        self._fired = {entry for entry in self._fired if entry[0] >= oldest}

    async def _sweep_periodically(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await self._step(self._sweep_overdue())
            took = loop.time() - started
            await asyncio.sleep(max(self._sweep, SWEEP_SPACING * took))

    async def _sweep_overdue(self) -> None:
        self._load(await self._store.due_by(due_bucket(datetime.now(UTC))))

    def _load(self, entries: Iterable[Entry]) -> None:
        for at, ticket_id in entries:
            self._push(at, ticket_id)

    def _push(self, at: datetime, ticket_id: str) -> None:
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        entry = (whole_second_up(at), ticket_id)
        if entry not in self._queued and entry not in self._fired:
            self._queued.add(entry)
            heapq.heappush(self._heap, entry)
        OPEN_TIMERS.set(len(self._heap))

    async def _fire_due(self) -> None:
        now = datetime.now(UTC)
        due: dict[str, list[Entry]] = {}
        while self._heap and self._heap[0][0] <= now:
            entry = heapq.heappop(self._heap)
            self._queued.discard(entry)
            due.setdefault(entry[1], []).append(entry)
        OPEN_TIMERS.set(len(self._heap))
        tickets = list(due)
        for first in range(0, len(tickets), FIRE_CONCURRENCY):
            chunk = tickets[first : first + FIRE_CONCURRENCY]
            outcomes = await asyncio.gather(
                *(self._fire(ticket_id) for ticket_id in chunk), return_exceptions=True
            )
            for ticket_id, outcome in zip(chunk, outcomes, strict=True):
                if outcome is None:
                    self._fired.update(due[ticket_id])
                elif isinstance(outcome, self._transient):
                    # Back in a tick: its stored state still says it is due.
                    log.warning("sla_timer_retry", ticket=ticket_id, error=str(outcome))
                    for at, _ in due[ticket_id]:
                        self._push(at, ticket_id)
                elif isinstance(outcome, BaseException):
                    if isinstance(outcome, asyncio.CancelledError):
                        raise outcome
                    log.error("sla_timer_failed", ticket=ticket_id, exc_info=outcome)
