"""The ticket lifecycle over gRPC on the real servers: updates with a field mask and
optimistic concurrency, comments, assignment, history, and the events they publish."""

import asyncio
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from kafka_tools import TopicWatcher, headers_of
from test_intake_grpc import TICKET_EVENTS, new_request

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.events.v1 import ticket_events_pb2
from helpdesk.api.tickets.v1 import tickets_pb2

AGENT = common_pb2.Actor(id="agent-7", role=common_pb2.ACTOR_ROLE_AGENT)
REQUESTER = common_pb2.Actor(id="ann@example.com", role=common_pb2.ACTOR_ROLE_REQUESTER)
ROUTING = common_pb2.Actor(id="routing", role=common_pb2.ACTOR_ROLE_SYSTEM)


def update(ticket_id: str, version: int = 0, **fields: Any) -> tickets_pb2.UpdateTicketRequest:
    return tickets_pb2.UpdateTicketRequest(
        id=ticket_id,
        ticket=tickets_pb2.Ticket(**fields),
        update_mask=FieldMask(paths=list(fields)),
        expected_version=version,
        actor=AGENT,
    )


async def test_a_ticket_lives_and_every_change_is_published(infra: Any, tickets: Any) -> None:
    async with TopicWatcher(infra.kafka, TICKET_EVENTS) as watcher:
        ticket = await tickets.CreateTicket(new_request(), timeout=10)
        assigned = await tickets.AssignTicket(
            tickets_pb2.AssignTicketRequest(
                ticket_id=ticket.id,
                team="it-service-desk",
                tier="l1",
                agent_id="agent-7",
                idempotency_key="routing-event-1",
                reason="rule: vpn -> it-service-desk",
                actor=ROUTING,
            ),
            timeout=10,
        )
        assert (assigned.team, assigned.tier, assigned.assignee_id) == (
            "it-service-desk",
            "L1",
            "agent-7",
        )
        assert assigned.status == common_pb2.TICKET_STATUS_OPEN
        replayed = await tickets.AssignTicket(
            tickets_pb2.AssignTicketRequest(
                ticket_id=ticket.id,
                team="other-team",
                idempotency_key="routing-event-1",
                actor=ROUTING,
            ),
            timeout=10,
        )
        assert replayed.version == assigned.version, "a replayed assignment changes nothing"

        replied = await tickets.AddComment(
            tickets_pb2.AddCommentRequest(
                ticket_id=ticket.number, author=AGENT, body="Please restart the VPN client."
            ),
            timeout=10,
        )
        assert replied.ticket.HasField("first_response_at")
        pending = await tickets.UpdateTicket(
            update(ticket.id, replied.ticket.version, status=common_pb2.TICKET_STATUS_PENDING),
            timeout=10,
        )
        answered = await tickets.AddComment(
            tickets_pb2.AddCommentRequest(
                ticket_id=ticket.id, author=REQUESTER, body="Still broken after a restart."
            ),
            timeout=10,
        )
        assert answered.ticket.status == common_pb2.TICKET_STATUS_OPEN
        resolved = await tickets.UpdateTicket(
            update(
                ticket.id,
                status=common_pb2.TICKET_STATUS_RESOLVED,
                priority=common_pb2.PRIORITY_URGENT,
            ),
            timeout=10,
        )
        assert resolved.HasField("resolved_at")
        reopened = await tickets.AddComment(
            tickets_pb2.AddCommentRequest(ticket_id=ticket.id, author=REQUESTER, body="Again!"),
            timeout=10,
        )
        assert reopened.ticket.status == common_pb2.TICKET_STATUS_OPEN
        assert reopened.ticket.reopen_count == 1
        assert pending.version < answered.ticket.version < reopened.ticket.version

        expected = [
            "created",
            "assigned",
            "status_changed",
            "commented",
            "status_changed",
            "commented",
            "status_changed",
            "updated",
            "status_changed",
            "resolved",
            "commented",
            "status_changed",
            "reopened",
        ]
        records = await watcher.collect(
            lambda r: r.key == ticket.id.encode(), count=len(expected), settle=1.0
        )
    types = [headers_of(r)["ce_type"].split(".")[2] for r in records]
    assert sorted(types) == sorted(expected)
    assert len({headers_of(r)["ce_id"] for r in records}) == len(records)
    by_type = {headers_of(r)["ce_type"]: r for r in records}
    reopen = ticket_events_pb2.TicketReopened.FromString(
        by_type["helpdesk.ticket.reopened.v1"].value
    )
    assert reopen.ticket.reopen_count == 1
    assign_event = ticket_events_pb2.TicketAssigned.FromString(
        by_type["helpdesk.ticket.assigned.v1"].value
    )
    assert assign_event.reason == "rule: vpn -> it-service-desk"
    assert assign_event.actor.id == "routing"

    history = await tickets.GetTicketHistory(
        tickets_pb2.GetTicketHistoryRequest(ticket_id=ticket.number), timeout=10
    )
    assert [e.action for e in history.entries] == expected
    assert {e.event_id for e in history.entries} == {headers_of(r)["ce_id"] for r in records}
    priority_change = next(e for e in history.entries if e.action == "updated")
    assert [(c.field, c.old_value, c.new_value) for c in priority_change.changes] == [
        ("priority", "high", "urgent")
    ]
    assert [c.body for c in history.comments] == [
        "Please restart the VPN client.",
        "Still broken after a restart.",
        "Again!",
    ]


async def test_illegal_moves_and_stale_versions_are_refused(tickets: Any) -> None:
    ticket = await tickets.CreateTicket(new_request(), timeout=10)
    closed = await tickets.UpdateTicket(
        update(ticket.id, ticket.version, status=common_pb2.TICKET_STATUS_CLOSED), timeout=10
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await tickets.UpdateTicket(
            update(ticket.id, status=common_pb2.TICKET_STATUS_OPEN), timeout=10
        )
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "closed" in (caught.value.details() or "")

    other = await tickets.CreateTicket(new_request(), timeout=10)
    await tickets.UpdateTicket(
        update(other.id, other.version, priority=common_pb2.PRIORITY_LOW), timeout=10
    )
    with pytest.raises(grpc.aio.AioRpcError) as stale:
        await tickets.UpdateTicket(
            update(other.id, other.version, priority=common_pb2.PRIORITY_URGENT), timeout=10
        )
    assert stale.value.code() == grpc.StatusCode.ABORTED
    assert closed.status == common_pb2.TICKET_STATUS_CLOSED

    with pytest.raises(grpc.aio.AioRpcError) as bad_mask:
        await tickets.UpdateTicket(
            tickets_pb2.UpdateTicketRequest(
                id=other.id, update_mask=FieldMask(paths=["subject"]), actor=AGENT
            ),
            timeout=10,
        )
    assert bad_mask.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "update_mask" in (bad_mask.value.details() or "")


async def test_concurrent_writers_never_lose_a_change(tickets: Any) -> None:
    ticket = await tickets.CreateTicket(new_request(), timeout=10)
    bodies = [f"note {i}" for i in range(20)]
    await asyncio.gather(
        *(
            tickets.AddComment(
                tickets_pb2.AddCommentRequest(
                    ticket_id=ticket.id, author=AGENT, body=body, internal=True
                ),
                timeout=30,
            )
            for body in bodies
        )
    )
    history = await tickets.GetTicketHistory(
        tickets_pb2.GetTicketHistoryRequest(ticket_id=ticket.id), timeout=10
    )
    assert sorted(c.body for c in history.comments) == sorted(bodies)
    current = await tickets.GetTicket(tickets_pb2.GetTicketRequest(id=ticket.id), timeout=10)
    assert current.version == ticket.version + len(bodies)
    assert not current.HasField("first_response_at"), "internal notes are no first response"


async def resolved_ticket(tickets: Any) -> Any:
    ticket = await tickets.CreateTicket(new_request(), timeout=10)
    return await tickets.UpdateTicket(
        update(ticket.id, status=common_pb2.TICKET_STATUS_RESOLVED), timeout=10
    )


async def test_rating_only_by_the_requester_and_a_bad_one_blocks_quiet_closing(
    infra: Any, tickets: Any
) -> None:
    open_ticket = await tickets.CreateTicket(new_request(), timeout=10)
    with pytest.raises(grpc.aio.AioRpcError) as too_early:
        await tickets.RateTicket(
            tickets_pb2.RateTicketRequest(ticket_id=open_ticket.id, actor=REQUESTER, score=5),
            timeout=10,
        )
    assert too_early.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    ticket = await resolved_ticket(tickets)
    with pytest.raises(grpc.aio.AioRpcError) as stranger:
        await tickets.RateTicket(
            tickets_pb2.RateTicketRequest(ticket_id=ticket.id, actor=AGENT, score=5), timeout=10
        )
    assert stranger.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as out_of_range:
        await tickets.RateTicket(
            tickets_pb2.RateTicketRequest(ticket_id=ticket.id, actor=REQUESTER, score=9),
            timeout=10,
        )
    assert out_of_range.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    async with TopicWatcher(infra.kafka, TICKET_EVENTS) as watcher:
        rated = await tickets.RateTicket(
            tickets_pb2.RateTicketRequest(
                ticket_id=ticket.id, actor=REQUESTER, score=1, comment="Took three days."
            ),
            timeout=10,
        )
        records = await watcher.collect(
            lambda r: (
                r.key == ticket.id.encode()
                and headers_of(r)["ce_type"] == "helpdesk.ticket.rated.v1"
            )
        )
    assert rated.review_required
    assert rated.rating.score == 1
    assert ticket_events_pb2.TicketRated.FromString(records[0].value).bad

    close = tickets_pb2.UpdateTicketRequest(
        id=ticket.id,
        ticket=tickets_pb2.Ticket(status=common_pb2.TICKET_STATUS_CLOSED),
        update_mask=FieldMask(paths=["status"]),
        actor=common_pb2.Actor(id="sla-auto-close", role=common_pb2.ACTOR_ROLE_SYSTEM),
    )
    with pytest.raises(grpc.aio.AioRpcError) as quietly:
        await tickets.UpdateTicket(close, timeout=10)
    assert quietly.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "review" in (quietly.value.details() or "")
    closed = await tickets.UpdateTicket(
        update(ticket.id, status=common_pb2.TICKET_STATUS_CLOSED), timeout=10
    )
    assert closed.status == common_pb2.TICKET_STATUS_CLOSED
    assert not closed.review_required


async def test_merge_closes_the_source_and_notes_the_target(tickets: Any) -> None:
    source = await tickets.CreateTicket(new_request(subject="VPN down again"), timeout=10)
    target = await tickets.CreateTicket(new_request(), timeout=10)
    request = tickets_pb2.MergeTicketsRequest(
        source_id=source.number, target_id=target.number, actor=AGENT
    )
    merged = await tickets.MergeTickets(request, timeout=10)
    assert merged.source.status == common_pb2.TICKET_STATUS_CLOSED
    assert merged.source.merged_into == target.number
    assert [(link.kind, link.ticket_number) for link in merged.target.links] == [
        ("merged_from", source.number)
    ]
    again = await tickets.MergeTickets(request, timeout=10)
    assert again.target.version == merged.target.version, "a repeated merge changes nothing"
    notes = await tickets.GetTicketHistory(
        tickets_pb2.GetTicketHistoryRequest(ticket_id=target.id), timeout=10
    )
    assert len(notes.comments) == 1
    assert notes.comments[0].internal
    assert "VPN down again" in notes.comments[0].body

    with pytest.raises(grpc.aio.AioRpcError) as into_itself:
        await tickets.MergeTickets(
            tickets_pb2.MergeTicketsRequest(source_id=target.id, target_id=target.id, actor=AGENT),
            timeout=10,
        )
    assert into_itself.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_links_go_both_ways(tickets: Any) -> None:
    first = await tickets.CreateTicket(new_request(), timeout=10)
    second = await tickets.CreateTicket(new_request(), timeout=10)
    linked = await tickets.LinkTickets(
        tickets_pb2.LinkTicketsRequest(
            ticket_id=second.id, other_id=first.number, kind="duplicate_of", actor=AGENT
        ),
        timeout=10,
    )
    assert [(x.kind, x.ticket_id) for x in linked.ticket.links] == [("duplicate_of", first.id)]
    assert [(x.kind, x.ticket_id) for x in linked.other.links] == [("has_duplicate", second.id)]
    with pytest.raises(grpc.aio.AioRpcError) as bad_kind:
        await tickets.LinkTickets(
            tickets_pb2.LinkTicketsRequest(
                ticket_id=second.id, other_id=first.id, kind="parent_of", actor=AGENT
            ),
            timeout=10,
        )
    assert bad_kind.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "kind" in (bad_kind.value.details() or "")


async def test_a_requesters_data_is_exported_and_erased(infra: Any, tickets: Any) -> None:
    carol = common_pb2.Requester(email="carol@example.com", name="Carol Doe")
    mine = await tickets.CreateTicket(
        new_request(subject="Carol's laptop", requester=carol, description="Serial 123"),
        timeout=10,
    )
    await tickets.AddComment(
        tickets_pb2.AddCommentRequest(
            ticket_id=mine.id,
            author=common_pb2.Actor(id="carol@example.com", role=common_pb2.ACTOR_ROLE_REQUESTER),
            body="My phone is +49 170 000000",
        ),
        timeout=10,
    )
    await tickets.AddComment(
        tickets_pb2.AddCommentRequest(ticket_id=mine.id, author=AGENT, body="Replacing it."),
        timeout=10,
    )
    someone_else = await tickets.CreateTicket(new_request(), timeout=10)

    exported = await tickets.ExportRequesterData(
        tickets_pb2.ExportRequesterDataRequest(requester_email="Carol@example.com"), timeout=10
    )
    assert [t.ticket.id for t in exported.tickets] == [mine.id]
    assert len(exported.tickets[0].comments) == 2
    assert exported.tickets[0].history[0].action == "created"

    async with TopicWatcher(infra.kafka, TICKET_EVENTS) as watcher:
        erased = await tickets.EraseRequesterData(
            tickets_pb2.EraseRequesterDataRequest(
                requester_email="carol@example.com", actor=AGENT, reason="GDPR request 42"
            ),
            timeout=10,
        )
        records = await watcher.collect(
            lambda r: (
                r.key == mine.id.encode()
                and headers_of(r)["ce_type"] == "helpdesk.ticket.erased.v1"
            )
        )
    assert erased.erased_tickets == 1
    assert records, "services holding copies are told"
    after = await tickets.GetTicket(tickets_pb2.GetTicketRequest(id=mine.id), timeout=10)
    assert after.requester.email == erased.alias
    assert after.requester.name == ""
    assert after.subject == after.description == "[erased]"
    history = await tickets.GetTicketHistory(
        tickets_pb2.GetTicketHistoryRequest(ticket_id=mine.id), timeout=10
    )
    bodies = [c.body for c in history.comments]
    assert bodies == ["[erased]", "Replacing it."]
    assert "carol@example.com" not in str(history)
    assert history.entries[-1].action == "erased"
    assert "GDPR request 42" in history.entries[-1].changes[0].new_value
    again = await tickets.EraseRequesterData(
        tickets_pb2.EraseRequesterDataRequest(requester_email="carol@example.com", actor=AGENT),
        timeout=10,
    )
    assert again.erased_tickets == 0
    untouched = await tickets.GetTicket(
        tickets_pb2.GetTicketRequest(id=someone_else.id), timeout=10
    )
    assert untouched.subject == someone_else.subject
