"""OTLP receivers: what OTLP/HTTP (`http.py`) and OTLP/gRPC (`grpc.py`) share.

Both decode a request, hand it to the pipeline and map the outcome to their protocol's status. The mapping is the
same on both transports, so it lives here: an acknowledged request was committed to the ledger; a ledger that cannot
persist is a retryable failure (HTTP 503 / UNAVAILABLE), so exporters retry and the ledger's span dedup keys make the
retry count once; anything else the pipeline raises is a bug, reported as a non-retryable 500 / INTERNAL because
retrying a batch that crashes the pipeline would only crash it again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from costline.processor.ingest.pipeline import IngestResult, LedgerUnavailable

log = logging.getLogger("costline.processor.ingest.receivers")

LEDGER_UNAVAILABLE_MESSAGE = "ledger unavailable, retry later"
INTERNAL_ERROR_MESSAGE = "internal error while processing the request"
"""What OTLP clients are told when the pipeline fails. The cause (a driver error quoting SQL, bound values, the
database's host and name) goes to the log only: an exporter cannot act on it and should not learn it."""


class Ingestor(Protocol):
    """The part of `Pipeline` a receiver uses."""

    def ingest(self, request: ExportTraceServiceRequest) -> IngestResult: ...


class Outcome(Enum):
    ACCEPTED = "accepted"
    """Committed (possibly with some spans rejected as partial success)."""
    UNAVAILABLE = "unavailable"
    """The ledger could not persist: retryable."""
    FAILED = "failed"
    """The pipeline raised something unexpected: not retryable."""
    UNAUTHENTICATED = "unauthenticated"
    TOO_LARGE = "too_large"
    UNDECODABLE = "undecodable"
    UNSUPPORTED = "unsupported"
    """Unsupported content type or encoding."""


@dataclass(frozen=True, slots=True)
class Ingested:
    outcome: Outcome
    response: ExportTraceServiceResponse | None = None
    message: str = ""


class ReceiverStats(Collector):
    """Requests and spans per transport and outcome, so refused traffic is visible without reading logs.

    These counters describe the receivers only; cost metrics come from the pipeline's collector and never see a
    request that was refused.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = {}
        self._spans: dict[tuple[str, str], int] = {}

    def record(self, transport: str, outcome: Outcome, accepted_spans: int = 0, rejected_spans: int = 0) -> None:
        with self._lock:
            key = (transport, outcome.value)
            self._requests[key] = self._requests.get(key, 0) + 1
            if accepted_spans:
                self._spans[(transport, "accepted")] = self._spans.get((transport, "accepted"), 0) + accepted_spans
            if rejected_spans:
                self._spans[(transport, "rejected")] = self._spans.get((transport, "rejected"), 0) + rejected_spans

    def collect(self) -> Iterator[CounterMetricFamily]:
        with self._lock:
            requests, spans = dict(self._requests), dict(self._spans)
        family = CounterMetricFamily(
            "costline_receiver_requests", "OTLP export requests received, by transport and outcome.",
            labels=["transport", "outcome"],
        )
        for (transport, outcome), value in sorted(requests.items()):
            family.add_metric([transport, outcome], value)
        yield family
        family = CounterMetricFamily(
            "costline_receiver_spans", "Spans in committed OTLP requests, accepted or rejected (partial success).",
            labels=["transport", "outcome"],
        )
        for (transport, outcome), value in sorted(spans.items()):
            family.add_metric([transport, outcome], value)
        yield family


def ingest(pipeline: Ingestor, request: ExportTraceServiceRequest, transport: str, stats: ReceiverStats) -> Ingested:
    """Run the pipeline on a decoded request and classify what happened; returns once the ledger has committed."""
    try:
        result = pipeline.ingest(request)
    except LedgerUnavailable as err:
        log.warning("ledger unavailable, asking the exporter to retry: %s", err)
        stats.record(transport, Outcome.UNAVAILABLE)
        return Ingested(Outcome.UNAVAILABLE, message=LEDGER_UNAVAILABLE_MESSAGE)
    except Exception:
        log.exception("pipeline failed on an OTLP request (%s)", transport)
        stats.record(transport, Outcome.FAILED)
        return Ingested(Outcome.FAILED, message=INTERNAL_ERROR_MESSAGE)
    response = ExportTraceServiceResponse()
    if result.rejected_spans or result.error_message:
        response.partial_success.rejected_spans = max(0, int(result.rejected_spans))
        response.partial_success.error_message = result.error_message or ""
    stats.record(transport, Outcome.ACCEPTED, result.accepted_spans, result.rejected_spans)
    return Ingested(Outcome.ACCEPTED, response=response)
