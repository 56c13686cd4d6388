"""Duplicates are caught: the same requester with the same problem within the window adds
to the open ticket instead of opening a second one."""

from typing import Any

import grpc
from google.protobuf.field_mask_pb2 import FieldMask
from test_intake_grpc import new_request

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.tickets.v1 import tickets_pb2, tickets_pb2_grpc

AGENT = common_pb2.Actor(id="agent-7", role=common_pb2.ACTOR_ROLE_AGENT)


async def test_same_requester_same_subject_adds_to_the_open_ticket(make_intake: Any) -> None:
    service = make_intake(HELPDESK_DEDUP_WINDOW_SECONDS="600")
    service.start()
    await service.wait_serving()
    async with grpc.aio.insecure_channel(service.target) as channel:
        tickets = tickets_pb2_grpc.TicketServiceStub(channel)
        first = await tickets.CreateTicket(new_request(subject="Printer on 3rd floor jammed"))
        again = await tickets.CreateTicket(
            new_request(subject="RE: printer on 3rd floor  jammed!", description="Still jammed.")
        )
        assert again.id == first.id, "the repeat was added to the open ticket"
        history = await tickets.GetTicketHistory(
            tickets_pb2.GetTicketHistoryRequest(ticket_id=first.id)
        )
        assert [c.author.role for c in history.comments] == [common_pb2.ACTOR_ROLE_REQUESTER]
        assert "Still jammed." in history.comments[0].body

        other_requester = await tickets.CreateTicket(
            new_request(
                subject="Printer on 3rd floor jammed",
                requester=common_pb2.Requester(email="bob@example.com"),
            )
        )
        assert other_requester.id != first.id
        other_subject = await tickets.CreateTicket(new_request(subject="Printer out of toner"))
        assert other_subject.id != first.id

        # Once resolved, the same problem opens a new ticket.
        await tickets.UpdateTicket(
            tickets_pb2.UpdateTicketRequest(
                id=first.id,
                ticket=tickets_pb2.Ticket(status=common_pb2.TICKET_STATUS_RESOLVED),
                update_mask=FieldMask(paths=["status"]),
                actor=AGENT,
            )
        )
        after_resolution = await tickets.CreateTicket(
            new_request(subject="Printer on 3rd floor jammed")
        )
        assert after_resolution.id != first.id
