"""The notification service's MongoDB repository: people, subscriptions, templates and
deliveries.

A delivery's `_id` is its dedup key — event id, recipient and channel. Claiming a notice
is one insert into `delivery_keys` (a document of nothing but the key): a redelivered event
collides on the unique `_id` and is never sent twice. The delivery is written before
anything is sent, so a crash loses nothing.

Where a delivery lives follows from how FerretDB v1 (SQLite backend) answers filters.
Only a filter of exactly `{_id: <string or ObjectId>}` is handed to SQLite; every other
filter (an equality on an indexed field such as `{status: "pending"}` included) reads and
decodes every document of the collection. And even `{_id: ...}` is no index lookup: SQLite's
`_id` index is built on another expression than the one FerretDB queries with, so reads,
updates and deletes by `_id` scan the table inside SQLite (about 17 µs per 4 KB document
here, while holding the database's write lock for an update), and only an insert — the
unique index checked on the way in — costs the same at any size. So:

- `open_deliveries` holds the deliveries still to act on (pending, held), whole: the worker
  updates and deletes them by `_id`, and the sweep reads them all, in a collection kept
  small (the consumer waits while too many are pending, see commands.py);
- `deliveries` holds the finished ones (sent, dead, digested), each inserted once when it
  ends and not written again (except by a replay, an admin's rare call);
- `delivery_keys` remembers every key ever claimed, in documents of a few dozen bytes.

A delivery ends in three steps: its open document takes the final status, the finished
copy is inserted, the open one deleted. A crash between them leaves an open document with a
final status, which the sweep finishes the same way (an insert that finds the copy there
is fine), so it is never sent twice. Listing deliveries by ticket, recipient or status (an
admin call) reads both collections; on MongoDB the indexes below serve it.
"""

import contextlib
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from helpdesk.core.cache import Snapshot
from helpdesk.core.mongo import ensure_indexes
from helpdesk.notification.domain.notices import (
    Person,
    Subscription,
    dump_person,
    dump_subscription,
    parse_person,
    parse_subscription,
)
from helpdesk.notification.domain.templates import Template, dump_template, parse_template

Document = dict[str, Any]

# The statuses of a delivery the worker still has to act on.
OPEN_STATUSES = ("pending", "held")
# The key in `delivery_keys` that says deliveries of an older layout were taken over.
BACKFILLED = "#backfilled"


class NotificationStore:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.people = database["people"]
        self.subscriptions = database["subscriptions"]
        self.deliveries = database["deliveries"]
        self.open = database["open_deliveries"]
        self.keys = database["delivery_keys"]
        self.templates = database["templates"]
        # Read for every event; people, subscriptions and templates change rarely.
        self._people = Snapshot(self._load_people)
        self._subscriptions = Snapshot(self._load_subscriptions)
        self._templates = Snapshot(self._load_templates)

    async def create_indexes(self) -> None:
        await ensure_indexes(
            self.deliveries,
            [
                IndexModel([("status", ASCENDING)], name="status"),
                IndexModel([("ticket_id", ASCENDING), ("created_at", DESCENDING)], name="ticket"),
                IndexModel(
                    [("recipient", ASCENDING), ("created_at", DESCENDING)], name="recipient"
                ),
            ],
        )

    async def put_person(self, person: Person) -> None:
        await self.people.replace_one(
            {"_id": person.id}, {"definition": dump_person(person)}, upsert=True
        )
        self._people.drop()

    async def all_people(self) -> dict[str, Person]:
        return dict(await self._people.get())

    async def _load_people(self) -> dict[str, Person]:
        people = [parse_person(doc["definition"]) async for doc in self.people.find({})]
        return {p.id: p for p in people}

    async def put_subscription(self, subscription: Subscription) -> None:
        await self.subscriptions.replace_one(
            {"_id": subscription.id},
            {"definition": dump_subscription(subscription)},
            upsert=True,
        )
        self._subscriptions.drop()

    async def all_subscriptions(self) -> list[Subscription]:
        return list(await self._subscriptions.get())

    async def _load_subscriptions(self) -> list[Subscription]:
        return [parse_subscription(doc["definition"]) async for doc in self.subscriptions.find({})]

    async def put_template(self, template: Template) -> None:
        await self.templates.replace_one(
            {"_id": f"{template.key}:{template.language}"},
            {"definition": dump_template(template)},
            upsert=True,
        )
        self._templates.drop()

    async def all_templates(self) -> dict[tuple[str, str], Template]:
        return dict(await self._templates.get())

    async def _load_templates(self) -> dict[tuple[str, str], Template]:
        found = [parse_template(doc["definition"]) async for doc in self.templates.find({})]
        return {(t.key, t.language): t for t in found}

    async def claim(self, delivery: Document) -> Document | None:
        """Records a notice to send; None if it is new, else the delivery already recorded
        under its key ({} if none is found). A repeat is counted on the key (`repeats`), so
        how often redelivered events were caught survives restarts, unlike the metric.

        The key is written first and the open delivery second; a crash between the two
        leaves the event uncommitted, and when it comes again the delivery is found
        neither open nor finished and is recorded then (None: it is to be sent)."""
        try:
            await self.keys.insert_one({"_id": delivery["_id"]})
        except DuplicateKeyError:
            await self.keys.update_one({"_id": delivery["_id"]}, {"$inc": {"repeats": 1}})
            earlier = await self.open.find_one({"_id": delivery["_id"]})
            if earlier is None:
                # Rare (a redelivery), and a scan of the finished deliveries on FerretDB.
                earlier = await self.deliveries.find_one({"_id": delivery["_id"]})
            if earlier is not None:
                return earlier
        with contextlib.suppress(DuplicateKeyError):
            await self.open.insert_one(delivery)
        return None

    async def delivery(self, delivery_id: str) -> Document | None:
        """The delivery, open or finished (an admin's call: a scan on FerretDB)."""
        found = await self.open.find_one({"_id": delivery_id})
        return found or await self.deliveries.find_one({"_id": delivery_id})

    async def update(self, delivery_id: str, fields: Document) -> None:
        """Changes a delivery that stays open (another attempt later, or held)."""
        await self.open.update_one({"_id": delivery_id}, {"$set": fields})

    async def close(self, delivery_id: str, fields: Document) -> None:
        """Writes a delivery's final state (sent, dead, digested): on the open document
        first, so that a crash after it never sends it again, then the finished copy."""
        doc = await self.open.find_one_and_update(
            {"_id": delivery_id}, {"$set": fields}, return_document=ReturnDocument.AFTER
        )
        if doc is not None:
            await self.finish(doc)

    async def finish(self, doc: Document) -> None:
        """Moves an open delivery whose status is final to the finished ones."""
        try:
            await self.deliveries.insert_one(doc)
        except DuplicateKeyError:
            # Finished before (a replay, or a crash after this insert): rare, and a scan.
            await self.deliveries.replace_one({"_id": doc["_id"]}, doc)
        await self.open.delete_one({"_id": doc["_id"]})

    async def reopen(self, doc: Document) -> None:
        """A finished delivery is open again (a replay); its finished copy stays until it
        ends again, and meanwhile the open one is what is shown."""
        await self.open.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def open_deliveries(self) -> list[Document]:
        """Every open delivery: a scan, of a collection kept small."""
        return [doc async for doc in self.open.find({})]

    async def listing(
        self, ticket_id: str, recipient: str, status: str, limit: int
    ) -> list[Document]:
        selector: Document = {}
        if ticket_id:
            selector["ticket_id"] = ticket_id
        if recipient:
            selector["recipient"] = recipient
        if status:
            selector["status"] = status
        found: dict[str, Document] = {}
        if status not in OPEN_STATUSES:
            cursor = self.deliveries.find(selector).sort("created_at", DESCENDING).limit(limit)
            found = {doc["_id"]: doc async for doc in cursor}
        if not status or status in OPEN_STATUSES:
            unfinished = {doc["_id"]: doc async for doc in self.open.find(selector)}
            found = {k: v for k, v in found.items() if k not in unfinished} | unfinished
        else:
            # A replayed delivery is open again: its old finished copy is not its status.
            ids = [doc["_id"] async for doc in self.open.find({}, {"_id": 1})]
            for delivery_id in ids:
                found.pop(delivery_id, None)
        ordered = sorted(found.values(), key=lambda d: d["created_at"], reverse=True)
        return ordered[:limit]

    async def backfill_keys(self) -> None:
        """Once, on a database written before deliveries were split: every delivery's key
        is claimed and the open ones move to `open_deliveries` (one scan, at start)."""
        if await self.keys.find_one({"_id": BACKFILLED}) is not None:
            return
        for doc in [doc async for doc in self.deliveries.find({})]:
            if doc.get("status") in OPEN_STATUSES:
                with contextlib.suppress(DuplicateKeyError):
                    await self.open.insert_one(doc)
            with contextlib.suppress(DuplicateKeyError):
                await self.keys.insert_one({"_id": doc["_id"]})
            if doc.get("status") in OPEN_STATUSES:
                await self.deliveries.delete_one({"_id": doc["_id"]})
        await self.keys.insert_one({"_id": BACKFILLED})


def due(docs: list[Document], now: datetime) -> list[Document]:
    """Pending deliveries whose next attempt has come, oldest first."""
    ready = [d for d in docs if d.get("next_at") is None or d["next_at"] <= now]
    return sorted(ready, key=lambda d: d["created_at"])
