"""Chat webhooks read into messages: Telegram updates, Slack events, signatures."""

import hashlib
import hmac
from typing import Any

import pytest

from helpdesk.core.errors import InvalidArgument
from helpdesk.intake import chat
from helpdesk.intake.chat import Challenge, ChatMessage, Ignored, Platform
from helpdesk.intake.domain import MAX_SUBJECT, Channel, validate_new_ticket

NOW = 1_700_000_000.0


def telegram(**message: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message_id": 17,
        "from": {
            "id": 4242,
            "is_bot": False,
            "first_name": "Анна",
            "last_name": "Петрова",
            "language_code": "ru",
        },
        "chat": {"id": 4242, "type": "private"},
        "date": 1_700_000_000,
        "text": "Не работает почта\nС утра Outlook не открывается.",
    }
    body.update(message)
    return {"update_id": 900, "message": body}


def slack(**event: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "message",
        "channel": "C024BE91L",
        "user": "U2147483697",
        "text": "VPN is down for the whole sales floor",
        "ts": "1700000000.000100",
    }
    body.update(event)
    return {"type": "event_callback", "team_id": "T061EG9R6", "event_id": "Ev1", "event": body}


def refused(payload: Any, parse: Any = chat.parse_telegram_update) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        parse(payload)
    return {v.field: v.description for v in caught.value.violations}


def test_a_telegram_message_reads_into_a_conversation_of_its_chat() -> None:
    message = chat.parse_telegram_update(telegram())

    assert message == ChatMessage(
        platform=Platform.TELEGRAM,
        conversation="telegram:4242",
        key="telegram:4242:17",
        sender_id="4242",
        sender_name="Анна Петрова",
        sender_language="ru",
        text="Не работает почта\nС утра Outlook не открывается.",
        chat_id="4242",
    )
    assert message.requester_email == "telegram-4242@telegram.invalid"


def test_a_telegram_message_opens_a_valid_chat_ticket() -> None:
    message = chat.parse_telegram_update(telegram())
    assert isinstance(message, ChatMessage)

    new = validate_new_ticket(chat.ticket_draft(message), Channel.API)

    assert new.subject == "Не работает почта"
    assert new.channel == Channel.CHAT
    assert new.request_id == "telegram:4242:17"
    assert new.requester.email == "telegram-4242@telegram.invalid"
    assert new.requester.language == "ru"
    assert new.tags == ("telegram",)
    assert new.custom_fields == {"chat_platform": "telegram", "chat_id": "4242"}


def test_media_without_text_is_kept_as_a_note_not_dropped() -> None:
    photo = telegram(text=None, photo=[{"file_id": "x"}], caption="Экран с ошибкой")
    bare = telegram(text=None, document={"file_id": "y"})

    assert chat.parse_telegram_update(photo).text == (  # type: ignore[union-attr]
        "Экран с ошибкой\n\n(photo sent in Telegram)"
    )
    assert chat.parse_telegram_update(bare).text == "(document sent in Telegram)"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("update", "reason"),
    [
        ({"update_id": 1, "edited_message": {}}, "not a new message: edited_message"),
        (telegram(**{"from": {"id": 1, "is_bot": True}}), "sent by a bot"),
        (telegram(text="/start"), "the /start command"),
        (telegram(text="/start@HelpdeskBot promo"), "the /start command"),
        (telegram(text="   "), "a message without text"),
        ({"update_id": 1, "message": {"message_id": 1, "chat": {"id": 5}}}, "no sender"),
    ],
)
def test_what_is_not_a_persons_request_is_ignored(update: dict[str, Any], reason: str) -> None:
    ignored = chat.parse_telegram_update(update)

    assert isinstance(ignored, Ignored)
    assert ignored.reason.startswith(reason)


def test_bad_telegram_updates_are_refused_by_field() -> None:
    assert refused([1, 2]) == {"$": "must be a JSON object (a Telegram Update)"}
    assert refused({"message": {}}) == {"update_id": "is required, an integer"}
    assert refused({"update_id": True, "message": "hi"}) == {
        "update_id": "is required, an integer",
        "message": "must be an object",
    }
    assert refused(telegram(message_id="17", chat={"id": "x"}, text=5)) == {
        "message.message_id": "is required, an integer",
        "message.chat.id": "is required, an integer",
        "message.text": "must be a string; got int",
    }
    assert set(refused({"update_id": 1, "message": {"message_id": 1}})) == {"message.chat"}


def test_a_long_first_line_is_cut_at_a_word_for_the_subject() -> None:
    text = "word " * 100

    subject = chat.subject_of(text)

    assert len(subject) <= MAX_SUBJECT
    assert subject.endswith("word…")


def test_a_slack_top_level_message_starts_a_thread_conversation() -> None:
    message = chat.parse_slack_event(slack())

    assert isinstance(message, ChatMessage)
    assert message.conversation == "slack:T061EG9R6:C024BE91L:1700000000.000100"
    assert message.key == "slack:T061EG9R6:C024BE91L:1700000000.000100"
    assert message.requester_email == "slack-t061eg9r6-u2147483697@slack.invalid"
    assert message.thread == "1700000000.000100"
    draft = chat.ticket_draft(message)
    assert draft.custom_fields == {
        "chat_platform": "slack",
        "chat_id": "C024BE91L",
        "chat_thread": "1700000000.000100",
    }


def test_a_slack_reply_belongs_to_its_threads_conversation() -> None:
    reply = chat.parse_slack_event(slack(ts="1700000050.000200", thread_ts="1700000000.000100"))

    assert isinstance(reply, ChatMessage)
    assert reply.conversation == "slack:T061EG9R6:C024BE91L:1700000000.000100"
    assert reply.key == "slack:T061EG9R6:C024BE91L:1700000050.000200"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (slack(bot_id="B1"), "sent by a bot"),
        (slack(subtype="bot_message"), "sent by a bot"),
        (slack(subtype="message_changed"), "not a new message: message_changed"),
        (slack(type="reaction_added"), "not a message: reaction_added"),
        ({"type": "app_rate_limited"}, "not an event callback"),
    ],
)
def test_slack_events_that_are_no_request_are_ignored(payload: dict[str, Any], reason: str) -> None:
    ignored = chat.parse_slack_event(payload)

    assert isinstance(ignored, Ignored)
    assert ignored.reason.startswith(reason)


def test_slack_url_verification_is_answered() -> None:
    assert chat.parse_slack_event({"type": "url_verification", "challenge": "abc"}) == Challenge(
        "abc"
    )


def test_bad_slack_events_are_refused_by_field() -> None:
    parse = chat.parse_slack_event
    assert refused("x", parse) == {"$": "must be a JSON object (a Slack event)"}
    assert refused({}, parse) == {"type": "is required"}
    assert refused({"type": "event_callback", "team_id": "T1"}, parse) == {"event": "is required"}
    assert refused(slack(channel=None, ts=7, user=""), parse) == {
        "event.channel": "is required",
        "event.ts": "must be a string; got int",
        "event.user": "is required",
    }


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256)
    return "v0=" + digest.hexdigest()


def test_a_slack_signature_holds_only_for_its_body_and_a_fresh_time() -> None:
    body, stamp = b'{"type":"event_callback"}', str(int(NOW))
    good = sign("s3cret", stamp, body)

    assert chat.slack_signature_problem("s3cret", stamp, body, good, NOW) == ""
    assert "does not match" in chat.slack_signature_problem("s3cret", stamp, body + b" ", good, NOW)
    assert "does not match" in chat.slack_signature_problem("other", stamp, body, good, NOW)
    assert "too old" in chat.slack_signature_problem("s3cret", stamp, body, good, NOW + 301)
    assert "missing" in chat.slack_signature_problem("s3cret", "", body, good, NOW)
