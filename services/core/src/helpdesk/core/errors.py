"""Refusals as typed values, and their one mapping to gRPC status codes.

Domains raise these; the gRPC error interceptor (and the HTTP edges) turn them into
codes with `google.rpc.Status` details, so every edge says the same thing.
"""

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2
from pymongo.errors import PyMongoError


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class HelpdeskError(Exception):
    """Base of every refusal a domain can give."""

    code = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(HelpdeskError):
    """The request is malformed; each violation names the field."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, violations: list[FieldViolation]) -> None:
        fields = "; ".join(f"{v.field}: {v.description}" for v in violations)
        super().__init__(f"invalid request: {fields}")
        self.violations = tuple(violations)


class NotFound(HelpdeskError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(HelpdeskError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(HelpdeskError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDenied(HelpdeskError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Aborted(HelpdeskError):
    """A concurrent change won; the caller may re-read and retry."""

    code = grpc.StatusCode.ABORTED


class Unavailable(HelpdeskError):
    code = grpc.StatusCode.UNAVAILABLE


# What a command raises when a store or another service is away or busy: the caller tries
# again later (a Kafka message is read again, a mail stays unread, an HTTP client gets 503).
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (PyMongoError, Unavailable, Aborted)


def to_status(error: HelpdeskError) -> status_pb2.Status:
    """The `google.rpc.Status` for a refusal, with `BadRequest` details for bad fields."""
    status = status_pb2.Status(code=error.code.value[0], message=error.message)
    if isinstance(error, InvalidArgument):
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in error.violations
            ]
        )
        status.details.add().Pack(bad_request)
    return status
