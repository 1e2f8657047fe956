"""`CostlineSpanProcessor`: stamps ownership onto every GenAI span in the process, whoever made it.

Spans from the anthropic SDK's own tracing, the official OpenTelemetry GenAI instrumentations, OpenLLMetry, OpenLIT
and OpenInference are started by code Costline does not control. This processor sees each span as it starts and,
when the span describes an LLM call, sets the owner keys from the W3C baggage of the span's parent context and the
fingerprint of the API key in use (and the guard's warn-mode verdict on the call, when there is one). Costline's own
spans carry these already and are skipped. With the guard on, it also adds the cost of those spans, as they end, to
the guard's local spend estimate. While an SDK call whose span the SDK makes runs, it notes that span when it starts
recording (`sampling.note_sdk_span`): a span the sampler drops never reaches a span processor, and the call is then
recorded on the billing path.

It never deletes anything (a started span cannot lose attributes); what other instrumentations record is theirs.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from costline import attributes as A
from costline.instrumentation.call_span import CURRENT_FINGERPRINT, CURRENT_GUARD_WARNING, owner_attributes
from costline.instrumentation.guard import swallow
from costline.instrumentation.sampling import SDK_SPAN_SEEN, note_sdk_span

_GENAI_MARKERS = (A.GEN_AI_OPERATION_NAME, A.GEN_AI_PROVIDER_NAME, A.GEN_AI_SYSTEM, "llm.request.type")

_GENAI_SCOPE_PREFIXES = (
    "com.anthropic.sdk",
    "opentelemetry.instrumentation.genai",
    "opentelemetry.instrumentation.openai",
    "opentelemetry.instrumentation.anthropic",
    "openinference.instrumentation",
    "openlit",
)
"""Scopes whose spans are LLM calls even when their GenAI attributes are only set after start."""


def is_genai_span(span: Span) -> bool:
    attrs = span.attributes or {}
    for marker in _GENAI_MARKERS:
        if marker in attrs:
            return True
    if attrs.get("openinference.span.kind") == "LLM":
        return True
    scope = span.instrumentation_scope
    return scope is not None and scope.name.startswith(_GENAI_SCOPE_PREFIXES)


class CostlineSpanProcessor(SpanProcessor):
    """Adds owner keys and the API-key fingerprint to GenAI spans at start, and feeds the guard's local spend
    estimate from the GenAI spans other code made as they end. Cheap for every other span."""

    def __init__(self, stamp: bool = True) -> None:
        self.enabled = stamp
        """Stamping foreign spans (off with `COSTLINE_STAMP_FOREIGN_SPANS=false`, and after `uninstrument()`)."""
        self.guard: Any = None
        """The guard (`policy_guard.Guard`) when it is on. Costline's own calls add their cost themselves as they
        end (`CallSpan.end`): one processor for both keeps the SDK's per-span processor loop short."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if SDK_SPAN_SEEN.get() is not None:  # an SDK call is waiting to learn whether its span records
            note_sdk_span(span)
        if not self.enabled:
            return
        try:
            scope = span.instrumentation_scope
            if scope is not None and scope.name == A.INSTRUMENTATION_SCOPE:
                return  # Costline's own span: stamped when it was created.
            if not is_genai_span(span):
                return
            attrs = span.attributes or {}
            stamp = {k: v for k, v in owner_attributes(parent_context).items() if k not in attrs}
            fp = CURRENT_FINGERPRINT.get()
            if fp is not None and A.COSTLINE_API_KEY_FINGERPRINT not in attrs:
                stamp[A.COSTLINE_API_KEY_FINGERPRINT] = fp
            warned = CURRENT_GUARD_WARNING.get()
            if warned is not None:
                stamp[A.COSTLINE_GUARD_ACTION] = A.GUARD_WARNED
                stamp[A.COSTLINE_GUARD_RULE] = warned
            if stamp:
                span.set_attributes(stamp)
        except Exception:
            swallow("stamping ownership on a span")

    def on_end(self, span: ReadableSpan) -> None:
        guard = self.guard
        if guard is None:
            return
        try:
            scope = span.instrumentation_scope
            if scope is not None and scope.name == A.INSTRUMENTATION_SCOPE:
                return  # Costline's own call: added when it ended.
            attrs = span.attributes
            if attrs and A.GEN_AI_USAGE_OUTPUT_TOKENS in attrs:
                guard.record(attrs)
        except Exception:
            swallow("estimating a span's cost for the guard")

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
