"""Notification's benchmark: notifications per second and event -> delivered latency, on
real Kafka and FerretDB with real receivers.

    .venv/bin/python -m benchmarks.notification     (or `make bench-notification`)

Starts the notification service as a real process on a database of its own, with a
loopback SMTP server and webhook receiver (benchmarks/notification_load.py), and publishes
ticket events onto the tickets topic as intake would. Two scenarios:
  steady   --events events at --rate per second (an open loop: they leave on a timetable)
  burst    --burst events published at once; how fast the service works through a backlog
Per notification: event -> delivered = its first arrival at a receiver - the moment its event
was published (one machine, one clock). Per second: notifications delivered / time from the
first event published to the last notification delivered. Every ticket's requester gets an
e-mail; every other ticket also gets its agent a webhook.
Prints a table and writes JSON (default .local/bench/notification.json). Exits 1 if a
notification was lost or delivered twice, 2 if the servers could not be started.
"""

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.launcher import LOCAL_DIR, Infra, LaunchError, ServiceProcess, infrastructure
from benchmarks.notification_load import (
    Receivers,
    agent_people,
    notification_env,
    percentile,
    plan_events,
    publish,
    put_people,
)
from benchmarks.run import print_rows, start_group_at_end
from helpdesk.core.kafka import SLA_EVENTS_TOPIC, TICKET_EVENTS_TOPIC, ensure_topics


@dataclass
class Scenario:
    title: str
    events: int
    notifications: int = 0
    delivered: int = 0
    duplicates: int = 0
    seconds: float = 0.0
    per_second: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None


async def scenario(
    infra: Infra,
    receivers: Receivers,
    people: list[dict[str, Any]],
    *,
    title: str,
    events: int,
    rate: float,
    timeout: float,
) -> Scenario:
    planned = plan_events(events, f"{title}-{uuid.uuid4().hex[:6]}", people)
    expected = [(e.event_id, d) for e in planned for d in e.expected]
    outcome = Scenario(title, events, notifications=len(expected))
    began = time.time()
    left = await publish(infra.kafka, planned, rate)
    deadline = time.monotonic() + timeout
    ids = [d for _, d in expected]
    while time.monotonic() < deadline:
        if receivers.seen(ids) >= len(ids):
            break
        await asyncio.sleep(0.1)
    outcome.delivered = receivers.seen(ids)
    arrived = [receivers.first_seen[d] for d in ids if d in receivers.first_seen]
    latencies = [
        receivers.first_seen[d] - left[event] for event, d in expected if d in receivers.first_seen
    ]
    outcome.duplicates = sum(receivers.arrivals[d] - 1 for d in ids if receivers.arrivals[d] > 1)
    if arrived:
        outcome.seconds = round(max(arrived) - began, 2)
        outcome.per_second = round(len(arrived) / max(outcome.seconds, 1e-9), 1)
    p50, p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
    outcome.p50_ms = None if p50 is None else round(p50 * 1000, 1)
    outcome.p99_ms = None if p99 is None else round(p99 * 1000, 1)
    return outcome


async def benchmark(args: argparse.Namespace, infra: Infra) -> list[Scenario]:
    run_id = uuid.uuid4().hex[:8]
    group = f"bench-notification-{run_id}"
    await ensure_topics(infra.kafka, [TICKET_EVENTS_TOPIC, SLA_EVENTS_TOPIC])
    for topic in (TICKET_EVENTS_TOPIC, SLA_EVENTS_TOPIC):
        await start_group_at_end(infra.kafka, topic, group)
    outcomes = []
    with Receivers().running() as receivers:
        service = ServiceProcess(
            infra,
            name="notification",
            database=f"bench_notification_{run_id}",
            log_path=LOCAL_DIR / "log" / f"notification-{run_id}.log",
            log_level=args.log_level,
            env=notification_env(group, receivers.smtp_port),
        )
        service.start()
        try:
            await asyncio.to_thread(service.wait_serving)
            people = agent_people(receivers.webhook_url)
            await put_people(service.target, people)
            # A few events first so that connections and caches are warm.
            await scenario(infra, receivers, people, title="warmup", events=20, rate=0, timeout=60)
            if args.events:
                print(f"steady: {args.events} events at {args.rate:g}/s ...", flush=True)
                outcomes.append(
                    await scenario(
                        infra,
                        receivers,
                        people,
                        title="steady",
                        events=args.events,
                        rate=args.rate,
                        timeout=args.timeout,
                    )
                )
            if args.burst:
                print(f"burst: {args.burst} events at once ...", flush=True)
                outcomes.append(
                    await scenario(
                        infra,
                        receivers,
                        people,
                        title="burst",
                        events=args.burst,
                        rate=0,
                        timeout=args.timeout,
                    )
                )
        finally:
            service.stop()
    return outcomes


def print_table(outcomes: list[Scenario]) -> None:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    rows = [("scenario", "events", "notifications", "seconds", "per second", "p50 ms", "p99 ms")]
    for o in outcomes:
        rows.append(
            (
                o.title,
                str(o.events),
                f"{o.delivered}/{o.notifications}",
                f"{o.seconds:.1f}",
                f"{o.per_second:.1f}",
                ms(o.p50_ms),
                ms(o.p99_ms),
            )
        )
    print_rows(rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="steady: events to publish")
    parser.add_argument("--rate", type=float, default=50.0, help="steady: events per second")
    parser.add_argument("--burst", type=int, default=2000, help="burst: events at once")
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="per scenario, after publishing, s"
    )
    parser.add_argument("--out", type=Path, default=LOCAL_DIR / "notification.json")
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    args = parser.parse_args(argv)
    if args.events < 0 or args.burst < 0 or args.rate <= 0:
        parser.error("--events and --burst must not be negative, --rate must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()
    try:
        with infrastructure() as infra:
            outcomes = asyncio.run(benchmark(args, infra))
    except LaunchError as error:
        print(f"benchmark could not start: {error}", file=sys.stderr)
        return 2
    print()
    print_table(outcomes)
    print(f"(load average before the run: {load_before[0]:.2f}, {os.cpu_count()} CPUs)")
    results = {
        "settings": {**vars(args), "out": str(args.out)},
        "load_average_before": load_before,
        "scenarios": [vars(o) for o in outcomes],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {args.out}")
    bad = [o for o in outcomes if o.delivered < o.notifications or o.duplicates]
    for o in bad:
        print(
            f"FAILED {o.title}: {o.notifications - o.delivered} not delivered, "
            f"{o.duplicates} delivered twice",
            file=sys.stderr,
        )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
