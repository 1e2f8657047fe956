"""The one wrapper both SDKs are patched with: their `SyncAPIClient.request` / `AsyncAPIClient.request`.

openai and anthropic are built from the same generator (Stainless): every API call of either funnels through
`request(cast_to, options, ...)` on its `_base_client`, and each retry through `_sleep_for_retry`. So the wrapping,
the unwrapping, the span's start (client attributes cached on the client, request model, stream flag), the guard's
verdict, running the SDK with the span current and ending the span are written once, here, for sync and async
alike. A library says only what differs (`ChokePointPatcher`'s hooks): which request paths are LLM calls, its
provider, asking a stream for usage, how a response or stream is read, and whether the SDK makes its own span.

SDK errors reach the application unchanged (`CallSpan.run` re-raises the same object); errors in Costline's own
code here are swallowed (`guard.swallow`: logged at debug level and counted) and the call goes on untraced.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Mapping
from contextvars import Token
from typing import Any

from opentelemetry import trace
from wrapt import wrap_function_wrapper

from costline import attributes as A
from costline.fingerprint import fingerprint
from costline.instrumentation.call_span import (
    CURRENT_FINGERPRINT,
    CURRENT_GUARD_WARNING,
    CallSpan,
    acount_retry,
    count_retry,
)
from costline.instrumentation.guard import swallow
from costline.instrumentation.policy_guard import Guard, judge, judge_unstarted
from costline.instrumentation.sampling import SDK_SPAN_SEEN, BillingPath
from costline.instrumentation.streams import AsyncStreamProxy, StreamObserver, SyncStreamProxy

_STATIC = "_costline_static_attributes"
"""Attribute of an SDK client holding the span attributes that depend only on the client: (api_key, base_url,
attributes). The key and URL are kept to notice an application that reassigns them."""

_WRAPPED = ("SyncAPIClient.request", "AsyncAPIClient.request", "SyncAPIClient._sleep_for_retry",
            "AsyncAPIClient._sleep_for_retry")


class SdkSpan:
    """A call whose span the SDK's own tracing makes: Costline publishes the key's fingerprint (and the guard's
    warn-mode verdict) for `CostlineSpanProcessor` to stamp on it, and starts a span of its own only to record a
    blocked call (the SDK's span would start once the request is on its way)."""

    __slots__ = ("tracer", "operation", "model", "attrs")

    def __init__(self, tracer: trace.Tracer, operation: str, model: str | None, attrs: dict[str, Any]) -> None:
        self.tracer, self.operation, self.model, self.attrs = tracer, operation, model, attrs

    def call_span(self) -> CallSpan:
        return CallSpan(self.tracer, self.operation, self.model, self.attrs)

    def sampled_out(self, billing: BillingPath, start_ns: int) -> CallSpan | None:
        """The call's span on the billing path, started at `start_ns`: the application's sampler dropped the SDK's."""
        tracer = billing.tracer()
        if tracer is None:
            return None
        return CallSpan(tracer, self.operation, self.model, {**self.attrs, A.COSTLINE_SAMPLED_OUT: True},
                        start_ns=start_ns)


class ChokePointPatcher:
    """Wraps and unwraps one SDK's `request` and `_sleep_for_retry`. One instance per
    `CostlineInstrumentor.instrument()`; subclasses fill in the hooks below."""

    library: str
    """The SDK's import name (log messages, and `<library>._base_client` is what is wrapped)."""
    operations: Mapping[str, str]
    """Request path -> `gen_ai.operation.name`. Paths not listed (files, models, ...) are not LLM calls."""
    publishes_fingerprint = False
    """Whether the key's fingerprint is published (`CURRENT_FINGERPRINT`) while the SDK runs even when the span is
    Costline's, for GenAI spans other code starts inside the call."""
    request_tier_attribute: str | None = None
    """The attribute the request's `service_tier` is recorded under at the span's start (so a sampler sees it), or
    None when the library's own span records it."""

    def __init__(self, tracer: trace.Tracer, tracer_provider: Any, guard: Guard | None = None,
                 billing: BillingPath | None = None) -> None:
        self._tracer = tracer
        self._tracer_provider = tracer_provider
        self._guard = guard
        self._billing = billing
        """Where a call the application's sampler drops is recorded (`sampling`); None when that is off."""
        self.sdk_billing: BillingPath | None = None
        """The same for calls whose span the SDK makes, set only when `CostlineSpanProcessor` watches for those
        spans on the application's provider (without the watch every such call would look dropped)."""

    def instrument(self) -> None:
        base = f"{self.library}._base_client"
        for name, wrapper in zip(_WRAPPED, (self._request, self._arequest, count_retry, acount_retry), strict=True):
            wrap_function_wrapper(base, name, wrapper)

    def uninstrument(self) -> None:
        from opentelemetry.instrumentation.utils import unwrap

        base = importlib.import_module(f"{self.library}._base_client")
        for name in _WRAPPED:
            owner, method = name.split(".")
            unwrap(getattr(base, owner), method)

    # --- what a library says --------------------------------------------------------------------------------------
    def provider(self, instance: Any, base_url: Any, is_async: bool) -> str:  # pragma: no cover - overridden
        """`gen_ai.provider.name` of a client (worked out once per client)."""
        raise NotImplementedError

    def sdk_makes_the_span(self, instance: Any) -> bool:
        """Whether the SDK's own tracing makes this call's span, into Costline's tracer provider."""
        return False

    def ask_stream_usage(self, options: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict, bool]:
        """(args, kwargs, whether the usage-only chunk Costline asked for must be hidden) for a stream. Never
        raises."""
        return args, kwargs, False

    def read(self, call: CallSpan, options: Any, stream: bool, hide: bool, result: Any,
             is_async: bool) -> StreamObserver | None:  # pragma: no cover - overridden
        """The observer to wrap a stream in, else None after recording what the response says on `call`."""
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------------------------------------
    def _client_attributes(self, instance: Any, is_async: bool) -> dict[str, Any]:
        """Provider, server address and port, and the API-key fingerprint of a client, worked out and cached on
        the client (`_STATIC`): they cost more to derive than the rest of the span's start. `_start` uses the cache
        while the client's key and base URL are the objects it was made from."""
        api_key = getattr(instance, "api_key", None)
        base_url = instance.base_url
        port = base_url.port  # None when it is the scheme's default
        attrs: dict[str, Any] = {A.GEN_AI_PROVIDER_NAME: self.provider(instance, base_url, is_async),
                                 A.SERVER_ADDRESS: base_url.host}
        if port is not None:
            attrs[A.SERVER_PORT] = port
        if isinstance(api_key, str) and api_key:
            attrs[A.COSTLINE_API_KEY_FINGERPRINT] = fingerprint(api_key)
        fields = getattr(instance, "__dict__", None)
        if fields is not None:
            fields[_STATIC] = (api_key, base_url, attrs)
        return attrs

    def _start(self, instance: Any, options: Any, kwargs: dict, is_async: bool) -> CallSpan | SdkSpan | None:
        """Start the span of an LLM call (an `SdkSpan` when the SDK makes it), or None when this request is not
        one. Never raises."""
        try:
            operation = self.operations.get(getattr(options, "url", None))  # type: ignore[arg-type]
            if operation is None:
                return None
            fields = getattr(instance, "__dict__", None)
            cached = fields.get(_STATIC) if fields is not None else None
            if cached is not None and cached[0] is getattr(instance, "api_key", None) and cached[1] is instance.base_url:
                attrs = cached[2].copy()
            else:
                attrs = self._client_attributes(instance, is_async).copy()
            if kwargs.get("stream"):
                attrs[A.GEN_AI_REQUEST_STREAM] = True
            body = options.json_data
            model = tier = None
            if isinstance(body, Mapping):
                model, tier = body.get("model"), body.get("service_tier")
                if isinstance(tier, str) and tier and self.request_tier_attribute is not None:
                    attrs[self.request_tier_attribute] = tier
            model = model if isinstance(model, str) else None
            if self.sdk_makes_the_span(instance):
                return SdkSpan(self._tracer, operation, model, attrs)
            return CallSpan(self._tracer, operation, model, attrs, self._billing)
        except Exception:
            swallow(f"starting a {self.library} call span")
            return None

    def _publish(self, call: CallSpan | SdkSpan) -> tuple[Token | None, Token | None]:
        """Judge a call whose span is the SDK's (a refusal in block mode is raised: nothing is sent), and publish
        its fingerprint and warn-mode verdict for the SDK's span; or publish a Costline call's fingerprint when
        the library asks for it."""
        warned = None
        if type(call) is SdkSpan and self._guard is not None:
            warned = judge_unstarted(self._guard, call)
        fp = call.attrs.get(A.COSTLINE_API_KEY_FINGERPRINT)
        return (CURRENT_FINGERPRINT.set(fp) if fp is not None else None,
                CURRENT_GUARD_WARNING.set(warned) if warned is not None else None)

    def _finish(self, call: CallSpan, options: Any, stream: bool, hide: bool, result: Any, is_async: bool) -> Any:
        """Wrap a stream so it ends the span later; end the span now for anything else. Never raises."""
        try:
            observer = self.read(call, options, stream, hide, result, is_async)
            if observer is not None:
                return (AsyncStreamProxy if is_async else SyncStreamProxy)(result, observer)
        except Exception:
            swallow(f"reading a {self.library} response")
        call.end()
        return result

    def _before(self, call: CallSpan | SdkSpan, options: Any, args: tuple,
                kwargs: dict) -> tuple[tuple | None, tuple, dict, bool, bool]:
        """The guard's verdict (a refusal in block mode is raised: nothing is sent), what is published for other
        spans, and the arguments the SDK is called with: (published, args, kwargs, stream, hide)."""
        if type(call) is CallSpan and self._guard is not None:
            judge(self._guard, call)
        published = self._publish(call) if type(call) is SdkSpan or self.publishes_fingerprint else None
        stream, hide = bool(kwargs.get("stream")), False
        if stream and type(call) is CallSpan:
            args, kwargs, hide = self.ask_stream_usage(options, args, kwargs)
        return published, args, kwargs, stream, hide

    # --- the wrappers: the happy path of every LLM call, kept short (docs/performance.md) -------------------------
    def _request(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        options = args[1] if len(args) > 1 else kwargs.get("options")
        call = self._start(instance, options, kwargs, is_async=False)
        if call is None:
            return wrapped(*args, **kwargs)
        published, args, kwargs, stream, hide = self._before(call, options, args, kwargs)
        try:
            if type(call) is SdkSpan:
                if self.sdk_billing is None:
                    return wrapped(*args, **kwargs)
                token, start_ns = SDK_SPAN_SEEN.set([]), time.time_ns()
                try:
                    result = wrapped(*args, **kwargs)
                except BaseException as exc:
                    self._sdk_span_dropped(call, token, start_ns, exc)
                    raise
                return self._sdk_span_dropped(call, token, start_ns, None, options, stream, result, False)
            result = call.run(wrapped, args, kwargs)
            return self._finish(call, options, stream, hide, result, is_async=False)
        finally:
            if published is not None:
                _unpublish(published)

    async def _arequest(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        options = args[1] if len(args) > 1 else kwargs.get("options")
        call = self._start(instance, options, kwargs, is_async=True)
        if call is None:
            return await wrapped(*args, **kwargs)
        published, args, kwargs, stream, hide = self._before(call, options, args, kwargs)
        try:
            if type(call) is SdkSpan:
                if self.sdk_billing is None:
                    return await wrapped(*args, **kwargs)
                token, start_ns = SDK_SPAN_SEEN.set([]), time.time_ns()
                try:
                    result = await wrapped(*args, **kwargs)
                except BaseException as exc:
                    self._sdk_span_dropped(call, token, start_ns, exc)
                    raise
                return self._sdk_span_dropped(call, token, start_ns, None, options, stream, result, True)
            result = await call.arun(wrapped, args, kwargs)
            return self._finish(call, options, stream, hide, result, is_async=True)
        finally:
            if published is not None:
                _unpublish(published)

    def _sdk_span_dropped(self, call: SdkSpan, token: Token, start_ns: int, error: BaseException | None,
                          options: Any = None, stream: bool = False, result: Any = None, is_async: bool = False) -> Any:
        """After an SDK call whose span the SDK makes: when that span did not record (the application's sampler
        dropped it), record the call on the billing path from its response or its error. Returns `result` (a
        stream wrapped so that its end ends the billing span). Never raises."""
        seen = SDK_SPAN_SEEN.get()
        SDK_SPAN_SEEN.reset(token)
        if seen or self.sdk_billing is None:
            return result
        try:
            billed = call.sampled_out(self.sdk_billing, start_ns)
        except Exception:
            swallow("recording a sampled-out call")
            return result
        if billed is None:
            return result
        if error is not None:
            billed.end(error)
            return result
        return self._finish(billed, options, stream, False, result, is_async)


def _unpublish(tokens: tuple[Token | None, Token | None]) -> None:
    fp_token, warned_token = tokens
    if fp_token is not None:
        CURRENT_FINGERPRINT.reset(fp_token)
    if warned_token is not None:
        CURRENT_GUARD_WARNING.reset(warned_token)
