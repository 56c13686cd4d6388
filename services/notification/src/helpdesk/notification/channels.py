"""The ways out: e-mail over SMTP, signed JSON webhooks, Slack incoming webhooks and
Telegram's sendMessage. Each either delivers or raises DeliveryFailed saying whether
another attempt may succeed."""

import hashlib
import hmac
import json
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import aiosmtplib
import httpx
from opentelemetry import propagate

from helpdesk.notification.domain.notices import Channel
from helpdesk.notification.domain.retry import Failure, classify_http, classify_smtp

SIGNATURE_HEADER = "X-Helpdesk-Signature"
DELIVERY_HEADER = "X-Helpdesk-Delivery"


class DeliveryFailed(Exception):
    def __init__(self, kind: Failure, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


@dataclass(frozen=True)
class Outgoing:
    """One message as the channels see it."""

    delivery_id: str
    channel: Channel
    address: str
    subject: str
    text: str
    html: str
    event_id: str
    ticket_id: str
    template: str


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    starttls: bool
    username: str
    password: str
    timeout: float
    sender: str
    reply_to: str


class Senders:
    def __init__(
        self,
        mail: MailSettings,
        *,
        webhook_secret: str,
        telegram_token: str,
        telegram_api_url: str,
        http_timeout: float,
    ) -> None:
        self._mail = mail
        self._secret = webhook_secret.encode()
        self._telegram = f"{telegram_api_url.rstrip('/')}/bot{telegram_token}/sendMessage"
        self._http = httpx.AsyncClient(timeout=http_timeout)

    async def close(self) -> None:
        await self._http.aclose()

    async def send(self, message: Outgoing) -> None:
        match message.channel:
            case Channel.EMAIL:
                await self._email(message)
            case Channel.WEBHOOK:
                await self._webhook(message)
            case Channel.SLACK:
                await self._post(message, message.address, {"text": _chat_text(message)})
            case Channel.TELEGRAM:
                body = {"chat_id": message.address, "text": _chat_text(message)}
                await self._post(message, self._telegram, body)

    async def _email(self, message: Outgoing) -> None:
        mail = EmailMessage()
        mail["From"] = self._mail.sender
        mail["To"] = message.address
        mail["Subject"] = message.subject
        # Stable per delivery: a resend after a crash is recognisably the same message.
        mail["Message-ID"] = make_msgid(idstring=message.delivery_id.replace(":", "."))
        mail["X-Helpdesk-Delivery"] = message.delivery_id
        # Machine mail: intake (and well-behaved auto-responders) never answer it.
        mail["Auto-Submitted"] = "auto-generated"
        if self._mail.reply_to:
            mail["Reply-To"] = self._mail.reply_to
        mail.set_content(message.text)
        if message.html:
            mail.add_alternative(message.html, subtype="html")
        try:
            await aiosmtplib.send(
                mail,
                hostname=self._mail.host,
                port=self._mail.port,
                start_tls=self._mail.starttls,
                username=self._mail.username or None,
                password=self._mail.password or None,
                timeout=self._mail.timeout,
            )
        except aiosmtplib.SMTPResponseException as error:
            raise DeliveryFailed(
                classify_smtp(error.code), f"SMTP {error.code}: {error.message}"
            ) from error
        except (aiosmtplib.SMTPException, OSError) as error:
            raise DeliveryFailed(classify_smtp(None), f"SMTP: {error!r}") from error

    async def _webhook(self, message: Outgoing) -> None:
        body = {
            "delivery_id": message.delivery_id,
            "event_id": message.event_id,
            "ticket_id": message.ticket_id,
            "template": message.template,
            "subject": message.subject,
            "text": message.text,
        }
        await self._post(message, message.address, body, signed=True)

    async def _post(
        self, message: Outgoing, url: str, body: dict[str, Any], *, signed: bool = False
    ) -> None:
        raw = json.dumps(body, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", DELIVERY_HEADER: message.delivery_id}
        # The receiving system may continue the trace of the event that caused the message.
        propagate.inject(headers)
        if signed and self._secret:
            digest = hmac.new(self._secret, raw, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        try:
            reply = await self._http.post(url, content=raw, headers=headers)
        except httpx.TimeoutException as error:
            raise DeliveryFailed(classify_http(None, True), f"timed out: {error!r}") from error
        except httpx.HTTPError as error:
            raise DeliveryFailed(classify_http(None, False), f"{error!r}") from error
        if reply.status_code >= 300:
            kind = classify_http(reply.status_code, False)
            raise DeliveryFailed(kind, f"HTTP {reply.status_code}: {reply.text[:200]}")


def _chat_text(message: Outgoing) -> str:
    return f"{message.subject}\n\n{message.text}" if message.subject else message.text
