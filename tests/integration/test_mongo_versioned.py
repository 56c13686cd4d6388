"""Versioned writes on the real MongoDB-compatible server: the conditional update every
owner of a document (tickets, articles, SLA states, outboxes) relies on."""

import uuid
from typing import Any

from pymongo import AsyncMongoClient

from helpdesk.core.mongo import indexes_lone_id_only, update_versioned


async def test_a_versioned_update_applies_only_at_its_version(
    mongo: AsyncMongoClient[dict[str, Any]],
) -> None:
    collection = mongo[f"versioned_{uuid.uuid4().hex[:8]}"]["docs"]
    # The local server is FerretDB v1, which indexes a lone `_id` filter only.
    assert await indexes_lone_id_only(collection) is True
    await collection.insert_many([{"_id": f"d{n}", "version": 1, "n": n} for n in range(50)])

    assert await update_versioned(collection, "d7", 1, {"$set": {"n": 70, "version": 2}})
    # A writer that read version 1 before that write loses.
    assert not await update_versioned(collection, "d7", 1, {"$set": {"n": 71, "version": 2}})
    assert not await update_versioned(collection, "gone", 1, {"$set": {"version": 2}})

    assert await collection.find_one({"_id": "d7"}) == {"_id": "d7", "version": 2, "n": 70}
    others = await collection.count_documents({"version": 1})
    assert others == 49
    await mongo.drop_database(collection.database.name)
