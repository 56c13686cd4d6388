"""The notification service's MongoDB repository: people, subscriptions, and deliveries.

A delivery's `_id` is its dedup key — event id, recipient and channel — so claiming a
notice is one insert: a redelivered event collides and is never sent twice. The delivery
document is written before anything is sent, so a crash loses nothing: the worker finds it
pending and sends it.

That a delivery was sent is written as a small document of its own in `sent`, not as an update
of the delivery: on FerretDB an update by `_id` reads the whole collection, so with a status
update per message every send got slower as deliveries piled up, while an insert checks its
key in the unique index. Reads lay the mark over the delivery (`status: sent`), and the sweep
folds the marks into the deliveries now and then, a write per few thousand.
"""

import contextlib
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
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
# Sent marks folded into the deliveries per write.
FOLD_BATCH = 5000


class NotificationStore:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.people = database["people"]
        self.subscriptions = database["subscriptions"]
        self.deliveries = database["deliveries"]
        self.sent = database["sent"]
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
        """Records a notice to send; the delivery already recorded under its key, if any.
        A repeat is counted on the delivery (`repeats`), so how often redelivered events
        were caught survives restarts, unlike the process's metric."""
        try:
            await self.deliveries.insert_one(delivery)
        except DuplicateKeyError:
            earlier = await self.deliveries.find_one_and_update(
                {"_id": delivery["_id"]}, {"$inc": {"repeats": 1}}
            )
            return earlier or {}
        return None

    async def delivery(self, delivery_id: str) -> Document | None:
        doc = await self.deliveries.find_one({"_id": delivery_id})
        return None if doc is None else (await self._with_sent([doc]))[0]

    async def with_status(self, status: str) -> list[Document]:
        return [doc async for doc in self.deliveries.find({"status": status})]

    async def pending(self) -> list[Document]:
        """Deliveries not sent yet. Those marked sent since the last call get `status: sent`
        with a write per few thousand, so that the pending ones stay few (on MongoDB this
        read is an index lookup)."""
        docs = await self.with_status("pending")
        done: set[str] = set()
        for start in range(0, len(docs), FOLD_BATCH):
            ids = [doc["_id"] for doc in docs[start : start + FOLD_BATCH]]
            marked = [m["_id"] async for m in self.sent.find({"_id": {"$in": ids}}, {"_id": 1})]
            if marked:
                await self.deliveries.update_many(
                    {"_id": {"$in": marked}, "status": "pending"}, {"$set": {"status": "sent"}}
                )
                done.update(marked)
        return [doc for doc in docs if doc["_id"] not in done]

    async def update(self, delivery_id: str, fields: Document) -> None:
        await self.deliveries.update_one({"_id": delivery_id}, {"$set": fields})

    async def mark_sent(self, delivery_id: str, attempts: int, sent_at: datetime) -> None:
        """Records a delivery as sent; a second mark (a resend after a crash) keeps the first."""
        with contextlib.suppress(DuplicateKeyError):
            await self.sent.insert_one(
                {"_id": delivery_id, "attempts": attempts, "sent_at": sent_at}
            )

    async def _with_sent(self, docs: list[Document]) -> list[Document]:
        """The deliveries with their sent marks laid over them."""
        if not docs:
            return docs
        ids = [doc["_id"] for doc in docs]
        marks = {mark["_id"]: mark async for mark in self.sent.find({"_id": {"$in": ids}})}
        return [
            {**doc, **marks[doc["_id"]], "status": "sent"} if doc["_id"] in marks else doc
            for doc in docs
        ]

    async def listing(
        self, ticket_id: str, recipient: str, status: str, limit: int
    ) -> list[Document]:
        selector: Document = {}
        if ticket_id:
            selector["ticket_id"] = ticket_id
        if recipient:
            selector["recipient"] = recipient
        # A sent delivery is still `pending` in its own document (the mark says sent).
        by_mark = status in ("sent", "pending")
        if status and not by_mark:
            selector["status"] = status
        cursor = self.deliveries.find(selector).sort("created_at", DESCENDING)
        if not by_mark:
            cursor = cursor.limit(limit)
        docs = await self._with_sent([doc async for doc in cursor])
        if by_mark:
            docs = [doc for doc in docs if doc["status"] == status][:limit]
        return docs


def due(docs: list[Document], now: datetime) -> list[Document]:
    """Pending deliveries whose next attempt has come, oldest first."""
    ready = [d for d in docs if d.get("next_at") is None or d["next_at"] <= now]
    return sorted(ready, key=lambda d: d["created_at"])
