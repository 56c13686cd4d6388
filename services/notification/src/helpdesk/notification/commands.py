"""What the notification service does: turn an event into notices (the domain decides who
hears what, in which words), record each as a delivery keyed by event, recipient and
channel (the record is the dedup and the promise), then a worker sends what is due,
retrying passing failures with backoff and parking the rest on the dead-letter topic.

The worker is handed new deliveries, replays and retries in memory and does not read the
store for them. Every write on these paths is an insert or names one open delivery by its
`_id` in a small collection (store.py says why: on FerretDB even a write by `_id` reads the
whole collection). To keep that collection small the consumer waits while `MAX_BACKLOG`
deliveries are waiting to be tried; the events not read yet wait in Kafka instead. Now and
then (a sweep) the worker reads the open deliveries: pending ones it does not hold (left by
a crash or another replica), held ones whose digest is due, and ones a crash left half
finished.
"""

import asyncio
import contextlib
import json
import random
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from faststream.kafka import KafkaBroker
from opentelemetry import trace
from pymongo.errors import PyMongoError

from helpdesk.core.errors import FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from helpdesk.core.kafka import dead_letter_topic
from helpdesk.core.logging import get_logger
from helpdesk.core.mongo import store_precision
from helpdesk.core.telemetry import continued_span, current_traceparent
from helpdesk.notification.channels import DeliveryFailed, Outgoing, Senders
from helpdesk.notification.domain.notices import (
    Channel,
    Facts,
    Notice,
    Person,
    Subscription,
    notices_for,
    parse_person,
    parse_subscription,
)
from helpdesk.notification.domain.retry import Failure, backoff
from helpdesk.notification.domain.templates import (
    TEMPLATE_KEYS,
    Rendered,
    Template,
    context_for,
    digest,
    parse_template,
    render,
    sample_context,
)
from helpdesk.notification.domain.throttle import Verdict, decide
from helpdesk.notification.metrics import (
    DEAD,
    DUPLICATES,
    FAILED,
    HELD,
    LATENCY,
    RETRIED,
    SENT,
)
from helpdesk.notification.store import NotificationStore, due

log = get_logger(__name__)

# At most this many sends at once (SMTP and HTTP round trips overlap).
CONCURRENT_SENDS = 16
# An attempt's outcome is written this many times at most while MongoDB is busy or away
# (FerretDB on SQLite answers "database is locked" under write load): an outcome not
# written leaves the delivery pending, and a message already sent would be sent again.
RECORD_TRIES = 8
# The consumer records no more notices while this many deliveries wait in memory (for at
# most BACKLOG_WAIT_SECONDS, so that retries waiting out a backoff never stall it long).
MAX_BACKLOG = 256
BACKLOG_WAIT_SECONDS = 30.0


class NotificationCommands:
    def __init__(
        self,
        store: NotificationStore,
        senders: Senders,
        broker: KafkaBroker | None,
        *,
        group: str,
        managers: Sequence[str],
        team_people: Mapping[str, Sequence[str]],
        portal_url: str,
        survey_url: str,
        typical_resolution: str,
        max_attempts: int,
        retry_base: float,
        retry_cap: float,
        throttle_limit: int,
        throttle_window: timedelta,
    ) -> None:
        self._store = store
        self._senders = senders
        self._broker = broker
        self._group = group
        self._managers = tuple(managers)
        self._team_people = {k: tuple(v) for k, v in team_people.items()}
        self._portal_url = portal_url
        self._survey_url = survey_url
        self._typical_resolution = typical_resolution
        self._max_attempts = max_attempts
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        self._limit = throttle_limit
        self._window = throttle_window
        self._rng = random.Random()
        # What this replica sent to each recipient lately, for flood control.
        self._sent: dict[str, deque[datetime]] = defaultdict(deque)
        self._wake = asyncio.Event()
        # Deliveries this replica will attempt, by id, with their next_at.
        self._ready: dict[str, dict[str, Any]] = {}
        self._in_flight = 0
        # Set whenever an attempt ends: a consumer waiting for room looks again.
        self._room = asyncio.Event()
        self._stopping = False

    # ---- admin

    async def put_person(self, raw: Mapping[str, Any]) -> Person:
        person = parse_person(raw)
        await self._store.put_person(person)
        return person

    async def put_subscription(self, raw: Mapping[str, Any]) -> Subscription:
        subscription = parse_subscription(raw)
        await self._store.put_subscription(subscription)
        return subscription

    async def put_template(self, raw: Mapping[str, Any]) -> Template:
        template = parse_template(raw)
        await self._store.put_template(template)
        return template

    async def preview(self, key: str, language: str) -> Rendered:
        if key not in TEMPLATE_KEYS:
            known = ", ".join(sorted(TEMPLATE_KEYS))
            raise InvalidArgument(
                [FieldViolation("key", f"unknown template {key!r}; known: {known}")]
            )
        return self._render(
            key, language, sample_context(key, language), await self._store.all_templates()
        )

    async def test_send(self, key: str, language: str, channel: str, address: str) -> Rendered:
        """Renders the sample and sends it at once; a refusal says why."""
        try:
            way = Channel(channel.strip().lower())
        except ValueError:
            allowed = ", ".join(c.value for c in Channel)
            raise InvalidArgument(
                [FieldViolation("channel", f"must be one of {allowed}")]
            ) from None
        if not address.strip():
            raise InvalidArgument([FieldViolation("address", "is required")])
        rendered = await self.preview(key, language)
        message = Outgoing(
            delivery_id=f"test:{uuid.uuid4()}",
            channel=way,
            address=address.strip(),
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            event_id="test",
            ticket_id="test",
            template=key,
        )
        try:
            await self._senders.send(message)
        except DeliveryFailed as failure:
            raise FailedPrecondition(
                f"test send failed ({failure.kind}): {failure.reason}"
            ) from None
        return rendered

    @staticmethod
    def _render(
        key: str,
        language: str,
        context: Mapping[str, Any],
        overrides: Mapping[tuple[str, str], Template],
    ) -> Rendered:
        try:
            return render(key, language, context, overrides)
        except ValueError as error:
            raise InvalidArgument([FieldViolation("key", str(error))]) from None

    async def deliveries(
        self, ticket_id: str, recipient: str, status: str, limit: int
    ) -> list[dict[str, Any]]:
        return await self._store.listing(ticket_id, recipient, status, limit)

    async def replay(self, delivery_id: str) -> dict[str, Any]:
        """A dead delivery goes out again, from its first attempt."""
        doc = await self._store.delivery(delivery_id)
        if doc is None:
            raise NotFound(f"delivery {delivery_id} not found")
        if doc["status"] not in ("dead", "failed"):
            raise FailedPrecondition(f"delivery {delivery_id} is {doc['status']}, not dead")
        fields = {"status": "pending", "attempts": 0, "next_at": _now(), "last_error": ""}
        reopened = {**doc, **fields}
        await self._store.reopen(reopened)
        self._hand_over(reopened)
        return reopened

    # ---- events in

    async def on_event(self, facts: Facts, event_time: datetime) -> int:
        """Records the notices an event causes; how many were new (not redeliveries)."""
        await self._wait_for_room()
        people = await self._store.all_people()
        notices = notices_for(
            facts,
            people,
            managers=self._managers,
            team_people=self._team_people,
            subscriptions=await self._store.all_subscriptions(),
        )
        fresh = 0
        overrides = await self._store.all_templates()
        for notice in notices:
            context = self._context(facts, notice)
            rendered = render(notice.template, notice.language, context, overrides)
            delivery = _delivery(notice, rendered, event_time)
            earlier = await self._store.claim(delivery)
            if earlier is None:
                fresh += 1
                self._hand_over(delivery)
            else:
                DUPLICATES.inc()
        return fresh

    def _context(self, facts: Facts, notice: Notice) -> dict[str, Any]:
        return context_for(
            facts,
            notice,
            portal_url=self._portal_url,
            survey_url=self._survey_url.format(ticket_id=facts.ticket_id),
            typical_resolution=self._typical_resolution,
        )

    async def _wait_for_room(self) -> None:
        """Waits while the worker has MAX_BACKLOG deliveries to try (BACKLOG_WAIT_SECONDS
        at most)."""
        deadline = time.monotonic() + BACKLOG_WAIT_SECONDS
        while (
            len(self._ready) + self._in_flight >= MAX_BACKLOG
            and not self._stopping
            and (left := deadline - time.monotonic()) > 0
        ):
            self._room.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._room.wait(), timeout=left)

    # ---- the worker

    def _hand_over(self, doc: dict[str, Any]) -> None:
        """The worker attempts this delivery at its next_at, without reading it again."""
        self._ready[doc["_id"]] = doc
        self._wake.set()

    async def run(self, sweep_seconds: float) -> None:
        """Sends what is due, for ever: at once what is handed over, and what a sweep finds
        at start and every `sweep_seconds`."""
        next_sweep = 0.0
        while not self._stopping:
            if time.monotonic() >= next_sweep:
                # A failed sweep waits a full period too: on FerretDB it is a scan that may
                # time out under load, and trying again at once piles scans up.
                next_sweep = time.monotonic() + sweep_seconds
                try:
                    await self.sweep()
                except Exception:
                    log.exception("delivery_sweep_failed")
            try:
                await self.send_due()
            except Exception:
                log.exception("delivery_round_failed")
            wait = min(next_sweep - time.monotonic(), self._next_due_in())
            if wait > 0 and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=wait)
            self._wake.clear()

    def stop(self) -> None:
        """The worker ends after the attempts in flight: cancelling one the receiver has
        already taken would leave it pending, to be sent again at the next start."""
        self._stopping = True
        self._wake.set()

    def _next_due_in(self) -> float:
        """Seconds until the earliest delivery held in memory is due (inf: none)."""
        if not self._ready:
            return float("inf")
        now = _now()
        earliest = min(_utc(d.get("next_at") or now) for d in self._ready.values())
        return max(0.0, (earliest - now).total_seconds())

    async def sweep(self) -> None:
        """Reads the open deliveries: pending ones not held here are taken on, digests due
        are recorded, and ones a crash left with a final status are finished."""
        held: list[dict[str, Any]] = []
        for doc in await self._store.open_deliveries():
            status = doc.get("status")
            if status == "pending":
                self._ready.setdefault(doc["_id"], doc)
            elif status == "held":
                held.append(doc)
            else:
                await self._store.finish(doc)
        await self.send_digests(held)

    async def send_due(self) -> None:
        ready = due(list(self._ready.values()), _now())
        for doc in ready:
            del self._ready[doc["_id"]]
        semaphore = asyncio.Semaphore(CONCURRENT_SENDS)

        async def one(doc: dict[str, Any]) -> None:
            async with semaphore:
                try:
                    await self._attempt(doc)
                except Exception:
                    # MongoDB away while recording the outcome: the next sweep finds it
                    # pending and tries again.
                    log.exception("delivery_attempt_failed", id=doc["_id"])
                finally:
                    self._in_flight -= 1
                    self._room.set()

        self._in_flight += len(ready)

        await asyncio.gather(*(one(doc) for doc in ready))

    async def _attempt(self, doc: dict[str, Any]) -> None:
        now = _now()
        recipient = f"{doc['channel']}:{doc['recipient']}"
        recent = self._sent[recipient]
        while recent and recent[0] < now - self._window:
            recent.popleft()
        if (
            not doc.get("digest")
            and decide(list(recent), now, limit=self._limit, window=self._window) == Verdict.HOLD
        ):
            await self._record(doc["_id"], {"status": "held", "held_at": now}, final=False)
            HELD.labels(doc["channel"]).inc()
            return
        attempts = int(doc.get("attempts", 0)) + 1
        # Sent by the worker, long after the event's consumer span ended: the send is a
        # child of the trace the delivery was recorded in.
        with continued_span(
            f"notification.deliver {doc['channel']}",
            str(doc.get("traceparent", "")),
            kind=trace.SpanKind.CLIENT,
            attributes=_delivery_attributes(doc, attempts),
        ) as span:
            try:
                await self._senders.send(_outgoing(doc))
            except DeliveryFailed as failure:
                span.set_status(trace.StatusCode.ERROR, failure.reason[:200])
                span.set_attribute("error.type", failure.kind.value)
                await self._failed(doc, attempts, failure)
                return
        recent.append(now)
        sent_at = _now()
        await self._record(
            doc["_id"], {"status": "sent", "attempts": attempts, "sent_at": sent_at}, final=True
        )
        SENT.labels(doc["channel"]).inc()
        if doc.get("event_time"):
            LATENCY.labels(doc["channel"]).observe(
                max(0.0, (sent_at - _utc(doc["event_time"])).total_seconds())
            )

    async def _record(self, delivery_id: str, fields: dict[str, Any], *, final: bool) -> None:
        """Writes an attempt's outcome (`final`: the delivery is finished), trying again
        (0.1 s, doubling to 2 s) while MongoDB is busy or away."""
        for tries in range(1, RECORD_TRIES + 1):
            try:
                if final:
                    await self._store.close(delivery_id, fields)
                else:
                    await self._store.update(delivery_id, fields)
                return
            except PyMongoError:
                if tries == RECORD_TRIES:
                    raise
                log.warning("delivery_record_retry", id=delivery_id, tries=tries)
                await asyncio.sleep(min(2.0, 0.1 * 2 ** (tries - 1)))

    async def _failed(self, doc: dict[str, Any], attempts: int, failure: DeliveryFailed) -> None:
        channel = doc["channel"]
        FAILED.labels(channel, failure.kind.value).inc()
        if failure.kind is Failure.TRANSIENT and attempts < self._max_attempts:
            wait = backoff(attempts, base=self._retry_base, cap=self._retry_cap, rng=self._rng)
            fields = {
                "attempts": attempts,
                "next_at": _now() + timedelta(seconds=wait),
                "last_error": failure.reason[:1000],
            }
            await self._record(doc["_id"], fields, final=False)
            self._hand_over({**doc, **fields})
            RETRIED.labels(channel).inc()
            # A timeout may come after the receiver took the message: this retry is then the
            # duplicate it sees, so each one is told.
            log.info(
                "delivery_retry", id=doc["_id"], attempts=attempts, wait=wait, reason=failure.reason
            )
            return
        await self._record(
            doc["_id"],
            {"status": "dead", "attempts": attempts, "last_error": failure.reason[:1000]},
            final=True,
        )
        DEAD.labels(channel).inc()
        log.warning("delivery_dead", id=doc["_id"], reason=failure.reason)
        if self._broker is not None:
            body = {k: v for k, v in doc.items() if k in _PARKED}
            await self._broker.publish(
                json.dumps(body, default=str, ensure_ascii=False).encode(),
                topic=dead_letter_topic(self._group),
                key=str(doc["ticket_id"]).encode(),
                headers={"x-dlq-reason": failure.reason[:2000], "x-dlq-delivery": doc["_id"]},
            )

    async def send_digests(self, held_docs: Sequence[dict[str, Any]]) -> None:
        """Held notices whose window has passed go out as one message per recipient."""
        now = _now()
        groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        for doc in held_docs:
            groups[(doc["channel"], doc["recipient"], doc["address"])].append(doc)
        for (channel, recipient, address), held in groups.items():
            if min(_utc(d["held_at"]) for d in held) > now - self._window:
                continue
            held.sort(key=lambda d: d["created_at"])
            language = held[0].get("language", "en")
            combined = digest(
                [Rendered(d["subject"], d["text"], d.get("html", "")) for d in held], language
            )
            first = held[0]
            key = f"digest:{first['_id']}"
            doc = {
                **_delivery_fields(first, combined),
                "_id": key,
                "template": "digest",
                "digest": [d["_id"] for d in held],
            }
            earlier = await self._store.claim(doc)
            if earlier is None:
                self._hand_over(doc)
                included = set(doc["digest"])
            else:
                # Recorded before a crash: it carries only the notices held then; any held
                # since wait for the next digest.
                included = set(earlier.get("digest") or ())
            for d in held:
                if d["_id"] in included:
                    await self._store.close(d["_id"], {"status": "digested", "digest_id": key})
            log.info(
                "digest_recorded",
                recipient=recipient,
                channel=channel,
                address=address,
                count=len(included),
            )


_PARKED = (
    "_id",
    "event_id",
    "ticket_id",
    "template",
    "recipient",
    "channel",
    "address",
    "subject",
    "text",
)


def _delivery(notice: Notice, rendered: Rendered, event_time: datetime) -> dict[str, Any]:
    return {
        "_id": f"{notice.event_id}:{notice.recipient}:{notice.channel.value}",
        "event_id": notice.event_id,
        "ticket_id": notice.ticket_id,
        "template": notice.template,
        "audience": notice.audience.value,
        "recipient": notice.recipient,
        "channel": notice.channel.value,
        "address": notice.address,
        "language": notice.language,
        "event_time": store_precision(event_time),
        # The event's consumer span: the send continues its trace.
        "traceparent": current_traceparent(),
        **_unsent(rendered),
    }


def _delivery_fields(first: dict[str, Any], rendered: Rendered) -> dict[str, Any]:
    return {
        **{
            k: first[k]
            for k in ("event_id", "ticket_id", "recipient", "channel", "address", "language")
        },
        "audience": first.get("audience", ""),
        "event_time": first.get("event_time"),
        "traceparent": first.get("traceparent", ""),
        **_unsent(rendered),
    }


def _unsent(rendered: Rendered) -> dict[str, Any]:
    """The message of a delivery and the state of one not tried yet."""
    now = _now()
    return {
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
        "status": "pending",
        "attempts": 0,
        "next_at": now,
        "created_at": now,
        "last_error": "",
    }


def _delivery_attributes(doc: dict[str, Any], attempt: int) -> dict[str, str | int]:
    """What a delivery's span says: which delivery, by which channel, to whom, which try."""
    return {
        "helpdesk.delivery.id": str(doc["_id"]),
        "helpdesk.delivery.channel": str(doc["channel"]),
        "helpdesk.delivery.template": str(doc.get("template", "")),
        "helpdesk.delivery.recipient": str(doc.get("recipient", "")),
        "helpdesk.delivery.attempt": attempt,
        "helpdesk.ticket.id": str(doc.get("ticket_id", "")),
    }


def _outgoing(doc: dict[str, Any]) -> Outgoing:
    return Outgoing(
        delivery_id=doc["_id"],
        channel=Channel(doc["channel"]),
        address=doc["address"],
        subject=doc["subject"],
        text=doc["text"],
        html=doc.get("html", ""),
        event_id=doc["event_id"],
        ticket_id=doc["ticket_id"],
        template=doc["template"],
    )


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _now() -> datetime:
    return store_precision(datetime.now(UTC))
