"""SLA's admin API on a running system: calendars and policies as JSON documents, and clocks.

sla_admin.py put-calendar '{"id": "office", "time_zone": "Europe/Moscow", "hours": {...}}'
sla_admin.py put-policy '{"id": "std", "name": "Standard", "targets": {"resolution": "4h"}}'
sla_admin.py delete-policy std
sla_admin.py delete-calendar office
sla_admin.py list
sla_admin.py ticket <ticket id>
sla_admin.py at-risk [--team it] [--include-breached]
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

from helpdesk.api.sla.v1 import sla_pb2, sla_pb2_grpc

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
    async with grpc.aio.insecure_channel(args.sla) as channel:
        stub = sla_pb2_grpc.SlaServiceStub(channel)
        if args.command == "put-calendar":
            calendar = _document(args.document)
            return await stub.PutCalendar(
                sla_pb2.PutCalendarRequest(calendar=calendar), timeout=DEADLINE
            )
        if args.command == "put-policy":
            policy = _document(args.document)
            return await stub.PutPolicy(sla_pb2.PutPolicyRequest(policy=policy), timeout=DEADLINE)
        if args.command == "delete-calendar":
            return await stub.DeleteCalendar(
                sla_pb2.DeleteCalendarRequest(id=args.id), timeout=DEADLINE
            )
        if args.command == "delete-policy":
            # Its open tickets move to other policies first: allow for many.
            return await stub.DeletePolicy(
                sla_pb2.DeletePolicyRequest(id=args.id), timeout=DEADLINE * 6
            )
        if args.command == "ticket":
            return await stub.GetTicketSla(
                sla_pb2.GetTicketSlaRequest(ticket_id=args.ticket_id), timeout=DEADLINE
            )
        if args.command == "at-risk":
            return await stub.ListAtRisk(
                sla_pb2.ListAtRiskRequest(
                    team=args.team,
                    page_size=args.page_size,
                    include_breached=args.include_breached,
                ),
                timeout=DEADLINE,
            )
        calendars, policies = await asyncio.gather(
            stub.ListCalendars(sla_pb2.ListCalendarsRequest(), timeout=DEADLINE),
            stub.ListPolicies(sla_pb2.ListPoliciesRequest(), timeout=DEADLINE),
        )
        return {
            "calendars": [c["calendar"] for c in _dict(calendars)["calendars"]],
            "policies": [p["policy"] for p in _dict(policies)["policies"]],
        }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sla", default="127.0.0.1:50053", help="sla's gRPC address")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("put-calendar", "put-policy"):
        commands.add_parser(name).add_argument("document", help="the JSON document")
    commands.add_parser(
        "delete-policy", help="its open tickets move to the policy selected for each"
    ).add_argument("id", help="the policy's id")
    commands.add_parser(
        "delete-calendar", help="refused while a policy or an open ticket uses it"
    ).add_argument("id", help="the calendar's id")
    commands.add_parser("list", help="calendars and policies")
    ticket = commands.add_parser("ticket", help="one ticket's clocks")
    ticket.add_argument("ticket_id", help="the ticket's id (not its number)")
    at_risk = commands.add_parser("at-risk", help="open tickets at risk, soonest due first")
    at_risk.add_argument("--team", default="", help="only this team's tickets")
    at_risk.add_argument("--page-size", type=int, default=0, help="at most this many (0: 50)")
    at_risk.add_argument("--include-breached", action="store_true", help="breached ones too")
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
