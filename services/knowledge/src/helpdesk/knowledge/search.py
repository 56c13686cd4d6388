"""Full-text search over articles: an in-memory Tantivy index, rebuilt from the store at start
and kept fresh from article events.

Each language has its own fields and analyzer, so that Russian and English word forms meet
their stems ("почту", "почтой" -> "почт"; "printers" -> "printer"). A query is analyzed for
both languages and looks in both, so a mixed query ("не работает Outlook") still finds its
articles. Queries are built from the analyzers' tokens, never parsed: nothing a user types
is syntax, and no text raises.

Not thread-safe: one task writes (the event handler) and searches share its event loop.
"""

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import tantivy

from helpdesk.knowledge.domain.articles import (
    MAX_TITLE,
    Article,
    ArticleStatus,
    Language,
    Visibility,
)

# A title says what an article is about in a few words; a match there counts for more.
TITLE_BOOST = 3.0
# The subject of a ticket is its requester's own summary of the problem.
SUBJECT_BOOST = 2.0
# Distinct terms taken from a query per language: a pasted log or a long description must
# not turn into a query with thousands of clauses.
MAX_QUERY_TERMS = 48
# Longer "words" are hashes, base64 and URLs, which nobody searches for by hand.
MAX_TOKEN_LENGTH = 40
SNIPPET_CHARS = 200
# Enough for any title, so that the whole of it is highlighted.
MAX_TITLE_BYTES = 4 * MAX_TITLE
MAX_LIMIT = 100
# Suggestions scoring under this share of the best one are left out.
MIN_SHARE_OF_BEST = 0.25
# Each page costs a heap of offset + limit hits; nobody reads that far down a result list.
MAX_OFFSET = 10_000
# The best matches fetched before filtering: this many times what is wanted, at least the
# minimum (see ArticleIndex._best).
OVERFETCH, MIN_OVERFETCH = 4, 50
WRITER_HEAP_BYTES = 128_000_000
ELLIPSIS = "…"

# Each indexed state of an article has its own key: hits are read back through this fast
# field rather than from stored documents, and a replaced article's old state is deleted by it.
_KEY = "key"
_STATUS, _LANGUAGE, _VISIBILITY, _TAGS, _CATEGORY, _UPDATED = (
    "status",
    "language",
    "visibility",
    "tags",
    "category",
    "updated",
)


def _title_field(language: Language) -> str:
    return f"title_{language.value}"


def _body_field(language: Language) -> str:
    return f"body_{language.value}"


def _analyzer(language: Language) -> tantivy.TextAnalyzer:
    builder = (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
        .filter(tantivy.Filter.remove_long(MAX_TOKEN_LENGTH))
        .filter(tantivy.Filter.lowercase())
        # Words such as "не", "и", "the", "is" are in most articles: they say nothing about
        # which one fits and would make every query read most of the index.
        .filter(tantivy.Filter.stopword("russian"))
        .filter(tantivy.Filter.stopword("english"))
    )
    if language == Language.RU:
        # The Russian stemmer folds ё into е and leaves Latin words alone; Russian IT text is
        # full of English terms ("принтеры printers"), which the English stemmer then takes.
        builder = builder.filter(tantivy.Filter.stemmer("russian"))
    return builder.filter(tantivy.Filter.stemmer("english")).build()


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field(_KEY, indexed=True, fast=True)
    for language in Language:
        # Nothing is stored: hits are read back from the articles the index keeps.
        builder.add_text_field(_title_field(language), tokenizer_name=f"text_{language.value}")
        builder.add_text_field(_body_field(language), tokenizer_name=f"text_{language.value}")
    for name in (_STATUS, _LANGUAGE, _VISIBILITY, _TAGS):
        builder.add_text_field(name, tokenizer_name="raw", index_option="basic")
    builder.add_facet_field(_CATEGORY)
    builder.add_integer_field(_UPDATED, fast=True)
    return builder.build()


@dataclass(frozen=True)
class SearchFilters:
    """Which articles a search may return; every given filter must hold."""

    # A category and everything below it: "email" takes "email/outlook".
    category: str = ""
    tag: str = ""
    language: Language | None = None
    # None: both (agents); Visibility.PUBLIC for requesters.
    visibility: Visibility | None = None
    statuses: frozenset[ArticleStatus] = frozenset({ArticleStatus.PUBLISHED})
    # Narrowed further by `language` when it is given.
    languages: frozenset[Language] = frozenset(Language)


@dataclass(frozen=True)
class Snippet:
    """A piece of text and the [start, end) character ranges in it that matched the query."""

    text: str
    highlights: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Hit:
    article: Article
    score: float
    # The whole title, with what matched.
    title: Snippet
    # The best passage of the body, or its beginning when only the title matched.
    snippet: Snippet


@dataclass(frozen=True)
class SearchResults:
    hits: tuple[Hit, ...]
    # Whether another page follows. Not a total: counting every match of a common word
    # costs more than finding the best ten.
    has_more: bool


@dataclass(frozen=True)
class Suggestion:
    article: Article
    score: float


class ArticleIndex:
    """Articles searchable by text, category, tag, language, visibility and status."""

    def __init__(self, articles: Iterable[Article] = ()) -> None:
        self._schema = _schema()
        self._index = tantivy.Index(self._schema)
        self._analyzers = {language: _analyzer(language) for language in Language}
        for language, analyzer in self._analyzers.items():
            self._index.register_tokenizer(f"text_{language.value}", analyzer)
        self._writer = self._index.writer(heap_size=WRITER_HEAP_BYTES)
        self._keys: dict[str, int] = {}
        self._by_key: dict[int, Article] = {}
        self._next_key = 0
        self._write(articles)

    def __len__(self) -> int:
        return len(self._keys)

    def __contains__(self, article_id: object) -> bool:
        return article_id in self._keys

    def add_or_replace(self, article: Article) -> None:
        """Indexes the article, in place of an earlier state of it."""
        self._write([article])

    def remove(self, article_id: str) -> bool:
        """Takes the article out of the index; False if it was not in it."""
        key = self._keys.pop(article_id, None)
        if key is None:
            return False
        del self._by_key[key]
        self._writer.delete_documents_by_term(_KEY, key)
        self._commit()
        return True

    def search(
        self,
        text: str,
        filters: SearchFilters = SearchFilters(),
        *,
        limit: int = 10,
        offset: int = 0,
    ) -> SearchResults:
        """Articles matching the text, best first; with no text, the newest first.
        `limit` is held to 1-100 and `offset` to at most 10,000."""
        limit = max(1, min(limit, MAX_LIMIT))
        offset = max(0, min(offset, MAX_OFFSET))
        # One more than the page, to know whether another follows.
        wanted = offset + limit + 1
        searcher = self._index.searcher()
        # Each language's articles are in its own fields: looking only in the fields of
        # the languages wanted is the language filter.
        matching = self._text_query(text, _languages(filters))
        if matching is None and text.strip():
            # Only words such as "не" or "the": nothing to look for.
            return SearchResults(hits=(), has_more=False)
        if matching is None:
            query = self._filter_query(filters) or tantivy.Query.all_query()
            newest = searcher.search(query, wanted, count=False, order_by_field=_UPDATED)
            found = [(0.0, article) for _, article in self._read(searcher, newest.hits)]
        else:
            found = self._best(searcher, matching, filters, wanted)
        page = found[offset : offset + limit]
        snippets = _Snippets(searcher, matching, self._schema)
        hits = tuple(
            Hit(
                article=article,
                score=score,
                title=snippets.title(article),
                snippet=snippets.body(article),
            )
            for score, article in page
        )
        return SearchResults(hits=hits, has_more=len(found) > offset + limit)

    def suggest(
        self,
        subject: str,
        description: str,
        language: Language,
        limit: int = 5,
        *,
        visibility: Visibility | None = Visibility.PUBLIC,
    ) -> list[Suggestion]:
        """Published articles that may solve a ticket being filed: those in the ticket's
        language, then others, each best first, leaving out weak matches (under a quarter of
        the best score). Public only unless told otherwise, since requesters see them."""
        limit = min(limit, MAX_LIMIT)
        if limit <= 0:
            return []
        searcher = self._index.searcher()
        found: list[list[tuple[float, Article]]] = []
        for languages in (
            frozenset({language}),
            frozenset(other for other in Language if other != language),
        ):
            parts: list[tantivy.Query] = []
            for part, boost in ((subject, SUBJECT_BOOST), (description, 1.0)):
                part_query = self._text_query(part, languages)
                if part_query is not None:
                    parts.append(tantivy.Query.boost_query(part_query, boost))
            filters = SearchFilters(visibility=visibility, languages=languages)
            found.append(self._best(searcher, _any_of(parts), filters, limit) if parts else [])
        own, foreign = found
        best_own = max((score for score, _ in own), default=0.0)
        best = max([best_own, *(score for score, _ in foreign)])
        # A requester shown weak matches learns to skip suggestions. Their own language is
        # measured against itself: a Russian article that fits is worth more to a Russian
        # requester than its score next to an English title says.
        kept = [Suggestion(a, score) for score, a in own if score >= best_own * MIN_SHARE_OF_BEST]
        kept += [Suggestion(a, score) for score, a in foreign if score >= best * MIN_SHARE_OF_BEST]
        return kept[:limit]

    def _best(
        self,
        searcher: tantivy.Searcher,
        matching: tantivy.Query,
        filters: SearchFilters,
        wanted: int,
    ) -> list[tuple[float, Article]]:
        """The `wanted` best articles matching the query that the filters take.

        A query with a required filter is scored over every match, while a plain one skips
        blocks of documents that cannot reach the top (block-max WAND), and most searches
        filter little (published, public). So the best matches are fetched unfiltered, with
        room to spare, and filtered here; only when too few of them pass, while more matches
        remain, is the query run with its filter.
        """
        room = max(wanted * OVERFETCH, MIN_OVERFETCH)
        found = self._read(searcher, searcher.search(matching, room, count=False).hits)
        takes = _predicate(filters)
        kept = [(score, article) for score, article in found if takes(article)]
        if len(kept) < wanted and len(found) == room:
            query = _all_of(matching, self._filter_query(filters))
            kept = self._read(searcher, searcher.search(query, wanted, count=False).hits)
        return kept[:wanted]

    def _read(
        self, searcher: tantivy.Searcher, hits: Sequence[tuple[Any, tantivy.DocAddress]]
    ) -> list[tuple[float, Article]]:
        """The articles at the hits' addresses, with the hits' scores."""
        keys = searcher.fast_field_values(_KEY, [address for _, address in hits])
        return [
            (float(score), self._by_key[int(key)])
            for (score, _), key in zip(hits, keys, strict=True)
            if key is not None
        ]

    def _write(self, articles: Iterable[Article]) -> None:
        written = False
        for article in articles:
            old = self._keys.get(article.id)
            if old is not None:
                self._writer.delete_documents_by_term(_KEY, old)
                del self._by_key[old]
            key = self._next_key
            self._next_key += 1
            self._writer.add_document(self._document(article, key))
            self._keys[article.id] = key
            self._by_key[key] = article
            written = True
        if written:
            self._commit()

    def _commit(self) -> None:
        self._writer.commit()
        # The reader's own reload follows commits with a delay; a search right after an
        # event must see it.
        self._index.reload()

    def _document(self, article: Article, key: int) -> tantivy.Document:
        document = tantivy.Document()
        document.add_integer(_KEY, key)
        document.add_text(_title_field(article.language), article.title)
        document.add_text(_body_field(article.language), article.body)
        document.add_text(_STATUS, article.status.value)
        document.add_text(_LANGUAGE, article.language.value)
        document.add_text(_VISIBILITY, article.visibility.value)
        for tag in article.tags:
            document.add_text(_TAGS, tag)
        if article.category:
            document.add_facet(_CATEGORY, _facet(article.category))
        document.add_integer(_UPDATED, int(article.updated_at.timestamp()))
        return document

    def _text_query(self, text: str, languages: Collection[Language]) -> tantivy.Query | None:
        """Each term of the text, as each language's analyzer makes it, looked for in that
        language's title (boosted) and body; None when the text has no words."""
        clauses: list[tantivy.Query] = []
        # In a fixed order: a set's order changes from one process to the next.
        for language in [language for language in Language if language in languages]:
            analyzer = self._analyzers[language]
            for term in _distinct(analyzer.analyze(text))[:MAX_QUERY_TERMS]:
                clauses.append(
                    tantivy.Query.boost_query(
                        _term(self._schema, _title_field(language), term), TITLE_BOOST
                    )
                )
                clauses.append(_term(self._schema, _body_field(language), term))
        return _any_of(clauses) if clauses else None

    def _filter_query(self, filters: SearchFilters) -> tantivy.Query | None:
        """The filters as one query that matches without adding to the score; the same
        choice as `_predicate`."""
        conditions: list[tantivy.Query] = []
        if filters.statuses != frozenset(ArticleStatus):
            conditions.append(_one_of(self._schema, _STATUS, [s.value for s in filters.statuses]))
        languages = _languages(filters)
        if languages != frozenset(Language):
            conditions.append(_one_of(self._schema, _LANGUAGE, [x.value for x in languages]))
        if filters.visibility is not None:
            conditions.append(_term(self._schema, _VISIBILITY, filters.visibility.value))
        if filters.tag:
            conditions.append(_term(self._schema, _TAGS, filters.tag.strip().lower()))
        category = _category_path(filters.category)
        if category:
            conditions.append(_term(self._schema, _CATEGORY, _facet(category)))
        if not conditions:
            return None
        return tantivy.Query.const_score_query(_all_of(*conditions), 0.0)


def _languages(filters: SearchFilters) -> frozenset[Language]:
    chosen = frozenset(Language) if filters.language is None else frozenset({filters.language})
    return chosen & filters.languages


def _predicate(filters: SearchFilters) -> Callable[[Article], bool]:
    """The filters as a test of one article; the same choice as `_filter_query`."""
    languages = _languages(filters)
    tag = filters.tag.strip().lower()
    category = _category_path(filters.category)

    def takes(article: Article) -> bool:
        return (
            article.status in filters.statuses
            and article.language in languages
            and (filters.visibility is None or article.visibility == filters.visibility)
            and (not tag or tag in article.tags)
            and (
                not category
                or article.category == category
                or article.category.startswith(f"{category}/")
            )
        )

    return takes


class _Snippets:
    """Snippets of one search's hits; a generator per field, made when first needed."""

    def __init__(
        self, searcher: tantivy.Searcher, query: tantivy.Query | None, schema: tantivy.Schema
    ) -> None:
        self._searcher = searcher
        self._query = query
        self._schema = schema
        self._generators: dict[str, tantivy.SnippetGenerator] = {}

    def title(self, article: Article) -> Snippet:
        found = self._matches(_title_field(article.language), article.title, MAX_TITLE_BYTES)
        if found is None:
            return Snippet(article.title)
        return Snippet(article.title, found[2])

    def body(self, article: Article) -> Snippet:
        found = self._matches(_body_field(article.language), article.body, SNIPPET_CHARS)
        if found is None:
            return Snippet(opening(article.body))
        start, end, highlights = found
        prefix = ELLIPSIS if start > 0 else ""
        suffix = ELLIPSIS if end < len(article.body) else ""
        shift = len(prefix) - start
        return Snippet(
            f"{prefix}{article.body[start:end]}{suffix}",
            tuple((a + shift, b + shift) for a, b in highlights),
        )

    def _matches(
        self, field: str, text: str, max_chars: int
    ) -> tuple[int, int, tuple[tuple[int, int], ...]] | None:
        """The best passage of `text` as a character range, and the matches in it as ranges
        of `text`; None when nothing in it matched."""
        if self._query is None or not text:
            return None
        generator = self._generators.get(field)
        if generator is None:
            generator = tantivy.SnippetGenerator.create(
                self._searcher, self._query, self._schema, field
            )
            self._generators[field] = generator
        generator.set_max_num_chars(max_chars)
        document = tantivy.Document()
        document.add_text(field, text)
        snippet = generator.snippet_from_doc(document)
        ranges = snippet.highlighted()
        if not ranges:
            return None
        # Tantivy counts UTF-8 bytes, from the start of the passage; Python counts characters.
        encoded = text.encode()
        span = snippet.fragment_range()

        def position(byte: int) -> int:
            return len(encoded[:byte].decode(errors="ignore"))

        highlights = tuple(
            (position(span.start + r.start), position(span.start + r.end)) for r in ranges
        )
        return position(span.start), position(span.end), highlights


def opening(body: str) -> str:
    """The beginning of a body, cut at a word, for a hit that matched elsewhere."""
    if len(body) <= SNIPPET_CHARS:
        return body
    cut = body[:SNIPPET_CHARS].rsplit(maxsplit=1)[0]
    return f"{cut}{ELLIPSIS}"


def _distinct(terms: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(terms))


def _category_path(category: str) -> str:
    return "/".join(part for part in category.strip().lower().split("/") if part)


def _facet(category: str) -> tantivy.Facet:
    return tantivy.Facet.from_string("/" + _category_path(category))


def _term(schema: tantivy.Schema, field: str, value: object) -> tantivy.Query:
    return tantivy.Query.term_query(schema, field, value)


def _one_of(schema: tantivy.Schema, field: str, values: Collection[str]) -> tantivy.Query:
    if not values:
        return tantivy.Query.empty_query()
    return tantivy.Query.term_set_query(schema, field, list(values))


def _any_of(queries: Iterable[tantivy.Query]) -> tantivy.Query:
    return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in queries])


def _all_of(*queries: tantivy.Query | None) -> tantivy.Query:
    return tantivy.Query.boolean_query([(tantivy.Occur.Must, q) for q in queries if q is not None])
