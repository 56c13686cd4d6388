"""Articles: what an admin may write, the draft -> published -> archived lifecycle with
numbered versions, and drafts made from solved tickets.

An article is its working copy. Publishing records that copy as the next numbered version
(an ArticleVersion, kept for audit and for restore); edits to a published article show at
once and become a version when it is published again.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from helpdesk.core.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
)
from helpdesk.knowledge.domain import payload
from helpdesk.knowledge.domain.payload import Problems


class Language(StrEnum):
    RU = "ru"
    EN = "en"


class Visibility(StrEnum):
    # Requesters see it in the portal and in suggestions.
    PUBLIC = "public"
    # Agents only.
    INTERNAL = "internal"


class ArticleStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"


MAX_TITLE = 200
MAX_BODY = 100_000
MAX_CATEGORY_DEPTH = 5
MAX_VERSION = 1_000_000
CATEGORY_SEGMENT = re.compile(r"\w[\w-]{0,49}")
CATEGORY_RULE = (
    f"must be a path of at most {MAX_CATEGORY_DEPTH} parts such as 'email/outlook', "
    "each 1-50 letters, digits, '-' or '_'"
)
# What an admin writes; the rest of an article is the knowledge base's to set.
ARTICLE_FIELDS = ("id", "title", "body", "language", "category", "tags", "visibility")
LIFECYCLE_FIELDS = ("status", "author", "version", "created_at", "updated_at")
STORED_FIELDS = ARTICLE_FIELDS + LIFECYCLE_FIELDS
VERSION_FIELDS = (
    "article_id",
    "number",
    "title",
    "body",
    "language",
    "category",
    "tags",
    "visibility",
    "published_at",
    "by",
)
# Subject prefixes mail clients add to replies and forwards, in English, Russian and German.
_REPLY_PREFIX = re.compile(r"^\s*(?:re|fwd?|aw|wg|ответ|пересл)\s*(?:\[\d+\])?\s*:\s*", re.I)
# Ticket number tokens such as [HD-1042], which mean nothing in an article.
_TICKET_TOKEN = re.compile(r"\[[A-Za-z][A-Za-z0-9]*-[0-9]+\]")
_HEADINGS = {
    Language.RU: ("Проблема", "Решение"),
    Language.EN: ("Problem", "Solution"),
}


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    # Markdown.
    body: str
    language: Language
    # A path such as "email/outlook"; "" for none.
    category: str
    tags: tuple[str, ...]
    visibility: Visibility
    status: ArticleStatus
    author: str
    # Number of the latest published version; 0 while never published.
    version: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ArticleVersion:
    """What an article read like when it was published as version `number`."""

    article_id: str
    number: int
    title: str
    body: str
    language: Language
    category: str
    tags: tuple[str, ...]
    visibility: Visibility
    published_at: datetime
    by: str


def parse_article(raw: Mapping[str, Any], *, author: str, now: datetime) -> Article:
    """A new draft by `author` from an admin's payload; raises InvalidArgument naming each
    bad field."""
    _require_person(author)
    problems: Problems = []
    checked = payload.top(raw)
    for key in checked:
        if key in LIFECYCLE_FIELDS:
            problems.append(
                FieldViolation(key, "is set by the knowledge base (publish, archive, restore)")
            )
    payload.unknown_fields(
        {k: v for k, v in checked.items() if k not in LIFECYCLE_FIELDS},
        ARTICLE_FIELDS,
        "",
        problems,
    )
    content = _content(checked, problems)
    if problems:
        raise InvalidArgument(problems)
    moment = payload.require_utc(now)
    return Article(
        **content,
        status=ArticleStatus.DRAFT,
        author=author,
        version=0,
        created_at=moment,
        updated_at=moment,
    )


def load_article(raw: Mapping[str, Any]) -> Article:
    """An article from its stored form (`dump_article`); raises InvalidArgument naming each
    bad field."""
    problems: Problems = []
    checked = payload.top(raw)
    payload.unknown_fields(checked, STORED_FIELDS, "", problems)
    content = _content(checked, problems)
    status = payload.choice(ArticleStatus, checked.get("status"), "status", problems, default=None)
    author = _person(checked.get("author"), "author", problems)
    version = payload.integer(checked.get("version"), "version", problems, low=0, high=MAX_VERSION)
    created_at = payload.instant(checked.get("created_at"), "created_at", problems)
    updated_at = payload.instant(checked.get("updated_at"), "updated_at", problems)
    if status == ArticleStatus.PUBLISHED and version == 0:
        problems.append(FieldViolation("version", "a published article has a version"))
    if problems:
        raise InvalidArgument(problems)
    return Article(
        **content,
        status=status,
        author=author,
        version=version,
        created_at=created_at,
        updated_at=updated_at,
    )


def dump_article(article: Article) -> dict[str, Any]:
    """The stored form that `load_article` reads back to an equal article."""
    return {
        "id": article.id,
        "title": article.title,
        "body": article.body,
        "language": article.language.value,
        "category": article.category,
        "tags": list(article.tags),
        "visibility": article.visibility.value,
        "status": article.status.value,
        "author": article.author,
        "version": article.version,
        "created_at": payload.format_instant(article.created_at),
        "updated_at": payload.format_instant(article.updated_at),
    }


def load_version(raw: Mapping[str, Any]) -> ArticleVersion:
    """A published version from its stored form (`dump_version`)."""
    problems: Problems = []
    checked = payload.top(raw)
    payload.unknown_fields(checked, VERSION_FIELDS, "", problems)
    content = _content(
        {**checked, "id": checked.get("article_id")}, problems, id_field="article_id"
    )
    number = payload.integer(checked.get("number"), "number", problems, low=1, high=MAX_VERSION)
    published_at = payload.instant(checked.get("published_at"), "published_at", problems)
    by = _person(checked.get("by"), "by", problems)
    if problems:
        raise InvalidArgument(problems)
    article_id = content.pop("id")
    return ArticleVersion(
        article_id=article_id, number=number, **content, published_at=published_at, by=by
    )


def dump_version(version: ArticleVersion) -> dict[str, Any]:
    """The stored form that `load_version` reads back to an equal version."""
    return {
        "article_id": version.article_id,
        "number": version.number,
        "title": version.title,
        "body": version.body,
        "language": version.language.value,
        "category": version.category,
        "tags": list(version.tags),
        "visibility": version.visibility.value,
        "published_at": payload.format_instant(version.published_at),
        "by": version.by,
    }


def revise(article: Article, edited: Article, *, now: datetime) -> Article:
    """The article with an admin's edit (from `parse_article`) in place of its content; its
    status, author, version and creation time stay."""
    if edited.id != article.id:
        raise InvalidArgument(
            [FieldViolation("id", f"is {edited.id!r}, but the article edited is {article.id!r}")]
        )
    if article.status == ArticleStatus.ARCHIVED:
        raise FailedPrecondition(
            f"article {article.id} is archived: restore a version to edit it as a draft"
        )
    return replace(
        article,
        title=edited.title,
        body=edited.body,
        language=edited.language,
        category=edited.category,
        tags=edited.tags,
        visibility=edited.visibility,
        updated_at=payload.require_utc(now),
    )


def publish(article: Article, *, by: str, now: datetime) -> tuple[Article, ArticleVersion]:
    """The article published as its next version, and that version's snapshot to keep.

    A draft or a published article may be published (again); an archived one is restored
    first, so that it is read as a draft before it is public again.
    """
    _check_move(article, ArticleStatus.PUBLISHED, allowed_from=_PUBLISHABLE)
    _require_person(by)
    moment = payload.require_utc(now)
    number = article.version + 1
    snapshot = ArticleVersion(
        article_id=article.id,
        number=number,
        title=article.title,
        body=article.body,
        language=article.language,
        category=article.category,
        tags=article.tags,
        visibility=article.visibility,
        published_at=moment,
        by=by,
    )
    published = replace(article, status=ArticleStatus.PUBLISHED, version=number, updated_at=moment)
    return published, snapshot


def archive(article: Article, *, now: datetime) -> Article:
    """The article taken out of use; its versions stay for restore."""
    _check_move(article, ArticleStatus.ARCHIVED, allowed_from=_ARCHIVABLE)
    return replace(article, status=ArticleStatus.ARCHIVED, updated_at=payload.require_utc(now))


def restore(article: Article, version: ArticleVersion, *, now: datetime) -> Article:
    """A draft with the content of one of the article's published versions.

    Works from any status; a published article becomes a draft and leaves search until it
    is published again (as a new version: numbers only grow).
    """
    if version.article_id != article.id:
        raise InvalidArgument(
            [
                FieldViolation(
                    "version",
                    f"belongs to article {version.article_id!r}, not {article.id!r}",
                )
            ]
        )
    if not 1 <= version.number <= article.version:
        raise InvalidArgument(
            [
                FieldViolation(
                    "version",
                    f"article {article.id} has versions 1 to {article.version}; "
                    f"got {version.number}",
                )
            ]
        )
    return replace(
        article,
        title=version.title,
        body=version.body,
        language=version.language,
        category=version.category,
        tags=version.tags,
        visibility=version.visibility,
        status=ArticleStatus.DRAFT,
        updated_at=payload.require_utc(now),
    )


def article_from_ticket(
    subject: str,
    problem: str,
    solution: str,
    language: str,
    author: str,
    *,
    article_id: str,
    now: datetime,
    category: str = "",
    tags: tuple[str, ...] = (),
) -> Article:
    """A draft made from a resolved ticket: its subject as the title, its problem and
    solution as the body; raises InvalidArgument naming each bad argument."""
    problems: Problems = []
    title = _title_from_subject(subject, problems)
    problem_text = payload.text(problem, "problem", problems, limit=MAX_BODY // 2)
    solution_text = payload.text(solution, "solution", problems, limit=MAX_BODY // 2)
    # Tickets carry tags such as "ru-RU"; articles are kept per primary language.
    primary = language.strip().lower().split("-", 1)[0] if isinstance(language, str) else language
    lang = payload.choice(Language, primary, "language", problems, default=None)
    checked_id = payload.token(
        article_id,
        "article_id",
        problems,
        pattern=payload.IDENTIFIER,
        rule=payload.IDENTIFIER_RULE,
    )
    by = _person(author, "author", problems)
    path = _category(category, "category", problems)
    labels = payload.tags(list(tags), "tags", problems)
    if problems:
        raise InvalidArgument(problems)
    heading_problem, heading_solution = _HEADINGS[lang]
    body = f"## {heading_problem}\n\n{problem_text}\n\n## {heading_solution}\n\n{solution_text}"
    moment = payload.require_utc(now)
    return Article(
        id=checked_id,
        title=title,
        body=body,
        language=lang,
        category=path,
        tags=labels,
        # A ticket's solution may name the customer or their systems: an agent reads the
        # draft before requesters can.
        visibility=Visibility.INTERNAL,
        status=ArticleStatus.DRAFT,
        author=by,
        version=0,
        created_at=moment,
        updated_at=moment,
    )


_PUBLISHABLE = frozenset({ArticleStatus.DRAFT, ArticleStatus.PUBLISHED})
_ARCHIVABLE = frozenset({ArticleStatus.DRAFT, ArticleStatus.PUBLISHED})


def _check_move(
    article: Article, target: ArticleStatus, *, allowed_from: frozenset[ArticleStatus]
) -> None:
    if article.status not in allowed_from:
        hint = " (restore a version first)" if article.status == ArticleStatus.ARCHIVED else ""
        raise FailedPrecondition(
            f"article {article.id} cannot go from {article.status} to {target}{hint}"
        )


def _content(raw: Mapping[str, Any], problems: Problems, *, id_field: str = "id") -> dict[str, Any]:
    """The fields an admin writes, checked, as keyword arguments of Article."""
    return {
        "id": payload.token(
            raw.get("id"),
            id_field,
            problems,
            pattern=payload.IDENTIFIER,
            rule=payload.IDENTIFIER_RULE,
        ),
        "title": payload.line(raw.get("title"), "title", problems, limit=MAX_TITLE),
        "body": payload.text(raw.get("body"), "body", problems, limit=MAX_BODY),
        "language": payload.choice(
            Language, raw.get("language"), "language", problems, default=None
        ),
        "category": _category(raw.get("category"), "category", problems),
        "tags": payload.tags(raw.get("tags"), "tags", problems),
        # Internal until an admin says otherwise: nothing reaches requesters by accident.
        "visibility": payload.choice(
            Visibility, raw.get("visibility"), "visibility", problems, default=Visibility.INTERNAL
        ),
    }


def _category(value: Any, where: str, problems: Problems) -> str:
    """A lowercase path such as "email/outlook"; absent or "" is none."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        problems.append(FieldViolation(where, f"must be a string; got {value!r}"))
        return ""
    parts = value.strip().strip("/").lower().split("/")
    if len(parts) > MAX_CATEGORY_DEPTH or not all(
        CATEGORY_SEGMENT.fullmatch(part) for part in parts
    ):
        problems.append(FieldViolation(where, f"{CATEGORY_RULE}; got {value!r}"))
        return ""
    return "/".join(parts)


def _person(value: Any, where: str, problems: Problems) -> str:
    return payload.token(
        value, where, problems, pattern=payload.PERSON, rule=payload.PERSON_RULE, lower=False
    )


def _require_person(person: str) -> None:
    # Who acts comes from the caller's identity, not from the payload: a bad one is a bug.
    if not payload.PERSON.fullmatch(person):
        raise ValueError(f"not an agent id: {person!r}")


def _title_from_subject(subject: Any, problems: Problems) -> str:
    if not isinstance(subject, str) or not subject.strip():
        problems.append(FieldViolation("subject", "is required"))
        return ""
    title = subject
    while (cleaned := _REPLY_PREFIX.sub("", title, count=1)) != title:
        title = cleaned
    title = " ".join(_TICKET_TOKEN.sub(" ", title).split())
    if not title:
        problems.append(FieldViolation("subject", "has no words besides reply prefixes"))
        return ""
    if len(title) > MAX_TITLE:
        # A subject is the requester's; the agent shortens the draft's title if need be.
        title = title[: MAX_TITLE - 1].rsplit(" ", 1)[0].rstrip() + "…"
    return payload.line(title, "subject", problems, limit=MAX_TITLE)


# Who may write the knowledge base: agents, and systems acting for them.
EDITOR_ROLES = frozenset({"agent", "system"})


def check_editor(actor_id: str, role: str) -> str:
    """The id of an agent or system changing the knowledge base; raises InvalidArgument for
    a missing or malformed id and PermissionDenied for anyone else (requesters)."""
    problems: Problems = []
    checked = _person(actor_id, "actor.id", problems)
    if problems:
        raise InvalidArgument(problems)
    if role not in EDITOR_ROLES:
        raise PermissionDenied(f"only agents change the knowledge base; {checked} is a {role}")
    return checked


@dataclass(frozen=True)
class TicketReply:
    """A comment on a ticket, as much of it as a draft article needs."""

    id: str
    body: str
    internal: bool
    by_agent: bool


# Statuses of a ticket whose solution is known.
SOLVED_STATUSES = frozenset({"resolved", "closed"})


def solving_reply(number: str, status: str, replies: list[TicketReply], comment_id: str) -> str:
    """The text of the reply that solved a ticket: the named comment, or else the last
    public agent reply. Raises FailedPrecondition for an unsolved ticket or one without such a
    reply, and InvalidArgument for a comment id the ticket does not have."""
    if status not in SOLVED_STATUSES:
        raise FailedPrecondition(
            f"ticket {number} is {status}; an article is drafted from a resolved ticket"
        )
    if comment_id:
        for reply in replies:
            if reply.id == comment_id:
                return reply.body
        raise InvalidArgument(
            [FieldViolation("comment_id", f"is not a comment of ticket {number}")]
        )
    public = [r for r in replies if r.by_agent and not r.internal and r.body.strip()]
    if not public:
        raise FailedPrecondition(
            f"ticket {number} has no public agent reply: name the comment that solved it"
        )
    return public[-1].body


def draft_id_for(number: str) -> str:
    """The id of a draft made from a ticket, e.g. "from-hd-1042"."""
    return f"from-{number.strip().lower()}"


def language_of(tag: str) -> Language:
    """The article language for a requester's language tag such as "ru-RU"; English when it
    is empty or one the knowledge base does not keep."""
    primary = tag.strip().lower().split("-", 1)[0]
    return Language(primary) if primary in {lang.value for lang in Language} else Language.EN
