"""Routing's MongoDB repository: the directory (teams, agents), the rules, each open
ticket's placement, and capacity slots.

Capacity is enforced with slots, not a counter: an agent with capacity 5 has slots
`<agent>#0` .. `<agent>#4`, and taking a ticket inserts one of those documents. An insert
by `_id` is atomic on MongoDB and on FerretDB alike (FerretDB does not isolate concurrent
conditional updates of one document, so a `$inc` under `$lt` could overbook), so two
routing replicas can never give an agent more tickets than their capacity.
"""

import time
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from helpdesk.core.cache import Snapshot
from helpdesk.core.mongo import ensure_indexes, store_precision
from helpdesk.routing.domain.assignment import AgentLoad
from helpdesk.routing.domain.directory import (
    Agent,
    Availability,
    Team,
    dump_agent,
    dump_team,
    parse_agent,
    parse_team,
)
from helpdesk.routing.domain.rules import Rule, dump_rule, parse_rule

Document = dict[str, Any]


class RoutingStore:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.teams = database["teams"]
        self.agents = database["agents"]
        self.rules = database["routing_rules"]
        # One document per ticket routing has seen open: where it is and whether it waits.
        self.placements = database["placements"]
        # One document per ticket an agent holds: `<agent>#<n>`, n below their capacity.
        self.slots = database["capacity_slots"]
        # Teams and rules change rarely and are read for every decision.
        self._teams = Snapshot(self._load_teams)
        self._rules = Snapshot(self._load_rules)

    async def create_indexes(self) -> None:
        await ensure_indexes(
            self.slots,
            [
                IndexModel([("agent_id", ASCENDING)], name="agent"),
                IndexModel([("ticket_id", ASCENDING)], name="ticket"),
            ],
        )
        await ensure_indexes(
            self.placements,
            [IndexModel([("team", ASCENDING), ("waiting", ASCENDING)], name="team_waiting")],
        )

    # ---- directory and rules

    async def put_team(self, team: Team) -> None:
        await self.teams.replace_one(
            {"_id": team.id}, {"definition": dump_team(team), "updated_at": _now()}, upsert=True
        )
        self._teams.drop()

    async def all_teams(self) -> list[Team]:
        return list(await self._teams.get())

    async def _load_teams(self) -> list[Team]:
        return [parse_team(doc["definition"]) async for doc in self.teams.find({})]

    async def put_agent(self, agent: Agent) -> None:
        await self.agents.update_one(
            {"_id": agent.id},
            {"$set": {"definition": dump_agent(agent), "updated_at": _now()}},
            upsert=True,
        )

    async def agent(self, agent_id: str) -> Agent | None:
        doc = await self.agents.find_one({"_id": agent_id})
        return parse_agent(doc["definition"]) if doc else None

    async def set_availability(self, agent_id: str, availability: Availability) -> None:
        await self.agents.update_one(
            {"_id": agent_id}, {"$set": {"definition.availability": availability.value}}
        )

    async def all_agents(self) -> list[Agent]:
        return [parse_agent(doc["definition"]) async for doc in self.agents.find({})]

    async def put_rule(self, rule: Rule) -> None:
        await self.rules.replace_one(
            {"_id": rule.id}, {"definition": dump_rule(rule), "updated_at": _now()}, upsert=True
        )
        self._rules.drop()

    async def delete_rule(self, rule_id: str) -> bool:
        self._rules.drop()
        return (await self.rules.delete_one({"_id": rule_id})).deleted_count == 1

    async def all_rules(self) -> list[Rule]:
        return list(await self._rules.get())

    async def _load_rules(self) -> list[Rule]:
        return [parse_rule(doc["definition"]) async for doc in self.rules.find({})]

    # ---- load and capacity

    async def loads(self) -> list[AgentLoad]:
        """Every agent with their open tickets and when they were last given one."""
        counts: dict[str, int] = {}
        async for slot in self.slots.find({}, {"agent_id": 1}):
            counts[slot["agent_id"]] = counts.get(slot["agent_id"], 0) + 1
        return [
            AgentLoad(
                agent=parse_agent(doc["definition"]),
                open_tickets=counts.get(doc["_id"], 0),
                last_assigned_at=doc.get("last_assigned_at"),
                last_assigned_seq=int(doc.get("last_assigned_seq", 0)),
            )
            async for doc in self.agents.find({})
        ]

    async def holder(self, ticket_id: str) -> str | None:
        """The agent whose slot the ticket holds, if any."""
        slot = await self.slots.find_one({"ticket_id": ticket_id})
        return str(slot["agent_id"]) if slot else None

    async def reserve(self, agent_id: str, capacity: int, ticket_id: str) -> bool:
        """Takes one of the agent's free slots for the ticket; False when all are taken.
        Idempotent: a ticket that already holds one of the agent's slots keeps it."""
        taken: set[str] = set()
        async for doc in self.slots.find({"agent_id": agent_id}, {"_id": 1, "ticket_id": 1}):
            if doc.get("ticket_id") == ticket_id:
                return True
            taken.add(doc["_id"])
        for n in range(capacity):
            slot_id = f"{agent_id}#{n}"
            if slot_id in taken:
                continue
            try:
                await self.slots.insert_one(
                    {"_id": slot_id, "agent_id": agent_id, "ticket_id": ticket_id, "at": _now()}
                )
            except DuplicateKeyError:
                continue  # another replica took it a moment ago
            await self.agents.update_one(
                {"_id": agent_id},
                {"$set": {"last_assigned_at": _now(), "last_assigned_seq": time.time_ns()}},
            )
            return True
        return False

    async def release(self, ticket_id: str) -> str | None:
        """Frees the slot the ticket holds; the agent it freed, if any."""
        slot = await self.slots.find_one_and_delete({"ticket_id": ticket_id})
        return str(slot["agent_id"]) if slot else None

    async def release_from(self, ticket_id: str, agent_id: str) -> None:
        """Frees the slot of this agent the ticket holds (it moved to someone else)."""
        await self.slots.delete_one({"ticket_id": ticket_id, "agent_id": agent_id})

    async def tickets_of(self, agent_id: str) -> list[str]:
        return [
            str(doc["ticket_id"])
            async for doc in self.slots.find({"agent_id": agent_id}).sort("at", ASCENDING)
        ]

    # ---- placements: where each open ticket is

    async def placement(self, ticket_id: str) -> Document | None:
        return await self.placements.find_one({"_id": ticket_id})

    async def place(self, ticket_id: str, fields: Document) -> None:
        await self.placements.update_one(
            {"_id": ticket_id},
            {"$set": {**fields, "updated_at": _now()}, "$setOnInsert": {"since": _now()}},
            upsert=True,
        )

    async def forget(self, ticket_id: str) -> None:
        await self.placements.delete_one({"_id": ticket_id})

    async def waiting(self, team: str) -> list[Document]:
        """Tickets waiting in a team's queue, oldest first."""
        cursor = self.placements.find({"team": team, "waiting": True}).sort("since", ASCENDING)
        return [doc async for doc in cursor]

    async def waiting_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        async for doc in self.placements.find({"waiting": True}, {"team": 1}):
            counts[doc["team"]] = counts.get(doc["team"], 0) + 1
        return counts


def _now() -> datetime:
    return store_precision(datetime.now(UTC))
