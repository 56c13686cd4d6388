"""Protobuf <-> the knowledge domain: articles, versions, search hits, macros, figures, and
what a ticket from intake gives a macro or a draft."""

from datetime import UTC
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.knowledge.v1 import knowledge_pb2
from helpdesk.api.tickets.v1 import tickets_pb2
from helpdesk.core.ticket_words import category_of, priority_of, status_of
from helpdesk.knowledge.domain.articles import (
    ARTICLE_FIELDS,
    Article,
    ArticleVersion,
    TicketReply,
    dump_article,
    load_article,
)
from helpdesk.knowledge.domain.feedback import Figures
from helpdesk.knowledge.domain.macros import Macro, RenderedMacro
from helpdesk.knowledge.search import Hit, Snippet, Suggestion

ROLES = {
    common_pb2.ACTOR_ROLE_REQUESTER: "requester",
    common_pb2.ACTOR_ROLE_AGENT: "agent",
    common_pb2.ACTOR_ROLE_SYSTEM: "system",
}


def role_of(actor: common_pb2.Actor) -> str:
    return ROLES.get(actor.role, "unknown")


def content_to_raw(content: knowledge_pb2.ArticleContent) -> dict[str, Any]:
    """An author's payload for the domain; empty optional fields are left out, so the
    domain's defaults apply (e.g. internal visibility)."""
    raw: dict[str, Any] = {"id": content.id, "title": content.title, "body": content.body}
    raw["language"] = content.language
    if content.category:
        raw["category"] = content.category
    if content.tags:
        raw["tags"] = list(content.tags)
    if content.visibility:
        raw["visibility"] = content.visibility
    return raw


def article_to_raw(article: Article) -> dict[str, Any]:
    """What an author wrote of an existing article, as a payload."""
    stored = dump_article(article)
    return {field: stored[field] for field in ARTICLE_FIELDS}


def article_to_proto(article: Article) -> knowledge_pb2.Article:
    return knowledge_pb2.Article(
        id=article.id,
        title=article.title,
        body=article.body,
        language=article.language.value,
        category=article.category,
        tags=list(article.tags),
        visibility=article.visibility.value,
        status=article.status.value,
        author=article.author,
        version=article.version,
        created_at=_timestamp(article.created_at),
        updated_at=_timestamp(article.updated_at),
    )


def article_from_proto(article: knowledge_pb2.Article) -> Article:
    """An article as an event carries it; InvalidArgument names a bad field."""
    return load_article(
        {
            "id": article.id,
            "title": article.title,
            "body": article.body,
            "language": article.language,
            "category": article.category,
            "tags": list(article.tags),
            "visibility": article.visibility,
            "status": article.status,
            "author": article.author,
            "version": article.version,
            "created_at": article.created_at.ToDatetime(UTC),
            "updated_at": article.updated_at.ToDatetime(UTC),
        }
    )


def version_to_proto(version: ArticleVersion) -> knowledge_pb2.ArticleVersion:
    return knowledge_pb2.ArticleVersion(
        article_id=version.article_id,
        number=version.number,
        title=version.title,
        body=version.body,
        language=version.language.value,
        category=version.category,
        tags=list(version.tags),
        visibility=version.visibility.value,
        published_at=_timestamp(version.published_at),
        by=version.by,
    )


def snippet_to_proto(snippet: Snippet) -> knowledge_pb2.Snippet:
    return knowledge_pb2.Snippet(
        text=snippet.text,
        highlights=[knowledge_pb2.Highlight(start=s, end=e) for s, e in snippet.highlights],
    )


def hit_to_proto(hit: Hit) -> knowledge_pb2.SearchHit:
    return knowledge_pb2.SearchHit(
        article=article_to_proto(hit.article),
        score=hit.score,
        title=snippet_to_proto(hit.title),
        snippet=snippet_to_proto(hit.snippet),
    )


def suggestion_to_proto(suggestion: Suggestion, snippet: Snippet) -> knowledge_pb2.Suggestion:
    return knowledge_pb2.Suggestion(
        article_id=suggestion.article.id,
        title=suggestion.article.title,
        score=suggestion.score,
        language=suggestion.article.language.value,
        snippet=snippet_to_proto(snippet),
    )


def figures_to_proto(figures: Figures) -> knowledge_pb2.ArticleFigures:
    return knowledge_pb2.ArticleFigures(
        article_id=figures.article_id,
        views=figures.views,
        helpful=figures.helpful,
        not_helpful=figures.not_helpful,
        deflections=figures.deflections,
        suggested=figures.suggested,
    )


def macro_to_raw(macro: knowledge_pb2.Macro) -> dict[str, Any]:
    """An admin's macro payload for the domain (the use count is the knowledge base's)."""
    raw: dict[str, Any] = {"id": macro.id, "name": macro.name, "body": macro.body}
    actions: dict[str, Any] = {}
    if macro.actions.status:
        actions["status"] = macro.actions.status
    if macro.actions.add_tags:
        actions["add_tags"] = list(macro.actions.add_tags)
    if actions:
        raw["actions"] = actions
    if macro.visibility:
        raw["visibility"] = macro.visibility
    return raw


def macro_to_proto(macro: Macro, uses: int) -> knowledge_pb2.Macro:
    status = macro.actions.status.value if macro.actions.status else ""
    return knowledge_pb2.Macro(
        id=macro.id,
        name=macro.name,
        body=macro.body,
        actions=knowledge_pb2.MacroActions(status=status, add_tags=list(macro.actions.add_tags)),
        visibility=macro.visibility.value,
        uses=uses,
    )


def rendered_to_proto(rendered: RenderedMacro) -> knowledge_pb2.RenderedMacro:
    return knowledge_pb2.RenderedMacro(
        text=rendered.text,
        status=rendered.status.value if rendered.status else "",
        add_tags=list(rendered.tags),
        visibility=rendered.visibility.value,
    )


def macro_context(
    ticket: tickets_pb2.Ticket,
    agent: knowledge_pb2.MacroAgent,
    team_name: str,
    portal_url: str,
) -> dict[str, dict[str, object]]:
    """The placeholder values of one ticket; what the ticket lacks is None (a macro that
    needs it says so)."""
    return {
        "ticket": {
            "number": ticket.number,
            "subject": ticket.subject or None,
            "status": status_of(ticket),
            "priority": priority_of(ticket),
            "category": category_of(ticket),
            "url": f"{portal_url.rstrip('/')}/tickets/{ticket.number}" if portal_url else None,
        },
        "requester": {
            "name": ticket.requester.name or None,
            "email": ticket.requester.email or None,
            "organization": ticket.requester.organization or None,
        },
        "agent": {"name": agent.name or None, "email": agent.email or None},
        "team": {"name": team_name or ticket.team or None},
    }


def replies_of(comments: list[tickets_pb2.Comment]) -> list[TicketReply]:
    """A ticket's comments, oldest first, as a draft article reads them."""
    ordered = sorted(comments, key=lambda c: (c.created_at.seconds, c.created_at.nanos))
    return [
        TicketReply(
            id=c.id,
            body=c.body,
            internal=c.internal,
            by_agent=c.author.role == common_pb2.ACTOR_ROLE_AGENT,
        )
        for c in ordered
    ]


def _timestamp(moment: Any) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp
