"""Notification's admin API on a running system: people, subscriptions and templates as JSON
documents, and what was sent.

notification_admin.py put-person '{"id": "kim", "name": "Kim", "email": "kim@example.com"}'
notification_admin.py put-subscription '{"id": "urgent", "name": "Urgent to Lee", ...}'
notification_admin.py deliveries [--ticket <id>] [--recipient <who>] [--status dead]
notification_admin.py replay <delivery id>
notification_admin.py put-template '{"key": "ticket.created.requester", "language": "en", ...}'
notification_admin.py preview ticket.created.requester [--language ru]
notification_admin.py test-send ticket.created.requester email ann@example.com
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

from helpdesk.api.notification.v1 import notification_pb2, notification_pb2_grpc

DEADLINE = 10
# test-send waits for the SMTP server or the webhook to answer.
SEND_DEADLINE = 30


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
    async with grpc.aio.insecure_channel(args.notification) as channel:
        stub = notification_pb2_grpc.NotificationServiceStub(channel)
        if args.command == "put-person":
            person = _document(args.document)
            return await stub.PutPerson(
                notification_pb2.PutPersonRequest(person=person), timeout=DEADLINE
            )
        if args.command == "put-subscription":
            subscription = _document(args.document)
            return await stub.PutSubscription(
                notification_pb2.PutSubscriptionRequest(subscription=subscription),
                timeout=DEADLINE,
            )
        if args.command == "put-template":
            template = _document(args.document)
            return await stub.PutTemplate(
                notification_pb2.PutTemplateRequest(template=template), timeout=DEADLINE
            )
        if args.command == "preview":
            return await stub.PreviewTemplate(
                notification_pb2.PreviewTemplateRequest(key=args.key, language=args.language),
                timeout=DEADLINE,
            )
        if args.command == "test-send":
            return await stub.TestSend(
                notification_pb2.TestSendRequest(
                    key=args.key, language=args.language, channel=args.channel, address=args.address
                ),
                timeout=SEND_DEADLINE,
            )
        if args.command == "replay":
            return await stub.ReplayDelivery(
                notification_pb2.ReplayDeliveryRequest(id=args.delivery_id), timeout=DEADLINE
            )
        reply = await stub.ListDeliveries(
            notification_pb2.ListDeliveriesRequest(
                ticket_id=args.ticket,
                recipient=args.recipient,
                status=args.status,
                page_size=args.page_size,
            ),
            timeout=DEADLINE,
        )
        return _dict(reply)["deliveries"]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--notification", default="127.0.0.1:50054", help="notification's gRPC address"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, what in (
        ("put-person", "an agent's, manager's or team's contact and preferences"),
        ("put-subscription", "who else hears of which events"),
        ("put-template", "an own version of a shipped template in one language"),
    ):
        commands.add_parser(name, help=what).add_argument("document", help="the JSON document")
    deliveries = commands.add_parser("deliveries", help="what was sent or is due, newest first")
    deliveries.add_argument("--ticket", default="", help="only this ticket's (its id)")
    deliveries.add_argument("--recipient", default="", help="only to this e-mail or person id")
    deliveries.add_argument(
        "--status", default="", help="only these: pending, sent, held, digested or dead"
    )
    deliveries.add_argument("--page-size", type=int, default=0, help="at most this many (0: 50)")
    replay = commands.add_parser("replay", help="send a dead delivery again")
    replay.add_argument("delivery_id", help="the delivery's id, as `deliveries` shows it")
    preview = commands.add_parser("preview", help="a template rendered against a sample")
    test_send = commands.add_parser("test-send", help="send a template's sample now")
    for command in (preview, test_send):
        command.add_argument("key", help="the template, e.g. ticket.created.requester")
        command.add_argument("--language", default="en", help="en or ru")
    test_send.add_argument("channel", choices=["email", "webhook", "slack", "telegram"])
    test_send.add_argument("address", help="an e-mail address, a URL or a Telegram chat id")
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
    if isinstance(reply, Message):
        reply = _dict(reply)
    print(json.dumps(reply, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
