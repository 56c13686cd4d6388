"""Intake's MongoDB repository: tickets (with their outbox) and the number counter."""

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from helpdesk.core.mongo import ensure_indexes
from helpdesk.intake.domain import OPEN_STATUSES, Ticket, TicketQuery
from helpdesk.intake.mapping import facts_from_document, ticket_from_document, ticket_to_document
from helpdesk.intake.reports import TicketFacts

Document = dict[str, Any]

# A ticket read without its outbox, history and comments, which can be long.
_TICKET_FIELDS = {"outbox": 0, "history": 0, "comments": 0}

TICKET_COUNTER = "tickets"


class DuplicateKey(Exception):
    """Another ticket holds the same request id or number (FerretDB does not say which)."""


class TicketStore:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.tickets = database["tickets"]
        self._counters = database["counters"]
        # Small on purpose: one entry per open dedup window, read by _id only.
        self._dedup = database["dedup_windows"]
        # Chat conversations (a Telegram chat, a Slack thread) -> their current ticket, by _id.
        self._conversations = database["chat_conversations"]
        # FerretDB v1 runs concurrent findAndModify $inc on one document without isolation,
        # so two calls can get the same value; one at a time per process avoids that, and
        # the unique number index catches what another replica might still collide with.
        self._sequence_lock = asyncio.Lock()

    async def create_indexes(self) -> None:
        await ensure_indexes(
            self.tickets,
            [
                IndexModel([("number", ASCENDING)], unique=True, name="number_unique"),
                IndexModel([("request_id", ASCENDING)], unique=True, name="request_id_unique"),
                IndexModel([("sequence", DESCENDING)], name="sequence"),
                IndexModel(
                    [("status", ASCENDING), ("sequence", DESCENDING)], name="status_sequence"
                ),
                IndexModel([("outbox_pending", ASCENDING)], name="outbox_pending"),
                # Queue views: a team's or an agent's tickets by status, newest first.
                IndexModel(
                    [("team", ASCENDING), ("status", ASCENDING), ("sequence", DESCENDING)],
                    name="team_status_sequence",
                ),
                IndexModel(
                    [("assignee_id", ASCENDING), ("status", ASCENDING), ("sequence", DESCENDING)],
                    name="assignee_status_sequence",
                ),
                IndexModel(
                    [("requester.email", ASCENDING), ("sequence", DESCENDING)],
                    name="requester_sequence",
                ),
            ],
        )

    async def next_sequence(self) -> int:
        """The next ticket number, unique across replicas (one atomic findAndModify)."""
        async with self._sequence_lock:
            counter = await self._counters.find_one_and_update(
                {"_id": TICKET_COUNTER},
                {"$inc": {"value": 1}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        assert counter is not None  # upsert always returns the document
        return int(counter["value"])

    async def insert(self, ticket: Ticket, outbox: Document, history: list[Document]) -> None:
        """Stores a new ticket together with its events and first history entry in one write."""
        try:
            await self.tickets.insert_one(
                {
                    **ticket_to_document(ticket),
                    **_nested(outbox),
                    "history": history,
                    "comments": [],
                }
            )
        except DuplicateKeyError as error:
            raise DuplicateKey(ticket.number) from error

    async def by_id(self, ticket_id: str) -> Ticket | None:
        doc = await self.tickets.find_one({"_id": ticket_id}, _TICKET_FIELDS)
        return ticket_from_document(doc) if doc else None

    async def by_number(self, number: str) -> Ticket | None:
        doc = await self.tickets.find_one({"number": number}, _TICKET_FIELDS)
        return ticket_from_document(doc) if doc else None

    async def claim_dedup(
        self, key: str, ticket_id: str, now: datetime, until: datetime
    ) -> str | None:
        """Claims a dedup window for a ticket; the holder's ticket id if another holds it."""
        try:
            await self._dedup.insert_one({"_id": key, "ticket_id": ticket_id, "until": until})
            return None
        except DuplicateKeyError:
            pass
        held = await self._dedup.find_one({"_id": key})
        if held is None:
            return None  # released meanwhile: the ticket goes ahead unclaimed
        held_until = held["until"] if held["until"].tzinfo else held["until"].replace(tzinfo=UTC)
        if held["ticket_id"] != ticket_id and held_until > now:
            return str(held["ticket_id"])
        await self._dedup.update_one(
            {"_id": key, "ticket_id": held["ticket_id"]},
            {"$set": {"ticket_id": ticket_id, "until": until}},
        )
        return None

    async def record_sla(
        self, ticket_id: str, metric: str, state: str, entry: Document
    ) -> str | None:
        """Keeps what the SLA service reported for one metric, and the ticket's worst state;
        the old worst state, None when there is no such ticket. Not a ticket version: the
        SLA is the SLA service's fact, so it never races the ticket's own writers."""
        doc = await self.tickets.find_one_and_update(
            {"_id": ticket_id},
            # No projection: FerretDB does not take one on findAndModify.
            {"$set": {f"sla_metrics.{metric}": state}},
        )
        if doc is None:
            return None
        old = str(doc.get("sla_state") or "")
        metrics = {**(doc.get("sla_metrics") or {}), metric: state}
        worst = next((s for s in ("breached", "at_risk") if s in metrics.values()), "")
        update: Document = {"$set": {"sla_state": worst}}
        if worst != old:
            change = {"field": "sla_state", "old": old, "new": worst}
            update["$push"] = {
                "history": {**entry, "version": doc.get("version", 0), "changes": [change]}
            }
        await self.tickets.update_one({"_id": ticket_id}, update)
        return old

    async def conversation_ticket(self, conversation: str) -> str | None:
        """The id of the ticket a chat conversation continues, None for a new one."""
        held = await self._conversations.find_one({"_id": conversation})
        return str(held["ticket_id"]) if held else None

    async def set_conversation_ticket(self, conversation: str, ticket_id: str) -> None:
        await self._conversations.update_one(
            {"_id": conversation},
            {"$set": {"ticket_id": ticket_id, "updated_at": datetime.now(UTC)}},
            upsert=True,
        )

    async def release_dedup(self, key: str, ticket_id: str) -> None:
        """Frees a window whose ticket no longer takes additions (it was resolved or closed)."""
        await self._dedup.delete_one({"_id": key, "ticket_id": ticket_id})

    async def apply(
        self,
        before_version: int,
        ticket: Ticket,
        outbox: Document,
        history: list[Document],
        comment: Document | None = None,
    ) -> bool:
        """Writes a changed ticket, its events, history and comment in one conditional write;
        False when the ticket moved past `before_version` meanwhile."""
        fields = ticket_to_document(ticket)
        del fields["_id"]
        push: Document = {"history": {"$each": history}}
        if comment is not None:
            push["comments"] = comment
        result = await self.tickets.update_one(
            {"_id": ticket.id, "version": before_version},
            {"$set": {**fields, **outbox}, "$push": push},
        )
        return result.matched_count == 1

    async def report_facts(self, start: datetime, end: datetime) -> list[TicketFacts]:
        """What reports need of every ticket created, resolved or rated in [start, end)."""
        period = {"$gte": start, "$lt": end}
        cursor = self.tickets.find(
            {"$or": [{"created_at": period}, {"resolved_at": period}, {"rating.rated_at": period}]},
            {
                "created_at": 1,
                "status": 1,
                "channel": 1,
                "team": 1,
                "assignee_id": 1,
                "first_response_at": 1,
                "resolved_at": 1,
                "reopen_count": 1,
                "rating": 1,
            },
        )
        return [facts_from_document(doc) async for doc in cursor]

    async def backlog(self) -> dict[tuple[str, str], int]:
        """Tickets still being worked, by (team, status)."""
        counts: dict[tuple[str, str], int] = {}
        cursor = await self.tickets.aggregate(
            [
                {"$match": {"status": {"$in": [s.value for s in OPEN_STATUSES]}}},
                {"$group": {"_id": {"team": "$team", "status": "$status"}, "n": {"$sum": 1}}},
            ]
        )
        async for row in cursor:
            counts[(row["_id"].get("team") or "", row["_id"]["status"])] = int(row["n"])
        return counts

    async def document(self, ticket_id: str) -> Document | None:
        """A whole ticket document, history and comments too."""
        return await self.tickets.find_one({"_id": ticket_id}, {"outbox": 0})

    async def by_requester(self, email: str) -> list[Document]:
        """Whole ticket documents (history and comments too) of one requester."""
        cursor = self.tickets.find({"requester.email": email}, {"outbox": 0}).sort("sequence", 1)
        return await cursor.to_list()

    async def rewrite(
        self,
        before_version: int,
        ticket: Ticket,
        outbox: Document,
        history: list[Document],
        comments: list[Document],
    ) -> bool:
        """Replaces a ticket with its history and comments (erasure); False if it moved on."""
        fields = ticket_to_document(ticket)
        del fields["_id"]
        result = await self.tickets.update_one(
            {"_id": ticket.id, "version": before_version},
            {"$set": {**fields, **outbox, "history": history, "comments": comments}},
        )
        return result.matched_count == 1

    async def history(self, ticket_id: str) -> tuple[list[Document], list[Document]] | None:
        """The history entries and comments of a ticket, oldest first."""
        doc = await self.tickets.find_one({"_id": ticket_id}, {"history": 1, "comments": 1})
        if doc is None:
            return None
        return list(doc.get("history") or []), list(doc.get("comments") or [])

    async def page(self, query: TicketQuery, after: int | None, limit: int) -> list[Ticket]:
        """One page in ticket-number order; `after` continues past a previous page's last."""
        newest = query.order == "newest"
        selector = ticket_filter(query)
        if after is not None:
            selector["sequence"] = {"$lt": after} if newest else {"$gt": after}
        cursor = (
            self.tickets.find(selector, _TICKET_FIELDS)
            .sort("sequence", DESCENDING if newest else ASCENDING)
            .limit(limit)
        )
        return [ticket_from_document(doc) async for doc in cursor]


def _nested(fields: Document) -> Document:
    """Turns `{"outbox.<id>": event}` update paths into nested fields of an inserted document."""
    nested: Document = {}
    for path, value in fields.items():
        head, _, rest = path.partition(".")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            nested[head] = value
    return nested


def _one_or_any(values: list[str]) -> Any:
    return values[0] if len(values) == 1 else {"$in": values}


def ticket_filter(query: TicketQuery) -> Document:
    """The MongoDB filter of a listing. Equality parts come first: they are what FerretDB
    hands down to its backend; ranges, $in and $regex it evaluates after reading."""
    selector: Document = {}
    if query.statuses:
        selector["status"] = _one_or_any([s.value for s in query.statuses])
    if query.team:
        selector["team"] = query.team
    if query.assignee_id:
        selector["assignee_id"] = query.assignee_id
    if query.channel:
        selector["channel"] = query.channel.value
    if query.requester_email:
        selector["requester.email"] = query.requester_email
    if query.sla_states:
        selector["sla_state"] = _one_or_any(list(query.sla_states))
    if query.priorities:
        selector["priority"] = _one_or_any([p.value for p in query.priorities])
    if query.tags:
        selector["tags"] = {"$all": list(query.tags)}
    for name, after, before in (
        ("created_at", query.created_after, query.created_before),
        ("updated_at", query.updated_after, query.updated_before),
    ):
        bounds: Document = {}
        if after:
            bounds["$gte"] = after
        if before:
            bounds["$lt"] = before
        if bounds:
            selector[name] = bounds
    if query.subject_contains:
        selector["subject"] = {"$regex": re.escape(query.subject_contains), "$options": "i"}
    return selector
