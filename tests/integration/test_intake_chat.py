"""Intake's chat webhooks (Telegram, Slack) and MTA piping on real servers: a real intake
process over HTTP, tickets in FerretDB, events on Kafka."""

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from kafka_tools import TopicWatcher, headers_of
from test_intake_grpc import TICKET_EVENTS

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.tickets.v1 import tickets_pb2, tickets_pb2_grpc

TELEGRAM_SECRET = "tg-secret-token"
SLACK_SECRET = "slack-signing-secret"
MAIL_TOKEN = "mta-token"
AGENT = {"id": "agent-7", "role": "agent"}


@pytest.fixture(scope="module")
def chat_ids() -> dict[str, int]:
    # Fresh chat and user ids per run: conversations live as long as the database.
    base = int(time.time() * 1000) % 10**9
    return {"chat": base, "user": base + 1, "group": -base}


@pytest.fixture
async def service(make_intake: Any) -> Any:
    intake = make_intake(
        HELPDESK_TELEGRAM_WEBHOOK_SECRET=TELEGRAM_SECRET,
        HELPDESK_SLACK_SIGNING_SECRET=SLACK_SECRET,
        HELPDESK_MAIL_INBOUND_TOKEN=MAIL_TOKEN,
        HELPDESK_MAIL_MAX_MESSAGE_BYTES=str(3 * 1024 * 1024),
    )
    intake.start()
    await intake.wait_serving()
    return intake


@pytest.fixture
async def http(service: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=service.http_url, timeout=30) as client:
        yield client


def update(update_id: int, chat_id: int, user_id: int, message_id: int, text: str) -> Any:
    return {
        "update_id": update_id,
        "message": {
            "message_id": message_id,
            "from": {"id": user_id, "is_bot": False, "first_name": "Анна", "language_code": "ru"},
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
            "date": int(time.time()),
            "text": text,
        },
    }


async def telegram(http: httpx.AsyncClient, body: Any, secret: str = TELEGRAM_SECRET) -> Any:
    return await http.post(
        "/v1/webhooks/telegram", json=body, headers={"X-Telegram-Bot-Api-Secret-Token": secret}
    )


def violations(reply: httpx.Response) -> dict[str, str]:
    return {v["field"]: v["description"] for v in reply.json()["error"]["field_violations"]}


async def set_status(service: Any, ticket_id: str, *statuses: Any) -> None:
    async with grpc.aio.insecure_channel(service.target) as channel:
        stub = tickets_pb2_grpc.TicketServiceStub(channel)
        actor = common_pb2.Actor(id="agent-7", role=common_pb2.ACTOR_ROLE_AGENT)
        for status in statuses:
            await stub.UpdateTicket(
                tickets_pb2.UpdateTicketRequest(
                    id=ticket_id,
                    ticket=tickets_pb2.Ticket(status=status),
                    update_mask=FieldMask(paths=["status"]),
                    actor=actor,
                ),
                timeout=10,
            )


async def test_a_telegram_chat_opens_a_ticket_and_continues_it(
    infra: Any, service: Any, http: Any, chat_ids: dict[str, int]
) -> None:
    chat, user = chat_ids["chat"], chat_ids["user"]
    first = update(1, chat, user, 10, "Не работает почта\nOutlook не открывается с утра.")
    async with TopicWatcher(infra.kafka, TICKET_EVENTS) as watcher:
        opened = await telegram(http, first)
        assert opened.status_code == 200, opened.text
        result = opened.json()
        assert result["outcome"] == "created"
        created = await watcher.collect(lambda r: r.key == result["ticket_id"].encode())
    assert headers_of(created[0])["ce_type"] == "helpdesk.ticket.created.v1"

    ticket = (await http.get(f"/v1/tickets/{result['ticket_id']}")).json()
    assert ticket["channel"] == "chat"
    assert ticket["subject"] == "Не работает почта"
    assert ticket["requester"]["email"] == f"telegram-{user}@telegram.invalid"
    assert ticket["requester"]["language"] == "ru"
    assert ticket["custom_fields"] == {"chat_platform": "telegram", "chat_id": str(chat)}

    # Telegram delivers again after a timeout: nothing is added.
    again = await telegram(http, first)
    assert again.json()["outcome"] == "duplicate"
    assert again.json()["ticket_id"] == result["ticket_id"]

    follow = update(2, chat, user, 11, "Перезагрузка не помогла.")
    added = await telegram(http, follow)
    assert added.json() == {**result, "outcome": "commented"}
    assert (await telegram(http, follow)).json()["outcome"] == "duplicate"

    history = (await http.get(f"/v1/tickets/{result['ticket_id']}/history")).json()
    assert [(c["author"]["role"], c["body"]) for c in history["comments"]] == [
        ("requester", "Перезагрузка не помогла.")
    ]

    # Resolved, then the requester writes again: the same ticket reopens.
    await set_status(service, result["ticket_id"], common_pb2.TICKET_STATUS_RESOLVED)
    reopened = await telegram(http, update(3, chat, user, 12, "Снова не работает!"))
    assert reopened.json()["ticket_id"] == result["ticket_id"]
    ticket = (await http.get(f"/v1/tickets/{result['ticket_id']}")).json()
    assert ticket["status"] == "open"
    assert ticket["reopen_count"] == 1


async def test_a_message_after_the_ticket_closed_opens_a_linked_follow_up(
    service: Any, http: Any, chat_ids: dict[str, int]
) -> None:
    chat, user = chat_ids["chat"] + 7, chat_ids["user"] + 7
    first = (await telegram(http, update(1, chat, user, 1, "Принтер не печатает"))).json()
    await set_status(
        service,
        first["ticket_id"],
        common_pb2.TICKET_STATUS_RESOLVED,
        common_pb2.TICKET_STATUS_CLOSED,
    )

    follow_up = (await telegram(http, update(2, chat, user, 2, "Опять не печатает"))).json()

    assert follow_up["outcome"] == "created"
    assert follow_up["ticket_id"] != first["ticket_id"]
    ticket = (await http.get(f"/v1/tickets/{follow_up['ticket_id']}")).json()
    assert ticket["links"] == [
        {
            "kind": "related_to",
            "ticket_number": first["ticket_number"],
            "ticket_id": first["ticket_id"],
        }
    ]
    # The conversation goes on in the follow-up.
    more = (await telegram(http, update(3, chat, user, 3, "Модель HP 400"))).json()
    assert (more["outcome"], more["ticket_id"]) == ("commented", follow_up["ticket_id"])


async def test_in_a_group_chat_others_write_internal_notes(
    http: Any, chat_ids: dict[str, int]
) -> None:
    group = chat_ids["group"]
    opened = (await telegram(http, update(1, group, 501, 1, "Нет доступа к 1С"))).json()
    other = (await telegram(http, update(2, group, 502, 2, "У меня тоже"))).json()

    assert other["outcome"] == "commented"
    history = (await http.get(f"/v1/tickets/{opened['ticket_id']}/history")).json()
    (note,) = history["comments"]
    assert note["internal"] is True
    assert note["author"] == {"id": "intake-telegram", "role": "system"}
    assert note["body"].endswith("У меня тоже")


async def test_telegram_bad_input_and_wrong_secret_are_refused(
    http: Any, chat_ids: dict[str, int]
) -> None:
    wrong = await telegram(http, update(1, 5, 5, 1, "x"), secret="guess")
    assert wrong.status_code == 401

    broken = await http.post(
        "/v1/webhooks/telegram",
        content=b'{"update_id": 1, "message": {',
        headers={
            "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
            "content-type": "application/json",
        },
    )
    assert broken.status_code == 400
    assert list(violations(broken)) == ["$"]

    bad = await telegram(http, {"update_id": "1", "message": {"message_id": 1, "chat": {}}})
    assert bad.status_code == 400
    assert set(violations(bad)) == {"update_id"}

    typed = await telegram(
        http, {"update_id": 1, "message": {"message_id": 1, "chat": {"id": "x"}, "text": 5}}
    )
    assert set(violations(typed)) == {"message.chat.id", "message.text"}

    edited = await telegram(http, {"update_id": 2, "edited_message": {"message_id": 1}})
    assert edited.status_code == 200
    assert edited.json()["outcome"] == "ignored"

    huge = await telegram(http, update(3, 5, 5, 3, "x" * (2 * 1024 * 1024)))
    assert huge.status_code == 413


def slack_post(payload: Any, *, secret: str = SLACK_SECRET, stamp: int | None = None) -> Any:
    body = json.dumps(payload).encode()
    timestamp = str(stamp if stamp is not None else int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256)
    headers = {
        "content-type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": "v0=" + digest.hexdigest(),
    }
    return {"content": body, "headers": headers}


def slack_message(team: str, ts: str, text: str, thread_ts: str = "", user: str = "U1") -> Any:
    event = {"type": "message", "channel": "C1", "user": user, "text": text, "ts": ts}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return {"type": "event_callback", "team_id": team, "event_id": f"Ev{ts}", "event": event}


async def test_a_slack_thread_is_one_ticket(http: Any) -> None:
    team = f"T{uuid.uuid4().hex[:8].upper()}"
    challenge = await http.post(
        "/v1/webhooks/slack", **slack_post({"type": "url_verification", "challenge": "c-1"})
    )
    assert challenge.json() == {"challenge": "c-1"}

    root = "1700000000.000100"
    opened = await http.post(
        "/v1/webhooks/slack", **slack_post(slack_message(team, root, "VPN is down"))
    )
    assert opened.status_code == 200, opened.text
    assert opened.json()["outcome"] == "created"
    reply = slack_message(team, "1700000009.000200", "Still down", thread_ts=root)
    added = await http.post("/v1/webhooks/slack", **slack_post(reply))
    assert added.json()["outcome"] == "commented"
    assert added.json()["ticket_id"] == opened.json()["ticket_id"]
    # Slack retries a delivery it did not see answered in time.
    retried = await http.post("/v1/webhooks/slack", **slack_post(reply))
    assert retried.json()["outcome"] == "duplicate"
    # Our own bot posting into the thread opens and adds nothing.
    bot = slack_message(team, "1700000010.000300", "Ticket HD-1 opened", thread_ts=root)
    bot["event"]["bot_id"] = "B1"
    assert (await http.post("/v1/webhooks/slack", **slack_post(bot))).json()["outcome"] == "ignored"
    # A new top-level message is a new conversation.
    other = await http.post(
        "/v1/webhooks/slack", **slack_post(slack_message(team, "1700000020.000100", "Wi-Fi"))
    )
    assert other.json()["ticket_id"] != opened.json()["ticket_id"]

    ticket = (await http.get(f"/v1/tickets/{opened.json()['ticket_id']}")).json()
    assert ticket["tags"] == ["slack"]
    assert ticket["custom_fields"]["chat_thread"] == root


async def test_slack_signatures_and_bad_events_are_refused(http: Any) -> None:
    event = slack_message("TBAD", "1700000000.000100", "x")
    forged = await http.post("/v1/webhooks/slack", **slack_post(event, secret="guess"))
    assert forged.status_code == 401
    assert "does not match" in forged.json()["error"]["message"]
    stale = await http.post(
        "/v1/webhooks/slack", **slack_post(event, stamp=int(time.time()) - 3600)
    )
    assert stale.status_code == 401

    missing = slack_message("TBAD", "1700000000.000100", "x")
    del missing["event"]["channel"]
    bad = await http.post("/v1/webhooks/slack", **slack_post(missing))
    assert bad.status_code == 400
    assert violations(bad) == {"event.channel": "is required"}


MAIL = (
    "From: Boris <boris@example.com>\r\n"
    "To: support@helpdesk.example\r\n"
    "Subject: =?koi8-r?B?{subject}?=\r\n"
    "Message-ID: <{message_id}>\r\n"
    "Content-Type: text/plain; charset=koi8-r\r\n"
    "Content-Transfer-Encoding: 8bit\r\n"
    "\r\n"
)


async def test_mta_piping_opens_a_ticket_once_and_refuses_what_it_cannot_read(http: Any) -> None:
    message_id = f"{uuid.uuid4()}@mail.example.com"
    subject = base64.b64encode("Не печатает принтер".encode("koi8-r")).decode()
    raw = MAIL.format(subject=subject, message_id=message_id).encode() + (
        "Принтер на третьем этаже не печатает.\r\n".encode("koi8-r")
    )
    auth = {"Authorization": f"Bearer {MAIL_TOKEN}", "content-type": "message/rfc822"}

    refused = await http.post(
        "/v1/mail/inbound", content=raw, headers={"content-type": "message/rfc822"}
    )
    assert refused.status_code == 401

    piped = await http.post("/v1/mail/inbound", content=raw, headers=auth)
    assert piped.status_code == 200, piped.text
    assert piped.json()["outcome"] == "created"
    ticket = (await http.get(f"/v1/tickets/{piped.json()['ticket_id']}")).json()
    assert ticket["subject"] == "Не печатает принтер"
    assert ticket["channel"] == "email"
    assert ticket["description"].startswith("Принтер на третьем этаже")

    again = await http.post("/v1/mail/inbound", content=raw, headers=auth)
    assert again.json()["ticket_id"] == piped.json()["ticket_id"]

    auto = raw.replace(b"Subject:", b"Auto-Submitted: auto-replied\r\nSubject:", 1)
    auto = auto.replace(message_id.encode(), f"auto-{message_id}".encode())
    assert (await http.post("/v1/mail/inbound", content=auto, headers=auth)).json()[
        "outcome"
    ] == "ignored"

    empty = await http.post("/v1/mail/inbound", content=b"", headers=auth)
    assert empty.status_code == 400
    assert list(violations(empty)) == ["$"]

    # Whole messages may be larger than JSON bodies: up to the mail limit, not past it.
    attachment = b"x" * (1536 * 1024)
    big = MAIL.format(subject=subject, message_id=f"big-{message_id}").encode() + attachment
    assert (await http.post("/v1/mail/inbound", content=big, headers=auth)).status_code == 200
    huge = big + b"x" * (2 * 1024 * 1024)
    too_big = await http.post("/v1/mail/inbound", content=huge, headers=auth)
    assert too_big.status_code == 413
