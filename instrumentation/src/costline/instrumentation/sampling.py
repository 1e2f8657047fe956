"""Sampling-safe cost: an LLM call the application's trace sampler drops still reaches the processor.

A head sampler (`OTEL_TRACES_SAMPLER=traceidratio`, `OTEL_TRACES_SAMPLER_ARG=0.1`) decides, as each span starts,
whether it is recorded; a dropped span is a `NonRecordingSpan` that keeps no attribute and is never exported. Without
this module an app that samples 10 % of its traces bills 10 % of its LLM calls.

So a call span that comes back from the application's tracer not recording is recorded on the *billing path*
instead: a `TracerProvider` of Costline's own, which samples everything and exports only Costline's call spans, to
the same OTLP endpoint the application's traces go to (`COSTLINE_BILLING_ENDPOINT` to send them elsewhere). The
application's sampling is otherwise kept:

* the span recorded there is marked `costline.sampled_out=true`: the processor bills it like any call span and does
  not forward it downstream (`--forward-otlp`), so a trace backend behind the processor still sees only what the
  app sampled;
* the application's own non-recording span stays the current span while the SDK runs, so the HTTP client's spans
  and the trace context sent to the provider follow the application's decision, not the billing path's;
* the billing span keeps the trace id and the parent of the application's context (a call can still be grouped by
  trace), and carries the application's resource (service name, owner keys in `OTEL_RESOURCE_ATTRIBUTES`).

A sampled call goes through the application's pipeline as before; a dropped one goes through the billing path:
each call is exported once. Nothing is made before the first dropped call: an app that samples everything never
builds the path (its only cost per call is asking the span whether it records).

The anthropic SDK's own span (when the SDK traces into the application's provider, Costline makes none) is dropped
by the same sampler. `CostlineSpanProcessor` notes the SDK spans that start recording during a call
(`watch_sdk_span`); when none did, the call is recorded on the billing path from its response, as if Costline had
made the span.

The exporter is the OTLP one the application's traces use: `opentelemetry-exporter-otlp-proto-grpc` or `-http`
(installed with `opentelemetry-distro[otlp]`), chosen by `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` /
`OTEL_EXPORTER_OTLP_PROTOCOL` as the SDK's configurator does, configured by the same `OTEL_EXPORTER_OTLP_*`
variables. Neither is a dependency of this distribution: without one the path is off and says so once in the log.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from costline import attributes as A
from costline.instrumentation.environment_variables import (
    COSTLINE_BILLING_ENDPOINT,
    COSTLINE_SAMPLING_SAFE,
)
from costline.instrumentation.guard import swallow
from costline.instrumentation.version import __version__

log = logging.getLogger("costline.instrumentation")

SDK_SPAN_SEEN: ContextVar[list | None] = ContextVar("costline_sdk_span_seen", default=None)
"""While an SDK call whose span the SDK makes runs: a list that `CostlineSpanProcessor.on_start` appends the SDK's
span to when it records (a dropped span never reaches a span processor)."""

_SDK_SCOPE_PREFIX = "com.anthropic.sdk"


def note_sdk_span(span: Any) -> None:
    """Called by `CostlineSpanProcessor.on_start` for every recording span: notes the SDK's call span."""
    seen = SDK_SPAN_SEEN.get()
    if seen is not None:
        scope = span.instrumentation_scope
        if scope is not None and scope.name.startswith(_SDK_SCOPE_PREFIX):
            seen.append(span)


def enabled(kwargs: Mapping[str, Any], environ: Mapping[str, str]) -> bool:
    """Whether the billing path is on: `instrument(sampling_safe=...)`, else `COSTLINE_SAMPLING_SAFE` (default on)."""
    value = kwargs.get("sampling_safe")
    if value is None:
        return environ.get(COSTLINE_SAMPLING_SAFE, "true").strip().lower() != "false"
    return bool(value)


class BillingPath:
    """Costline's own tracer provider for the calls the application's sampler drops, made at the first such call."""

    def __init__(self, app_provider: Any, exporter: Any = None) -> None:
        self._app_provider = app_provider
        self._exporter = exporter
        """An exporter given in code (`instrument(billing_exporter=...)`), else the OTLP one from the environment."""
        self._tracer: Any = None
        self._provider: Any = None
        self._failed = False
        self._lock = threading.Lock()

    def tracer(self) -> Any:
        """The billing tracer, made on first use; None when it cannot be made (said once in the log), and while the
        application has no OpenTelemetry SDK set up: then nothing of it is recorded or exported, no sampler dropped
        anything, and Costline sends nothing on its own either."""
        tracer = self._tracer
        if tracer is not None or self._failed:
            return tracer
        app = self._sdk_provider()
        if app is None:
            return None
        with self._lock:
            if self._tracer is None and not self._failed:
                try:
                    self._tracer = self._make(app)
                except Exception:
                    self._failed = True
                    swallow("making the billing path for sampled-out calls")
                if self._tracer is None:
                    self._failed = True
        return self._tracer

    def _sdk_provider(self) -> Any:
        """The application's SDK tracer provider: the one instrumented into, or, for the global proxy, the one set
        since; None when there is none."""
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider

        app = self._app_provider
        if not isinstance(app, TracerProvider):
            app = trace.get_tracer_provider()
        return app if isinstance(app, TracerProvider) else None

    def _make(self, app: Any) -> Any:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ALWAYS_ON

        exporter = self._exporter if self._exporter is not None else otlp_exporter(os.environ)
        if exporter is None:
            return None
        provider = TracerProvider(sampler=ALWAYS_ON, resource=app.resource)
        provider.add_span_processor(BatchSpanProcessor(exporter))
        self._provider = provider
        return provider.get_tracer(A.INSTRUMENTATION_SCOPE, __version__)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        provider = self._provider
        return provider.force_flush(timeout_millis) if provider is not None else True

    def shutdown(self) -> None:
        provider, self._provider, self._tracer = self._provider, None, None
        if provider is not None:
            provider.shutdown()


def otlp_exporter(environ: Mapping[str, str]) -> Any:
    """The OTLP span exporter the application's traces use, to `COSTLINE_BILLING_ENDPOINT` when set; None (logged
    once) when no OTLP exporter is installed."""
    protocol = (environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "grpc").strip().lower()
    endpoint = (environ.get(COSTLINE_BILLING_ENDPOINT) or "").strip() or None
    try:
        if protocol.startswith("http"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            if endpoint is not None and not endpoint.rstrip("/").endswith("/v1/traces"):
                endpoint = endpoint.rstrip("/") + "/v1/traces"  # a base URL, as OTEL_EXPORTER_OTLP_ENDPOINT takes
        else:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (  # type: ignore[no-redef]
                OTLPSpanExporter,
            )
    except ImportError:
        log.warning("costline: no OTLP exporter for %s is installed, so LLM calls the trace sampler drops are not "
                    "billed (install opentelemetry-exporter-otlp, or set %s=false)", protocol,
                    COSTLINE_SAMPLING_SAFE)
        return None
    return OTLPSpanExporter(endpoint=endpoint) if endpoint is not None else OTLPSpanExporter()
