"""OTLP/gRPC trace receiver: `opentelemetry.proto.collector.trace.v1.TraceService/Export`.

Same semantics as OTLP/HTTP: OK with partial success; INVALID_ARGUMENT for a message that does not decode;
UNAUTHENTICATED without `authorization: Bearer <token>` metadata when a token is configured; RESOURCE_EXHAUSTED
over the size limit (grpc enforces `grpc.max_receive_message_length`, after decompression); UNAVAILABLE with
`RetryInfo` when the ledger cannot persist, so exporters retry after the delay we ask for.

The servicer is the generated `TraceServiceServicer`, but it is registered with a tolerant request deserializer
instead of the generated `add_TraceServiceServicer_to_server`: with the generated one, a body that fails to decode
never reaches the servicer and grpc answers INTERNAL, which the OTLP spec does not allow for a client error.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceServicer

from costline.processor.config.settings import Address
from costline.processor.http.auth import BearerAuth
from costline.processor.ingest.receivers import Ingestor, Outcome, ReceiverStats, ingest

log = logging.getLogger("costline.processor.http.otlp_grpc")

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
TRANSPORT = "grpc"


class _Undecodable:
    """Stands in for a request whose bytes did not decode, so the servicer can answer INVALID_ARGUMENT."""

    def __init__(self, error: str) -> None:
        self.error = error


def _deserialize(data: bytes) -> ExportTraceServiceRequest | _Undecodable:
    try:
        return ExportTraceServiceRequest.FromString(data)
    except (DecodeError, RecursionError) as err:
        return _Undecodable(str(err))


class OTLPGrpcReceiver(TraceServiceServicer):
    def __init__(self, pipeline: Ingestor, *, auth: BearerAuth, stats: ReceiverStats, retry_after_s: int = 5) -> None:
        self._pipeline = pipeline
        self._auth = auth
        self._stats = stats
        self._retry_after_s = retry_after_s

    def Export(  # noqa: N802 - the generated servicer's method name
        self, request: ExportTraceServiceRequest | _Undecodable, context: grpc.ServicerContext
    ) -> ExportTraceServiceResponse:
        if self._auth.enabled:
            authorization = next((value for key, value in context.invocation_metadata() if key == "authorization"),
                                 None)
            if not self._auth.allows(authorization if isinstance(authorization, str) else None):
                self._stats.record(TRANSPORT, Outcome.UNAUTHENTICATED)
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid bearer token")
        if isinstance(request, _Undecodable):
            self._stats.record(TRANSPORT, Outcome.UNDECODABLE)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"invalid protobuf ExportTraceServiceRequest: {request.error}")
        ingested = ingest(self._pipeline, request, TRANSPORT, self._stats)
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
    handler = grpc.unary_unary_rpc_method_handler(
        receiver.Export,
        request_deserializer=_deserialize,
        response_serializer=ExportTraceServiceResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),))


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
