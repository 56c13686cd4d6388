"""Intake under faults: a crash between store and publish, and a graceful stop."""

import asyncio
import signal
import time
import uuid
from typing import Any

import grpc
import pytest
from kafka_tools import TopicWatcher
from test_intake_grpc import TICKET_EVENTS, new_request

from helpdesk.api.tickets.v1 import tickets_pb2, tickets_pb2_grpc


async def test_crash_after_store_publishes_after_restart(
    infra: Any, make_intake: Any, mongo: Any
) -> None:
    database = f"it_crash_{uuid.uuid4().hex[:8]}"
    crashing = make_intake(database=database, HELPDESK_FAULT_CRASH_AFTER_STORE="true")
    crashing.start()
    await crashing.wait_serving()
    request = new_request()
    async with TopicWatcher(infra.kafka, TICKET_EVENTS) as watcher:
        async with grpc.aio.insecure_channel(crashing.target) as channel:
            stub = tickets_pb2_grpc.TicketServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.CreateTicket(request, timeout=10)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert crashing.wait_exit() == -signal.SIGKILL

        stored = await mongo[database]["tickets"].find_one({"request_id": request.request_id})
        assert stored is not None, "the ticket was stored before the crash"
        assert stored["outbox_pending"] is True
        assert len(stored["outbox"]) == 1
        assert not await watcher.collect(lambda r: r.key == stored["_id"].encode(), timeout=1)

        restarted = make_intake(database=database)
        restarted.start()
        await restarted.wait_serving()
        records = await watcher.collect(lambda r: r.key == stored["_id"].encode(), timeout=30)
    assert len(records) == 1
    cleared = await mongo[database]["tickets"].find_one({"_id": stored["_id"]})
    assert cleared["outbox_pending"] is False
    assert not cleared.get("outbox"), "the published event left the outbox"

    # The client's retry with the same request id finds the stored ticket, not a new one.
    async with grpc.aio.insecure_channel(restarted.target) as channel:
        stub = tickets_pb2_grpc.TicketServiceStub(channel)
        retried = await stub.CreateTicket(request, timeout=10)
    assert retried.id == stored["_id"]


async def test_sigterm_drains_calls_in_flight(infra: Any, make_intake: Any, mongo: Any) -> None:
    database = f"it_drain_{uuid.uuid4().hex[:8]}"
    service = make_intake(database=database)
    service.start()
    await service.wait_serving()
    finished_after_signal = 0
    signalled_at = 0.0

    async with TopicWatcher(infra.kafka, TICKET_EVENTS) as watcher:
        async with grpc.aio.insecure_channel(service.target) as channel:
            stub = tickets_pb2_grpc.TicketServiceStub(channel)

            async def create() -> tickets_pb2.Ticket | grpc.StatusCode:
                nonlocal finished_after_signal
                try:
                    ticket = await stub.CreateTicket(new_request(), timeout=30)
                except grpc.aio.AioRpcError as error:
                    return error.code()
                if signalled_at and time.monotonic() > signalled_at:
                    finished_after_signal += 1
                return ticket

            calls = [asyncio.create_task(create()) for _ in range(150)]
            # Signal as soon as the first answer is back: the others are in flight then.
            await asyncio.wait(calls, return_when=asyncio.FIRST_COMPLETED)
            signalled_at = time.monotonic()
            service.signal(signal.SIGTERM)
            results = await asyncio.gather(*calls)
        assert service.wait_exit() == 0

        created = [r for r in results if isinstance(r, tickets_pb2.Ticket)]
        refused = [r for r in results if not isinstance(r, tickets_pb2.Ticket)]
        assert finished_after_signal > 0, "some calls were in flight when SIGTERM came"
        # Calls the server had not yet taken up when it stopped are refused whole (the
        # client may retry them with the same request id); none fails half-way.
        assert set(refused) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}, refused
        ids = {t.id.encode() for t in created}
        records = await watcher.collect(lambda r: r.key in ids, count=len(ids), timeout=30)
    assert {r.key for r in records} == ids, "every stored ticket's event was published before exit"
    stored = await mongo[database]["tickets"].count_documents({})
    assert stored == len(created), "a ticket was stored for a call that was not answered"
