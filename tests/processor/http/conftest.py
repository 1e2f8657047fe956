"""Fixtures for the edge suite: the receivers and the API on ephemeral ports in front of a fake pipeline.

The fake records what it was handed and can be told to fail like the real one does (LedgerUnavailable), so status
code mapping is tested without a database; `test_serve.py` and the fault suite run the real pipeline.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from costline.processor.config.settings import Address
from costline.processor.http.auth import BearerAuth
from costline.processor.http.otlp_grpc import GrpcServer, OTLPGrpcReceiver
from costline.processor.http.otlp_http import OTLPHttpReceiver
from costline.processor.http.server import HttpServer
from costline.processor.ingest.pipeline import IngestResult, LedgerUnavailable
from costline.processor.ingest.receivers import Outcome, ReceiverStats

TOKEN = "s3cret-token"


class FakePipeline:
    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        self.fail_with: Exception | None = None
        self.reject: int = 0
        self._lock = threading.Lock()

    def ingest(self, request: ExportTraceServiceRequest) -> IngestResult:
        if self.fail_with is not None:
            raise self.fail_with
        spans = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        with self._lock:
            self.requests.append(request)
        rejected = min(self.reject, spans)
        return IngestResult(accepted_spans=spans - rejected, rejected_spans=rejected,
                            error_message=f"{rejected} spans rejected" if rejected else "")

    @property
    def spans(self) -> list:
        return [s for r in self.requests for rs in r.resource_spans for ss in rs.scope_spans for s in ss.spans]


@dataclass
class Edge:
    pipeline: FakePipeline
    stats: ReceiverStats
    http: HttpServer
    grpc: GrpcServer

    def requests(self, transport: str, outcome: Outcome) -> int:
        """`costline_receiver_requests` of `transport` and `outcome`, as the receivers' stats export it."""
        return next((int(s.value) for family in self.stats.collect() if family.name == "costline_receiver_requests"
                     for s in family.samples if s.labels == {"transport": transport, "outcome": outcome.value}), 0)

    @property
    def traces_url(self) -> str:
        return f"{self.http.url}/v1/traces"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc.port}"


def start_edge(token: str | None, max_body_bytes: int) -> Edge:
    pipeline, stats, auth = FakePipeline(), ReceiverStats(), BearerAuth(token)
    http = HttpServer(Address("127.0.0.1", 0),
                      OTLPHttpReceiver(pipeline, auth=auth, max_body_bytes=max_body_bytes, stats=stats,
                                       retry_after_s=7), "otlp-http").start()
    grpc = GrpcServer(Address("127.0.0.1", 0), OTLPGrpcReceiver(pipeline, auth=auth, stats=stats, retry_after_s=7),
                      max_message_bytes=max_body_bytes, workers=4).start()
    return Edge(pipeline, stats, http, grpc)


@pytest.fixture(scope="module")
def edge_server() -> Iterator[Edge]:
    edge = start_edge(None, 1024 * 1024)
    yield edge
    edge.http.stop(1)
    edge.grpc.stop(0)


@pytest.fixture
def edge(edge_server: Edge) -> Edge:
    """The shared server with a fresh fake pipeline state."""
    edge_server.pipeline.requests.clear()
    edge_server.pipeline.fail_with = None
    edge_server.pipeline.reject = 0
    return edge_server


@pytest.fixture(scope="module")
def secured() -> Iterator[Edge]:
    edge = start_edge(TOKEN, 1024 * 1024)
    yield edge
    edge.http.stop(1)
    edge.grpc.stop(0)


__all__ = ["Edge", "FakePipeline", "LedgerUnavailable", "TOKEN", "start_edge"]
