"""The SLA service's MongoDB repository: policies, calendars, one document per ticket
holding its SLA state, its armed timers and its outgoing events, and the timers by due
minute.

A ticket's timers live in its own document (`deadlines`), so a state change, the timers
it arms and the events it publishes are one atomic write. To be found when due, each
timer is also entered, before that write, in a bucket document of its due minute
(`sla_timer_buckets`, `_id` "<minute>/<shard>", the shard from the ticket id so that a
busy minute is spread over several small documents). Reading a minute is a few lookups by
`_id`, the one filter every MongoDB-compatible server answers from an index (FerretDB v1
reads the whole collection for any other). An entry whose ticket has moved on fires
nothing: the commands decide from the ticket's document. `next_bucket` on the ticket
documents serves the periodic sweep, a range read that is the safety net.
"""

import asyncio
import zlib
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from helpdesk.core.cache import Snapshot
from helpdesk.core.mongo import ensure_indexes, update_versioned
from helpdesk.sla.domain.calendar import BusinessCalendar, dump_calendar, parse_calendar
from helpdesk.sla.domain.policy import Policy, dump_policy, parse_policy

Document = dict[str, Any]
# Bucket documents per due minute; a minute with 100,000 timers keeps each under 200 KB.
BUCKET_SHARDS = 16
# What the timer loop needs of a ticket document (not its whole state).
_TIMER_FIELDS = {"deadlines": 1}


class SlaStore:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.policies = database["sla_policies"]
        self.calendars = database["calendars"]
        self.tickets = database["ticket_slas"]
        self.buckets = database["sla_timer_buckets"]
        # Read for every ticket event and every firing; they change rarely.
        self._policies = Snapshot(self._load_policies)
        self._calendars = Snapshot(self._load_calendars)

    async def create_indexes(self) -> None:
        await ensure_indexes(
            self.tickets,
            [
                IndexModel([("next_bucket", ASCENDING)], name="next_bucket"),
                IndexModel([("risk", ASCENDING), ("team", ASCENDING)], name="risk_team"),
                IndexModel([("outbox_pending", ASCENDING)], name="outbox_pending"),
            ],
        )
        await ensure_indexes(self.buckets, [IndexModel([("minute", ASCENDING)], name="minute")])

    # ---- policies and calendars

    async def put_policy(self, policy: Policy) -> None:
        await self.policies.replace_one(
            {"_id": policy.id}, {"definition": dump_policy(policy)}, upsert=True
        )
        self._policies.drop()

    async def delete_policy(self, policy_id: str) -> bool:
        """False when there was no such policy."""
        deleted = (await self.policies.delete_one({"_id": policy_id})).deleted_count == 1
        self._policies.drop()
        return deleted

    async def all_policies(self) -> list[Policy]:
        return list(await self._policies.get())

    async def _load_policies(self) -> list[Policy]:
        return [parse_policy(doc["definition"]) async for doc in self.policies.find({})]

    async def put_calendar(self, calendar: BusinessCalendar) -> None:
        await self.calendars.replace_one(
            {"_id": calendar.id}, {"definition": dump_calendar(calendar)}, upsert=True
        )
        self._calendars.drop()

    async def policies_in_calendar(self, calendar_id: str) -> list[str]:
        """The ids of the policies (enabled or not) counting in a calendar, read afresh."""
        cursor = self.policies.find({"definition.calendar_id": calendar_id}, {"_id": 1})
        return sorted([str(doc["_id"]) async for doc in cursor])

    async def delete_calendar(self, calendar_id: str) -> bool:
        """False when there was no such calendar."""
        deleted = (await self.calendars.delete_one({"_id": calendar_id})).deleted_count == 1
        self._calendars.drop()
        return deleted

    async def all_calendars(self) -> list[BusinessCalendar]:
        return list(await self._calendars.get())

    async def _load_calendars(self) -> list[BusinessCalendar]:
        return [parse_calendar(doc["definition"]) async for doc in self.calendars.find({})]

    # ---- ticket SLA documents

    async def ticket(self, ticket_id: str) -> Document | None:
        return await self.tickets.find_one({"_id": ticket_id}, {"outbox": 0})

    async def insert(self, ticket_id: str, fields: Document, outbox: Document) -> bool:
        """The first state of a ticket's SLA; False when another writer was first."""
        nested: Document = {"_id": ticket_id, "version": 1, **fields, "outbox": {}}
        for path, value in outbox.items():
            head, _, rest = path.partition(".")
            if rest:
                nested[head][rest] = value
            else:
                nested[head] = value
        try:
            await self.tickets.insert_one(nested)
        except DuplicateKeyError:
            return False
        return True

    async def save(self, ticket_id: str, version: int, fields: Document, outbox: Document) -> bool:
        """Writes a changed state with its timers and events if nobody wrote in between."""
        return await update_versioned(
            self.tickets, ticket_id, version, {"$set": {**fields, **outbox, "version": version + 1}}
        )

    # ---- timers by due minute

    async def enter_timers(self, ticket_id: str, timers: Iterable[tuple[int, datetime]]) -> None:
        """Enters a ticket's timers (due minute, due instant) in their minutes' buckets."""
        await self.enter_many((ticket_id, minute, at) for minute, at in timers)

    async def enter_many(self, timers: Iterable[tuple[str, int, datetime]]) -> None:
        """Enters timers (ticket, due minute, due instant), one write per bucket, one after
        another (FerretDB v1 writes one at a time and answers SQLITE_BUSY to a crowd)."""
        entries: dict[tuple[int, str], list[Document]] = defaultdict(list)
        for ticket_id, minute, at in timers:
            entries[(minute, bucket_id(minute, ticket_id))].append({"t": ticket_id, "at": at})
        for (minute, doc_id), each in entries.items():
            await self.buckets.update_one(
                {"_id": doc_id},
                {"$addToSet": {"timers": {"$each": each}}, "$setOnInsert": {"minute": minute}},
                upsert=True,
            )

    async def due_in(self, minute: int) -> list[tuple[datetime, str]]:
        """The timers entered for this due minute (lookups by `_id`)."""
        docs = await asyncio.gather(
            *(self.buckets.find_one({"_id": f"{minute}/{s}"}) for s in range(BUCKET_SHARDS))
        )
        return [entry for doc in docs if doc for entry in _entries(doc)]

    async def entered_by(self, minute: int) -> list[tuple[datetime, str]]:
        """Every timer entered for this minute or before (a range read of the buckets,
        which hold only the minutes not yet forgotten: at start)."""
        cursor = self.buckets.find({"minute": {"$lte": minute}})
        return [entry async for doc in cursor for entry in _entries(doc)]

    async def forget_minute(self, minute: int) -> None:
        """Drops a past minute's buckets (lookups by `_id`)."""
        await asyncio.gather(
            *(self.buckets.delete_one({"_id": f"{minute}/{s}"}) for s in range(BUCKET_SHARDS))
        )

    async def forget_before(self, minute: int) -> None:
        """Drops every bucket of a minute before this one (a range read: at start)."""
        await self.buckets.delete_many({"minute": {"$lt": minute}})

    async def due_by(self, bucket: int) -> list[tuple[datetime, str]]:
        """Timers of tickets with one due by this minute, from the ticket documents
        themselves (a range read of them all on FerretDB: the periodic sweep)."""
        cursor = self.tickets.find({"next_bucket": {"$lte": bucket}}, _TIMER_FIELDS)
        return [
            (deadline["at"], str(doc["_id"]))
            async for doc in cursor
            for deadline in doc.get("deadlines") or ()
        ]

    async def open_under_policy(self, policy_id: str) -> list[str]:
        """Tickets still measured under a policy (an edit of it applies to them)."""
        cursor = self.tickets.find(
            {"state.policy_id": policy_id, "risk": {"$ne": "closed"}}, {"_id": 1}
        )
        return [str(doc["_id"]) async for doc in cursor]

    async def open_in_calendar(self, calendar_id: str) -> list[str]:
        """Tickets still counting business time in a calendar."""
        cursor = self.tickets.find(
            {"state.calendar_id": calendar_id, "risk": {"$ne": "closed"}}, {"_id": 1}
        )
        return [str(doc["_id"]) async for doc in cursor]

    async def at_risk(self, risks: list[str], team: str, limit: int) -> list[Document]:
        selector: Document = {"risk": risks[0] if len(risks) == 1 else {"$in": risks}}
        if team:
            selector["team"] = team
        cursor = self.tickets.find(selector, {"outbox": 0}).sort("next_due", ASCENDING)
        return [doc async for doc in cursor.limit(limit)]


def bucket_id(minute: int, ticket_id: str) -> str:
    """The bucket document a ticket's timer of this minute is entered in."""
    return f"{minute}/{zlib.crc32(ticket_id.encode()) % BUCKET_SHARDS}"


def _entries(doc: Document) -> list[tuple[datetime, str]]:
    return [(entry["at"], str(entry["t"])) for entry in doc.get("timers") or ()]
