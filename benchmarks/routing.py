"""Routing's benchmark: how soon a created ticket is assigned, on real Kafka and FerretDB.

    .venv/bin/python -m benchmarks.routing     (or `make bench-routing`; --help for the knobs)

Starts intake and routing as real processes on databases of their own, gives routing one
team (it-l1), agents with room for every ticket of the run and one rule that sends every
ticket to the team, then creates tickets through intake's CreateTicket at a fixed rate (an
open loop: calls leave on a timetable whether or not earlier ones are back) and watches the
tickets topic for routing's TicketAssigned events. Per ticket it measures:
  from answer      the assigned event seen - CreateTicket answered
  from created_at  the assigned event seen - the ticket's created_at (intake's clock, the
                   same machine's)
Decisions per second: assigned events seen / time from the first to the last. At a fixed
rate this follows the rate for as long as routing keeps up; raise --rate to find where it
stops. The target is 200 tickets/s with p99 <= 100 ms; on two cores with FerretDB intake's
CreateTicket alone manages about 35/s, hence the default of 20/s.
Prints a table and writes JSON (default .local/bench/routing.json). Exits 1 if a call
failed or a created ticket was not assigned within --assign-timeout, 2 if the servers could
not be started.
"""

import argparse
import asyncio
import json
import math
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from aiokafka import AIOKafkaConsumer, TopicPartition
from google.protobuf import struct_pb2
from pymongo.errors import PyMongoError

from benchmarks.launcher import (
    LOCAL_DIR,
    Infra,
    IntakeProcess,
    LaunchError,
    ServiceProcess,
    infrastructure,
)
from benchmarks.run import (
    INTAKE_REQUESTS_TOPIC,
    RUN_ID,
    TICKET_EVENTS_TOPIC,
    Outcome,
    mongo_client,
    print_table,
    start_group_at_end,
    ticket_request,
    topic_partitions,
)
from helpdesk.api.events.v1 import ticket_events_pb2
from helpdesk.api.routing.v1 import routing_pb2, routing_pb2_grpc
from helpdesk.api.tickets.v1 import tickets_pb2_grpc

if TYPE_CHECKING:
    from helpdesk.api.routing.v1.routing_pb2_grpc import RoutingServiceAsyncStub as RoutingStub
    from helpdesk.api.tickets.v1.tickets_pb2_grpc import TicketServiceAsyncStub as TicketStub

SLA_EVENTS_TOPIC = "helpdesk.sla.events.v1"
TICKET_ASSIGNED_TYPE = b"helpdesk.ticket.assigned.v1"
TEAM = "it-l1"
# The most open tickets routing lets one agent hold; agents are added until every ticket
# of the run fits, so that none waits in the queue and the figures are routing's own.
AGENT_CAPACITY = 1000
TARGET_RATE, TARGET_P99_MS = 200.0, 100.0


@dataclass(frozen=True)
class Created:
    planned: float  # time.perf_counter() of the planned departure
    answered: float  # time.perf_counter() when CreateTicket answered
    warmup: bool


@dataclass(frozen=True)
class Assigned:
    seen: float  # time.perf_counter()
    seen_wall: float  # time.time(), to compare with the ticket's created_at
    created_at: float  # the ticket's created_at, seconds since the epoch
    agent_id: str


class AssignmentWatcher:
    """Notes the first TicketAssigned event naming an agent for each ticket of this run."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.assigned: dict[str, Assigned] = {}  # ticket id -> when and to whom
        # Assigned to the team's queue with no agent: capacity ran out, which this
        # benchmark is set up to avoid.
        self.queued: set[str] = set()

    async def __aenter__(self) -> "AssignmentWatcher":
        partitions = await topic_partitions(self._bootstrap, TICKET_EVENTS_TOPIC)
        if not partitions:
            raise LaunchError(f"topic {TICKET_EVENTS_TOPIC} does not exist (intake creates it)")
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap.split(","), enable_auto_commit=False
        )
        await consumer.start()
        self._consumer = consumer
        assigned = [TopicPartition(TICKET_EVENTS_TOPIC, p) for p in partitions]
        consumer.assign(assigned)
        try:
            await consumer.seek_to_end(*assigned)
            for tp in assigned:  # resolve the end now, before anything is created
                await consumer.position(tp)
        except BaseException:
            await consumer.stop()
            raise
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer:
            await self._consumer.stop()

    async def _read(self) -> None:
        assert self._consumer
        while True:
            batches = await self._consumer.getmany(timeout_ms=200)
            seen, seen_wall = time.perf_counter(), time.time()
            for records in batches.values():
                for record in records:
                    if dict(record.headers or ()).get("ce_type") != TICKET_ASSIGNED_TYPE:
                        continue
                    ticket = ticket_events_pb2.TicketAssigned.FromString(record.value).ticket
                    if ticket.custom_fields.get("bench_run") != RUN_ID:
                        continue
                    if not ticket.assignee_id:
                        self.queued.add(ticket.id)
                    elif ticket.id not in self.assigned:
                        created_at = ticket.created_at.seconds + ticket.created_at.nanos / 1e9
                        self.assigned[ticket.id] = Assigned(
                            seen, seen_wall, created_at, ticket.assignee_id
                        )

    async def wait_for(
        self, ticket_ids: Collection[str], timeout: float, services: Sequence[ServiceProcess]
    ) -> list[str]:
        """Waits until each of these is assigned; the ones still not at the timeout (or when
        a service has exited, since nothing more will come)."""
        deadline = time.monotonic() + timeout
        missing = [t for t in ticket_ids if t not in self.assigned]
        while missing and time.monotonic() < deadline:
            if self._task and self._task.done():
                self._task.result()  # the reader failed: say why rather than time out
            if not all(service.running() for service in services):
                break
            await asyncio.sleep(0.05)
            missing = [t for t in missing if t not in self.assigned]
        return missing


def struct(document: dict[str, Any]) -> struct_pb2.Struct:
    value = struct_pb2.Struct()
    value.update(document)
    return value


async def set_up_directory(stub: "RoutingStub", agents: int, call_timeout: float) -> None:
    """One L1 team, its agents online with room to spare, and a rule that sends it all."""
    team = {"id": TEAM, "name": "IT L1", "department": "it", "tier": "L1"}
    await stub.PutTeam(routing_pb2.PutTeamRequest(team=struct(team)), timeout=call_timeout)
    for n in range(agents):
        agent = {
            "id": f"agent-{n}",
            "name": f"Agent {n}",
            "email": f"agent{n}@example.com",
            "teams": [TEAM],
            "skills": [],
            "languages": [],
            "capacity": AGENT_CAPACITY,
            "availability": "online",
        }
        await stub.PutAgent(routing_pb2.PutAgentRequest(agent=struct(agent)), timeout=call_timeout)
    rule = {
        "id": "all",
        "name": "Everything to IT L1",
        "conditions": [],
        "actions": [{"type": "set_team", "team": TEAM}],
    }
    await stub.PutRule(routing_pb2.PutRuleRequest(rule=struct(rule)), timeout=call_timeout)


async def first_assignment(
    stub: "TicketStub",
    watcher: AssignmentWatcher,
    services: Sequence[ServiceProcess],
    *,
    timeout: float,
    call_timeout: float,
) -> float:
    """Creates one ticket and waits until it is assigned: routing's consumer has joined its
    group and the whole path works. Seconds it took; LaunchError if it never came."""
    began = time.perf_counter()
    ticket = await stub.CreateTicket(ticket_request("probe", 0), timeout=call_timeout)
    if await watcher.wait_for([ticket.id], timeout, services):
        raise LaunchError(
            f"the first ticket ({ticket.number}) was not assigned within {timeout:g} s; see "
            + ", ".join(str(s.log_path) for s in services)
        )
    return time.perf_counter() - began


async def create_tickets(
    stub: "TicketStub",
    outcome: Outcome,
    created: dict[str, Created],
    *,
    rate: float,
    warmup: float,
    seconds: float,
    call_timeout: float,
    services: Sequence[ServiceProcess],
) -> None:
    """CreateTicket at `rate` per second on one timetable: `warmup` seconds whose tickets
    are marked as such, then `seconds` that count. Latency from the planned departure.
    Stops early when a service has exited: what follows would only be refusals."""
    warm = int(rate * warmup)

    async def call(n: int, planned: float) -> None:
        request = ticket_request("routing", n)
        try:
            ticket = await stub.CreateTicket(request, timeout=call_timeout)
        except grpc.aio.AioRpcError as error:
            outcome.fail(f"CreateTicket {error.code().name}", error.details() or "")
            return
        answered = time.perf_counter()
        created[ticket.id] = Created(planned, answered, warmup=n < warm)
        if n >= warm:
            # From the timetable, not from when this task got to run: a late start is queueing.
            outcome.latencies.append(answered - planned)

    began = time.perf_counter()
    calls = []
    for n in range(warm + int(rate * seconds)):
        planned = began + n / rate
        delay = planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if not all(service.running() for service in services):
            break
        calls.append(asyncio.create_task(call(n, planned)))
    await asyncio.gather(*calls)
    outcome.seconds = time.perf_counter() - (began + warm / rate)


def assignment_outcomes(
    created: dict[str, Created], watcher: AssignmentWatcher
) -> tuple[Outcome, Outcome]:
    """Created -> assigned of the counted tickets, from CreateTicket's answer and from the
    ticket's created_at; seconds from the first assigned event seen to the last."""
    from_answer = Outcome("assigned", "created -> assigned, from CreateTicket answer")
    from_created = Outcome("assigned_created_at", "created -> assigned, from ticket.created_at")
    counted = [
        (watcher.assigned[t], c)
        for t, c in created.items()
        if not c.warmup and t in watcher.assigned
    ]
    from_answer.latencies = [a.seen - c.answered for a, c in counted]
    from_created.latencies = [a.seen_wall - a.created_at for a, _ in counted]
    if counted:
        span = max(a.seen for a, _ in counted) - min(a.seen for a, _ in counted)
        from_answer.seconds = from_created.seconds = span
        from_answer.extra["agents_used"] = len({a.agent_id for a, _ in counted})
    return from_answer, from_created


async def run_load(
    args: argparse.Namespace,
    infra: Infra,
    intake: ServiceProcess,
    routing: ServiceProcess,
    outcomes: list[Outcome],
    results: dict[str, Any],
) -> None:
    services = [intake, routing]
    async with (
        grpc.aio.insecure_channel(routing.target) as routing_channel,
        grpc.aio.insecure_channel(intake.target) as intake_channel,
    ):
        routing_stub: RoutingStub = routing_pb2_grpc.RoutingServiceStub(routing_channel)
        stub: TicketStub = tickets_pb2_grpc.TicketServiceStub(intake_channel)
        await set_up_directory(routing_stub, args.agents, args.call_timeout)

        async with AssignmentWatcher(infra.kafka) as watcher:
            results["first_assignment_seconds"] = round(
                await first_assignment(
                    stub,
                    watcher,
                    services,
                    timeout=args.assign_timeout,
                    call_timeout=args.call_timeout,
                ),
                3,
            )
            create = Outcome("create", f"CreateTicket at {args.rate:g}/s, from planned departure")
            outcomes.append(create)
            print(
                f"{create.title}: {args.warmup:g} s warm-up, then {args.duration:g} s",
                flush=True,
            )
            created: dict[str, Created] = {}
            await create_tickets(
                stub,
                create,
                created,
                rate=args.rate,
                warmup=args.warmup,
                seconds=args.duration,
                call_timeout=args.call_timeout,
                services=services,
            )
            missing = await watcher.wait_for(created, args.assign_timeout, services)

    from_answer, from_created = assignment_outcomes(created, watcher)
    outcomes.extend([from_answer, from_created])
    queued = [t for t in missing if t in watcher.queued]
    from_answer.extra.update(never_assigned=len(missing), queued_without_agent=len(queued))
    for service in services:
        if not service.running():
            from_answer.fail(f"{service.name} exited", f"see {service.log_path}")
    for ticket_id in missing:
        from_answer.fail(
            "never assigned",
            f"no TicketAssigned naming an agent within {args.assign_timeout:g} s for ticket "
            f"{ticket_id}; see {routing.log_path}",
        )


async def benchmark(
    args: argparse.Namespace,
    infra: Infra,
    started: list[ServiceProcess],
    outcomes: list[Outcome],
    results: dict[str, Any],
) -> None:
    """Starts intake, then routing at the end of the topics it reads, runs the load, stops
    both."""
    intake_db, routing_db = f"bench_{RUN_ID}", f"bench_routing_{RUN_ID}"
    intake_group, routing_group = f"bench-intake-{RUN_ID}", f"bench-routing-{RUN_ID}"
    log_dir = LOCAL_DIR / "log"
    await start_group_at_end(infra.kafka, INTAKE_REQUESTS_TOPIC, intake_group)
    intake = IntakeProcess(
        infra,
        database=intake_db,
        group=intake_group,
        log_path=log_dir / f"intake-routing-{RUN_ID}.log",
        log_level=args.log_level,
    )
    try:
        print(f"starting intake (database {intake_db}, log {intake.log_path})", flush=True)
        started.append(intake)
        intake.start()
        await asyncio.to_thread(intake.wait_serving)
        # Routing reads from the earliest offset when its group is new; on a shared Kafka
        # that would route every ticket earlier runs left (intake creates the tickets topic,
        # so this comes after it is up; routing creates the SLA topic if it is missing).
        for topic in (TICKET_EVENTS_TOPIC, SLA_EVENTS_TOPIC):
            await start_group_at_end(infra.kafka, topic, routing_group)
        routing = ServiceProcess(
            infra,
            name="routing",
            database=routing_db,
            log_path=log_dir / f"routing-{RUN_ID}.log",
            log_level=args.log_level,
            env={
                "HELPDESK_INTAKE_TARGET": intake.target,
                "HELPDESK_ROUTING_CONSUMER_GROUP": routing_group,
            },
        )
        print(f"starting routing (database {routing_db}, log {routing.log_path})", flush=True)
        started.append(routing)
        routing.start()
        await asyncio.to_thread(routing.wait_serving)
        await run_load(args, infra, intake, routing, outcomes, results)
    finally:
        # Routing first: it calls intake.
        for service in reversed(started):
            code = await asyncio.to_thread(service.stop)
            if code not in (0, None):
                print(f"{service.name} exited with {code}; see {service.log_path}", file=sys.stderr)

    if not args.keep_data:
        client = mongo_client(infra, 30.0)
        try:
            for database in (intake_db, routing_db):
                await client.drop_database(database)
        except PyMongoError as error:
            print(f"could not drop the databases: {error!r:.200}", file=sys.stderr)
        finally:
            await client.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.routing",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rate", type=float, default=20.0, help="tickets created per second")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds that count")
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="seconds at the rate before counting"
    )
    parser.add_argument(
        "--agents",
        type=int,
        default=10,
        help="agents in the team (more are added when the run's tickets would not fit)",
    )
    parser.add_argument(
        "--assign-timeout",
        type=float,
        default=60.0,
        help="seconds to wait, after the last ticket is created, for it to be assigned",
    )
    parser.add_argument("--call-timeout", type=float, default=10.0, help="gRPC deadline, s")
    parser.add_argument("--out", type=Path, default=LOCAL_DIR / "routing.json")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--keep-data", action="store_true", help="keep the bench_*<run> databases afterwards"
    )
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0 or args.warmup < 0 or args.agents < 1:
        parser.error("--rate, --duration and --agents must be positive, --warmup not negative")
    tickets = int(args.rate * args.warmup) + int(args.rate * args.duration) + 1
    args.agents = max(args.agents, math.ceil(tickets / AGENT_CAPACITY))
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM ends the run like Ctrl-C: the finally blocks stop the services and the servers.
    signal.signal(signal.SIGTERM, _interrupt)
    started_at = datetime.now(UTC)
    began = time.monotonic()
    load_before = os.getloadavg()
    started: list[ServiceProcess] = []
    outcomes: list[Outcome] = []
    results: dict[str, Any] = {}
    try:
        with infrastructure() as infra:
            try:
                asyncio.run(benchmark(args, infra, started, outcomes, results))
            finally:
                # Already stopped unless the event loop was torn down first; stop is idempotent.
                for service in reversed(started):
                    service.stop()
    except LaunchError as error:
        print(f"benchmark could not start: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted; intake, routing and the servers it started are stopped", file=sys.stderr
        )
        return 130
    total = time.monotonic() - began

    print()
    print_table(outcomes)
    summaries = {o.key: o.summary() for o in outcomes}
    assigned = summaries.get("assigned")
    errors: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for outcome in outcomes:
        for kind, count in outcome.errors.items():
            errors[f"{outcome.key}: {kind}"] += count
            examples[f"{outcome.key}: {kind}"] = outcome.examples[kind]
    if assigned and assigned["p99_ms"] is not None:
        met = (
            args.rate >= TARGET_RATE
            and (assigned["per_second"] or 0) >= TARGET_RATE
            and assigned["p99_ms"] <= TARGET_P99_MS
            and not errors
        )
        print(
            f"\nrouting: {assigned['requests']} decisions at {assigned['per_second']:g}/s; "
            f"created -> assigned p50 {assigned['p50_ms']:.1f} ms, p99 "
            f"{assigned['p99_ms']:.1f} ms at {args.rate:g} tickets/s "
            f"({args.agents} agents, first assignment after "
            f"{results.get('first_assignment_seconds', 0):.1f} s)"
        )
        print(
            f"target {TARGET_RATE:g}/s with p99 <= {TARGET_P99_MS:g} ms: "
            f"{'met' if met else 'not met'}"
        )
    print(f"total run time {total:.0f} s (load average before the run: {load_before[0]:.2f})")

    results = {
        "run_id": RUN_ID,
        "started_at": started_at.isoformat(),
        "total_seconds": round(total, 1),
        "machine": {"cpus": os.cpu_count(), "load_average_before": load_before},
        "infra": {"kafka": infra.kafka, "mongodb_uri": infra.mongodb_uri, "private": infra.private},
        "settings": {**vars(args), "out": str(args.out)},
        "directory": {"team": TEAM, "agents": args.agents, "capacity": AGENT_CAPACITY},
        **results,
        "scenarios": summaries,
        "errors": dict(errors),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {args.out}")

    if errors:
        never = assigned["never_assigned"] if assigned else 0
        if never:
            print(f"\n{never} created tickets were never assigned", file=sys.stderr)
        print("\nFAILED, by kind:", file=sys.stderr)
        for kind, count in errors.most_common():
            print(f"  {count:6d}  {kind}  (e.g. {examples[kind]})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
