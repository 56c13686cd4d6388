"""MongoDB access through PyMongo's async API (the successor of Motor)."""

from datetime import datetime
from typing import Any

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection


def create_mongo_client(uri: str, service: str) -> AsyncMongoClient[dict[str, Any]]:
    """A client that fails fast when the server is away, so health and callers notice."""
    return AsyncMongoClient(
        uri,
        appname=f"helpdesk-{service}",
        serverSelectionTimeoutMS=5_000,
        connectTimeoutMS=5_000,
        tz_aware=True,
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
