"""The help desk benchmark: intake's CreateTicket and intake topic on real Kafka and FerretDB.

    .venv/bin/python -m benchmarks.run          (or `make bench`; --help for the knobs)

Scenarios, one after another against one intake process:
  A  CreateTicket, closed loop: a fixed number of callers, each calling again as soon as
     its answer is back, for a fixed time after a warm-up. Throughput and latency.
  B  CreateTicket, open loop at a fixed rate: calls leave on a timetable whether or not
     earlier ones are back, and latency counts from the planned departure, so a slow
     server is charged for the queue it causes (no coordinated omission). B' is the same
     calls measured until their TicketCreated event is seen on the tickets topic.
  C  End to end through Kafka: a burst of JSON requests on the intake topic, timed until
     every TicketCreated event (matched by ticket.request_id) is seen on the tickets topic.
  R  Reference, measured first while nothing else runs: FerretDB's raw insert_one rate at
     A's concurrency, to show how much of A is the database.
Prints a table and writes the numbers as JSON (default .local/bench/results.json). Exits 1
if any request failed (errors are printed by kind), 2 if the servers could not be started.
"""

import argparse
import asyncio
import itertools
import json
import os
import signal
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from benchmarks.launcher import LOCAL_DIR, Infra, IntakeProcess, LaunchError, infrastructure
from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.events.v1 import ticket_events_pb2
from helpdesk.api.tickets.v1 import tickets_pb2, tickets_pb2_grpc

if TYPE_CHECKING:
    # The asyncio flavour of the stub is typed in the generated .pyi only.
    from helpdesk.api.tickets.v1.tickets_pb2_grpc import TicketServiceAsyncStub as TicketStub

INTAKE_REQUESTS_TOPIC = "helpdesk.intake.requests.v1"
TICKET_EVENTS_TOPIC = "helpdesk.tickets.events.v1"
TICKET_CREATED_TYPE = b"helpdesk.ticket.created.v1"

# Every request id of this run starts with this, so that its events can be told apart from
# other traffic on a shared Kafka.
RUN_ID = uuid.uuid4().hex[:8]
REQUEST_PREFIX = f"bench-{RUN_ID}-"

DESCRIPTION = (
    "Since this morning the VPN client disconnects every few minutes and asks for the "
    "password again. Colleagues on the same floor see the same. Laptop restarted, no change."
)


@dataclass
class Outcome:
    """What one scenario measured: latencies of the requests that succeeded, and failures."""

    key: str
    title: str
    latencies: list[float] = field(default_factory=list)  # seconds
    seconds: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def fail(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        self.examples.setdefault(kind, detail[:300])

    def summary(self) -> dict[str, Any]:
        requests = len(self.latencies)
        return {
            "scenario": self.title,
            "requests": requests,
            "errors": sum(self.errors.values()),
            "seconds": round(self.seconds, 3),
            "per_second": round(requests / self.seconds, 1) if self.seconds else None,
            **percentiles_ms(self.latencies),
            "error_kinds": dict(self.errors),
            **self.extra,
        }


def percentiles_ms(latencies: list[float]) -> dict[str, float | None]:
    if not latencies:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    if len(latencies) == 1:
        cuts = latencies * 99
    else:
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49] * 1000, 2),
        "p95_ms": round(cuts[94] * 1000, 2),
        "p99_ms": round(cuts[98] * 1000, 2),
        "max_ms": round(max(latencies) * 1000, 2),
    }


def subject(scenario: str, n: int) -> str:
    # Unique within the run: intake folds a repeated subject from the same requester into
    # the open ticket (its dedup window), which would open no ticket and send no event.
    return f"VPN drops every few minutes ({scenario} {n})"


def ticket_request(scenario: str, n: int) -> tickets_pb2.CreateTicketRequest:
    """A realistic, valid request that opens a new ticket (unique request id and subject)."""
    return tickets_pb2.CreateTicketRequest(
        request_id=f"{REQUEST_PREFIX}{scenario}-{n}",
        subject=subject(scenario, n),
        description=DESCRIPTION,
        requester=common_pb2.Requester(email=f"user{n % 500}@example.com", name="Bench User"),
        priority=common_pb2.PRIORITY_NORMAL,
        category=common_pb2.CATEGORY_INCIDENT,
        tags=["bench", "vpn"],
        custom_fields={"bench_run": RUN_ID},
    )


def intake_message(n: int) -> dict[str, Any]:
    """The same request as JSON for the intake topic."""
    return {
        "request_id": f"{REQUEST_PREFIX}c-{n}",
        "subject": subject("c", n),
        "description": DESCRIPTION,
        "requester": {"email": f"user{n % 500}@example.com", "name": "Bench User"},
        "priority": "normal",
        "category": "incident",
        "tags": ["bench", "vpn"],
        "custom_fields": {"bench_run": RUN_ID},
    }


# ---------------------------------------------------------------------------- Kafka helpers


async def topic_partitions(bootstrap: str, topic: str) -> list[int]:
    """The partitions of a topic, [] if it does not exist (and without creating it: the
    broker auto-creates topics that a client asks metadata for by name)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    await admin.start()
    try:
        if topic not in await admin.list_topics():
            return []
        (described,) = await admin.describe_topics([topic])
        return sorted(p["partition"] for p in described["partitions"])
    finally:
        await admin.close()


async def start_group_at_end(bootstrap: str, topic: str, group: str) -> None:
    """Commits the group's offsets at the topic's end, so that intake (which starts a new
    group at the earliest offset) skips what earlier runs left on a shared Kafka."""
    partitions = await topic_partitions(bootstrap, topic)
    if not partitions:
        return
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap.split(","), group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(assigned)
        await consumer.commit(await consumer.end_offsets(assigned))
    finally:
        await consumer.stop()


class EventWatcher:
    """Notes when each TicketCreated event of this run arrives on the tickets topic."""

    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self.arrivals: dict[str, float] = {}  # request id -> time.perf_counter()

    async def __aenter__(self) -> "EventWatcher":
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
            for tp in assigned:  # resolve the end now, before anything is sent
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
            arrived = time.perf_counter()
            for records in batches.values():
                for record in records:
                    if dict(record.headers or ()).get("ce_type") != TICKET_CREATED_TYPE:
                        continue
                    event = ticket_events_pb2.TicketCreated.FromString(record.value)
                    request_id = event.ticket.request_id
                    if request_id.startswith(REQUEST_PREFIX):
                        self.arrivals.setdefault(request_id, arrived)

    async def wait_for(self, request_ids: Collection[str], timeout: float) -> list[str]:
        """Waits until every one of these has arrived; the ones still missing at the timeout."""
        deadline = time.monotonic() + timeout
        missing = [r for r in request_ids if r not in self.arrivals]
        while missing and time.monotonic() < deadline:
            if self._task and self._task.done():
                self._task.result()  # the reader failed: say why rather than time out
            await asyncio.sleep(0.05)
            missing = [r for r in missing if r not in self.arrivals]
        return missing


# ---------------------------------------------------------------------------- scenarios


async def closed_loop(
    stub: "TicketStub",
    outcome: Outcome,
    *,
    concurrency: int,
    seconds: float,
    call_timeout: float,
    numbers: Iterator[int],
) -> None:
    """`concurrency` callers, each calling again as soon as its answer is back."""
    end = time.monotonic() + seconds

    async def caller() -> None:
        while time.monotonic() < end:
            request = ticket_request("a", next(numbers))
            started = time.perf_counter()
            try:
                await stub.CreateTicket(request, timeout=call_timeout)
            except grpc.aio.AioRpcError as error:
                outcome.fail(f"CreateTicket {error.code().name}", error.details() or "")
                await asyncio.sleep(0.05)  # a refusing server must not turn this into a spin
                continue
            outcome.latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    # Until the last answer, not the planned end: the calls in flight at the end count.
    outcome.seconds = time.perf_counter() - began


async def open_loop(
    stub: "TicketStub",
    outcome: Outcome,
    *,
    rate: float,
    seconds: float,
    call_timeout: float,
) -> dict[str, float]:
    """Calls at `rate` per second on a timetable; the planned departure of each success."""
    departures: dict[str, float] = {}

    async def call(n: int, planned: float) -> None:
        request = ticket_request("b", n)
        try:
            await stub.CreateTicket(request, timeout=call_timeout)
        except grpc.aio.AioRpcError as error:
            outcome.fail(f"CreateTicket {error.code().name}", error.details() or "")
            return
        # From the timetable, not from when this task got to run: a late start is queueing.
        outcome.latencies.append(time.perf_counter() - planned)
        departures[request.request_id] = planned

    began = time.perf_counter()
    calls = []
    for n in range(int(rate * seconds)):
        planned = began + n / rate
        delay = planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        calls.append(asyncio.create_task(call(n, planned)))
    await asyncio.gather(*calls)
    outcome.seconds = time.perf_counter() - began
    return departures


def event_outcome(
    key: str, title: str, departures: dict[str, float], watcher: EventWatcher
) -> Outcome:
    """Latency from each departure to its TicketCreated event; seconds from the first
    departure to the last event."""
    outcome = Outcome(key, title)
    arrived = [(r, watcher.arrivals[r]) for r in departures if r in watcher.arrivals]
    outcome.latencies = [at - departures[r] for r, at in arrived]
    if arrived:
        outcome.seconds = max(at for _, at in arrived) - min(departures.values())
    return outcome


async def through_kafka(
    infra: Infra, outcome: Outcome, watcher: EventWatcher, *, messages: int, timeout: float
) -> None:
    """A burst of JSON requests on the intake topic, timed until all their events arrive."""
    producer = AIOKafkaProducer(
        bootstrap_servers=infra.kafka.split(","), acks="all", enable_idempotence=True
    )
    await producer.start()
    departures: dict[str, float] = {}
    acks: dict[str, asyncio.Future[Any]] = {}
    try:
        began = time.perf_counter()
        for n in range(messages):
            message = intake_message(n)
            request_id = message["request_id"]
            departures[request_id] = time.perf_counter()
            try:
                # `send` only queues (it waits while the buffer is full); the acks are
                # awaited together below, so the producer batches as it does under load.
                acks[request_id] = await producer.send(
                    INTAKE_REQUESTS_TOPIC,
                    json.dumps(message).encode(),
                    key=request_id.encode(),
                    headers=[("content-type", b"application/json")],
                )
            except Exception as error:
                outcome.fail(f"produce {type(error).__name__}", str(error))
                del departures[request_id]
        results = await asyncio.gather(*acks.values(), return_exceptions=True)
        outcome.extra["produce_seconds"] = round(time.perf_counter() - began, 3)
    finally:
        await producer.stop()
    for request_id, result in zip(acks, results, strict=True):
        if isinstance(result, BaseException):
            outcome.fail(f"produce {type(result).__name__}", str(result))
            del departures[request_id]

    missing = await watcher.wait_for(departures, timeout)
    for request_id in missing:
        outcome.fail(
            "no TicketCreated event in time",
            f"none within {timeout:g} s for {request_id}; intake dead-letters requests it "
            "refuses to helpdesk.dlq.<group>.v1",
        )
    measured = event_outcome(outcome.key, outcome.title, departures, watcher)
    outcome.latencies, outcome.seconds = measured.latencies, measured.seconds


def mongo_client(infra: Infra, timeout: float) -> AsyncMongoClient[dict[str, Any]]:
    # A deadline on every operation: a wedged server must fail the run, not hang it.
    return AsyncMongoClient(infra.mongodb_uri, timeoutMS=int(timeout * 1000))


async def raw_inserts(
    infra: Infra,
    outcome: Outcome,
    *,
    database: str,
    concurrency: int,
    seconds: float,
    timeout: float,
) -> None:
    """FerretDB's own single-document insert rate, into a collection dropped afterwards."""
    client = mongo_client(infra, timeout)
    collection = client[database][f"raw_insert_{RUN_ID}"]
    end = time.monotonic() + seconds

    async def writer(w: int) -> None:
        n = 0
        while time.monotonic() < end:
            n += 1
            # About the size and shape of a stored ticket, without its outbox.
            document = {
                "request_id": f"{REQUEST_PREFIX}r-{w}-{n}",
                "subject": subject(f"r{w}", n),
                "description": DESCRIPTION,
                "requester": {"email": f"user{n % 500}@example.com", "name": "Bench User"},
                "priority": "normal",
                "tags": ["bench", "vpn"],
                "created_at": datetime.now(UTC),
            }
            started = time.perf_counter()
            try:
                await collection.insert_one(document)
            except PyMongoError as error:
                outcome.fail(f"insert_one {type(error).__name__}", str(error))
                await asyncio.sleep(0.05)
                continue
            outcome.latencies.append(time.perf_counter() - started)

    try:
        # The first insert creates the collection (a table in FerretDB): not part of the rate.
        await collection.insert_one({"warm_up": True})
        end = time.monotonic() + seconds
        began = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(concurrency)))
        outcome.seconds = time.perf_counter() - began
        await collection.drop()
    except PyMongoError as error:
        outcome.fail(f"FerretDB {type(error).__name__}", str(error))
    finally:
        await client.close()


# ---------------------------------------------------------------------------- the run


async def still_serving(intake: IntakeProcess, scenario: str, outcomes: list[Outcome]) -> bool:
    """Whether intake is healthy enough for the next scenario; if not, a failure saying so
    (a scenario against a server whose database is away only collects timeouts)."""
    for _ in range(10):  # its health follows its dependencies, checked every few seconds
        if await asyncio.to_thread(intake.serving):
            return True
        await asyncio.sleep(1.0)
    skipped = Outcome(scenario.lower(), f"{scenario} skipped: intake not SERVING")
    skipped.fail("intake not SERVING", f"see {intake.log_path}")
    outcomes.append(skipped)
    print(f"{scenario} skipped: intake is not SERVING (see {intake.log_path})", flush=True)
    return False


async def run_scenarios(
    args: argparse.Namespace, infra: Infra, intake: IntakeProcess, outcomes: list[Outcome]
) -> None:
    """A, B and C against a SERVING intake, appending each outcome as it starts."""
    async with grpc.aio.insecure_channel(intake.target) as channel:
        stub = tickets_pb2_grpc.TicketServiceStub(channel)

        if "a" in args.scenarios:
            a = Outcome("a", f"A CreateTicket closed loop, {args.concurrency} callers")
            outcomes.append(a)
            print(f"{a.title}: {args.warmup:g} s warm-up, then {args.duration:g} s", flush=True)
            numbers = itertools.count()
            settings = {"concurrency": args.concurrency, "call_timeout": args.call_timeout}
            await closed_loop(stub, a, seconds=args.warmup, numbers=numbers, **settings)
            a.latencies.clear()  # failures in the warm-up stay counted
            await closed_loop(stub, a, seconds=args.duration, numbers=numbers, **settings)

        if "b" in args.scenarios and await still_serving(intake, "B", outcomes):
            b = Outcome("b", f"B CreateTicket at {args.rate:g}/s")
            outcomes.append(b)
            print(f"{b.title}: {args.rate_duration:g} s", flush=True)
            async with EventWatcher(infra.kafka) as watcher:
                departures = await open_loop(
                    stub,
                    b,
                    rate=args.rate,
                    seconds=args.rate_duration,
                    call_timeout=args.call_timeout,
                )
                missing = await watcher.wait_for(departures, args.event_timeout)
            title = f"B' CreateTicket -> TicketCreated at {args.rate:g}/s"
            b_event = event_outcome("b_event", title, departures, watcher)
            for request_id in missing:
                b_event.fail("no TicketCreated event in time", request_id)
            outcomes.append(b_event)

        if "c" in args.scenarios and await still_serving(intake, "C", outcomes):
            c = Outcome("c", f"C intake topic -> TicketCreated, {args.messages} at once")
            outcomes.append(c)
            print(c.title, flush=True)
            async with EventWatcher(infra.kafka) as watcher:
                await through_kafka(
                    infra, c, watcher, messages=args.messages, timeout=args.event_timeout
                )


async def benchmark(args: argparse.Namespace, infra: Infra, outcomes: list[Outcome]) -> None:
    """Measures FerretDB alone, then starts intake, runs the chosen scenarios, stops it."""
    database, group = f"bench_{RUN_ID}", f"bench-intake-{RUN_ID}"
    # The reference first, while nothing else runs: it stays valid when intake's scenarios
    # leave the database in a bad state. Listed last, under what it is a reference for.
    reference = None
    if "raw" in args.scenarios:
        reference = Outcome("raw", f"R FerretDB insert_one, {args.concurrency} writers")
        print(f"{reference.title}: {args.raw_duration:g} s", flush=True)
        await raw_inserts(
            infra,
            reference,
            database=database,
            concurrency=args.concurrency,
            seconds=args.raw_duration,
            timeout=args.call_timeout,
        )

    await start_group_at_end(infra.kafka, INTAKE_REQUESTS_TOPIC, group)
    intake = IntakeProcess(
        infra,
        database=database,
        group=group,
        log_path=LOCAL_DIR / "log" / f"intake-{RUN_ID}.log",
        log_level=args.intake_log_level,
    )
    print(f"starting intake (database {database}, log {intake.log_path})", flush=True)
    intake.start()
    try:
        await asyncio.to_thread(intake.wait_serving)
        await run_scenarios(args, infra, intake, outcomes)
    finally:
        if reference:
            outcomes.append(reference)
        code = await asyncio.to_thread(intake.stop)
        if code not in (0, None):
            print(f"intake exited with {code}; see {intake.log_path}", file=sys.stderr)

    if not args.keep_data:
        client = mongo_client(infra, 30.0)
        try:
            await client.drop_database(database)
        except PyMongoError as error:
            print(f"could not drop database {database}: {error!r:.200}", file=sys.stderr)
        finally:
            await client.close()


def print_rows(rows: Sequence[Sequence[str]]) -> None:
    """A table: the first row is the header, the first column left-aligned, the rest right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print(" | ".join(cells))
        if i == 0:
            print("-+-".join("-" * w for w in widths))


def print_table(outcomes: list[Outcome]) -> None:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    rows = [("scenario", "requests", "seconds", "per second", "p50 ms", "p99 ms")]
    for outcome in outcomes:
        s = outcome.summary()
        rate = "-" if s["per_second"] is None else f"{s['per_second']:.1f}"
        rows.append(
            (
                outcome.title,
                str(s["requests"]),
                f"{s['seconds']:.1f}",
                rate,
                ms(s["p50_ms"]),
                ms(s["p99_ms"]),
            )
        )
    print_rows(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--concurrency", type=int, default=32, help="callers in A and R")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of A")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before A counts")
    parser.add_argument("--rate", type=float, default=100.0, help="calls per second in B")
    parser.add_argument("--rate-duration", type=float, default=15.0, help="seconds of B")
    parser.add_argument("--messages", type=int, default=3000, help="requests produced in C")
    parser.add_argument(
        "--event-timeout",
        type=float,
        default=60.0,
        help="seconds to wait for the last TicketCreated event in B' and C",
    )
    parser.add_argument("--raw-duration", type=float, default=10.0, help="seconds of R")
    parser.add_argument("--call-timeout", type=float, default=10.0, help="gRPC deadline, s")
    parser.add_argument(
        "--scenarios",
        type=lambda text: {s.strip().lower() for s in text.split(",") if s.strip()},
        default={"a", "b", "c", "raw"},
        help="which to run, e.g. a,b (default: a,b,c,raw)",
    )
    parser.add_argument("--out", type=Path, default=LOCAL_DIR / "results.json")
    parser.add_argument(
        "--intake-log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--keep-data", action="store_true", help="keep the bench_<run> database afterwards"
    )
    args = parser.parse_args(argv)
    unknown = args.scenarios - {"a", "b", "c", "raw"}
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM ends the run like Ctrl-C: the finally blocks stop intake and the servers.
    signal.signal(signal.SIGTERM, _interrupt)
    started_at = datetime.now(UTC)
    began = time.monotonic()
    load_before = os.getloadavg()
    outcomes: list[Outcome] = []
    try:
        with infrastructure() as infra:
            asyncio.run(benchmark(args, infra, outcomes))
    except LaunchError as error:
        print(f"benchmark could not start: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; intake and the servers it started are stopped", file=sys.stderr)
        return 130
    total = time.monotonic() - began

    print()
    print_table(outcomes)
    b = next((o.summary() for o in outcomes if o.key == "b"), None)
    if b and b["p99_ms"] is not None:
        verdict = "met" if args.rate >= 100 and b["p99_ms"] <= 50 and not b["errors"] else "not met"
        print(
            f"\nB: p99 {b['p99_ms']:.1f} ms at {args.rate:g}/s; "
            f"target for later p99 <= 50 ms at 100/s: {verdict}"
        )
    print(f"total run time {total:.0f} s (load average before the run: {load_before[0]:.2f})")

    errors: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for outcome in outcomes:
        for kind, count in outcome.errors.items():
            errors[f"{outcome.key}: {kind}"] += count
            examples[f"{outcome.key}: {kind}"] = outcome.examples[kind]
    results = {
        "run_id": RUN_ID,
        "started_at": started_at.isoformat(),
        "total_seconds": round(total, 1),
        "machine": {"cpus": os.cpu_count(), "load_average_before": load_before},
        "infra": {"kafka": infra.kafka, "mongodb_uri": infra.mongodb_uri, "private": infra.private},
        "settings": {**vars(args), "scenarios": sorted(args.scenarios), "out": str(args.out)},
        "scenarios": {o.key: o.summary() for o in outcomes},
        "errors": dict(errors),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {args.out}")

    if errors:
        print("\nFAILED requests, by kind:", file=sys.stderr)
        for kind, count in errors.most_common():
            print(f"  {count:6d}  {kind}  (e.g. {examples[kind]})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
