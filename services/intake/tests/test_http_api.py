"""The HTTP edge without servers: refusals mapped once to HTTP, the framework's errors in the
same shape, the body limit, and the committed OpenAPI document kept fresh."""

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo.errors import ServerSelectionTimeoutError

from helpdesk.core.errors import (
    Aborted,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from helpdesk.intake.http_api import create_app, openapi_document

OPENAPI = Path(__file__).resolve().parents[1] / "openapi.json"
COMMENT = {"author": {"id": "agent-7", "role": "agent"}, "body": "Looking into it."}


class Refusing:
    """Ticket commands that refuse every call with the given error."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls: list[tuple[Any, ...]] = []

    async def get(self, *args: Any) -> Any:
        self.calls.append(args)
        raise self.error

    async def comment(self, *args: Any) -> Any:
        self.calls.append(args)
        raise self.error

    async def create(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(args)
        raise self.error


async def client_for(commands: Any, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(commands, **options)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as client:
        yield client


@pytest.fixture
async def refused() -> AsyncIterator[tuple[Refusing, httpx.AsyncClient]]:
    commands = Refusing(NotFound("ticket HD-9 not found"))
    async for client in client_for(commands, max_body_bytes=1000):
        yield commands, client


def test_committed_openapi_document_is_fresh() -> None:
    fresh = openapi_document()
    assert OPENAPI.read_text() == fresh, (
        "services/intake/openapi.json is stale: run "
        "`.venv/bin/python -m helpdesk.intake.http_api > services/intake/openapi.json`"
    )
    paths = json.loads(fresh)["paths"]
    assert set(paths) >= {
        "/v1/tickets",
        "/v1/tickets/{id_or_number}",
        "/v1/tickets/{id_or_number}/comments",
        "/v1/tickets/{id_or_number}/history",
        "/v1/webhooks/alertmanager",
    }
    assert "422" not in json.dumps(paths), "validation errors are documented as 400"


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (InvalidArgument([FieldViolation("body", "is required")]), 400, "INVALID_ARGUMENT"),
        (NotFound("ticket HD-9 not found"), 404, "NOT_FOUND"),
        (FailedPrecondition("ticket HD-9 is closed"), 409, "FAILED_PRECONDITION"),
        (Aborted("ticket HD-9 changed meanwhile"), 409, "ABORTED"),
        (PermissionDenied("only the requester"), 403, "PERMISSION_DENIED"),
        (Unavailable("retry"), 503, "UNAVAILABLE"),
        (ServerSelectionTimeoutError("no server"), 503, "UNAVAILABLE"),
        (RuntimeError("a bug"), 500, "INTERNAL"),
    ],
)
async def test_refusals_are_mapped_once(error: Exception, status: int, code: str) -> None:
    async for client in client_for(Refusing(error)):
        reply = await client.post("/v1/tickets/HD-9/comments", json=COMMENT)
        assert reply.status_code == status
        body = reply.json()["error"]
        assert body["code"] == code
        if isinstance(error, InvalidArgument):
            assert body["field_violations"] == [{"field": "body", "description": "is required"}]
            assert body["message"] == error.message  # what gRPC says, word for word
        if status == 500:
            assert "a bug" not in reply.text


async def test_framework_errors_name_the_fields(
    refused: tuple[Refusing, httpx.AsyncClient],
) -> None:
    commands, client = refused
    bad = {
        "author": {"id": "a", "role": "boss"},
        "body": 5,
        "internal": "yes",
        "interal": True,
        "attachments": [{"name": "a", "content_type": "text/plain", "size_bytes": "5"}],
    }
    reply = await client.post("/v1/tickets/HD-9/comments", json=bad)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    fields = {v["field"]: v["description"] for v in error["field_violations"]}
    assert fields == {
        "author.role": "must be 'requester', 'agent' or 'system'",
        "body": "must be a valid string",
        "internal": "must be a valid boolean",
        "interal": "is not a known field",
        "attachments[0].size_bytes": "must be a valid integer",
        "attachments[0].url": "is required",
    }
    assert commands.calls == [], "nothing reaches the commands"

    broken = await client.post(
        "/v1/tickets/HD-9/comments",
        content=b'{"body": ',
        headers={"content-type": "application/json"},
    )
    assert broken.status_code == 400
    assert broken.json()["error"]["field_violations"][0]["field"] == "$"

    for path in ("/v1/tickets", "/v1/webhooks/alertmanager"):
        reply = await client.post(path, content=b"{not json")
        assert reply.status_code == 400
        (violation,) = reply.json()["error"]["field_violations"]
        assert violation["field"] == "$"
        assert violation["description"].startswith("is not valid JSON")

    unknown = await client.get("/v2/nothing")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "NOT_FOUND"
    wrong_method = await client.delete("/v1/tickets/HD-9")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


async def test_oversized_bodies_are_refused(refused: tuple[Refusing, httpx.AsyncClient]) -> None:
    commands, client = refused
    declared = await client.post("/v1/tickets", content=b"x" * 1001)
    assert declared.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(30):
            yield b"x" * 50

    streamed = await client.post("/v1/tickets", content=chunks())
    assert streamed.status_code == 413
    for reply in (declared, streamed):
        error = reply.json()["error"]
        assert error["code"] == "PAYLOAD_TOO_LARGE"
        assert error["field_violations"] == [
            {"field": "$", "description": "must be at most 1000 bytes"}
        ]
    assert commands.calls == []


async def test_idempotency_key_and_request_id_must_agree(
    refused: tuple[Refusing, httpx.AsyncClient],
) -> None:
    _, client = refused
    ticket = {
        "request_id": "form-1",
        "subject": "VPN is down",
        "description": "Since 9:00.",
        "requester": {"email": "ann@example.com"},
    }
    reply = await client.post("/v1/tickets", json=ticket, headers={"Idempotency-Key": "form-2"})
    assert reply.status_code == 400
    assert reply.json()["error"]["field_violations"][0]["field"] == "request_id"


async def test_the_domain_decides_what_a_ticket_request_is() -> None:
    commands = Refusing(InvalidArgument([FieldViolation("request_id", "must be at most 128")]))
    async for client in client_for(commands):
        typed = await client.post("/v1/tickets", json={"subject": 5, "tags": "x"})
        assert typed.status_code == 400
        fields = {v["field"] for v in typed.json()["error"]["field_violations"]}
        assert fields == {"subject", "tags"}
        # A rule broken by the header is named as the header.
        ticket = {"subject": "s", "description": "d", "requester": {"email": "a@b.cd"}}
        keyed = await client.post(
            "/v1/tickets", json=ticket, headers={"Idempotency-Key": "k" * 200}
        )
        assert keyed.json()["error"]["field_violations"][0]["field"] == "Idempotency-Key"


async def test_alertmanager_webhook_wants_its_token() -> None:
    async for client in client_for(Refusing(NotFound("x")), alertmanager_token="s3cret"):
        for auth in ({}, {"Authorization": "Bearer wrong"}):
            reply = await client.post(
                "/v1/webhooks/alertmanager", json={"alerts": []}, headers=auth
            )
            assert reply.status_code == 401
            assert reply.json()["error"]["code"] == "UNAUTHENTICATED"
            assert reply.headers["www-authenticate"] == "Bearer"
        ok = await client.post(
            "/v1/webhooks/alertmanager",
            json={"version": "4", "alerts": []},
            headers={"Authorization": "Bearer s3cret"},
        )
        assert ok.status_code == 200
        assert ok.json() == {"alerts": []}


async def test_liveness_and_readiness() -> None:
    async def up() -> None:
        return None

    async def down() -> None:
        raise ConnectionError("no broker")

    async for client in client_for(Refusing(NotFound("x")), checks={"mongodb": up}):
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"mongodb": "up"}}
    async for client in client_for(Refusing(NotFound("x")), checks={"mongodb": up, "kafka": down}):
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"mongodb": "up", "kafka": "down"}
