"""Fixtures for scenarios on the real servers.

Kafka and MongoDB: the ones named by HELPDESK_KAFKA_BOOTSTRAP_SERVERS and HELPDESK_MONGODB_URI
when both are set; otherwise a private local Kafka and FerretDB started for this test session
by deploy/local/infra.sh on their own ports and data folder, and stopped at its end.
Services run as real processes (`python -m helpdesk.<service>`), so they can be killed.
"""

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pymongo import AsyncMongoClient

from helpdesk.api.tickets.v1 import tickets_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "deploy" / "local" / "infra.sh"
# A private copy of the servers per test session; two sessions on one machine pick
# different ports with HELPDESK_TEST_PORT_OFFSET (e.g. 100).
_OFFSET = int(os.environ.get("HELPDESK_TEST_PORT_OFFSET", "0"))
TEST_LOCAL_DIR = ROOT / ".local" / (f"test-{_OFFSET}" if _OFFSET else "test")
TEST_KAFKA_PORT = 19092 + _OFFSET
TEST_KAFKA_CONTROLLER_PORT = 19093 + _OFFSET
TEST_MONGODB_PORT = 37017 + _OFFSET


@dataclass(frozen=True)
class Infra:
    kafka: str
    mongodb_uri: str
    # True when this session started them (so a test may restart its Kafka).
    private: bool = False


def _reachable(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2):
            return True
    except OSError:
        return False


def _infra_env() -> dict[str, str]:
    """deploy/local/infra.sh's settings for this session's private servers."""
    return {
        **os.environ,
        "HELPDESK_LOCAL_DIR": str(TEST_LOCAL_DIR),
        "HELPDESK_LOCAL_KAFKA_PORT": str(TEST_KAFKA_PORT),
        "HELPDESK_LOCAL_KAFKA_CONTROLLER_PORT": str(TEST_KAFKA_CONTROLLER_PORT),
        "HELPDESK_LOCAL_MONGODB_PORT": str(TEST_MONGODB_PORT),
    }


def restart_private_kafka() -> None:
    """Stops this session's broker and starts it on the same data; returns once it answers,
    so that the tests after the caller find it healthy."""
    for command in ("kafka-stop", "kafka-start"):
        done = subprocess.run(
            [str(INFRA), command], env=_infra_env(), capture_output=True, text=True
        )
        assert done.returncode == 0, f"infra.sh {command}:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    given_kafka = os.environ.get("HELPDESK_KAFKA_BOOTSTRAP_SERVERS")
    given_mongo = os.environ.get("HELPDESK_MONGODB_URI")
    if given_kafka and given_mongo:
        first_broker = given_kafka.split(",")[0]
        if not _reachable(first_broker):
            pytest.fail(
                f"HELPDESK_KAFKA_BOOTSTRAP_SERVERS={given_kafka} does not answer: start Kafka "
                "(make infra-up) or unset the variable to let the tests start their own",
                pytrace=False,
            )
        yield Infra(kafka=given_kafka, mongodb_uri=given_mongo)
        return

    env = _infra_env()
    # A fresh start every session: no state leaks from an earlier run.
    subprocess.run([str(INFRA), "down"], env=env, check=False, capture_output=True)
    shutil.rmtree(TEST_LOCAL_DIR, ignore_errors=True)
    started = subprocess.run([str(INFRA), "up"], env=env, capture_output=True, text=True)
    if started.returncode != 0:
        pytest.fail(
            "could not start the local Kafka and FerretDB for the tests "
            f"(deploy/local/infra.sh up):\n{started.stdout}\n{started.stderr}\n"
            "Fix the cause, or point HELPDESK_KAFKA_BOOTSTRAP_SERVERS and HELPDESK_MONGODB_URI "
            "at running servers.",
            pytrace=False,
        )
    try:
        yield Infra(
            kafka=f"127.0.0.1:{TEST_KAFKA_PORT}",
            mongodb_uri=f"mongodb://127.0.0.1:{TEST_MONGODB_PORT}/",
            private=True,
        )
    finally:
        subprocess.run([str(INFRA), "down"], env=env, check=False, capture_output=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServiceProcess:
    """One service running as a real process."""

    name: str
    env: dict[str, str]
    grpc_port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    # The HTTP channels' port (0: none).
    http_port: int = 0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, **overrides: str) -> None:
        env = {**self.env, **overrides}
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"helpdesk.{self.name}"], env=env, stdout=log, stderr=log
        )

    async def wait_serving(self, timeout: float = 60.0) -> None:
        """Waits until the standard health service says SERVING."""
        deadline = time.monotonic() + timeout
        async with grpc.aio.insecure_channel(self.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise AssertionError(f"{self.name} exited early:\n{self.log_tail()}")
                try:
                    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.aio.AioRpcError:
                    pass
                await asyncio.sleep(0.2)
        raise AssertionError(f"{self.name} not SERVING after {timeout}s:\n{self.log_tail()}")

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def service_env(infra: Infra, database: str, grpc_port: int, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("HELPDESK_") and not key.startswith("OTEL_")
    }
    env.update(
        HELPDESK_KAFKA_BOOTSTRAP_SERVERS=infra.kafka,
        HELPDESK_MONGODB_URI=infra.mongodb_uri,
        HELPDESK_MONGODB_DATABASE=database,
        HELPDESK_GRPC_HOST="127.0.0.1",
        HELPDESK_GRPC_PORT=str(grpc_port),
        HELPDESK_METRICS_PORT="0",
        HELPDESK_LOG_LEVEL="info",
        HELPDESK_HEALTH_CHECK_INTERVAL_SECONDS="1",
        HELPDESK_OUTBOX_SWEEP_INTERVAL_SECONDS="1",
        # Most scenarios open many alike tickets on purpose; the dedup test turns it on.
        HELPDESK_DEDUP_WINDOW_SECONDS="0",
    )
    env.update(extra)
    return env


INTAKE_TOPIC = "helpdesk.intake.requests.v1"


async def _commit_group_at_end(bootstrap: str, group: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions: list[TopicPartition] = []
        # A topic created a moment ago may not show its partitions in the metadata yet.
        for _ in range(100):
            cluster = await consumer._client.fetch_all_metadata()
            known = cluster.partitions_for_topic(topic) or ()
            partitions = [TopicPartition(topic, p) for p in known]
            if partitions:
                break
            await asyncio.sleep(0.1)
        else:
            raise RuntimeError(f"Kafka shows no partitions of {topic}")
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.commit({tp: offset for tp, offset in ends.items()})
    finally:
        await consumer.stop()


def start_group_at_end(bootstrap: str, group: str, topic: str = INTAKE_TOPIC) -> None:
    """A new consumer group that has already seen everything on the topic, so a service
    started in one test does not pick up the messages earlier tests published."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, _commit_group_at_end(bootstrap, group, topic)).result()


@pytest.fixture
def make_intake(infra: Infra, tmp_path: Path) -> Iterator[Any]:
    """Builds intake processes on a database and consumer group of their own."""
    started: list[ServiceProcess] = []

    def build(
        database: str | None = None, group: str | None = None, **extra: str
    ) -> ServiceProcess:
        port = free_port()
        suffix = uuid.uuid4().hex[:8]
        if group is None:
            group = f"it-intake-{suffix}"
            start_group_at_end(infra.kafka, group)
            start_group_at_end(infra.kafka, group, SLA_EVENTS_TOPIC)
        env = service_env(
            infra,
            database or f"it_intake_{suffix}",
            port,
            HELPDESK_INTAKE_CONSUMER_GROUP=group,
            **{"HELPDESK_HTTP_HOST": "127.0.0.1", "HELPDESK_HTTP_PORT": str(free_port()), **extra},
        )
        service = ServiceProcess(
            "intake",
            env,
            port,
            tmp_path / f"intake-{port}.log",
            http_port=int(env["HELPDESK_HTTP_PORT"]),
        )
        started.append(service)
        return service

    yield build
    for service in started:
        service.stop()


TICKET_EVENTS_TOPIC = "helpdesk.tickets.events.v1"
SLA_EVENTS_TOPIC = "helpdesk.sla.events.v1"


@pytest.fixture
def make_routing(infra: Infra, tmp_path: Path) -> Iterator[Any]:
    """Builds routing processes that apply their decisions through the given intake.
    Replicas built with the same database and group share the work, as in production."""
    started: list[ServiceProcess] = []

    def build(intake: ServiceProcess, database: str, group: str, **extra: str) -> ServiceProcess:
        port = free_port()
        env = service_env(
            infra,
            database,
            port,
            HELPDESK_INTAKE_TARGET=intake.target,
            HELPDESK_ROUTING_CONSUMER_GROUP=group,
            **extra,
        )
        service = ServiceProcess("routing", env, port, tmp_path / f"routing-{port}.log")
        started.append(service)
        return service

    yield build
    for service in started:
        service.stop()


@pytest.fixture
def make_sla(infra: Infra, tmp_path: Path) -> Iterator[Any]:
    """Builds SLA processes that auto-close through the given intake, on a fresh database
    and a consumer group that starts at the end of the ticket events."""
    started: list[ServiceProcess] = []

    def build(intake: ServiceProcess, database: str = "", group: str = "", **extra: str) -> Any:
        if not group:
            group = f"it-sla-{uuid.uuid4().hex[:8]}"
            start_group_at_end(infra.kafka, group, TICKET_EVENTS_TOPIC)
        port = free_port()
        env = service_env(
            infra,
            database or f"it_sla_{uuid.uuid4().hex[:8]}",
            port,
            HELPDESK_INTAKE_TARGET=intake.target,
            HELPDESK_SLA_CONSUMER_GROUP=group,
            HELPDESK_TIMER_TICK_SECONDS="0.2",
            HELPDESK_TIMER_SWEEP_SECONDS="2",
            **extra,
        )
        service = ServiceProcess("sla", env, port, tmp_path / f"sla-{port}.log")
        started.append(service)
        return service

    yield build
    for service in started:
        service.stop()


@pytest.fixture
def make_notification(infra: Infra, tmp_path: Path) -> Iterator[Any]:
    """Builds notification processes on a fresh database and a consumer group that starts
    at the end of the ticket and SLA events."""
    started: list[ServiceProcess] = []

    def build(**extra: str) -> ServiceProcess:
        group = f"it-notification-{uuid.uuid4().hex[:8]}"
        start_group_at_end(infra.kafka, group, TICKET_EVENTS_TOPIC)
        start_group_at_end(infra.kafka, group, SLA_EVENTS_TOPIC)
        port = free_port()
        env = service_env(
            infra,
            f"it_notification_{uuid.uuid4().hex[:8]}",
            port,
            HELPDESK_NOTIFICATION_CONSUMER_GROUP=group,
            HELPDESK_RETRY_BASE_SECONDS="0.2",
            HELPDESK_RETRY_CAP_SECONDS="1",
            HELPDESK_DELIVERY_SWEEP_SECONDS="1",
            **extra,
        )
        service = ServiceProcess("notification", env, port, tmp_path / f"notification-{port}.log")
        started.append(service)
        return service

    yield build
    for service in started:
        service.stop()


@pytest.fixture
def make_knowledge(infra: Infra, tmp_path: Path) -> Iterator[Any]:
    """Builds knowledge processes; replicas built with the same database share its articles
    (each follows every article event), and each build gets a ticket-event group that starts
    at the end."""
    started: list[ServiceProcess] = []

    def build(
        intake: ServiceProcess | None = None, database: str = "", **extra: str
    ) -> ServiceProcess:
        group = f"it-knowledge-{uuid.uuid4().hex[:8]}"
        start_group_at_end(infra.kafka, group, TICKET_EVENTS_TOPIC)
        port = free_port()
        env = service_env(
            infra,
            database or f"it_knowledge_{uuid.uuid4().hex[:8]}",
            port,
            HELPDESK_INTAKE_TARGET=intake.target if intake else f"127.0.0.1:{free_port()}",
            HELPDESK_KNOWLEDGE_CONSUMER_GROUP=group,
            **extra,
        )
        service = ServiceProcess("knowledge", env, port, tmp_path / f"knowledge-{port}.log")
        started.append(service)
        return service

    yield build
    for service in started:
        service.stop()


def new_routing_group(infra: Infra) -> str:
    """A routing consumer group that starts at the end of the ticket events."""
    group = f"it-routing-{uuid.uuid4().hex[:8]}"
    start_group_at_end(infra.kafka, group, TICKET_EVENTS_TOPIC)
    start_group_at_end(infra.kafka, group, SLA_EVENTS_TOPIC)
    return group


@pytest.fixture
async def intake(make_intake: Any) -> ServiceProcess:
    service: ServiceProcess = make_intake()
    service.start()
    await service.wait_serving()
    return service


@pytest.fixture
async def tickets(intake: ServiceProcess) -> AsyncIterator[Any]:
    async with grpc.aio.insecure_channel(intake.target) as channel:
        yield tickets_pb2_grpc.TicketServiceStub(channel)


@pytest.fixture
async def mongo(infra: Infra) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_uri, tz_aware=True)
    yield client
    await client.close()
