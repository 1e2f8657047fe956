"""OTLP receivers: what OTLP/HTTP (`http.py`) and OTLP/gRPC (`grpc.py`) share.

Three signals: traces (the pipeline bills their LLM spans), logs (coding assistants' request events, billed by
`ingest.assistants`) and metrics (accepted and counted, never billed: `MetricPoints`).

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

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
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
    """The part of `Pipeline` a receiver uses (and of `AssistantLogs`, `MetricPoints` for the other signals)."""

    def ingest(self, request: ExportTraceServiceRequest) -> IngestResult: ...


TRACES, LOGS, METRICS = "traces", "logs", "metrics"
_ITEMS = {TRACES: ("costline_receiver_spans", "Spans"), LOGS: ("costline_receiver_log_records", "Log records"),
          METRICS: ("costline_receiver_metric_points", "Metric data points")}
"""Signal → the family counting its items, and what they are."""
_RESPONSES: dict[str, tuple[type[Message], str]] = {
    TRACES: (ExportTraceServiceResponse, "rejected_spans"),
    LOGS: (ExportLogsServiceResponse, "rejected_log_records"),
    METRICS: (ExportMetricsServiceResponse, "rejected_data_points"),
}
"""Signal → its export response and the partial-success field counting what was rejected."""


class MetricPoints:
    """`/v1/metrics` and the gRPC MetricsService: accepted, their data points counted, nothing billed.

    Coding assistants send metrics beside their events (`claude_code.cost.usage`, `gemini_cli.token.usage`, ...).
    They are sums over an export interval: a resent export cannot be told from a new one, nor split into requests,
    so billing them could bill twice with nothing to deduplicate by. The events (`/v1/logs`) are billed instead;
    metrics are acknowledged so that exporters do not retry them forever."""

    def ingest(self, request: ExportMetricsServiceRequest) -> IngestResult:
        points = 0
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    if kind is not None:
                        points += len(getattr(metric, kind).data_points)
        return IngestResult(accepted_spans=points, rejected_spans=0)


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
    response: Message | None = None
    """The signal's export response (`ExportTraceServiceResponse`, ...) when accepted."""
    message: str = ""


class ReceiverStats(Collector):
    """Requests and spans per transport and outcome, so refused traffic is visible without reading logs.

    These counters describe the receivers only; cost metrics come from the pipeline's collector and never see a
    request that was refused.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str], int] = {}
        self._items: dict[tuple[str, str, str], int] = {}
        """(signal, transport, accepted | rejected) -> spans, log records or metric data points."""

    def record(self, transport: str, outcome: Outcome, accepted_spans: int = 0, rejected_spans: int = 0,
               signal: str = TRACES) -> None:
        """One request of `signal` (every signal's requests count in `costline_receiver_requests`; its items in
        the signal's own family)."""
        with self._lock:
            key = (transport, outcome.value)
            self._requests[key] = self._requests.get(key, 0) + 1
            for result, n in (("accepted", accepted_spans), ("rejected", rejected_spans)):
                if n:
                    item = (signal, transport, result)
                    self._items[item] = self._items.get(item, 0) + n

    def collect(self) -> Iterator[CounterMetricFamily]:
        with self._lock:
            requests, items = dict(self._requests), dict(self._items)
        family = CounterMetricFamily(
            "costline_receiver_requests", "OTLP export requests received (traces, logs, metrics), by transport and "
            "outcome.", labels=["transport", "outcome"],
        )
        for (transport, outcome), value in sorted(requests.items()):
            family.add_metric([transport, outcome], value)
        yield family
        for signal, (name, what) in _ITEMS.items():
            family = CounterMetricFamily(
                name, f"{what} in committed OTLP requests, accepted or rejected (partial success).",
                labels=["transport", "outcome"],
            )
            for (item_signal, transport, outcome), value in sorted(items.items()):
                if item_signal == signal:
                    family.add_metric([transport, outcome], value)
            yield family


def ingest(pipeline: Ingestor, request: Message, transport: str, stats: ReceiverStats, signal: str = TRACES
           ) -> Ingested:
    """Run the pipeline (or the signal's ingestor) on a decoded request and classify what happened; returns once the
    ledger has committed."""
    try:
        result = pipeline.ingest(request)  # type: ignore[arg-type]
    except LedgerUnavailable as err:
        log.warning("ledger unavailable, asking the exporter to retry: %s", err)
        stats.record(transport, Outcome.UNAVAILABLE, signal=signal)
        return Ingested(Outcome.UNAVAILABLE, message=LEDGER_UNAVAILABLE_MESSAGE)
    except Exception:
        log.exception("pipeline failed on an OTLP %s request (%s)", signal, transport)
        stats.record(transport, Outcome.FAILED, signal=signal)
        return Ingested(Outcome.FAILED, message=INTERNAL_ERROR_MESSAGE)
    response_type, rejected_field = _RESPONSES[signal]
    response = response_type()
    if result.rejected_spans or result.error_message:
        setattr(response.partial_success, rejected_field, max(0, int(result.rejected_spans)))  # type: ignore[attr-defined]
        response.partial_success.error_message = result.error_message or ""  # type: ignore[attr-defined]
    stats.record(transport, Outcome.ACCEPTED, result.accepted_spans, result.rejected_spans, signal=signal)
    return Ingested(Outcome.ACCEPTED, response=response)
