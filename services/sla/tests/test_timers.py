"""The timer loop around a store that fails: due timers still fire, none is left behind."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from pymongo.errors import PyMongoError

from helpdesk.core.errors import TRANSIENT_ERRORS, Unavailable
from helpdesk.sla.store import SlaStore
from helpdesk.sla.timers import TimerQueue


class Store:
    """Every read-ahead minute holds the given tickets' due deadlines; sweeps may fail."""

    def __init__(self, ticket_ids: list[str], *, sweeps_fail: bool) -> None:
        due = datetime.now(UTC) - timedelta(seconds=1)
        self.docs = [{"_id": t, "deadlines": [{"at": due}]} for t in ticket_ids]
        self.sweeps_fail = sweeps_fail

    async def due_by(self, bucket: int) -> list[dict[str, Any]]:
        if self.sweeps_fail:
            raise PyMongoError("the range read timed out")
        return self.docs

    async def due_in(self, bucket: int) -> list[dict[str, Any]]:
        return self.docs


async def run_until(queue: TimerQueue, enough: asyncio.Event) -> None:
    """Runs the loop until `enough` is set, or three seconds have passed."""
    queue.start()
    try:
        async with asyncio.timeout(3):
            await enough.wait()
    except TimeoutError:
        pass
    finally:
        await queue.stop()


async def test_a_failing_sweep_does_not_keep_due_timers_from_firing() -> None:
    fired: list[str] = []
    enough = asyncio.Event()

    async def fire(ticket_id: str) -> None:
        fired.append(ticket_id)
        enough.set()

    store = Store(["t1"], sweeps_fail=True)
    queue = TimerQueue(
        cast(SlaStore, store),
        fire,
        tick_seconds=0.01,
        sweep_seconds=0.01,
        transient=TRANSIENT_ERRORS,
    )

    await run_until(queue, enough)

    assert fired == ["t1"]


async def test_a_passing_failure_puts_back_every_ticket_not_fired_yet() -> None:
    fired: list[str] = []
    failures = ["t1"]
    enough = asyncio.Event()

    async def fire(ticket_id: str) -> None:
        if ticket_id in failures:
            failures.remove(ticket_id)
            raise Unavailable("intake is away")
        fired.append(ticket_id)
        if len(set(fired)) == 3:
            enough.set()

    store = Store(["t1", "t2", "t3"], sweeps_fail=False)
    queue = TimerQueue(
        cast(SlaStore, store),
        fire,
        tick_seconds=0.01,
        sweep_seconds=3600,
        transient=TRANSIENT_ERRORS,
    )

    await run_until(queue, enough)

    assert set(fired) == {"t1", "t2", "t3"}
