"""Routing's admin API on a running system: teams, agents and rules as JSON documents.

routing_admin.py put-team '{"id": "it", "name": "IT support", "department": "it"}'
routing_admin.py put-agent '{"id": "kim", "name": "Kim", "email": "kim@example.com", ...}'
routing_admin.py put-rule '{"id": "vpn", "name": "VPN to IT", "conditions": [...], ...}'
routing_admin.py availability kim away
routing_admin.py list
"""

import argparse
import asyncio
import json
import sys
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message
from google.protobuf.struct_pb2 import Struct

from helpdesk.api.routing.v1 import routing_pb2, routing_pb2_grpc

DEADLINE = 10


def _plain(value: Any) -> Any:
    """JSON as it was written: Struct keeps every number as a double (5 comes back 5.0)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _dict(message: Message) -> Any:
    return _plain(
        MessageToDict(
            message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
        )
    )


def _document(text: str) -> Struct:
    document = Struct()
    document.update(json.loads(text))
    return document


async def run(args: argparse.Namespace) -> Any:
    async with grpc.aio.insecure_channel(args.routing) as channel:
        stub = routing_pb2_grpc.RoutingServiceStub(channel)
        if args.command == "put-team":
            team = _document(args.document)
            return await stub.PutTeam(routing_pb2.PutTeamRequest(team=team), timeout=DEADLINE)
        if args.command == "put-agent":
            agent = _document(args.document)
            return await stub.PutAgent(routing_pb2.PutAgentRequest(agent=agent), timeout=DEADLINE)
        if args.command == "put-rule":
            rule = _document(args.document)
            return await stub.PutRule(routing_pb2.PutRuleRequest(rule=rule), timeout=DEADLINE)
        if args.command == "availability":
            return await stub.SetAvailability(
                routing_pb2.SetAvailabilityRequest(
                    agent_id=args.agent_id, availability=args.availability
                ),
                timeout=DEADLINE,
            )
        teams, agents, rules = await asyncio.gather(
            stub.ListTeams(routing_pb2.ListTeamsRequest(), timeout=DEADLINE),
            stub.ListAgents(routing_pb2.ListAgentsRequest(), timeout=DEADLINE),
            stub.ListRules(routing_pb2.ListRulesRequest(), timeout=DEADLINE),
        )
        return {
            "teams": _dict(teams)["teams"],
            "agents": _dict(agents)["agents"],
            "rules": _dict(rules)["rules"],
        }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--routing", default="127.0.0.1:50052", help="routing's gRPC address")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("put-team", "put-agent", "put-rule"):
        commands.add_parser(name).add_argument("document", help="the JSON document")
    availability = commands.add_parser("availability")
    availability.add_argument("agent_id")
    availability.add_argument("availability", choices=["online", "away", "offline"])
    commands.add_parser("list", help="teams, agents and rules")
    args = parser.parse_args()
    try:
        reply = asyncio.run(run(args))
    except json.JSONDecodeError as error:
        print(f"not a JSON document: {error}", file=sys.stderr)
        return 2
    except grpc.RpcError as error:
        # INVALID_ARGUMENT names every bad field by its path.
        print(f"{error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    if not isinstance(reply, dict):
        reply = _dict(reply)
    print(json.dumps(reply, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
