"""Intake's e-mail channel on real servers: a Dovecot IMAP mailbox polled by the mailbox
poller, tickets kept in FerretDB and published to Kafka by intake's own commands."""

import asyncio
import base64
import quopri
import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from dovecot import Dovecot, running_dovecot
from faststream.kafka import KafkaBroker
from kafka_tools import TopicWatcher, headers_of
from pymongo.errors import AutoReconnect

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.events.v1 import ticket_events_pb2
from helpdesk.core.kafka import TICKET_EVENTS_TOPIC, ensure_topics
from helpdesk.core.mongo import DocumentLocks, create_mongo_client
from helpdesk.core.outbox import OutboxRelay
from helpdesk.intake import domain
from helpdesk.intake.commands import TicketCommands
from helpdesk.intake.lifecycle import Actor, Role
from helpdesk.intake.mail import request_id_for, ticket_message_id
from helpdesk.intake.mailbox import Mailbox, MailOutcome, MailResult
from helpdesk.intake.store import TicketStore

FAILED = "helpdesk-failed"


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    with running_dovecot() as server:
        yield server


@pytest.fixture(scope="module")
async def commands(infra: Any) -> AsyncIterator[TicketCommands]:
    """Intake's commands in this process, wired as app.py wires them, on a database of
    their own."""
    database = f"it_mail_{uuid.uuid4().hex[:8]}"
    mongo = create_mongo_client(infra.mongodb_uri, "intake")
    store = TicketStore(mongo[database])
    await store.create_indexes()
    await ensure_topics(infra.kafka, [TICKET_EVENTS_TOPIC])
    broker = KafkaBroker(infra.kafka, enable_idempotence=True, acks="all")
    await broker.start()
    locks = DocumentLocks()
    relay = OutboxRelay(store.tickets, broker, sweep_interval=1.0, locks=locks)
    relay.start()
    yield TicketCommands(store, relay, locks=locks)
    await relay.stop()
    await broker.stop()
    await mongo.drop_database(database)
    await mongo.close()


@pytest.fixture
async def make_mailbox(
    dovecot: Dovecot, commands: TicketCommands
) -> AsyncIterator[Callable[..., Mailbox]]:
    """Mailbox pollers on the test server, on an emptied mailbox; stopped at the end."""
    dovecot.clear()
    made: list[Mailbox] = []

    def make(using: Any = None, **options: Any) -> Mailbox:
        settings: dict[str, Any] = {
            "host": dovecot.host,
            "port": dovecot.port,
            "security": "none",
            "username": dovecot.user,
            "password": dovecot.password,
            "failed_folder": FAILED,
            "poll_interval_seconds": 0.2,
            "own_addresses": ["support@helpdesk.example.com"],
            "timeout_seconds": 10,
        }
        box = Mailbox(using or commands, **{**settings, **options})
        made.append(box)
        return box

    yield make
    for box in made:
        await box.stop()


@pytest.fixture
def mailbox(make_mailbox: Callable[..., Mailbox]) -> Mailbox:
    return make_mailbox()


class FailingCommands:
    """Intake's commands whose create fails with a given error; the rest passes through."""

    def __init__(self, real: TicketCommands, error: Exception) -> None:
        self._real = real
        self._error = error

    async def create(self, *args: Any, **kwargs: Any) -> Any:
        raise self._error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def koi8_message(message_id: str, sender: str = "ivan.petrov@example.ru") -> bytes:
    """Mutt on a KOI8-R terminal: a new request in Russian."""
    name = base64.b64encode("Иван Петров".encode("koi8-r")).decode()
    subject = base64.b64encode("Не печатает принтер в 312".encode("koi8-r")).decode()
    head = (
        f"From: =?koi8-r?B?{name}?= <{sender}>\r\n"
        "To: support@helpdesk.example.com\r\n"
        f"Subject: =?koi8-r?B?{subject}?=\r\n"
        "Date: Mon, 3 Jun 2024 10:15:00 +0300\r\n"
        f"Message-ID: {message_id}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=koi8-r\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "User-Agent: Mutt/2.2.9\r\n\r\n"
    ).encode()
    body = (
        "Добрый день!\r\n\r\nНе печатает принтер в комнате 312, горит оранжевая лампочка.\r\n"
        "\r\n-- \r\nИван Петров\r\nБухгалтерия\r\n"
    )
    return head + body.encode("koi8-r")


def reply(
    message_id: str,
    body: str,
    *,
    subject: str = "Re: printer",
    in_reply_to: str = "",
    sender: str = "ivan.petrov@example.ru",
    charset: str = "utf-8",
    extra: str = "",
) -> bytes:
    threading = (
        f"In-Reply-To: {in_reply_to}\r\nReferences: {in_reply_to}\r\n" if in_reply_to else ""
    )
    encoded_subject = base64.b64encode(subject.encode(charset)).decode()
    head = (
        f"From: {sender}\r\nTo: support@helpdesk.example.com\r\n"
        f"Subject: =?{charset}?B?{encoded_subject}?=\r\nMessage-ID: {message_id}\r\n"
        f"{threading}{extra}MIME-Version: 1.0\r\n"
        f'Content-Type: text/plain; charset="{charset}"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    return head.encode() + quopri.encodestring(body.replace("\n", "\r\n").encode(charset))


def new_id() -> str:
    return f"<{uuid.uuid4().hex}@mail.example.ru>"


def only(results: list[MailResult]) -> MailResult:
    assert len(results) == 1, results
    return results[0]


async def test_new_mail_opens_a_ticket_and_is_marked_seen(
    infra: Any, dovecot: Dovecot, mailbox: Mailbox, commands: TicketCommands
) -> None:
    message_id = new_id()
    dovecot.deliver(koi8_message(message_id))
    async with TopicWatcher(infra.kafka, TICKET_EVENTS_TOPIC) as watcher:
        result = only(await mailbox.poll_once())
        assert result.outcome == MailOutcome.CREATED
        records = await watcher.collect(lambda r: r.key == result.ticket_id.encode())
    ticket = await commands.get(result.ticket_number)
    assert ticket.id == domain.ticket_id_for(request_id_for(message_id))
    assert ticket.channel == domain.Channel.EMAIL
    assert ticket.requester.email == "ivan.petrov@example.ru"
    assert ticket.requester.name == "Иван Петров"
    assert ticket.requester.language == "ru"
    assert ticket.subject == "Не печатает принтер в 312"
    assert ticket.description == (
        "Добрый день!\n\nНе печатает принтер в комнате 312, горит оранжевая лампочка."
    )
    # The ticket.created event went out through the outbox, channel and requester on it.
    assert headers_of(records[0])["ce_type"] == "helpdesk.ticket.created.v1"
    created = ticket_events_pb2.TicketCreated.FromString(records[0].value)
    assert created.ticket.channel == common_pb2.CHANNEL_EMAIL
    assert created.ticket.requester.email == "ivan.petrov@example.ru"
    (stored,) = dovecot.messages()
    assert "\\Seen" in stored.flags
    assert await mailbox.poll_once() == []  # seen mail is not read again


async def test_replies_by_header_and_by_token_become_requester_comments(
    dovecot: Dovecot, mailbox: Mailbox, commands: TicketCommands
) -> None:
    dovecot.deliver(koi8_message(new_id()))
    opened = only(await mailbox.poll_once())
    ours = ticket_message_id(opened.ticket_number, "helpdesk.example.com")
    dovecot.deliver(
        reply(
            new_id(),
            "Картридж заменили, всё равно не печатает.\n\n"
            "On Mon, 3 Jun 2024 at 11:00, Support <support@helpdesk.example.com> wrote:\n"
            "> Попробуйте заменить картридж.\n",
            in_reply_to=ours,
        )
    )
    dovecot.deliver(
        reply(
            new_id(),
            "Теперь горит красная лампочка.\n\n-----Original Message-----\nFrom: Support\n"
            "Sent: Monday\n\nold text\n",
            subject=f"RE: [{opened.ticket_number}] Не печатает принтер",
            charset="windows-1251",
        )
    )
    results = await mailbox.poll_once()
    assert [(r.outcome, r.ticket_number) for r in results] == [
        (MailOutcome.COMMENTED, opened.ticket_number),
        (MailOutcome.COMMENTED, opened.ticket_number),
    ]
    _, comments = await commands.history(opened.ticket_id)
    assert [c.body for c in comments] == [
        "Картридж заменили, всё равно не печатает.",
        "Теперь горит красная лампочка.",
    ]
    requester = Actor("ivan.petrov@example.ru", Role.REQUESTER)
    assert all(c.author == requester and not c.internal for c in comments)
    assert all("\\Seen" in m.flags for m in dovecot.messages())


async def test_auto_reply_opens_nothing_and_is_marked_seen(
    dovecot: Dovecot, mailbox: Mailbox, commands: TicketCommands
) -> None:
    message_id = new_id()
    dovecot.deliver(
        reply(
            message_id,
            "I am out of the office until Monday.",
            subject="Automatic reply: printer",
            extra="Auto-Submitted: auto-replied\r\nX-Autoreply: yes\r\n",
        )
    )
    result = only(await mailbox.poll_once())
    assert result.outcome == MailOutcome.IGNORED
    with pytest.raises(Exception, match="not found"):
        await commands.get(domain.ticket_id_for(request_id_for(message_id)))
    (stored,) = dovecot.messages()
    assert "\\Seen" in stored.flags


async def test_broken_message_lands_in_the_failed_folder(
    dovecot: Dovecot, mailbox: Mailbox
) -> None:
    broken = (
        b"From: ivan.petrov@example.ru\r\nSubject: scan\r\nMessage-ID: <broken@example.ru>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=x-klingon-8\r\n\r\n"
        + "Привет".encode("cp1251")
    )
    dovecot.deliver(broken)
    result = only(await mailbox.poll_once())
    assert result.outcome == MailOutcome.REFUSED
    assert "unknown charset 'x-klingon-8'" in result.reason
    assert dovecot.messages() == []
    (parked,) = dovecot.messages(FAILED)
    assert parked.raw == broken  # kept whole for a person to look at
    assert "\\Flagged" in parked.flags
    assert await mailbox.poll_once() == []  # and not read again


async def test_the_same_message_delivered_twice_opens_one_ticket(
    dovecot: Dovecot, mailbox: Mailbox
) -> None:
    raw = koi8_message(new_id(), sender="twice@example.ru")
    dovecot.deliver(raw)
    dovecot.deliver(raw)
    first, second = await mailbox.poll_once()
    assert first.outcome == second.outcome == MailOutcome.CREATED
    assert first.ticket_id == second.ticket_id
    assert all("\\Seen" in m.flags for m in dovecot.messages())


async def test_run_polls_until_stopped(
    dovecot: Dovecot, mailbox: Mailbox, commands: TicketCommands
) -> None:
    runner = asyncio.create_task(mailbox.run())
    try:
        message_id = new_id()
        dovecot.deliver(koi8_message(message_id, sender="later@example.ru"))
        ticket_id = domain.ticket_id_for(request_id_for(message_id))
        deadline = time.monotonic() + 20
        while True:
            try:
                ticket = await commands.get(ticket_id)
                break
            except Exception:
                assert time.monotonic() < deadline, "the poller did not pick the mail up"
                await asyncio.sleep(0.2)
        assert ticket.requester.email == "later@example.ru"
    finally:
        await asyncio.wait_for(mailbox.stop(), timeout=15)
        await asyncio.wait_for(runner, timeout=5)
    assert runner.done()


async def test_an_outage_leaves_mail_unread_for_the_next_poll(
    dovecot: Dovecot, make_mailbox: Callable[..., Mailbox], commands: TicketCommands
) -> None:
    dovecot.deliver(koi8_message(new_id(), sender="outage@example.ru"))
    during = make_mailbox(FailingCommands(commands, AutoReconnect("connection refused")))
    with pytest.raises(AutoReconnect):
        await during.poll_once()
    (stored,) = dovecot.messages()
    assert "\\Seen" not in stored.flags
    after = make_mailbox()
    assert only(await after.poll_once()).outcome == MailOutcome.CREATED


async def test_a_message_that_keeps_failing_is_parked_after_max_attempts(
    dovecot: Dovecot, make_mailbox: Callable[..., Mailbox], commands: TicketCommands
) -> None:
    dovecot.deliver(koi8_message(new_id(), sender="bug@example.ru"))
    box = make_mailbox(FailingCommands(commands, RuntimeError("a bug")), max_attempts=2)
    assert await box.poll_once() == []  # first failure: left for the next poll
    assert len(dovecot.messages()) == 1
    result = only(await box.poll_once())
    assert result.outcome == MailOutcome.REFUSED
    assert "failed 2 times" in result.reason
    assert "a bug" in result.reason
    assert dovecot.messages() == []
    assert len(dovecot.messages(FAILED)) == 1


@pytest.mark.parametrize("security", ["ssl", "starttls"])
async def test_tls_connections_verify_the_server(
    dovecot: Dovecot, make_mailbox: Callable[..., Mailbox], security: str
) -> None:
    port = dovecot.imaps_port if security == "ssl" else dovecot.port
    dovecot.deliver(koi8_message(new_id(), sender=f"{security}@example.ru"))
    trusting = make_mailbox(security=security, port=port, ca_file=dovecot.ca_file)
    assert only(await trusting.poll_once()).outcome == MailOutcome.CREATED
    # Without the server's certificate among its roots, the poller does not log in.
    doubting = make_mailbox(security=security, port=port)
    with pytest.raises(ssl.SSLCertVerificationError):
        await doubting.poll_once()
