"""SlaService over gRPC: JSON documents (Struct) in, the domain validates, records out.
Refusals are mapped to status codes by the shared interceptor."""

from typing import Any

import grpc

from helpdesk.api.sla.v1 import sla_pb2, sla_pb2_grpc
from helpdesk.core.structs import to_raw, to_struct
from helpdesk.sla.commands import SlaCommands
from helpdesk.sla.domain.calendar import dump_calendar
from helpdesk.sla.domain.policy import dump_policy

Context = grpc.aio.ServicerContext[Any, Any]
MAX_PAGE_SIZE = 500


class SlaApi(sla_pb2_grpc.SlaServiceServicer):
    def __init__(self, commands: SlaCommands) -> None:
        self._commands = commands

    async def PutCalendar(
        self, request: sla_pb2.PutCalendarRequest, context: Context
    ) -> sla_pb2.CalendarRecord:
        calendar = await self._commands.put_calendar(to_raw(request.calendar))
        return sla_pb2.CalendarRecord(calendar=to_struct(dump_calendar(calendar)))

    async def DeleteCalendar(
        self, request: sla_pb2.DeleteCalendarRequest, context: Context
    ) -> sla_pb2.DeleteCalendarResponse:
        await self._commands.delete_calendar(request.id)
        return sla_pb2.DeleteCalendarResponse()

    async def ListCalendars(
        self, request: sla_pb2.ListCalendarsRequest, context: Context
    ) -> sla_pb2.ListCalendarsResponse:
        calendars = sorted(await self._commands.calendars(), key=lambda c: c.id)
        return sla_pb2.ListCalendarsResponse(
            calendars=[
                sla_pb2.CalendarRecord(calendar=to_struct(dump_calendar(c))) for c in calendars
            ]
        )

    async def PutPolicy(
        self, request: sla_pb2.PutPolicyRequest, context: Context
    ) -> sla_pb2.PolicyRecord:
        policy = await self._commands.put_policy(to_raw(request.policy))
        return sla_pb2.PolicyRecord(policy=to_struct(dump_policy(policy)))

    async def DeletePolicy(
        self, request: sla_pb2.DeletePolicyRequest, context: Context
    ) -> sla_pb2.DeletePolicyResponse:
        moved = await self._commands.delete_policy(request.id)
        return sla_pb2.DeletePolicyResponse(tickets_moved=moved)

    async def ListPolicies(
        self, request: sla_pb2.ListPoliciesRequest, context: Context
    ) -> sla_pb2.ListPoliciesResponse:
        policies = sorted(await self._commands.policies(), key=lambda p: (p.order, p.id))
        return sla_pb2.ListPoliciesResponse(
            policies=[sla_pb2.PolicyRecord(policy=to_struct(dump_policy(p))) for p in policies]
        )

    async def GetTicketSla(
        self, request: sla_pb2.GetTicketSlaRequest, context: Context
    ) -> sla_pb2.TicketSla:
        return await self._commands.ticket_sla(request.ticket_id)

    async def ListAtRisk(
        self, request: sla_pb2.ListAtRiskRequest, context: Context
    ) -> sla_pb2.ListAtRiskResponse:
        size = min(request.page_size or 50, MAX_PAGE_SIZE)
        found = await self._commands.at_risk(request.team, size, request.include_breached)
        return sla_pb2.ListAtRiskResponse(tickets=found)
