"""Intake over HTTP/JSON on the real servers: the ticket API, the Alertmanager webhook, bad
input, and a graceful stop."""

import asyncio
import copy
import signal
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from kafka_tools import TopicWatcher, headers_of
from test_intake_grpc import TICKET_EVENTS

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.events.v1 import ticket_events_pb2
from helpdesk.api.tickets.v1 import tickets_pb2, tickets_pb2_grpc

AGENT = {"id": "agent-7", "role": "agent"}
ALERTMANAGER_EMAIL = "alertmanager@helpdesk.local"


def ticket_json(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": "Printer on floor 3 jams",
        "description": "Every second page jams since this morning.",
        "requester": {"email": "Bob@Example.com", "name": "Bob", "language": "en"},
        "priority": "high",
        "category": "incident",
        "channel": "web",
        "tags": ["printer", "Floor-3"],
        "custom_fields": {"office": "berlin"},
    }
    body.update(overrides)
    return body


@pytest.fixture
async def http(intake: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=intake.http_url, timeout=30) as client:
        yield client


def violations(reply: httpx.Response) -> dict[str, str]:
    error = reply.json()["error"]
    return {v["field"]: v["description"] for v in error["field_violations"]}


async def test_create_get_comment_and_history(infra: Any, intake: Any, http: Any) -> None:
    key = f"form-{uuid.uuid4()}"
    trace_id = uuid.uuid4().hex
    caller = {"Idempotency-Key": key, "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"}
    async with TopicWatcher(infra.kafka, TICKET_EVENTS) as watcher:
        created = await http.post("/v1/tickets", json=ticket_json(), headers=caller)
        assert created.status_code == 201, created.text
        ticket = created.json()
        records = await watcher.collect(lambda r: r.key == ticket["id"].encode())
    assert ticket["number"].startswith("HD-")
    assert ticket["status"] == "new"
    assert ticket["channel"] == "web"
    assert ticket["priority"] == "high"
    assert ticket["requester"]["email"] == "bob@example.com"
    assert ticket["tags"] == ["printer", "floor-3"]
    assert ticket["request_id"] == key
    assert ticket["version"] == 1
    assert created.headers["location"] == f"/v1/tickets/{ticket['id']}"
    (record,) = records
    assert headers_of(record)["ce_type"] == "helpdesk.ticket.created.v1"
    assert headers_of(record)["traceparent"].split("-")[1] == trace_id, "the trace goes on"
    assert (
        ticket_events_pb2.TicketCreated.FromString(record.value).ticket.number == (ticket["number"])
    )

    replay = await http.post("/v1/tickets", json=ticket_json(), headers={"Idempotency-Key": key})
    assert replay.status_code == 200
    assert replay.json() == ticket
    by_body = await http.post("/v1/tickets", json=ticket_json(request_id=key))
    assert by_body.json()["id"] == ticket["id"]

    by_id = await http.get(f"/v1/tickets/{ticket['id']}")
    by_number = await http.get(f"/v1/tickets/{ticket['number'].lower()}")
    assert by_id.json() == ticket
    assert by_number.json() == ticket
    # The same ticket over gRPC: both edges read one store.
    async with grpc.aio.insecure_channel(intake.target) as channel:
        stub = tickets_pb2_grpc.TicketServiceStub(channel)
        over_grpc = await stub.GetTicket(tickets_pb2.GetTicketRequest(id=ticket["id"]), timeout=10)
    assert over_grpc.number == ticket["number"]

    reply = await http.post(
        f"/v1/tickets/{ticket['number']}/comments",
        json={
            "author": AGENT,
            "body": "Replaced the drum; please try again.",
            "attachments": [
                {
                    "name": "drum.jpg",
                    "content_type": "image/jpeg",
                    "size_bytes": 52_000,
                    "url": "https://files.example.com/drum.jpg",
                }
            ],
        },
    )
    assert reply.status_code == 201, reply.text
    added = reply.json()
    assert added["comment"]["author"] == AGENT
    assert added["comment"]["internal"] is False
    assert added["comment"]["attachments"][0]["size_bytes"] == 52_000
    assert added["ticket"]["first_response_at"] is not None
    assert added["ticket"]["version"] == 2
    note = await http.post(
        f"/v1/tickets/{ticket['id']}/comments",
        json={"author": AGENT, "body": "Drum from the spare stock.", "internal": True},
    )
    assert note.status_code == 201
    # A client's retry with the same Idempotency-Key adds nothing and says so with 200.
    retry_key = {"Idempotency-Key": f"note-{uuid.uuid4()}"}
    keyed = {"author": AGENT, "body": "Called the requester back."}
    first = await http.post(f"/v1/tickets/{ticket['id']}/comments", json=keyed, headers=retry_key)
    retried = await http.post(f"/v1/tickets/{ticket['id']}/comments", json=keyed, headers=retry_key)
    assert (first.status_code, retried.status_code) == (201, 200)
    assert retried.json()["comment"] == first.json()["comment"]
    assert retried.json()["ticket"]["version"] == first.json()["ticket"]["version"]

    history = await http.get(f"/v1/tickets/{ticket['id']}/history")
    assert history.status_code == 200
    entries = history.json()["entries"]
    assert [e["action"] for e in entries] == ["created", "commented", "commented", "commented"]
    assert entries[0]["actor"] == {"id": "bob@example.com", "role": "requester"}
    assert entries[1]["actor"] == AGENT
    assert all(e["event_id"] for e in entries)
    comments = history.json()["comments"]
    assert [(c["body"], c["internal"]) for c in comments] == [
        ("Replaced the drum; please try again.", False),
        ("Drum from the spare stock.", True),
        ("Called the requester back.", False),
    ]


async def test_bad_input_gets_4xx_naming_the_field(intake: Any, http: Any) -> None:
    broken = await http.post(
        "/v1/tickets", content=b'{"subject": "x",', headers={"content-type": "application/json"}
    )
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == "INVALID_ARGUMENT"
    assert list(violations(broken)) == ["$"]

    not_an_object = await http.post("/v1/tickets", json=["subject"])
    assert violations(not_an_object) == {"$": "must be a JSON object"}

    wrong_types = await http.post(
        "/v1/tickets",
        json=ticket_json(subject=42, tags="printer", requester={"email": ["a@b.cd"]}),
    )
    assert wrong_types.status_code == 400
    assert set(violations(wrong_types)) == {"subject", "tags", "requester.email"}

    bad_values = await http.post(
        "/v1/tickets",
        json=ticket_json(
            priority="asap", channel="fax", subject="", tags=["ok", "no spaces"], requester={}
        ),
    )
    assert bad_values.status_code == 400
    found = violations(bad_values)
    assert set(found) == {"priority", "channel", "subject", "tags[1]", "requester.email"}
    assert "asap" in found["priority"]
    assert bad_values.json()["error"]["message"].startswith("invalid request: ")

    oversized = await http.post(
        "/v1/tickets", json=ticket_json(description="x" * (2 * 1024 * 1024))
    )
    assert oversized.status_code == 413
    assert oversized.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert list(violations(oversized)) == ["$"]

    for path in ("/v1/tickets/HD-999999", f"/v1/tickets/{uuid.uuid4()}/history"):
        missing = await http.get(path)
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "NOT_FOUND"
    comment = {"author": AGENT, "body": "Hello?"}
    missing = await http.post("/v1/tickets/HD-999999/comments", json=comment)
    assert missing.status_code == 404
    assert "HD-999999" in missing.json()["error"]["message"]

    ticket = (await http.post("/v1/tickets", json=ticket_json())).json()
    bad_comment = await http.post(
        f"/v1/tickets/{ticket['id']}/comments",
        json={"author": {"id": "bob@example.com", "role": "requester"}, "body": "", "internal": 1},
    )
    assert set(violations(bad_comment)) == {"internal"}  # a type error: the domain is not asked
    requester_note = await http.post(
        f"/v1/tickets/{ticket['id']}/comments",
        json={
            "author": {"id": "bob@example.com", "role": "requester"},
            "body": "",
            "internal": True,
        },
    )
    assert set(violations(requester_note)) == {"body", "internal"}
    bad_attachment = await http.post(
        f"/v1/tickets/{ticket['id']}/comments",
        json={
            "author": {"id": "agent-7", "role": "boss"},
            "body": "x",
            "attachments": [{"name": "a", "content_type": "text", "url": "ftp://x"}],
        },
    )
    assert set(violations(bad_attachment)) == {"author.role"}

    # The ticket's state refuses: 409 with the domain's words.
    async with grpc.aio.insecure_channel(intake.target) as channel:
        stub = tickets_pb2_grpc.TicketServiceStub(channel)
        await stub.UpdateTicket(
            tickets_pb2.UpdateTicketRequest(
                id=ticket["id"],
                ticket=tickets_pb2.Ticket(status=common_pb2.TICKET_STATUS_CLOSED),
                update_mask=FieldMask(paths=["status"]),
                actor=common_pb2.Actor(id="agent-7", role=common_pb2.ACTOR_ROLE_AGENT),
            ),
            timeout=10,
        )
    closed = await http.post(f"/v1/tickets/{ticket['id']}/comments", json=comment)
    assert closed.status_code == 409
    assert closed.json()["error"]["code"] == "FAILED_PRECONDITION"
    assert "closed" in closed.json()["error"]["message"]

    # Liveness and readiness (MongoDB and Kafka answer).
    assert (await http.get("/healthz")).status_code == 200
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"mongodb": "up", "kafka": "up"}
    assert (await http.get("/openapi.json")).json()["info"]["title"] == "Help desk intake"


# ---- Alertmanager

FIRST_START = "2026-03-02T09:00:00.123456789Z"


def alert(fingerprint: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": "firing",
        "labels": {
            "alertname": "DiskAlmostFull",
            "instance": f"db-{fingerprint[:4]}:9100",
            "severity": "critical",
            "team": "dba",
        },
        "annotations": {
            # The same summary for every fingerprint: intake's subject dedup must not
            # fold two alerts into one ticket.
            "summary": "Disk almost full",
            "description": "Free space below 5% on /var.",
        },
        "startsAt": FIRST_START,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": fingerprint,
    }
    body.update(overrides)
    return body


def notification(*alerts: dict[str, Any]) -> dict[str, Any]:
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "groupKey": '{}:{alertname="DiskAlmostFull"}',
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": "helpdesk",
        "groupLabels": {"alertname": "DiskAlmostFull"},
        "commonLabels": {"alertname": "DiskAlmostFull"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


async def tickets_of_alertmanager(stub: Any) -> list[Any]:
    page = await stub.ListTickets(
        tickets_pb2.ListTicketsRequest(requester_email=ALERTMANAGER_EMAIL), timeout=10
    )
    return list(page.tickets)


async def test_alertmanager_opens_one_ticket_per_fingerprint(make_intake: Any) -> None:
    # The production dedup window is on: alerts must still get a ticket each.
    service = make_intake(HELPDESK_DEDUP_WINDOW_SECONDS="900")
    service.start()
    await service.wait_serving()
    one, two = uuid.uuid4().hex[:16], uuid.uuid4().hex[:16]
    async with (
        httpx.AsyncClient(base_url=service.http_url, timeout=30) as http,
        grpc.aio.insecure_channel(service.target) as channel,
    ):
        stub = tickets_pb2_grpc.TicketServiceStub(channel)

        async def send(*alerts: dict[str, Any]) -> list[dict[str, Any]]:
            reply = await http.post("/v1/webhooks/alertmanager", json=notification(*alerts))
            assert reply.status_code == 200, reply.text
            results: list[dict[str, Any]] = reply.json()["alerts"]
            return results

        async def history(ticket_id: str) -> dict[str, Any]:
            reply = await http.get(f"/v1/tickets/{ticket_id}/history")
            result: dict[str, Any] = reply.json()
            return result

        (opened,) = await send(alert(one))
        assert opened["outcome"] == "created"
        ticket = (await http.get(f"/v1/tickets/{opened['ticket_id']}")).json()
        assert ticket["number"] == opened["ticket_number"]
        assert ticket["channel"] == "monitoring"
        assert ticket["priority"] == "urgent"
        assert ticket["category"] == "incident"
        assert ticket["team"] == "dba"
        assert ticket["status"] == "new"
        assert ticket["requester"]["email"] == ALERTMANAGER_EMAIL
        assert ticket["tags"] == ["alertname:diskalmostfull", "severity:critical"]
        assert ticket["request_id"] == f"alertmanager:{one}"
        assert ticket["custom_fields"]["alert_fingerprint"] == one
        assert one in ticket["subject"]

        # The same notification again, and twice at once (Alertmanager in HA): one ticket,
        # nothing added.
        again = await send(alert(one))
        raced = await asyncio.gather(send(alert(one)), send(alert(one)))
        for (result,) in (again, *raced):
            assert result == {**opened, "outcome": "unchanged"}
        assert len(await tickets_of_alertmanager(stub)) == 1
        assert (await history(opened["ticket_id"]))["comments"] == []

        # Something changed: one system note, and only once.
        changed = alert(one)
        changed["annotations"]["description"] = "Free space below 1% on /var."
        (noted,) = await send(changed)
        assert noted["outcome"] == "commented"
        (repeated,) = await send(changed)
        assert repeated["outcome"] == "unchanged"
        comments = (await history(opened["ticket_id"]))["comments"]
        assert len(comments) == 1
        assert comments[0]["author"] == {"id": "alertmanager", "role": "system"}
        assert comments[0]["internal"] is True
        assert "below 1%" in comments[0]["body"]

        # A second fingerprint, same alert name and summary: a second ticket.
        (other,) = await send(alert(two, labels={"alertname": "DiskAlmostFull"}))
        assert other["outcome"] == "created"
        assert other["ticket_id"] != opened["ticket_id"]
        assert other["ticket_number"] != opened["ticket_number"]
        assert len(await tickets_of_alertmanager(stub)) == 2

        # Resolved: the ticket is resolved, once.
        resolved = copy.deepcopy(changed)
        resolved.update(status="resolved", endsAt="2026-03-02T10:15:00Z")
        (done,) = await send(resolved)
        assert done["outcome"] == "resolved"
        ticket = (await http.get(f"/v1/tickets/{opened['ticket_id']}")).json()
        assert ticket["status"] == "resolved"
        assert ticket["resolved_at"] is not None
        (done_again,) = await send(resolved)
        assert done_again["outcome"] == "unchanged"
        actions = [e["action"] for e in (await history(opened["ticket_id"]))["entries"]]
        assert actions.count("resolved") == 1
        assert all(
            e["actor"]["id"] == "alertmanager"
            for e in (await history(opened["ticket_id"]))["entries"][1:]
        )

        # It fires again later: the same ticket comes back.
        (back,) = await send(alert(one, startsAt="2026-03-03T08:00:00Z"))
        assert back["outcome"] == "reopened"
        ticket = (await http.get(f"/v1/tickets/{opened['ticket_id']}")).json()
        assert ticket["status"] == "open"
        assert ticket["reopen_count"] == 1

        # A resolved notification for an alert never seen opens nothing.
        (unknown,) = await send(alert(uuid.uuid4().hex[:16], status="resolved"))
        assert unknown == {**unknown, "outcome": "ignored", "ticket_id": ""}
        assert len(await tickets_of_alertmanager(stub)) == 2

        # Bad payloads are refused by field; a replayed one is harmless.
        bad = await http.post(
            "/v1/webhooks/alertmanager",
            json={"version": "4", "alerts": [{"status": "burning", "labels": []}]},
        )
        assert bad.status_code == 400
        assert set(violations(bad)) == {
            "alerts[0].status",
            "alerts[0].labels",
            "alerts[0].fingerprint",
        }
        broken = await http.post("/v1/webhooks/alertmanager", content=b'{"alerts": [')
        assert broken.status_code == 400


async def test_sigterm_drains_http_requests_in_flight(
    infra: Any, make_intake: Any, mongo: Any
) -> None:
    database = f"it_http_drain_{uuid.uuid4().hex[:8]}"
    service = make_intake(database=database)
    service.start()
    await service.wait_serving()
    finished_after_signal = 0
    signalled_at = 0.0
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)

    async with (
        TopicWatcher(infra.kafka, TICKET_EVENTS) as watcher,
        httpx.AsyncClient(base_url=service.http_url, timeout=30, limits=limits) as http,
    ):

        async def create() -> dict[str, Any] | str:
            nonlocal finished_after_signal
            try:
                reply = await http.post("/v1/tickets", json=ticket_json())
            except httpx.TransportError as error:
                return type(error).__name__
            if reply.status_code != 201:
                return f"HTTP {reply.status_code}"
            if signalled_at and time.monotonic() > signalled_at:
                finished_after_signal += 1
            ticket: dict[str, Any] = reply.json()
            return ticket

        calls = [asyncio.create_task(create()) for _ in range(80)]
        await asyncio.wait(calls, return_when=asyncio.FIRST_COMPLETED)
        signalled_at = time.monotonic()
        service.signal(signal.SIGTERM)
        results = await asyncio.gather(*calls)
        assert service.wait_exit() == 0

        created = [r for r in results if isinstance(r, dict)]
        refused = [r for r in results if not isinstance(r, dict)]
        assert finished_after_signal > 0, "some requests were in flight when SIGTERM came"
        # Requests the server had not read when it stopped listening are refused whole (the
        # client may retry them with an Idempotency-Key); none fails half-way.
        assert set(refused) <= {"ConnectError", "RemoteProtocolError", "ReadError"}, refused
        ids = {t["id"].encode() for t in created}
        records = await watcher.collect(lambda r: r.key in ids, count=len(ids), timeout=30)
    assert {r.key for r in records} == ids, "every stored ticket's event was published"
    stored = await mongo[database]["tickets"].count_documents({})
    assert stored == len(created), "a ticket was stored for a request that was not answered"
