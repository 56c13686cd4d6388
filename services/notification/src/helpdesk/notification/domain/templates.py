"""Notice templates: the context a notice is rendered with, rendering in Jinja2's sandbox,
and admins' own versions of the shipped templates.

Templates are Jinja2 run in an immutable sandbox with strict undefined names: a template
cannot reach Python internals, change the context or mention a name the context lacks.
Subject and text are plain; HTML is autoescaped and rendered as a body fragment that is
wrapped in a document here. A template missing in the notice's language falls back to
English; an admin's version of a template replaces the shipped one for its language.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import jinja2
from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup, escape

from helpdesk.core.errors import FieldViolation, InvalidArgument
from helpdesk.notification.domain import payload
from helpdesk.notification.domain.notices import (
    Audience,
    Channel,
    Facts,
    Notice,
    Person,
    event_kind,
    language_of,
)
from helpdesk.notification.domain.payload import Problems
from helpdesk.notification.domain.template_texts import (
    DEFAULT_LANGUAGE,
    DIGEST_WORDS,
    EVENT_SUMMARIES,
    LANGUAGES,
    METRIC_LABELS,
    PRIORITY_LABELS,
    SHIPPED,
    STATUS_LABELS,
    TEMPLATE_KEYS,
    UNIT_WORDS,
    Texts,
)

__all__ = [
    "PLACEHOLDERS",
    "TEMPLATE_KEYS",
    "Rendered",
    "Template",
    "context_for",
    "digest",
    "dump_template",
    "parse_template",
    "plural",
    "render",
]


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    # A whole HTML document.
    html: str


@dataclass(frozen=True)
class Template:
    """An admin's version of a shipped template in one language."""

    key: str
    language: str
    subject: str
    text: str
    html: str


NO_OVERRIDES: Mapping[tuple[str, str], Template] = MappingProxyType({})

PLACEHOLDERS: Mapping[str, str] = {
    "ticket.id": "the ticket's stable id",
    "ticket.number": "the ticket's number, e.g. HD-1042",
    "ticket.subject": "the ticket's subject",
    "ticket.status": "the ticket's status, in the notice's language",
    "ticket.status_code": "the ticket's status as stored: new, open, pending, ...",
    "ticket.priority": "the ticket's priority, in the notice's language",
    "ticket.priority_code": "the ticket's priority as stored: low, normal, high, urgent",
    "ticket.category": "the ticket's category: incident, question, service_request, feedback",
    "ticket.team": "the queue (team) the ticket waits in",
    "ticket.channel": "where the request came from: email, chat, web, ...",
    "ticket.url": "the ticket on the portal; empty when no portal is configured",
    "requester.name": "the requester's name (may be empty)",
    "requester.email": "the requester's e-mail address",
    "requester.display": "the requester's name and address, as one would write them",
    "recipient.name": "the name of the person the notice is for (may be empty)",
    "agent.name": "the agent who acted (the reply's author), else the assignee",
    "assignee.name": "the agent working the ticket; empty while nobody is assigned",
    "author.name": "who made the change, when known",
    "comment.body": "the reply or note (empty for requesters when it is an internal note)",
    "comment.internal": "whether the comment is an internal note",
    "status.old": "the status before the change, in the notice's language",
    "status.new": "the status after the change, in the notice's language",
    "sla.metric": "the SLA target at stake; in Russian in the genitive (срок решения)",
    "sla.due_at": "when the SLA target is (or was) due, in UTC",
    "rating.score": "the requester's rating, 1 to 5 (0 when not rated)",
    "rating.bad": "whether the rating counts as bad",
    "rating.comment": "what the requester wrote with the rating",
    "event.type": "the event, e.g. ticket.created or sla.breached",
    "event.summary": "the event in a few words, in the notice's language",
    "delivery.channel": "how the notice travels: email, webhook, slack or telegram",
    "survey_url": "where the requester rates the help (CSAT)",
    "resolution_time": "the typical resolution time, e.g. 2 hours",
    "portal_url": "the portal's address",
    "language": "the notice's language: en or ru",
    "custom_fields": 'the ticket\'s custom fields; read one as custom_fields.get("office", "")',
}

# Comments are quoted in full up to here: chats refuse long messages, and the ticket has it all.
MAX_QUOTE = 4_000
MAX_SUBJECT_SOURCE = 1_000
MAX_BODY_SOURCE = 100_000
# Bounds on what one expression may build, so that a template cannot exhaust memory.
MAX_REPEAT = 100_000
MAX_POWER = 1_000
TEMPLATE_FIELDS = ("key", "language", "subject", "text", "html")


# --- rendering ---


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, also refusing huge repetitions and powers."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > MAX_POWER:
            raise SecurityError(f"powers above {MAX_POWER} are not allowed")
        if operator == "*":
            for sized, count in ((left, right), (right, left)):
                if (
                    isinstance(sized, str | list | tuple)
                    and isinstance(count, int)
                    and len(sized) * count > MAX_REPEAT
                ):
                    raise SecurityError(f"results longer than {MAX_REPEAT} are not allowed")
        return super().call_binop(context, operator, left, right)


def _nl2br(value: Any) -> Markup:
    """Text as HTML lines: escaped, with each line break kept."""
    return Markup("<br>\n").join(escape(line) for line in str(value).splitlines())


def _environment(*, html: bool) -> _Sandbox:
    environment = _Sandbox(
        undefined=StrictUndefined, autoescape=html, trim_blocks=True, lstrip_blocks=True
    )
    if html:
        environment.filters["nl2br"] = _nl2br
    return environment


_TEXT = _environment(html=False)
_HTML = _environment(html=True)


@lru_cache(maxsize=512)
def _compiled(source: str, *, html: bool) -> jinja2.Template:
    return (_HTML if html else _TEXT).from_string(source)


def render(
    template: str,
    language: str,
    context: Mapping[str, Any],
    overrides: Mapping[tuple[str, str], Template] = NO_OVERRIDES,
) -> Rendered:
    """A notice's subject, text and HTML from its template in `language` (else English).

    The subject is one line and always carries the ticket token ("[HD-1042]"), so replies
    thread back into the ticket even when an admin's version of the subject drops it.
    """
    language = language_of(language)
    texts = _texts(template, language, overrides)
    subject = " ".join(_compiled(texts.subject, html=False).render(context).split())
    number = str(context.get("ticket", {}).get("number", ""))
    if number and f"[{number}]" not in subject:
        subject = f"[{number}] {subject}".strip()
    text = _tidy(_compiled(texts.text, html=False).render(context))
    html = _document(_compiled(texts.html, html=True).render(context), language, subject)
    return Rendered(subject, text, html)


def _texts(key: str, language: str, overrides: Mapping[tuple[str, str], Template]) -> Texts:
    for wanted in dict.fromkeys((language, DEFAULT_LANGUAGE)):
        override = overrides.get((key, wanted))
        if override is not None:
            return Texts(override.subject, override.text, override.html)
        shipped = SHIPPED.get((key, wanted))
        if shipped is not None:
            return shipped
    raise ValueError(f"no template {key!r}; known: {', '.join(sorted(TEMPLATE_KEYS))}")


def _tidy(text: str) -> str:
    """No trailing spaces, at most one empty line in a row: templates need not be exact."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def _document(body: str, language: str, title: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="{language}">\n'
        f'<head><meta charset="utf-8"><title>{escape(title)}</title></head>\n'
        '<body style="font-family:Arial,Helvetica,sans-serif;font-size:14px;line-height:1.5;'
        f'color:#222">\n{body.strip()}\n</body>\n</html>\n'
    )


def body_of(html: str) -> str:
    """What a rendered document holds between its body tags (the whole text if none)."""
    match = re.search(r"<body[^>]*>(.*)</body>", html, re.DOTALL | re.IGNORECASE)
    return (match[1] if match else html).strip()


def digest(notices: Sequence[Rendered], language: str) -> Rendered:
    """Notices held back from one recipient, as one message in their language."""
    language = language_of(language)
    words = DIGEST_WORDS[language]
    count = len(notices)
    counted = f"{count} {plural(count, UNIT_WORDS[language]['notification'], language)}"
    subject = words["subject"].format(count=counted)
    # One ticket's notices still thread into it.
    tokens = {token for n in notices for token in _TOKEN.findall(n.subject)}
    if len(tokens) == 1:
        subject = f"{next(iter(tokens))} {subject}"
    intro = words["intro"].format(count=count)
    text = "\n\n".join([intro, *(f"— {n.subject}\n\n{n.text.strip()}" for n in notices)])
    sections = [
        f'<h3 style="margin:24px 0 8px">{escape(n.subject)}</h3>\n'
        + (body_of(n.html) if n.html else str(_nl2br(n.text.strip())))
        for n in notices
    ]
    rule = '\n<hr style="border:0;border-top:1px solid #ddd">\n'
    html = f"<p>{escape(intro)}</p>\n" + rule.join(sections)
    return Rendered(subject, _tidy(text), _document(html, language, subject))


# A ticket token in a subject: "[HD-1042]".
_TOKEN = re.compile(r"\[[A-Z][A-Z0-9]*-[0-9]+\]")


# --- the context ---


def context_for(
    facts: Facts,
    notice: Notice,
    *,
    portal_url: str,
    survey_url: str,
    typical_resolution: str,
    people: Mapping[str, Person] | None = None,
) -> dict[str, Any]:
    """The values a notice's template sees (see PLACEHOLDERS), in the notice's language.

    `typical_resolution` may be a count with its unit ("2h", "30m", "1d"), said in the
    notice's language, or words given as they are. `people` gives agents' names.
    """
    language = language_of(notice.language)
    known = people or {}
    kind = event_kind(facts.event_type)
    internal = facts.comment_internal
    role = (facts.comment_author_role if kind == "ticket.commented" else "") or facts.actor_role
    author = _name_of(known, facts.actor_id)
    if not author and role.strip().lower() == "requester":
        author = facts.requester_name
    assignee = _name_of(known, facts.assignee_id) or facts.assignee_id
    body = facts.comment_body
    # Internal notes stay with the agents whatever a subscription asks for.
    if internal and notice.audience is Audience.REQUESTER:
        body = ""
    if len(body) > MAX_QUOTE:
        body = body[: MAX_QUOTE - 1].rstrip() + "…"
    return {
        "language": language,
        "ticket": {
            "id": facts.ticket_id,
            "number": facts.number,
            "subject": facts.subject,
            "status": _label(STATUS_LABELS, language, facts.status),
            "status_code": facts.status,
            "priority": _label(PRIORITY_LABELS, language, facts.priority),
            "priority_code": facts.priority,
            "category": facts.category,
            "team": facts.team,
            "channel": facts.channel,
            "url": _ticket_url(portal_url, facts),
        },
        "requester": {
            "name": facts.requester_name,
            "email": facts.requester_email,
            "display": _display(facts.requester_name, facts.requester_email),
        },
        "recipient": {"name": notice.name},
        # Requesters read this one: a bare agent id means nothing to them.
        "agent": {
            "name": author
            if role.strip().lower() == "agent" and author
            else _name_of(known, facts.assignee_id)
        },
        "assignee": {"name": assignee},
        "author": {"name": author},
        "comment": {"body": body, "internal": internal},
        "status": {
            "old": _label(STATUS_LABELS, language, facts.old_status),
            "new": _label(STATUS_LABELS, language, facts.new_status or facts.status),
        },
        "sla": {
            "metric": _label(METRIC_LABELS, language, facts.sla_metric) or _NO_METRIC[language],
            "due_at": _moment(facts.sla_due_at, language),
        },
        "rating": {
            "score": facts.rating_score,
            "bad": facts.rating_bad,
            "comment": facts.rating_comment,
        },
        "event": {"type": kind, "summary": _summary(facts, kind, language)},
        "delivery": {"channel": notice.channel.value},
        "survey_url": survey_url,
        "resolution_time": _duration(typical_resolution, language),
        "portal_url": portal_url,
        "custom_fields": dict(facts.custom_fields),
    }


def _name_of(people: Mapping[str, Person], person_id: str) -> str:
    person = people.get(person_id) if person_id else None
    return person.name if person is not None else ""


def _label(labels: Mapping[str, Mapping[str, str]], language: str, code: str) -> str:
    return labels[language].get(code, code.replace("_", " "))


def _ticket_url(portal_url: str, facts: Facts) -> str:
    if not portal_url:
        return ""
    return f"{portal_url.rstrip('/')}/tickets/{quote(facts.number or facts.ticket_id, safe='')}"


def _display(name: str, email: str) -> str:
    # A chat requester's made-up address means nothing to the reader.
    address = "" if payload.undeliverable(email) else email
    if name and address:
        return f"{name} <{address}>"
    return name or address


def _moment(value: str, language: str) -> str:
    """An ISO 8601 instant as people read it, in UTC; other text as given."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if language == "ru":
        return f"{moment:%d.%m.%Y %H:%M} UTC"
    return f"{moment:%Y-%m-%d %H:%M} UTC"


# "the SLA target", "срок по SLA": said of an SLA event that names no metric.
_NO_METRIC = {"en": "SLA", "ru": "по SLA"}

_DURATION = re.compile(r"([0-9]{1,6})\s*(m|min|mins|minutes?|h|hours?|d|days?)")


def _duration(value: str, language: str) -> str:
    """ "2h" -> "2 hours" / "2 часа"; anything else as given."""
    match = _DURATION.fullmatch(value.strip().lower())
    if not match:
        return value.strip()
    count = int(match[1])
    return f"{count} {plural(count, UNIT_WORDS[language][match[2][0]], language)}"


def plural(count: int, words: tuple[str, ...], language: str) -> str:
    """The word form for a count: English (one, other), Russian (one, few, many)."""
    if language != "ru":
        return words[0] if count == 1 else words[1]
    tens, ones = count % 100, count % 10
    if ones == 1 and tens != 11:
        return words[0]
    if 2 <= ones <= 4 and not 12 <= tens <= 14:
        return words[1]
    return words[2]


def _summary(facts: Facts, kind: str, language: str) -> str:
    summaries = EVENT_SUMMARIES[language]
    if kind == "ticket.commented" and facts.comment_internal:
        kind = "ticket.noted"
    summary = summaries.get(kind, kind)
    if kind == "ticket.status_changed" and facts.new_status:
        old = _label(STATUS_LABELS, language, facts.old_status)
        new = _label(STATUS_LABELS, language, facts.new_status)
        summary = f"{summary}: {old} → {new}" if old else f"{summary}: {new}"
    elif kind == "ticket.rated" and facts.rating_score:
        score = f"{facts.rating_score} из 5" if language == "ru" else f"{facts.rating_score}/5"
        summary = f"{summary} ({score})"
    elif kind.startswith("sla.") and facts.sla_metric:
        metric = _label(METRIC_LABELS, language, facts.sla_metric)
        summary = f"{summary}: срок {metric}" if language == "ru" else f"{summary}: {metric}"
    return summary


# --- admins' templates ---


def parse_template(raw: Mapping[str, Any]) -> Template:
    """An admin's version of a shipped template, refused (naming "subject", "text" or
    "html" and the error) unless it compiles and renders against a full and a sparse
    sample notice."""
    problems: Problems = []
    checked = payload.mapping(raw, "", problems)
    payload.unknown_fields(checked, TEMPLATE_FIELDS, "", problems)
    key = checked.get("key")
    if key is None or key == "":
        problems.append(FieldViolation("key", "is required"))
        key = ""
    elif not isinstance(key, str) or key.strip() not in TEMPLATE_KEYS:
        problems.append(
            FieldViolation(
                "key", f"unknown template key {key!r}; known: {', '.join(sorted(TEMPLATE_KEYS))}"
            )
        )
        key = ""
    else:
        key = key.strip()
    language = checked.get("language")
    if not isinstance(language, str) or language.strip().lower() not in LANGUAGES:
        problems.append(
            FieldViolation("language", f"must be {' or '.join(LANGUAGES)}; got {language!r}")
        )
        language = DEFAULT_LANGUAGE
    language = language.strip().lower()
    sources = {
        "subject": _source(checked.get("subject"), "subject", MAX_SUBJECT_SOURCE, problems),
        "text": _source(checked.get("text"), "text", MAX_BODY_SOURCE, problems),
        "html": _source(checked.get("html"), "html", MAX_BODY_SOURCE, problems),
    }
    samples = _samples(key or "ticket.event.watcher", language)
    for name, source in sources.items():
        if source:
            problem = _trial(source, html=name == "html", samples=samples)
            if problem:
                problems.append(FieldViolation(name, problem))
    if problems:
        raise InvalidArgument(problems)
    return Template(key, language, sources["subject"], sources["text"], sources["html"])


def dump_template(template: Template) -> dict[str, Any]:
    """The raw form `parse_template` reads back to an equal template."""
    return {
        "key": template.key,
        "language": template.language,
        "subject": template.subject,
        "text": template.text,
        "html": template.html,
    }


def _source(value: Any, where: str, limit: int, problems: Problems) -> str:
    if not isinstance(value, str) or not value.strip():
        problems.append(FieldViolation(where, "is required"))
        return ""
    if len(value) > limit:
        problems.append(FieldViolation(where, f"must be at most {limit} characters"))
        return ""
    return value


def _trial(source: str, *, html: bool, samples: tuple[dict[str, Any], ...]) -> str:
    """Why a template source is unusable; "" when it compiles and renders every sample."""
    try:
        compiled = _compiled(source, html=html)
    except TemplateSyntaxError as error:
        return f"does not compile: {error.message} (line {error.lineno})"
    for sample in samples:
        try:
            compiled.render(sample)
        except SecurityError as error:
            return f"is refused by the sandbox: {error}"
        except UndefinedError as error:
            return f"does not render: {error.message}"
        # A template is admin code: whatever it raises (a division by zero, a bad filter
        # argument) is a reason to refuse it, reported to the admin, never a crash.
        except Exception as error:
            return f"does not render: {type(error).__name__}: {error}"
    return ""


def sample_context(key: str, language: str) -> dict[str, Any]:
    """The context of a sample notice with every fact given: what a preview shows."""
    return _samples(key, language)[0]


def _samples(key: str, language: str) -> tuple[dict[str, Any], ...]:
    """A notice with every fact given, and one with only what every event has."""
    audience = _audience_of(key)
    notice = Notice(
        event_id="evt-1",
        ticket_id="t-1",
        template=key,
        audience=audience,
        recipient="anna@example.com",
        channel=Channel.EMAIL,
        address="anna@example.com",
        language=language,
        name="Anna Ivanova",
    )
    full = Facts(
        event_id="evt-1",
        event_type="ticket.commented",
        ticket_id="t-1",
        number="HD-1042",
        subject="VPN does not connect",
        status="pending",
        priority="high",
        team="it-service-desk",
        assignee_id="boris",
        requester_email="anna@example.com",
        requester_name="Anna Ivanova",
        requester_language=language,
        channel="email",
        comment_body="Please restart the client.\nDoes it work now?",
        comment_author_role="agent",
        old_status="open",
        new_status="pending",
        rating_score=2,
        rating_bad=True,
        sla_metric="resolution",
        sla_due_at="2025-01-31T09:00:00Z",
        custom_fields={"office": "Moscow"},
        actor_id="boris",
        actor_role="agent",
        category="incident",
        tags=("vpn",),
        rating_comment="Took too long.",
    )
    sparse = Facts(event_id="evt-2", event_type="sla.warning", ticket_id="t-2", number="HD-7")
    people = {"boris": Person(id="boris", name="Boris Petrov", email="boris@example.com")}
    return (
        context_for(
            full,
            notice,
            portal_url="https://help.example.com",
            survey_url="https://help.example.com/survey/t-1",
            typical_resolution="2h",
            people=people,
        ),
        context_for(
            sparse,
            Notice("evt-2", "t-2", key, audience, "boris", Channel.TELEGRAM, "1", language),
            portal_url="",
            survey_url="",
            typical_resolution="",
        ),
    )


def _audience_of(key: str) -> Audience:
    suffix = key.rsplit(".", 1)[-1]
    for audience in Audience:
        if audience.value == suffix:
            return audience
    return Audience.WATCHER
