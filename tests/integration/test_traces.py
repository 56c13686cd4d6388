"""One trace follows a request across gRPC, MongoDB and the Kafka hop, exported by OTLP to a
real receiver."""

import uuid
from typing import Any

import grpc
from otlp_receiver import OtlpReceiver
from test_intake_grpc import new_request

from helpdesk.api.tickets.v1 import tickets_pb2_grpc

CREATE = "/helpdesk.api.tickets.v1.TicketService/CreateTicket"
PUBLISH = "helpdesk.tickets.events.v1 publish"


async def test_create_ticket_is_one_trace_from_call_to_kafka(make_intake: Any) -> None:
    async with OtlpReceiver() as receiver:
        service = make_intake(
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_EXPORTER_OTLP_INSECURE="true",
            OTEL_BSP_SCHEDULE_DELAY="200",
        )
        service.start()
        await service.wait_serving()
        trace_id = uuid.uuid4().hex
        caller = (("traceparent", f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"),)
        async with grpc.aio.insecure_channel(service.target) as channel:
            tickets = tickets_pb2_grpc.TicketServiceStub(channel)
            await tickets.CreateTicket(new_request(), timeout=10, metadata=caller)
        spans = await receiver.wait_for(trace_id, {CREATE, PUBLISH})

    assert {s.service for s in spans} == {"intake"}
    by_name = {s.name: s for s in spans}
    server = by_name[CREATE]
    assert server.attributes["rpc.system"] == "grpc"
    assert server.attributes["rpc.method"] == "CreateTicket"
    publish = by_name[PUBLISH]
    assert publish.attributes["messaging.system"] == "kafka"
    assert publish.attributes["messaging.destination.name"] == "helpdesk.tickets.events.v1"
    database = [s for s in spans if s.attributes.get("db.system") == "mongodb"]
    assert database, "the MongoDB calls are in the trace"
    ids = {s.span_id for s in spans}
    assert all(s.parent_id in ids for s in spans if s is not server), "one connected tree"
