"""Intake over HTTP/JSON: the ticket API for web forms, portals and simple integrations,
and the Prometheus Alertmanager webhook.

FastAPI, served by uvicorn inside the service's own event loop beside gRPC. Thin, as the
gRPC servicer is: JSON in, the domain decides (the same `draft_from_json` as the Kafka
intake topic), commands, JSON out. Refusals are mapped to HTTP once, here, with the same
message and field violations gRPC gives. `python -m helpdesk.intake.http_api` prints the
OpenAPI document (committed as services/intake/openapi.json).
"""

import asyncio
import contextlib
import hmac
import json
import math
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Annotated, Any

import uvicorn
from fastapi import Depends, FastAPI, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.trace import TracerProvider
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema
from pymongo.errors import ConnectionFailure
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from helpdesk.core.errors import (
    TRANSIENT_ERRORS,
    FailedPrecondition,
    FieldViolation,
    HelpdeskError,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from helpdesk.core.grpc_server import HealthCheck
from helpdesk.core.logging import get_logger
from helpdesk.core.metrics import HTTP_HANDLED, HTTP_HANDLING_SECONDS
from helpdesk.core.mongo import DocumentLocks, store_precision
from helpdesk.intake import alertmanager, chat, domain, lifecycle
from helpdesk.intake.alertmanager import AlertRules, Outcome
from helpdesk.intake.commands import TicketCommands
from helpdesk.intake.conversations import ChatOutcome, ChatResult, ConversationIntake
from helpdesk.intake.mail import DEFAULT_MAX_MESSAGE_BYTES
from helpdesk.intake.mailbox import MailOutcome, MailResult, accept_raw_message
from helpdesk.intake.metrics import ALERTS_RECEIVED

log = get_logger(__name__)

API_TITLE = "Help desk intake"
API_VERSION = "v1"
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
# The field a violation names when the request body as a whole is wrong (as the domain
# names a JSON document that is not an object).
WHOLE_BODY = "$"
# A readiness probe waits this long for each dependency.
READY_TIMEOUT_SECONDS = 5.0

MAIL_INBOUND_PATH = "/v1/mail/inbound"


@dataclass(frozen=True)
class ChatSecrets:
    """What proves a chat webhook comes from the platform; empty accepts any caller."""

    telegram: str = ""
    slack: str = ""


@dataclass(frozen=True)
class MailPiping:
    """Raw RFC 822 messages handed over by an MTA (POST /v1/mail/inbound)."""

    token: str = ""
    number_prefix: str = "HD"
    own_addresses: tuple[str, ...] = ()
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES


# ---- The JSON shapes. Requests that the domain checks are documented here, not validated
# here (the domain names every bad field); responses are built from the domain.


class RequesterRequest(BaseModel):
    email: str = Field(description="required, an e-mail address (stored lower-case)")
    name: str | None = Field(None, max_length=domain.MAX_NAME)
    organization: str | None = Field(None, max_length=domain.MAX_NAME)
    language: str | None = Field(None, description="a language tag: en, ru, pt-BR")


class TicketRequest(BaseModel):
    """A request to open a ticket: the same JSON as the Kafka intake topic's."""

    request_id: str | None = Field(
        None,
        max_length=domain.MAX_REQUEST_ID,
        description="idempotency key (or the Idempotency-Key header): a replay returns "
        "the ticket the first request opened",
    )
    subject: str = Field(max_length=domain.MAX_SUBJECT)
    description: str = Field(max_length=domain.MAX_DESCRIPTION)
    requester: RequesterRequest
    priority: domain.Priority | None = Field(None, description="default normal")
    category: domain.Category | None = Field(None, description="default question")
    channel: domain.Channel | None = Field(None, description="default api")
    tags: list[str] | None = Field(
        None,
        max_length=domain.MAX_TAGS,
        description="letters, digits, - _ . : /; stored lower-case, deduplicated",
    )
    custom_fields: dict[str, str] | None = Field(
        None,
        description=f"at most {domain.MAX_CUSTOM_FIELDS}; names ^[a-z][a-z0-9_]{{0,63}}$, "
        f"values at most {domain.MAX_CUSTOM_VALUE} characters",
    )


class _Strict(BaseModel):
    # Types are checked as sent (no "true" for true), unknown fields are refused (a
    # misspelt "internal" must not publish a note); the domain checks the values.
    model_config = ConfigDict(strict=True, extra="forbid")


class ActorRequest(_Strict):
    id: str
    # The role by its value ("agent"); strict mode would want an enum instance.
    role: Annotated[lifecycle.Role, Field(strict=False)]


class AttachmentRequest(_Strict):
    name: str
    content_type: str
    size_bytes: int = 0
    url: str = Field(description="where the file is kept: attachments are by reference")


class CommentRequest(_Strict):
    author: ActorRequest
    body: str
    internal: bool = Field(False, description="an internal note, not shown to the requester")
    attachments: list[AttachmentRequest] = Field(default_factory=list)


class SolvedRequest(_Strict):
    actor: ActorRequest = Field(description="the ticket's requester: role requester, id e-mail")
    article_id: str = Field(description="the suggested article that solved the problem")


class RatingRequest(_Strict):
    actor: ActorRequest = Field(description="the ticket's requester: role requester, id e-mail")
    score: int = Field(description="1 (bad) to 5 (good)")
    comment: str = ""


class Requester(BaseModel):
    email: str
    name: str
    organization: str
    language: str


class Rating(BaseModel):
    score: int
    comment: str
    rated_at: datetime


class TicketLink(BaseModel):
    kind: str
    ticket_number: str
    ticket_id: str


class ArticleSuggestion(BaseModel):
    article_id: str
    title: str
    score: float


class Ticket(BaseModel):
    id: str
    number: str
    request_id: str
    subject: str
    description: str
    requester: Requester
    priority: domain.Priority
    category: domain.Category
    channel: domain.Channel
    status: domain.Status
    tags: list[str]
    custom_fields: dict[str, str]
    created_at: datetime
    updated_at: datetime
    version: int
    team: str
    tier: str
    assignee_id: str
    first_response_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    reopen_count: int
    rating: Rating | None
    review_required: bool
    merged_into: str
    links: list[TicketLink]
    sla_state: str = Field(description='"", "at_risk" or "breached", as the SLA service reports')
    suggestions: list[ArticleSuggestion] = Field(
        description="knowledge-base articles suggested when the ticket was filed, best first"
    )
    solved_by_article_id: str = Field(
        description="the article the requester said solved it (closed as self-solved)"
    )


class Actor(BaseModel):
    id: str
    role: lifecycle.Role


class Attachment(BaseModel):
    name: str
    content_type: str
    size_bytes: int
    url: str


class Comment(BaseModel):
    id: str
    author: Actor
    body: str
    internal: bool
    attachments: list[Attachment]
    created_at: datetime


class CommentAdded(BaseModel):
    ticket: Ticket
    comment: Comment


class FieldChange(BaseModel):
    field: str
    old_value: str
    new_value: str


class HistoryEntry(BaseModel):
    at: datetime
    actor: Actor
    action: str
    changes: list[FieldChange]
    event_id: str
    version: int
    reason: str = Field("", description="why, when the change says (e.g. routing rules)")


class TicketHistory(BaseModel):
    entries: list[HistoryEntry]
    comments: list[Comment]


class AlertmanagerAlert(BaseModel):
    status: str = Field(description="firing or resolved")
    labels: dict[str, str]
    annotations: dict[str, str] | None = None
    startsAt: str | None = None
    endsAt: str | None = None
    generatorURL: str | None = None
    fingerprint: str = Field(description="one ticket per fingerprint")


class AlertmanagerNotification(BaseModel):
    """Alertmanager's webhook payload, version 4."""

    version: str | None = Field(None, description="4")
    groupKey: str | None = None
    truncatedAlerts: int | None = None
    status: str | None = None
    receiver: str | None = None
    groupLabels: dict[str, str] | None = None
    commonLabels: dict[str, str] | None = None
    commonAnnotations: dict[str, str] | None = None
    externalURL: str | None = None
    alerts: list[AlertmanagerAlert]


class AlertResult(BaseModel):
    fingerprint: str
    outcome: Outcome
    ticket_id: str
    ticket_number: str


class AlertmanagerResult(BaseModel):
    alerts: list[AlertResult]


class ChatReceived(BaseModel):
    outcome: ChatOutcome
    reason: str = Field(description="why a message was ignored")
    ticket_id: str
    ticket_number: str


class SlackChallenge(BaseModel):
    challenge: str


class MailReceived(BaseModel):
    outcome: MailOutcome
    reason: str = Field(description="why a message was ignored")
    message_id: str
    ticket_id: str
    ticket_number: str


class ErrorFieldViolation(BaseModel):
    field: str
    description: str


class ErrorDetail(BaseModel):
    code: str = Field(description="the gRPC status name: INVALID_ARGUMENT, NOT_FOUND, ...")
    message: str
    field_violations: list[ErrorFieldViolation] = Field(default_factory=list)


class ErrorBody(BaseModel):
    error: ErrorDetail


# Documented request bodies that the handlers read themselves (the domain validates them).
_DOCUMENTED_BODIES: tuple[type[BaseModel], ...] = (TicketRequest, AlertmanagerNotification)


def ticket_json(ticket: domain.Ticket) -> Ticket:
    r = ticket.requester
    return Ticket(
        id=ticket.id,
        number=ticket.number,
        request_id=ticket.request_id,
        subject=ticket.subject,
        description=ticket.description,
        requester=Requester(
            email=r.email, name=r.name, organization=r.organization, language=r.language
        ),
        priority=ticket.priority,
        category=ticket.category,
        channel=ticket.channel,
        status=ticket.status,
        tags=list(ticket.tags),
        custom_fields=dict(ticket.custom_fields),
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        version=ticket.version,
        team=ticket.team,
        tier=ticket.tier,
        assignee_id=ticket.assignee_id,
        first_response_at=ticket.first_response_at,
        resolved_at=ticket.resolved_at,
        closed_at=ticket.closed_at,
        reopen_count=ticket.reopen_count,
        rating=(
            Rating(
                score=ticket.rating.score,
                comment=ticket.rating.comment,
                rated_at=ticket.rating.rated_at,
            )
            if ticket.rating
            else None
        ),
        review_required=ticket.review_required,
        merged_into=ticket.merged_into,
        links=[
            TicketLink(kind=k.kind, ticket_number=k.ticket_number, ticket_id=k.ticket_id)
            for k in ticket.links
        ],
        sla_state=ticket.sla_state,
        suggestions=[
            ArticleSuggestion(article_id=s.article_id, title=s.title, score=s.score)
            for s in ticket.suggestions
        ],
        solved_by_article_id=ticket.solved_by_article_id,
    )


def comment_json(comment: lifecycle.Comment) -> Comment:
    return Comment(
        id=comment.id,
        author=Actor(id=comment.author.id, role=comment.author.role),
        body=comment.body,
        internal=comment.internal,
        attachments=[
            Attachment(name=a.name, content_type=a.content_type, size_bytes=a.size_bytes, url=a.url)
            for a in comment.attachments
        ],
        created_at=comment.created_at,
    )


def history_entry_json(entry: lifecycle.HistoryEntry) -> HistoryEntry:
    return HistoryEntry(
        at=entry.at,
        actor=Actor(id=entry.actor.id, role=entry.actor.role),
        action=entry.action,
        changes=[
            FieldChange(field=c.field, old_value=c.old, new_value=c.new) for c in entry.changes
        ],
        event_id=entry.event_id,
        version=entry.version,
        reason=entry.reason,
    )


def _header_key(value: str | None) -> str:
    """An Idempotency-Key header's value, refused by the header's name when too long."""
    key = (value or "").strip()
    if len(key) > lifecycle.MAX_IDEMPOTENCY_KEY:
        raise InvalidArgument(
            [
                FieldViolation(
                    "Idempotency-Key", f"must be at most {lifecycle.MAX_IDEMPOTENCY_KEY} characters"
                )
            ]
        )
    return key


def _actor(actor: ActorRequest) -> lifecycle.Actor:
    return lifecycle.Actor(id=actor.id.strip(), role=actor.role)


# ---- Refusals: one mapping from the domain's errors (and the framework's) to HTTP.

_HTTP_STATUS = {
    "INVALID_ARGUMENT": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "FAILED_PRECONDITION": 409,
    "ABORTED": 409,
    "UNAVAILABLE": 503,
}
# The framework's own refusals (unknown route, wrong method, ...), named like the others.
_CODE_OF_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    503: "UNAVAILABLE",
}


def error_response(
    status: int,
    code: str,
    message: str,
    violations: Sequence[FieldViolation] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorBody(
        error=ErrorDetail(
            code=code,
            message=message,
            field_violations=[
                ErrorFieldViolation(field=v.field, description=v.description) for v in violations
            ],
        )
    )
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def _refusal(error: HelpdeskError) -> JSONResponse:
    code = error.code.name
    violations = error.violations if isinstance(error, InvalidArgument) else ()
    return error_response(_HTTP_STATUS.get(code, 500), code, error.message, violations)


def _field_path(loc: Sequence[int | str]) -> str:
    """`attachments[0].url` for pydantic's ("body", "attachments", 0, "url")."""
    where, *rest = loc
    if where == "header":
        return "-".join(part.capitalize() for part in str(rest[0]).split("-"))
    path = ""
    for part in rest:
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path or WHOLE_BODY


def _violation(error: Mapping[str, Any]) -> FieldViolation:
    kind = error.get("type", "")
    if kind == "json_invalid":
        detail = (error.get("ctx") or {}).get("error", "")
        return FieldViolation(WHOLE_BODY, f"is not valid JSON: {detail}".rstrip(": "))
    field = _field_path(error["loc"])
    if kind == "missing":
        return FieldViolation(field, "is required")
    if kind == "extra_forbidden":
        return FieldViolation(field, "is not a known field")
    # Pydantic's "Input should be a valid string" in the domain's words: "must be ...".
    message = str(error.get("msg", "is not valid"))
    return FieldViolation(field, message.replace("Input should be", "must be", 1))


class BodyTooLarge(HTTPException):
    """The request body is over the limit (raised while it is read)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")
        self.limit = limit


def _too_large(limit: int) -> JSONResponse:
    return error_response(
        413,
        "PAYLOAD_TOO_LARGE",
        f"the request body is larger than {limit} bytes",
        [FieldViolation(WHOLE_BODY, f"must be at most {limit} bytes")],
    )


async def _on_refusal(request: Request, error: Exception) -> Response:
    assert isinstance(error, HelpdeskError)
    return _refusal(error)


async def _on_validation(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    return _refusal(InvalidArgument([_violation(e) for e in error.errors()]))


async def _on_http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if isinstance(error, BodyTooLarge):
        return _too_large(error.limit)
    code = _CODE_OF_STATUS.get(error.status_code, f"HTTP_{error.status_code}")
    return error_response(error.status_code, code, str(error.detail), headers=error.headers)


async def _on_store_down(request: Request, error: Exception) -> Response:
    log.warning("http_store_unavailable", path=request.url.path, error=repr(error))
    return error_response(503, "UNAVAILABLE", "the ticket store does not answer; retry")


async def _on_failure(request: Request, error: Exception) -> Response:
    # uvicorn logs the traceback itself (Starlette raises the error again after answering).
    log.error("http_failed", path=request.url.path, error=repr(error))
    return error_response(500, "INTERNAL", "internal error")


# ---- Middleware: a body limit and RED metrics, as plain ASGI.


class _BodyLimit:
    """Refuses bodies over the limit with 413: at once when Content-Length says so, else
    as soon as the bytes read pass it (chunked uploads)."""

    def __init__(
        self, app: ASGIApp, max_bytes: int, path_limits: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Routes whose bodies are larger by nature (whole e-mail messages).
        self.path_limits = dict(path_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.path_limits.get(scope["path"], self.max_bytes)
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited, send)


class _Measure:
    """Counts and times each request by route template (not the raw path: ids would make a
    label per ticket), and logs refusals as the gRPC interceptor does."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            HTTP_HANDLED.labels(method, route, str(status)).inc()
            HTTP_HANDLING_SECONDS.labels(method, route).observe(time.perf_counter() - started)
            if status >= 400:
                log.info("http_refused", method=method, route=route, status=status)


# ---- Alertmanager: carries out what alertmanager.plan_for decides.


@dataclass(frozen=True)
class _AlertDone:
    ticket: domain.Ticket | None
    outcome: Outcome


class AlertIntake:
    """Turns Alertmanager notifications into ticket commands, one alert at a time."""

    def __init__(self, commands: TicketCommands, rules: AlertRules) -> None:
        self._commands = commands
        self._rules = rules
        # Alertmanager replicas send the same notification at once: one at a time per
        # fingerprint in this process, so a change is noted once.
        self._locks = DocumentLocks()
        self._actor = lifecycle.Actor(alertmanager.ACTOR_ID, lifecycle.Role.SYSTEM)

    async def receive(self, notification: alertmanager.Notification) -> list[AlertResult]:
        results = []
        for alert in notification.alerts:
            async with self._locks.hold(alert.fingerprint):
                done = await self._one(alert, notification)
            ALERTS_RECEIVED.labels(done.outcome.value).inc()
            results.append(
                AlertResult(
                    fingerprint=alert.fingerprint,
                    outcome=done.outcome,
                    ticket_id=done.ticket.id if done.ticket else "",
                    ticket_number=done.ticket.number if done.ticket else "",
                )
            )
        return results

    async def _one(
        self, alert: alertmanager.Alert, notification: alertmanager.Notification
    ) -> _AlertDone:
        started = store_precision(datetime.now(UTC))
        ticket = await self._ticket(alert, notification, alertmanager.request_id(alert))
        if ticket is None:
            return _AlertDone(None, Outcome.IGNORED)
        plan = alertmanager.plan_for(ticket, alert, self._rules)
        if plan.follow_up:
            key = alertmanager.follow_up_request_id(alert)
            ticket = await self._ticket(alert, notification, key)
            if ticket is None:
                return _AlertDone(None, Outcome.IGNORED)
            plan = alertmanager.plan_for(ticket, alert, self._rules)
        ticket = await self._apply(ticket, plan)
        created = ticket.created_at >= started
        return _AlertDone(ticket, Outcome.CREATED if created else plan.outcome)

    async def _ticket(
        self, alert: alertmanager.Alert, notification: alertmanager.Notification, key: str
    ) -> domain.Ticket | None:
        """The alert's ticket under `key`: a firing opens it, a resolved one only finds it."""
        if alert.status == alertmanager.FIRING:
            draft = alertmanager.ticket_draft(alert, self._rules, notification, key=key)
            return await self._commands.create(draft, default_channel=domain.Channel.MONITORING)
        try:
            return await self._commands.get(domain.ticket_id_for(key))
        except NotFound:
            log.info("alert_resolved_without_ticket", fingerprint=alert.fingerprint)
            return None

    async def _apply(self, ticket: domain.Ticket, plan: alertmanager.Plan) -> domain.Ticket:
        # The note first: a crash before the state is recorded repeats the note on the next
        # notification rather than losing it.
        try:
            if plan.note:
                ticket, _, _ = await self._commands.comment(
                    ticket.id, self._actor, plan.note, internal=True, attachments=[]
                )
            mask = [
                name
                for name, wanted in (
                    ("status", plan.status),
                    ("custom_fields", plan.custom_fields is not None),
                    ("team", plan.team),
                )
                if wanted
            ]
            if mask:
                patch = lifecycle.TicketPatch(
                    status=plan.status, custom_fields=plan.custom_fields or {}, team=plan.team
                )
                ticket = await self._commands.update(ticket.id, patch, mask, self._actor)
        except FailedPrecondition as error:
            # Closed meanwhile, or a person's decision stands (e.g. a bad rating under review).
            log.info("alert_change_refused", ticket=ticket.number, reason=error.message)
        return ticket


# ---- The application.


@dataclass(frozen=True)
class _Context:
    commands: TicketCommands
    alerts: AlertIntake
    chats: ConversationIntake
    checks: Mapping[str, HealthCheck]
    alertmanager_token: str
    chat_secrets: ChatSecrets
    mail: MailPiping


def _context(request: Request) -> _Context:
    context: _Context = request.app.state.intake
    return context


Context = Annotated[_Context, Depends(_context)]


async def _json_body(request: Request) -> Any:
    body = await request.body()
    try:
        return json.loads(body)
    except UnicodeDecodeError as error:
        raise InvalidArgument([FieldViolation(WHOLE_BODY, f"is not UTF-8: {error}")]) from None
    except (ValueError, RecursionError) as error:
        # JSONDecodeError, and the parser's limits (huge numbers, deep nesting).
        raise InvalidArgument([FieldViolation(WHOLE_BODY, f"is not valid JSON: {error}")]) from None


def _check_bearer(token: str, authorization: str | None) -> None:
    """401 unless the caller sends `Authorization: Bearer <token>` (no token: anyone)."""
    if token and not hmac.compare_digest(
        (authorization or "").encode(), f"Bearer {token}".encode()
    ):
        raise HTTPException(
            401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )


@contextlib.asynccontextmanager
async def _retry_later() -> AsyncIterator[None]:
    """A passing outage as 503, so that the sender (Telegram, Slack, an MTA) tries again."""
    try:
        yield
    except TRANSIENT_ERRORS as error:
        log.warning("http_retry_later", error=repr(error))
        raise Unavailable("the ticket store is busy or away; retry") from error


def _chat_json(result: ChatResult) -> ChatReceived:
    return ChatReceived(
        outcome=result.outcome,
        reason=result.reason,
        ticket_id=result.ticket_id,
        ticket_number=result.ticket_number,
    )


def _body_doc(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a body a handler reads itself: the model's schema, by reference."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    }


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in (
        (400, "invalid request: every bad field is named in field_violations"),
        (404, "no such ticket"),
        (409, "the ticket's state refuses it (FAILED_PRECONDITION) or it changed (ABORTED)"),
        (413, "request body too large"),
        (503, "the ticket store does not answer; retry"),
    )
}


def create_app(
    commands: TicketCommands | None = None,
    *,
    alert_rules: AlertRules | None = None,
    checks: Mapping[str, HealthCheck] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    alertmanager_token: str = "",
    chat_secrets: ChatSecrets | None = None,
    mail: MailPiping | None = None,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """The HTTP application; without commands it only describes itself (OpenAPI)."""
    app = FastAPI(
        title=API_TITLE,
        version=API_VERSION,
        description="Tickets over HTTP/JSON; the Prometheus Alertmanager, Telegram and Slack "
        "webhooks; raw e-mail from an MTA. "
        'Errors: `{"error": {"code", "message", "field_violations"}}`.',
        redoc_url=None,
    )
    mail = mail or MailPiping()
    if commands is not None:
        app.state.intake = _Context(
            commands=commands,
            alerts=AlertIntake(commands, alert_rules or AlertRules()),
            chats=ConversationIntake(commands),
            checks=checks or {},
            alertmanager_token=alertmanager_token,
            chat_secrets=chat_secrets or ChatSecrets(),
            mail=mail,
        )
    app.add_exception_handler(HelpdeskError, _on_refusal)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(ConnectionFailure, _on_store_down)
    app.add_exception_handler(Exception, _on_failure)
    app.add_middleware(
        _BodyLimit,
        max_bytes=max_body_bytes,
        path_limits={MAIL_INBOUND_PATH: max(mail.max_message_bytes, max_body_bytes)},
    )
    app.add_middleware(_Measure)
    _routes(app)
    _describe(app)
    if tracer_provider is not None:
        # One server span per request; the ASGI receive/send spans would only add noise.
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=tracer_provider,
            excluded_urls="healthz,readyz",
            exclude_spans=["receive", "send"],
        )
    return app


def _routes(app: FastAPI) -> None:
    @app.post(
        "/v1/tickets",
        status_code=201,
        response_description="the ticket opened",
        response_model=Ticket,
        tags=["tickets"],
        summary="Open a ticket",
        description="201 with the new ticket; 200 with the existing one when the request id "
        "was seen before, or when the request repeats an open ticket's problem (same "
        "requester and subject within the dedup window: it is added to that ticket).",
        openapi_extra=_body_doc(TicketRequest),
        responses={200: {"model": Ticket, "description": "the ticket already opened"}, **_ERRORS},
    )
    async def create_ticket(
        request: Request,
        response: Response,
        context: Context,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> Ticket:
        draft = domain.draft_from_json(await _json_body(request))
        key = (idempotency_key or "").strip()
        if key:
            if draft.request_id.strip() and draft.request_id.strip() != key:
                raise InvalidArgument(
                    [FieldViolation("request_id", "differs from the Idempotency-Key header")]
                )
            draft = replace(draft, request_id=key)
        started = store_precision(datetime.now(UTC))
        try:
            ticket = await context.commands.create(draft, default_channel=domain.Channel.API)
        except InvalidArgument as error:
            if not key:
                raise
            raise InvalidArgument(
                [
                    replace(v, field="Idempotency-Key") if v.field == "request_id" else v
                    for v in error.violations
                ]
            ) from None
        if ticket.created_at < started:
            response.status_code = 200
        response.headers["Location"] = f"/v1/tickets/{ticket.id}"
        return ticket_json(ticket)

    @app.get(
        "/v1/tickets/{id_or_number}",
        response_model=Ticket,
        tags=["tickets"],
        summary="A ticket by id or number (HD-1042)",
        responses=_ERRORS,
    )
    async def get_ticket(id_or_number: str, context: Context) -> Ticket:
        return ticket_json(await context.commands.get(id_or_number))

    @app.post(
        "/v1/tickets/{id_or_number}/comments",
        status_code=201,
        response_description="the comment and the ticket after it",
        response_model=CommentAdded,
        tags=["tickets"],
        summary="Add a public reply or an internal note",
        description="201 with the comment; 200 with the comment added before when the "
        "Idempotency-Key header was seen on this ticket (a retry adds nothing).",
        responses={200: {"model": CommentAdded, "description": "added before"}, **_ERRORS},
    )
    async def add_comment(
        id_or_number: str,
        comment: CommentRequest,
        response: Response,
        context: Context,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
    ) -> CommentAdded:
        ticket, added, replayed = await context.commands.comment(
            id_or_number,
            _actor(comment.author),
            comment.body,
            comment.internal,
            [
                lifecycle.Attachment(a.name, a.content_type, a.size_bytes, a.url)
                for a in comment.attachments
            ],
            _header_key(idempotency_key),
        )
        if replayed:
            response.status_code = 200
        return CommentAdded(ticket=ticket_json(ticket), comment=comment_json(added))

    @app.post(
        "/v1/tickets/{id_or_number}/rating",
        response_model=Ticket,
        tags=["tickets"],
        summary="Rate a resolved ticket (CSAT), by its requester",
        responses={403: {"model": ErrorBody, "description": "not the requester"}, **_ERRORS},
    )
    async def rate_ticket(id_or_number: str, rating: RatingRequest, context: Context) -> Ticket:
        ticket = await context.commands.rate(
            id_or_number, _actor(rating.actor), rating.score, rating.comment
        )
        return ticket_json(ticket)

    @app.post(
        "/v1/tickets/{id_or_number}/self-solved",
        response_model=Ticket,
        tags=["tickets"],
        summary="Close a ticket as solved by a suggested article, by its requester",
        responses={403: {"model": ErrorBody, "description": "not the requester"}, **_ERRORS},
    )
    async def solve_with_article(
        id_or_number: str, solved: SolvedRequest, context: Context
    ) -> Ticket:
        ticket = await context.commands.solve_with_article(
            id_or_number, _actor(solved.actor), solved.article_id
        )
        return ticket_json(ticket)

    @app.get(
        "/v1/tickets/{id_or_number}/history",
        response_model=TicketHistory,
        tags=["tickets"],
        summary="Every change (who, what, when, old and new) and the comments",
        responses=_ERRORS,
    )
    async def ticket_history(id_or_number: str, context: Context) -> TicketHistory:
        entries, comments = await context.commands.history(id_or_number)
        return TicketHistory(
            entries=[history_entry_json(e) for e in entries],
            comments=[comment_json(c) for c in comments],
        )

    @app.post(
        "/v1/webhooks/alertmanager",
        response_model=AlertmanagerResult,
        tags=["webhooks"],
        summary="Prometheus Alertmanager webhook (payload version 4)",
        description="One ticket per alert fingerprint. A repeated notification changes "
        "nothing unless the alert changed (start time, annotations, status): then a system "
        "note is added. A resolved alert resolves its ticket (configurable).",
        openapi_extra=_body_doc(AlertmanagerNotification),
        responses={401: {"model": ErrorBody, "description": "wrong bearer token"}, **_ERRORS},
    )
    async def alertmanager_webhook(
        request: Request,
        context: Context,
        authorization: Annotated[str | None, Header()] = None,
    ) -> AlertmanagerResult:
        _check_bearer(context.alertmanager_token, authorization)
        notification = alertmanager.parse_notification(await _json_body(request))
        return AlertmanagerResult(alerts=await context.alerts.receive(notification))

    @app.post(
        "/v1/webhooks/telegram",
        response_model=ChatReceived,
        tags=["webhooks"],
        summary="Telegram Bot API webhook (an Update)",
        description="A private or group chat is a conversation: its first message opens a "
        "ticket, later ones are comments on it (others' messages in a group are internal "
        "notes), a message after it closed opens a follow-up. Bots, edits and /start are "
        "ignored. A delivery repeated by Telegram adds nothing.",
        responses={401: {"model": ErrorBody, "description": "wrong secret token"}, **_ERRORS},
    )
    async def telegram_webhook(
        request: Request,
        context: Context,
        secret: Annotated[str | None, Header(alias="X-Telegram-Bot-Api-Secret-Token")] = None,
    ) -> ChatReceived:
        expected = context.chat_secrets.telegram
        if expected and not hmac.compare_digest((secret or "").encode(), expected.encode()):
            raise HTTPException(401, "X-Telegram-Bot-Api-Secret-Token is missing or wrong")
        message = chat.parse_telegram_update(await _json_body(request))
        async with _retry_later():
            return _chat_json(await context.chats.receive(message))

    @app.post(
        "/v1/webhooks/slack",
        response_model=ChatReceived | SlackChallenge,
        tags=["webhooks"],
        summary="Slack Events API webhook (message events)",
        description="A top-level message opens a ticket; replies in its thread are comments "
        "on it. Bot messages (the help desk's own posts too), edits and joins are ignored. "
        "With a signing secret configured, X-Slack-Signature is checked. URL verification "
        "is answered with the challenge.",
        responses={401: {"model": ErrorBody, "description": "bad signature"}, **_ERRORS},
    )
    async def slack_webhook(
        request: Request,
        context: Context,
        timestamp: Annotated[str | None, Header(alias="X-Slack-Request-Timestamp")] = None,
        signature: Annotated[str | None, Header(alias="X-Slack-Signature")] = None,
    ) -> ChatReceived | SlackChallenge:
        body = await request.body()
        if context.chat_secrets.slack:
            problem = chat.slack_signature_problem(
                context.chat_secrets.slack, timestamp or "", body, signature or "", time.time()
            )
            if problem:
                raise HTTPException(401, problem)
        parsed = chat.parse_slack_event(await _json_body(request))
        if isinstance(parsed, chat.Challenge):
            return SlackChallenge(challenge=parsed.challenge)
        async with _retry_later():
            return _chat_json(await context.chats.receive(parsed))

    @app.post(
        MAIL_INBOUND_PATH,
        response_model=MailReceived,
        tags=["mail"],
        summary="A raw RFC 822 message from an MTA (piping)",
        description="The same as a message read from the IMAP mailbox: new mail opens a "
        "ticket, a reply threads into its ticket, machine mail is ignored, a message "
        "delivered twice is added once. A message that can never be read is refused "
        "with 400 and the reason (the MTA bounces it); 503 means try again later.",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
        responses={401: {"model": ErrorBody, "description": "wrong bearer token"}, **_ERRORS},
    )
    async def mail_inbound(
        request: Request,
        context: Context,
        authorization: Annotated[str | None, Header()] = None,
    ) -> MailReceived:
        _check_bearer(context.mail.token, authorization)
        raw = await request.body()
        if not raw.strip():
            raise InvalidArgument([FieldViolation(WHOLE_BODY, "is required: a raw message")])
        async with _retry_later():
            result: MailResult = await accept_raw_message(
                context.commands,
                raw,
                number_prefix=context.mail.number_prefix,
                own_addresses=context.mail.own_addresses,
                max_bytes=context.mail.max_message_bytes,
            )
        if result.outcome == MailOutcome.REFUSED:
            raise InvalidArgument([FieldViolation(WHOLE_BODY, result.reason)])
        return MailReceived(
            outcome=result.outcome,
            reason=result.reason,
            message_id=result.message_id,
            ticket_id=result.ticket_id,
            ticket_number=result.ticket_number,
        )

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz(context: Context) -> JSONResponse:
        results = {}
        for name, check in context.checks.items():
            try:
                await asyncio.wait_for(check(), timeout=READY_TIMEOUT_SECONDS)
                results[name] = "up"
            except Exception:
                results[name] = "down"
        ready = all(v == "up" for v in results.values())
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": results},
            status_code=200 if ready else 503,
        )


def _describe(app: FastAPI) -> None:
    """OpenAPI with the bodies the handlers read themselves added to the components."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
        )
        _, defs = models_json_schema(
            [(model, "validation") for model in _DOCUMENTED_BODIES],
            ref_template="#/components/schemas/{model}",
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in defs.get("$defs", {}).items():
            components.setdefault(name, definition)
        # FastAPI documents its validation errors as 422; here they are 400 with ErrorBody.
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        schema["components"]["schemas"] = dict(sorted(components.items()))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def openapi_document() -> str:
    """The OpenAPI document as committed (services/intake/openapi.json)."""
    return json.dumps(create_app().openapi(), indent=2, ensure_ascii=False) + "\n"


# ---- The server, inside the service's event loop.


class _EmbeddedServer(uvicorn.Server):
    """uvicorn sharing the service's loop: the service owns SIGTERM and calls stop()."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    def __init__(self, app: FastAPI, *, host: str, port: int, grace: float) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            log_config=None,  # uvicorn's loggers go through the service's JSON logging
            access_log=False,  # _Measure counts and logs requests
            server_header=False,
            ws="none",
            timeout_graceful_shutdown=math.ceil(grace),
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None
        self._address = f"{host}:{port}"
        self.port = port

    async def start(self) -> None:
        """Returns once listening; fails when the address cannot be bound."""
        self._task = asyncio.create_task(self._server.serve(), name="http")
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError(f"HTTP server did not start on {self._address}")
            await asyncio.sleep(0.02)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        log.info("http_listening", address=self._address, port=self.port)

    async def stop(self) -> None:
        """Stops listening at once; requests in flight finish within the grace period."""
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task
        log.info("http_stopped")


if __name__ == "__main__":
    sys.stdout.write(openapi_document())
