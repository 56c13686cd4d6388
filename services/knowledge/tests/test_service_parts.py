"""The knowledge service's own rules around the domain: who may edit, which reply solved a
ticket, feedback keys, the index that never steps back, and the mapping to protobuf."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.knowledge.v1 import knowledge_pb2
from helpdesk.api.tickets.v1 import tickets_pb2
from helpdesk.core.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from helpdesk.knowledge.commands import LiveIndex
from helpdesk.knowledge.domain.articles import (
    Article,
    ArticleStatus,
    Language,
    TicketReply,
    check_editor,
    draft_id_for,
    language_of,
    parse_article,
    publish,
    solving_reply,
)
from helpdesk.knowledge.domain.feedback import (
    FeedbackKind,
    Figures,
    event_feedback_key,
    reader_feedback_key,
)
from helpdesk.knowledge.grpc_api import search_request
from helpdesk.knowledge.mapping import (
    article_from_proto,
    article_to_proto,
    content_to_raw,
    macro_context,
    replies_of,
)
from helpdesk.knowledge.search import SearchFilters

NOW = datetime(2025, 3, 3, 9, 0, 0, 123000, tzinfo=UTC)


def article(**changes: object) -> Article:
    raw = {
        "id": "vpn-setup",
        "title": "VPN setup",
        "body": "Install the client and sign in.",
        "language": "en",
        "visibility": "public",
        **changes,
    }
    return parse_article(raw, author="agent-7", now=NOW)


# --- who may edit


@pytest.mark.parametrize("role", ["agent", "system"])
def test_agents_and_systems_edit(role: str) -> None:
    assert check_editor("agent-7", role) == "agent-7"


def test_requesters_do_not_edit() -> None:
    with pytest.raises(PermissionDenied):
        check_editor("anna@example.com", "requester")


def test_an_editor_needs_an_id() -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_editor("", "agent")
    assert [v.field for v in refused.value.violations] == ["actor.id"]


# --- the reply that solved a ticket

REPLIES = [
    TicketReply("c1", "Did you restart it?", internal=False, by_agent=True),
    TicketReply("c2", "Yes, still broken.", internal=False, by_agent=False),
    TicketReply("c3", "Checked the logs: the disk is full.", internal=True, by_agent=True),
    TicketReply("c4", "Freed space on the disk; it works now.", internal=False, by_agent=True),
    TicketReply("c5", "Thanks!", internal=False, by_agent=False),
]


def test_the_last_public_agent_reply_solved_it() -> None:
    assert solving_reply("HD-7", "resolved", REPLIES, "") == REPLIES[3].body


def test_a_named_comment_solved_it() -> None:
    assert solving_reply("HD-7", "closed", REPLIES, "c3") == REPLIES[2].body


def test_a_comment_of_another_ticket_is_named() -> None:
    with pytest.raises(InvalidArgument) as refused:
        solving_reply("HD-7", "resolved", REPLIES, "c99")
    assert [v.field for v in refused.value.violations] == ["comment_id"]


@pytest.mark.parametrize("status", ["new", "open", "pending", "on_hold"])
def test_an_unsolved_ticket_makes_no_article(status: str) -> None:
    with pytest.raises(FailedPrecondition):
        solving_reply("HD-7", status, REPLIES, "")


def test_a_ticket_without_an_agent_reply_asks_for_the_comment() -> None:
    requester_only = [r for r in REPLIES if not r.by_agent]
    with pytest.raises(FailedPrecondition, match="name the comment"):
        solving_reply("HD-7", "resolved", requester_only, "")


@pytest.mark.parametrize(
    ("tag", "language"),
    [("ru-RU", Language.RU), ("EN", Language.EN), ("de", Language.EN), ("", Language.EN)],
)
def test_a_requesters_language_picks_the_articles(tag: str, language: Language) -> None:
    assert language_of(tag) == language


def test_a_draft_is_named_after_its_ticket() -> None:
    assert draft_id_for("HD-1042") == "from-hd-1042"


def test_comments_are_read_oldest_first_with_their_authors() -> None:
    later = tickets_pb2.Comment(
        id="b", body="fixed", author=common_pb2.Actor(role=common_pb2.ACTOR_ROLE_AGENT)
    )
    later.created_at.FromDatetime(datetime(2025, 1, 2, tzinfo=UTC))
    earlier = tickets_pb2.Comment(
        id="a", body="help", author=common_pb2.Actor(role=common_pb2.ACTOR_ROLE_REQUESTER)
    )
    earlier.created_at.FromDatetime(datetime(2025, 1, 1, tzinfo=UTC))

    assert replies_of([later, earlier]) == [
        TicketReply("a", "help", internal=False, by_agent=False),
        TicketReply("b", "fixed", internal=False, by_agent=True),
    ]


# --- feedback


def test_a_reader_key_counts_once_per_article_and_kind() -> None:
    view = reader_feedback_key("vpn-setup", FeedbackKind.VIEW, "session-1")
    helpful = reader_feedback_key("vpn-setup", FeedbackKind.HELPFUL, "session-1")
    other = reader_feedback_key("printers", FeedbackKind.VIEW, "session-1")
    assert len({view, helpful, other}) == 3
    assert view == reader_feedback_key("vpn-setup", FeedbackKind.VIEW, "session-1")


@pytest.mark.parametrize(
    ("kind", "key", "field"),
    [
        (FeedbackKind.DEFLECTION, "k", "kind"),
        (FeedbackKind.VIEW, "", "idempotency_key"),
        (FeedbackKind.VIEW, "has space", "idempotency_key"),
        (FeedbackKind.VIEW, "x" * 201, "idempotency_key"),
    ],
)
def test_bad_reader_feedback_is_named(kind: FeedbackKind, key: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        reader_feedback_key("vpn-setup", kind, key)
    assert [v.field for v in refused.value.violations] == [field]


def test_an_event_counts_once_per_article() -> None:
    first = event_feedback_key("event-1", "a", FeedbackKind.SUGGESTED)
    assert first == event_feedback_key("event-1", "a", FeedbackKind.SUGGESTED)
    assert first != event_feedback_key("event-1", "b", FeedbackKind.SUGGESTED)


def test_figures_are_the_records_counted() -> None:
    figures = Figures.from_counts("a", {"view": 3, "deflection": 1, "unknown": 9})
    assert figures == Figures("a", views=3, deflections=1)


# --- the index never steps back


def test_an_older_revision_does_not_replace_a_newer_one() -> None:
    live = LiveIndex()
    draft = article()
    published, _ = publish(draft, by="agent-7", now=NOW)

    assert live.apply(published, 2, "write")
    assert not live.apply(draft, 1, "event")
    assert not live.apply(published, 2, "event")

    assert [h.article.id for h in live.index.search("vpn").hits] == ["vpn-setup"]


def test_a_newer_revision_replaces_the_indexed_one() -> None:
    live = LiveIndex()
    published, _ = publish(article(), by="agent-7", now=NOW)
    live.apply(published, 2, "write")

    live.apply(replace(published, title="Printer setup", body="Paper."), 3, "event")

    assert live.index.search("vpn").hits == ()
    assert live.knows("vpn-setup")


# --- mapping


def test_an_article_reads_back_from_its_event_form() -> None:
    published, _ = publish(article(tags=["vpn"]), by="agent-7", now=NOW)
    assert article_from_proto(article_to_proto(published)) == published


def test_empty_optional_content_takes_the_domain_defaults() -> None:
    raw = content_to_raw(knowledge_pb2.ArticleContent(id="a", title="t", body="b"))
    assert raw == {"id": "a", "title": "t", "body": "b", "language": ""}
    assert parse_article({**raw, "language": "en"}, author="x", now=NOW).visibility == "internal"


def test_a_search_request_names_each_bad_field() -> None:
    request = knowledge_pb2.SearchArticlesRequest(
        language="de", visibility="secret", statuses=["gone"], page_size=101, page_token="x"
    )
    with pytest.raises(InvalidArgument) as refused:
        search_request(request)
    fields = {v.field for v in refused.value.violations}
    assert fields == {"language", "visibility", "statuses", "page_size", "page_token"}


def test_a_search_request_reads_its_page() -> None:
    filters, limit, offset = search_request(
        knowledge_pb2.SearchArticlesRequest(language="ru", page_token="20", statuses=["draft"])
    )
    assert (limit, offset) == (10, 20)
    assert filters == SearchFilters(language=Language.RU, statuses=frozenset({ArticleStatus.DRAFT}))


def test_a_macro_sees_what_the_ticket_has_and_none_for_what_it_lacks() -> None:
    ticket = tickets_pb2.Ticket(
        number="HD-7",
        subject="VPN",
        team="network",
        requester=common_pb2.Requester(email="anna@example.com", name="Anna"),
        status=common_pb2.TICKET_STATUS_PENDING,
    )
    context = macro_context(ticket, knowledge_pb2.MacroAgent(name="Boris"), "", "https://desk/")
    assert context["ticket"]["url"] == "https://desk/tickets/HD-7"
    assert context["ticket"]["status"] == "pending"
    assert context["requester"] == {
        "name": "Anna",
        "email": "anna@example.com",
        "organization": None,
    }
    assert context["agent"] == {"name": "Boris", "email": None}
    assert context["team"] == {"name": "network"}


def test_an_index_built_from_the_store_ignores_older_events() -> None:
    live = LiveIndex()
    published, _ = publish(article(), by="agent-7", now=NOW)

    live.build([(published, 4)])

    assert not live.apply(article(), 3, "event")
    assert [h.article.id for h in live.index.search("vpn").hits] == ["vpn-setup"]
    assert live.apply(replace(published, title="Printer setup", body="Paper."), 5, "event")
