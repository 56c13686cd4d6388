"""Every metric the dashboards chart is exported by a running service: all five run, a ticket
goes through them, and their metrics ports are scraped."""

import asyncio
import re
import urllib.request
import uuid
from typing import Any

import grpc
import promql_names as promql
from conftest import free_port, new_routing_group
from test_intake_grpc import new_request

from helpdesk.api.common.v1 import common_pb2
from helpdesk.api.knowledge.v1 import knowledge_pb2, knowledge_pb2_grpc
from helpdesk.api.tickets.v1 import tickets_pb2_grpc

AGENT = common_pb2.Actor(id="agent-7", role=common_pb2.ACTOR_ROLE_AGENT)
# Prometheus's own, per target.
PROMETHEUS_SERIES = {"up"}
_FAMILY = re.compile(r"^# TYPE (\S+) (\S+)$", re.M)
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{|\s)", re.M)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def series_names(text: str) -> set[str]:
    """The series a metrics page serves, and those its families serve once they have a sample
    (a labelled counter shows only its TYPE line until something is counted)."""
    names = set(_SAMPLE.findall(text))
    for family, kind in _FAMILY.findall(text):
        if kind == "counter":
            names.add(family if family.endswith("_total") else f"{family}_total")
        elif kind == "histogram":
            names |= {f"{family}_bucket", f"{family}_sum", f"{family}_count"}
        else:
            names.add(family)
    return names


def charted() -> dict[str, set[str]]:
    """Each dashboard's metric names."""
    return {
        name: set().union(
            *(promql.metric_names(e) for e in promql.expressions(promql.dashboard(name)))
        )
        for name in promql.dashboard_names()
    }


def test_the_series_reader_reads_families_and_samples() -> None:
    page = (
        "# HELP a_total A.\n# TYPE a_total counter\n"
        "# TYPE b histogram\n"
        'c{x="1"} 2.0\n'
        "# TYPE d gauge\n"
    )
    assert series_names(page) == {"a_total", "b_bucket", "b_sum", "b_count", "c", "d"}


async def test_every_charted_metric_is_exported_by_a_running_service(
    make_intake: Any,
    make_routing: Any,
    make_sla: Any,
    make_notification: Any,
    make_knowledge: Any,
    infra: Any,
) -> None:
    lag_every = {"HELPDESK_KAFKA_LAG_INTERVAL_SECONDS": "1"}
    ports = {name: free_port() for name in ("intake", "routing", "sla", "notification")}
    ports["knowledge"] = free_port()
    knowledge = make_knowledge(HELPDESK_METRICS_PORT=str(ports["knowledge"]), **lag_every)
    intake = make_intake(
        HELPDESK_METRICS_PORT=str(ports["intake"]),
        HELPDESK_KNOWLEDGE_TARGET=knowledge.target,
        HELPDESK_KNOWLEDGE_DEADLINE_SECONDS="2",
        **lag_every,
    )
    services = [
        knowledge,
        intake,
        make_routing(
            intake,
            f"it_routing_{uuid.uuid4().hex[:8]}",
            new_routing_group(infra),
            HELPDESK_METRICS_PORT=str(ports["routing"]),
            **lag_every,
        ),
        make_sla(intake, HELPDESK_METRICS_PORT=str(ports["sla"]), **lag_every),
        make_notification(HELPDESK_METRICS_PORT=str(ports["notification"]), **lag_every),
    ]
    for service in services:
        service.start()
    for service in services:
        await service.wait_serving()

    async with grpc.aio.insecure_channel(knowledge.target) as channel:
        articles = knowledge_pb2_grpc.KnowledgeServiceStub(channel)
        await articles.CreateArticle(
            knowledge_pb2.CreateArticleRequest(
                article=knowledge_pb2.ArticleContent(
                    id="vpn-down",
                    title="VPN is down",
                    body="Restart the VPN client.",
                    language="en",
                    visibility="public",
                ),
                actor=AGENT,
            ),
            timeout=10,
        )
        await articles.PublishArticle(
            knowledge_pb2.PublishArticleRequest(id="vpn-down", actor=AGENT), timeout=10
        )
    async with grpc.aio.insecure_channel(intake.target) as channel:
        tickets = tickets_pb2_grpc.TicketServiceStub(channel)
        for _ in range(3):
            await tickets.CreateTicket(new_request(), timeout=10)

    wanted = set().union(*charted().values()) - PROMETHEUS_SERIES
    exported: set[str] = set()
    for _ in range(60):
        pages = await asyncio.gather(*(asyncio.to_thread(scrape, p) for p in ports.values()))
        exported = set().union(*(series_names(page) for page in pages))
        if wanted <= exported:
            break
        await asyncio.sleep(0.5)
    missing = {
        board: sorted(names - exported - PROMETHEUS_SERIES)
        for board, names in charted().items()
        if names - exported - PROMETHEUS_SERIES
    }
    assert not missing, missing
