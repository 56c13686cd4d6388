"""TicketService over gRPC: protobuf in, commands, protobuf out. Refusals are mapped to
status codes by the shared interceptor."""

import dataclasses
from datetime import UTC
from typing import Any

import grpc

from helpdesk.api.reports.v1 import reports_pb2, reports_pb2_grpc
from helpdesk.api.tickets.v1 import tickets_pb2, tickets_pb2_grpc
from helpdesk.intake.commands import TicketCommands
from helpdesk.intake.mapping import (
    actor_from_proto,
    attachments_from_proto,
    comment_to_proto,
    draft_from_proto,
    history_entry_to_proto,
    patch_from_proto,
    query_from_proto,
    ticket_to_proto,
)
from helpdesk.intake.reports import Figures

Context = grpc.aio.ServicerContext[Any, Any]


class TicketService(tickets_pb2_grpc.TicketServiceServicer):
    def __init__(self, commands: TicketCommands) -> None:
        self._commands = commands

    async def CreateTicket(
        self, request: tickets_pb2.CreateTicketRequest, context: Context
    ) -> tickets_pb2.Ticket:
        ticket = await self._commands.create(draft_from_proto(request))
        return ticket_to_proto(ticket)

    async def GetTicket(
        self, request: tickets_pb2.GetTicketRequest, context: Context
    ) -> tickets_pb2.Ticket:
        return ticket_to_proto(await self._commands.get(request.id))

    async def ListTickets(
        self, request: tickets_pb2.ListTicketsRequest, context: Context
    ) -> tickets_pb2.ListTicketsResponse:
        tickets, next_token = await self._commands.page(
            query_from_proto(request), request.page_size, request.page_token
        )
        return tickets_pb2.ListTicketsResponse(
            tickets=[ticket_to_proto(t) for t in tickets], next_page_token=next_token
        )

    async def UpdateTicket(
        self, request: tickets_pb2.UpdateTicketRequest, context: Context
    ) -> tickets_pb2.Ticket:
        ticket = await self._commands.update(
            request.id,
            patch_from_proto(request.ticket),
            list(request.update_mask.paths),
            actor_from_proto(request.actor),
            request.expected_version,
        )
        return ticket_to_proto(ticket)

    async def AddComment(
        self, request: tickets_pb2.AddCommentRequest, context: Context
    ) -> tickets_pb2.AddCommentResponse:
        ticket, comment, replayed = await self._commands.comment(
            request.ticket_id,
            actor_from_proto(request.author),
            request.body,
            request.internal,
            attachments_from_proto(request.attachments),
            request.idempotency_key,
        )
        return tickets_pb2.AddCommentResponse(
            ticket=ticket_to_proto(ticket), comment=comment_to_proto(comment), replayed=replayed
        )

    async def AssignTicket(
        self, request: tickets_pb2.AssignTicketRequest, context: Context
    ) -> tickets_pb2.Ticket:
        ticket = await self._commands.assign(
            request.ticket_id,
            team=request.team,
            tier=request.tier,
            agent_id=request.agent_id,
            idempotency_key=request.idempotency_key,
            reason=request.reason,
            actor=actor_from_proto(request.actor),
        )
        return ticket_to_proto(ticket)

    async def GetTicketHistory(
        self, request: tickets_pb2.GetTicketHistoryRequest, context: Context
    ) -> tickets_pb2.GetTicketHistoryResponse:
        entries, comments = await self._commands.history(request.ticket_id)
        return tickets_pb2.GetTicketHistoryResponse(
            entries=[history_entry_to_proto(e) for e in entries],
            comments=[comment_to_proto(c) for c in comments],
        )

    async def RateTicket(
        self, request: tickets_pb2.RateTicketRequest, context: Context
    ) -> tickets_pb2.Ticket:
        ticket = await self._commands.rate(
            request.ticket_id, actor_from_proto(request.actor), request.score, request.comment
        )
        return ticket_to_proto(ticket)

    async def SolveWithArticle(
        self, request: tickets_pb2.SolveWithArticleRequest, context: Context
    ) -> tickets_pb2.Ticket:
        ticket = await self._commands.solve_with_article(
            request.ticket_id, actor_from_proto(request.actor), request.article_id
        )
        return ticket_to_proto(ticket)

    async def MergeTickets(
        self, request: tickets_pb2.MergeTicketsRequest, context: Context
    ) -> tickets_pb2.MergeTicketsResponse:
        source, target = await self._commands.merge(
            request.source_id, request.target_id, actor_from_proto(request.actor)
        )
        return tickets_pb2.MergeTicketsResponse(
            source=ticket_to_proto(source), target=ticket_to_proto(target)
        )

    async def LinkTickets(
        self, request: tickets_pb2.LinkTicketsRequest, context: Context
    ) -> tickets_pb2.LinkTicketsResponse:
        ticket, other = await self._commands.link(
            request.ticket_id, request.other_id, request.kind, actor_from_proto(request.actor)
        )
        return tickets_pb2.LinkTicketsResponse(
            ticket=ticket_to_proto(ticket), other=ticket_to_proto(other)
        )

    async def ExportRequesterData(
        self, request: tickets_pb2.ExportRequesterDataRequest, context: Context
    ) -> tickets_pb2.ExportRequesterDataResponse:
        exported = await self._commands.export_requester(request.requester_email)
        return tickets_pb2.ExportRequesterDataResponse(
            requester_email=request.requester_email.strip().lower(),
            tickets=[
                tickets_pb2.TicketExport(
                    ticket=ticket_to_proto(ticket),
                    comments=[comment_to_proto(c) for c in comments],
                    history=[history_entry_to_proto(e) for e in history],
                )
                for ticket, comments, history in exported
            ],
        )

    async def EraseRequesterData(
        self, request: tickets_pb2.EraseRequesterDataRequest, context: Context
    ) -> tickets_pb2.EraseRequesterDataResponse:
        erased, alias = await self._commands.erase_requester(
            request.requester_email, actor_from_proto(request.actor), request.reason
        )
        return tickets_pb2.EraseRequesterDataResponse(erased_tickets=erased, alias=alias)


def _figures_to_proto(figures: Figures) -> reports_pb2.Figures:
    return reports_pb2.Figures(**dataclasses.asdict(figures))


class ReportApi(reports_pb2_grpc.ReportServiceServicer):
    def __init__(self, commands: TicketCommands) -> None:
        self._commands = commands

    async def GetReport(
        self, request: reports_pb2.GetReportRequest, context: Context
    ) -> reports_pb2.GetReportResponse:
        start = request.period_start.ToDatetime(UTC) if request.HasField("period_start") else None
        end = request.period_end.ToDatetime(UTC) if request.HasField("period_end") else None
        total, groups = await self._commands.report(start, end, request.group_by)
        return reports_pb2.GetReportResponse(
            total=_figures_to_proto(total), groups=[_figures_to_proto(g) for g in groups]
        )
