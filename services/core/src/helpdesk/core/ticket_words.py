"""A published ticket's enum fields in the domain's words ("high", "service_request"), for
services that read intake's events and answer with plain strings."""

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.tickets.v1 import tickets_pb2


def _word(name: str, prefix: str) -> str:
    """PRIORITY_HIGH -> "high"; the unspecified value -> ""."""
    word = name.removeprefix(prefix).lower()
    return "" if word == "unspecified" else word


def status_of(ticket: tickets_pb2.Ticket) -> str:
    return _word(common_pb2.TicketStatus.Name(ticket.status), "TICKET_STATUS_")


def priority_of(ticket: tickets_pb2.Ticket) -> str:
    return _word(common_pb2.Priority.Name(ticket.priority), "PRIORITY_")


def category_of(ticket: tickets_pb2.Ticket) -> str:
    return _word(common_pb2.Category.Name(ticket.category), "CATEGORY_")


def channel_of(ticket: tickets_pb2.Ticket) -> str:
    return _word(common_pb2.Channel.Name(ticket.channel), "CHANNEL_")


def status_word(status: "common_pb2.TicketStatus.ValueType") -> str:
    return _word(common_pb2.TicketStatus.Name(status), "TICKET_STATUS_")
