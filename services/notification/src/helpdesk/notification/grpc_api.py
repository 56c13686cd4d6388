"""NotificationService over gRPC: JSON documents in, records out; refusals are mapped by
the shared interceptor."""

from datetime import datetime
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from helpdesk.api.notification.v1 import notification_pb2, notification_pb2_grpc
from helpdesk.core.structs import to_raw, to_struct
from helpdesk.notification.commands import NotificationCommands
from helpdesk.notification.domain.notices import dump_person, dump_subscription
from helpdesk.notification.domain.templates import dump_template

Context = grpc.aio.ServicerContext[Any, Any]
MAX_PAGE_SIZE = 500


def _stamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def delivery_to_proto(doc: dict[str, Any]) -> notification_pb2.Delivery:
    return notification_pb2.Delivery(
        id=doc["_id"],
        event_id=doc.get("event_id", ""),
        ticket_id=doc.get("ticket_id", ""),
        template=doc.get("template", ""),
        recipient=doc.get("recipient", ""),
        channel=doc.get("channel", ""),
        address=doc.get("address", ""),
        language=doc.get("language", ""),
        status=doc.get("status", ""),
        attempts=int(doc.get("attempts", 0)),
        last_error=doc.get("last_error", ""),
        subject=doc.get("subject", ""),
        created_at=_stamp(doc.get("created_at")),
        sent_at=_stamp(doc.get("sent_at")),
    )


class NotificationApi(notification_pb2_grpc.NotificationServiceServicer):
    def __init__(self, commands: NotificationCommands) -> None:
        self._commands = commands

    async def PutPerson(
        self, request: notification_pb2.PutPersonRequest, context: Context
    ) -> notification_pb2.PersonRecord:
        person = await self._commands.put_person(to_raw(request.person))
        return notification_pb2.PersonRecord(person=to_struct(dump_person(person)))

    async def PutSubscription(
        self, request: notification_pb2.PutSubscriptionRequest, context: Context
    ) -> notification_pb2.SubscriptionRecord:
        subscription = await self._commands.put_subscription(to_raw(request.subscription))
        return notification_pb2.SubscriptionRecord(
            subscription=to_struct(dump_subscription(subscription))
        )

    async def ListDeliveries(
        self, request: notification_pb2.ListDeliveriesRequest, context: Context
    ) -> notification_pb2.ListDeliveriesResponse:
        size = min(request.page_size or 50, MAX_PAGE_SIZE)
        docs = await self._commands.deliveries(
            request.ticket_id, request.recipient, request.status, size
        )
        return notification_pb2.ListDeliveriesResponse(
            deliveries=[delivery_to_proto(d) for d in docs]
        )

    async def PutTemplate(
        self, request: notification_pb2.PutTemplateRequest, context: Context
    ) -> notification_pb2.TemplateRecord:
        template = await self._commands.put_template(to_raw(request.template))
        return notification_pb2.TemplateRecord(template=to_struct(dump_template(template)))

    async def PreviewTemplate(
        self, request: notification_pb2.PreviewTemplateRequest, context: Context
    ) -> notification_pb2.RenderedMessage:
        rendered = await self._commands.preview(request.key, request.language)
        return notification_pb2.RenderedMessage(
            subject=rendered.subject, text=rendered.text, html=rendered.html
        )

    async def TestSend(
        self, request: notification_pb2.TestSendRequest, context: Context
    ) -> notification_pb2.RenderedMessage:
        rendered = await self._commands.test_send(
            request.key, request.language, request.channel, request.address
        )
        return notification_pb2.RenderedMessage(
            subject=rendered.subject, text=rendered.text, html=rendered.html
        )

    async def ReplayDelivery(
        self, request: notification_pb2.ReplayDeliveryRequest, context: Context
    ) -> notification_pb2.Delivery:
        return delivery_to_proto(await self._commands.replay(request.id))
