"""The knowledge base as intake asks it: articles for a ticket being filed, within a short
deadline. A ticket never waits long for them nor fails without them."""

import grpc

from helpdesk.api.knowledge.v1 import knowledge_pb2, knowledge_pb2_grpc
from helpdesk.core.logging import get_logger
from helpdesk.intake.domain import ArticleSuggestion, NewTicket
from helpdesk.intake.metrics import SUGGESTION_CALLS

log = get_logger(__name__)


class KnowledgeClient:
    def __init__(self, target: str, *, deadline_seconds: float, limit: int) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        self._stub = knowledge_pb2_grpc.KnowledgeServiceStub(self._channel)
        self._deadline = deadline_seconds
        self._limit = limit

    async def close(self) -> None:
        await self._channel.close()

    async def suggest(self, ticket: NewTicket) -> tuple[ArticleSuggestion, ...]:
        """Public articles matching the ticket, best first; none when the knowledge base
        fails or is late."""
        request = knowledge_pb2.SuggestArticlesRequest(
            subject=ticket.subject,
            description=ticket.description,
            language=ticket.requester.language,
            limit=self._limit,
        )
        try:
            found = await self._stub.SuggestArticles(request, timeout=self._deadline)
        except grpc.aio.AioRpcError as error:
            SUGGESTION_CALLS.labels("failed").inc()
            log.warning("suggestions_unavailable", code=error.code().name)
            return ()
        SUGGESTION_CALLS.labels("found" if found.suggestions else "none").inc()
        return tuple(
            ArticleSuggestion(article_id=s.article_id, title=s.title, score=s.score)
            for s in found.suggestions
        )
