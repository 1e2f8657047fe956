"""Optional forwarding of every received span downstream over OTLP/HTTP (a Collector, Tempo, Jaeger).

The processor can sit inline in a trace pipeline: spans go on, LLM spans enriched with what the processor worked out
(`costline.cost.usd` and the draft semconv `gen_ai.usage.cost.amount`/`.currency`/`.source`, `costline.unpriced`,
the resolved owner keys), LLM spans cut down to an allowlist, other spans
stripped of content by a denylist and every text scrubbed of keys (`redact.py`: what `docs/attributes.md` says never
appears downstream). An LLM span marked `costline.sampled_out` (a call the application's trace sampler dropped, sent
by the instrumentation's billing path only to be billed) is not forwarded: downstream keeps the app's sampling.

Forwarding must never slow ingestion: `submit` only appends to a bounded queue (measured in spans) and returns; a
background thread copies, rewrites, compresses and posts. When the downstream is slow or down and the queue is full,
whole requests are dropped and counted (`costline_forward_spans_total{outcome="dropped"}`) — the ledger already has
the cost, only the downstream copy of the trace is lost.
"""

from __future__ import annotations

import gzip
import http.client
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from costline import attributes as A
from costline.processor.ingest.redact import redact_llm_span, redact_span, scrub_attributes

log = logging.getLogger("costline.processor.ingest.forward")

COST_ATTRIBUTE = A.COSTLINE_COST_USD
UNPRICED_ATTRIBUTE = A.COSTLINE_UNPRICED
SEMCONV_COST = (A.GEN_AI_USAGE_COST_AMOUNT, A.GEN_AI_USAGE_COST_CURRENCY, A.GEN_AI_USAGE_COST_SOURCE)
"""The draft GenAI semantic convention's cost: amount, currency (`USD`) and who computed it (`costline`), written
beside `costline.cost.usd` for backends that read the convention."""
CURRENCY, COST_SOURCE = "USD", "costline"
RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
"""Retryable per the OTLP/HTTP spec."""


@dataclass(frozen=True, slots=True)
class Enrichment:
    """What the pipeline learned about one LLM span, written onto its forwarded copy."""

    cost_usd: float | None
    """USD for the call; None when it could not be priced (then `unpriced` is true and no cost is written)."""
    unpriced: bool
    owner: Mapping[str, str] = field(default_factory=dict)
    """Resolved owner keys by attribute name (`costline.team` -> `search`)."""


SpanKey = tuple[bytes, bytes]
"""(trace_id, span_id) of a span in the request."""


def rewrite(request: ExportTraceServiceRequest, enrichments: Mapping[SpanKey, Enrichment],
            llm_spans: Collection[SpanKey]) -> ExportTraceServiceRequest:
    """A copy of `request` fit to leave the processor: LLM spans (`llm_spans`, as the pipeline normalised them:
    billed, duplicate or rejected) enriched where billed and cut to the allowlist, other spans without content,
    keys scrubbed from every text (`redact.py`)."""
    out = ExportTraceServiceRequest()
    out.CopyFrom(request)
    for resource_spans in out.resource_spans:
        scrub_attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scrub_attributes(scope_spans.scope.attributes)
            sampled_out = []
            for span in scope_spans.spans:
                key = (span.trace_id, span.span_id)
                enrichment = enrichments.get(key)
                if enrichment is not None or key in llm_spans:
                    if _sampled_out(span.attributes):
                        sampled_out.append(span)
                        continue
                    if enrichment is not None:
                        _enrich(span.attributes, enrichment)
                    redact_llm_span(span)
                else:
                    redact_span(span)
            for span in sampled_out:
                scope_spans.spans.remove(span)
    return out


def _sampled_out(attributes) -> bool:  # attributes: RepeatedCompositeFieldContainer[KeyValue]
    return any(kv.key == A.COSTLINE_SAMPLED_OUT and kv.value.bool_value for kv in attributes)


def _enrich(attributes, enrichment: Enrichment) -> None:  # attributes: RepeatedCompositeFieldContainer[KeyValue]
    written: dict[str, KeyValue] = {}
    names = {COST_ATTRIBUTE, UNPRICED_ATTRIBUTE, *SEMCONV_COST, *enrichment.owner}
    # The processor's resolution replaces whatever the span said: downstream sees one owner, the billed one, and one
    # cost, the bill's (a cost the span reported itself is in the ledger beside it; an unpriced call has none).
    kept = [kv for kv in attributes if kv.key not in names]
    del attributes[:]
    attributes.extend(kept)
    if enrichment.cost_usd is not None and not enrichment.unpriced:
        written[COST_ATTRIBUTE] = KeyValue(key=COST_ATTRIBUTE)
        written[COST_ATTRIBUTE].value.double_value = float(enrichment.cost_usd)
        amount, currency, source = (KeyValue(key=key) for key in SEMCONV_COST)
        amount.value.double_value = float(enrichment.cost_usd)
        currency.value.string_value = CURRENCY
        source.value.string_value = COST_SOURCE
        written.update((kv.key, kv) for kv in (amount, currency, source))
    written[UNPRICED_ATTRIBUTE] = KeyValue(key=UNPRICED_ATTRIBUTE)
    written[UNPRICED_ATTRIBUTE].value.bool_value = enrichment.unpriced
    for key, value in enrichment.owner.items():
        written[key] = KeyValue(key=key)
        written[key].value.string_value = value
    attributes.extend(written.values())


def traces_url(endpoint: str) -> str:
    """Accept a base endpoint (`http://collector:4318`) or the full `/v1/traces` URL, like OTEL_EXPORTER_OTLP_*."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else endpoint + "/v1/traces"


class Forwarder(Collector):
    """Bounded queue plus one sender thread posting OTLP/HTTP protobuf (gzip) over a kept-alive connection."""

    def __init__(self, endpoint: str, *, max_queue_spans: int = 100_000, timeout_s: float = 10.0,
                 max_attempts: int = 4, headers: Mapping[str, str] | None = None) -> None:
        self.url = traces_url(endpoint)
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"forward endpoint {endpoint!r}: expected http(s)://host[:port][/v1/traces]")
        self._parts = parts
        self._max_queue_spans = max_queue_spans
        self._timeout_s = timeout_s
        self._max_attempts = max_attempts
        self._headers = dict(headers or {})
        self._queue: deque[tuple[ExportTraceServiceRequest, Mapping[SpanKey, Enrichment], Collection[SpanKey], int]] = (
            deque())
        self._queued_spans = 0
        self._lock = threading.Condition()
        self._counts = {"sent": 0, "dropped": 0, "failed": 0}
        self._stopping = False
        self._connection: http.client.HTTPConnection | None = None
        self._thread = threading.Thread(target=self._run, name="costline-forward", daemon=True)

    def start(self) -> Forwarder:
        self._thread.start()
        return self

    def submit(self, request: ExportTraceServiceRequest, enrichments: Mapping[SpanKey, Enrichment],
               llm_spans: Collection[SpanKey]) -> bool:
        """Queue a committed request for forwarding; never blocks. False when it was dropped (queue full).

        The caller must not modify `request` afterwards: it is copied on the sender thread, not here, to keep the
        copy off the ingestion path.
        """
        spans = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        with self._lock:
            if self._stopping or self._queued_spans + spans > self._max_queue_spans:
                self._counts["dropped"] += spans
                return False
            self._queue.append((request, enrichments, llm_spans, spans))
            self._queued_spans += spans
            self._lock.notify()
        return True

    def stop(self, timeout_s: float = 5.0) -> None:
        """Send what is queued within `timeout_s`, then drop (and count) the rest."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            self._lock.wait_for(lambda: not self._queue, timeout=timeout_s)
            self._stopping = True
            self._lock.notify_all()
        self._thread.join(max(0.0, deadline - time.monotonic()) + 0.5)
        with self._lock:
            while self._queue:
                self._counts["dropped"] += self._queue.popleft()[3]
            self._queued_spans = 0

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        with self._lock:
            counts, queued = dict(self._counts), self._queued_spans
        family = CounterMetricFamily("costline_forward_spans", "Spans forwarded downstream over OTLP, by outcome.",
                                     labels=["outcome"])
        for outcome, value in sorted(counts.items()):
            family.add_metric([outcome], value)
        yield family
        yield GaugeMetricFamily("costline_forward_queue_spans", "Spans waiting to be forwarded.", value=queued)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._queue or self._stopping)
                if not self._queue:
                    return
                request, enrichments, llm_spans, spans = self._queue[0]
            try:
                body = gzip.compress(rewrite(request, enrichments, llm_spans).SerializeToString(), compresslevel=1)
                outcome = "sent" if self._post(body) else "failed"
            except Exception:
                log.exception("forwarding a request failed")
                outcome = "failed"
            with self._lock:
                self._queue.popleft()
                self._queued_spans -= spans
                self._counts[outcome] += spans
                self._lock.notify_all()

    def _post(self, body: bytes) -> bool:
        headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip", **self._headers}
        path = self._parts.path + (f"?{self._parts.query}" if self._parts.query else "")
        for attempt in range(self._max_attempts):
            try:
                connection = self._connect()
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                if 200 <= response.status < 300:
                    return True
                if response.status not in RETRYABLE_STATUS:
                    log.warning("downstream %s refused forwarded spans: HTTP %s", self.url, response.status)
                    return False
                delay = _retry_after(response.getheader("Retry-After"))
            except (OSError, http.client.HTTPException) as err:
                log.debug("forwarding to %s failed (%s), attempt %d", self.url, err, attempt + 1)
                self._close()
                delay = None
            if self._stopping or attempt + 1 == self._max_attempts:
                break
            time.sleep(delay if delay is not None else min(5.0, 0.25 * 2**attempt * random.uniform(0.8, 1.2)))
        log.warning("giving up forwarding a request to %s after %d attempts", self.url, self._max_attempts)
        return False

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = http.client.HTTPSConnection if self._parts.scheme == "https" else http.client.HTTPConnection
            self._connection = kind(self._parts.hostname, self._parts.port, timeout=self._timeout_s)
        return self._connection

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _retry_after(value: str | None) -> float | None:
    try:
        return min(30.0, max(0.0, float(value))) if value else None
    except ValueError:
        return None
