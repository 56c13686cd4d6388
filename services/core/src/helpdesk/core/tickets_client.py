"""The client other services use to ask intake, the only writer of tickets, for changes.

Every call has a deadline; intake's refusals come back as the same HelpdeskError kinds
the services raise themselves (decoded from the gRPC status), so a caller handles "the
ticket is closed" (FailedPrecondition) apart from "intake is away" (Unavailable).
"""

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.protobuf.field_mask_pb2 import FieldMask

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.tickets.v1 import tickets_pb2, tickets_pb2_grpc
from helpdesk.core.errors import (
    Aborted,
    FailedPrecondition,
    FieldViolation,
    HelpdeskError,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)

if TYPE_CHECKING:
    # The asyncio flavour of the stub is typed in the generated .pyi only.
    from helpdesk.api.tickets.v1.tickets_pb2_grpc import TicketServiceAsyncStub

Reply = TypeVar("Reply")

# Codes that mean "try again later": the caller's message stays unacknowledged.
_TRANSIENT = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
}
_REFUSALS: dict[grpc.StatusCode, type[HelpdeskError]] = {
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.ABORTED: Aborted,
}


def _refusal(error: grpc.aio.AioRpcError) -> HelpdeskError:
    code, text = error.code(), error.details() or ""
    if code in _TRANSIENT:
        return Unavailable(f"intake: {code.name}: {text}")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument([FieldViolation("intake", text)])
    return _REFUSALS.get(code, Unavailable)(f"intake: {text}")


class TicketsClient:
    """Intake's TicketService, as the system actor of the calling service."""

    def __init__(self, target: str, *, actor_id: str, deadline_seconds: float = 5.0) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        self._stub: TicketServiceAsyncStub = tickets_pb2_grpc.TicketServiceStub(self._channel)
        self._actor = common_pb2.Actor(id=actor_id, role=common_pb2.ACTOR_ROLE_SYSTEM)
        self._deadline = deadline_seconds

    async def close(self) -> None:
        await self._channel.close()

    async def get(self, ticket_id: str) -> tickets_pb2.Ticket:
        return await self._call(self._stub.GetTicket, tickets_pb2.GetTicketRequest(id=ticket_id))

    async def history(self, ticket_id: str) -> tickets_pb2.GetTicketHistoryResponse:
        """The ticket's history entries and comments."""
        request = tickets_pb2.GetTicketHistoryRequest(ticket_id=ticket_id)
        return await self._call(self._stub.GetTicketHistory, request)

    async def assign(
        self, ticket_id: str, *, team: str, tier: str, agent_id: str, key: str, reason: str
    ) -> tickets_pb2.Ticket:
        """Team, tier and agent; a repeated key changes nothing (intake remembers it)."""
        request = tickets_pb2.AssignTicketRequest(
            ticket_id=ticket_id,
            team=team,
            tier=tier,
            agent_id=agent_id,
            idempotency_key=key,
            reason=reason[:500],
            actor=self._actor,
        )
        return await self._call(self._stub.AssignTicket, request)

    async def update(
        self, ticket_id: str, ticket: tickets_pb2.Ticket, fields: Iterable[str]
    ) -> tickets_pb2.Ticket:
        """Changes the named fields (status, priority, tags, ...) to the given values."""
        request = tickets_pb2.UpdateTicketRequest(
            id=ticket_id,
            ticket=ticket,
            update_mask=FieldMask(paths=list(fields)),
            actor=self._actor,
        )
        return await self._call(self._stub.UpdateTicket, request)

    async def comment(
        self, ticket_id: str, body: str, *, internal: bool, key: str
    ) -> tickets_pb2.AddCommentResponse:
        request = tickets_pb2.AddCommentRequest(
            ticket_id=ticket_id,
            author=self._actor,
            body=body,
            internal=internal,
            idempotency_key=key,
        )
        return await self._call(self._stub.AddComment, request)

    async def _call(self, method: Callable[..., Awaitable[Reply]], request: Any) -> Reply:
        try:
            return await method(request, timeout=self._deadline)
        except grpc.aio.AioRpcError as error:
            raise _refusal(error) from error
