"""What each request does, in order: domain decisions, then one store write with its events.

The edges (gRPC, Kafka) call these; they never talk to the store directly.
"""

import os
import signal
import uuid
from datetime import UTC, datetime

from helpdesk.api.events.v1 import ticket_events_pb2
from helpdesk.core.errors import FieldViolation, InvalidArgument, NotFound, Unavailable
from helpdesk.core.kafka import TICKET_EVENTS_TOPIC
from helpdesk.core.logging import get_logger
from helpdesk.core.mongo import store_precision
from helpdesk.core.outbox import OutboxEvent, OutboxRelay, outbox_fields
from helpdesk.intake import domain
from helpdesk.intake.mapping import ticket_to_proto
from helpdesk.intake.metrics import TICKETS_CREATED
from helpdesk.intake.store import DuplicateKey, TicketStore

log = get_logger(__name__)

EVENT_SOURCE = "helpdesk/intake"
TICKET_CREATED = "helpdesk.ticket.created.v1"
# Tries to draw a ticket number no other replica took at the same moment.
NUMBER_ATTEMPTS = 10


class TicketCommands:
    def __init__(
        self,
        store: TicketStore,
        relay: OutboxRelay,
        *,
        number_prefix: str = "HD",
        crash_after_store: bool = False,
    ) -> None:
        self._store = store
        self._relay = relay
        self._prefix = number_prefix
        self._crash_after_store = crash_after_store

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
        for _ in range(NUMBER_ATTEMPTS):
            sequence = await self._store.next_sequence()
            ticket = domain.open_ticket(
                new,
                ticket_id=ticket_id,
                number=domain.format_number(self._prefix, sequence),
                sequence=sequence,
                request_id=request_id,
                now=now,
            )
            created = self._created_event(ticket)
            try:
                await self._store.insert(ticket, outbox_fields([created]))
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

    async def list(
        self, *, status: domain.Status | None, page_size: int, page_token: str
    ) -> tuple[list[domain.Ticket], str]:
        """One page, newest first, and the token of the next page ("" on the last)."""
        size = domain.page_size(page_size)
        status_value = status.value if status else ""
        before = domain.decode_page_token(page_token, status_value)
        tickets = await self._store.page(
            status=status_value or None, before_sequence=before, limit=size + 1
        )
        if len(tickets) > size:
            tickets = tickets[:size]
            return tickets, domain.encode_page_token(tickets[-1].sequence, status_value)
        return tickets, ""
