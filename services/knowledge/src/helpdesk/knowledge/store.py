"""The knowledge base's MongoDB repository: articles (each with its outgoing events),
published versions, macros, and the feedback counted for articles.

An article document holds the working copy (`article`), a `version` that every write
increments (the outbox relay and concurrent writers rely on it) and the events the write
causes, so a change and its event are one atomic write. Every read here is by `_id` or by an
indexed equality, except loading all articles when a replica builds its search index.
"""

from collections.abc import AsyncIterator
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from helpdesk.core.errors import AlreadyExists
from helpdesk.core.mongo import ensure_indexes
from helpdesk.knowledge.domain.articles import (
    Article,
    ArticleVersion,
    dump_article,
    dump_version,
    load_article,
    load_version,
)
from helpdesk.knowledge.domain.feedback import FeedbackKind, Figures
from helpdesk.knowledge.domain.macros import Macro, dump_macro, parse_macro

Document = dict[str, Any]


class KnowledgeStore:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.articles = database["articles"]
        self.versions = database["article_versions"]
        self.macros = database["macros"]
        self.feedback = database["feedback"]

    async def create_indexes(self) -> None:
        await ensure_indexes(
            self.articles, [IndexModel([("outbox_pending", ASCENDING)], name="outbox_pending")]
        )
        await ensure_indexes(
            self.versions, [IndexModel([("article_id", ASCENDING)], name="article_id")]
        )
        await ensure_indexes(
            self.feedback, [IndexModel([("article_id", ASCENDING)], name="article_id")]
        )

    # ---- articles

    async def article(self, article_id: str) -> tuple[Article, int] | None:
        """The article and the version of its document, or None."""
        doc = await self.articles.find_one({"_id": article_id}, {"article": 1, "version": 1})
        if doc is None:
            return None
        return load_article(doc["article"]), int(doc["version"])

    async def all_articles(self) -> AsyncIterator[tuple[Article, int]]:
        """Every article with the version of its document (a replica building its index)."""
        async for doc in self.articles.find({}, {"article": 1, "version": 1}):
            yield load_article(doc["article"]), int(doc["version"])

    async def insert_article(self, article: Article, outbox: Document) -> None:
        """A new article at version 1; AlreadyExists when its id is taken."""
        doc: Document = {"_id": article.id, "version": 1, "article": dump_article(article)}
        doc["outbox"] = {path.split(".", 1)[1]: v for path, v in outbox.items() if "." in path}
        doc["outbox_pending"] = bool(doc["outbox"])
        try:
            await self.articles.insert_one(doc)
        except DuplicateKeyError:
            raise AlreadyExists(f"article {article.id} exists") from None

    async def save_article(self, article: Article, version: int, outbox: Document) -> bool:
        """Writes the changed article if nobody wrote it since `version`."""
        result = await self.articles.update_one(
            {"_id": article.id, "version": version},
            {"$set": {"article": dump_article(article), **outbox, "version": version + 1}},
        )
        return result.matched_count == 1

    # ---- published versions

    async def put_version(self, version: ArticleVersion) -> None:
        """Keeps a published version; writing it again (a retried publish) replaces it."""
        await self.versions.replace_one(
            {"_id": _version_id(version.article_id, version.number)},
            dump_version(version),
            upsert=True,
        )

    async def version(self, article_id: str, number: int) -> ArticleVersion | None:
        doc = await self.versions.find_one({"_id": _version_id(article_id, number)}, {"_id": 0})
        return load_version(doc) if doc else None

    async def versions_of(self, article_id: str) -> list[ArticleVersion]:
        cursor = self.versions.find({"article_id": article_id}, {"_id": 0})
        return [load_version(doc) async for doc in cursor]

    # ---- macros

    async def put_macro(self, macro: Macro) -> int:
        """Creates or replaces a macro, keeping its use count; returns that count."""
        doc = await self.macros.find_one_and_update(
            {"_id": macro.id},
            {"$set": {"definition": dump_macro(macro)}, "$setOnInsert": {"uses": 0}},
            upsert=True,
            return_document=True,
        )
        return int(doc.get("uses", 0)) if doc else 0

    async def macro(self, macro_id: str) -> tuple[Macro, int] | None:
        doc = await self.macros.find_one({"_id": macro_id})
        return (parse_macro(doc["definition"]), int(doc.get("uses", 0))) if doc else None

    async def all_macros(self) -> list[tuple[Macro, int]]:
        return [
            (parse_macro(doc["definition"]), int(doc.get("uses", 0)))
            async for doc in self.macros.find({})
        ]

    async def delete_macro(self, macro_id: str) -> bool:
        result = await self.macros.delete_one({"_id": macro_id})
        return result.deleted_count == 1

    async def count_macro_use(self, macro_id: str) -> None:
        await self.macros.update_one({"_id": macro_id}, {"$inc": {"uses": 1}})

    # ---- feedback

    async def record_feedback(self, key: str, article_id: str, kind: FeedbackKind) -> bool:
        """Keeps one reader's feedback (or one deflection) under its key; False when that
        key was counted before. The record is the count: nothing is kept twice or lost."""
        try:
            await self.feedback.insert_one(
                {"_id": key, "article_id": article_id, "kind": kind.value}
            )
        except DuplicateKeyError:
            return False
        return True

    async def figures(self, article_id: str) -> Figures:
        counts = {
            str(doc["_id"]): int(doc["n"])
            async for doc in await self.feedback.aggregate(
                [
                    {"$match": {"article_id": article_id}},
                    {"$group": {"_id": "$kind", "n": {"$sum": 1}}},
                ]
            )
        }
        return Figures.from_counts(article_id, counts)


def _version_id(article_id: str, number: int) -> str:
    return f"{article_id}#{number}"
