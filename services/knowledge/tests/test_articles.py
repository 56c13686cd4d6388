"""Articles: payload checks naming each field, the lifecycle and its versions, drafts from
tickets."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from helpdesk.core.errors import FailedPrecondition, InvalidArgument
from helpdesk.knowledge.domain.articles import (
    Article,
    ArticleStatus,
    ArticleVersion,
    Language,
    Visibility,
    archive,
    article_from_ticket,
    dump_article,
    dump_version,
    load_article,
    load_version,
    parse_article,
    publish,
    restore,
    revise,
)

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)


def valid(**changes: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": "outlook-does-not-open",
        "title": "Почта не открывается: что делать",
        "body": "Запустите Outlook в безопасном режиме:\r\n\r\n    outlook.exe /safe\n",
        "language": "ru",
        "category": "Email/Outlook",
        "tags": ["Outlook", "почта", "outlook"],
        "visibility": "public",
    }
    raw.update(changes)
    return raw


def violations(raw: Any) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        parse_article(raw, author="anna", now=NOW)
    return {v.field: v.description for v in caught.value.violations}


def draft(**changes: Any) -> Article:
    return replace(parse_article(valid(), author="anna", now=NOW), **changes)


# --- the admin's payload ---


def test_a_valid_payload_makes_a_new_draft() -> None:
    article = parse_article(valid(), author="anna", now=NOW)
    assert article == Article(
        id="outlook-does-not-open",
        title="Почта не открывается: что делать",
        # Line ends made "\n", trimmed at both ends, indentation inside kept.
        body="Запустите Outlook в безопасном режиме:\n\n    outlook.exe /safe",
        language=Language.RU,
        category="email/outlook",
        tags=("outlook", "почта"),
        visibility=Visibility.PUBLIC,
        status=ArticleStatus.DRAFT,
        author="anna",
        version=0,
        created_at=NOW,
        updated_at=NOW,
    )


def test_defaults_keep_a_new_article_internal_and_uncategorised() -> None:
    raw = valid()
    for key in ("category", "tags", "visibility"):
        del raw[key]
    article = parse_article(raw, author="anna", now=NOW)
    assert article.visibility == Visibility.INTERNAL
    assert article.category == ""
    assert article.tags == ()


def test_time_is_kept_in_utc() -> None:
    moscow = timezone(timedelta(hours=3))
    article = parse_article(valid(), author="anna", now=datetime(2025, 3, 3, 12, 0, tzinfo=moscow))
    assert article.created_at == NOW
    assert article.created_at.tzinfo == UTC


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("id", None, "is required"),
        ("id", "Has Spaces", "lowercase letters"),
        ("id", 42, "must be a string"),
        ("title", "   ", "is required"),
        ("title", "two\nlines", "one line"),
        ("title", "x" * 201, "at most 200"),
        ("body", None, "is required"),
        ("body", "bell \x07", "control characters"),
        ("body", "x" * 100_001, "at most 100000"),
        ("language", None, "must be one of ru, en"),
        ("language", "de", "must be one of ru, en"),
        ("category", "email//outlook", "a path of at most 5 parts"),
        ("category", "a/b/c/d/e/f", "a path of at most 5 parts"),
        ("category", "email/out look", "a path of at most 5 parts"),
        ("category", ["email"], "must be a string"),
        ("tags", "outlook", "must be a list"),
        ("tags", [f"t{i}" for i in range(21)], "at most 20 items"),
        ("visibility", "secret", "must be one of public, internal"),
    ],
)
def test_each_bad_field_is_named(field: str, value: Any, message: str) -> None:
    found = violations(valid(**{field: value}))
    assert list(found) == [field]
    assert message in found[field]


def test_a_bad_tag_is_named_by_its_index() -> None:
    found = violations(valid(tags=["ok", "not ok", ""]))
    assert set(found) == {"tags[1]", "tags[2]"}


def test_every_bad_field_is_reported_at_once() -> None:
    found = violations(valid(id="", title="", language="fr", colour="red"))
    assert set(found) == {"id", "title", "language", "colour"}
    assert "unknown field" in found["colour"]


@pytest.mark.parametrize("field", ["status", "author", "version", "created_at", "updated_at"])
def test_lifecycle_fields_are_not_the_admins_to_set(field: str) -> None:
    found = violations(valid(**{field: "published"}))
    assert list(found) == [field]
    assert "set by the knowledge base" in found[field]


def test_a_payload_must_be_an_object() -> None:
    assert violations(["not", "an", "object"]) == {"(root)": "must be an object"}


def test_the_stored_form_reads_back_to_the_same_article() -> None:
    published, version = publish(draft(), by="boris", now=LATER)
    assert load_article(dump_article(published)) == published
    assert load_version(dump_version(version)) == version


def test_a_stored_article_names_its_bad_fields() -> None:
    stored = dump_article(draft()) | {"status": "gone", "version": -1, "created_at": "yesterday"}
    with pytest.raises(InvalidArgument) as caught:
        load_article(stored)
    assert {v.field for v in caught.value.violations} == {"status", "version", "created_at"}


# --- the lifecycle ---


def test_publishing_a_draft_makes_version_one() -> None:
    published, version = publish(draft(), by="boris", now=LATER)
    assert published.status == ArticleStatus.PUBLISHED
    assert published.version == 1
    assert published.updated_at == LATER
    assert published.author == "anna"
    assert version == ArticleVersion(
        article_id="outlook-does-not-open",
        number=1,
        title=published.title,
        body=published.body,
        language=Language.RU,
        category="email/outlook",
        tags=("outlook", "почта"),
        visibility=Visibility.PUBLIC,
        published_at=LATER,
        by="boris",
    )


def test_edits_to_a_published_article_become_the_next_version() -> None:
    first, _ = publish(draft(), by="anna", now=NOW)
    edit = parse_article(valid(title="Outlook не запускается"), author="boris", now=LATER)
    edited = revise(first, edit, now=LATER)
    assert edited.status == ArticleStatus.PUBLISHED
    assert edited.title == "Outlook не запускается"
    # The article keeps its author and creation; the version moves only on publish.
    assert (edited.author, edited.created_at, edited.version) == ("anna", NOW, 1)
    second, version = publish(edited, by="boris", now=LATER)
    assert second.version == 2
    assert version.title == "Outlook не запускается"


def test_an_edit_must_be_of_the_same_article() -> None:
    other = parse_article(valid(id="another"), author="anna", now=NOW)
    with pytest.raises(InvalidArgument) as caught:
        revise(draft(), other, now=LATER)
    assert [v.field for v in caught.value.violations] == ["id"]


def test_archiving_keeps_the_version() -> None:
    published, _ = publish(draft(), by="anna", now=NOW)
    archived = archive(published, now=LATER)
    assert archived.status == ArticleStatus.ARCHIVED
    assert archived.version == 1
    assert archived.updated_at == LATER


def test_a_draft_may_be_archived_unpublished() -> None:
    assert archive(draft(), now=LATER).status == ArticleStatus.ARCHIVED


@pytest.mark.parametrize(
    ("move", "target"),
    [
        (lambda a: publish(a, by="anna", now=LATER), "published"),
        (lambda a: archive(a, now=LATER), "archived"),
    ],
)
def test_an_archived_article_cannot_move_except_by_restore(move: Any, target: str) -> None:
    published, _ = publish(draft(), by="anna", now=NOW)
    archived = archive(published, now=NOW)
    with pytest.raises(FailedPrecondition) as caught:
        move(archived)
    assert f"from archived to {target}" in caught.value.message


def test_an_archived_article_cannot_be_edited() -> None:
    archived = archive(draft(), now=NOW)
    with pytest.raises(FailedPrecondition, match="archived"):
        revise(archived, draft(), now=LATER)


def test_restore_makes_a_draft_of_an_older_version() -> None:
    first, version_1 = publish(draft(), by="anna", now=NOW)
    edit = parse_article(valid(title="Новый заголовок", tags=[]), author="anna", now=NOW)
    second, _ = publish(revise(first, edit, now=NOW), by="anna", now=NOW)
    archived = archive(second, now=NOW)
    restored = restore(archived, version_1, now=LATER)
    assert restored.status == ArticleStatus.DRAFT
    assert (restored.title, restored.tags) == (version_1.title, version_1.tags)
    assert restored.version == 2
    # Published again, the old text is a new version: numbers only grow.
    republished, version_3 = publish(restored, by="anna", now=LATER)
    assert (republished.version, version_3.number) == (3, 3)


def test_restoring_a_published_article_takes_it_back_to_draft() -> None:
    published, version_1 = publish(draft(), by="anna", now=NOW)
    restored = restore(published, version_1, now=LATER)
    assert (restored.status, restored.version) == (ArticleStatus.DRAFT, 1)


def test_restore_takes_only_the_articles_own_versions() -> None:
    first, version_1 = publish(draft(), by="anna", now=NOW)
    stranger = replace(version_1, article_id="another")
    with pytest.raises(InvalidArgument) as caught:
        restore(first, stranger, now=LATER)
    assert [v.field for v in caught.value.violations] == ["version"]
    future = replace(version_1, number=5)
    with pytest.raises(InvalidArgument, match="versions 1 to 1"):
        restore(first, future, now=LATER)


def test_a_naive_time_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        publish(draft(), by="anna", now=datetime(2025, 3, 3, 9, 0))


# --- drafts from tickets ---


def test_a_resolved_ticket_becomes_an_internal_draft() -> None:
    article = article_from_ticket(
        "Re: FW: [HD-1042] Не работает  VPN",
        "VPN-клиент не подключается после обновления.",
        "Переустановили клиент с портала.",
        "ru-RU",
        "boris",
        article_id="vpn-after-update",
        now=NOW,
        category="network/vpn",
        tags=("vpn",),
    )
    assert article.title == "Не работает VPN"
    assert article.body == (
        "## Проблема\n\nVPN-клиент не подключается после обновления.\n\n"
        "## Решение\n\nПереустановили клиент с портала."
    )
    assert article.language == Language.RU
    assert (article.status, article.visibility) == (ArticleStatus.DRAFT, Visibility.INTERNAL)
    assert (article.author, article.version, article.created_at) == ("boris", 0, NOW)
    assert (article.category, article.tags) == ("network/vpn", ("vpn",))


def test_an_english_ticket_gets_english_headings() -> None:
    article = article_from_ticket(
        "Printer jam", "Paper stuck.", "Opened the tray.", "en", "anna", article_id="a1", now=NOW
    )
    assert article.body.startswith("## Problem\n\nPaper stuck.\n\n## Solution")


def test_a_long_subject_is_cut_at_a_word() -> None:
    subject = "Принтер " * 40
    article = article_from_ticket(subject, "p", "s", "ru", "anna", article_id="a1", now=NOW)
    assert len(article.title) <= 200
    assert article.title.endswith("Принтер…")


def test_a_bad_ticket_names_each_argument() -> None:
    with pytest.raises(InvalidArgument) as caught:
        article_from_ticket("Re: [HD-1]", " ", "", "de", "", article_id="Bad Id", now=NOW)
    assert {v.field for v in caught.value.violations} == {
        "subject",
        "problem",
        "solution",
        "language",
        "author",
        "article_id",
    }
