"""MongoDB access through PyMongo's async API (the successor of Motor)."""

from typing import Any

from pymongo import AsyncMongoClient


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
