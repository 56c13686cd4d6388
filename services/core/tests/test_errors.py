"""Refusals mapped to google.rpc.Status: codes, messages and BadRequest details."""

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status

from helpdesk.core.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    FieldViolation,
    HelpdeskError,
    InvalidArgument,
    NotFound,
    Unavailable,
    to_status,
)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (HelpdeskError("odd"), code_pb2.UNKNOWN),
        (NotFound("no ticket HD-7"), code_pb2.NOT_FOUND),
        (AlreadyExists("HD-7 exists"), code_pb2.ALREADY_EXISTS),
        (FailedPrecondition("ticket is closed"), code_pb2.FAILED_PRECONDITION),
        (Aborted("version 3 is stale"), code_pb2.ABORTED),
        (Unavailable("MongoDB away"), code_pb2.UNAVAILABLE),
    ],
)
def test_code_and_message(error: HelpdeskError, code: int) -> None:
    status = to_status(error)

    assert status.code == code
    assert status.message == error.message == str(error)
    assert list(status.details) == []
    # grpcio-status accepts it and agrees on the code.
    assert rpc_status.to_status(status).code == error.code


def test_invalid_argument_message_names_each_field() -> None:
    error = InvalidArgument(
        [FieldViolation("subject", "is required"), FieldViolation("tags[1]", "bad tag")]
    )
    assert error.message == "invalid request: subject: is required; tags[1]: bad tag"
    assert error.code is grpc.StatusCode.INVALID_ARGUMENT


def test_invalid_argument_keeps_its_own_copy_of_the_violations() -> None:
    violations = [FieldViolation("subject", "is required")]
    error = InvalidArgument(violations)
    violations.append(FieldViolation("description", "is required"))

    assert error.violations == (FieldViolation("subject", "is required"),)


def test_invalid_argument_details_unpack_to_bad_request_in_order() -> None:
    violations = [
        FieldViolation("subject", "is required"),
        FieldViolation("requester.email", "is not an e-mail address: 'ann'"),
        FieldViolation("tags[3]", "must be 1-50 letters"),
    ]

    status = to_status(InvalidArgument(violations))

    assert status.code == code_pb2.INVALID_ARGUMENT
    assert status.message.startswith("invalid request: subject: is required; ")
    assert len(status.details) == 1
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        (v.field, v.description) for v in violations
    ]
    assert rpc_status.to_status(status).code is grpc.StatusCode.INVALID_ARGUMENT
