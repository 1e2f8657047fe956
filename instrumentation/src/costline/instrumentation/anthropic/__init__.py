"""Patching of the anthropic SDK (2.x).

`messages.create` and the `messages.stream(...)` helper (which posts through `partial(self._post)`, not through
`create`) both funnel through `SyncAPIClient.request` / `AsyncAPIClient.request`, so those are wrapped
(`choke_point.ChokePointPatcher`).

The SDK has its own OpenTelemetry tracing, on by default: one call span per API call. There must never be two
GenAI spans for one call, so when the client will make its own span Costline makes none; it only publishes the
call's API-key fingerprint for `CostlineSpanProcessor`, which stamps it and the owner keys onto the SDK's span as
it starts (the SDK already records semconv input tokens including cache, output, cache and TTFT). When the user
disabled the SDK's tracing, Costline creates the span itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import trace

from costline import attributes as A
from costline.instrumentation.anthropic.usage import MessageStreamObserver, record_message
from costline.instrumentation.call_span import CallSpan
from costline.instrumentation.choke_point import ChokePointPatcher
from costline.instrumentation.streams import StreamObserver


class AnthropicPatcher(ChokePointPatcher):
    """Wraps and unwraps the anthropic SDK. One instance per `CostlineInstrumentor.instrument()`."""

    library = "anthropic"
    operations: Mapping[str, str] = {"/v1/messages": A.OPERATION_CHAT, "/v1/messages?beta=true": A.OPERATION_CHAT}
    publishes_fingerprint = True

    def provider(self, instance: Any, base_url: Any, is_async: bool) -> str:
        return A.PROVIDER_ANTHROPIC

    def sdk_makes_the_span(self, instance: Any) -> bool:
        """Whether this client makes its own span for each call, into the tracer provider Costline uses.

        The SDK traces with the provider given in its `open_telemetry` option, else the global one. A client whose
        span goes to another provider (or nowhere) leaves Costline's pipeline without a span for the call, so
        Costline makes one.
        """
        try:
            if instance._tracer is None:
                return False
            options = instance._open_telemetry
        except AttributeError:
            return False  # an SDK version without its own tracing
        sdk_provider = options.get("tracer_provider") if isinstance(options, dict) else None
        return (sdk_provider or trace.get_tracer_provider()) is self._tracer_provider

    def read(self, call: CallSpan, options: Any, stream: bool, hide: bool, result: Any,
             is_async: bool) -> StreamObserver | None:
        if stream and (hasattr(result, "__iter__") or hasattr(result, "__aiter__")) and hasattr(result, "response"):
            return MessageStreamObserver(call)
        record_message(call, result)
        return None
