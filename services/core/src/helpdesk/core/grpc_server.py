"""The gRPC server every service runs: health that follows its dependencies, reflection,
interceptors for tracing, errors, logging and metrics, and a graceful drain."""

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status
from opentelemetry.instrumentation.grpc import aio_server_interceptor

from helpdesk.core.errors import HelpdeskError, to_status
from helpdesk.core.logging import get_logger
from helpdesk.core.metrics import DEPENDENCY_UP, GRPC_HANDLED, GRPC_HANDLING_SECONDS

log = get_logger(__name__)

HealthCheck = Callable[[], Awaitable[object]]


class RequestInterceptor(grpc.aio.ServerInterceptor):
    """Maps refusals to status codes once, and logs and measures every unary RPC."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler  # streaming RPCs (health Watch, reflection) pass untouched
        full_method: str = handler_call_details.method
        service, _, method = full_method.lstrip("/").rpartition("/")
        inner = handler.unary_unary

        async def measured(request: Any, context: Any) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                return await inner(request, context)
            except HelpdeskError as error:
                code = error.code
                await context.abort_with_status(rpc_status.to_status(to_status(error)))
            except grpc.aio.AbortError:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except Exception:
                code = grpc.StatusCode.INTERNAL
                log.exception("rpc_failed", rpc=full_method)
                await context.abort(grpc.StatusCode.INTERNAL, "internal error")
            finally:
                elapsed = time.perf_counter() - started
                GRPC_HANDLED.labels(service, method, code.name).inc()
                GRPC_HANDLING_SECONDS.labels(service, method).observe(elapsed)
                if code is not grpc.StatusCode.OK:
                    log.info("rpc_refused", rpc=full_method, code=code.name)
            return None  # unreachable: abort raises

        return grpc.unary_unary_rpc_method_handler(
            measured,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class GrpcServer:
    """A grpc.aio server with the standard health and reflection services."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        service_names: list[str],
        health_checks: Mapping[str, HealthCheck],
        health_check_interval: float = 5.0,
    ) -> None:
        self.server = grpc.aio.server(
            interceptors=[aio_server_interceptor(), RequestInterceptor()],  # type: ignore[no-untyped-call]
            options=[("grpc.so_reuseport", 0)],
        )
        self._address = f"{host}:{port}"
        self._service_names = service_names
        self._health = HealthServicer()
        self._checks = health_checks
        self._interval = health_check_interval
        self._monitor: asyncio.Task[None] | None = None
        self.port = 0
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self.server)
        reflection.enable_server_reflection(
            [
                *service_names,
                reflection.SERVICE_NAME,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            ],
            self.server,
        )

    async def start(self) -> None:
        """Listens after the first dependency check, so readiness is true from the start."""
        await self.check_dependencies()
        self.port = self.server.add_insecure_port(self._address)
        await self.server.start()
        self._monitor = asyncio.create_task(self._watch_dependencies(), name="health")
        log.info("grpc_listening", address=self._address, port=self.port)

    async def check_dependencies(self) -> bool:
        healthy = True
        for name, check in self._checks.items():
            try:
                await asyncio.wait_for(check(), timeout=self._interval)
                DEPENDENCY_UP.labels(name).set(1)
            except Exception as error:
                healthy = False
                DEPENDENCY_UP.labels(name).set(0)
                log.warning("dependency_down", dependency=name, error=repr(error))
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if healthy
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for service in ["", *self._service_names]:
            await self._health.set(service, status)
        return healthy

    async def _watch_dependencies(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.check_dependencies()

    async def stop(self, grace: float) -> None:
        """Says NOT_SERVING, refuses new calls and lets calls in flight finish within grace."""
        if self._monitor:
            self._monitor.cancel()
        await self._health.enter_graceful_shutdown()
        await self.server.stop(grace)
        log.info("grpc_stopped")


async def wait_for_shutdown() -> None:
    """Returns on the first SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutdown_requested")
