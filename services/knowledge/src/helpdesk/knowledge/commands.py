"""What the knowledge base does: read an article, let the domain change it, write it with its
event in one conditional write, and index it; search and suggest from this replica's index;
count feedback; fill macros in for tickets. The edges (gRPC, Kafka) call these."""

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.events.v1 import knowledge_events_pb2
from helpdesk.api.knowledge.v1 import knowledge_pb2
from helpdesk.core.errors import Aborted, FieldViolation, InvalidArgument, NotFound
from helpdesk.core.kafka import KNOWLEDGE_EVENTS_TOPIC
from helpdesk.core.logging import get_logger
from helpdesk.core.mongo import DocumentLocks
from helpdesk.core.outbox import OutboxEvent, OutboxRelay, outbox_fields
from helpdesk.core.ticket_words import status_of
from helpdesk.core.tickets_client import TicketsClient
from helpdesk.knowledge.domain import articles as domain
from helpdesk.knowledge.domain.articles import Article, ArticleVersion
from helpdesk.knowledge.domain.feedback import (
    FeedbackKind,
    Figures,
    event_feedback_key,
    reader_feedback_key,
)
from helpdesk.knowledge.domain.macros import Macro, RenderedMacro, parse_macro, render_macro
from helpdesk.knowledge.mapping import (
    article_to_proto,
    article_to_raw,
    macro_context,
    replies_of,
    role_of,
)
from helpdesk.knowledge.metrics import (
    FEEDBACK,
    INDEX_UPDATES,
    INDEXED_ARTICLES,
    MACRO_RENDERS,
    SEARCH_SECONDS,
)
from helpdesk.knowledge.search import ArticleIndex, SearchFilters, SearchResults, Suggestion
from helpdesk.knowledge.store import KnowledgeStore

log = get_logger(__name__)

EVENT_SOURCE = "helpdesk/knowledge"
# Tries to write when another replica keeps writing the same article.
WRITE_ATTEMPTS = 5
MAX_SUGGESTIONS = 20

Edit = Callable[[Article, datetime], Article]


class LiveIndex:
    """This replica's search index and the revision of each article in it, so that article
    events arriving late, twice, or before the index was built never step back."""

    def __init__(self) -> None:
        self.index = ArticleIndex()
        self._revisions: dict[str, int] = {}

    def apply(self, article: Article, revision: int, source: str) -> bool:
        """Indexes this state of the article unless a newer one is indexed already."""
        if self._revisions.get(article.id, 0) >= revision:
            return False
        self.index.add_or_replace(article)
        self._revisions[article.id] = revision
        INDEX_UPDATES.labels(source).inc()
        INDEXED_ARTICLES.set(len(self.index))
        return True

    def build(self, stored: list[tuple[Article, int]]) -> None:
        """Indexes the stored articles in one write, in place of anything indexed before."""
        self.index = ArticleIndex(article for article, _ in stored)
        self._revisions = {article.id: revision for article, revision in stored}
        INDEX_UPDATES.labels("start").inc(len(stored))
        INDEXED_ARTICLES.set(len(self.index))

    def knows(self, article_id: str) -> bool:
        return article_id in self._revisions


class KnowledgeCommands:
    def __init__(
        self,
        store: KnowledgeStore,
        relay: OutboxRelay,
        tickets: TicketsClient,
        *,
        locks: DocumentLocks | None = None,
        portal_url: str = "",
    ) -> None:
        self._store = store
        self._relay = relay
        self._tickets = tickets
        self._locks = locks or DocumentLocks()
        self._portal_url = portal_url
        self.live = LiveIndex()
        # Set once the index holds every stored article; article events wait for it.
        self.ready = asyncio.Event()

    # ---- the index

    async def build_index(self) -> int:
        """Indexes every stored article; returns how many."""
        # One index write for all: a commit per article would make a start take minutes.
        stored = [found async for found in self._store.all_articles()]
        self.live.build(stored)
        self.ready.set()
        log.info("knowledge_index_built", articles=len(stored))
        return len(stored)

    async def article_changed(self, article: Article, revision: int) -> None:
        """An article event from any replica."""
        await self.ready.wait()
        self.live.apply(article, revision, "event")

    # ---- articles

    async def create(self, content: Mapping[str, Any], actor: common_pb2.Actor) -> Article:
        author = domain.check_editor(actor.id, role_of(actor))
        article = domain.parse_article(content, author=author, now=_now())
        event = _article_event("created", article, 1, actor)
        await self._store.insert_article(article, outbox_fields([event]))
        self._stored(article, 1, event)
        return article

    async def update(
        self, content: Mapping[str, Any], paths: list[str], actor: common_pb2.Actor
    ) -> Article:
        author = domain.check_editor(actor.id, role_of(actor))
        article_id = str(content.get("id", ""))
        _check_paths(paths)

        def edit(article: Article, now: datetime) -> Article:
            merged = article_to_raw(article)
            for path in paths or [p for p in merged if p != "id"]:
                if path in content:
                    merged[path] = content[path]
                else:
                    merged.pop(path, None)  # the field cleared: the domain's default
            edited = domain.parse_article(merged, author=author, now=now)
            return domain.revise(article, edited, now=now)

        return await self._change(article_id, "updated", edit, actor)

    async def get(self, article_id: str) -> Article:
        found = await self._store.article(article_id)
        if found is None:
            raise NotFound(f"no article {article_id!r}")
        return found[0]

    async def publish(self, article_id: str, actor: common_pb2.Actor) -> Article:
        by = domain.check_editor(actor.id, role_of(actor))
        snapshots: list[ArticleVersion] = []

        def edit(article: Article, now: datetime) -> Article:
            published, snapshot = domain.publish(article, by=by, now=now)
            snapshots.append(snapshot)
            return published

        async def keep_version() -> None:
            # Before the article says it is published: a crash in between leaves a version
            # that the retried publish writes again.
            await self._store.put_version(snapshots[-1])

        return await self._change(article_id, "published", edit, actor, before_write=keep_version)

    async def archive(self, article_id: str, actor: common_pb2.Actor) -> Article:
        domain.check_editor(actor.id, role_of(actor))
        return await self._change(
            article_id, "archived", lambda a, now: domain.archive(a, now=now), actor
        )

    async def restore(self, article_id: str, number: int, actor: common_pb2.Actor) -> Article:
        domain.check_editor(actor.id, role_of(actor))
        version = await self._store.version(article_id, number)
        if version is None:
            await self.get(article_id)  # NotFound for the article itself first
            raise InvalidArgument(
                [FieldViolation("version", f"article {article_id} has no version {number}")]
            )
        return await self._change(
            article_id, "restored", lambda a, now: domain.restore(a, version, now=now), actor
        )

    async def versions(self, article_id: str) -> list[ArticleVersion]:
        await self.get(article_id)
        found = await self._store.versions_of(article_id)
        return sorted(found, key=lambda v: v.number, reverse=True)

    async def draft_from_ticket(
        self,
        ticket_id: str,
        comment_id: str,
        article_id: str,
        category: str,
        tags: list[str],
        actor: common_pb2.Actor,
    ) -> Article:
        author = domain.check_editor(actor.id, role_of(actor))
        if not ticket_id.strip():
            raise InvalidArgument([FieldViolation("ticket_id", "is required")])
        ticket = await self._tickets.get(ticket_id)
        history = await self._tickets.history(ticket.id)
        solution = domain.solving_reply(
            ticket.number,
            status_of(ticket),
            replies_of(list(history.comments)),
            comment_id,
        )
        article = domain.article_from_ticket(
            ticket.subject,
            ticket.description,
            solution,
            # Articles are kept in ru and en; a ticket in another language drafts in English.
            domain.language_of(ticket.requester.language).value,
            author,
            article_id=article_id or domain.draft_id_for(ticket.number),
            now=_now(),
            category=category,
            tags=tuple(tags),
        )
        event = _article_event("created", article, 1, actor)
        await self._store.insert_article(article, outbox_fields([event]))
        self._stored(article, 1, event)
        return article

    # ---- search

    def search(self, text: str, filters: SearchFilters, limit: int, offset: int) -> SearchResults:
        with SEARCH_SECONDS.labels("search").time():
            return self.live.index.search(text, filters, limit=limit, offset=offset)

    def suggest(
        self, subject: str, description: str, language: str, limit: int, include_internal: bool
    ) -> list[Suggestion]:
        if not 0 <= limit <= MAX_SUGGESTIONS:
            raise InvalidArgument(
                [FieldViolation("limit", f"must be 0 to {MAX_SUGGESTIONS}; got {limit}")]
            )
        with SEARCH_SECONDS.labels("suggest").time():
            return self.live.index.suggest(
                subject,
                description,
                domain.language_of(language),
                limit or 5,
                visibility=None if include_internal else domain.Visibility.PUBLIC,
            )

    # ---- feedback

    async def record_feedback(self, article_id: str, kind: FeedbackKind, key: str) -> Figures:
        record = reader_feedback_key(article_id, kind, key)
        if not self.live.knows(article_id):
            await self.get(article_id)  # NotFound, unless another replica just made it
        if await self._store.record_feedback(record, article_id, kind):
            FEEDBACK.labels(kind.value).inc()
        return await self._store.figures(article_id)

    async def ticket_feedback(
        self, event_id: str, article_ids: list[str], kind: FeedbackKind
    ) -> None:
        """Suggestions shown on a created ticket, or the article that solved it."""
        for article_id in article_ids:
            key = event_feedback_key(event_id, article_id, kind)
            if await self._store.record_feedback(key, article_id, kind):
                FEEDBACK.labels(kind.value).inc()

    async def figures(self, article_id: str) -> Figures:
        if not self.live.knows(article_id):
            await self.get(article_id)
        return await self._store.figures(article_id)

    # ---- macros

    async def put_macro(self, raw: Mapping[str, Any], actor: common_pb2.Actor) -> tuple[Macro, int]:
        domain.check_editor(actor.id, role_of(actor))
        macro = parse_macro(raw)
        return macro, await self._store.put_macro(macro)

    async def macro(self, macro_id: str) -> tuple[Macro, int]:
        found = await self._store.macro(macro_id)
        if found is None:
            raise NotFound(f"no macro {macro_id!r}")
        return found

    async def macros(self) -> list[tuple[Macro, int]]:
        return sorted(await self._store.all_macros(), key=lambda m: m[0].name.lower())

    async def delete_macro(self, macro_id: str, actor: common_pb2.Actor) -> None:
        domain.check_editor(actor.id, role_of(actor))
        if not await self._store.delete_macro(macro_id):
            raise NotFound(f"no macro {macro_id!r}")

    async def render_macro(
        self,
        macro_id: str,
        ticket_id: str,
        agent: knowledge_pb2.MacroAgent,
        team_name: str,
    ) -> RenderedMacro:
        macro, _ = await self.macro(macro_id)
        if not ticket_id.strip():
            raise InvalidArgument([FieldViolation("ticket_id", "is required")])
        ticket = await self._tickets.get(ticket_id)
        rendered = render_macro(macro, macro_context(ticket, agent, team_name, self._portal_url))
        await self._store.count_macro_use(macro.id)
        MACRO_RENDERS.inc()
        return rendered

    # ---- the write path of articles

    async def _change(
        self,
        article_id: str,
        kind: str,
        edit: Edit,
        actor: common_pb2.Actor,
        *,
        before_write: Callable[[], Any] | None = None,
    ) -> Article:
        if not article_id:
            raise InvalidArgument([FieldViolation("id", "is required")])
        for _ in range(WRITE_ATTEMPTS):
            async with self._locks.hold(article_id):
                found = await self._store.article(article_id)
                if found is None:
                    raise NotFound(f"no article {article_id!r}")
                current, version = found
                changed = edit(current, _now())
                if before_write is not None:
                    await before_write()
                event = _article_event(kind, changed, version + 1, actor)
                if await self._store.save_article(changed, version, outbox_fields([event])):
                    self._stored(changed, version + 1, event)
                    return changed
        raise Aborted(f"article {article_id} keeps changing; retry")

    def _stored(self, article: Article, revision: int, event: OutboxEvent) -> None:
        self._relay.publish_soon(article.id, revision, [event])
        # This replica's readers see their own change at once; the others by the event.
        self.live.apply(article, revision, "write")
        log.info(
            "article_changed",
            article=article.id,
            change=event.cloud_event.type,
            status=article.status.value,
        )


def _article_event(
    kind: str, article: Article, revision: int, actor: common_pb2.Actor
) -> OutboxEvent:
    return OutboxEvent.new(
        event_type=f"helpdesk.article.{kind}.v1",
        source=EVENT_SOURCE,
        topic=KNOWLEDGE_EVENTS_TOPIC,
        key=article.id,
        payload=knowledge_events_pb2.ArticleChanged(
            article=article_to_proto(article), revision=revision, actor=actor
        ).SerializeToString(),
        sequence=revision,
    )


_EDITABLE = frozenset({"title", "body", "language", "category", "tags", "visibility"})


def _check_paths(paths: list[str]) -> None:
    bad = [p for p in paths if p not in _EDITABLE]
    if bad:
        raise InvalidArgument(
            [
                FieldViolation(
                    "update_mask",
                    f"{', '.join(bad)}: only {', '.join(sorted(_EDITABLE))} can be updated",
                )
            ]
        )


def _now() -> datetime:
    # Milliseconds: what MongoDB keeps, so a stored article reads back equal.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
