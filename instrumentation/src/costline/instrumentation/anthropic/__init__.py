"""Patching of the anthropic SDK (2.x).

`messages.create` and the `messages.stream(...)` helper (which posts through `partial(self._post)`, not through
`create`) both funnel through `SyncAPIClient.request` / `AsyncAPIClient.request`, so those are wrapped.

The SDK has its own OpenTelemetry tracing, on by default: one call span per API call. There must never be two
GenAI spans for one call, so when the client will make its own span Costline makes none; it only publishes the
call's API-key fingerprint for `CostlineSpanProcessor`, which stamps it and the owner keys onto the SDK's span as
it starts (the SDK already records semconv input tokens including cache, output, cache and TTFT). When the user
disabled the SDK's tracing, Costline creates the span itself.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from wrapt import wrap_function_wrapper

from costline import attributes as A
from costline.fingerprint import fingerprint
from costline.instrumentation.anthropic.usage import MessageStreamObserver, record_message
from costline.instrumentation.call_span import (
    CURRENT_FINGERPRINT,
    CURRENT_GUARD_WARNING,
    CallSpan,
    acount_retry,
    count_retry,
    owner_attributes,
)
from costline.instrumentation.guard import swallow
from costline.instrumentation.policy_guard import Guard, judge
from costline.instrumentation.streams import AsyncStreamProxy, SyncStreamProxy

_BASE_CLIENT = "anthropic._base_client"
_MESSAGES_PATHS = frozenset({"/v1/messages", "/v1/messages?beta=true"})


def _sdk_span_is_ours(instance: Any, tracer_provider: Any) -> bool:
    """Whether this client makes its own span for each call, into the tracer provider Costline uses.

    The SDK traces with the provider given in its `open_telemetry` option, else the global one. A client whose span
    goes to another provider (or nowhere) leaves Costline's pipeline without a span for the call, so Costline
    makes one.
    """
    try:
        if instance._tracer is None:
            return False
        options = instance._open_telemetry
    except AttributeError:
        return False  # an SDK version without its own tracing
    sdk_provider = options.get("tracer_provider") if isinstance(options, dict) else None
    return (sdk_provider or trace.get_tracer_provider()) is tracer_provider


class AnthropicPatcher:
    """Wraps and unwraps the anthropic SDK. One instance per `CostlineInstrumentor.instrument()`."""

    def __init__(self, tracer: trace.Tracer, tracer_provider: Any, guard: Guard | None = None) -> None:
        self._tracer = tracer
        self._tracer_provider = tracer_provider
        self._guard = guard

    def instrument(self) -> None:
        wrap_function_wrapper(_BASE_CLIENT, "SyncAPIClient.request", self._request)
        wrap_function_wrapper(_BASE_CLIENT, "AsyncAPIClient.request", self._arequest)
        # Runs once before each retry, never on the happy path.
        wrap_function_wrapper(_BASE_CLIENT, "SyncAPIClient._sleep_for_retry", count_retry)
        wrap_function_wrapper(_BASE_CLIENT, "AsyncAPIClient._sleep_for_retry", acount_retry)

    def uninstrument(self) -> None:
        from opentelemetry.instrumentation.utils import unwrap

        base = _base_client()
        unwrap(base.SyncAPIClient, "request")
        unwrap(base.AsyncAPIClient, "request")
        unwrap(base.SyncAPIClient, "_sleep_for_retry")
        unwrap(base.AsyncAPIClient, "_sleep_for_retry")

    def _prepare(self, instance: Any, args: tuple, kwargs: dict) -> tuple[CallSpan | None, str | None]:
        """(own span or None, fingerprint). Never raises."""
        try:
            options = args[1] if len(args) > 1 else kwargs.get("options")
            if getattr(options, "url", None) not in _MESSAGES_PATHS:
                return None, None
            api_key = getattr(instance, "api_key", None)
            fp = fingerprint(api_key) if isinstance(api_key, str) and api_key else None
            if _sdk_span_is_ours(instance, self._tracer_provider):
                return None, fp
            return self._call_span(instance, options, kwargs, fp), fp
        except Exception:
            swallow("starting an anthropic call span")
            return None, None

    def _call_span(self, instance: Any, options: Any, kwargs: dict, fp: str | None) -> CallSpan:
        body = options.json_data if isinstance(options.json_data, dict) else {}
        base_url = instance.base_url
        attrs: dict[str, Any] = {A.GEN_AI_PROVIDER_NAME: A.PROVIDER_ANTHROPIC, A.SERVER_ADDRESS: base_url.host}
        if base_url.port is not None:  # None when it is the scheme's default
            attrs[A.SERVER_PORT] = base_url.port
        if kwargs.get("stream"):
            attrs[A.GEN_AI_REQUEST_STREAM] = True
        if fp is not None:
            attrs[A.COSTLINE_API_KEY_FINGERPRINT] = fp
        model = body.get("model")
        return CallSpan(self._tracer, A.OPERATION_CHAT, model if isinstance(model, str) else None, attrs)

    def _judge(self, guard: Guard, call: CallSpan | None, fp: str | None, instance: Any, args: tuple,
               kwargs: dict) -> str | None:
        """The guard's verdict before the request is sent. When the SDK makes the call's span, the verdict is
        taken from the call's own attributes: a blocked call gets a span of Costline's to record it (the SDK's
        span would only start once the request is on its way), and a warned call's rule is returned, for
        `CostlineSpanProcessor` to mark the SDK's span with as it starts."""
        if call is not None:
            judge(guard, call)
            return None
        try:
            options = args[1] if len(args) > 1 else kwargs.get("options")
            if getattr(options, "url", None) not in _MESSAGES_PATHS:
                return
            body = options.json_data if isinstance(options.json_data, dict) else {}
            attrs = {A.GEN_AI_PROVIDER_NAME: A.PROVIDER_ANTHROPIC, A.GEN_AI_REQUEST_MODEL: body.get("model"),
                     A.COSTLINE_API_KEY_FINGERPRINT: fp, **owner_attributes()}
        except Exception:
            swallow("reading an anthropic call for the guard")
            return None
        refusal = guard.check(attrs)
        if refusal is None:
            return None
        if not guard.block:
            guard.warn_once(attrs, refusal)
            return str(getattr(refusal, "rule", ""))
        try:
            self._call_span(instance, options, kwargs, fp).refuse(refusal, blocked=True)
        except Exception:
            swallow("recording a refused anthropic call")
        raise refusal

    @staticmethod
    def _finish(call: CallSpan, stream: bool, result: Any, proxy_cls: type) -> Any:
        try:
            if stream and (hasattr(result, "__iter__") or hasattr(result, "__aiter__")) and hasattr(result, "response"):
                return proxy_cls(result, MessageStreamObserver(call))
            record_message(call, result)
        except Exception:
            swallow("reading an anthropic response")
        call.end()
        return result

    def _request(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        call, fp = self._prepare(instance, args, kwargs)
        warned = self._judge(self._guard, call, fp, instance, args, kwargs) if self._guard is not None else None
        fp_token = CURRENT_FINGERPRINT.set(fp) if fp is not None else None
        warned_token = CURRENT_GUARD_WARNING.set(warned) if warned is not None else None
        try:
            if call is None:
                return wrapped(*args, **kwargs)
            result = call.run(wrapped, args, kwargs)
            return self._finish(call, bool(kwargs.get("stream")), result, SyncStreamProxy)
        finally:
            if fp_token is not None:
                CURRENT_FINGERPRINT.reset(fp_token)
            if warned_token is not None:
                CURRENT_GUARD_WARNING.reset(warned_token)

    async def _arequest(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        call, fp = self._prepare(instance, args, kwargs)
        warned = self._judge(self._guard, call, fp, instance, args, kwargs) if self._guard is not None else None
        fp_token = CURRENT_FINGERPRINT.set(fp) if fp is not None else None
        warned_token = CURRENT_GUARD_WARNING.set(warned) if warned is not None else None
        try:
            if call is None:
                return await wrapped(*args, **kwargs)
            result = await call.arun(wrapped, args, kwargs)
            return self._finish(call, bool(kwargs.get("stream")), result, AsyncStreamProxy)
        finally:
            if fp_token is not None:
                CURRENT_FINGERPRINT.reset(fp_token)
            if warned_token is not None:
                CURRENT_GUARD_WARNING.reset(warned_token)


def _base_client() -> Any:
    import anthropic._base_client as base

    return base
