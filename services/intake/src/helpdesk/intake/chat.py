"""Chat messages in: Telegram Bot API updates and Slack-style message events, read into one
shape. Pure: no I/O; `conversations.py` turns a message into a ticket or a comment.

A conversation is where replies belong: a Telegram chat, or a Slack thread (a top-level
message starts one, replies in its thread continue it). Each message has a key unique on
its platform; it is the opening ticket's request id and the idempotency key of a comment,
so a webhook delivered twice adds its message once.
"""

import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from helpdesk.core.errors import FieldViolation, InvalidArgument
from helpdesk.intake.domain import (
    MAX_DESCRIPTION,
    MAX_NAME,
    MAX_SUBJECT,
    Channel,
    TicketDraft,
    json_string,
)

# Slack signs "v0:<timestamp>:<body>"; older timestamps are replays and refused.
SLACK_SIGNATURE_VERSION = "v0"
SLACK_MAX_CLOCK_SKEW_SECONDS = 300
# Telegram message kinds that carry no text: named in the comment so nothing is lost silently.
_TELEGRAM_MEDIA = (
    "photo",
    "document",
    "video",
    "voice",
    "audio",
    "sticker",
    "animation",
    "video_note",
    "contact",
    "location",
)
# Slack message subtypes that are not a person writing: edits, joins, bots (our own posts).
_SLACK_PEOPLE_SUBTYPES = frozenset({"", "file_share", "thread_broadcast"})
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", re.IGNORECASE)


class Platform(StrEnum):
    TELEGRAM = "telegram"
    SLACK = "slack"


@dataclass(frozen=True)
class ChatMessage:
    platform: Platform
    # Where replies belong: "telegram:<chat id>", "slack:<team>:<channel>:<thread ts>".
    conversation: str
    # Unique per message on its platform: the request id and the comment key.
    key: str
    sender_id: str
    sender_name: str
    sender_language: str
    text: str
    # What a reply needs to reach the conversation (the notification service reads these).
    chat_id: str
    thread: str = ""

    @property
    def requester_email(self) -> str:
        """Chats carry no e-mail address: a stable, undeliverable one names the person."""
        local = re_safe(f"{self.platform.value}-{self.sender_id}")
        return f"{local}@{self.platform.value}.invalid"


@dataclass(frozen=True)
class Ignored:
    """A valid update that is not a person's message to the help desk (bots, edits, joins)."""

    reason: str


@dataclass(frozen=True)
class Challenge:
    """Slack's URL verification: answer with the challenge."""

    challenge: str


def re_safe(text: str) -> str:
    """Lower-case letters, digits and - . _ only (an e-mail local part everyone accepts)."""
    return re.sub(r"[^a-z0-9._-]", "-", text.lower())


def ticket_draft(message: ChatMessage) -> TicketDraft:
    """The ticket a message that starts a conversation opens (channel chat)."""
    custom = {"chat_platform": message.platform.value, "chat_id": message.chat_id}
    if message.thread:
        custom["chat_thread"] = message.thread
    return TicketDraft(
        request_id=message.key,
        subject=subject_of(message.text),
        description=message.text,
        requester_email=message.requester_email,
        requester_name=message.sender_name,
        requester_language=message.sender_language,
        channel=Channel.CHAT.value,
        tags=(message.platform.value,),
        custom_fields=custom,
    )


def subject_of(text: str) -> str:
    """The first line, cut at a word near the subject limit."""
    first = " ".join(text.strip().splitlines()[0].split()) if text.strip() else ""
    if len(first) <= MAX_SUBJECT:
        return first
    cut = first[: MAX_SUBJECT - 1]
    if " " in cut[MAX_SUBJECT // 2 :]:
        cut = cut[: cut.rindex(" ")]
    return cut + "…"


def _object(obj: dict[str, Any], key: str, path: str, problems: list[FieldViolation]) -> Any:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append(FieldViolation(path, "must be an object"))
        return None
    return value


def _integer(obj: dict[str, Any], key: str, path: str, problems: list[FieldViolation]) -> int:
    value = obj.get(key)
    # bool is an int in Python, never in JSON.
    if not isinstance(value, int) or isinstance(value, bool):
        problems.append(FieldViolation(path, "is required, an integer"))
        return 0
    return value


def _required(obj: dict[str, Any], key: str, path: str, problems: list[FieldViolation]) -> str:
    before = len(problems)
    value = json_string(obj, key, path, problems).strip()
    if not value and len(problems) == before:
        problems.append(FieldViolation(path, "is required"))
    return value


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _language(code: str) -> str:
    return code if _LANGUAGE.fullmatch(code) else ""


def parse_telegram_update(update: Any) -> ChatMessage | Ignored:
    """A Telegram Bot API `Update` (webhook body); refuses wrong shapes by field."""
    if not isinstance(update, dict):
        raise InvalidArgument([FieldViolation("$", "must be a JSON object (a Telegram Update)")])
    problems: list[FieldViolation] = []
    _integer(update, "update_id", "update_id", problems)
    message = _object(update, "message", "message", problems)
    if problems:
        raise InvalidArgument(problems)
    if message is None:
        kinds = sorted(k for k in update if k != "update_id")
        return Ignored(f"not a new message: {', '.join(kinds) or 'empty update'}")
    message_id = _integer(message, "message_id", "message.message_id", problems)
    chat = _object(message, "chat", "message.chat", problems)
    sender = _object(message, "from", "message.from", problems)
    if chat is None and not any(p.field == "message.chat" for p in problems):
        problems.append(FieldViolation("message.chat", "is required"))
    chat_id = _integer(chat, "id", "message.chat.id", problems) if chat is not None else 0
    text = json_string(message, "text", "message.text", problems)
    caption = json_string(message, "caption", "message.caption", problems)
    if sender is not None:
        sender_id = _integer(sender, "id", "message.from.id", problems)
        first = json_string(sender, "first_name", "message.from.first_name", problems)
        last = json_string(sender, "last_name", "message.from.last_name", problems)
        username = json_string(sender, "username", "message.from.username", problems)
        language = json_string(sender, "language_code", "message.from.language_code", problems)
        is_bot = sender.get("is_bot") is True
    if problems:
        raise InvalidArgument(problems)
    if sender is None:
        return Ignored("no sender (a channel post)")
    if is_bot:
        return Ignored("sent by a bot")
    body = (text or caption).strip()
    media = next((kind for kind in _TELEGRAM_MEDIA if kind in message), "")
    if media:
        note = f"({media.replace('_', ' ')} sent in Telegram)"
        body = f"{body}\n\n{note}" if body else note
    if not body:
        return Ignored("a message without text")
    if body.split()[0].split("@")[0] == "/start" and len(body.split()) <= 2:
        # What Telegram sends when someone opens the bot: a greeting, not a request.
        return Ignored("the /start command")
    name = " ".join(part for part in (first, last) if part) or username or str(sender_id)
    return ChatMessage(
        platform=Platform.TELEGRAM,
        conversation=f"telegram:{chat_id}",
        key=f"telegram:{chat_id}:{message_id}",
        sender_id=str(sender_id),
        sender_name=_clip(name, MAX_NAME),
        sender_language=_language(language),
        text=_clip(body, MAX_DESCRIPTION),
        chat_id=str(chat_id),
    )


def parse_slack_event(payload: Any) -> ChatMessage | Ignored | Challenge:
    """A Slack Events API callback carrying a `message` event (or URL verification)."""
    if not isinstance(payload, dict):
        raise InvalidArgument([FieldViolation("$", "must be a JSON object (a Slack event)")])
    problems: list[FieldViolation] = []
    kind = _required(payload, "type", "type", problems)
    if problems:
        raise InvalidArgument(problems)
    if kind == "url_verification":
        return Challenge(_required(payload, "challenge", "challenge", problems))
    if kind != "event_callback":
        return Ignored(f"not an event callback: {kind}")
    team = _required(payload, "team_id", "team_id", problems)
    event = _object(payload, "event", "event", problems)
    if event is None:
        if not problems:
            problems.append(FieldViolation("event", "is required"))
        raise InvalidArgument(problems)
    event_type = _required(event, "type", "event.type", problems)
    subtype = json_string(event, "subtype", "event.subtype", problems)
    bot = json_string(event, "bot_id", "event.bot_id", problems)
    if problems:
        raise InvalidArgument(problems)
    if event_type not in ("message", "app_mention"):
        return Ignored(f"not a message: {event_type}")
    if bot or subtype == "bot_message":
        return Ignored("sent by a bot")
    if subtype not in _SLACK_PEOPLE_SUBTYPES:
        return Ignored(f"not a new message: {subtype}")
    channel = _required(event, "channel", "event.channel", problems)
    user = _required(event, "user", "event.user", problems)
    ts = _required(event, "ts", "event.ts", problems)
    thread_ts = json_string(event, "thread_ts", "event.thread_ts", problems).strip()
    text = json_string(event, "text", "event.text", problems).strip()
    # Slack-style senders (Mattermost, Rocket.Chat bridges) may name the person.
    user_name = json_string(event, "user_name", "event.user_name", problems).strip()
    if problems:
        raise InvalidArgument(problems)
    if subtype == "file_share" or event.get("files"):
        note = "(file shared in Slack)"
        text = f"{text}\n\n{note}" if text else note
    if not text:
        return Ignored("a message without text")
    root = thread_ts or ts
    return ChatMessage(
        platform=Platform.SLACK,
        conversation=f"slack:{team}:{channel}:{root}",
        key=f"slack:{team}:{channel}:{ts}",
        sender_id=f"{team}-{user}",
        sender_name=_clip(user_name or user, MAX_NAME),
        sender_language="",
        text=_clip(text, MAX_DESCRIPTION),
        chat_id=channel,
        thread=root,
    )


def slack_signature_problem(
    secret: str, timestamp: str, body: bytes, signature: str, now: float
) -> str:
    """Why a Slack request's signature does not hold ("" when it does)."""
    if not timestamp.strip().isdigit():
        return "X-Slack-Request-Timestamp is missing or not a number"
    if abs(now - int(timestamp)) > SLACK_MAX_CLOCK_SKEW_SECONDS:
        return "X-Slack-Request-Timestamp is too old or in the future (a replay?)"
    base = f"{SLACK_SIGNATURE_VERSION}:{timestamp.strip()}:".encode() + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    expected = f"{SLACK_SIGNATURE_VERSION}={digest}"
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        return "X-Slack-Signature does not match the request"
    return ""
