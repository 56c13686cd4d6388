"""E-mail as intake reads it: an RFC 822 message becomes what a ticket or a reply needs.

Pure: no I/O. The IMAP poller and the HTTP endpoint for MTA piping (`mailbox.py`) hand raw
bytes to `parse_message` and decide with what it returns.

Threading, the contract with the notification service. Every mail the help desk sends about a
ticket carries

    Message-ID: <ticket.{key}.{random}@{domain}>     made by `ticket_message_id`

where `key` is the ticket's number (`HD-42`) or id (a UUID), `random` is at least 8 letters,
digits, `_` or `-` (no dots), and `domain` is the help desk's mail domain. Its subject carries the
token `[HD-42]` (`subject_token`). A reply is threaded by its In-Reply-To, then its References
(nearest first), then the subject token; a reference to a requester's own earlier message that
opened a ticket threads too, because that ticket's id follows from the message's Message-ID
(`request_id_for`). Anything else opens a new ticket.
"""

import base64
import binascii
import hashlib
import quopri
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from email import message_from_bytes, policy
from email.errors import (
    InvalidBase64LengthDefect,
    MessageError,
    MultipartInvariantViolationDefect,
    NoBoundaryInMultipartDefect,
    StartBoundaryNotFoundDefect,
)
from email.message import EmailMessage, Message
from email.utils import getaddresses
from html.parser import HTMLParser

from helpdesk.intake.domain import MAX_DESCRIPTION, MAX_REQUEST_ID, MAX_SUBJECT, TicketDraft

# Larger messages are refused without reading them (the HTTP endpoint answers 413).
DEFAULT_MAX_MESSAGE_BYTES = 30 * 1024 * 1024
NO_SUBJECT = "(no subject)"
NO_TEXT = "(no text)"
# A subject made from the first line of the text is cut at a readable length.
SUBJECT_FROM_TEXT = 80
# Share of undecodable characters a text may have before it is refused as garbage.
MAX_UNDECODABLE_SHARE = 0.01
# How many referenced messages a reply may name for threading (References can be long).
MAX_REFERENCES = 20


@dataclass(frozen=True)
class MailAttachment:
    """An attachment as metadata: intake does not store the file."""

    name: str
    content_type: str
    size_bytes: int


@dataclass(frozen=True)
class InboundMail:
    """A message as intake needs it: who wrote, what is new in it, what it answers."""

    # "<left@right>", or "" when the message has none.
    message_id: str
    # Idempotency key of the ticket it may open: from the Message-ID, else the bytes' digest.
    request_id: str
    sender_email: str
    sender_name: str
    subject: str
    # The new text: quoted history and signature stripped.
    text: str
    # The whole text part, decoded (for forwards, and when stripping leaves nothing).
    full_text: str
    forwarded: bool
    # A language tag for the requester ("ru", "en-GB"), or "" when unknown.
    language: str
    # Ticket keys (numbers or ids) recovered from our Message-IDs it answers, nearest first.
    ticket_keys: tuple[str, ...]
    # The Message-IDs it answers: In-Reply-To, then References from the nearest (at most
    # MAX_REFERENCES; the thread's root, last, is always kept).
    references: tuple[str, ...]
    # "HD-42" from a "[HD-42]" token in the subject, or "".
    subject_ticket: str
    attachments: tuple[MailAttachment, ...]
    # Why this is machine mail (auto-reply, bounce, report), "" for a person's mail.
    automatic: str


@dataclass(frozen=True)
class Unreadable:
    """A message that cannot become a ticket or a reply; `reason` says why, for people."""

    reason: str
    message_id: str = ""


class _Broken(Exception):
    """Raised inside this module only; `parse_message` turns it into `Unreadable`."""


# --- Message-IDs and subject tokens (shared with the notification service) ---

_OUR_MESSAGE_ID = re.compile(r"<?ticket\.([A-Za-z0-9-]{1,64})\.[A-Za-z0-9_-]{8,}@[^<>\s@]+>?")
_MESSAGE_IDS = re.compile(r"<[^<>\s]+>")


def ticket_message_id(key: str, domain: str, random: str | None = None) -> str:
    """A Message-ID for mail about a ticket from which the ticket can be found again."""
    if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", key):
        raise ValueError(f"not a ticket number or id: {key!r}")
    token = random or secrets.token_urlsafe(12)
    if not re.fullmatch(r"[A-Za-z0-9_-]{8,}", token):
        raise ValueError("the random part must be at least 8 of A-Z a-z 0-9 _ -")
    return f"<ticket.{key}.{token}@{domain}>"


def ticket_key_from_message_id(message_id: str) -> str | None:
    """The ticket number or id a Message-ID of ours names, None for anybody else's."""
    match = _OUR_MESSAGE_ID.fullmatch(message_id.strip())
    return match.group(1) if match else None


def subject_token(number: str) -> str:
    """The token that threads a reply by its subject, e.g. "[HD-42]"."""
    return f"[{number}]"


def _token_pattern(number_prefix: str) -> re.Pattern[str]:
    return re.compile(rf"\[\s*{re.escape(number_prefix)}\s*-\s*(\d{{1,18}})\s*\]", re.I)


def subject_ticket(subject: str, number_prefix: str) -> str:
    """The number in the first token like "[HD-42]" (any case, inner spaces allowed), or ""."""
    token = _token_pattern(number_prefix).search(subject)
    return f"{number_prefix.upper()}-{int(token.group(1))}" if token else ""


def without_tokens(subject: str, number_prefix: str) -> str:
    """The subject with every "[HD-n]" token taken out."""
    return " ".join(_token_pattern(number_prefix).sub(" ", subject).split())


def request_id_for(message_id: str) -> str:
    """The idempotency key of the ticket a message opens: a message read twice opens one."""
    key = f"email:{message_id}"
    if len(key) <= MAX_REQUEST_ID and key.isprintable() and key.isascii():
        return key
    return f"email-sha256:{hashlib.sha256(message_id.encode('utf-8', 'replace')).hexdigest()}"


# --- Charsets ---

# Labels mail programs write that Python does not know, or knows as something narrower.
_CHARSET_ALIASES = {
    "win-1251": "cp1251",
    "windows1251": "cp1251",
    "cp-1251": "cp1251",
    "x-cp1251": "cp1251",
    "win1251": "cp1251",
    "koi8r": "koi8_r",
    "x-koi8-r": "koi8_r",
    "koi8": "koi8_r",
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "iso-8859-8-i": "iso8859_8",
    "unicode-1-1-utf-7": "utf-7",
    "utf8": "utf-8",
}
# Labels that say "some 8-bit charset": the bytes are guessed.
_UNKNOWN_8BIT = {"", "unknown-8bit", "x-unknown", "unknown", "x-user-defined", "8bit", "default"}


def _guess_8bit(data: bytes) -> str:
    """The charset of undeclared 8-bit text: UTF-8 if valid, else Russian windows-1251 or
    KOI8-R (most Russian letters are lowercase, which the two place in opposite halves of
    0xC0-0xFF), else windows-1252."""
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    high = sum(1 for b in data if b >= 0xC0)
    letters = sum(1 for b in data if 0x41 <= (b | 0x20) <= 0x7A or b >= 0xC0)
    if letters and high / letters > 0.3:
        upper_half = sum(1 for b in data if b >= 0xE0)
        return "cp1251" if upper_half >= high - upper_half else "koi8_r"
    return "cp1252"


def _decode_text(data: bytes, charset: str | None, what: str) -> str:
    """Text in the declared charset; raises _Broken naming `what` when it cannot be read."""
    label = (charset or "").strip().strip('"').lower()
    if label in ("us-ascii", "ascii", "ansi_x3.4-1968") or label in _UNKNOWN_8BIT:
        # The most common mislabel of all: 8-bit text declared ASCII, or not declared at all.
        label = "ascii" if data.isascii() else _guess_8bit(data)
    label = _CHARSET_ALIASES.get(label, label)
    try:
        return data.decode(label)
    except LookupError:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise _Broken(f"{what}: unknown charset {charset!r}") from None
    except UnicodeDecodeError:
        pass
    # Declared wrongly? UTF-8 is the usual truth.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    text = data.decode(label, errors="replace")
    if text.count("\ufffd") > max(1, len(text) * MAX_UNDECODABLE_SHARE):
        raise _Broken(f"{what}: the bytes are not {charset} text")
    return text


def _raw_header(value: str) -> str:
    """A header as it came, with 8-bit bytes (kept by the parser as surrogates) decoded."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    data = value.encode("ascii", "surrogateescape")
    return data.decode(_guess_8bit(data), errors="replace")


_ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")


def _word_bytes(encoding: str, text: str, what: str) -> bytes:
    if encoding.lower() == "b":
        try:
            return base64.b64decode(text + "=" * (-len(text) % 4))
        except (binascii.Error, ValueError):
            raise _Broken(f"{what}: broken base64 encoded word {text[:40]!r}") from None
    return quopri.decodestring(text.replace("_", " ").encode("ascii", "replace"), header=False)


def _decode_header(value: str, what: str) -> str:
    """An unstructured header (Subject) as text: RFC 2047 words decoded in their charsets
    (adjacent words of one charset joined first, since a character may be split over two),
    raw 8-bit bytes guessed, folding undone."""
    value = re.sub(r"\r?\n[ \t]", " ", _raw_header(value))
    out: list[str] = []
    pending: list[tuple[str, bytes]] = []  # encoded words not yet decoded: (charset, bytes)
    position = 0

    def flush() -> None:
        while pending:
            charset = pending[0][0]
            run = b""
            while pending and pending[0][0] == charset:
                run += pending.pop(0)[1]
            out.append(_decode_text(run, charset, what))

    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        # White space between two encoded words is not text (RFC 2047, section 6.2).
        if between.strip() or not pending:
            flush()
            out.append(between)
        pending.append((match.group(1).lower(), _word_bytes(match.group(2), match.group(3), what)))
        position = match.end()
    flush()
    out.append(value[position:])
    return "".join(out)


# --- Text: HTML, flowed text, quotes, signatures ---

# Tags that end a line, and those that also leave a blank line around them.
_BLOCK_TAGS = {
    "address", "article", "aside", "dd", "div", "dl", "dt", "fieldset", "figcaption", "figure",
    "footer", "form", "header", "li", "main", "nav", "section", "tbody", "td", "tfoot", "th",
    "thead", "tr",
}  # fmt: skip
_PARAGRAPH_TAGS = {
    "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "ol", "p", "pre", "table", "ul",
}  # fmt: skip
_VOID_TAGS = {"br", "hr", "img"}
_SKIPPED_TAGS = {"head", "script", "style", "title", "template", "noscript"}


class _HtmlText(HTMLParser):
    """HTML to plain text: blocks on their own lines, paragraphs apart, list items marked,
    links kept with their address, blockquotes as "> " lines (so quoted history strips
    like plain text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._quote = 0
        self._skip = 0
        self._pre = 0
        self._links: list[tuple[str, int]] = []  # (href, where its text starts)

    def _flush(self, force: bool = False) -> None:
        text = "".join(self._line)
        text = text.rstrip() if self._pre else " ".join(text.split())
        if text or force:
            self.lines.append("> " * self._quote + text)
        self._line = []

    def _paragraph(self) -> None:
        self._flush()
        if self.lines and self.lines[-1].strip("> "):
            self.lines.append("> " * self._quote)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip += 1
        elif tag == "br":
            self._flush(force=True)
        elif tag == "hr":
            self._flush()
            self.lines.append("> " * self._quote + "_" * 32)
        elif tag in _PARAGRAPH_TAGS:
            self._paragraph()
            if tag == "blockquote":
                self._quote += 1
            elif tag == "pre":
                self._pre += 1
        elif tag in _BLOCK_TAGS:
            self._flush()
            if tag == "li":
                self._line.append("- ")
        elif tag == "a":
            self._links.append((dict(attrs).get("href") or "", len("".join(self._line))))
        elif tag == "img":
            alt = (dict(attrs).get("alt") or "").strip()
            if alt:
                self._line.append(f"[{alt}]")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID_TAGS:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip = max(0, self._skip - 1)
        elif tag in _PARAGRAPH_TAGS:
            self._paragraph()
            if tag == "blockquote":
                self._quote = max(0, self._quote - 1)
            elif tag == "pre":
                self._pre = max(0, self._pre - 1)
        elif tag in _BLOCK_TAGS:
            self._flush()
        elif tag == "a" and self._links:
            href, start = self._links.pop()
            current = "".join(self._line)
            shown = current[start:].strip() if start <= len(current) else ""
            if href.lower().startswith(("http://", "https://")) and href != shown:
                self._line.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if not self._pre:
            self._line.append(data)
            return
        for i, part in enumerate(data.split("\n")):
            if i:
                self._flush(force=True)
            self._line.append(part)

    def close(self) -> None:
        super().close()
        self._flush()


def html_to_text(markup: str) -> str:
    """Readable plain text of an HTML mail body."""
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    return _tidy("\n".join(parser.lines))


def unflow(text: str, delsp: bool) -> str:
    """Undoes format=flowed (RFC 3676): a line ending in a space goes on in the next one."""
    out: list[str] = []
    buffer = ""
    for raw_line in text.split("\n"):
        line = raw_line[1:] if raw_line.startswith(" ") else raw_line  # space-stuffing
        if line.startswith(">") or line == "-- ":
            # Quoted lines flow among themselves only; they are dropped as history anyway.
            if buffer:
                out.append(buffer)
                buffer = ""
            out.append(line)
        elif line.endswith(" "):
            buffer += line[:-1] if delsp else line
        else:
            out.append(buffer + line)
            buffer = ""
    if buffer:
        out.append(buffer)
    return "\n".join(out)


_QUOTED = re.compile(r"^\s*>")
# One line (or two or three joined: clients wrap long ones) that introduces quoted history.
_ATTRIBUTION = [
    re.compile(r"^\s*On\b.{0,300}\bwrote:\s*$", re.I),
    re.compile(r"^\s*Am\b.{0,300}\bschrieb\b.{0,100}:\s*$", re.I),
    re.compile(r"^\s*Le\b.{0,300}\ba écrit\s*:\s*$", re.I),
    # Thunderbird, Yandex, Mail.ru and others in Russian: "... Иван Петров писал(а):"
    re.compile(r"^.{0,300}\b(на)?писал[аи]?(\s*\(а\))?\s*:\s*$", re.I),
    re.compile(r"^.{0,300}\bпишет\s*:\s*$", re.I),
    # Gmail in Russian: "пн, 3 июн. 2024 г. в 10:00, Поддержка <support@example.com>:"
    re.compile(r"^.{0,100}\d{4}\s*г\.\s*в\s*\d{1,2}:\d{2}.{0,200}:\s*$", re.I),
    # Mail.ru: "Понедельник, 3 июня 2024, 10:00 +03:00 от Поддержка <support@example.com>:"
    re.compile(r"^.{0,100}\d{1,2}:\d{2}.{0,100}\bот\b.{0,200}@.{0,200}:\s*$", re.I),
    # Yandex: "03.06.2024, 10:00, "Поддержка" <support@example.com>:"
    re.compile(r"^\s*\d{1,2}\.\d{1,2}\.\d{2,4}.{0,200}<[^<>]+@[^<>]+>\s*:\s*$"),
]
# Lines after which everything is history, quoted or not (Outlook does not quote).
_SEPARATOR = re.compile(
    r"^\s*-{2,}\s*(Original Message|Исходное сообщение|Ursprüngliche Nachricht"
    r"|Message d'origine)\s*-{2,}\s*$",
    re.I,
)
_HEADER_FROM = re.compile(r"^\s*\*?(From|От|Von|De)\s*:\*?\s*\S", re.I)
_HEADER_SENT = re.compile(
    r"^\s*\*?(Sent|Date|Отправлено|Дата|Gesendet|Envoyé|Subject|Тема)\s*:\*?\s*\S", re.I
)
_FORWARD = re.compile(
    r"^\s*(-{3,}\s*(Forwarded message|Forwarded Message|Пересылаемое сообщение"
    r"|Перенаправленное сообщение|Начало переадресованного сообщения)\s*-{3,}"
    r"|Begin forwarded message:)\s*$",
    re.I,
)
_FORWARD_SUBJECT = re.compile(r"^\s*(fwd?|пересл|переслано|wg)\s*:", re.I)
_MOBILE_SIGNATURE = re.compile(
    r"^\s*(Sent from my .{1,40}|Get Outlook for .{1,40}|Sent from Mail for Windows.{0,20}"
    r"|Отправлено (с|из) .{1,60}|Sent from Yandex.{0,40}|Sent with .{1,40})\s*$",
    re.I,
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MIME_TYPE = re.compile(r"[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*")


def _attribution_length(lines: list[str], i: int) -> int:
    """How many lines from `i` form a "... wrote:" line (clients wrap it), or 0."""
    for count in (1, 2, 3):
        if i + count > len(lines):
            break
        joined = " ".join(line.strip() for line in lines[i : i + count])
        if count > 1 and not lines[i + count - 1].strip():
            break
        if any(p.match(joined) for p in _ATTRIBUTION):
            return count
    return 0


def _is_separator(lines: list[str], i: int) -> bool:
    line = lines[i]
    if _SEPARATOR.match(line):
        return True
    # Outlook: a rule, or straight away a "From: / Sent: / To: / Subject:" block.
    if re.fullmatch(r"\s*_{10,}\s*", line):
        return any(_HEADER_FROM.match(other) for other in lines[i + 1 : i + 3])
    if _HEADER_FROM.match(line):
        return any(_HEADER_SENT.match(other) for other in lines[i + 1 : i + 5])
    return False


def strip_quoted(text: str) -> str:
    """The new part of a message: without quoted history (">" lines, "On ... wrote:",
    "-----Original Message-----", Outlook header blocks, "... писал(а):") and signature."""
    lines = text.split("\n")
    kept: list[str] = []
    i = 0
    while i < len(lines):
        if _QUOTED.match(lines[i]):
            i += 1
            continue
        attribution = _attribution_length(lines, i)
        if attribution:
            after = i + attribution
            while after < len(lines) and not lines[after].strip():
                after += 1
            if after < len(lines) and _QUOTED.match(lines[after]):
                # Bottom or inline posting: drop the attribution and the quote, keep the rest.
                i += attribution
                continue
            break  # the rest is history that is not quoted (top posting)
        if _is_separator(lines, i):
            break
        kept.append(lines[i])
        i += 1
    return strip_signature("\n".join(kept))


def strip_signature(text: str) -> str:
    """Text without its signature: from the last "-- " line, and a trailing "Sent from my..."."""
    lines = text.split("\n")
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].rstrip() == "--":
            lines = lines[:i]
            break
    while lines and (not lines[-1].strip() or _MOBILE_SIGNATURE.match(lines[-1])):
        lines.pop()
    return _tidy("\n".join(lines))


def _tidy(text: str) -> str:
    """Trailing spaces off, at most one blank line in a row, no blank edges, no control
    characters (validation refuses them; mail carries form feeds and such)."""
    text = _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n").strip()


def _is_forward(subject: str, text: str) -> bool:
    return bool(_FORWARD_SUBJECT.match(subject)) or any(
        _FORWARD.match(line) for line in text.split("\n")
    )


# --- Machine mail ---

_AUTO_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder", "x-autogenerated")
_DAEMONS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"}


def automatic_reason(msg: Message, sender_email: str) -> str:
    """Why a message was sent by a machine (so it must never open a ticket or be answered),
    or "" for a person's mail."""
    auto_submitted = str(msg.get("auto-submitted", "") or "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    precedence = str(msg.get("precedence", "") or "").strip().lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"Precedence: {precedence}"
    for name in _AUTO_HEADERS:
        if msg.get(name) is not None:
            return f"{name.title()} header"
    if msg.get("x-failed-recipients") is not None:
        return "bounce (X-Failed-Recipients)"
    local = sender_email.split("@")[0].lower()
    if local in _DAEMONS:
        return f"bounce (sender {local})"
    if msg.get_content_type() == "multipart/report":
        report = str(msg.get_param("report-type") or "").lower()
        return f"delivery or read report (multipart/report; report-type={report or '?'})"
    for part in _walk(msg):
        if part.get_content_type() in (
            "message/delivery-status",
            "message/global-delivery-status",
            "message/disposition-notification",
        ):
            return f"delivery or read report ({part.get_content_type()})"
    return_path = str(msg.get("return-path", "") or "").strip()
    if return_path in ("<>", "< >"):
        return "bounce (null Return-Path)"
    return ""


# --- Parsing ---


def _walk(msg: Message) -> Iterator[Message]:
    """Leaf parts; an attached message (message/rfc822) is one leaf, not opened."""
    if msg.is_multipart() and msg.get_content_maintype() == "multipart":
        for part in msg.get_payload():
            if isinstance(part, Message):
                yield from _walk(part)
    else:
        yield msg


def _payload(part: Message) -> bytes:
    """The decoded bytes of a leaf part (an attached message: the whole message)."""
    if part.get_content_maintype() == "message":
        inner = part.get_payload()
        try:
            if isinstance(inner, list):
                return b"".join(m.as_bytes() for m in inner if isinstance(m, Message))
            return str(inner).encode("utf-8", "surrogateescape")
        except (ValueError, TypeError, LookupError, MessageError):
            return b""
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


# Defects that mean the MIME structure itself cannot be trusted.
_STRUCTURE_DEFECTS = (
    NoBoundaryInMultipartDefect,
    StartBoundaryNotFoundDefect,
    MultipartInvariantViolationDefect,
)


def _structure_problem(msg: Message) -> str:
    """What is wrong with the MIME tree of a message, or ""."""
    for defect in msg.defects:
        if isinstance(defect, _STRUCTURE_DEFECTS):
            return f"{type(defect).__name__} in {msg.get_content_type()}"
    if msg.get_content_maintype() == "multipart":
        payload = msg.get_payload()
        if not isinstance(payload, list):
            return f"{msg.get_content_type()} without parts"
        for part in payload:
            if isinstance(part, Message) and (problem := _structure_problem(part)):
                return problem
    return ""


def _is_attachment(part: Message) -> bool:
    disposition = (part.get_content_disposition() or "").lower()
    if disposition == "attachment":
        return True
    if part.get_content_type() not in ("text/plain", "text/html"):
        return True  # images, calendars, vCards, CSV...
    # Inline text with a file name is a file (a log pasted as attachment), unless it is
    # the only text there is; the body picker decides that case.
    return bool(part.get_filename())


def _part_text(part: Message, what: str) -> str:
    data = _payload(part)  # decoding is what records base64 defects on the part
    if any(isinstance(d, InvalidBase64LengthDefect) for d in part.defects):
        raise _Broken(f"{what}: broken base64 (truncated or corrupt)")
    text = _decode_text(data, part.get_content_charset(), what)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if part.get_content_subtype() == "html":
        return html_to_text(text)
    if str(part.get_param("format") or "").lower() == "flowed":
        text = unflow(text, str(part.get_param("delsp") or "").lower() == "yes")
    return _tidy(text)


def _body_and_attachments(msg: EmailMessage) -> tuple[str, tuple[MailAttachment, ...]]:
    body: Message | None = msg.get_body(preferencelist=("plain",)) or msg.get_body(
        preferencelist=("html",)
    )
    if body is None:
        # No text body by the rules (e.g. a lone text file with a name): the first text leaf.
        body = next(
            (p for p in _walk(msg) if p.get_content_type() in ("text/plain", "text/html")), None
        )
    # The other alternatives of the body are the same text: neither body nor attachment.
    alternatives: set[int] = set()
    if body is not None:
        for container in _walk_containers(msg):
            if container.get_content_subtype() == "alternative" and any(
                p is body for p in _walk(container)
            ):
                alternatives = {id(p) for p in _walk(container)}
    text = _part_text(body, "body") if body is not None else ""
    attachments: list[MailAttachment] = []
    for index, part in enumerate(_walk(msg)):
        if part is body or id(part) in alternatives:
            continue
        if not _is_attachment(part):
            # A second inline text part (some clients split a body around an image): keep it.
            extra = _part_text(part, f"part {index + 1}")
            text = f"{text}\n\n{extra}" if text and extra else text or extra
            continue
        attachments.append(
            MailAttachment(
                name=_attachment_name(part, index),
                content_type=_content_type(part),
                size_bytes=len(_payload(part)),
            )
        )
    return text, tuple(attachments)


def _walk_containers(msg: Message) -> Iterator[EmailMessage]:
    if msg.is_multipart() and msg.get_content_maintype() == "multipart":
        if isinstance(msg, EmailMessage):
            yield msg
        for part in msg.get_payload():
            if isinstance(part, Message):
                yield from _walk_containers(part)


def _content_type(part: Message) -> str:
    content_type = part.get_content_type()
    return content_type if _MIME_TYPE.fullmatch(content_type) else "application/octet-stream"


def _attachment_name(part: Message, index: int) -> str:
    try:
        name = part.get_filename() or ""
    except (ValueError, LookupError, UnicodeError):
        name = ""
    name = " ".join(_CONTROL.sub(" ", _raw_header(name)).split())[:255]
    if name:
        return name
    if part.get_content_type() == "message/rfc822":
        return "attached message.eml"
    return f"part-{index + 1}"


def _sender(msg: Message) -> tuple[str, str]:
    """(address, display name) of the author: From, else Sender."""
    for header in ("from", "sender"):
        values = [_raw_header(str(v)) for k, v in msg.raw_items() if k.lower() == header]
        if not values:
            continue
        for name, address in getaddresses(values):
            address = address.strip()
            if re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", address):
                try:
                    decoded = _decode_header(name, "From name").strip()
                except _Broken:
                    decoded = ""  # a name is a courtesy: an unreadable one is left out
                return address.lower(), " ".join(_CONTROL.sub(" ", decoded).split())
        raise _Broken(f"{header.title()}: no sender address in {values[0][:200]!r}")
    raise _Broken("From: the message has no sender")


def _message_ids(msg: Message, header: str) -> list[str]:
    values = [_raw_header(str(v)) for k, v in msg.raw_items() if k.lower() == header]
    return _MESSAGE_IDS.findall(" ".join(values))


def _language(msg: Message, text: str) -> str:
    for header in ("content-language", "accept-language"):
        value = str(msg.get(header, "") or "")
        tag = value.split(",")[0].split(";")[0].strip()
        if re.fullmatch(r"[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*", tag):
            return tag
    return "ru" if re.search(r"[А-Яа-яЁё]", text) else ""


def parse_message(raw: bytes, *, number_prefix: str = "HD") -> InboundMail | Unreadable:
    """Reads a raw RFC 822 message. Never raises: what cannot be read comes back as
    `Unreadable` with the reason, so one broken message cannot stop a mailbox."""
    message_id = ""
    try:
        msg = message_from_bytes(raw, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        ids = _message_ids(msg, "message-id")
        message_id = ids[0] if ids else ""
        return _read(msg, raw, message_id, number_prefix)
    except _Broken as error:
        return Unreadable(str(error), message_id)
    except (
        LookupError,
        ValueError,
        TypeError,
        IndexError,
        AttributeError,
        AssertionError,
    ) as error:
        # The standard library's parser still trips over some malformed headers and parts;
        # that is this message's fault, and a person should look at it.
        return Unreadable(f"malformed message: {type(error).__name__}: {error}", message_id)


def _read(msg: EmailMessage, raw: bytes, message_id: str, number_prefix: str) -> InboundMail:
    if not raw.strip():
        raise _Broken("the message is empty")
    if not msg.keys():
        raise _Broken("not an e-mail message: no headers")
    if problem := _structure_problem(msg):
        raise _Broken(f"broken MIME structure: {problem}")
    sender_email, sender_name = _sender(msg)
    subject_values = [v for k, v in msg.raw_items() if k.lower() == "subject"]
    subject = _decode_header(str(subject_values[0]), "Subject") if subject_values else ""
    subject = " ".join(_CONTROL.sub(" ", subject).split())
    full_text, attachments = _body_and_attachments(msg)
    text = strip_quoted(full_text)
    in_reply_to = _message_ids(msg, "in-reply-to")
    references = list(reversed(_message_ids(msg, "references")))
    ordered = list(dict.fromkeys([*in_reply_to, *references]))
    if len(ordered) > MAX_REFERENCES:
        # The nearest ones, and the root: the message that started the thread.
        ordered = [*ordered[: MAX_REFERENCES - 1], ordered[-1]]
    keys = [k for k in (ticket_key_from_message_id(m) for m in ordered) if k]
    return InboundMail(
        message_id=message_id,
        request_id=request_id_for(message_id)
        if message_id
        else f"email-sha256:{hashlib.sha256(raw).hexdigest()}",
        sender_email=sender_email,
        sender_name=sender_name,
        subject=subject,
        text=text,
        full_text=full_text,
        forwarded=_is_forward(subject, full_text),
        language=_language(msg, f"{subject}\n{full_text}"),
        ticket_keys=tuple(dict.fromkeys(keys)),
        references=tuple(ordered),
        subject_ticket=subject_ticket(subject, number_prefix),
        attachments=attachments,
        automatic=automatic_reason(msg, sender_email),
    )


# --- What a ticket or a reply gets ---


def attachment_note(attachments: tuple[MailAttachment, ...]) -> str:
    """A line per attachment, so agents know what the requester sent (files are not kept)."""
    if not attachments:
        return ""
    lines = [f"- {a.name} ({a.content_type}, {_size(a.size_bytes)})" for a in attachments]
    return "Attachments (not stored):\n" + "\n".join(lines)


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


def _clip(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    note = "\n\n[cut: the message was longer]"
    return text[: limit - len(note)].rstrip() + note


def _compose(text: str, attachments: tuple[MailAttachment, ...], limit: int) -> str:
    note = attachment_note(attachments)
    room = limit - len(note) - 2 if note else limit
    body = _clip(text, max(room, 0)) if text else NO_TEXT
    return f"{body}\n\n{note}" if note else body


def ticket_text(mail: InboundMail) -> str:
    """The description of a ticket a message opens: a forward keeps what it forwards, and
    a message that is all quote keeps the quote."""
    if mail.forwarded:
        # Whole: the forwarder's signature may stand above what is forwarded.
        text = mail.full_text
    elif not mail.text:
        text = strip_signature(mail.full_text) or mail.full_text
    else:
        text = mail.text
    return _compose(text, mail.attachments, MAX_DESCRIPTION)


def reply_text(mail: InboundMail) -> str:
    """The body of the comment a reply adds: only what is new in it."""
    return _compose(mail.text, mail.attachments, MAX_DESCRIPTION)


def ticket_subject(mail: InboundMail) -> str:
    """The subject of a ticket a message opens; without one, the first line of the text."""
    subject = mail.subject
    if not subject:
        first = next((line.strip() for line in mail.text.split("\n") if line.strip()), "")
        subject = first[:SUBJECT_FROM_TEXT] or NO_SUBJECT
    if len(subject) > MAX_SUBJECT:
        subject = subject[: MAX_SUBJECT - 1].rstrip() + "…"
    return subject


def ticket_draft(mail: InboundMail, *, note: str = "", number_prefix: str = "") -> TicketDraft:
    """The ticket a message opens (channel email, requester from From); with a
    `number_prefix`, tokens of other tickets are taken out of its subject."""
    description = ticket_text(mail)
    if note:
        description = _clip(f"{note}\n\n{description}", MAX_DESCRIPTION)
    if number_prefix:
        mail = replace(mail, subject=without_tokens(mail.subject, number_prefix))
    return TicketDraft(
        subject=ticket_subject(mail),
        description=description,
        requester_email=mail.sender_email,
        requester_name=mail.sender_name,
        requester_language=mail.language,
        channel="email",
        request_id=mail.request_id,
    )
