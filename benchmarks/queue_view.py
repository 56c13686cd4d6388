"""Queue views over many stored tickets: ListTickets latency as agents and team leads see it.

    .venv/bin/python -m benchmarks.queue_view --tickets 1000000     (or `make bench-queue`)

Fills a fresh database with synthetic tickets (written straight into intake's collection in
intake's own document shape, far faster than creating them one by one), starts intake on it
(which builds its indexes), then asks ListTickets for the views a help desk lives on, one
at a time, and reports latency per view:
  team    a team's queue: statuses new, open, pending; newest first; a page of 50
  agent   one agent's open tickets, newest first
  open    every open ticket, newest first
  next    the second page of the team view (a page token: a range on the ticket sequence)
About 85% of the stored tickets are resolved or closed, as in a help desk that has run for a
while. With `--database` an already filled database is reused (`--keep-data` keeps one).
Prints a table and writes JSON (default .local/bench/queue-view.json).
"""

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from pymongo import AsyncMongoClient

from benchmarks.launcher import LOCAL_DIR, IntakeProcess, LaunchError, infrastructure
from benchmarks.run import percentiles_ms
from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.tickets.v1 import tickets_pb2, tickets_pb2_grpc
from helpdesk.intake.domain import Category, Channel, Priority, Requester, Status, Ticket
from helpdesk.intake.mapping import ticket_to_document

if TYPE_CHECKING:
    from helpdesk.api.tickets.v1.tickets_pb2_grpc import TicketServiceAsyncStub as TicketStub

OPEN = [Status.NEW, Status.OPEN, Status.PENDING]
# Status mix of a desk that has run for a while: most tickets are done.
STATUS_WEIGHTS = {
    Status.CLOSED: 70,
    Status.RESOLVED: 15,
    Status.OPEN: 7,
    Status.NEW: 3,
    Status.PENDING: 3,
    Status.ON_HOLD: 2,
}
BATCH = 2000


def synthetic_ticket(n: int, teams: int, agents: int, rng: random.Random) -> dict[str, Any]:
    status = rng.choices(list(STATUS_WEIGHTS), weights=list(STATUS_WEIGHTS.values()))[0]
    created = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=30 * n)
    team = f"team-{rng.randrange(teams)}"
    ticket = Ticket(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"queue-bench:{n}")),
        number=f"HD-{n}",
        sequence=n,
        request_id=f"queue-bench-{n}",
        subject=f"Synthetic request {n}",
        description="A stored ticket for the queue-view benchmark.",
        requester=Requester(email=f"user{n % 50_000}@example.com"),
        priority=rng.choice(list(Priority)),
        category=rng.choice(list(Category)),
        channel=rng.choice(list(Channel)),
        status=status,
        tags=(),
        custom_fields={},
        created_at=created,
        updated_at=created,
        version=1,
        team=team,
        assignee_id=f"agent-{rng.randrange(agents)}" if status != Status.NEW else "",
    )
    return {**ticket_to_document(ticket), "history": [], "comments": []}


async def fill(uri: str, database: str, args: argparse.Namespace) -> float:
    """Inserts the synthetic tickets; their rate per second."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri, tz_aware=True)
    rng = random.Random(7)
    collection = client[database]["tickets"]
    started = time.monotonic()
    pending: set[asyncio.Task[Any]] = set()
    try:
        for first in range(1, args.tickets + 1, BATCH):
            last = min(first + BATCH, args.tickets + 1)
            docs = [synthetic_ticket(n, args.teams, args.agents, rng) for n in range(first, last)]
            pending.add(asyncio.create_task(collection.insert_many(docs, ordered=False)))
            if len(pending) >= 4:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            if (first // BATCH) % 50 == 0:
                print(f"  {last - 1:,} stored", flush=True)
        for task in pending:
            await task
        await client[database]["counters"].update_one(
            {"_id": "tickets"}, {"$set": {"value": args.tickets}}, upsert=True
        )
    finally:
        await client.close()
    return args.tickets / (time.monotonic() - started)


def view_request(view: str, rng: random.Random, args: argparse.Namespace, token: str) -> Any:
    statuses = [common_pb2.TicketStatus.Value(f"TICKET_STATUS_{s.name}") for s in OPEN]
    request = tickets_pb2.ListTicketsRequest(page_size=50, statuses=statuses, page_token=token)
    if view in ("team", "next"):
        request.team = f"team-{rng.randrange(args.teams)}"
    elif view == "agent":
        request.assignee_id = f"agent-{rng.randrange(args.agents)}"
    return request


async def measure(stub: "TicketStub", view: str, args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(view)
    latencies: list[float] = []
    rows = 0
    for _ in range(args.queries):
        request = view_request(view, rng, args, "")
        if view == "next":
            first = await stub.ListTickets(request, timeout=args.call_timeout)
            request.page_token = first.next_page_token
        started = time.perf_counter()
        reply = await stub.ListTickets(request, timeout=args.call_timeout)
        latencies.append(time.perf_counter() - started)
        rows += len(reply.tickets)
    return {
        "queries": args.queries,
        "rows_per_page": rows / args.queries,
        **percentiles_ms(latencies),
    }


async def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"tickets": args.tickets, "views": {}}
    with infrastructure() as infra:
        database = args.database or f"queue_{uuid.uuid4().hex[:8]}"
        if not args.database:
            print(f"storing {args.tickets:,} tickets in {database} ...", flush=True)
            results["fill_per_second"] = round(await fill(infra.mongodb_uri, database, args))
        intake = IntakeProcess(
            infra,
            database=database,
            group=f"queue-bench-{uuid.uuid4().hex[:8]}",
            log_path=LOCAL_DIR / "log" / f"intake-queue-{database}.log",
            log_level="warning",
        )
        print("starting intake (it builds its indexes first) ...", flush=True)
        started = time.monotonic()
        intake.start()
        try:
            await asyncio.to_thread(intake.wait_serving, 3600.0)
            results["start_seconds"] = round(time.monotonic() - started, 1)
            async with grpc.aio.insecure_channel(intake.target) as channel:
                stub: TicketStub = tickets_pb2_grpc.TicketServiceStub(channel)  # type: ignore[assignment]
                for view in args.views:
                    print(f"view {view}: {args.queries} queries", flush=True)
                    results["views"][view] = await measure(stub, view, args)
        finally:
            intake.stop()
            if not args.keep_data and not args.database:
                client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri)
                await client.drop_database(database)
                await client.close()
        results["infra"] = {"mongodb_uri": infra.mongodb_uri, "database": database}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--teams", type=int, default=50)
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--queries", type=int, default=50, help="per view")
    parser.add_argument("--views", nargs="+", default=["team", "agent", "open", "next"])
    parser.add_argument("--call-timeout", type=float, default=120.0)
    parser.add_argument("--database", default="", help="reuse this filled database")
    parser.add_argument("--keep-data", action="store_true")
    parser.add_argument("--out", type=Path, default=LOCAL_DIR / "queue-view.json")
    args = parser.parse_args(argv)
    try:
        results = asyncio.run(benchmark(args))
    except LaunchError as error:
        print(f"benchmark could not start: {error}", file=sys.stderr)
        return 2
    print(f"\n{args.tickets:,} stored tickets; fill {results.get('fill_per_second', '-')}/s")
    print(f"{'view':8} {'p50 ms':>10} {'p99 ms':>10} {'rows':>6}")
    for view, figures in results["views"].items():
        print(
            f"{view:8} {figures['p50_ms']:>10.1f} {figures['p99_ms']:>10.1f} "
            f"{figures['rows_per_page']:>6.1f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
