"""The one span of one LLM API call: started before the SDK method runs, ended exactly once.

`CallSpan` holds what Costline learns about a call while it runs (attempts, first chunk, usage) and writes it onto
the span when the call ends. SDK errors are recorded on the span and re-raised unchanged by the wrappers; errors in
this module's own code are swallowed (`guard.swallow`).
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

from opentelemetry import baggage, context, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from costline import attributes as A
from costline.instrumentation.guard import swallow

CURRENT_FINGERPRINT: ContextVar[str | None] = ContextVar("costline_current_fingerprint", default=None)
"""Fingerprint of the API key of the SDK call in progress, for spans that other code starts inside that call
(the anthropic SDK's own span): `CostlineSpanProcessor` stamps it on them."""

_BILLING_SPAN = context.create_key("costline-billing-span")
"""Context key of a sampled-out call's billing span while the SDK runs (the application's dropped span is the
current span then): where a retry is counted."""

CURRENT_GUARD_WARNING: ContextVar[str | None] = ContextVar("costline_current_guard_warning", default=None)
"""The rule of the guard's warn-mode verdict on the SDK call in progress, when the call's span is not Costline's
(the anthropic SDK's own span starts only once the request is on its way): `CostlineSpanProcessor` marks that span
`costline.guard.action=warned` with this rule."""


def owner_attributes(ctx: context.Context | None = None) -> dict[str, str]:
    """The owner keys found in the W3C baggage of `ctx` (code's `costline.owner` and incoming baggage alike)."""
    entries = baggage.get_all(ctx)
    if not entries:
        return {}
    return {key: str(entries[key]) for key in A.OWNER_KEYS if key in entries}


def error_type(exc: BaseException) -> str:
    """Low-cardinality `error.type`: the API's error type, else the HTTP status, else the exception's class."""
    kind = getattr(exc, "type", None)
    if isinstance(kind, str) and kind:
        return kind
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return str(status)
    cls = type(exc)
    module = cls.__module__
    # `openai._exceptions.RateLimitError` is exported as `openai.RateLimitError`: use the public name.
    top = module.split(".", 1)[0]
    return f"{top}.{cls.__qualname__}" if module.startswith(top + "._") else f"{module}.{cls.__qualname__}"


class CallSpan:
    """Telemetry state of one API call. Not thread-safe: one call runs in one thread or task."""

    __slots__ = ("span", "start_ns", "first_chunk_ns", "response_attrs", "attrs", "guard", "_ended", "_context",
                 "_run_context")

    def __init__(self, tracer: trace.Tracer, operation: str, model: str | None, attrs: dict[str, Any],
                 billing: Any = None, start_ns: int | None = None) -> None:
        # This runs on every LLM call: the current context is read once and serves the owner lookup, the span's
        # parent and, in `run`, the context the span is made current in.
        self.start_ns = start_ns = start_ns or time.time_ns()
        ctx = context.get_current()
        attrs[A.GEN_AI_OPERATION_NAME] = operation
        if model:
            attrs[A.GEN_AI_REQUEST_MODEL] = model
        attrs.update(owner_attributes(ctx))
        self.attrs = attrs
        """The span's start attributes (provider, request model, fingerprint, owner keys): what the guard judges."""
        self._context = ctx
        name = f"{operation} {model}" if model else operation
        self.span: Span = tracer.start_span(name, context=ctx, kind=SpanKind.CLIENT, attributes=attrs,
                                            start_time=start_ns)
        self._run_context: context.Context | None = None
        """What `run` makes current, when not this span in the caller's context (a sampled-out call's)."""
        if billing is not None and not self.span.is_recording():
            self._bill_sampled_out(billing, name)
        self.first_chunk_ns: int | None = None
        self.response_attrs: dict[str, Any] = {}
        """What the response taught (model, id, usage, ...): set on the span, all at once, when it ends."""
        self.guard: tuple[Any, Any] | None = None
        """(guard, its cache entry of this caller) when the guard judged the call: its usage is added there at the
        end, so the guard's local spend estimate needs no span processor of its own."""
        self._ended = False

    def _bill_sampled_out(self, billing: Any, name: str) -> None:
        """The application's sampler dropped this call's span: record the call on the billing path
        (`costline.instrumentation.sampling`), keeping the dropped span current while the SDK runs so that what the
        SDK and the HTTP client do follows the application's decision. Off the happy path of a sampled call."""
        try:
            tracer = billing.tracer()
            if tracer is None:
                return
            dropped = self.span
            self.span = tracer.start_span(name, context=self._context, kind=SpanKind.CLIENT,
                                          attributes={**self.attrs, A.COSTLINE_SAMPLED_OUT: True},
                                          start_time=self.start_ns)
            self._run_context = context.set_value(_BILLING_SPAN, self.span,
                                                  trace.set_span_in_context(dropped, self._context))
        except Exception:
            swallow("recording a sampled-out call")

    # --- the SDK call, with the span current so HTTP-client spans become its children -------------------------
    # `run` and `arun` are twins that differ by an `await`: Python cannot share a body across it without a frame
    # more per call (this is every LLM call's path), so only the failure path, off it, is shared (`_raised`).
    def run(self, wrapped: Any, args: tuple, kwargs: dict) -> Any:
        """Call the SDK with the span current. An SDK error ends the span (recorded) and is re-raised unchanged."""
        token = context.attach(self._run_context or trace.set_span_in_context(self.span, self._context))
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as exc:
            self._raised(token, exc)
            raise
        context.detach(token)
        return result

    async def arun(self, wrapped: Any, args: tuple, kwargs: dict) -> Any:
        """`run` for the async clients: the span is current while the coroutine runs."""
        token = context.attach(self._run_context or trace.set_span_in_context(self.span, self._context))
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as exc:
            self._raised(token, exc)
            raise
        context.detach(token)
        return result

    def _raised(self, token: object, exc: BaseException) -> None:
        """The SDK raised `exc`: the span stops being current and ends with it."""
        context.detach(token)  # type: ignore[arg-type]
        self.end(exc)

    # --- what the call learns ---------------------------------------------------------------------------------
    def chunk_arrived(self) -> None:
        if self.first_chunk_ns is None:
            self.first_chunk_ns = time.time_ns()

    def set_usage(
        self,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cache_read: int | None = None,
        cache_write: int | None = None,
        reasoning: int | None = None,
    ) -> None:
        """Record usage in semconv meaning (input includes cache tokens, output includes reasoning).

        Only ints are kept (`type(...) is int` also turns away bools): input and output when non-negative, the
        cache and reasoning subsets only when positive. An absent subset means zero, to the processor as to the
        official instrumentation; every attribute costs the span about as much as all of Costline's own code."""
        attrs = self.response_attrs
        if type(input_tokens) is int and input_tokens >= 0:
            attrs[A.GEN_AI_USAGE_INPUT_TOKENS] = input_tokens
        if type(output_tokens) is int and output_tokens >= 0:
            attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] = output_tokens
        if type(cache_read) is int and cache_read > 0:
            attrs[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = cache_read
        if type(cache_write) is int and cache_write > 0:
            attrs[A.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] = cache_write
        if type(reasoning) is int and reasoning > 0:
            attrs[A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = reasoning

    def set_count(self, attribute: str, value: Any) -> None:
        """Record a billable unit beyond the five of `set_usage` (audio, image and video tokens, 1-hour cache writes,
        server-side tool calls) under its contract name, kept like a cache count: only a positive int. Readers call
        it only when the SDK object has the field, so a call without these units pays nothing for them."""
        if type(value) is int and value > 0:
            self.response_attrs[attribute] = value

    def set_response(self, model: Any, response_id: Any, tier_attribute: str, tier: Any) -> None:
        """Record the response's model, id and service tier (under the provider's own `tier_attribute`), each only
        when a non-empty string: like `set_usage`, this decides what to keep, so SDK fields are passed unchecked."""
        attrs = self.response_attrs
        if isinstance(model, str) and model:
            attrs[A.GEN_AI_RESPONSE_MODEL] = model
        if isinstance(response_id, str) and response_id:
            attrs[A.GEN_AI_RESPONSE_ID] = response_id
        if isinstance(tier, str) and tier:
            attrs[tier_attribute] = tier

    def refuse(self, refusal: BaseException, *, blocked: bool) -> None:
        """Record the guard's verdict: a blocked call's span ends here, as an error naming the refusal; a warned
        call's span is marked and goes on."""
        try:
            self.response_attrs[A.COSTLINE_GUARD_ACTION] = A.GUARD_BLOCKED if blocked else A.GUARD_WARNED
            self.response_attrs[A.COSTLINE_GUARD_RULE] = str(getattr(refusal, "rule", ""))
        except Exception:
            swallow("recording the guard's verdict")
        if blocked:
            self.end(refusal)

    # --- the end, exactly once ------------------------------------------------------------------------------------
    def end(self, error: BaseException | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        span = self.span
        try:
            attrs = self.response_attrs
            if self.first_chunk_ns is not None:
                attrs[A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = (self.first_chunk_ns - self.start_ns) / 1e9
            if error is not None and isinstance(error, Exception):
                attrs[A.ERROR_TYPE] = error_type(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            if attrs:
                span.set_attributes(attrs)
            if self.guard is not None:
                guard, caller = self.guard
                guard.record_call(caller, self.attrs, attrs)
        except Exception:
            swallow("recording the end of an LLM call")
        try:
            span.end()
        except Exception:
            swallow("ending an LLM call span")



def _count_retry_on_current_span() -> None:
    """One more retry on the current span, when it is Costline's call span.

    The SDK's retry hook runs inside the call, where the call's span is current (HTTP-client spans have ended by
    then), so the count lives on the span itself: nothing per call has to be published for the hook to find, which
    keeps the happy path free of it. The anthropic SDK's own span (made when its tracing is on) is not Costline's
    and is left alone."""
    try:
        span = trace.get_current_span()
        scope = getattr(span, "instrumentation_scope", None)
        if scope is None or scope.name != A.INSTRUMENTATION_SCOPE:
            span = context.get_value(_BILLING_SPAN)  # a sampled-out call's billing span, when this is one
            if span is None:
                return
        done = (span.attributes or {}).get(A.HTTP_REQUEST_RESEND_COUNT, 0)  # type: ignore[attr-defined]
        span.set_attribute(A.HTTP_REQUEST_RESEND_COUNT, done + 1)
    except Exception:
        swallow("counting a retry")


def count_retry(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """Wrapper of an SDK's `_sleep_for_retry`: it runs once before each retry and never on the happy path,
    so counting there costs nothing for calls that succeed at the first attempt."""
    _count_retry_on_current_span()
    return wrapped(*args, **kwargs)


async def acount_retry(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    _count_retry_on_current_span()
    return await wrapped(*args, **kwargs)
