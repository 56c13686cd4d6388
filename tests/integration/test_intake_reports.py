"""ReportService on the real servers: the figures follow what happened to tickets."""

from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.timestamp_pb2 import Timestamp
from test_intake_grpc import new_request

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.reports.v1 import reports_pb2, reports_pb2_grpc
from helpdesk.api.tickets.v1 import tickets_pb2

AGENT = common_pb2.Actor(id="agent-7", role=common_pb2.ACTOR_ROLE_AGENT)
REQUESTER = common_pb2.Actor(id="ann@example.com", role=common_pb2.ACTOR_ROLE_REQUESTER)


def stamp(moment: datetime) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(moment)
    return value


async def test_report_counts_what_happened(intake: Any, tickets: Any) -> None:
    for rating in (5, 1):
        ticket = await tickets.CreateTicket(new_request(), timeout=10)
        await tickets.AddComment(
            tickets_pb2.AddCommentRequest(ticket_id=ticket.id, author=AGENT, body="On it."),
            timeout=10,
        )
        await tickets.UpdateTicket(
            tickets_pb2.UpdateTicketRequest(
                id=ticket.id,
                ticket=tickets_pb2.Ticket(status=common_pb2.TICKET_STATUS_RESOLVED),
                update_mask=FieldMask(paths=["status"]),
                actor=AGENT,
            ),
            timeout=10,
        )
        await tickets.RateTicket(
            tickets_pb2.RateTicketRequest(ticket_id=ticket.id, actor=REQUESTER, score=rating),
            timeout=10,
        )
    await tickets.CreateTicket(new_request(channel=common_pb2.CHANNEL_WEB), timeout=10)

    now = datetime.now(UTC)
    async with grpc.aio.insecure_channel(intake.target) as channel:
        reports = reports_pb2_grpc.ReportServiceStub(channel)
        answer = await reports.GetReport(
            reports_pb2.GetReportRequest(
                period_start=stamp(now - timedelta(hours=1)),
                period_end=stamp(now + timedelta(hours=1)),
                group_by="channel",
            ),
            timeout=10,
        )
        total = answer.total
        assert (total.created, total.resolved, total.first_responses) == (3, 2, 2)
        assert total.backlog == 1
        assert total.backlog_share == pytest.approx(1 / 3)
        assert total.ratings == 2
        assert total.csat == 0.5
        assert total.first_response_seconds_mean >= 0
        assert {g.group: g.created for g in answer.groups} == {"api": 2, "web": 1}

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await reports.GetReport(reports_pb2.GetReportRequest(group_by="moon"), timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "period_start" in (refused.value.details() or "")
