"""The SLA service's MongoDB repository: policies, calendars, and one document per ticket
holding its SLA state, its armed timers and its outgoing events.

Timers live in the ticket's own document (`deadlines`, and `buckets`: the due minutes), so
a state change, the timers it arms and the events it publishes are one atomic write: a
crash can never leave a state without its timer. The hot read is an equality lookup by due
minute (`buckets`, indexed), which MongoDB answers from the index; a range read over
`next_bucket` runs only at start and in the periodic sweep.
"""

from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from helpdesk.core.cache import Snapshot
from helpdesk.core.mongo import ensure_indexes
from helpdesk.sla.domain.calendar import BusinessCalendar, dump_calendar, parse_calendar
from helpdesk.sla.domain.policy import Policy, dump_policy, parse_policy

Document = dict[str, Any]
# What the timer loop needs of a ticket document (not its whole state).
_TIMER_FIELDS = {"deadlines": 1, "version": 1}


class SlaStore:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.policies = database["sla_policies"]
        self.calendars = database["calendars"]
        self.tickets = database["ticket_slas"]
        # Read for every ticket event and every firing; they change rarely.
        self._policies = Snapshot(self._load_policies)
        self._calendars = Snapshot(self._load_calendars)

    async def create_indexes(self) -> None:
        await ensure_indexes(
            self.tickets,
            [
                IndexModel([("buckets", ASCENDING)], name="buckets"),
                IndexModel([("next_bucket", ASCENDING)], name="next_bucket"),
                IndexModel([("risk", ASCENDING), ("team", ASCENDING)], name="risk_team"),
                IndexModel([("outbox_pending", ASCENDING)], name="outbox_pending"),
            ],
        )

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
        result = await self.tickets.update_one(
            {"_id": ticket_id, "version": version},
            {"$set": {**fields, **outbox, "version": version + 1}},
        )
        return result.matched_count == 1

    async def due_in(self, bucket: int) -> list[Document]:
        """Tickets with a timer in this due minute (an equality lookup)."""
        return [doc async for doc in self.tickets.find({"buckets": bucket}, _TIMER_FIELDS)]

    async def due_by(self, bucket: int) -> list[Document]:
        """Tickets with a timer due by this minute (a range read: start and sweep only)."""
        cursor = self.tickets.find({"next_bucket": {"$lte": bucket}}, _TIMER_FIELDS)
        return [doc async for doc in cursor]

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
