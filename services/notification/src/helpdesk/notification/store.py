"""The notification service's MongoDB repository: people, subscriptions, and deliveries.

A delivery's `_id` is its dedup key — event id, recipient and channel — so claiming a
notice is one insert: a redelivered event collides and is never sent twice. The delivery
document is written before anything is sent, so a crash loses nothing: the worker finds it
pending and sends it.
"""

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


class NotificationStore:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.people = database["people"]
        self.subscriptions = database["subscriptions"]
        self.deliveries = database["deliveries"]
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
        return await self.deliveries.find_one({"_id": delivery_id})

    async def with_status(self, status: str) -> list[Document]:
        return [doc async for doc in self.deliveries.find({"status": status})]

    async def update(self, delivery_id: str, fields: Document) -> None:
        await self.deliveries.update_one({"_id": delivery_id}, {"$set": fields})

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
        cursor = self.deliveries.find(selector).sort("created_at", DESCENDING).limit(limit)
        return [doc async for doc in cursor]


def due(docs: list[Document], now: datetime) -> list[Document]:
    """Pending deliveries whose next attempt has come, oldest first."""
    ready = [d for d in docs if d.get("next_at") is None or d["next_at"] <= now]
    return sorted(ready, key=lambda d: d["created_at"])
