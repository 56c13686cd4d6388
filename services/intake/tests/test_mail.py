"""Reading e-mail: charsets, threading, quotes and signatures, machine mail, broken MIME,
and what a message does to tickets (with an in-memory stand-in for TicketCommands)."""

import base64
import quopri
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpdesk.core.errors import FailedPrecondition, InvalidArgument, NotFound
from helpdesk.intake import domain
from helpdesk.intake.commands import CommentResult, TicketCommands
from helpdesk.intake.domain import MAX_DESCRIPTION, MAX_REQUEST_ID, MAX_SUBJECT, Status
from helpdesk.intake.lifecycle import Actor, Attachment, Comment, Role, comment_id_for
from helpdesk.intake.mail import (
    InboundMail,
    Unreadable,
    html_to_text,
    parse_message,
    request_id_for,
    strip_quoted,
    subject_ticket,
    subject_token,
    ticket_draft,
    ticket_key_from_message_id,
    ticket_message_id,
    unflow,
)
from helpdesk.intake.mailbox import MAIL_ACTOR, MailOutcome, accept_raw_message


def b64_word(text: str, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="


def qp_body(text: str, charset: str) -> str:
    return quopri.encodestring(text.replace("\n", "\r\n").encode(charset)).decode("ascii")


def crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def read(raw: bytes, prefix: str = "HD") -> InboundMail:
    parsed = parse_message(raw, number_prefix=prefix)
    assert isinstance(parsed, InboundMail), parsed
    return parsed


def refused(raw: bytes) -> str:
    parsed = parse_message(raw)
    assert isinstance(parsed, Unreadable), parsed
    return parsed.reason


# --- Real-looking messages ---

KOI8_BODY = (
    "Добрый день!\n\n"
    "Не печатает принтер HP LaserJet в комнате 312, горит оранжевая лампочка.\n"
    "Перезагрузка не помогла.\n\n"
    "-- \n"  # the signature delimiter, with its space
    "Иван Петров\nБухгалтерия, доб. 1234\n"
)


def koi8_mutt() -> bytes:
    """Mutt on a KOI8-R terminal: 8-bit body, subject and name as RFC 2047 words."""
    head = crlf(
        "Return-Path: <ivan.petrov@example.ru>\n"
        "Received: from mail.example.ru (mail.example.ru [192.0.2.10])\n"
        "\tby mx.helpdesk.example.com with ESMTPS id 4Vt3; Mon, 3 Jun 2024 10:15:02 +0300\n"
        f"From: {b64_word('Иван Петров', 'koi8-r')} <Ivan.Petrov@Example.RU>\n"
        "To: support@helpdesk.example.com\n"
        f"Subject: {b64_word('Не печатает принтер в 312', 'koi8-r')}\n"
        "Date: Mon, 3 Jun 2024 10:15:00 +0300\n"
        "Message-ID: <20240603071500.GA1234@mail.example.ru>\n"
        "MIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=koi8-r\n"
        "Content-Disposition: inline\n"
        "Content-Transfer-Encoding: 8bit\n"
        "User-Agent: Mutt/2.2.9 (2022-11-12)\n"
        "\n"
    )
    return head + KOI8_BODY.replace("\n", "\r\n").encode("koi8-r")


OUTLOOK_REPLY_TEXT = """Коллеги, после замены картриджа всё равно не печатает.

С уважением,
Анна Смирнова

-----Original Message-----
From: Служба поддержки <support@helpdesk.example.com>
Sent: Monday, June 3, 2024 11:02 AM
To: Анна Смирнова <a.smirnova@example.ru>
Subject: [HD-42] Не печатает принтер

Здравствуйте! Попробуйте заменить картридж.
"""


def cp1251_outlook_reply(
    in_reply_to: str = "<ticket.HD-42.Qw3rTy7uIo@helpdesk.example.com>",
) -> bytes:
    """Outlook in Russian: windows-1251, quoted-printable, multipart/alternative."""
    html = (
        "<html><head><meta http-equiv=Content-Type content='text/html; charset=windows-1251'>"
        "<style>p {margin:0}</style></head><body>"
        "<p>Коллеги, после замены картриджа всё равно не печатает.</p>"
        "<div id=divRplyFwdMsg><hr><b>From:</b> Служба поддержки<br>"
        "<b>Sent:</b> Monday, June 3, 2024 11:02 AM</div></body></html>"
    )
    head = (
        "From: =?windows-1251?B?"
        + base64.b64encode("Анна Смирнова".encode("cp1251")).decode()
        + "?= <a.smirnova@example.ru>\n"
        "To: =?windows-1251?B?"
        + base64.b64encode("Служба поддержки".encode("cp1251")).decode()
        + "?= <support@helpdesk.example.com>\n"
        f"Subject: {b64_word('RE: [HD-42] Не печатает принтер', 'windows-1251')}\n"
        "Thread-Topic: =?windows-1251?B?zeUg7+X36PLg5fIg7/Do7fLl8A==?=\n"
        "Thread-Index: AQHatZ0Ew2Zx9s1s0EqQq6r7m5wHwQ==\n"
        "Date: Mon, 3 Jun 2024 09:30:11 +0000\n"
        "Message-ID: <AM0PR06MB6412C0FFEE@AM0PR06MB6412.eurprd06.prod.outlook.com>\n"
        f"In-Reply-To: {in_reply_to}\n"
        f"References: <20240603071500.GA1234@mail.example.ru> {in_reply_to}\n"
        "Content-Language: ru-RU\n"
        "X-MS-Has-Attach: \n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/alternative; boundary="_000_AM0PR06MB6412_"\n'
        "\n"
        "--_000_AM0PR06MB6412_\n"
        'Content-Type: text/plain; charset="windows-1251"\n'
        "Content-Transfer-Encoding: quoted-printable\n"
        "\n"
        f"{qp_body(OUTLOOK_REPLY_TEXT, 'cp1251')}\n"
        "--_000_AM0PR06MB6412_\n"
        'Content-Type: text/html; charset="windows-1251"\n'
        "Content-Transfer-Encoding: quoted-printable\n"
        "\n"
        f"{qp_body(html, 'cp1251')}\n"
        "--_000_AM0PR06MB6412_--\n"
    )
    return crlf(head)


def gmail_html_only(body_html: str, subject: str = "Re: VPN drops every hour") -> bytes:
    encoded = base64.encodebytes(body_html.encode()).decode()
    return crlf(
        "From: Bob Stone <bob@example.org>\n"
        f"Subject: {subject}\n"
        "Message-ID: <CAF=bob-1@mail.gmail.com>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: text/html; charset="UTF-8"\n'
        "Content-Transfer-Encoding: base64\n"
        "\n" + encoded
    )


def simple(
    body: str = "Hello, my VPN drops every hour.",
    *,
    headers: str = "",
    sender: str = "Ann Lee <ann@example.com>",
    subject: str = "VPN drops",
    message_id: str = "<m1@example.com>",
    content_type: str = "text/plain; charset=utf-8",
) -> bytes:
    return crlf(
        f"From: {sender}\nTo: support@helpdesk.example.com\nSubject: {subject}\n"
        f"Message-ID: {message_id}\nDate: Tue, 4 Jun 2024 08:00:00 +0000\n"
        f"MIME-Version: 1.0\nContent-Type: {content_type}\n"
        "Content-Transfer-Encoding: 8bit\n" + headers + "\n"
    ) + body.replace("\n", "\r\n").encode("utf-8")


# --- Charsets ---


def test_koi8r_body_subject_and_name_are_decoded() -> None:
    mail = read(koi8_mutt())
    assert mail.subject == "Не печатает принтер в 312"
    assert mail.sender_email == "ivan.petrov@example.ru"
    assert mail.sender_name == "Иван Петров"
    assert mail.text == (
        "Добрый день!\n\nНе печатает принтер HP LaserJet в комнате 312, горит оранжевая "
        "лампочка.\nПерезагрузка не помогла."
    )
    assert "Бухгалтерия" in mail.full_text  # the signature is only cut from the new text
    assert mail.language == "ru"
    assert mail.message_id == "<20240603071500.GA1234@mail.example.ru>"
    assert mail.request_id == "email:<20240603071500.GA1234@mail.example.ru>"
    assert mail.automatic == ""
    assert mail.ticket_keys == ()
    assert mail.subject_ticket == ""


def test_windows1251_quoted_printable_reply_is_decoded_and_stripped() -> None:
    mail = read(cp1251_outlook_reply())
    assert mail.subject == "RE: [HD-42] Не печатает принтер"
    assert mail.sender_name == "Анна Смирнова"
    # The plain alternative wins over the HTML one; Outlook's history is cut.
    assert mail.text == (
        "Коллеги, после замены картриджа всё равно не печатает.\n\nС уважением,\nАнна Смирнова"
    )
    assert mail.language == "ru-RU"
    assert mail.attachments == ()


def test_utf8_subject_split_inside_a_character_over_two_encoded_words() -> None:
    data = "Не работает почта".encode()
    first, second = data[:7], data[7:]  # byte 7 is inside "р"
    words = " ".join(f"=?UTF-8?B?{base64.b64encode(part).decode()}?=" for part in (first, second))
    mail = read(simple(subject=words))
    assert mail.subject == "Не работает почта"


def test_q_encoded_subject_with_underscores_and_plain_text_around() -> None:
    word = "=?windows-1251?Q?" + "".join(f"={b:02X}" for b in "Счёт".encode("cp1251")) + "?="
    mail = read(simple(subject=f"Re: {word}_No_5 for May"))
    assert mail.subject == "Re: Счёт_No_5 for May"
    q_with_space = "=?utf-8?Q?=D0=9F=D1=80=D0=B8=D0=B2=D0=B5=D1=82_=D0=BC=D0=B8=D1=80?="
    assert read(simple(subject=q_with_space)).subject == "Привет мир"


@pytest.mark.parametrize("charset", ["cp1251", "koi8_r"])
def test_undeclared_russian_8bit_body_is_recognised(charset: str) -> None:
    text = "Здравствуйте, у меня не открывается отчёт за квартал, пишет ошибку доступа."
    raw = crlf(
        "From: user@example.ru\nSubject: report\nMessage-ID: <u1@example.ru>\n"
        "Content-Type: text/plain\n\n"
    ) + text.encode(charset)
    assert read(raw).text == text


def test_raw_8bit_headers_in_utf8_and_windows1251() -> None:
    utf8 = read(simple(subject="placeholder").replace(b"placeholder", "Счёт на оплату".encode()))
    assert utf8.subject == "Счёт на оплату"
    cp = simple(subject="placeholder").replace(b"placeholder", "Счёт на оплату".encode("cp1251"))
    assert read(cp).subject == "Счёт на оплату"


def test_ascii_label_on_utf8_body_and_common_charset_aliases() -> None:
    assert read(simple("Привет", content_type="text/plain; charset=us-ascii")).text == "Привет"
    raw = crlf("From: a@example.ru\nSubject: x\nContent-Type: text/plain; charset=win-1251\n\n")
    assert read(raw + "Привет".encode("cp1251")).text == "Привет"


# --- Body choice and HTML ---


def test_html_only_mail_is_converted_and_its_blockquote_dropped() -> None:
    html = (
        '<div dir="ltr"><div>Still broken after the update.</div><div><br></div>'
        '<div>See <a href="https://status.example.org/vpn">the status page</a> &amp; logs:</div>'
        "<ul><li>client 5.2</li><li>Windows 11</li></ul></div><br>"
        '<div class="gmail_quote"><div class="gmail_attr">On Mon, Jun 3, 2024 at 10:00 AM '
        "Support &lt;support@helpdesk.example.com&gt; wrote:<br></div>"
        '<blockquote class="gmail_quote">Please update the client.<br>-- <br>Support</blockquote>'
        "</div><script>alert(1)</script>"
    )
    mail = read(gmail_html_only(html))
    assert mail.text == (
        "Still broken after the update.\n\n"
        "See the status page (https://status.example.org/vpn) & logs:\n\n"
        "- client 5.2\n- Windows 11"
    )
    assert "alert" not in mail.full_text


def test_html_to_text_paragraphs_pre_and_entities() -> None:
    text = html_to_text(
        "<html><head><title>t</title></head><body><h1>Title</h1><p>One&nbsp;two</p>"
        "<p>three<br>four</p><pre>  a  b\n  c</pre><table><tr><td>x</td><td>y</td></tr>"
        "</table><img alt='logo' src='cid:1'></body></html>"
    )
    assert text == "Title\n\nOne two\n\nthree\nfour\n\n  a  b\n  c\n\nx\ny\n\n[logo]"


def test_format_flowed_is_unwrapped() -> None:
    assert unflow("This is a long \nline that flowed.\n> quoted \n> too\n-- \nsig", False) == (
        "This is a long line that flowed.\n> quoted \n> too\n-- \nsig"
    )
    raw = simple(
        "Первая часть \nвторая часть.\n",
        content_type="text/plain; charset=utf-8; format=flowed; delsp=no",
    )
    assert read(raw).text == "Первая часть вторая часть."


def test_attachments_are_listed_not_kept() -> None:
    pdf = base64.encodebytes(b"%PDF-1.7\n" + b"0" * 2040).decode()
    raw = crlf(
        "From: Ann Lee <ann@example.com>\nSubject: invoice\nMessage-ID: <att@example.com>\n"
        'MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="b1"\n\n'
        "--b1\n"
        'Content-Type: multipart/alternative; boundary="b2"\n\n'
        "--b2\nContent-Type: text/plain; charset=utf-8\n\nSee the invoice attached.\n"
        "--b2\nContent-Type: text/html; charset=utf-8\n\n<p>See the invoice attached.</p>\n"
        "--b2--\n"
        "--b1\n"
        "Content-Type: application/pdf\n"
        "Content-Disposition: attachment; filename*=UTF-8''%D0%A1%D1%87%D1%91%D1%82.pdf\n"
        "Content-Transfer-Encoding: base64\n\n"
        f"{pdf}"
        "--b1\n"
        "Content-Type: text/calendar; method=REQUEST\n\nBEGIN:VCALENDAR\nEND:VCALENDAR\n"
        "--b1\n"
        "Content-Type: text/plain; charset=utf-8\n\nPS: due on Friday.\n"
        "--b1\n"
        "Content-Type: message/rfc822\n\n"
        "From: other@example.com\nSubject: forwarded\n\nold text\n"
        "--b1--\n"
    )
    mail = read(raw)
    # A second inline text part (clients split a body around an image) is text too.
    assert mail.text == "See the invoice attached.\n\nPS: due on Friday."
    assert [(a.name, a.content_type) for a in mail.attachments] == [
        ("Счёт.pdf", "application/pdf"),
        ("part-4", "text/calendar"),
        ("attached message.eml", "message/rfc822"),
    ]
    assert mail.attachments[0].size_bytes == 2049
    description = ticket_draft(mail).description
    assert description.startswith(
        "See the invoice attached.\n\nPS: due on Friday.\n\nAttachments (not stored):\n"
    )
    assert "- Счёт.pdf (application/pdf, 2.0 KB)" in description


# --- Threading ---


def test_our_message_id_round_trip() -> None:
    mid = ticket_message_id("HD-42", "helpdesk.example.com")
    assert mid.startswith("<ticket.HD-42.")
    assert mid.endswith("@helpdesk.example.com>")
    assert ticket_key_from_message_id(mid) == "HD-42"
    ticket_id = str(uuid.uuid4())
    assert ticket_key_from_message_id(ticket_message_id(ticket_id, "hd.example")) == ticket_id
    assert ticket_message_id("HD-1", "h", random="abcdefgh") == "<ticket.HD-1.abcdefgh@h>"
    for foreign in ("<CAF=x@mail.gmail.com>", "<ticket.HD-1.short@h>", "<ticket.HD.1.x@h>", ""):
        assert ticket_key_from_message_id(foreign) is None
    with pytest.raises(ValueError, match="not a ticket"):
        ticket_message_id("HD 42", "h")


def test_reply_is_threaded_by_in_reply_to_then_references() -> None:
    mail = read(cp1251_outlook_reply())
    assert mail.ticket_keys == ("HD-42",)
    assert mail.references[0] == "<ticket.HD-42.Qw3rTy7uIo@helpdesk.example.com>"
    assert "<20240603071500.GA1234@mail.example.ru>" in mail.references
    refs = (
        "References: <ticket.HD-7.aaaaaaaa@h> <x@y> <ticket.HD-9.bbbbbbbb@h>\n"
        "In-Reply-To: <ticket.HD-9.bbbbbbbb@h>\n"
    )
    assert read(simple(headers=refs)).ticket_keys == ("HD-9", "HD-7")
    chain = " ".join(f"<m{i}@example.com>" for i in range(40))
    long = read(simple(headers=f"References: {chain}\n")).references
    assert len(long) == 20
    assert long[0] == "<m39@example.com>"  # the nearest first
    assert long[-1] == "<m0@example.com>"  # and the root kept


@pytest.mark.parametrize(
    ("subject", "prefix", "expected"),
    [
        ("Re: [HD-42] Не печатает принтер", "HD", "HD-42"),
        ("RE: FW: [hd-0042] printer", "HD", "HD-42"),
        ("Re: [ HD-7 ] x", "HD", "HD-7"),
        ("Re: [SUP-7] x", "SUP", "SUP-7"),
        ("Re: [SUP-7] x", "HD", ""),
        ("HD-42 without brackets", "HD", ""),
        ("[HD-abc]", "HD", ""),
    ],
)
def test_subject_token(subject: str, prefix: str, expected: str) -> None:
    assert subject_ticket(subject, prefix) == expected


def test_subject_token_is_made_and_read_back() -> None:
    subject = f"Re: {subject_token('HD-42')} Printer"
    assert read(simple(subject=subject)).subject_ticket == "HD-42"


def test_request_id_comes_from_the_message_id_or_the_bytes() -> None:
    assert request_id_for("<a@b>") == "email:<a@b>"
    long = request_id_for("<" + "x" * 300 + "@example.com>")
    assert long.startswith("email-sha256:")
    assert len(long) <= MAX_REQUEST_ID
    no_id = simple().replace(b"Message-ID: <m1@example.com>\r\n", b"")
    assert read(no_id).request_id == read(no_id).request_id
    assert read(no_id).request_id.startswith("email-sha256:")
    assert read(no_id).request_id != read(no_id + b"!").request_id


# --- Quotes and signatures ---


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (  # Gmail, top posting, the attribution wrapped over two lines
            "Yes, it works now.\n\nOn Mon, Jun 3, 2024 at 10:00 AM Support Team <\n"
            "support@helpdesk.example.com> wrote:\n\n> Please try again.\n> \n",
            "Yes, it works now.",
        ),
        (  # bottom posting keeps the answer
            "On 03.06.2024 10:00, Support wrote:\n> Did it help?\n\nNo, still broken.\n",
            "No, still broken.",
        ),
        (  # inline answers between quotes
            "> Which version?\n5.2\n> Which OS?\nWindows 11\n",
            "5.2\nWindows 11",
        ),
        (  # Thunderbird in Russian
            "Спасибо, заработало.\n\n03.06.2024 10:00, Служба поддержки пишет:\n> Проверьте.\n",
            "Спасибо, заработало.",
        ),
        (  # Mail.ru / Yandex style, history not quoted
            "Не помогло.\n\nИван Петров писал(а):\nПопробуйте перезагрузить.\n",
            "Не помогло.",
        ),
        (  # Gmail in Russian
            "Готово.\n\nпн, 3 июн. 2024 г. в 10:00, Поддержка <support@helpdesk.example.com>:\n"
            "> Пришлите скриншот.\n",
            "Готово.",
        ),
        (  # Outlook: a rule and a header block, nothing quoted
            "Thanks!\n\n________________________________\nFrom: Support <s@h.example>\n"
            "Sent: Monday, June 3, 2024 10:00\nTo: Ann\nSubject: RE: VPN\n\nOld text\n",
            "Thanks!",
        ),
        (  # Outlook in Russian
            "Добрый день.\n\nОт: Поддержка <s@h.example>\nОтправлено: 3 июня 2024 г. 10:00\n"
            "Кому: Анна\nТема: RE: VPN\n\nСтарый текст\n",
            "Добрый день.",
        ),
        (
            "See below.\n\n-----Исходное сообщение-----\nОт: Поддержка\nСтарое\n",
            "See below.",
        ),
        (  # signature after "-- ", and a mobile footer
            "It is fixed.\n\n-- \nAnn Lee\nAccounting\n",
            "It is fixed.",
        ),
        ("Works.\n\nSent from my iPhone\n", "Works."),
        ("Работает.\n\nОтправлено с iPhone\n", "Работает."),
        (  # "--" inside the text is not a signature when a later one is
            "Steps:\n--\n1. open\n\n-- \nBob\n",
            "Steps:\n--\n1. open",
        ),
    ],
)
def test_quoted_history_and_signatures_are_stripped(body: str, expected: str) -> None:
    assert strip_quoted(body) == expected


def test_a_forward_keeps_what_it_forwards_for_a_new_ticket() -> None:
    body = (
        "Can you look at this?\n\n---------- Forwarded message ---------\n"
        "From: Monitoring <mon@example.com>\nDate: Mon, Jun 3, 2024\nSubject: Disk full\n\n"
        "Disk /var on db-7 is 97% full.\n"
    )
    mail = read(simple(body, subject="Fwd: Disk full"))
    assert mail.forwarded
    assert "Disk /var on db-7 is 97% full." in ticket_draft(mail).description


def test_a_message_that_is_all_quote_keeps_the_quote_for_a_new_ticket() -> None:
    body = "-----Original Message-----\nFrom: Boss\nSent: today\n\nPlease fix the printer.\n"
    mail = read(simple(body, subject="printer"))
    assert mail.text == ""
    assert "Please fix the printer." in ticket_draft(mail).description


# --- The ticket a message opens ---


def test_draft_is_a_valid_email_ticket() -> None:
    mail = read(koi8_mutt())
    draft = ticket_draft(mail)
    assert draft.channel == "email"
    assert draft.requester_email == "ivan.petrov@example.ru"
    assert draft.requester_name == "Иван Петров"
    assert draft.requester_language == "ru"
    assert draft.request_id == mail.request_id
    new = domain.validate_new_ticket(draft)
    assert new.subject == "Не печатает принтер в 312"
    assert new.description.startswith("Добрый день!")


def test_draft_limits_and_empty_parts() -> None:
    long = read(simple("word " * 10_000, subject="S" * 500))
    draft = ticket_draft(long)
    assert len(draft.subject) == MAX_SUBJECT
    assert len(draft.description) <= MAX_DESCRIPTION
    assert draft.description.endswith("[cut: the message was longer]")
    domain.validate_new_ticket(draft)
    no_subject = ticket_draft(read(simple("First line here\nsecond", subject="")))
    assert no_subject.subject == "First line here"
    nothing = ticket_draft(read(simple("", subject="")))
    assert (nothing.subject, nothing.description) == ("(no subject)", "(no text)")
    control = ticket_draft(read(simple("a\x0cb\x00c", subject="x\x07y")))
    domain.validate_new_ticket(control)


# --- Machine mail ---


@pytest.mark.parametrize(
    ("headers", "sender", "reason"),
    [
        ("Auto-Submitted: auto-replied\n", "ann@example.com", "Auto-Submitted: auto-replied"),
        ("Auto-Submitted: auto-generated; owner-email=x\n", "ann@example.com", "auto-generated"),
        ("Precedence: bulk\n", "news@example.com", "Precedence: bulk"),
        ("Precedence: junk\n", "ann@example.com", "Precedence: junk"),
        ("Precedence: list\n", "ann@example.com", "Precedence: list"),
        ("X-Autoreply: yes\n", "ann@example.com", "X-Autoreply"),
        ("X-Autorespond: Out of office\n", "ann@example.com", "X-Autorespond"),
        ("", "MAILER-DAEMON@mx.example.com", "mailer-daemon"),
        ("", "Mail Delivery System <postmaster@example.com>", "postmaster"),
        ("X-Failed-Recipients: ann@example.com\n", "ann@example.com", "X-Failed-Recipients"),
        ("Return-Path: <>\n", "ann@example.com", "null Return-Path"),
    ],
)
def test_auto_replies_and_bounces_are_recognised(headers: str, sender: str, reason: str) -> None:
    assert reason in read(simple(headers=headers, sender=sender)).automatic


def test_auto_submitted_no_is_a_person() -> None:
    assert read(simple(headers="Auto-Submitted: no\n")).automatic == ""


def dsn() -> bytes:
    return crlf(
        "From: Mail Delivery Subsystem <bounces@mx.example.com>\nTo: support@helpdesk.example.com\n"
        "Subject: Undelivered Mail Returned to Sender\nMessage-ID: <dsn-1@mx.example.com>\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\n\n'
        "--r\nContent-Type: text/plain\n\nThis is the mail system. I'm sorry...\n"
        "--r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.com\n\n"
        "Final-Recipient: rfc822; nobody@example.com\nAction: failed\nStatus: 5.1.1\n"
        "--r\nContent-Type: message/rfc822\n\nFrom: support@helpdesk.example.com\n"
        "Subject: [HD-42] Your ticket\n\nHello\n--r--\n"
    )


def test_delivery_reports_are_recognised() -> None:
    assert "delivery-status" in read(dsn()).automatic
    receipt = simple(
        headers="",
        content_type='multipart/report; report-type=disposition-notification; boundary="r"',
        body="--r\nContent-Type: text/plain\n\nRead.\n--r--\n",
    )
    assert "disposition-notification" in read(receipt).automatic


# --- Broken messages are values, never exceptions ---


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty"),
        (b"\x00\x01\x02 binary junk \xff\xfe", "no headers"),
        (crlf("Subject: hi\n\nno sender\n"), "no sender"),
        (crlf("From: undisclosed-recipients:;\nSubject: x\n\nbody\n"), "no sender address"),
        (crlf("From: Ivan <ivan@>\nSubject: x\n\nbody\n"), "no sender address"),
        (
            crlf("From: a@example.com\nContent-Type: multipart/mixed\n\n--x\n\nbody\n"),
            "broken MIME structure",
        ),
        (
            crlf(
                'From: a@example.com\nContent-Type: multipart/mixed; boundary="zz"\n\n'
                "--other\n\nbody\n"
            ),
            "broken MIME structure",
        ),
        (
            crlf("From: a@example.com\nContent-Type: text/plain; charset=x-klingon-8\n\n")
            + "Привет".encode("cp1251"),
            "unknown charset 'x-klingon-8'",
        ),
        (
            crlf("From: a@example.com\nContent-Type: text/plain; charset=utf-8\n\n")
            + bytes(range(0x80, 0x100)) * 4,
            "not utf-8 text",
        ),
        (
            crlf(
                "From: a@example.com\nContent-Type: text/plain; charset=utf-8\n"
                "Content-Transfer-Encoding: base64\n\n0J/RgNC4\nQ\n"
            ),
            "broken base64",
        ),
        (
            crlf("From: a@example.com\nSubject: =?x-klingon?B?")
            + base64.b64encode("Привет".encode("cp1251"))
            + b"?=\r\n\r\nbody\r\n",
            "Subject: unknown charset 'x-klingon'",
        ),
    ],
)
def test_broken_messages_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    assert reason in refused(raw)


def test_refusal_keeps_the_message_id() -> None:
    raw = crlf("Message-ID: <broken-1@example.com>\nSubject: no sender\n\nx\n")
    parsed = parse_message(raw)
    assert parsed == Unreadable("From: the message has no sender", "<broken-1@example.com>")


MESSAGES = [koi8_mutt(), cp1251_outlook_reply(), dsn(), simple()]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(MESSAGES),
    st.lists(st.tuples(st.integers(0, 10_000), st.binary(min_size=0, max_size=8)), max_size=6),
)
def test_mangled_messages_never_raise(original: bytes, edits: list[tuple[int, bytes]]) -> None:
    raw = bytearray(original)
    for at, junk in edits:
        at %= len(raw) + 1
        raw[at : at + len(junk)] = junk
    parsed = parse_message(bytes(raw))
    assert isinstance(parsed, InboundMail | Unreadable)
    if isinstance(parsed, InboundMail) and not parsed.automatic:
        refused_fields: set[str] = set()
        try:
            domain.validate_new_ticket(ticket_draft(parsed))
        except InvalidArgument as error:
            refused_fields = {v.field for v in error.violations}
        # A mangled sender may be no address intake accepts; all else must be valid.
        assert refused_fields <= {"requester.email"}


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_random_bytes_never_raise(raw: bytes) -> None:
    assert isinstance(parse_message(raw), InboundMail | Unreadable)


# --- What a message does to tickets ---


class FakeTickets:
    """Just enough of TicketCommands, in memory, with its refusals."""

    def __init__(self) -> None:
        self.tickets: dict[str, domain.Ticket] = {}
        self.comments: dict[str, list[Comment]] = {}
        self.links: list[tuple[str, str, str]] = []

    async def create(
        self, draft: domain.TicketDraft, default_channel: domain.Channel = domain.Channel.API
    ) -> domain.Ticket:
        new = domain.validate_new_ticket(draft, default_channel)
        ticket_id = domain.ticket_id_for(new.request_id)
        if ticket_id in self.tickets:
            return self.tickets[ticket_id]
        sequence = len(self.tickets) + 1
        now = datetime.now(UTC)
        ticket = domain.open_ticket(
            new,
            ticket_id=ticket_id,
            number=f"HD-{sequence}",
            sequence=sequence,
            request_id=new.request_id,
            now=now,
        )
        self.tickets[ticket_id] = ticket
        self.comments[ticket_id] = []
        return ticket

    async def get(self, key: str) -> domain.Ticket:
        for ticket in self.tickets.values():
            if key in (ticket.id, ticket.number):
                return ticket
        raise NotFound(f"ticket {key} not found")

    async def comment(
        self,
        key: str,
        author: Actor,
        body: str,
        internal: bool,
        attachments: list[Attachment],
        idempotency_key: str = "",
    ) -> CommentResult:
        ticket = await self.get(key)
        for earlier in self.comments[ticket.id]:
            if idempotency_key and earlier.id == comment_id_for(ticket.id, idempotency_key):
                return CommentResult(ticket, earlier, replayed=True)
        if ticket.status == Status.CLOSED:
            raise FailedPrecondition(f"ticket {ticket.number} is closed")
        if not body.strip():
            raise InvalidArgument([])
        comment_id = comment_id_for(ticket.id, idempotency_key) if idempotency_key else "c"
        comment = Comment(
            comment_id, author, body.strip(), internal, tuple(attachments), datetime.now(UTC)
        )
        self.comments[ticket.id].append(comment)
        return CommentResult(ticket, comment, replayed=False)

    async def history(self, key: str) -> tuple[list[dict[str, Any]], list[Comment]]:
        ticket = await self.get(key)
        return [], list(self.comments[ticket.id])

    async def link(
        self, key: str, other_key: str, kind: str, actor: Actor
    ) -> tuple[domain.Ticket, domain.Ticket]:
        self.links.append((key, other_key, kind))
        return await self.get(key), await self.get(other_key)

    def set_status(self, number: str, status: Status, merged_into: str = "") -> None:
        ticket = next(t for t in self.tickets.values() if t.number == number)
        self.tickets[ticket.id] = replace(ticket, status=status, merged_into=merged_into)


async def accept(fake: FakeTickets, raw: bytes, **options: Any) -> Any:
    return await accept_raw_message(cast(TicketCommands, fake), raw, **options)


async def test_new_mail_opens_a_ticket_once() -> None:
    fake = FakeTickets()
    first = await accept(fake, koi8_mutt())
    again = await accept(fake, koi8_mutt())
    assert first.outcome == again.outcome == MailOutcome.CREATED
    assert first.ticket_number == again.ticket_number == "HD-1"
    assert len(fake.tickets) == 1
    ticket = fake.tickets[first.ticket_id]
    assert ticket.channel == domain.Channel.EMAIL
    assert ticket.requester.email == "ivan.petrov@example.ru"


async def test_replies_thread_by_header_token_and_own_earlier_message() -> None:
    fake = FakeTickets()
    opened = await accept(fake, koi8_mutt())
    ours = ticket_message_id(opened.ticket_number, "helpdesk.example.com")
    by_header = simple(
        "Спасибо!", sender="ivan.petrov@example.ru", message_id="<r1@x>",
        headers=f"In-Reply-To: {ours}\n",
    )  # fmt: skip
    by_token = simple(
        "Ещё вопрос", sender="ivan.petrov@example.ru", message_id="<r2@x>",
        subject=f"Re: [{opened.ticket_number}] Не печатает",
    )  # fmt: skip
    by_own = simple(
        "Забыл добавить: модель HP 402.", sender="ivan.petrov@example.ru", message_id="<r3@x>",
        headers="References: <20240603071500.GA1234@mail.example.ru>\n",
    )  # fmt: skip
    for raw in (by_header, by_token, by_own):
        result = await accept(fake, raw)
        assert (result.outcome, result.ticket_number) == (MailOutcome.COMMENTED, "HD-1")
    comments = fake.comments[opened.ticket_id]
    assert [c.body for c in comments] == [
        "Спасибо!",
        "Ещё вопрос",
        "Забыл добавить: модель HP 402.",
    ]
    assert all(c.author == Actor("ivan.petrov@example.ru", Role.REQUESTER) for c in comments)
    assert not any(c.internal for c in comments)


async def test_a_reply_read_twice_is_added_once() -> None:
    fake = FakeTickets()
    opened = await accept(fake, koi8_mutt())
    reply = simple(
        "Спасибо!", sender="ivan.petrov@example.ru", message_id="<r1@x>",
        subject=f"Re: [{opened.ticket_number}]",
    )  # fmt: skip
    assert (await accept(fake, reply)).outcome == MailOutcome.COMMENTED
    assert (await accept(fake, reply)).outcome == MailOutcome.DUPLICATE
    assert len(fake.comments[opened.ticket_id]) == 1


async def test_someone_elses_reply_is_an_internal_note() -> None:
    fake = FakeTickets()
    opened = await accept(fake, koi8_mutt())
    reply = simple(
        "У меня тоже не печатает.", sender="Олег <oleg@example.ru>", message_id="<o1@x>",
        subject=f"Re: [{opened.ticket_number}]",
    )  # fmt: skip
    assert (await accept(fake, reply)).outcome == MailOutcome.COMMENTED
    (note,) = fake.comments[opened.ticket_id]
    assert note.internal
    assert note.author == MAIL_ACTOR
    assert note.body.startswith("E-mail from Олег <oleg@example.ru>, who is not the requester:")


async def test_a_reply_to_a_closed_ticket_opens_a_linked_follow_up() -> None:
    fake = FakeTickets()
    opened = await accept(fake, koi8_mutt())
    fake.set_status(opened.ticket_number, Status.CLOSED)
    reply = simple(
        "Снова не печатает.", sender="ivan.petrov@example.ru", message_id="<again@x>",
        subject=f"Re: [{opened.ticket_number}] Не печатает",
    )  # fmt: skip
    result = await accept(fake, reply)
    assert result.outcome == MailOutcome.CREATED
    assert result.ticket_number == "HD-2"
    follow_up = fake.tickets[result.ticket_id]
    assert follow_up.description.startswith("Follow-up to HD-1, which is closed.")
    assert follow_up.subject == "Re: Не печатает"  # the closed ticket's token taken out
    assert fake.links == [(result.ticket_id, opened.ticket_id, "related_to")]


async def test_a_reply_to_a_merged_ticket_goes_to_its_target() -> None:
    fake = FakeTickets()
    source = await accept(fake, koi8_mutt())
    target = await accept(fake, simple(message_id="<other@x>"))
    fake.set_status(source.ticket_number, Status.CLOSED, merged_into=target.ticket_number)
    reply = simple("Ok", sender="ivan.petrov@example.ru", message_id="<m@x>", subject="Re: [HD-1]")
    assert (await accept(fake, reply)).ticket_number == target.ticket_number


async def test_unknown_ticket_number_opens_a_new_ticket() -> None:
    fake = FakeTickets()
    result = await accept(fake, simple(subject="Re: [HD-999] lost", message_id="<u@x>"))
    assert (result.outcome, result.ticket_number) == (MailOutcome.CREATED, "HD-1")


async def test_machine_mail_our_own_and_oversized_open_nothing() -> None:
    fake = FakeTickets()
    ignored = await accept(fake, simple(headers="Auto-Submitted: auto-replied\n"))
    assert ignored.outcome == MailOutcome.IGNORED
    assert "auto-replied" in ignored.reason
    assert (await accept(fake, dsn())).outcome == MailOutcome.IGNORED
    own = await accept(
        fake, simple(sender="support@helpdesk.example.com"),
        own_addresses=["Support@Helpdesk.Example.com"],
    )  # fmt: skip
    assert own.outcome == MailOutcome.IGNORED
    big = await accept(fake, simple("x" * 5000), max_bytes=1000)
    assert big.outcome == MailOutcome.REFUSED
    assert "limit of 1000" in big.reason
    assert fake.tickets == {}


async def test_refusals_are_values() -> None:
    fake = FakeTickets()
    broken = await accept(fake, crlf("Subject: x\n\nbody\n"))
    assert broken.outcome == MailOutcome.REFUSED
    assert "no sender" in broken.reason
    # Parses, but intake refuses the address: a clear reason, no exception.
    local = await accept(fake, simple(sender="root@localhost"))
    assert local.outcome == MailOutcome.REFUSED
    assert "requester.email: is not an e-mail address" in local.reason
