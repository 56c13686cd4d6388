"""Notification's fault run: every notice delivered exactly once through crashes and a
broker restart, on real Kafka and FerretDB with real receivers.

    .venv/bin/python -m benchmarks.notification_faults --events 10000
    (or `make fault-notification EVENTS=10000`; --help for the knobs)

Publishes EVENTS ticket events onto the tickets topic as intake would (see
benchmarks/notification_load.py), starts the notification service as a real process, and
while it works through them SIGKILLs it mid-batch and starts it again (--kills times) and
stops and starts the Kafka broker on the same data (--kafka-restarts times), faults spread
evenly over the run. At the end every expected notification must have reached the loopback
SMTP server or webhook receiver, and none twice; the delivery keys tell how many redelivered
events the dedup (the delivery's key) caught.

One repeat is allowed, and counted apart: a message the receiver took in the moment before
a SIGKILL, whose outcome the killed process could not write, goes out again after the
restart (at most the sends in flight, 16 per kill). No sender can tell such a message from
a lost one; it carries the same delivery id (X-Helpdesk-Delivery, a stable Message-ID),
which is what the receivers here, like any idempotent receiver, count by. Any other repeat
is a duplicate and fails the run. Exits 1 on a loss or a duplicate, 2 if the servers could
not be started. Its small version runs in CI
(tests/integration/test_notification_faults.py).
"""

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from benchmarks.launcher import (
    LOCAL_DIR,
    Infra,
    LaunchError,
    ServiceProcess,
    infrastructure,
    restart_kafka,
)
from benchmarks.notification_load import (
    Receivers,
    agent_people,
    notification_env,
    plan_events,
    publish,
    put_people,
)
from benchmarks.run import start_group_at_end
from helpdesk.core.kafka import SLA_EVENTS_TOPIC, TICKET_EVENTS_TOPIC, ensure_topics
from helpdesk.notification.commands import CONCURRENT_SENDS

# A message first received this long before a SIGKILL may have been in flight at it (its
# outcome still being written, with retries while FerretDB is busy).
IN_FLIGHT_SECONDS = 15.0


@dataclass
class FaultReport:
    events: int
    expected: int
    delivered: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    # Delivery id -> arrivals beyond the first, at the receivers: of messages in flight at
    # a SIGKILL (allowed, see above), and the rest (duplicates).
    resent_after_kill: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    kills: int = 0
    # Redelivered events whose notices the service found already recorded (dedup).
    dedup_caught: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        in_flight = sum(self.resent_after_kill.values()) <= CONCURRENT_SENDS * self.kills
        return in_flight and not (self.missing or self.unexpected or self.duplicates)


def fault_plan(kills: int, kafka_restarts: int) -> list[str]:
    """The faults in order, alternating kinds, a kill first."""
    plan: list[str] = []
    for i in range(max(kills, kafka_restarts)):
        if i < kills:
            plan.append("kill")
        if i < kafka_restarts:
            plan.append("kafka")
    return plan


async def fault_run(
    infra: Infra,
    *,
    events: int,
    faults: Sequence[str],
    restart_broker: Callable[[], None],
    log_dir: Path,
    stall_timeout: float = 120.0,
    settle: float = 3.0,
    say: Callable[[str], None] = print,
) -> FaultReport:
    """Runs the scenario; `restart_broker` stops Kafka and starts it on the same data."""
    run_id = uuid.uuid4().hex[:8]
    group = f"fault-notification-{run_id}"
    database = f"fault_notification_{run_id}"
    await ensure_topics(infra.kafka, [TICKET_EVENTS_TOPIC, SLA_EVENTS_TOPIC])
    for topic in (TICKET_EVENTS_TOPIC, SLA_EVENTS_TOPIC):
        await start_group_at_end(infra.kafka, topic, group)
    began = time.monotonic()
    with Receivers().running() as receivers:
        people = agent_people(receivers.webhook_url)
        planned = plan_events(events, run_id, people)
        expected = [d for e in planned for d in e.expected]
        report = FaultReport(events=events, expected=len(expected))
        service = ServiceProcess(
            infra,
            name="notification",
            database=database,
            log_path=log_dir / f"notification-{run_id}.log",
            log_level="info",
            env=notification_env(group, receivers.smtp_port),
        )
        service.start()
        try:
            await asyncio.to_thread(service.wait_serving)
            await put_people(service.target, people)
            say(f"publishing {events} events ({len(expected)} notifications expected)")
            await publish(infra.kafka, planned)

            def note(what: str) -> None:
                line = f"{time.monotonic() - began:6.1f} s  {what}"
                report.faults.append(line)
                say(line)

            thresholds = [(i + 1) / (len(faults) + 1) for i in range(len(faults))]
            pending_faults = list(zip(thresholds, faults, strict=True))
            killed_at: list[float] = []
            last_count, last_change = -1, time.monotonic()
            while True:
                count = receivers.seen(expected)
                if count != last_count:
                    last_count, last_change = count, time.monotonic()
                if count >= len(expected) and not pending_faults:
                    break
                if time.monotonic() - last_change > stall_timeout:
                    note(f"no progress for {stall_timeout:g} s at {count}/{len(expected)}")
                    break
                if pending_faults and count >= pending_faults[0][0] * len(expected):
                    _, kind = pending_faults.pop(0)
                    if kind == "kill":
                        note(f"SIGKILL notification at {count}/{len(expected)} delivered")
                        killed_at.append(time.time())
                        service.kill()
                        service.start()
                        await asyncio.to_thread(service.wait_serving)
                        note("notification serving again")
                    else:
                        note(f"stopping Kafka at {count}/{len(expected)} delivered")
                        await asyncio.to_thread(restart_broker)
                        note("Kafka started again")
                    last_change = time.monotonic()
                await asyncio.sleep(0.1)
            # Late repeats would show now.
            await asyncio.sleep(settle)
            report.seconds = round(time.monotonic() - began, 1)
        finally:
            service.stop()

        wanted = set(expected)
        report.delivered = receivers.seen(expected)
        report.missing = [d for d in expected if d not in receivers.arrivals]
        report.unexpected = sorted(d for d in receivers.arrivals if d not in wanted)
        if receivers.unlabelled:
            report.unexpected.append(f"{receivers.unlabelled} messages without a delivery id")
        report.kills = len(killed_at)
        for d, n in receivers.arrivals.items():
            if n > 1:
                first = receivers.first_seen[d]
                in_flight = any(k - IN_FLIGHT_SECONDS <= first <= k for k in killed_at)
                (report.resent_after_kill if in_flight else report.duplicates)[d] = n - 1
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri)
    try:
        # Finished deliveries and the ones still open (none, after a good run); the
        # repeats are counted on the delivery keys (see the service's store.py).
        statuses: Counter[str] = Counter()
        for name in ("deliveries", "open_deliveries"):
            async for doc in client[database][name].find({}, {"status": 1}):
                statuses[doc["status"]] += 1
        async for doc in client[database]["delivery_keys"].find({}, {"repeats": 1}):
            report.dedup_caught += int(doc.get("repeats", 0))
        report.statuses = dict(statuses)
        await client.drop_database(database)
    finally:
        await client.close()
    return report


def print_report(report: FaultReport) -> None:
    rows = [
        ("events published", str(report.events)),
        ("notifications expected", str(report.expected)),
        ("delivered (distinct)", str(report.delivered)),
        ("lost", str(len(report.missing))),
        ("unexpected", str(len(report.unexpected))),
        ("duplicates at receivers", str(sum(report.duplicates.values()))),
        (
            "in flight at a SIGKILL, sent again",
            f"{sum(report.resent_after_kill.values())} (at most {CONCURRENT_SENDS} per kill)",
        ),
        ("repeats caught by dedup", str(report.dedup_caught)),
        ("deliveries by status", json.dumps(report.statuses, sort_keys=True)),
        ("seconds", f"{report.seconds:.1f}"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)} | {value}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000, help="ticket events to publish")
    parser.add_argument("--kills", type=int, default=2, help="SIGKILLs of the service")
    parser.add_argument("--kafka-restarts", type=int, default=1, help="broker restarts")
    parser.add_argument(
        "--stall-timeout", type=float, default=180.0, help="give up after this long idle, s"
    )
    parser.add_argument("--out", type=Path, default=LOCAL_DIR / "notification-faults.json")
    args = parser.parse_args(argv)
    if args.events < 1 or args.kills < 0 or args.kafka_restarts < 0:
        parser.error("--events must be positive, --kills and --kafka-restarts not negative")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with infrastructure() as infra:
            if args.kafka_restarts and not infra.private:
                raise LaunchError(
                    "--kafka-restarts needs the private Kafka this run starts: unset "
                    "HELPDESK_KAFKA_BOOTSTRAP_SERVERS and HELPDESK_MONGODB_URI"
                )
            report = asyncio.run(
                fault_run(
                    infra,
                    events=args.events,
                    faults=fault_plan(args.kills, args.kafka_restarts),
                    restart_broker=restart_kafka,
                    log_dir=LOCAL_DIR / "log",
                    stall_timeout=args.stall_timeout,
                )
            )
    except LaunchError as error:
        print(f"fault run could not start: {error}", file=sys.stderr)
        return 2
    print()
    print_report(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(asdict(report), indent=2) + "\n")
    print(f"results written to {args.out}")
    if not report.passed:
        print(
            f"\nFAILED: {len(report.missing)} lost (e.g. {report.missing[:3]}), "
            f"{len(report.unexpected)} unexpected, {len(report.duplicates)} delivered twice "
            f"(e.g. {list(report.duplicates)[:3]})",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
