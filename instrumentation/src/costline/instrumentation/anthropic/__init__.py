"""Patching of the anthropic SDK (2.x).

`messages.create` and the `messages.stream(...)` helper (which posts through `partial(self._post)`, not through
`create`) both funnel through `SyncAPIClient.request` / `AsyncAPIClient.request`, so those are wrapped
(`choke_point.ChokePointPatcher`).

The SDK has its own OpenTelemetry tracing, on by default: one call span per API call. There must never be two
GenAI spans for one call, so when the client will make its own span Costline makes none; it only publishes the
call's API-key fingerprint for `CostlineSpanProcessor`, which stamps it and the owner keys onto the SDK's span as
it starts (the SDK already records semconv input tokens including cache, output, cache and TTFT). When the user
disabled the SDK's tracing, Costline creates the span itself.

The SDK's span leaves out what Costline bills beyond those: 1-hour cache writes under Costline's name and the server
tool use (web searches, code executions). The SDK reads its response attributes from a table of its own
(`anthropic._tracing.SPAN_ATTRIBUTES`, attribute -> path in the response body), for plain and streamed messages
alike; `instrument` adds Costline's three rows to it and `uninstrument` takes them out, so the SDK's own reading puts
them on its span at no cost per call. An SDK without that table keeps its span as it is.

`AnthropicBedrock` and `AnthropicVertex` clients (and their async twins) talk to AWS Bedrock and Google Vertex AI,
billed at those platforms' prices: their spans carry `aws.bedrock` and `gcp.vertex_ai` as the provider (the SDK's
own spans do too). Their requests reach `request` with the same `/v1/messages` path before the client rewrites it.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

from opentelemetry import trace

from costline import attributes as A
from costline.instrumentation.anthropic.usage import MessageStreamObserver, record_message
from costline.instrumentation.call_span import CallSpan
from costline.instrumentation.choke_point import ChokePointPatcher
from costline.instrumentation.streams import StreamObserver

_SDK_SPAN = "anthropic.messages.create"
"""The SDK's span name of a messages call (its table's key)."""

SDK_SPAN_ROWS: Mapping[str, tuple[tuple[str, ...], str]] = {
    A.COSTLINE_USAGE_CACHE_WRITE_1H_TOKENS: (("usage", "cache_creation", "ephemeral_1h_input_tokens"), "integer"),
    A.COSTLINE_USAGE_WEB_SEARCHES: (("usage", "server_tool_use", "web_search_requests"), "integer"),
    A.COSTLINE_USAGE_CODE_EXECUTIONS: (("usage", "server_tool_use", "code_execution_requests"), "integer"),
}
"""What Costline adds to the SDK's table of response attributes, in its format: (path in the body, type)."""

_PROVIDERS = {"aws.bedrock": A.PROVIDER_AWS_BEDROCK, "gcp.vertex_ai": A.PROVIDER_GCP_VERTEX_AI}


class AnthropicPatcher(ChokePointPatcher):
    """Wraps and unwraps the anthropic SDK. One instance per `CostlineInstrumentor.instrument()`."""

    library = "anthropic"
    operations: Mapping[str, str] = {"/v1/messages": A.OPERATION_CHAT, "/v1/messages?beta=true": A.OPERATION_CHAT}
    publishes_fingerprint = True

    def instrument(self) -> None:
        super().instrument()
        rows = _sdk_response_rows()
        if rows is not None:
            for name, row in SDK_SPAN_ROWS.items():
                rows.setdefault(name, row)

    def uninstrument(self) -> None:
        super().uninstrument()
        rows = _sdk_response_rows()
        if rows is not None:
            for name, row in SDK_SPAN_ROWS.items():
                if rows.get(name) == row:
                    del rows[name]

    def provider(self, instance: Any, base_url: Any, is_async: bool) -> str:
        # The SDK names a platform client's provider itself (`_gen_ai_provider_name`, what its own spans carry);
        # the class names are the fallback for an SDK version without it.
        named = getattr(type(instance), "_gen_ai_provider_name", None)
        if isinstance(named, str) and named in _PROVIDERS:
            return _PROVIDERS[named]
        name = type(instance).__name__
        if "Bedrock" in name:
            return A.PROVIDER_AWS_BEDROCK
        if "Vertex" in name:
            return A.PROVIDER_GCP_VERTEX_AI
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


def _sdk_response_rows() -> MutableMapping[str, Any] | None:
    """The SDK's table of a messages span's response attributes, when this SDK version has it as Costline knows it."""
    try:
        from anthropic import _tracing

        rows = _tracing.SPAN_ATTRIBUTES[_SDK_SPAN]["response"]
        return rows if isinstance(rows, MutableMapping) else None
    except Exception:  # an SDK version without the table (or with another shape): its span stays as it is
        return None
