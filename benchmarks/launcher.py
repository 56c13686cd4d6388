"""Starts what the benchmark measures, as real processes, and stops what it started.

Kafka and MongoDB: the ones named by HELPDESK_KAFKA_BOOTSTRAP_SERVERS and HELPDESK_MONGODB_URI
when both are set; otherwise a private Kafka and FerretDB from deploy/local/infra.sh, with
their own data folder and ports, wiped before and stopped after. Services: one
`python -m helpdesk.<name>` process each (intake, routing), on a database and consumer group
of their own.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
INFRA_SCRIPT = ROOT / "deploy" / "local" / "infra.sh"
# Apart from `make run` (9092/27017) and the integration tests (19092/37017), so that a
# benchmark can run while either is up; two benchmark runs on one machine pick different
# ports and data folders with HELPDESK_BENCH_PORT_OFFSET (e.g. 100).
_OFFSET = int(os.environ.get("HELPDESK_BENCH_PORT_OFFSET", "0"))
LOCAL_DIR = ROOT / ".local" / (f"bench-{_OFFSET}" if _OFFSET else "bench")
KAFKA_PORT = 29092 + _OFFSET
KAFKA_CONTROLLER_PORT = 29093 + _OFFSET
MONGODB_PORT = 47017 + _OFFSET


class LaunchError(Exception):
    """Something the benchmark needs could not be started; the text says what and why."""


@dataclass(frozen=True)
class Infra:
    kafka: str
    mongodb_uri: str
    # True when this run started the servers (and so wiped them first and stops them after).
    private: bool


def _reachable(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2):
            return True
    except (OSError, ValueError):
        return False


def _infra_script(command: str, *, quiet: bool) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "HELPDESK_LOCAL_DIR": str(LOCAL_DIR),
        "HELPDESK_LOCAL_KAFKA_PORT": str(KAFKA_PORT),
        "HELPDESK_LOCAL_KAFKA_CONTROLLER_PORT": str(KAFKA_CONTROLLER_PORT),
        "HELPDESK_LOCAL_MONGODB_PORT": str(MONGODB_PORT),
    }
    return subprocess.run(
        [str(INFRA_SCRIPT), command], env=env, check=False, capture_output=quiet, text=True
    )


@contextmanager
def infrastructure() -> Iterator[Infra]:
    """Kafka and MongoDB to run against: the given ones, or a private copy for this run."""
    given_kafka = os.environ.get("HELPDESK_KAFKA_BOOTSTRAP_SERVERS")
    given_mongo = os.environ.get("HELPDESK_MONGODB_URI")
    if given_kafka and given_mongo:
        if not _reachable(given_kafka.split(",")[0]):
            raise LaunchError(
                f"HELPDESK_KAFKA_BOOTSTRAP_SERVERS={given_kafka} does not answer: start Kafka, "
                "or unset HELPDESK_KAFKA_BOOTSTRAP_SERVERS and HELPDESK_MONGODB_URI to let the "
                "benchmark start its own"
            )
        yield Infra(kafka=given_kafka, mongodb_uri=given_mongo, private=False)
        return

    # A crashed earlier run may have left its servers running; then start from empty
    # storage, so that numbers do not depend on what earlier runs left behind (the last
    # results.json beside them stays until this run writes its own).
    _infra_script("down", quiet=True)
    for folder in ("data", "log", "run"):
        shutil.rmtree(LOCAL_DIR / folder, ignore_errors=True)
    print(f"starting a private Kafka and FerretDB under {LOCAL_DIR} ...", flush=True)
    # Not quiet: the first `up` may install Kafka and FerretDB, which takes minutes.
    if _infra_script("up", quiet=False).returncode != 0:
        _infra_script("down", quiet=True)  # `up` may leave the server that did start running
        raise LaunchError(
            "deploy/local/infra.sh up failed (see above); or point "
            "HELPDESK_KAFKA_BOOTSTRAP_SERVERS and HELPDESK_MONGODB_URI at running servers"
        )
    try:
        yield Infra(
            kafka=f"127.0.0.1:{KAFKA_PORT}",
            mongodb_uri=f"mongodb://127.0.0.1:{MONGODB_PORT}/",
            private=True,
        )
    finally:
        stopped = _infra_script("down", quiet=True)
        if stopped.returncode != 0:
            print(f"infra.sh down failed:\n{stopped.stdout}\n{stopped.stderr}", file=sys.stderr)


def restart_kafka() -> None:
    """Stops the private broker and starts it again on the same data (fault runs)."""
    for command in ("kafka-stop", "kafka-start"):
        done = _infra_script(command, quiet=True)
        if done.returncode != 0:
            raise LaunchError(f"infra.sh {command} failed:\n{done.stdout}\n{done.stderr}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServiceProcess:
    """One help desk service (`python -m helpdesk.<name>`) as a real process, on its own
    database; `env` adds the service's own settings (consumer group, where intake is)."""

    def __init__(
        self,
        infra: Infra,
        *,
        name: str,
        database: str,
        log_path: Path,
        log_level: str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.grpc_port = free_port()
        self.log_path = log_path
        # The caller's own HELPDESK_* and OTEL_* settings are left out: the numbers should
        # not depend on the shell the benchmark was started from.
        self._env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("HELPDESK_", "OTEL_"))
        }
        self._env.update(
            HELPDESK_KAFKA_BOOTSTRAP_SERVERS=infra.kafka,
            HELPDESK_MONGODB_URI=infra.mongodb_uri,
            HELPDESK_MONGODB_DATABASE=database,
            HELPDESK_GRPC_HOST="127.0.0.1",
            HELPDESK_GRPC_PORT=str(self.grpc_port),
            HELPDESK_METRICS_PORT="0",
            HELPDESK_LOG_LEVEL=log_level,
        )
        self._env.update(env or {})
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def pid(self) -> int | None:
        """The process id once started (for reading its memory from /proc)."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", f"helpdesk.{self.name}"],
                env=self._env,
                stdout=log,
                stderr=log,
                cwd=ROOT,
            )

    def wait_serving(self, timeout: float = 60.0) -> None:
        """Returns once the standard health service says SERVING; LaunchError otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise LaunchError(f"{self.name} exited during start:\n{self.log_tail()}")
            if self.serving():
                return
            time.sleep(0.2)
        raise LaunchError(f"{self.name} not SERVING after {timeout:.0f} s:\n{self.log_tail()}")

    def serving(self) -> bool:
        """Whether the health service says SERVING now (its MongoDB and Kafka answer)."""
        with grpc.insecure_channel(self.target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            try:
                # types-grpcio-health-checking leaves the stub's methods out
                reply = health.Check(  # type: ignore[attr-defined]
                    health_pb2.HealthCheckRequest(), timeout=1.0
                )
            except grpc.RpcError:
                return False  # not listening (yet), or too busy to answer in a second
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> int | None:
        """SIGTERM (the service drains), SIGKILL if still there after 30 s; its exit code."""
        if self._process is None:
            return None
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        return self._process.returncode

    def kill(self) -> None:
        """SIGKILL: no drain, no goodbye (fault runs)."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


class IntakeProcess(ServiceProcess):
    """Intake on its own database and intake-topic consumer group, HTTP channels off."""

    def __init__(
        self, infra: Infra, *, database: str, group: str, log_path: Path, log_level: str
    ) -> None:
        super().__init__(
            infra,
            name="intake",
            database=database,
            log_path=log_path,
            log_level=log_level,
            env={"HELPDESK_INTAKE_CONSUMER_GROUP": group, "HELPDESK_HTTP_PORT": "0"},
        )
