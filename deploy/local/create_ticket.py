"""Opens one ticket on a running system, over gRPC or through the intake topic."""

import argparse
import asyncio
import json
import os
import uuid

import grpc
from aiokafka import AIOKafkaProducer
from google.protobuf.json_format import MessageToDict

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.tickets.v1 import tickets_pb2, tickets_pb2_grpc


async def via_grpc(args: argparse.Namespace) -> None:
    async with grpc.aio.insecure_channel(args.intake) as channel:
        stub = tickets_pb2_grpc.TicketServiceStub(channel)
        ticket = await stub.CreateTicket(
            tickets_pb2.CreateTicketRequest(
                request_id=str(uuid.uuid4()),
                subject=args.subject,
                description=args.description,
                requester=common_pb2.Requester(email=args.email),
                priority=common_pb2.Priority.Value(f"PRIORITY_{args.priority.upper()}"),
            ),
            timeout=10,
        )
    print(json.dumps(MessageToDict(ticket), indent=2, ensure_ascii=False))


async def via_kafka(args: argparse.Namespace) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=args.kafka, acks="all", enable_idempotence=True)
    await producer.start()
    request = {
        "request_id": str(uuid.uuid4()),
        "subject": args.subject,
        "description": args.description,
        "requester": {"email": args.email},
        "priority": args.priority,
    }
    try:
        await producer.send_and_wait(
            "helpdesk.intake.requests.v1",
            json.dumps(request).encode(),
            headers=[("content-type", b"application/json")],
        )
    finally:
        await producer.stop()
    print(f"published request {request['request_id']}; see ListTickets for its ticket")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subject", required=True)
    parser.add_argument("--email", required=True)
    parser.add_argument("--description", default="Opened from the command line.")
    parser.add_argument("--priority", default="normal", choices=["low", "normal", "high", "urgent"])
    parser.add_argument("--intake", default="127.0.0.1:50051")
    parser.add_argument(
        "--kafka", default=os.environ.get("HELPDESK_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument("--via-kafka", action="store_true")
    args = parser.parse_args()
    asyncio.run(via_kafka(args) if args.via_kafka else via_grpc(args))


if __name__ == "__main__":
    main()
