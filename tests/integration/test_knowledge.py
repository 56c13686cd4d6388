"""The knowledge base on real servers: articles in FerretDB, every replica's index following
the article events on Kafka, tickets read through intake for drafts and macros."""

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.knowledge.v1 import knowledge_pb2, knowledge_pb2_grpc
from helpdesk.api.tickets.v1 import tickets_pb2, tickets_pb2_grpc

AGENT = common_pb2.Actor(id="agent-7", role=common_pb2.ACTOR_ROLE_AGENT)
REQUESTER = common_pb2.Actor(id="anna@example.com", role=common_pb2.ACTOR_ROLE_REQUESTER)

MAIL_ARTICLE = knowledge_pb2.ArticleContent(
    title="Почта не открывается: что делать",
    body="Если Outlook не запускается или почта не приходит, перезапустите клиент и "
    "проверьте подключение к VPN.",
    language="ru",
    category="email/outlook",
    tags=["email", "outlook"],
    visibility="public",
)
PRINTER_ARTICLE = knowledge_pb2.ArticleContent(
    title="Printer jam troubleshooting",
    body="When paper jams in the printer, open tray 2 and remove the stuck sheet.",
    language="en",
    category="hardware/printers",
    visibility="public",
)


def content(base: knowledge_pb2.ArticleContent) -> knowledge_pb2.ArticleContent:
    """The article with an id of its own for this test."""
    copy = knowledge_pb2.ArticleContent()
    copy.CopyFrom(base)
    copy.id = f"it-{uuid.uuid4().hex[:10]}"
    return copy


@contextlib.asynccontextmanager
async def serving(service: Any) -> AsyncIterator[Any]:
    """A started knowledge process's stub."""
    service.start()
    await service.wait_serving()
    async with grpc.aio.insecure_channel(service.target) as channel:
        yield knowledge_pb2_grpc.KnowledgeServiceStub(channel)


@pytest.fixture
async def knowledge(make_knowledge: Any, intake: Any) -> AsyncIterator[Any]:
    async with serving(make_knowledge(intake)) as stub:
        yield stub


async def published(stub: Any, base: knowledge_pb2.ArticleContent) -> knowledge_pb2.Article:
    created = await stub.CreateArticle(
        knowledge_pb2.CreateArticleRequest(article=content(base), actor=AGENT), timeout=10
    )
    return await stub.PublishArticle(
        knowledge_pb2.PublishArticleRequest(id=created.id, actor=AGENT), timeout=10
    )


async def search_ids(stub: Any, query: str, **fields: Any) -> list[str]:
    found = await stub.SearchArticles(
        knowledge_pb2.SearchArticlesRequest(query=query, **fields), timeout=10
    )
    return [hit.article.id for hit in found.hits]


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "did not happen in time"
        await asyncio.sleep(0.2)


def violations(error: grpc.aio.AioRpcError) -> str:
    return error.details() or ""


async def test_article_lifecycle_with_versions_and_search(knowledge: Any) -> None:
    draft = await knowledge.CreateArticle(
        knowledge_pb2.CreateArticleRequest(article=content(MAIL_ARTICLE), actor=AGENT),
        timeout=10,
    )
    assert (draft.status, draft.version, draft.author) == ("draft", 0, "agent-7")
    assert await search_ids(knowledge, "не работает почта") == [], "drafts are not published"
    assert await search_ids(knowledge, "не работает почта", statuses=["draft"]) == [draft.id]

    first = await knowledge.PublishArticle(
        knowledge_pb2.PublishArticleRequest(id=draft.id, actor=AGENT), timeout=10
    )
    assert (first.status, first.version) == ("published", 1)
    found = await knowledge.SearchArticles(
        knowledge_pb2.SearchArticlesRequest(query="не работает почта"), timeout=10
    )
    assert [hit.article.id for hit in found.hits] == [draft.id]
    assert found.hits[0].title.highlights, "the matched words are highlighted"

    edited = await knowledge.UpdateArticle(
        knowledge_pb2.UpdateArticleRequest(
            article=knowledge_pb2.ArticleContent(id=draft.id, title="Почта не приходит"),
            update_mask=FieldMask(paths=["title"]),
            actor=AGENT,
        ),
        timeout=10,
    )
    assert (edited.title, edited.body, edited.version) == (
        "Почта не приходит",
        MAIL_ARTICLE.body,
        1,
    )
    second = await knowledge.PublishArticle(
        knowledge_pb2.PublishArticleRequest(id=draft.id, actor=AGENT), timeout=10
    )
    assert second.version == 2
    versions = await knowledge.ListArticleVersions(
        knowledge_pb2.ListArticleVersionsRequest(id=draft.id), timeout=10
    )
    assert [(v.number, v.title) for v in versions.versions] == [
        (2, "Почта не приходит"),
        (1, MAIL_ARTICLE.title),
    ]

    restored = await knowledge.RestoreArticleVersion(
        knowledge_pb2.RestoreArticleVersionRequest(id=draft.id, version=1, actor=AGENT),
        timeout=10,
    )
    assert (restored.status, restored.title, restored.version) == ("draft", MAIL_ARTICLE.title, 2)
    archived = await knowledge.ArchiveArticle(
        knowledge_pb2.ArchiveArticleRequest(id=draft.id, actor=AGENT), timeout=10
    )
    assert archived.status == "archived"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await knowledge.PublishArticle(
            knowledge_pb2.PublishArticleRequest(id=draft.id, actor=AGENT), timeout=10
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "restore" in violations(refused.value)


async def test_bad_input_is_refused_naming_each_field(knowledge: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await knowledge.CreateArticle(
            knowledge_pb2.CreateArticleRequest(
                article=knowledge_pb2.ArticleContent(
                    id="Bad Id", title="", body="x", language="de", tags=["ok", "no spaces"]
                ),
                actor=AGENT,
            ),
            timeout=10,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for field in ("id", "title", "language", "tags[1]"):
        assert field in violations(refused.value), field

    with pytest.raises(grpc.aio.AioRpcError) as requester:
        await knowledge.CreateArticle(
            knowledge_pb2.CreateArticleRequest(article=content(MAIL_ARTICLE), actor=REQUESTER),
            timeout=10,
        )
    assert requester.value.code() == grpc.StatusCode.PERMISSION_DENIED

    twice = knowledge_pb2.CreateArticleRequest(article=content(MAIL_ARTICLE), actor=AGENT)
    await knowledge.CreateArticle(twice, timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as taken:
        await knowledge.CreateArticle(twice, timeout=10)
    assert taken.value.code() == grpc.StatusCode.ALREADY_EXISTS

    with pytest.raises(grpc.aio.AioRpcError) as search:
        await knowledge.SearchArticles(
            knowledge_pb2.SearchArticlesRequest(language="fr", statuses=["gone"]), timeout=10
        )
    assert search.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "language" in violations(search.value)
    assert "statuses" in violations(search.value)


async def test_every_replica_follows_the_article_events(make_knowledge: Any, intake: Any) -> None:
    database = f"it_knowledge_{uuid.uuid4().hex[:8]}"
    first = make_knowledge(intake, database)
    second = make_knowledge(intake, database)
    async with serving(first) as one:
        made_before = await published(one, PRINTER_ARTICLE)
        async with serving(second) as other:
            # Built from the store at start.
            assert await search_ids(other, "printers jammed") == [made_before.id]
            # Followed from the events after.
            made_after = await published(one, MAIL_ARTICLE)

            async def other_finds_it() -> bool:
                return await search_ids(other, "не работает почта") == [made_after.id]

            await eventually(other_finds_it)
            await one.ArchiveArticle(
                knowledge_pb2.ArchiveArticleRequest(id=made_before.id, actor=AGENT), timeout=10
            )

            async def other_drops_it() -> bool:
                return await search_ids(other, "printers jammed") == []

            await eventually(other_drops_it)


async def test_feedback_counts_each_key_once(knowledge: Any) -> None:
    article = await published(knowledge, PRINTER_ARTICLE)
    for key, kind in [
        ("reader-1", knowledge_pb2.FEEDBACK_KIND_VIEW),
        ("reader-1", knowledge_pb2.FEEDBACK_KIND_VIEW),
        ("reader-2", knowledge_pb2.FEEDBACK_KIND_VIEW),
        ("reader-1", knowledge_pb2.FEEDBACK_KIND_HELPFUL),
        ("reader-2", knowledge_pb2.FEEDBACK_KIND_NOT_HELPFUL),
    ]:
        figures = await knowledge.RecordFeedback(
            knowledge_pb2.RecordFeedbackRequest(
                article_id=article.id, kind=kind, idempotency_key=key
            ),
            timeout=10,
        )
    assert (figures.views, figures.helpful, figures.not_helpful) == (2, 1, 1)
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await knowledge.RecordFeedback(
            knowledge_pb2.RecordFeedbackRequest(
                article_id="no-such-article",
                kind=knowledge_pb2.FEEDBACK_KIND_VIEW,
                idempotency_key="k",
            ),
            timeout=10,
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def resolved_ticket(tickets: Any) -> tickets_pb2.Ticket:
    created = await tickets.CreateTicket(
        tickets_pb2.CreateTicketRequest(
            request_id=f"it-{uuid.uuid4()}",
            subject="Re: [HD-1] Printer jams on floor 3",
            description="The printer on floor 3 jams on every second page.",
            requester=common_pb2.Requester(
                email="anna@example.com", name="Anna", organization="ACME", language="en"
            ),
        ),
        timeout=10,
    )
    await tickets.AddComment(
        tickets_pb2.AddCommentRequest(
            ticket_id=created.id, author=AGENT, body="Tray 2 had a torn sheet; removed it."
        ),
        timeout=10,
    )
    return await tickets.UpdateTicket(
        tickets_pb2.UpdateTicketRequest(
            id=created.id,
            ticket=tickets_pb2.Ticket(status=common_pb2.TICKET_STATUS_RESOLVED),
            update_mask=FieldMask(paths=["status"]),
            actor=AGENT,
        ),
        timeout=10,
    )


async def test_an_article_drafted_from_a_resolved_ticket(knowledge: Any, tickets: Any) -> None:
    ticket = await resolved_ticket(tickets)
    draft = await knowledge.DraftArticleFromTicket(
        knowledge_pb2.DraftArticleFromTicketRequest(
            ticket_id=ticket.id, category="hardware", actor=AGENT
        ),
        timeout=10,
    )
    assert draft.id == f"from-{ticket.number.lower()}"
    assert draft.title == "Printer jams on floor 3"
    assert "every second page" in draft.body
    assert "torn sheet" in draft.body
    assert (draft.status, draft.visibility, draft.category) == ("draft", "internal", "hardware")

    open_ticket = await tickets.CreateTicket(
        tickets_pb2.CreateTicketRequest(
            request_id=f"it-{uuid.uuid4()}",
            subject="Not solved yet",
            description="Still broken.",
            requester=common_pb2.Requester(email="anna@example.com"),
        ),
        timeout=10,
    )
    with pytest.raises(grpc.aio.AioRpcError) as unsolved:
        await knowledge.DraftArticleFromTicket(
            knowledge_pb2.DraftArticleFromTicketRequest(ticket_id=open_ticket.id, actor=AGENT),
            timeout=10,
        )
    assert unsolved.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_macro_filled_in_for_a_ticket(knowledge: Any, tickets: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await knowledge.PutMacro(
            knowledge_pb2.PutMacroRequest(
                macro=knowledge_pb2.Macro(id="broken", name="Broken", body="{{ ticket.secret }"),
                actor=AGENT,
            ),
            timeout=10,
        )
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "body" in violations(bad.value)

    macro_id = f"m-{uuid.uuid4().hex[:8]}"
    saved = await knowledge.PutMacro(
        knowledge_pb2.PutMacroRequest(
            macro=knowledge_pb2.Macro(
                id=macro_id,
                name="Solved, waiting for confirmation",
                body="Hello {{ requester.name }}, {{ ticket.number }} is fixed. {{ agent.name }}",
                actions=knowledge_pb2.MacroActions(status="pending", add_tags=["fixed"]),
            ),
            actor=AGENT,
        ),
        timeout=10,
    )
    assert (saved.uses, saved.visibility) == (0, "public")
    ticket = await resolved_ticket(tickets)
    rendered = await knowledge.RenderMacro(
        knowledge_pb2.RenderMacroRequest(
            macro_id=macro_id, ticket_id=ticket.id, agent=knowledge_pb2.MacroAgent(name="Boris")
        ),
        timeout=10,
    )
    assert rendered.text == f"Hello Anna, {ticket.number} is fixed. Boris"
    assert (rendered.status, list(rendered.add_tags)) == ("pending", ["fixed"])
    again = await knowledge.GetMacro(knowledge_pb2.GetMacroRequest(id=macro_id), timeout=10)
    assert again.uses == 1


VPN_ARTICLE = knowledge_pb2.ArticleContent(
    title="VPN keeps disconnecting",
    body="If the VPN client drops the connection every few minutes, switch the protocol to "
    "TCP in its settings and reconnect.",
    language="en",
    category="network/vpn",
    visibility="public",
)


async def test_a_filed_ticket_carries_suggestions_and_a_self_solve_counts(
    make_knowledge: Any, make_intake: Any
) -> None:
    knowledge_process = make_knowledge()
    intake = make_intake(
        HELPDESK_KNOWLEDGE_TARGET=knowledge_process.target,
        HELPDESK_KNOWLEDGE_DEADLINE_SECONDS="2",
    )
    intake.start()
    async with serving(knowledge_process) as knowledge:
        await intake.wait_serving()
        article = await published(knowledge, VPN_ARTICLE)
        await published(knowledge, PRINTER_ARTICLE)
        async with grpc.aio.insecure_channel(intake.target) as channel:
            tickets = tickets_pb2_grpc.TicketServiceStub(channel)
            ticket = await tickets.CreateTicket(
                tickets_pb2.CreateTicketRequest(
                    request_id=f"it-{uuid.uuid4()}",
                    subject="VPN disconnects all the time",
                    description="The VPN connection drops every five minutes.",
                    requester=common_pb2.Requester(email="anna@example.com", language="en"),
                ),
                timeout=10,
            )
            assert [s.article_id for s in ticket.suggestions] == [article.id]
            assert ticket.suggestions[0].title == VPN_ARTICLE.title

            solved = await tickets.SolveWithArticle(
                tickets_pb2.SolveWithArticleRequest(
                    ticket_id=ticket.id, article_id=article.id, actor=REQUESTER
                ),
                timeout=10,
            )
            assert solved.status == common_pb2.TICKET_STATUS_CLOSED
            assert solved.solved_by_article_id == article.id

            async def counted() -> bool:
                figures = await knowledge.GetArticleFigures(
                    knowledge_pb2.GetArticleFiguresRequest(article_id=article.id), timeout=10
                )
                return (figures.suggested, figures.deflections) == (1, 1)

            await eventually(counted, seconds=30)

            # Without the knowledge base a ticket is filed all the same, only bare.
            knowledge_process.stop()
            started = time.monotonic()
            bare = await tickets.CreateTicket(
                tickets_pb2.CreateTicketRequest(
                    request_id=f"it-{uuid.uuid4()}",
                    subject="VPN disconnects again",
                    description="Same as before.",
                    requester=common_pb2.Requester(email="anna@example.com"),
                ),
                timeout=10,
            )
            assert bare.number
            assert list(bare.suggestions) == []
            assert time.monotonic() - started < 5
