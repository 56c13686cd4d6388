"""The e-mail edge of intake: an IMAP mailbox polled for new mail, and raw messages handed
over by an MTA (HTTP piping), both through `accept_raw_message`.

A message becomes a ticket (channel email) or a reply on the ticket it answers (see
`mail.py` for how replies are recognised). Machine mail (auto-replies, bounces, reports) and
mail the help desk sent itself are read and dropped, never answered. The Message-ID is the
ticket's request id, so a message read twice never opens two tickets, and a reply read twice
is added once.

The mailbox is the help desk's own: a person reading it in a mail client marks messages seen,
and seen messages are not read again.
"""

import asyncio
import contextlib
import functools
import logging
import ssl
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, TypeVar

from imapclient import DELETED, FLAGGED, SEEN, IMAPClient  # type: ignore[import-untyped]
from imapclient.exceptions import IMAPClientError  # type: ignore[import-untyped]
from opentelemetry import trace

from helpdesk.core.errors import TRANSIENT_ERRORS, FailedPrecondition, InvalidArgument, NotFound
from helpdesk.core.logging import get_logger
from helpdesk.intake import domain
from helpdesk.intake.commands import TicketCommands
from helpdesk.intake.domain import MAX_DESCRIPTION, Channel, Status
from helpdesk.intake.lifecycle import Actor, Role
from helpdesk.intake.mail import (
    DEFAULT_MAX_MESSAGE_BYTES,
    InboundMail,
    Unreadable,
    parse_message,
    reply_text,
    request_id_for,
    ticket_draft,
)
from helpdesk.intake.metrics import MAIL_MESSAGES

log = get_logger(__name__)
tracer = trace.get_tracer(__name__)

# Who writes what the e-mail channel adds on its own (notes, links).
MAIL_ACTOR = Actor("intake-email", Role.SYSTEM)
# How many of the nearest messages a reply answers are looked up as messages that opened
# a ticket (besides the thread's root).
OWN_REFERENCES = 3
# How far a reply follows tickets merged into others.
MAX_MERGE_HOPS = 5


class MailOutcome(StrEnum):
    CREATED = "created"
    COMMENTED = "commented"
    # A reply already added: the same message read again.
    DUPLICATE = "duplicate"
    # Machine mail or the help desk's own: nothing opened, nothing answered.
    IGNORED = "ignored"
    # Can never become a ticket or a reply; the reason says why.
    REFUSED = "refused"


@dataclass(frozen=True)
class MailResult:
    outcome: MailOutcome
    reason: str = ""
    message_id: str = ""
    ticket_id: str = ""
    ticket_number: str = ""


async def accept_raw_message(
    commands: TicketCommands,
    raw: bytes,
    *,
    number_prefix: str = "HD",
    own_addresses: Collection[str] = (),
    max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> MailResult:
    """Turns one raw RFC 822 message into a ticket or a reply. Refusals come back as values;
    passing outages (TRANSIENT_ERRORS) raise, and the caller tries again later."""
    with tracer.start_as_current_span("intake.mail.accept") as span:
        result = await _accept(commands, raw, number_prefix, own_addresses, max_bytes)
        span.set_attribute("helpdesk.mail.outcome", result.outcome.value)
        span.set_attribute("helpdesk.ticket.number", result.ticket_number)
    MAIL_MESSAGES.labels(result.outcome.value).inc()
    level = logging.WARNING if result.outcome == MailOutcome.REFUSED else logging.INFO
    log.log(
        level,
        "mail_" + result.outcome.value,
        message_id=result.message_id,
        ticket=result.ticket_number,
        reason=result.reason,
    )
    return result


async def _accept(
    commands: TicketCommands,
    raw: bytes,
    number_prefix: str,
    own_addresses: Collection[str],
    max_bytes: int,
) -> MailResult:
    if len(raw) > max_bytes:
        return MailResult(
            MailOutcome.REFUSED, f"message is {len(raw)} bytes, more than the limit of {max_bytes}"
        )
    mail = parse_message(raw, number_prefix=number_prefix)
    if isinstance(mail, Unreadable):
        return MailResult(MailOutcome.REFUSED, mail.reason, mail.message_id)
    if mail.automatic:
        return MailResult(MailOutcome.IGNORED, f"machine mail: {mail.automatic}", mail.message_id)
    if mail.sender_email in {a.strip().lower() for a in own_addresses}:
        return MailResult(MailOutcome.IGNORED, "sent by the help desk itself", mail.message_id)
    try:
        ticket = await _answered_ticket(commands, mail)
        if ticket is None:
            return await _open(commands, mail)
        return await _reply(commands, mail, ticket, number_prefix)
    except InvalidArgument as error:
        return MailResult(MailOutcome.REFUSED, error.message, mail.message_id)


async def _find(commands: TicketCommands, key: str) -> domain.Ticket | None:
    try:
        return await commands.get(key)
    except (NotFound, InvalidArgument):
        return None


async def _answered_ticket(commands: TicketCommands, mail: InboundMail) -> domain.Ticket | None:
    """The ticket a message answers: by our Message-IDs it refers to, the subject token, or
    a requester's own earlier message that opened a ticket; None for a new request."""
    candidates = [*mail.ticket_keys]
    if mail.subject_ticket:
        candidates.append(mail.subject_ticket)
    # Each of these is a lookup that misses for most references: only the nearest few and
    # the root (where a requester's first message usually stands).
    own_messages = dict.fromkeys([*mail.references[:OWN_REFERENCES], *mail.references[-1:]])
    candidates += [domain.ticket_id_for(request_id_for(ref)) for ref in own_messages]
    for key in dict.fromkeys(candidates):
        ticket = await _find(commands, key)
        if ticket is None:
            continue
        hops = 0
        while ticket.status == Status.CLOSED and ticket.merged_into and hops < MAX_MERGE_HOPS:
            target = await _find(commands, ticket.merged_into)
            if target is None:
                break
            ticket, hops = target, hops + 1
        return ticket
    return None


async def _open(
    commands: TicketCommands,
    mail: InboundMail,
    follows: domain.Ticket | None = None,
    number_prefix: str = "",
) -> MailResult:
    if follows is None:
        draft = ticket_draft(mail)
    else:
        # Without the closed ticket's token, so that replies thread into the new one.
        note = f"Follow-up to {follows.number}, which is closed."
        draft = ticket_draft(mail, note=note, number_prefix=number_prefix)
    ticket = await commands.create(draft, default_channel=Channel.EMAIL)
    if follows is not None:
        await commands.link(ticket.id, follows.id, "related_to", MAIL_ACTOR)
    # Another request id: the dedup window added this message to an open ticket.
    outcome = MailOutcome.CREATED if ticket.request_id == mail.request_id else MailOutcome.COMMENTED
    return MailResult(outcome, "", mail.message_id, ticket.id, ticket.number)


async def _reply(
    commands: TicketCommands, mail: InboundMail, ticket: domain.Ticket, number_prefix: str
) -> MailResult:
    if ticket.status == Status.CLOSED:
        return await _open(commands, mail, ticket, number_prefix)
    # Only the requester's mail is a public reply. Anyone else's (a colleague in copy, an
    # agent answering from a mail client) cannot be verified: agents see it as a note.
    by_requester = mail.sender_email == ticket.requester.email
    if by_requester:
        author, body = Actor(mail.sender_email, Role.REQUESTER), reply_text(mail)
    else:
        sender = (
            f"{mail.sender_name} <{mail.sender_email}>" if mail.sender_name else mail.sender_email
        )
        author = MAIL_ACTOR
        body = f"E-mail from {sender}, who is not the requester:\n\n{reply_text(mail)}"
        body = body[:MAX_DESCRIPTION]
    try:
        # The message's own id as the key: a message read twice is added once.
        ticket, _, replayed = await commands.comment(
            ticket.id, author, body, not by_requester, [], idempotency_key=mail.request_id
        )
    except FailedPrecondition:
        # Closed in the meantime: the message opens a follow-up instead.
        return await _open(commands, mail, await commands.get(ticket.id), number_prefix)
    outcome = MailOutcome.DUPLICATE if replayed else MailOutcome.COMMENTED
    return MailResult(outcome, "", mail.message_id, ticket.id, ticket.number)


# --- IMAP ---

T = TypeVar("T")


class Mailbox:
    """Polls one IMAP folder. Each unseen message is accepted, then flagged \\Seen (and moved
    to `processed_folder` if set). A message that cannot be accepted is flagged and moved to
    `failed_folder` (or, without one, flagged and marked seen) with the reason logged; one
    that keeps failing unexpectedly goes there after `max_attempts`. While MongoDB is away
    messages stay unseen and are read again at the next poll."""

    def __init__(
        self,
        commands: TicketCommands,
        *,
        host: str,
        username: str,
        password: str,
        port: int = 993,
        security: Literal["ssl", "starttls", "none"] = "ssl",
        ca_file: str = "",
        folder: str = "INBOX",
        processed_folder: str = "",
        failed_folder: str = "helpdesk-failed",
        poll_interval_seconds: float = 30.0,
        number_prefix: str = "HD",
        own_addresses: Collection[str] = (),
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        timeout_seconds: float = 30.0,
        max_attempts: int = 5,
        batch_size: int = 50,
    ) -> None:
        self._commands = commands
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._security = security
        self._ca_file = ca_file
        self._folder = folder
        self._processed_folder = processed_folder
        self._failed_folder = failed_folder
        self._poll_interval = poll_interval_seconds
        self._number_prefix = number_prefix
        self._own_addresses = tuple(own_addresses)
        self._max_bytes = max_message_bytes
        self._timeout = timeout_seconds
        self._max_attempts = max_attempts
        self._batch_size = batch_size
        # imapclient blocks: one thread does all of its work, one call at a time.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="imap")
        self._client: Any = None
        self._uidvalidity = 0
        self._attempts: dict[tuple[int, int], int] = {}
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False
        self._more = False

    async def run(self) -> None:
        """Polls until `stop()`; connection trouble is logged and retried with a backoff."""
        self._running = True
        failures = 0
        try:
            while not self._stopping.is_set():
                delay = self._poll_interval
                try:
                    await self.poll_once()
                    failures = 0
                    if self._more:
                        delay = 0.0  # a full batch: read on at once
                except (IMAPClientError, OSError, *TRANSIENT_ERRORS) as error:
                    failures += 1
                    log.warning("mailbox_poll_failed", error=repr(error), failures=failures)
                    await self._disconnect()
                except Exception:
                    # A fault of ours: logged with its trace; the poller keeps going.
                    failures += 1
                    log.exception("mailbox_poll_error", failures=failures)
                    await self._disconnect()
                if failures:
                    delay = max(self._poll_interval, min(self._poll_interval * 2**failures, 300.0))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
        finally:
            await self._disconnect()
            self._executor.shutdown(wait=False)
            self._stopped.set()
            log.info("mailbox_stopped", folder=self._folder)

    async def stop(self) -> None:
        """Stops after the message in hand; returns when `run()` has ended."""
        self._stopping.set()
        if self._running:
            await self._stopped.wait()
        else:  # only poll_once was used: close its connection
            await self._disconnect()
            self._executor.shutdown(wait=False)

    async def poll_once(self) -> list[MailResult]:
        """Reads the unseen messages of the folder once (at most `batch_size`)."""
        client = await self._connect()
        # A selected folder learns of mail delivered since by the next command (EXISTS), and
        # SEARCH may not count messages the client was not told of yet: NOOP first.
        await self._call(client.noop)
        uids: list[int] = sorted(await self._call(client.search, ["UNSEEN"]))
        self._more = len(uids) > self._batch_size
        results: list[MailResult] = []
        for uid in uids[: self._batch_size]:
            if self._stopping.is_set():
                break
            result = await self._process(client, uid)
            if result is not None:
                results.append(result)
        return results

    async def _process(self, client: Any, uid: int) -> MailResult | None:
        sizes = await self._call(client.fetch, [uid], ["RFC822.SIZE"])
        if uid not in sizes:
            return None  # expunged meanwhile
        size = int(sizes[uid].get(b"RFC822.SIZE", 0))
        key = (self._uidvalidity, uid)
        if size > self._max_bytes:
            result = MailResult(
                MailOutcome.REFUSED,
                f"message is {size} bytes, more than the limit of {self._max_bytes}",
            )
        else:
            fetched = await self._call(client.fetch, [uid], ["BODY.PEEK[]"])
            raw = fetched.get(uid, {}).get(b"BODY[]")
            if not isinstance(raw, bytes):
                return None
            try:
                result = await accept_raw_message(
                    self._commands,
                    raw,
                    number_prefix=self._number_prefix,
                    own_addresses=self._own_addresses,
                    max_bytes=self._max_bytes,
                )
            except TRANSIENT_ERRORS:
                raise  # the whole poll waits: the message stays unseen
            except Exception as error:
                attempts = self._attempts.get(key, 0) + 1
                self._attempts[key] = attempts
                log.exception("mail_message_error", uid=uid, attempt=attempts)
                if attempts < self._max_attempts:
                    return None
                result = MailResult(
                    MailOutcome.REFUSED, f"failed {attempts} times, last: {error!r}"
                )
        if result.outcome == MailOutcome.REFUSED:
            await self._park(client, uid, result)
        else:
            await self._done(client, uid)
        self._attempts.pop(key, None)
        return result

    async def _done(self, client: Any, uid: int) -> None:
        await self._call(client.add_flags, [uid], [SEEN])
        if self._processed_folder:
            await self._call(self._move, client, uid, self._processed_folder)

    async def _park(self, client: Any, uid: int, result: MailResult) -> None:
        log.warning(
            "mail_parked",
            uid=uid,
            message_id=result.message_id,
            reason=result.reason,
            folder=self._failed_folder or self._folder,
        )
        if self._failed_folder:
            # Left unseen there, and flagged, so that a person notices it.
            await self._call(client.add_flags, [uid], [FLAGGED])
            await self._call(self._move, client, uid, self._failed_folder)
        else:
            await self._call(client.add_flags, [uid], [SEEN, FLAGGED])

    @staticmethod
    def _move(client: Any, uid: int, folder: str) -> None:
        if client.has_capability("MOVE"):
            client.move([uid], folder)
            return
        client.copy([uid], folder)
        client.add_flags([uid], [DELETED, SEEN])
        if client.has_capability("UIDPLUS"):
            client.uid_expunge([uid])

    async def _connect(self) -> Any:
        if self._client is None:
            self._client = await self._call(self._open)
            log.info("mailbox_connected", host=self._host, folder=self._folder)
        return self._client

    def _open(self) -> Any:
        # Certificates are verified, against the system's roots or the given CA file.
        context = ssl.create_default_context(cafile=self._ca_file or None)
        client = IMAPClient(
            self._host,
            port=self._port,
            ssl=self._security == "ssl",
            ssl_context=context if self._security == "ssl" else None,
            timeout=self._timeout,
        )
        try:
            if self._security == "starttls":
                client.starttls(context)
            client.login(self._username, self._password)
            for folder in (self._failed_folder, self._processed_folder):
                if folder and not client.folder_exists(folder):
                    try:
                        client.create_folder(folder)
                    except IMAPClientError:
                        if not client.folder_exists(folder):  # not made by a racing replica
                            raise
            selected = client.select_folder(self._folder)
            self._uidvalidity = int(selected.get(b"UIDVALIDITY", 0))
        except BaseException:
            _quietly(client.shutdown)
            raise
        return client

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await self._call(_quietly, client.logout)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))


def _quietly(fn: Callable[[], object]) -> None:
    """Closes a connection that may already be gone."""
    with contextlib.suppress(IMAPClientError, OSError):
        fn()
