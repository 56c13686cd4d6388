"""RoutingService over gRPC: JSON documents (Struct) in, the domain validates, records out.
Refusals are mapped to status codes by the shared interceptor."""

from datetime import UTC, datetime
from typing import Any

import grpc

from helpdesk.api.routing.v1 import routing_pb2, routing_pb2_grpc
from helpdesk.core.structs import to_raw, to_struct
from helpdesk.routing.commands import RoutingCommands
from helpdesk.routing.domain.assignment import AgentLoad
from helpdesk.routing.domain.directory import Team, dump_agent, dump_team, is_available
from helpdesk.routing.domain.rules import dump_rule
from helpdesk.routing.mapping import decision_to_proto, facts_from_proto

Context = grpc.aio.ServicerContext[Any, Any]


def _team_record(team: Team, waiting: dict[str, int]) -> routing_pb2.TeamRecord:
    return routing_pb2.TeamRecord(team=to_struct(dump_team(team)), waiting=waiting.get(team.id, 0))


def _agent_record(load: AgentLoad) -> routing_pb2.AgentRecord:
    return routing_pb2.AgentRecord(
        agent=to_struct(dump_agent(load.agent)),
        open_tickets=load.open_tickets,
        available=is_available(load.agent, datetime.now(UTC)),
    )


class RoutingApi(routing_pb2_grpc.RoutingServiceServicer):
    def __init__(self, commands: RoutingCommands) -> None:
        self._commands = commands

    async def PutTeam(
        self, request: routing_pb2.PutTeamRequest, context: Context
    ) -> routing_pb2.TeamRecord:
        team = await self._commands.put_team(to_raw(request.team))
        return _team_record(team, await self._commands.waiting_counts())

    async def ListTeams(
        self, request: routing_pb2.ListTeamsRequest, context: Context
    ) -> routing_pb2.ListTeamsResponse:
        waiting = await self._commands.waiting_counts()
        teams = sorted(await self._commands.teams(), key=lambda t: t.id)
        return routing_pb2.ListTeamsResponse(teams=[_team_record(t, waiting) for t in teams])

    async def PutAgent(
        self, request: routing_pb2.PutAgentRequest, context: Context
    ) -> routing_pb2.AgentRecord:
        agent = await self._commands.put_agent(to_raw(request.agent))
        return await self._record_of(agent.id)

    async def SetAvailability(
        self, request: routing_pb2.SetAvailabilityRequest, context: Context
    ) -> routing_pb2.AgentRecord:
        agent = await self._commands.set_availability(request.agent_id, request.availability)
        return await self._record_of(agent.id)

    async def ListAgents(
        self, request: routing_pb2.ListAgentsRequest, context: Context
    ) -> routing_pb2.ListAgentsResponse:
        loads = sorted(await self._commands.loads(), key=lambda c: c.agent.id)
        if request.team:
            loads = [c for c in loads if request.team in c.agent.teams]
        return routing_pb2.ListAgentsResponse(agents=[_agent_record(c) for c in loads])

    async def PutRule(
        self, request: routing_pb2.PutRuleRequest, context: Context
    ) -> routing_pb2.RuleRecord:
        rule = await self._commands.put_rule(to_raw(request.rule))
        return routing_pb2.RuleRecord(rule=to_struct(dump_rule(rule)))

    async def DeleteRule(
        self, request: routing_pb2.DeleteRuleRequest, context: Context
    ) -> routing_pb2.DeleteRuleResponse:
        await self._commands.delete_rule(request.id)
        return routing_pb2.DeleteRuleResponse()

    async def ListRules(
        self, request: routing_pb2.ListRulesRequest, context: Context
    ) -> routing_pb2.ListRulesResponse:
        rules = sorted(await self._commands.rules(), key=lambda r: (r.order, r.id))
        return routing_pb2.ListRulesResponse(
            rules=[routing_pb2.RuleRecord(rule=to_struct(dump_rule(r))) for r in rules]
        )

    async def EvaluateRouting(
        self, request: routing_pb2.EvaluateRoutingRequest, context: Context
    ) -> routing_pb2.RoutingDecision:
        decision, placement = await self._commands.evaluate(facts_from_proto(request.ticket))
        return decision_to_proto(decision, placement)

    async def _record_of(self, agent_id: str) -> routing_pb2.AgentRecord:
        load = next(c for c in await self._commands.loads() if c.agent.id == agent_id)
        return _agent_record(load)
