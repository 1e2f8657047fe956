"""OTLP/gRPC receiver: `opentelemetry.proto.collector.trace.v1.TraceService/Export`, and, when given what to hand
them to, `...logs.v1.LogsService/Export` (coding assistants' events, `ingest.assistants`) and
`...metrics.v1.MetricsService/Export` (counted, never billed: `receivers.MetricPoints`).

Same semantics as OTLP/HTTP: OK with partial success; INVALID_ARGUMENT for a message that does not decode;
UNAUTHENTICATED without `authorization: Bearer <token>` metadata when a token is configured; RESOURCE_EXHAUSTED
over the size limit (grpc enforces `grpc.max_receive_message_length`, after decompression); UNAVAILABLE with
`RetryInfo` when the ledger cannot persist, so exporters retry after the delay we ask for.

The servicer is the generated `TraceServiceServicer`, but it is registered with a tolerant request deserializer
(per service) instead of the generated `add_TraceServiceServicer_to_server`: with the generated one, a body that fails to decode
never reaches the servicer and grpc answers INTERNAL, which the OTLP spec does not allow for a client error.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceServicer

from costline.processor.config.settings import Address
from costline.processor.http.auth import BearerAuth
from costline.processor.ingest.receivers import LOGS, METRICS, TRACES, Ingestor, Outcome, ReceiverStats, ingest

log = logging.getLogger("costline.processor.http.otlp_grpc")

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
LOGS_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"
METRICS_SERVICE = "opentelemetry.proto.collector.metrics.v1.MetricsService"
TRANSPORT = "grpc"


class _Undecodable:
    """Stands in for a request whose bytes did not decode, so the servicer can answer INVALID_ARGUMENT."""

    def __init__(self, error: str) -> None:
        self.error = error


def _deserializer(message_type: type[Message]) -> Any:
    def deserialize(data: bytes) -> Message | _Undecodable:
        try:
            return message_type.FromString(data)
        except (DecodeError, RecursionError) as err:
            return _Undecodable(f"invalid protobuf {message_type.__name__}: {err}")

    return deserialize


_deserialize = _deserializer(ExportTraceServiceRequest)


class OTLPGrpcReceiver(TraceServiceServicer):
    def __init__(self, pipeline: Ingestor, *, auth: BearerAuth, stats: ReceiverStats, retry_after_s: int = 5,
                 logs: Ingestor | None = None, metrics: Ingestor | None = None) -> None:
        """`logs`, `metrics`: what the LogsService and MetricsService hand their requests to; None: not served."""
        self._pipeline = pipeline
        self.logs = logs
        self.metrics = metrics
        self._auth = auth
        self._stats = stats
        self._retry_after_s = retry_after_s

    def Export(  # noqa: N802 - the generated servicer's method name
        self, request: ExportTraceServiceRequest | _Undecodable, context: grpc.ServicerContext
    ) -> ExportTraceServiceResponse:
        return self._export(self._pipeline, TRACES, request, context)

    def ExportLogs(self, request: ExportLogsServiceRequest | _Undecodable,  # noqa: N802 - as the generated names
                   context: grpc.ServicerContext) -> ExportLogsServiceResponse:
        assert self.logs is not None
        return self._export(self.logs, LOGS, request, context)

    def ExportMetrics(self, request: ExportMetricsServiceRequest | _Undecodable,  # noqa: N802
                      context: grpc.ServicerContext) -> ExportMetricsServiceResponse:
        assert self.metrics is not None
        return self._export(self.metrics, METRICS, request, context)

    def _export(self, handler: Ingestor, signal: str, request: Message | _Undecodable,
                context: grpc.ServicerContext) -> Any:
        if self._auth.enabled:
            authorization = next((value for key, value in context.invocation_metadata() if key == "authorization"),
                                 None)
            if not self._auth.allows(authorization if isinstance(authorization, str) else None):
                self._stats.record(TRANSPORT, Outcome.UNAUTHENTICATED)
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")
        if isinstance(request, _Undecodable):
            self._stats.record(TRANSPORT, Outcome.UNDECODABLE)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.error)
        ingested = ingest(handler, request, TRANSPORT, self._stats, signal)
        if ingested.outcome is Outcome.ACCEPTED:
            assert ingested.response is not None
            return ingested.response
        if ingested.outcome is Outcome.UNAVAILABLE:
            retry = error_details_pb2.RetryInfo(retry_delay=Duration(seconds=self._retry_after_s))
            status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=ingested.message)
            status.details.add().Pack(retry)
            # The OTel Python exporter reads `google.rpc.retryinfo-bin`; grpc-status-details-bin is the standard
            # rich-status carrier others (Go, Java) read.
            context.set_trailing_metadata((
                ("google.rpc.retryinfo-bin", retry.SerializeToString()),
                ("grpc-status-details-bin", status.SerializeToString()),
            ))
            context.abort(grpc.StatusCode.UNAVAILABLE, ingested.message)
        context.abort(grpc.StatusCode.INTERNAL, ingested.message)
        raise AssertionError("unreachable: context.abort raises")


def add_receiver(receiver: OTLPGrpcReceiver, server: grpc.Server) -> None:
    services = [(SERVICE, receiver.Export, ExportTraceServiceRequest, ExportTraceServiceResponse)]
    if receiver.logs is not None:
        services.append((LOGS_SERVICE, receiver.ExportLogs, ExportLogsServiceRequest, ExportLogsServiceResponse))
    if receiver.metrics is not None:
        services.append((METRICS_SERVICE, receiver.ExportMetrics, ExportMetricsServiceRequest,
                         ExportMetricsServiceResponse))
    handlers = []
    for service, method, request_type, response_type in services:
        handler = grpc.unary_unary_rpc_method_handler(
            method, request_deserializer=_deserializer(request_type),
            response_serializer=response_type.SerializeToString,
        )
        handlers.append(grpc.method_handlers_generic_handler(service, {"Export": handler}))
    server.add_generic_rpc_handlers(tuple(handlers))


class GrpcServer:
    """The gRPC listener: a thread pool of `workers` and the receiver."""

    def __init__(self, address: Address, receiver: OTLPGrpcReceiver, *, max_message_bytes: int, workers: int = 8
                 ) -> None:
        self._server = grpc.server(
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="costline-grpc"),
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.so_reuseport", 0),  # a second processor on the same port must fail, not share the traffic
            ],
        )
        add_receiver(receiver, self._server)
        target = f"[{address.host}]:{address.port}" if ":" in address.host else f"{address.host}:{address.port}"
        self.port = self._server.add_insecure_port(target)
        if self.port == 0:
            raise OSError(f"cannot listen for OTLP/gRPC on {target}")
        self.host = address.host

    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> GrpcServer:
        self._server.start()
        return self

    def stop(self, grace_s: float = 10.0) -> None:
        """Refuse new RPCs and give those in flight `grace_s` to finish (their exporters retry otherwise)."""
        self._server.stop(grace_s).wait(grace_s + 1)
