"""What each request does, in order: domain decisions, then one store write with its events.

The edges (gRPC, Kafka) call these; they never talk to the store directly.
"""

import os
import signal
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from google.protobuf.message import Message

from helpdesk.api.events.v1 import ticket_events_pb2
from helpdesk.core.errors import (
    Aborted,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from helpdesk.core.kafka import TICKET_EVENTS_TOPIC
from helpdesk.core.logging import get_logger
from helpdesk.core.mongo import DocumentLocks, store_precision
from helpdesk.core.outbox import OutboxEvent, OutboxRelay, outbox_fields
from helpdesk.intake import domain, lifecycle, privacy, reports
from helpdesk.intake.lifecycle import Action, Actor, Role
from helpdesk.intake.mapping import (
    STATUS_TO_PROTO,
    actor_to_document,
    actor_to_proto,
    change_to_proto,
    comment_from_document,
    comment_to_document,
    comment_to_proto,
    history_entry_from_document,
    link_to_proto,
    ticket_from_document,
    ticket_to_proto,
)
from helpdesk.intake.metrics import TICKETS_CREATED, TICKETS_DEDUPLICATED, observe_change
from helpdesk.intake.store import DuplicateKey, TicketStore

log = get_logger(__name__)

# Articles that may solve a new ticket, from the knowledge base.
Suggest = Callable[[domain.NewTicket], Awaitable[tuple[domain.ArticleSuggestion, ...]]]

EVENT_SOURCE = "helpdesk/intake"
# Who SLA changes are by in a ticket's history.
SLA_ACTOR = "sla"
TICKET_CREATED = "helpdesk.ticket.created.v1"
# Tries to draw a ticket number no other replica took at the same moment.
NUMBER_ATTEMPTS = 10
# Tries to apply a change when other writes to the same ticket keep winning.
CHANGE_ATTEMPTS = 5


class CommentResult(NamedTuple):
    ticket: domain.Ticket
    comment: lifecycle.Comment
    # True when the idempotency key was seen before: nothing was added this time.
    replayed: bool


class TicketCommands:
    def __init__(
        self,
        store: TicketStore,
        relay: OutboxRelay,
        *,
        number_prefix: str = "HD",
        crash_after_store: bool = False,
        locks: DocumentLocks | None = None,
        dedup_window: timedelta = timedelta(0),
        suggest: Suggest | None = None,
    ) -> None:
        self._store = store
        self._relay = relay
        self._prefix = number_prefix
        self._crash_after_store = crash_after_store
        self._locks = locks or DocumentLocks()
        self._dedup_window = dedup_window
        self._suggest = suggest

    async def create(
        self, draft: domain.TicketDraft, default_channel: domain.Channel = domain.Channel.API
    ) -> domain.Ticket:
        """Opens a ticket, or returns the one already opened for the same request id."""
        new = domain.validate_new_ticket(draft, default_channel)
        # The id follows from the client's key, so a replay collides on the primary key at
        # insert: no lookup before the write (FerretDB scans for every lookup).
        ticket_id = domain.ticket_id_for(new.request_id) if new.request_id else str(uuid.uuid4())
        request_id = new.request_id or f"ticket:{ticket_id}"
        now = store_precision(datetime.now(UTC))
        duplicate_of = await self._claim_dedup(new, ticket_id, now)
        if duplicate_of is not None:
            return duplicate_of
        suggestions = await self._suggest(new) if self._suggest else ()
        for _ in range(NUMBER_ATTEMPTS):
            sequence = await self._store.next_sequence()
            ticket = domain.open_ticket(
                new,
                ticket_id=ticket_id,
                number=domain.format_number(self._prefix, sequence),
                sequence=sequence,
                request_id=request_id,
                now=now,
                suggestions=suggestions,
            )
            created = self._created_event(ticket)
            history = [
                history_entry(
                    now, Actor(new.requester.email, Role.REQUESTER), "created", (), created, ticket
                )
            ]
            try:
                await self._store.insert(ticket, outbox_fields([created]), history)
                break
            except DuplicateKey:
                # The same request was stored before (a retry, a redelivery, a race): that
                # ticket is the answer. The number drawn for this attempt stays unused.
                existing = await self._store.by_id(ticket_id)
                if existing:
                    return existing
                # Otherwise another replica took this number: draw the next one.
                log.warning("ticket_number_taken", number=ticket.number)
        else:
            raise Unavailable("could not draw a free ticket number; retry the call")
        if self._crash_after_store:
            log.warning("fault_injection_crash_after_store", ticket=ticket.number)
            os.kill(os.getpid(), signal.SIGKILL)
        self._relay.publish_soon(ticket.id, ticket.version, [created])
        TICKETS_CREATED.labels(ticket.channel.value, ticket.priority.value).inc()
        log.info(
            "ticket_created",
            ticket=ticket.number,
            ticket_id=ticket.id,
            channel=ticket.channel.value,
        )
        return ticket

    async def _claim_dedup(
        self, new: domain.NewTicket, ticket_id: str, now: datetime
    ) -> domain.Ticket | None:
        """The open ticket this request repeats (the request is added to it), or None."""
        key = domain.dedup_key(new) if self._dedup_window else None
        if key is None:
            return None
        for _ in range(2):
            holder = await self._store.claim_dedup(key, ticket_id, now, now + self._dedup_window)
            if holder is None:
                return None
            existing = await self._store.by_id(holder)
            if existing and existing.status in domain.OPEN_STATUSES:
                ticket, _, _ = await self.comment(
                    existing.id,
                    Actor(new.requester.email, Role.REQUESTER),
                    f"{new.subject}\n\n{new.description}",
                    internal=False,
                    attachments=[],
                    # A replayed request adds to the open ticket once.
                    idempotency_key=f"request:{new.request_id}" if new.request_id else "",
                )
                TICKETS_DEDUPLICATED.labels(new.channel.value).inc()
                log.info("ticket_deduplicated", ticket=ticket.number, channel=new.channel.value)
                return ticket
            # The holder is gone, resolved or closed: free the window and claim it afresh.
            await self._store.release_dedup(key, holder)
        return None

    def _created_event(self, ticket: domain.Ticket) -> OutboxEvent:
        return OutboxEvent.new(
            event_type=TICKET_CREATED,
            source=EVENT_SOURCE,
            topic=TICKET_EVENTS_TOPIC,
            key=ticket.id,
            payload=ticket_events_pb2.TicketCreated(
                ticket=ticket_to_proto(ticket)
            ).SerializeToString(),
            sequence=ticket.version,
        )

    async def get(self, id_or_number: str) -> domain.Ticket:
        key = id_or_number.strip()
        if not key:
            raise InvalidArgument([FieldViolation("id", "is required")])
        parsed = domain.parse_number(key)
        ticket = (
            await self._store.by_number(domain.format_number(*parsed))
            if parsed
            else await self._store.by_id(key)
        )
        if ticket is None:
            raise NotFound(f"ticket {key} not found")
        return ticket

    async def page(
        self, query: domain.TicketQuery, page_size: int, page_token: str
    ) -> tuple[list[domain.Ticket], str]:
        """One page of a listing and the token of the next page ("" on the last)."""
        size = domain.page_size(page_size)
        listing = query.fingerprint()
        after = domain.decode_page_token(page_token, listing)
        tickets = await self._store.page(query, after, limit=size + 1)
        if len(tickets) > size:
            tickets = tickets[:size]
            return tickets, domain.encode_page_token(tickets[-1].sequence, listing)
        return tickets, ""

    async def update(
        self,
        key: str,
        patch: lifecycle.TicketPatch,
        mask: list[str],
        actor: Actor,
        expected_version: int = 0,
    ) -> domain.Ticket:
        """Changes the masked fields; ABORTED when the caller's version is stale."""
        return await self._change(
            key,
            lambda t, now: lifecycle.update_ticket(t, patch, mask, actor, now),
            expected_version,
        )

    async def comment(
        self,
        key: str,
        author: Actor,
        body: str,
        internal: bool,
        attachments: list[lifecycle.Attachment],
        idempotency_key: str = "",
    ) -> "CommentResult":
        """Adds a reply or note; a repeated idempotency key returns the comment it added."""
        comments: list[lifecycle.Comment] = []

        def decide(ticket: domain.Ticket, now: datetime) -> lifecycle.Change:
            change = lifecycle.add_comment(
                ticket, author, body, internal, attachments, now, idempotency_key
            )
            if change.comment is not None:
                comments.append(change.comment)
            return change

        ticket = await self._change(key, decide)
        if comments:
            return CommentResult(ticket, comments[-1], replayed=False)
        comment_id = lifecycle.comment_id_for(ticket.id, idempotency_key.strip())
        _, stored = await self.history(ticket.id)
        for comment in stored:
            if comment.id == comment_id:
                return CommentResult(ticket, comment, replayed=True)
        # Erased since, or the key came back after it left the remembered window.
        raise NotFound(f"the comment of idempotency key {idempotency_key!r} is gone")

    async def assign(
        self,
        key: str,
        *,
        team: str,
        tier: str,
        agent_id: str,
        idempotency_key: str,
        reason: str,
        actor: Actor,
    ) -> domain.Ticket:
        return await self._change(
            key,
            lambda t, now: lifecycle.assign(
                t,
                team=team,
                tier=tier,
                agent_id=agent_id,
                idempotency_key=idempotency_key,
                reason=reason,
                actor=actor,
                now=now,
            ),
        )

    async def rate(self, key: str, actor: Actor, score: int, comment: str) -> domain.Ticket:
        return await self._change(key, lambda t, now: lifecycle.rate(t, actor, score, comment, now))

    async def solve_with_article(self, key: str, actor: Actor, article_id: str) -> domain.Ticket:
        return await self._change(
            key, lambda t, now: lifecycle.solve_with_article(t, actor, article_id, now)
        )

    async def link(
        self, key: str, other_key: str, kind: str, actor: Actor
    ) -> tuple[domain.Ticket, domain.Ticket]:
        """Links both ways; a repeat (or a retry after a crash between the two) completes it."""
        checked = lifecycle.check_link_kind(kind)
        other = await self.get(other_key)
        ticket = await self._change(
            key, lambda t, now: lifecycle.link(t, other, checked, actor, now)
        )
        reverse = lifecycle.REVERSE_LINK[checked]
        other = await self._change(
            other.id, lambda o, now: lifecycle.link(o, ticket, reverse, actor, now)
        )
        return ticket, other

    async def merge(
        self, source_key: str, target_key: str, actor: Actor
    ) -> tuple[domain.Ticket, domain.Ticket]:
        """The target first (link and note), then the source (closed, merged into the target):
        a crash in between leaves both usable, and a retry completes the merge."""
        source = await self.get(source_key)
        target = await self.get(target_key)
        # Refused before the target's side is written, so a refusal changes nothing.
        lifecycle.check_merge(source, target)
        target = await self._change(
            target.id, lambda t, now: lifecycle.receive_merge(t, source, actor, now)
        )
        source = await self._change(
            source.id, lambda s, now: lifecycle.merge_into(s, target, actor, now)
        )
        return source, target

    async def export_requester(
        self, email: str
    ) -> list[tuple[domain.Ticket, list[Any], list[Any]]]:
        """Every ticket of a requester with its comments and history entries."""
        docs = await self._store.by_requester(privacy.checked_email(email))
        return [
            (
                ticket_from_document(doc),
                [comment_from_document(c) for c in doc.get("comments") or ()],
                [history_entry_from_document(e) for e in doc.get("history") or ()],
            )
            for doc in docs
        ]

    async def erase_requester(self, email: str, actor: Actor, reason: str) -> tuple[int, str]:
        """Erases a requester's personal data from all their tickets; returns how many and
        the alias. Safe to repeat: erased tickets no longer carry the address."""
        lifecycle.check_actor(actor)
        address = privacy.checked_email(email)
        alias = privacy.alias_for(address)
        erased = 0
        for doc in await self._store.by_requester(address):
            async with self._locks.hold(doc["_id"]):
                for _ in range(CHANGE_ATTEMPTS):
                    if await self._erase_one(doc["_id"], address, alias, actor, reason):
                        erased += 1
                        break
                else:
                    raise Aborted(f"ticket {doc['number']} keeps changing; try again")
        log.info("requester_erased", tickets=erased, alias=alias)
        return erased, alias

    async def _erase_one(
        self, ticket_id: str, email: str, alias: str, actor: Actor, reason: str
    ) -> bool:
        doc = await self._store.document(ticket_id)
        if doc is None or (doc.get("requester") or {}).get("email") != email:
            return True  # erased meanwhile
        before = ticket_from_document(doc)
        now = store_precision(datetime.now(UTC))
        ticket = replace(
            privacy.erase_ticket(before, alias), version=before.version + 1, updated_at=now
        )
        event = OutboxEvent.new(
            event_type="helpdesk.ticket.erased.v1",
            source=EVENT_SOURCE,
            topic=TICKET_EVENTS_TOPIC,
            key=ticket.id,
            payload=ticket_events_pb2.TicketErased(
                ticket=ticket_to_proto(ticket), actor=actor_to_proto(actor)
            ).SerializeToString(),
            sequence=ticket.version * 100,
        )
        audit = lifecycle.FieldChange("personal_data", "", f"erased: {reason.strip()[:500]}")
        history = [
            *privacy.erase_history(list(doc.get("history") or ()), email, alias),
            history_entry(now, actor, "erased", (audit,), event, ticket),
        ]
        comments = privacy.erase_comments(list(doc.get("comments") or ()), email, alias)
        stored = await self._store.rewrite(
            before.version, ticket, outbox_fields([event]), history, comments
        )
        if stored:
            self._relay.publish_soon(ticket.id, ticket.version, [event])
        return stored

    async def report(
        self, start: datetime | None, end: datetime | None, group_by: str
    ) -> tuple[reports.Figures, list[reports.Figures]]:
        grouping = reports.check_period(start, end, group_by)
        assert start is not None
        assert end is not None
        facts = await self._store.report_facts(start, end)
        return reports.report(facts, start, end, grouping)

    async def record_sla(self, ticket_id: str, metric: str, state: str, event_id: str) -> None:
        """What the SLA service reported for one metric of a ticket (at_risk, breached, met);
        a change of the ticket's worst state goes into its history."""
        entry = {
            "at": store_precision(datetime.now(UTC)),
            "actor": actor_to_document(Actor(SLA_ACTOR, Role.SYSTEM)),
            "action": "sla_changed",
            "event_id": event_id,
            "reason": f"{metric.replace('_', ' ')}: {state.replace('_', ' ')}",
        }
        await self._store.record_sla(ticket_id, metric, state, entry)

    async def conversation_ticket(self, conversation: str) -> str | None:
        """The ticket a chat conversation continues (None: the next message opens one)."""
        return await self._store.conversation_ticket(conversation)

    async def continue_conversation(self, conversation: str, ticket_id: str) -> None:
        """From now on the conversation's messages go to this ticket."""
        await self._store.set_conversation_ticket(conversation, ticket_id)

    async def backlog(self) -> dict[tuple[str, str], int]:
        """Tickets still being worked, by (team, status)."""
        return await self._store.backlog()

    async def history(
        self, key: str
    ) -> tuple[list[lifecycle.HistoryEntry], list[lifecycle.Comment]]:
        ticket = await self.get(key)
        found = await self._store.history(ticket.id)
        if found is None:
            raise NotFound(f"ticket {key} not found")
        entries, comments = found
        return (
            [history_entry_from_document(e) for e in entries],
            [comment_from_document(c) for c in comments],
        )

    async def _change(
        self,
        key: str,
        decide: Callable[[domain.Ticket, datetime], lifecycle.Change],
        expected_version: int = 0,
    ) -> domain.Ticket:
        """Reads the ticket, lets the domain decide, writes the result if nobody wrote in
        between (else reads again, or refuses when the caller named a version)."""
        ticket_id = key.strip() if domain.parse_number(key) is None else (await self.get(key)).id
        for _ in range(CHANGE_ATTEMPTS):
            # One writer per ticket in this process, reading inside the lock: FerretDB does
            # not isolate conditional updates from each other (MongoDB does), and across
            # replicas the version condition still refuses a lost update.
            async with self._locks.hold(ticket_id):
                ticket = await self.get(ticket_id)
                if expected_version and ticket.version != expected_version:
                    raise Aborted(
                        f"ticket {ticket.number} is at version {ticket.version}, "
                        f"not {expected_version}; read it again"
                    )
                now = store_precision(datetime.now(UTC))
                change = decide(ticket, now)
                if change.is_noop:
                    return ticket
                events, history = change_records(change, now)
                comment = comment_to_document(change.comment) if change.comment else None
                stored = await self._store.apply(
                    ticket.version, change.ticket, outbox_fields(events), history, comment
                )
            if stored:
                self._relay.publish_soon(change.ticket.id, change.ticket.version, events)
                observe_change(change)
                log.info(
                    "ticket_changed",
                    ticket=change.ticket.number,
                    actions=[a.value for a in change.actions],
                    version=change.ticket.version,
                )
                return change.ticket
            if expected_version:
                raise Aborted(f"ticket {ticket.number} changed meanwhile; read it again")
        raise Aborted(f"ticket {key} keeps changing; try again")


def history_entry(
    now: datetime,
    actor: Actor,
    action: str,
    changes: tuple[lifecycle.FieldChange, ...],
    event: OutboxEvent,
    ticket: domain.Ticket,
    reason: str = "",
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "at": now,
        "actor": actor_to_document(actor),
        "action": action,
        "changes": [{"field": c.field, "old": c.old, "new": c.new} for c in changes],
        "event_id": event.cloud_event.id,
        "version": ticket.version,
    }
    if reason:
        entry["reason"] = reason
    return entry


def change_records(
    change: lifecycle.Change, now: datetime
) -> tuple[list[OutboxEvent], list[dict[str, Any]]]:
    """The events to publish and the history entries to keep for one change, in order."""
    ticket = change.ticket
    proto = ticket_to_proto(ticket)
    actor = actor_to_proto(change.actor)
    status_change = tuple(c for c in change.changes if c.field == "status")
    other_changes = tuple(c for c in change.changes if c.field != "status")
    events: list[OutboxEvent] = []
    history: list[dict[str, Any]] = []
    for action in change.actions:
        payload: Message
        changes: tuple[lifecycle.FieldChange, ...] = ()
        match action:
            case Action.UPDATED:
                changes = other_changes
                payload = ticket_events_pb2.TicketUpdated(
                    ticket=proto, changes=[change_to_proto(c) for c in changes], actor=actor
                )
            case Action.STATUS_CHANGED:
                changes = status_change
                payload = ticket_events_pb2.TicketStatusChanged(
                    ticket=proto,
                    from_status=STATUS_TO_PROTO[change.before.status],
                    to_status=STATUS_TO_PROTO[ticket.status],
                    actor=actor,
                )
            case Action.REOPENED:
                payload = ticket_events_pb2.TicketReopened(ticket=proto, actor=actor)
            case Action.RESOLVED:
                payload = ticket_events_pb2.TicketResolved(ticket=proto, actor=actor)
            case Action.CLOSED:
                payload = ticket_events_pb2.TicketClosed(ticket=proto, actor=actor)
            case Action.COMMENTED:
                assert change.comment is not None
                payload = ticket_events_pb2.TicketCommented(
                    ticket=proto, comment=comment_to_proto(change.comment)
                )
            case Action.RATED:
                changes = change.changes
                payload = ticket_events_pb2.TicketRated(ticket=proto, bad=ticket.review_required)
            case Action.MERGED:
                changes = tuple(c for c in other_changes if c.field == "merged_into")
                payload = ticket_events_pb2.TicketMerged(
                    ticket=proto, target_number=ticket.merged_into, actor=actor
                )
            case Action.LINKED:
                assert change.link is not None
                changes = tuple(c for c in other_changes if c.field == "links")
                payload = ticket_events_pb2.TicketLinked(
                    ticket=proto, link=link_to_proto(change.link), actor=actor
                )
            case Action.SELF_SOLVED:
                changes = tuple(c for c in other_changes if c.field == "solved_by_article_id")
                payload = ticket_events_pb2.TicketSelfSolved(
                    ticket=proto, article_id=ticket.solved_by_article_id, actor=actor
                )
            case Action.ASSIGNED:
                changes = other_changes
                payload = ticket_events_pb2.TicketAssigned(
                    ticket=proto,
                    actor=actor,
                    previous_team=change.before.team,
                    previous_assignee_id=change.before.assignee_id,
                    reason=change.reason,
                )
        event = OutboxEvent.new(
            event_type=f"helpdesk.ticket.{action.value}.v1",
            source=EVENT_SOURCE,
            topic=TICKET_EVENTS_TOPIC,
            key=ticket.id,
            payload=payload.SerializeToString(),
            sequence=ticket.version * 100 + len(events),
        )
        events.append(event)
        reason = change.reason if action == Action.ASSIGNED else ""
        history.append(
            history_entry(now, change.actor, action.value, changes, event, ticket, reason)
        )
    return events, history
