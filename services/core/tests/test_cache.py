"""The snapshot of slowly changing configuration."""

from helpdesk.core.cache import Snapshot


async def test_a_snapshot_loads_once_within_its_ttl_and_again_after_a_drop() -> None:
    loads: list[int] = []

    async def load() -> int:
        loads.append(1)
        return len(loads)

    snapshot = Snapshot(load, ttl_seconds=60)

    assert (await snapshot.get(), await snapshot.get()) == (1, 1)
    snapshot.drop()
    assert await snapshot.get() == 2


async def test_a_snapshot_past_its_ttl_loads_again() -> None:
    loads: list[int] = []

    async def load() -> int:
        loads.append(1)
        return len(loads)

    snapshot = Snapshot(load, ttl_seconds=0)

    assert await snapshot.get() == 1
    assert await snapshot.get() == 2
