"""A real OTLP/gRPC trace receiver for tests: it decodes what services export with the
official opentelemetry-proto messages and keeps the spans for assertions."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, spans: list[Span]) -> None:
        self._spans = spans

    async def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self._spans.append(
                        Span(
                            service=str(resource.get("service.name", "")),
                            name=span.name,
                            kind=span.kind,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                        )
                    )
        return trace_service_pb2.ExportTraceServiceResponse()


class OtlpReceiver:
    def __init__(self) -> None:
        self.spans: list[Span] = []
        self._server = grpc.aio.server()
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(
            _Collector(self.spans), self._server
        )
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> "OtlpReceiver":
        await self._server.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._server.stop(0)

    async def wait_for(self, trace_id: str, names: set[str], timeout: float = 30.0) -> list[Span]:
        """The spans of one trace, once all the named ones arrived."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            spans = [s for s in self.spans if s.trace_id == trace_id]
            if names <= {s.name for s in spans}:
                return spans
            if asyncio.get_running_loop().time() > deadline:
                got = sorted({s.name for s in spans})
                raise AssertionError(f"trace {trace_id} has {got}, missing {names - set(got)}")
            await asyncio.sleep(0.2)

    async def settle(
        self, trace_id: str, holds: Callable[[list[Span]], bool], timeout: float = 15.0
    ) -> list[Span]:
        """The spans of one trace once `holds` is true of them, or as they are at the
        timeout (spans are exported in batches as they end, parents often after children):
        the caller's assertions then say what is wrong."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            spans = [s for s in self.spans if s.trace_id == trace_id]
            if holds(spans) or asyncio.get_running_loop().time() > deadline:
                return spans
            await asyncio.sleep(0.2)
