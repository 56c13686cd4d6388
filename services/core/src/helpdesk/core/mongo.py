"""MongoDB access through PyMongo's async API (the successor of Motor)."""

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection

if TYPE_CHECKING:
    from helpdesk.core.settings import ServiceSettings


def create_mongo_client(
    uri: str, service: str, *, max_pool_size: int = 16, operation_timeout_ms: int = 15_000
) -> AsyncMongoClient[dict[str, Any]]:
    """A client that fails fast when the server is away, so health and callers notice.

    The pool is small on purpose: FerretDB v1 keeps 100 SQLite connections and its
    updates hold a read cursor while waiting for a second connection to write, so a
    client that opens about as many connections can wedge it; MongoDB is well served by
    a small pool too. Every operation has a deadline, so a stuck server never hangs us.
    """
    return AsyncMongoClient(
        uri,
        appname=f"helpdesk-{service}",
        serverSelectionTimeoutMS=5_000,
        connectTimeoutMS=5_000,
        maxPoolSize=max_pool_size,
        timeoutMS=operation_timeout_ms,
        tz_aware=True,
    )


def mongo_client_from(
    settings: "ServiceSettings", service: str
) -> AsyncMongoClient[dict[str, Any]]:
    """The service's client as its settings say (pool size, operation deadline)."""
    return create_mongo_client(
        settings.mongodb_uri,
        service,
        max_pool_size=settings.mongodb_max_pool_size,
        operation_timeout_ms=settings.mongodb_operation_timeout_ms,
    )


async def ping(client: AsyncMongoClient[dict[str, Any]]) -> None:
    """Raises when the server does not answer."""
    await client.admin.command("ping")


async def ensure_indexes(collection: AsyncCollection[Any], indexes: list[IndexModel]) -> None:
    """Creates the indexes that are missing, one per command.

    One command per index because FerretDB v1 drops the connection when a single
    createIndexes command names several indexes that already exist (every restart).
    """
    for index in indexes:
        await collection.create_indexes([index])


def store_precision(moment: datetime) -> datetime:
    """The instant as MongoDB keeps it (milliseconds), so what is returned equals what is read."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class DocumentLocks:
    """One writer at a time per document within this process.

    FerretDB v1 does not isolate concurrent updates of one document (each reads, changes
    and writes the whole document), so two writers, e.g. a command and the outbox relay,
    could each lose the other's change. MongoDB isolates them; this only narrows the gap
    on FerretDB to writers in different processes.
    """

    def __init__(self) -> None:
        self._locks: dict[Any, asyncio.Lock] = {}
        self._holders: Counter[Any] = Counter()

    @contextlib.asynccontextmanager
    async def hold(self, doc_id: Any) -> AsyncIterator[None]:
        lock = self._locks.setdefault(doc_id, asyncio.Lock())
        self._holders[doc_id] += 1
        try:
            async with lock:
                yield
        finally:
            self._holders[doc_id] -= 1
            if not self._holders[doc_id]:
                del self._holders[doc_id]
                del self._locks[doc_id]
