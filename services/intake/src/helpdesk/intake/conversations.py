"""Chat conversations into tickets: the first message opens one, later messages in the same
conversation are comments on it, and a message after it closed opens a follow-up.

Carries out what chat.py reads. Replays (a webhook delivered twice, a retry after a
timeout) add nothing: the message key is the opening ticket's request id and each
comment's idempotency key.
"""

import logging
from dataclasses import dataclass
from enum import StrEnum

from opentelemetry import trace

from helpdesk.core.errors import FailedPrecondition, NotFound
from helpdesk.core.logging import get_logger
from helpdesk.core.mongo import DocumentLocks
from helpdesk.intake import chat, domain
from helpdesk.intake.commands import TicketCommands
from helpdesk.intake.domain import MAX_DESCRIPTION, Channel, Status
from helpdesk.intake.lifecycle import Actor, Role
from helpdesk.intake.metrics import CHAT_MESSAGES

log = get_logger(__name__)
tracer = trace.get_tracer(__name__)

# How far a message follows tickets merged into others.
MAX_MERGE_HOPS = 5


class ChatOutcome(StrEnum):
    CREATED = "created"
    COMMENTED = "commented"
    # The same message delivered again: nothing added.
    DUPLICATE = "duplicate"
    IGNORED = "ignored"


@dataclass(frozen=True)
class ChatResult:
    outcome: ChatOutcome
    reason: str = ""
    ticket_id: str = ""
    ticket_number: str = ""


class ConversationIntake:
    def __init__(self, commands: TicketCommands, locks: DocumentLocks | None = None) -> None:
        self._commands = commands
        # Two messages of one new conversation at once must not open two tickets.
        self._locks = locks or DocumentLocks()

    async def receive(self, message: chat.ChatMessage | chat.Ignored) -> ChatResult:
        """One chat message as a ticket or a comment; refusals raise, outages too (retry)."""
        if isinstance(message, chat.Ignored):
            result = ChatResult(ChatOutcome.IGNORED, message.reason)
            platform = "unknown"
        else:
            platform = message.platform.value
            with tracer.start_as_current_span("intake.chat.receive") as span:
                span.set_attribute("helpdesk.chat.platform", platform)
                async with self._locks.hold(message.conversation):
                    result = await self._receive(message)
                span.set_attribute("helpdesk.chat.outcome", result.outcome.value)
                span.set_attribute("helpdesk.ticket.number", result.ticket_number)
        CHAT_MESSAGES.labels(platform, result.outcome.value).inc()
        log.log(
            logging.INFO,
            "chat_" + result.outcome.value,
            platform=platform,
            ticket=result.ticket_number,
            reason=result.reason,
        )
        return result

    async def _receive(self, message: chat.ChatMessage) -> ChatResult:
        opened = await self._find(domain.ticket_id_for(message.key))
        if opened is not None:
            # This very message opened a ticket before; make sure the conversation knows.
            if await self._commands.conversation_ticket(message.conversation) is None:
                await self._commands.continue_conversation(message.conversation, opened.id)
            return ChatResult(ChatOutcome.DUPLICATE, "", opened.id, opened.number)
        ticket = await self._current_ticket(message.conversation)
        if ticket is not None and ticket.status != Status.CLOSED:
            try:
                return await self._comment(message, ticket)
            except FailedPrecondition:
                ticket = await self._commands.get(ticket.id)  # closed meanwhile: a follow-up
        return await self._open(message, follows=ticket)

    async def _find(self, key: str) -> domain.Ticket | None:
        try:
            return await self._commands.get(key)
        except NotFound:
            return None

    async def _current_ticket(self, conversation: str) -> domain.Ticket | None:
        ticket_id = await self._commands.conversation_ticket(conversation)
        ticket = await self._find(ticket_id) if ticket_id else None
        hops = 0
        while ticket and ticket.status == Status.CLOSED and ticket.merged_into:
            if hops == MAX_MERGE_HOPS:
                break
            ticket, hops = await self._find(ticket.merged_into), hops + 1
        return ticket

    async def _comment(self, message: chat.ChatMessage, ticket: domain.Ticket) -> ChatResult:
        # In a group chat anyone may write; only the requester's messages are public replies.
        by_requester = message.requester_email == ticket.requester.email
        if by_requester:
            author, body = Actor(message.requester_email, Role.REQUESTER), message.text
        else:
            author = Actor(f"intake-{message.platform.value}", Role.SYSTEM)
            body = f"{message.sender_name} wrote in the chat:\n\n{message.text}"[:MAX_DESCRIPTION]
        ticket, _, replayed = await self._commands.comment(
            ticket.id, author, body, not by_requester, [], idempotency_key=message.key
        )
        outcome = ChatOutcome.DUPLICATE if replayed else ChatOutcome.COMMENTED
        return ChatResult(outcome, "", ticket.id, ticket.number)

    async def _open(self, message: chat.ChatMessage, follows: domain.Ticket | None) -> ChatResult:
        ticket = await self._commands.create(
            chat.ticket_draft(message), default_channel=Channel.CHAT
        )
        await self._commands.continue_conversation(message.conversation, ticket.id)
        if follows is not None and follows.id != ticket.id:
            await self._commands.link(
                ticket.id,
                follows.id,
                "related_to",
                Actor(f"intake-{message.platform.value}", Role.SYSTEM),
            )
        # Another request id: the dedup window added the message to an open ticket.
        created = ticket.request_id == message.key
        outcome = ChatOutcome.CREATED if created else ChatOutcome.COMMENTED
        return ChatResult(outcome, "", ticket.id, ticket.number)
