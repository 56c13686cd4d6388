"""One trace follows a request across gRPC, MongoDB and the Kafka hops, through every service,
exported by OTLP to a real receiver."""

import uuid
from typing import Any

import grpc
from aiosmtpd.controller import Controller
from conftest import free_port, new_routing_group
from google.protobuf import struct_pb2
from otlp_receiver import OtlpReceiver, Span
from test_intake_grpc import new_request
from test_notification import Mailbox

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.notification.v1 import notification_pb2, notification_pb2_grpc
from helpdesk.api.routing.v1 import routing_pb2, routing_pb2_grpc
from helpdesk.api.sla.v1 import sla_pb2, sla_pb2_grpc
from helpdesk.api.tickets.v1 import tickets_pb2, tickets_pb2_grpc

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


# OTLP span kinds (opentelemetry.proto.trace.v1.Span.SpanKind).
SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5
ASSIGN = "/helpdesk.api.tickets.v1.TicketService/AssignTicket"
SUGGEST = "/helpdesk.api.knowledge.v1.KnowledgeService/SuggestArticles"
TICKETS_TOPIC = "helpdesk.tickets.events.v1"
SLA_TOPIC = "helpdesk.sla.events.v1"


def struct(raw: dict[str, Any]) -> struct_pb2.Struct:
    document = struct_pb2.Struct()
    document.update(raw)
    return document


class Tree:
    """The spans of one trace as a tree: one span by what it is, and its ancestors."""

    def __init__(self, spans: list[Span]) -> None:
        self.spans = spans
        self._by_id = {s.span_id: s for s in spans}

    def orphans(self) -> list[Span]:
        """Spans whose parent is not in the trace (the caller's own span is not exported)."""
        return [s for s in self.spans if s.parent_id not in self._by_id]

    def one(self, service: str, name: str, **attributes: Any) -> Span:
        found = [
            s
            for s in self.spans
            if (s.service, s.name) == (service, name)
            and all(s.attributes.get(k) == v for k, v in attributes.items())
        ]
        assert found, f"no {service} span {name!r} with {attributes}; spans: {self.names()}"
        return found[0]

    def ancestors(self, span: Span) -> list[Span]:
        found = []
        while span.parent_id in self._by_id:
            span = self._by_id[span.parent_id]
            found.append(span)
        return found

    def parent(self, span: Span) -> Span:
        return self._by_id[span.parent_id]

    def descends(self, span: Span, ancestor: Span) -> bool:
        return any(a.span_id == ancestor.span_id for a in self.ancestors(span))

    def names(self) -> list[str]:
        return sorted({f"{s.service}: {s.name}" for s in self.spans})


def consumed(tree: Tree, service: str, topic: str, event_type: str) -> Span:
    """The span of one service consuming one event, checked against the messaging
    conventions (FastStream's consumer span, completed by core.kafka)."""
    span = tree.one(service, f"{topic} process", **{"cloudevents.event_type": event_type})
    assert span.kind == CONSUMER
    assert span.attributes["messaging.system"] == "kafka"
    assert span.attributes["messaging.destination.name"] == topic
    assert span.attributes["messaging.operation"] == "process"
    assert span.attributes["messaging.operation.type"] == "process"
    assert span.attributes["messaging.consumer.group.name"]
    assert span.attributes["cloudevents.event_id"]
    return span


def sent(tree: Tree, service: str, topic: str, event: Span) -> Span:
    """The producer span whose context a consumed event carried in its headers: FastStream
    makes a "create" span for the message, injects it, and sends under a "publish" child;
    both name the CloudEvent's id as the conversation id."""
    event_id = event.attributes["cloudevents.event_id"]
    conversation = {"messaging.message.conversation_id": event_id}
    message = tree.one(service, f"{topic} create", **conversation)
    publish = tree.one(service, f"{topic} publish", **conversation)
    assert publish.parent_id == message.span_id
    for span in (message, publish):
        assert span.kind == PRODUCER
        assert span.attributes["messaging.system"] == "kafka"
        assert span.attributes["messaging.destination.name"] == topic
    assert publish.attributes["messaging.operation"] == "publish"
    assert event.parent_id == message.span_id, "the consumer continues the message's context"
    return message


def rpc(span: Span, kind: int, method: str) -> None:
    assert span.kind == kind
    assert span.attributes["rpc.system"] == "grpc"
    assert span.attributes["rpc.service"] == "helpdesk.api.tickets.v1.TicketService"
    assert span.attributes["rpc.method"] == method


async def test_a_ticket_is_one_trace_through_every_service(
    infra: Any,
    make_intake: Any,
    make_routing: Any,
    make_sla: Any,
    make_notification: Any,
    make_knowledge: Any,
) -> None:
    box = Mailbox()
    smtp = Controller(box, hostname="127.0.0.1", port=free_port())
    smtp.start()
    try:
        async with OtlpReceiver() as receiver:
            otel = {
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_EXPORTER_OTLP_INSECURE": "true",
                "OTEL_BSP_SCHEDULE_DELAY": "200",
            }
            knowledge = make_knowledge(**otel)
            knowledge.start()
            await knowledge.wait_serving()
            intake = make_intake(
                HELPDESK_KNOWLEDGE_TARGET=knowledge.target,
                HELPDESK_KNOWLEDGE_DEADLINE_SECONDS="5",
                **otel,
            )
            intake.start()
            await intake.wait_serving()
            routing = make_routing(
                intake, f"it_routing_{uuid.uuid4().hex[:8]}", new_routing_group(infra), **otel
            )
            sla = make_sla(intake, **otel)
            notification = make_notification(
                HELPDESK_SMTP_PORT=str(smtp.port), HELPDESK_MANAGERS='["lee"]', **otel
            )
            for service in (routing, sla, notification):
                service.start()
            for service in (routing, sla, notification):
                await service.wait_serving()
            trace_id, caller_span = uuid.uuid4().hex, uuid.uuid4().hex[:16]
            async with (
                grpc.aio.insecure_channel(intake.target) as to_intake,
                grpc.aio.insecure_channel(routing.target) as to_routing,
                grpc.aio.insecure_channel(sla.target) as to_sla,
                grpc.aio.insecure_channel(notification.target) as to_notification,
            ):
                await desk_of(
                    routing_pb2_grpc.RoutingServiceStub(to_routing),
                    sla_pb2_grpc.SlaServiceStub(to_sla),
                    notification_pb2_grpc.NotificationServiceStub(to_notification),
                )
                tickets = tickets_pb2_grpc.TicketServiceStub(to_intake)
                await tickets.CreateTicket(
                    tickets_pb2.CreateTicketRequest(
                        request_id=f"it-{uuid.uuid4()}",
                        subject="VPN is down",
                        description="Since the morning.",
                        requester=common_pb2.Requester(email="ann@example.com"),
                    ),
                    timeout=10,
                    metadata=(("traceparent", f"00-{trace_id}-{caller_span}-01"),),
                )
                # Routing assigns kim; the 3-second first response target is breached and
                # the manager, lee, is told: every hop of that is awaited in the trace.
                await receiver.wait_for(
                    trace_id, {ASSIGN, "sla.timer.fire", "notification.deliver email"}
                )
                spans = await receiver.settle(
                    trace_id,
                    lambda spans: (
                        len(Tree(spans).orphans()) == 1
                        and sum(
                            s.attributes.get("helpdesk.delivery.template")
                            in ("ticket.assigned.assignee", "sla.breached.manager")
                            for s in spans
                        )
                        >= 2
                    ),
                    timeout=45,
                )
    finally:
        smtp.stop()

    tree = Tree(spans)
    assert {s.service for s in spans} == {"intake", "knowledge", "routing", "sla", "notification"}
    # One tree: the only span without its parent in the trace is intake's CreateTicket,
    # whose parent is the caller's span.
    (root,) = tree.orphans()
    assert (root.service, root.name, root.parent_id) == ("intake", CREATE, caller_span)
    rpc(root, SERVER, "CreateTicket")

    # intake -> knowledge: the suggestions for the new ticket are asked within its call.
    ask = tree.one("intake", SUGGEST)
    answer = tree.one("knowledge", SUGGEST)
    assert (ask.kind, ask.parent_id) == (CLIENT, root.span_id)
    assert (answer.kind, answer.parent_id) == (SERVER, ask.span_id)
    assert answer.attributes["rpc.service"] == "helpdesk.api.knowledge.v1.KnowledgeService"

    # intake -> Kafka -> routing: the consumer continues the trace from the headers.
    routed = consumed(tree, "routing", TICKETS_TOPIC, "helpdesk.ticket.created.v1")
    created = sent(tree, "intake", TICKETS_TOPIC, routed)
    assert tree.descends(created, root)

    # routing -> intake: AssignTicket's client span is the consumer's child, and intake's
    # server span the client's child.
    asked = tree.one("routing", ASSIGN)
    rpc(asked, CLIENT, "AssignTicket")
    assert asked.parent_id == routed.span_id
    assigned = tree.one("intake", ASSIGN)
    rpc(assigned, SERVER, "AssignTicket")
    assert assigned.parent_id == asked.span_id

    # intake -> Kafka -> sla: both ticket events are measured in the trace, and the
    # ticket.assigned event intake published while serving AssignTicket is one of them.
    measured = consumed(tree, "sla", TICKETS_TOPIC, "helpdesk.ticket.created.v1")
    assert sent(tree, "intake", TICKETS_TOPIC, measured).span_id == created.span_id
    reassessed = consumed(tree, "sla", TICKETS_TOPIC, "helpdesk.ticket.assigned.v1")
    assert tree.descends(sent(tree, "intake", TICKETS_TOPIC, reassessed), assigned)

    # sla's timer fires later, as a child of the ticket event that last changed the
    # ticket's SLA (which armed it), and the breach it publishes stays in the trace: on to
    # notification, whose consumer continues from the breach's headers.
    told = consumed(tree, "notification", SLA_TOPIC, "helpdesk.sla.breached.v1")
    breach = sent(tree, "sla", SLA_TOPIC, told)
    fired = next((a for a in tree.ancestors(breach) if a.name == "sla.timer.fire"), None)
    assert fired is not None, "the breach was published by a timer's firing"
    assert fired.attributes["helpdesk.sla.fired"] == ["breach"]
    armed = tree.parent(fired)
    assert (armed.service, armed.name, armed.kind) == ("sla", f"{TICKETS_TOPIC} process", CONSUMER)
    assert tree.descends(armed, root)

    # notification -> SMTP: the manager hears of the breach; kim hears of the assignment.
    # Each send is a child of the consumer span that recorded it.
    mailed = tree.one(
        "notification",
        "notification.deliver email",
        **{"helpdesk.delivery.template": "sla.breached.manager"},
    )
    assert mailed.kind == CLIENT
    assert mailed.parent_id == told.span_id
    assert mailed.attributes["helpdesk.delivery.recipient"] == "lee"
    heard = consumed(tree, "notification", TICKETS_TOPIC, "helpdesk.ticket.assigned.v1")
    assert tree.descends(sent(tree, "intake", TICKETS_TOPIC, heard), assigned)
    to_kim = tree.one(
        "notification",
        "notification.deliver email",
        **{"helpdesk.delivery.template": "ticket.assigned.assignee"},
    )
    assert to_kim.parent_id == heard.span_id
    assert {str(m["To"]) for m in box.messages} >= {"kim@example.com", "lee@example.com"}


async def desk_of(routing: Any, sla: Any, notification: Any) -> None:
    """kim in team it, which gets VPN tickets; a 3-second first response; lee a manager."""
    await routing.PutTeam(
        routing_pb2.PutTeamRequest(team=struct({"id": "it", "name": "IT", "department": "it"})),
        timeout=10,
    )
    kim = {"id": "kim", "name": "Kim", "email": "kim@example.com", "teams": ["it"]}
    await routing.PutAgent(
        routing_pb2.PutAgentRequest(agent=struct({**kim, "capacity": 5, "availability": "online"})),
        timeout=10,
    )
    vpn = {
        "id": "vpn",
        "name": "VPN to IT",
        "conditions": [{"type": "words", "words": ["vpn"]}],
        "actions": [{"type": "set_team", "team": "it"}],
    }
    await routing.PutRule(routing_pb2.PutRuleRequest(rule=struct(vpn)), timeout=10)
    policy = {"id": "fast", "name": "Fast", "targets": {"first_response": "3s"}}
    await sla.PutPolicy(sla_pb2.PutPolicyRequest(policy=struct(policy)), timeout=10)
    for person in ({"id": "kim", "name": "Kim"}, {"id": "lee", "name": "Lee"}):
        email = f"{person['id']}@example.com"
        await notification.PutPerson(
            notification_pb2.PutPersonRequest(
                person=struct({**person, "email": email, "language": "en"})
            ),
            timeout=10,
        )
