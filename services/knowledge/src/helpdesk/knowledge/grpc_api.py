"""KnowledgeService over gRPC: thin, protobuf in and out; refusals are mapped to status codes
by the shared interceptor."""

from typing import Any, TypeVar

import grpc

from helpdesk.api.knowledge.v1 import knowledge_pb2, knowledge_pb2_grpc
from helpdesk.core.errors import FieldViolation, InvalidArgument
from helpdesk.knowledge.commands import KnowledgeCommands
from helpdesk.knowledge.domain.articles import ArticleStatus, Language, Visibility
from helpdesk.knowledge.domain.feedback import FeedbackKind
from helpdesk.knowledge.mapping import (
    article_to_proto,
    content_to_raw,
    figures_to_proto,
    hit_to_proto,
    macro_to_proto,
    macro_to_raw,
    rendered_to_proto,
    suggestion_to_proto,
    version_to_proto,
)
from helpdesk.knowledge.search import MAX_LIMIT, MAX_OFFSET, SearchFilters, Snippet, opening

Context = grpc.aio.ServicerContext[Any, Any]
DEFAULT_PAGE_SIZE = 10
_FEEDBACK_KINDS = {
    knowledge_pb2.FEEDBACK_KIND_VIEW: FeedbackKind.VIEW,
    knowledge_pb2.FEEDBACK_KIND_HELPFUL: FeedbackKind.HELPFUL,
    knowledge_pb2.FEEDBACK_KIND_NOT_HELPFUL: FeedbackKind.NOT_HELPFUL,
}


class KnowledgeApi(knowledge_pb2_grpc.KnowledgeServiceServicer):
    def __init__(self, commands: KnowledgeCommands) -> None:
        self._commands = commands

    async def CreateArticle(
        self, request: knowledge_pb2.CreateArticleRequest, context: Context
    ) -> knowledge_pb2.Article:
        article = await self._commands.create(content_to_raw(request.article), request.actor)
        return article_to_proto(article)

    async def UpdateArticle(
        self, request: knowledge_pb2.UpdateArticleRequest, context: Context
    ) -> knowledge_pb2.Article:
        article = await self._commands.update(
            content_to_raw(request.article), list(request.update_mask.paths), request.actor
        )
        return article_to_proto(article)

    async def GetArticle(
        self, request: knowledge_pb2.GetArticleRequest, context: Context
    ) -> knowledge_pb2.Article:
        return article_to_proto(await self._commands.get(request.id))

    async def PublishArticle(
        self, request: knowledge_pb2.PublishArticleRequest, context: Context
    ) -> knowledge_pb2.Article:
        return article_to_proto(await self._commands.publish(request.id, request.actor))

    async def ArchiveArticle(
        self, request: knowledge_pb2.ArchiveArticleRequest, context: Context
    ) -> knowledge_pb2.Article:
        return article_to_proto(await self._commands.archive(request.id, request.actor))

    async def RestoreArticleVersion(
        self, request: knowledge_pb2.RestoreArticleVersionRequest, context: Context
    ) -> knowledge_pb2.Article:
        article = await self._commands.restore(request.id, request.version, request.actor)
        return article_to_proto(article)

    async def ListArticleVersions(
        self, request: knowledge_pb2.ListArticleVersionsRequest, context: Context
    ) -> knowledge_pb2.ListArticleVersionsResponse:
        versions = await self._commands.versions(request.id)
        return knowledge_pb2.ListArticleVersionsResponse(
            versions=[version_to_proto(v) for v in versions]
        )

    async def SearchArticles(
        self, request: knowledge_pb2.SearchArticlesRequest, context: Context
    ) -> knowledge_pb2.SearchArticlesResponse:
        filters, limit, offset = search_request(request)
        results = self._commands.search(request.query, filters, limit, offset)
        return knowledge_pb2.SearchArticlesResponse(
            hits=[hit_to_proto(hit) for hit in results.hits],
            next_page_token=str(offset + limit) if results.has_more else "",
        )

    async def SuggestArticles(
        self, request: knowledge_pb2.SuggestArticlesRequest, context: Context
    ) -> knowledge_pb2.SuggestArticlesResponse:
        found = self._commands.suggest(
            request.subject,
            request.description,
            request.language,
            request.limit,
            request.include_internal,
        )
        return knowledge_pb2.SuggestArticlesResponse(
            suggestions=[suggestion_to_proto(s, Snippet(opening(s.article.body))) for s in found]
        )

    async def DraftArticleFromTicket(
        self, request: knowledge_pb2.DraftArticleFromTicketRequest, context: Context
    ) -> knowledge_pb2.Article:
        article = await self._commands.draft_from_ticket(
            request.ticket_id,
            request.comment_id,
            request.article_id,
            request.category,
            list(request.tags),
            request.actor,
        )
        return article_to_proto(article)

    async def RecordFeedback(
        self, request: knowledge_pb2.RecordFeedbackRequest, context: Context
    ) -> knowledge_pb2.ArticleFigures:
        kind = _FEEDBACK_KINDS.get(request.kind)
        if kind is None:
            raise InvalidArgument(
                [FieldViolation("kind", "must be FEEDBACK_KIND_VIEW, _HELPFUL or _NOT_HELPFUL")]
            )
        figures = await self._commands.record_feedback(
            request.article_id, kind, request.idempotency_key
        )
        return figures_to_proto(figures)

    async def GetArticleFigures(
        self, request: knowledge_pb2.GetArticleFiguresRequest, context: Context
    ) -> knowledge_pb2.ArticleFigures:
        return figures_to_proto(await self._commands.figures(request.article_id))

    async def PutMacro(
        self, request: knowledge_pb2.PutMacroRequest, context: Context
    ) -> knowledge_pb2.Macro:
        macro, uses = await self._commands.put_macro(macro_to_raw(request.macro), request.actor)
        return macro_to_proto(macro, uses)

    async def GetMacro(
        self, request: knowledge_pb2.GetMacroRequest, context: Context
    ) -> knowledge_pb2.Macro:
        return macro_to_proto(*await self._commands.macro(request.id))

    async def ListMacros(
        self, request: knowledge_pb2.ListMacrosRequest, context: Context
    ) -> knowledge_pb2.ListMacrosResponse:
        macros = await self._commands.macros()
        return knowledge_pb2.ListMacrosResponse(macros=[macro_to_proto(*m) for m in macros])

    async def DeleteMacro(
        self, request: knowledge_pb2.DeleteMacroRequest, context: Context
    ) -> knowledge_pb2.DeleteMacroResponse:
        await self._commands.delete_macro(request.id, request.actor)
        return knowledge_pb2.DeleteMacroResponse()

    async def RenderMacro(
        self, request: knowledge_pb2.RenderMacroRequest, context: Context
    ) -> knowledge_pb2.RenderedMacro:
        rendered = await self._commands.render_macro(
            request.macro_id, request.ticket_id, request.agent, request.team_name
        )
        return rendered_to_proto(rendered)


def search_request(
    request: knowledge_pb2.SearchArticlesRequest,
) -> tuple[SearchFilters, int, int]:
    """The filters, page size and offset a search asks for; InvalidArgument names each bad
    field."""
    problems: list[FieldViolation] = []
    language = _choice(Language, request.language, "language", problems)
    visibility = _choice(Visibility, request.visibility, "visibility", problems)
    if not 0 <= request.page_size <= MAX_LIMIT:
        problems.append(
            FieldViolation("page_size", f"must be 0 to {MAX_LIMIT}; got {request.page_size}")
        )
    offset = 0
    if request.page_token:
        token = request.page_token
        if not token.isdigit() or int(token) > MAX_OFFSET:
            problems.append(FieldViolation("page_token", "is not one this service gave out"))
        else:
            offset = int(token)
    statuses: frozenset[ArticleStatus] = frozenset()
    try:
        statuses = _statuses(list(request.statuses))
    except InvalidArgument as error:
        problems.extend(error.violations)
    if problems:
        raise InvalidArgument(problems)
    filters = SearchFilters(
        category=request.category,
        tag=request.tag,
        language=language,
        visibility=visibility,
        statuses=statuses,
    )
    return filters, request.page_size or DEFAULT_PAGE_SIZE, offset


E = TypeVar("E", Language, Visibility)


def _choice(enum: type[E], value: str, where: str, problems: list[FieldViolation]) -> E | None:
    if not value:
        return None
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        problems.append(FieldViolation(where, f"must be {allowed} or empty; got {value!r}"))
        return None


_STATUSES = {s.value: s for s in ArticleStatus}


def _statuses(values: list[str]) -> frozenset[ArticleStatus]:
    """Search statuses from a request; empty means published. InvalidArgument names a bad one."""
    if not values:
        return frozenset({ArticleStatus.PUBLISHED})
    bad = [v for v in values if v not in _STATUSES]
    if bad:
        raise InvalidArgument(
            [FieldViolation("statuses", f"must be draft, published or archived; got {bad[0]!r}")]
        )
    return frozenset(_STATUSES[v] for v in values)
