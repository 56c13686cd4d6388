"""Templates: every shipped one renders in both languages, HTML is escaped, the sandbox holds,
and admins' versions are refused by field when they do not compile or render."""

import re
from dataclasses import replace
from typing import Any

import pytest

from helpdesk.core.errors import InvalidArgument
from helpdesk.notification.domain.notices import Audience, Channel, Facts, Notice, Person
from helpdesk.notification.domain.template_texts import SHIPPED
from helpdesk.notification.domain.templates import (
    PLACEHOLDERS,
    TEMPLATE_KEYS,
    Template,
    context_for,
    dump_template,
    parse_template,
    plural,
    render,
)

CYRILLIC = re.compile(r"[А-Яа-яЁё]")
FACTS = Facts(
    event_id="evt-1",
    event_type="ticket.commented",
    ticket_id="t-1",
    number="HD-1042",
    subject="VPN does not connect",
    status="pending",
    priority="urgent",
    team="it-service-desk",
    assignee_id="boris",
    requester_email="anna@example.com",
    requester_name="Anna Ivanova",
    requester_language="ru",
    channel="email",
    comment_body="Please restart the client.\nDoes it work now?",
    comment_author_role="agent",
    old_status="open",
    new_status="pending",
    rating_score=2,
    rating_bad=True,
    sla_metric="first_response",
    sla_due_at="2025-01-31T09:00:00Z",
    actor_id="boris",
    rating_comment="Too slow.",
)
PEOPLE = {"boris": Person("boris", "Boris Petrov", "boris@example.com")}


def notice(language: str = "en", **changes: Any) -> Notice:
    base = Notice(
        event_id="evt-1",
        ticket_id="t-1",
        template="ticket.replied.requester",
        audience=Audience.REQUESTER,
        recipient="anna@example.com",
        channel=Channel.EMAIL,
        address="anna@example.com",
        language=language,
        name="Anna Ivanova",
    )
    return replace(base, **changes)


def context(facts: Facts = FACTS, language: str = "en", **changes: Any) -> dict[str, Any]:
    return context_for(
        facts,
        notice(language, **changes),
        portal_url="https://help.example.com/",
        survey_url="https://help.example.com/survey/t-1",
        typical_resolution="2h",
        people=PEOPLE,
    )


# --- the shipped set ---


def test_every_template_ships_in_english_and_russian() -> None:
    assert {key for key, _ in SHIPPED} == TEMPLATE_KEYS
    assert set(SHIPPED) == {(key, language) for key in TEMPLATE_KEYS for language in ("en", "ru")}


@pytest.mark.parametrize("key", sorted(TEMPLATE_KEYS))
@pytest.mark.parametrize("language", ["en", "ru"])
def test_every_shipped_template_renders(key: str, language: str) -> None:
    rendered = render(key, language, context(language=language, template=key))
    assert rendered.subject.startswith("[HD-1042] ")
    assert "\n" not in rendered.subject
    assert "HD-1042" in rendered.text
    assert rendered.html.startswith(f'<!DOCTYPE html>\n<html lang="{language}">')
    assert "HD-1042" in rendered.html
    # Russian texts are Russian; English ones carry no stray Cyrillic.
    for part in (rendered.subject, rendered.text, rendered.html):
        assert bool(CYRILLIC.search(part)) == (language == "ru")


@pytest.mark.parametrize("key", sorted(TEMPLATE_KEYS))
@pytest.mark.parametrize("language", ["en", "ru"])
def test_every_shipped_template_renders_with_only_the_bare_facts(key: str, language: str) -> None:
    bare = Facts(event_id="evt-2", event_type="sla.warning", ticket_id="t-2", number="HD-7")
    rendered = render(
        key,
        language,
        context_for(
            bare,
            notice(language, template=key, channel=Channel.TELEGRAM, name=""),
            portal_url="",
            survey_url="",
            typical_resolution="",
        ),
    )
    assert rendered.subject.startswith("[HD-7]")
    assert not rendered.subject.endswith(":")
    # No gaps where a missing fact would have been.
    assert "()" not in rendered.text
    assert "«»" not in rendered.text
    assert '""' not in rendered.text


def test_the_survey_link_is_in_the_resolution_notice() -> None:
    rendered = render("ticket.resolved.requester", "ru", context(language="ru"))
    assert "https://help.example.com/survey/t-1" in rendered.text
    assert 'href="https://help.example.com/survey/t-1"' in rendered.html
    assert "оцените" in rendered.text


def test_the_acknowledgement_says_the_typical_resolution_time() -> None:
    en = render("ticket.created.requester", "en", context())
    assert "Typical resolution time for requests like this: 2 hours." in en.text
    ru = render("ticket.created.requester", "ru", context(language="ru"))
    assert "Обычное время решения таких заявок — 2 часа." in ru.text
    assert "https://help.example.com/tickets/HD-1042" in ru.text


def test_chat_requesters_are_asked_to_answer_in_the_chat() -> None:
    by_chat = render("ticket.pending.requester", "en", context(channel=Channel.TELEGRAM))
    assert "reply in this chat" in by_chat.text
    by_mail = render("ticket.pending.requester", "en", context())
    assert "reply to this e-mail" in by_mail.text


def test_a_missing_language_falls_back_to_english() -> None:
    assert render("ticket.closed.requester", "de", context()) == render(
        "ticket.closed.requester", "en", context()
    )


def test_an_unknown_template_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match=r"no template 'ticket\.nonsense'"):
        render("ticket.nonsense", "en", context())


# --- escaping ---


def test_html_is_escaped_and_text_is_not() -> None:
    hostile = replace(
        FACTS,
        subject="<script>alert(1)</script>",
        comment_body='<img src=x onerror="steal()">\nsecond line',
    )
    rendered = render("ticket.replied.requester", "en", context(hostile))
    assert "<script>" not in rendered.html
    assert "<title>[HD-1042] New reply to your request: &lt;script&gt;" in rendered.html
    resolved = render("ticket.resolved.requester", "en", context(hostile))
    assert "<script>" not in resolved.html
    assert "<b>HD-1042</b> (&lt;script&gt;alert(1)&lt;/script&gt;)" in resolved.html
    assert "<img" not in rendered.html
    assert "&lt;img src=x onerror=&#34;steal()&#34;&gt;<br>\nsecond line" in rendered.html
    # Plain text and the subject are not HTML: nothing to escape there.
    assert "<script>alert(1)</script>" in rendered.subject
    assert '<img src=x onerror="steal()">' in rendered.text


def test_a_subject_is_always_one_line() -> None:
    sneaky = replace(FACTS, subject="Hello\r\nBcc: everyone@example.com")
    rendered = render("ticket.closed.requester", "en", context(sneaky))
    assert rendered.subject == "[HD-1042] Request closed: Hello Bcc: everyone@example.com"


# --- the context ---


def lookup(values: dict[str, Any], dotted: str) -> Any:
    found: Any = values
    for part in dotted.split("."):
        found = found[part]
    return found


def test_every_documented_placeholder_is_in_the_context() -> None:
    values = context()
    for name in PLACEHOLDERS:
        lookup(values, name)
    assert lookup(values, "ticket.url") == "https://help.example.com/tickets/HD-1042"
    assert lookup(values, "agent.name") == "Boris Petrov"
    assert lookup(values, "requester.display") == "Anna Ivanova <anna@example.com>"


def test_agents_are_named_only_when_their_name_is_known() -> None:
    unknown = replace(FACTS, actor_id="carl", assignee_id="carl")
    values = context(unknown)
    assert values["agent"]["name"] == ""
    # Managers still learn who holds the ticket.
    assert values["assignee"]["name"] == "carl"
    rendered = render("ticket.replied.requester", "en", values)
    assert rendered.text.endswith("\n— Service desk\n")


def test_words_in_the_notices_language() -> None:
    ru = context(language="ru")
    assert ru["ticket"]["priority"] == "срочный"
    assert ru["ticket"]["status"] == "ожидает ответа заявителя"
    assert ru["sla"] == {"metric": "первого ответа", "due_at": "31.01.2025 09:00 UTC"}
    en = context()
    assert en["sla"] == {"metric": "first response", "due_at": "2025-01-31 09:00 UTC"}
    assert en["event"]["summary"] == "New reply"


def test_an_internal_note_never_reaches_a_requesters_template() -> None:
    note = replace(FACTS, comment_internal=True)
    assert context(note)["comment"]["body"] == ""
    agent = context(note, audience=Audience.MENTIONED)
    assert agent["comment"]["body"] == FACTS.comment_body
    assert agent["event"]["summary"] == "New internal note"


@pytest.mark.parametrize(
    ("given", "en", "ru"),
    [
        ("1h", "1 hour", "1 час"),
        ("2h", "2 hours", "2 часа"),
        ("5 hours", "5 hours", "5 часов"),
        ("21m", "21 minutes", "21 минута"),
        ("11d", "11 days", "11 дней"),
        ("a business day", "a business day", "a business day"),
        ("", "", ""),
    ],
)
def test_typical_resolution_time_in_words(given: str, en: str, ru: str) -> None:
    for language, expected in (("en", en), ("ru", ru)):
        values = context_for(
            FACTS,
            notice(language),
            portal_url="",
            survey_url="",
            typical_resolution=given,
        )
        assert values["resolution_time"] == expected


def test_russian_plurals() -> None:
    words = ("заявка", "заявки", "заявок")
    forms = {n: plural(n, words, "ru") for n in (1, 2, 4, 5, 11, 12, 14, 21, 22, 25, 101, 111)}
    assert forms == {
        1: "заявка",
        2: "заявки",
        4: "заявки",
        5: "заявок",
        11: "заявок",
        12: "заявок",
        14: "заявок",
        21: "заявка",
        22: "заявки",
        25: "заявок",
        101: "заявка",
        111: "заявок",
    }


def test_long_comments_are_clipped() -> None:
    long = replace(FACTS, comment_body="x" * 10_000)
    assert len(context(long)["comment"]["body"]) == 4_000


# --- admins' templates ---


def template_raw(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "key": "ticket.resolved.requester",
        "language": "ru",
        "subject": "Заявка {{ ticket.number }} решена",
        "text": "{{ recipient.name }}, готово! Оцените: {{ survey_url }}",
        "html": "<p>{{ recipient.name }}, готово! <a href='{{ survey_url }}'>Оценить</a></p>",
    }
    raw.update(changes)
    return raw


def refused(raw: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        parse_template(raw)
    return {v.field: v.description for v in caught.value.violations}


def test_an_admins_template_replaces_the_shipped_one_in_its_language() -> None:
    template = parse_template(template_raw())
    assert parse_template(dump_template(template)) == template
    overrides = {(template.key, template.language): template}
    ru = render("ticket.resolved.requester", "ru", context(language="ru"), overrides)
    # The subject keeps the ticket token even though the admin left it out.
    assert ru.subject == "[HD-1042] Заявка HD-1042 решена"
    assert ru.text == "Anna Ivanova, готово! Оцените: https://help.example.com/survey/t-1\n"
    # English readers still get the shipped English one.
    en = render("ticket.resolved.requester", "en", context(), overrides)
    assert en == render("ticket.resolved.requester", "en", context())


@pytest.mark.parametrize(("key", "language"), sorted(SHIPPED))
def test_every_shipped_template_would_pass_as_an_admins(key: str, language: str) -> None:
    texts = SHIPPED[(key, language)]
    raw = dump_template(Template(key, language, texts.subject, texts.text, texts.html))
    assert parse_template(raw) == Template(key, language, texts.subject, texts.text, texts.html)


def test_a_template_that_does_not_compile_is_refused_by_field() -> None:
    problems = refused(template_raw(text="Hello {{ recipient.name }", html="{% if %}"))
    assert set(problems) == {"text", "html"}
    assert problems["text"].startswith("does not compile: ")
    assert problems["html"].startswith("does not compile: ")


def test_a_template_naming_what_the_context_lacks_is_refused() -> None:
    problems = refused(template_raw(subject="{{ ticket.numbr }}"))
    assert problems == {"subject": "does not render: 'dict object' has no attribute 'numbr'"}


def test_the_sandbox_refuses_python_internals() -> None:
    problems = refused(template_raw(subject="{{ ''.__class__.__mro__ }}"))
    assert set(problems) == {"subject"}
    assert problems["subject"].startswith("is refused by the sandbox: ")
    problems = refused(template_raw(text="{{ survey_url.__class__.__init__.__globals__ }}"))
    assert problems["text"].startswith("is refused by the sandbox: ")


def test_the_sandbox_refuses_exhausting_memory() -> None:
    problems = refused(template_raw(text="{{ 'x' * 100000000 }}", html="{{ 10 ** 100000 }}"))
    assert problems["text"].startswith("is refused by the sandbox: ")
    assert problems["html"].startswith("is refused by the sandbox: ")


def test_a_template_that_fails_while_rendering_is_refused() -> None:
    problems = refused(template_raw(text="{{ rating.score / 0 }}"))
    assert problems == {"text": "does not render: ZeroDivisionError: division by zero"}


def test_html_filters_are_not_for_plain_text() -> None:
    assert set(refused(template_raw(text="{{ comment.body | nl2br }}"))) == {"text"}
    parse_template(template_raw(html="<p>{{ comment.body | nl2br }}</p>"))


def test_a_template_must_name_a_shipped_key_and_language() -> None:
    problems = refused(template_raw(key="ticket.fancy", language="de", subject="", extra=1))
    assert set(problems) == {"key", "language", "subject", "extra"}
    assert problems["key"].startswith("unknown template key 'ticket.fancy'")


def test_templates_are_values() -> None:
    template = Template("ticket.closed.requester", "en", "s", "t", "h")
    assert dump_template(template)["key"] == "ticket.closed.requester"
