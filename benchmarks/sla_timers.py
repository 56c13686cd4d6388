"""SLA timers at scale: many armed timers, how late they fire, and the SLA service's memory.

    .venv/bin/python -m benchmarks.sla_timers        (or `make bench-sla`; --help for the knobs)

A timer here is one ticket's armed first-response SLA: two deadlines, its warning and its
breach. The default is the target's size, 1,000,000 timers. For a quick run that finishes in
a few minutes on two cores with FerretDB, and shows how lag grows with the number of timers:

    .venv/bin/python -m benchmarks.sla_timers --timers 5000 20000

For each number of timers given, on a fresh database:
  fill   the tickets' SLA states, made by the SLA domain itself (a policy whose first
         response target is --target; the ticket opened; its deadlines computed) and written
         straight into the service's ticket_slas collection, in the very shape its commands
         write (checked first against SlaCommands itself).
  plan   the breaches come due evenly over --window seconds; each warning comes `target -
         warning point` earlier (9 s with the defaults); the first warning --lead seconds
         after the fill should end (estimated from a probe insert beforehand).
  start  the SLA service as a process on that database (it builds its indexes and reads the
         coming minutes' timers), with a consumer on helpdesk.sla.events.v1 already at the
         topic's end.
  watch  every sla.warning / sla.breached event of the run, until every breach has fired or
         --grace seconds after the last deadline.
Lag of each deadline that fired:
  decided   the event's ce_time (stamped when the service fired the timer) - the deadline
  received  when the event was read from Kafka - the deadline (adds the outbox relay)
A breach's deadline is its clock.due_at (checked against the plan); a warning's comes from
the plan, since its clock.due_at is the breach's. Also reported: how many fired of how many
were due, duplicates (a ticket's warning or breach seen twice), warnings the service skips
by design because the breach was already due when it got to them, the service's memory
(VmRSS once SERVING, peak VmHWM at the end), how many deadlines it fired per second, and,
once it has stopped and the database is quiet, how long its own operations on ticket_slas
take on this database (FerretDB v1 on SQLite reads every document for any filter but a lone
_id, and firing a timer saves on a filter of _id and version).
Target: 1,000,000 timers with p99 decided lag <= 1 s. Prints tables and writes JSON (default
.local/bench/sla-timers.json). Exits 1 if a due deadline never fired, one fired twice or the
service died; 2 if the servers could not be started.
"""

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import statistics
import sys
import time
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from benchmarks.launcher import LOCAL_DIR, Infra, LaunchError, ServiceProcess, infrastructure
from benchmarks.run import RUN_ID, percentiles_ms, print_rows, start_group_at_end, topic_partitions
from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.events.v1 import sla_events_pb2
from helpdesk.api.tickets.v1 import tickets_pb2
from helpdesk.core.errors import InvalidArgument
from helpdesk.core.kafka import SLA_EVENTS_TOPIC, TICKET_EVENTS_TOPIC, ensure_topics
from helpdesk.sla.commands import SlaCommands
from helpdesk.sla.domain.calendar import BusinessCalendar
from helpdesk.sla.domain.clocks import (
    ClockStatus,
    TicketOpened,
    apply,
    calendar_for,
    due_at,
    due_bucket,
    new_ticket_sla,
    next_deadlines,
    status_of,
)
from helpdesk.sla.domain.policy import Metric, Policy, TicketFacts, dump_policy, parse_policy
from helpdesk.sla.mapping import deadline_to_document, sla_to_document
from helpdesk.sla.settings import SlaSettings
from helpdesk.sla.store import SlaStore

WARNING, BREACH = "warning", "breach"
EVENT_KINDS = {b"helpdesk.sla.warning.v1": WARNING, b"helpdesk.sla.breached.v1": BREACH}
POLICY_ID = "bench-first-response"
# 24/7: no business-hours calendar, so that every deadline is `target` after the opening.
CALENDARS: dict[str, BusinessCalendar] = {}
PRIORITIES = ("low", "normal", "high", "urgent")
CHANNELS = ("web", "email", "api", "chat")
BATCH = 2000
PROBE_TICKETS = 4 * BATCH
TARGET_TIMERS, TARGET_P99_MS = 1_000_000, 1000.0


# ---------------------------------------------------------------------------- the tickets


def ticket_prefix(size_index: int) -> str:
    """The start of every ticket id of one size of this run."""
    return f"{RUN_ID}-{size_index:04x}-4000-8000-"


def ticket_id(prefix: str, n: int) -> str:
    # UUID-shaped like intake's ids, with the ticket's index at the end, so that the event
    # watcher knows its own tickets (and their deadlines) without a table of a million ids.
    return f"{prefix}{n:012d}"


def ticket_facts(n: int, teams: int) -> TicketFacts:
    return TicketFacts(
        priority=PRIORITIES[n % len(PRIORITIES)],
        category="incident",
        team=f"team-{n % teams}",
        channel=CHANNELS[n % len(CHANNELS)],
    )


def sla_document(
    ticket: str, number: str, facts: TicketFacts, opened: datetime, policy: Policy
) -> dict[str, Any]:
    """The ticket_slas document SlaCommands writes when it applies a ticket's creation at
    `opened` (SlaCommands._fields inside SlaStore.insert)."""
    state = apply(new_ticket_sla(ticket, policy), TicketOpened(opened, facts, "new"), CALENDARS)
    deadlines = next_deadlines(state, CALENDARS, opened)
    calendar = calendar_for(CALENDARS, state.calendar_id)
    buckets = sorted({due_bucket(d.at) for d in deadlines})
    statuses = [status_of(c, calendar, opened) for c in state.clocks.values()]
    dues = [d for d in (due_at(c, calendar) for c in state.clocks.values()) if d is not None]
    risk = "closed" if state.status == "closed" else "ok"
    if ClockStatus.BREACHED in statuses and state.status != "closed":
        risk = "breached"
    elif ClockStatus.AT_RISK in statuses and state.status != "closed":
        risk = "at_risk"
    return {
        "_id": ticket,
        "version": 1,
        "state": sla_to_document(state),
        "deadlines": [deadline_to_document(d) for d in deadlines],
        "buckets": buckets,
        "next_bucket": buckets[0] if buckets else None,
        "risk": risk,
        "next_due": min(dues) if dues else None,
        "number": number,
        "team": facts.team,
        "assignee_id": "",
        "priority": facts.priority,
        "events": [],
        "traceparent": "",
        "outbox": {},
    }


class _Cursor:
    def __init__(self, docs: Iterable[dict[str, Any]]) -> None:
        self._docs = iter(docs)

    def __aiter__(self) -> "_Cursor":
        return self

    async def __anext__(self) -> dict[str, Any]:
        try:
            return next(self._docs)
        except StopIteration:
            raise StopAsyncIteration from None


class _Collection:
    """Just enough of a collection for SlaStore on the path of a ticket's creation."""

    def __init__(self, docs: Iterable[dict[str, Any]] = ()) -> None:
        self.docs = list(docs)
        self.inserted: list[dict[str, Any]] = []

    def find(self, *args: Any, **kwargs: Any) -> _Cursor:
        return _Cursor(self.docs)

    async def find_one(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def insert_one(self, doc: dict[str, Any]) -> None:
        self.inserted.append(doc)


class _Relay:
    def publish_soon(self, *args: Any) -> None:
        pass


async def check_document_shape(policy: Policy, teams: int) -> None:
    """The document written here must be the one SlaCommands writes, or the service would
    be measured on something it never stores: both are made for one ticket and compared.
    LaunchError if they differ."""
    tickets = _Collection()
    database = {
        "sla_policies": _Collection([{"definition": dump_policy(policy)}]),
        "calendars": _Collection(),
        "ticket_slas": tickets,
    }
    commands = SlaCommands(SlaStore(cast(Any, database)), cast(Any, _Relay()), cast(Any, None))
    facts = ticket_facts(2, teams)
    opened = datetime.now(UTC).replace(microsecond=0)
    ticket = tickets_pb2.Ticket(
        id=ticket_id(f"{RUN_ID}-ffff-4000-8000-", 2),
        number="HD-3",
        team=facts.team,
        priority=common_pb2.Priority.Value(f"PRIORITY_{facts.priority.upper()}"),
    )
    await commands.ticket_event("", ticket, [TicketOpened(opened, facts, "new")], facts=facts)
    (written,) = tickets.inserted
    ours = sla_document(ticket.id, ticket.number, facts, opened, policy)
    if written != ours:
        differ = sorted(k for k in {*written, *ours} if written.get(k) != ours.get(k))
        raise LaunchError(
            "the SLA service now writes ticket_slas documents in another shape than this "
            f"benchmark; fields that differ: {', '.join(differ)}"
        )


@dataclass(frozen=True)
class Plan:
    """When each ticket's timers come due: breaches evenly over the window, in order of
    the ticket's index, each warning `warn_gap` before its breach."""

    tickets: int
    prefix: str
    first_warning: datetime  # a whole second
    window: int  # seconds
    target: timedelta
    warn_gap: timedelta  # target - the warning point
    teams: int

    @property
    def first_breach(self) -> datetime:
        return self.first_warning + self.warn_gap

    @property
    def last_breach(self) -> datetime:
        return self.first_breach + timedelta(seconds=self.offset(self.tickets - 1))

    def offset(self, n: int) -> int:
        return n * self.window // self.tickets

    def breach_at(self, n: int) -> datetime:
        return self.first_breach + timedelta(seconds=self.offset(n))

    def due_epoch(self, kind: str, n: int) -> float:
        first = self.first_breach if kind == BREACH else self.first_warning
        return first.timestamp() + self.offset(n)

    def due_by(self, moment: float) -> int:
        """How many breaches are due by this instant (as many warnings are `warn_gap` sooner)."""
        passed = math.floor(moment - self.first_breach.timestamp())
        if passed < 0:
            return 0
        return min(self.tickets, math.ceil((passed + 1) * self.tickets / self.window))

    def index_of(self, ticket: str) -> int | None:
        if not ticket.startswith(self.prefix):
            return None
        n = int(ticket[len(self.prefix) :])
        return n if 0 <= n < self.tickets else None

    def document(self, n: int, policy: Policy) -> dict[str, Any]:
        opened = self.breach_at(n) - self.target
        facts = ticket_facts(n, self.teams)
        return sla_document(ticket_id(self.prefix, n), f"HD-{n + 1}", facts, opened, policy)


def make_policy(target: str, warn_share: float) -> Policy:
    return parse_policy(
        {
            "id": POLICY_ID,
            "name": "Benchmark: first response only",
            "targets": {"first_response": target},
            "warn_share": warn_share,
        }
    )


def warn_gap(policy: Policy) -> timedelta:
    """Target minus the warning point, as the domain computes the warning point."""
    state = apply(
        new_ticket_sla("probe", policy), TicketOpened(datetime.now(UTC)), CALENDARS
    ).clocks[Metric.FIRST_RESPONSE]
    assert state.target is not None
    assert state.warn_after is not None
    return state.target - state.warn_after


# ---------------------------------------------------------------------------- fill


async def fill(
    collection: Any, plan: Plan, policy: Policy, *, tickets: int, progress: bool
) -> float:
    """Writes the first `tickets` documents of the plan, BATCH at a time with four batches
    in flight (the same way as queue_view); seconds it took."""
    started = time.monotonic()
    pending: set[asyncio.Task[Any]] = set()
    report_every = max(BATCH, (tickets // 10) // BATCH * BATCH)
    for first in range(0, tickets, BATCH):
        docs = [plan.document(n, policy) for n in range(first, min(first + BATCH, tickets))]
        pending.add(asyncio.create_task(collection.insert_many(docs, ordered=False)))
        if len(pending) >= 4:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        stored = first + len(docs)
        if progress and (stored % report_every == 0 or stored == tickets):
            print(f"  {stored:,} stored", flush=True)
    for task in pending:
        await task
    return time.monotonic() - started


# ---------------------------------------------------------------------------- the watcher


class Firings:
    """What was seen of one kind of timer (warning or breach), per ticket index."""

    def __init__(self, tickets: int) -> None:
        # Seconds after the deadline; NaN until seen.
        self.decided = array("d", [math.nan]) * tickets
        self.received = array("d", [math.nan]) * tickets
        self._first_event = array("q", [0]) * tickets  # hash of the first ce_id
        self.fired = 0
        self.duplicates = 0
        # Of the duplicates, the same event (ce_id) published again rather than a second
        # firing; consumers drop these by ce_id, but there was no crash to cause them.
        self.republished = 0
        self.early = 0
        self.due_at_mismatch = 0
        self.last_lag = math.nan
        self.last_fired = 0.0  # the latest ce_time, epoch s

    def note(self, n: int, deadline: float, ce_time: float, seen: float, ce_id: str) -> None:
        if not math.isnan(self.decided[n]):
            self.duplicates += 1
            if hash(ce_id) == self._first_event[n]:
                self.republished += 1
            return
        self.fired += 1
        self.decided[n] = ce_time - deadline
        self.received[n] = seen - deadline
        self._first_event[n] = hash(ce_id)
        self.early += ce_time < deadline
        self.last_lag = ce_time - deadline
        self.last_fired = max(self.last_fired, ce_time)

    def lags(self, which: str) -> list[float]:
        values = self.decided if which == "decided" else self.received
        return [v for v in values if not math.isnan(v)]


class SlaEventWatcher:
    """Reads helpdesk.sla.events.v1 from where it ended when entered, noting the warnings
    and breaches of the plan's tickets."""

    def __init__(self, bootstrap: str, plan: Plan) -> None:
        self._bootstrap = bootstrap
        self.plan = plan
        self.warnings = Firings(plan.tickets)
        self.breaches = Firings(plan.tickets)
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> "SlaEventWatcher":
        partitions = await topic_partitions(self._bootstrap, SLA_EVENTS_TOPIC)
        if not partitions:
            raise LaunchError(f"topic {SLA_EVENTS_TOPIC} does not exist (it was just created)")
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap.split(","), enable_auto_commit=False
        )
        await consumer.start()
        self._consumer = consumer
        assigned = [TopicPartition(SLA_EVENTS_TOPIC, p) for p in partitions]
        consumer.assign(assigned)
        try:
            await consumer.seek_to_end(*assigned)
            for tp in assigned:  # resolve the end now, before the service starts
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

    def check(self) -> None:
        """Raises what stopped the reader, if it stopped."""
        if self._task and self._task.done():
            self._task.result()

    async def _read(self) -> None:
        assert self._consumer
        while True:
            batches = await self._consumer.getmany(timeout_ms=200, max_records=5000)
            seen = time.time()
            for records in batches.values():
                for record in records:
                    headers = dict(record.headers or ())
                    kind = EVENT_KINDS.get(headers.get("ce_type", b""))
                    if kind is not None:
                        self._note(kind, headers, record.value, seen)

    def _note(self, kind: str, headers: dict[str, bytes], body: bytes, seen: float) -> None:
        message = (
            sla_events_pb2.SlaWarning if kind == WARNING else sla_events_pb2.SlaBreached
        ).FromString(body)
        clock = message.clock
        n = self.plan.index_of(clock.ticket_id)
        if n is None or clock.metric != Metric.FIRST_RESPONSE:
            return  # another run's, or a clock this plan arms no timer for
        deadline = self.plan.due_epoch(kind, n)
        firings = self.warnings if kind == WARNING else self.breaches
        if kind == BREACH and clock.HasField("due_at"):
            due = clock.due_at.seconds + clock.due_at.nanos / 1e9
            if due != deadline:
                firings.due_at_mismatch += 1
            deadline = due
        ce_time = datetime.fromisoformat(headers["ce_time"].decode()).timestamp()
        firings.note(n, deadline, ce_time, seen, headers.get("ce_id", b"").decode())


# ---------------------------------------------------------------------------- one size


def memory_kb(pid: int | None) -> dict[str, int]:
    """VmRSS and VmHWM (the peak) of a running process, in kB; {} once it is gone."""
    if pid is None:
        return {}
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    found = {}
    for line in lines:
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0])
    return found


# What the service logs when its timer loop or outbox relay meets an error.
LOG_PROBLEMS = ("sla_timers_retry", "sla_timers_failed", "outbox_relay_failed")


def log_problems(log_path: Path) -> dict[str, int]:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return {}
    return {event: text.count(f'"{event}"') for event in LOG_PROBLEMS}


def mb(kb: int | None) -> float | None:
    return None if kb is None else round(kb / 1024, 1)


async def timed(read: Any, samples: int = 3, budget: float = 5.0) -> float:
    """The median of up to `samples` runs of a read, in ms; fewer once they have taken
    `budget` seconds (on FerretDB one read of a large collection can take a minute)."""
    took: list[float] = []
    while len(took) < samples and sum(took) < budget:
        started = time.perf_counter()
        await read()
        took.append(time.perf_counter() - started)
    return round(statistics.median(took) * 1000, 1)


async def service_reads(store: SlaStore, plan: Plan) -> dict[str, float]:
    """How long the service's operations on ticket_slas take on this collection, once it has
    stopped: the read of one ticket by _id; what firing a timer asks of the database (read
    the ticket, the calendars, then save it on condition of its version), for the ticket in
    the middle of the collection (FerretDB reads the collection up to the one that matches);
    the per-minute timer read; the start/sweep read; and the outbox relay's clear of a
    batch of 200 (with versions that match nothing, so that it changes nothing)."""
    minute = due_bucket(plan.first_breach)
    ids = [ticket_id(plan.prefix, n) for n in range(min(200, plan.tickets))]
    middle = ticket_id(plan.prefix, plan.tickets // 2)

    async def fire() -> None:
        doc = await store.ticket(middle)
        assert doc is not None
        await store.all_calendars()
        # The fields as they are: only the version moves on.
        await store.save(middle, int(doc["version"]), {"risk": doc["risk"]}, {})

    async def clear() -> None:
        await store.tickets.update_many(
            {"$or": [{"_id": i, "version": -1} for i in ids]},
            {"$unset": {"outbox": ""}, "$set": {"outbox_pending": False}},
        )

    return {
        "ticket_by_id_ms": await timed(lambda: store.ticket(middle)),
        "fire_ms": await timed(fire),
        "due_in_minute_ms": await timed(lambda: store.due_in(minute)),
        "due_by_minute_ms": await timed(lambda: store.due_by(due_bucket(datetime.now(UTC)))),
        "outbox_clear_200_ms": await timed(clear),
    }


async def wait_quiet(store: SlaStore, ticket: str, limit: float = 120.0) -> float:
    """Waits until the database has done what the stopped service left it doing (FerretDB
    may still be reading for a request whose client gave up): two lookups by _id in a row
    under 100 ms, or `limit` seconds. Seconds waited."""
    started = time.monotonic()
    quick = 0
    while quick < 2 and time.monotonic() - started < limit:
        began = time.perf_counter()
        await store.ticket(ticket)
        quick = quick + 1 if time.perf_counter() - began < 0.1 else 0
        if quick < 2:
            await asyncio.sleep(1.0)
    return round(time.monotonic() - started, 1)


def firing_summary(firings: Firings, due: int, extra: dict[str, int]) -> dict[str, Any]:
    return {
        "due": due,
        "fired": firings.fired,
        **extra,
        "duplicates": firings.duplicates,
        "republished": firings.republished,
        "early": firings.early,
        "due_at_mismatch": firings.due_at_mismatch,
        "decided": percentiles_ms(firings.lags("decided")),
        "received": percentiles_ms(firings.lags("received")),
    }


def seconds(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f} s"


async def watch(
    args: argparse.Namespace, watcher: SlaEventWatcher, service: ServiceProcess
) -> tuple[float, int]:
    """Until every breach has fired, the grace after the last deadline has passed, or the
    service has exited; returns when it stopped (epoch s) and the peak VmRSS sampled."""
    plan = watcher.plan
    give_up = plan.last_breach.timestamp() + args.grace
    next_report = time.time() + 10
    peak_rss = 0
    while True:
        watcher.check()
        now = time.time()
        peak_rss = max(peak_rss, memory_kb(service.pid).get("VmRSS", 0))
        if watcher.breaches.fired >= plan.tickets or now > give_up or not service.running():
            return now, peak_rss
        if now >= next_report:
            next_report = now + 10
            to_go = plan.first_warning.timestamp() - now
            if to_go > 0:
                print(f"  first timers due in {to_go:.0f} s", flush=True)
            else:
                breaches, warnings = watcher.breaches, watcher.warnings
                due_warnings = plan.due_by(now + plan.warn_gap.total_seconds())
                print(
                    f"  fired: breaches {breaches.fired:,} of {plan.due_by(now):,} due, "
                    f"warnings {warnings.fired:,} of {due_warnings:,}; latest lag "
                    f"{seconds(breaches.last_lag)} / {seconds(warnings.last_lag)}; "
                    f"RSS {peak_rss / 1024:.0f} MB",
                    flush=True,
                )
        await asyncio.sleep(0.5)


async def run_size(
    args: argparse.Namespace,
    infra: Infra,
    size_index: int,
    tickets: int,
    policy: Policy,
    started: list[ServiceProcess],
) -> dict[str, Any]:
    """One size: fill, start the service, watch its timers fire, measure, clean up."""
    database = f"sla_bench_{RUN_ID}_{size_index}"
    group = f"bench-sla-{RUN_ID}-{size_index}"
    results: dict[str, Any] = {"timers": tickets, "deadlines": 2 * tickets, "database": database}
    results["load_average_before"] = os.getloadavg()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        infra.mongodb_uri, tz_aware=True, timeoutMS=int(args.mongo_timeout * 1000)
    )
    store = SlaStore(client[database])
    try:
        await store.put_policy(policy)
        gap = warn_gap(policy)
        target = policy.targets[Metric.FIRST_RESPONSE]

        def plan_from(first_warning: datetime) -> Plan:
            return Plan(
                tickets=tickets,
                prefix=ticket_prefix(size_index),
                first_warning=first_warning.replace(microsecond=0),
                window=args.window,
                target=target,
                warn_gap=gap,
                teams=args.teams,
            )

        # How fast this machine builds and stores documents now: the plan must put the
        # first deadline after the fill.
        probe = client[database]["ticket_slas_probe"]
        probe_tickets = min(tickets, PROBE_TICKETS)
        probe_seconds = await fill(
            probe, plan_from(datetime.now(UTC)), policy, tickets=probe_tickets, progress=False
        )
        await probe.drop()
        probe_rate = probe_tickets / probe_seconds
        estimate = tickets / probe_rate * args.fill_margin + 5
        plan = plan_from(datetime.now(UTC) + timedelta(seconds=estimate + args.lead))
        print(
            f"{tickets:,} timers ({2 * tickets:,} deadlines) into {database}: probe "
            f"{probe_rate:,.0f}/s, fill estimated at {estimate:.0f} s; first warning at "
            f"{plan.first_warning:%H:%M:%S}, breaches {plan.first_breach:%H:%M:%S} to "
            f"{plan.last_breach:%H:%M:%S} UTC",
            flush=True,
        )
        fill_seconds = await fill(store.tickets, plan, policy, tickets=tickets, progress=True)
        results["fill"] = {
            "seconds": round(fill_seconds, 1),
            "per_second": round(tickets / fill_seconds),
            "probe_per_second": round(probe_rate),
            "estimated_seconds": round(estimate, 1),
        }
        results["plan"] = {
            "first_warning": plan.first_warning.isoformat(),
            "first_breach": plan.first_breach.isoformat(),
            "last_breach": plan.last_breach.isoformat(),
            "window_seconds": args.window,
            "target_seconds": target.total_seconds(),
            "warning_before_breach_seconds": gap.total_seconds(),
        }

        # The service's topics exist before the watcher looks for the end of its own, and
        # the service's group starts at the end of the tickets topic (on a shared Kafka
        # it would otherwise apply every ticket event earlier runs left).
        await ensure_topics(infra.kafka, [TICKET_EVENTS_TOPIC, SLA_EVENTS_TOPIC])
        await start_group_at_end(infra.kafka, TICKET_EVENTS_TOPIC, group)
        service = ServiceProcess(
            infra,
            name="sla",
            database=database,
            log_path=LOCAL_DIR / "log" / f"sla-timers-{RUN_ID}-{size_index}.log",
            log_level=args.log_level,
            env={
                # Auto-close is not armed here (no ticket is pending): intake is never called.
                "HELPDESK_INTAKE_TARGET": "127.0.0.1:9",
                "HELPDESK_SLA_CONSUMER_GROUP": group,
            },
        )
        async with SlaEventWatcher(infra.kafka, plan) as watcher:
            print(f"starting sla (log {service.log_path})", flush=True)
            began = time.monotonic()
            started.append(service)
            service.start()
            await asyncio.to_thread(service.wait_serving, args.start_timeout)
            ready = time.time()
            serving = memory_kb(service.pid)
            results["service"] = {
                "start_seconds": round(time.monotonic() - began, 1),
                "ready_before_first_deadline_seconds": round(
                    plan.first_warning.timestamp() - ready, 1
                ),
                "rss_serving_mb": mb(serving.get("VmRSS")),
            }
            if ready > plan.first_warning.timestamp():
                print(
                    "  the service was SERVING only after the first timers were due: their "
                    "lag includes its start (raise --lead)",
                    file=sys.stderr,
                    flush=True,
                )
            ended, peak_rss = await watch(args, watcher, service)
            exited = not service.running()
            at_end = memory_kb(service.pid)
            code = await asyncio.to_thread(service.stop)
            # What the service published while draining counts too (duplicates, mostly).
            await asyncio.sleep(2.0)
            watcher.check()
        # On the quiet database, now that the service has stopped.
        quiet = await wait_quiet(store, ticket_id(plan.prefix, 0))
        results["reads"] = {**await service_reads(store, plan), "quiet_after_seconds": quiet}

        results["service"].update(
            rss_end_mb=mb(at_end.get("VmRSS")),
            peak_rss_mb=mb(at_end.get("VmHWM")),
            peak_rss_sampled_mb=mb(peak_rss),
            exited_during_run=exited,
            exit_code=code,
            log=str(service.log_path),
            log_problems=log_problems(service.log_path),
        )
        due_breaches = plan.due_by(ended)
        due_warnings = plan.due_by(ended + gap.total_seconds())
        breach_fired = [not math.isnan(v) for v in watcher.breaches.decided]
        warning_fired = [not math.isnan(v) for v in watcher.warnings.decided]
        # The domain finds a warning pointless once its breach is due, and fires the breach
        # alone: those warnings are not missing.
        skipped = sum(b and not w for b, w in zip(breach_fired, warning_fired, strict=True))
        results["watch_seconds"] = round(ended - plan.first_warning.timestamp(), 1)
        # While the service is behind, this is how fast it can fire.
        last = max(watcher.breaches.last_fired, watcher.warnings.last_fired)
        if last > plan.first_warning.timestamp():
            fired = watcher.breaches.fired + watcher.warnings.fired
            results["fired_per_second"] = round(fired / (last - plan.first_warning.timestamp()), 2)
        results["breach"] = firing_summary(
            watcher.breaches, due_breaches, {"missing": due_breaches - sum(breach_fired)}
        )
        results["warning"] = firing_summary(
            watcher.warnings,
            due_warnings,
            {
                "skipped_breach_due": skipped,
                "missing": due_warnings - sum(warning_fired) - skipped,
            },
        )
        results["load_average_after"] = os.getloadavg()
        return results
    finally:
        # The service first: it must not write into a database being dropped.
        for service in started:
            code = await asyncio.to_thread(service.stop)
            if code not in (0, None):
                print(f"sla exited with {code}; see {service.log_path}", file=sys.stderr)
        started.clear()
        if not args.keep_data:
            with contextlib.suppress(PyMongoError):
                await client.drop_database(database)
        await client.close()


# ---------------------------------------------------------------------------- report


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def print_tables(sizes: list[dict[str, Any]]) -> None:
    rows: list[tuple[str, ...]] = [
        ("timers", "deadline, lag", "due", "fired", "p50 ms", "p95 ms", "p99 ms", "max ms")
    ]
    for size in sizes:
        for kind in ("breach", "warning"):
            summary = size[kind]
            for which in ("decided", "received"):
                lag = summary[which]
                rows.append(
                    (
                        f"{size['timers']:,}",
                        f"{kind}, {which}",
                        f"{summary['due']:,}",
                        f"{summary['fired']:,}",
                        ms(lag["p50_ms"]),
                        ms(lag["p95_ms"]),
                        ms(lag["p99_ms"]),
                        ms(lag["max_ms"]),
                    )
                )
    print_rows(rows)
    print()
    rows = [
        (
            "timers",
            "fill/s",
            "start s",
            "ready before s",
            "fired/s",
            "missing",
            "warnings skipped",
            "duplicates",
            "RSS serving MB",
            "peak RSS MB",
        )
    ]
    for size in sizes:
        service = size["service"]
        rows.append(
            (
                f"{size['timers']:,}",
                f"{size['fill']['per_second']:,}",
                f"{service['start_seconds']:.1f}",
                f"{service['ready_before_first_deadline_seconds']:.1f}",
                f"{size['fired_per_second']:.1f}" if "fired_per_second" in size else "-",
                f"{size['breach']['missing'] + size['warning']['missing']:,}",
                f"{size['warning']['skipped_breach_due']:,}",
                f"{size['breach']['duplicates'] + size['warning']['duplicates']:,}",
                f"{service['rss_serving_mb'] or 0:.0f}",
                f"{service['peak_rss_mb'] or 0:.0f}",
            )
        )
    print_rows(rows)
    if any("reads" in size for size in sizes):
        print()
        rows = [
            (
                "timers",
                "find by _id ms",
                "one firing ms",
                "due minute ms",
                "due by ms",
                "outbox clear ms",
                "measured after s",
            )
        ]
        for size in sizes:
            if "reads" in size:
                reads = size["reads"]
                rows.append(
                    (
                        f"{size['timers']:,}",
                        f"{reads['ticket_by_id_ms']:.1f}",
                        f"{reads['fire_ms']:.1f}",
                        f"{reads['due_in_minute_ms']:.1f}",
                        f"{reads['due_by_minute_ms']:.1f}",
                        f"{reads['outbox_clear_200_ms']:.1f}",
                        f"{reads['quiet_after_seconds']:.0f}",
                    )
                )
        print_rows(rows)
    for size in sizes:
        logged = {k: v for k, v in size["service"]["log_problems"].items() if v}
        if logged:
            listed = ", ".join(f"{event} x{count}" for event, count in logged.items())
            print(f"{size['timers']:,} timers: the service logged {listed}")


def failures(size: dict[str, Any]) -> list[str]:
    found = []
    for kind in ("breach", "warning"):
        summary = size[kind]
        if summary["missing"]:
            found.append(f"{summary['missing']:,} due {kind} timers never fired")
        if summary["duplicates"]:
            found.append(
                f"{summary['duplicates']:,} {kind} events seen twice "
                f"({summary['republished']:,} of them the same event published again)"
            )
    if size["service"]["exited_during_run"]:
        found.append(f"the service exited during the run; see {size['service']['log']}")
    return [f"{size['timers']:,} timers: {f}" for f in found]


# ---------------------------------------------------------------------------- the run


async def benchmark(
    args: argparse.Namespace,
    infra: Infra,
    policy: Policy,
    started: list[ServiceProcess],
    sizes: list[dict[str, Any]],
) -> None:
    await check_document_shape(policy, args.teams)
    for size_index, tickets in enumerate(args.timers):
        sizes.append(await run_size(args, infra, size_index, tickets, policy, started))


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, Policy]:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.sla_timers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--timers",
        type=int,
        nargs="+",
        default=[TARGET_TIMERS],
        help="tickets with an armed first-response SLA (each: a warning and a breach "
        "deadline); several sizes run one after another",
    )
    parser.add_argument(
        "--window", type=int, default=120, help="seconds over which the breaches come due"
    )
    parser.add_argument(
        "--lead",
        type=float,
        default=60.0,
        help="seconds from the planned end of the fill to the first deadline (the service "
        "starts in them: raise it when its index builds take longer)",
    )
    parser.add_argument(
        "--target", default="45s", help='first response target of the policy, e.g. "45s"'
    )
    parser.add_argument(
        "--warn-share", type=float, default=0.8, help="share of the target when the warning fires"
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=120.0,
        help="seconds after the last deadline to wait for timers still to fire",
    )
    parser.add_argument("--teams", type=int, default=50, help="teams the tickets are spread over")
    parser.add_argument(
        "--fill-margin",
        type=float,
        default=1.5,
        help="the fill is planned to take this many times what the probe insert suggests",
    )
    parser.add_argument(
        "--start-timeout", type=float, default=1800.0, help="seconds for the service to serve"
    )
    parser.add_argument(
        "--mongo-timeout", type=float, default=600.0, help="deadline of the fill's and reads' ops"
    )
    parser.add_argument("--out", type=Path, default=LOCAL_DIR / "sla-timers.json")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--keep-data", action="store_true", help="keep the sla_bench_<run>_* databases"
    )
    args = parser.parse_args(argv)
    if min(args.timers) < 1 or args.window < 1 or args.lead < 0 or args.grace < 0:
        parser.error("--timers and --window must be positive, --lead and --grace not negative")
    try:
        policy = make_policy(args.target, args.warn_share)
    except InvalidArgument as error:
        parser.error(f"--target or --warn-share: {error}")
    if warn_gap(policy) > timedelta(seconds=args.lead):
        parser.error("--lead must leave room for the warnings, which come before the breaches")
    return args, policy


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args, policy = parse_args(argv)
    # SIGTERM ends the run like Ctrl-C: the finally blocks stop the service and the servers.
    signal.signal(signal.SIGTERM, _interrupt)
    started_at = datetime.now(UTC)
    began = time.monotonic()
    load_before = os.getloadavg()
    started: list[ServiceProcess] = []
    sizes: list[dict[str, Any]] = []
    try:
        with infrastructure() as infra:
            try:
                asyncio.run(benchmark(args, infra, policy, started, sizes))
            finally:
                # Already stopped unless the event loop was torn down first; stop is idempotent.
                for service in started:
                    service.stop()
    except LaunchError as error:
        print(f"benchmark could not start: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; the SLA service and the servers are stopped", file=sys.stderr)
        return 130
    total = time.monotonic() - began

    print()
    print_tables(sizes)
    defaults = SlaSettings.model_fields
    largest = max(sizes, key=lambda s: s["timers"])
    p99 = largest["breach"]["decided"]["p99_ms"]
    problems = [problem for size in sizes for problem in failures(size)]
    met = (
        p99 is not None
        and largest["timers"] >= TARGET_TIMERS
        and p99 <= TARGET_P99_MS
        and not problems
    )
    measured = "no breach fired" if p99 is None else f"breach p99 {p99 / 1000:.2f} s late (decided)"
    print(
        f"\n{largest['timers']:,} timers: {measured}; target {TARGET_TIMERS:,} timers with "
        f"p99 <= {TARGET_P99_MS / 1000:g} s: {'met' if met else 'not met'}"
    )
    print(
        f"total run time {total:.0f} s (load average before the run: {load_before[0]:.2f}, "
        f"after: {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs)"
    )

    results = {
        "run_id": RUN_ID,
        "started_at": started_at.isoformat(),
        "total_seconds": round(total, 1),
        "machine": {"cpus": os.cpu_count(), "load_average_before": load_before},
        "infra": {"kafka": infra.kafka, "mongodb_uri": infra.mongodb_uri, "private": infra.private},
        "settings": {**vars(args), "out": str(args.out)},
        "policy": dump_policy(policy),
        "service_settings": {
            "timer_tick_seconds": defaults["timer_tick_seconds"].default,
            "timer_sweep_seconds": defaults["timer_sweep_seconds"].default,
            "outbox_sweep_interval_seconds": defaults["outbox_sweep_interval_seconds"].default,
        },
        "sizes": sizes,
        "failures": problems,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {args.out}")

    if problems:
        print("\nFAILED:", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
