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

CURRENT_CALL: ContextVar[CallSpan | None] = ContextVar("costline_current_call", default=None)
"""The call in progress in this context: the SDK's retry hook counts retries on it."""

CURRENT_FINGERPRINT: ContextVar[str | None] = ContextVar("costline_current_fingerprint", default=None)
"""Fingerprint of the API key of the SDK call in progress, for spans that other code starts inside that call
(the anthropic SDK's own span): `CostlineSpanProcessor` stamps it on them."""


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

    __slots__ = (
        "span",
        "start_ns",
        "retries",
        "first_chunk_ns",
        "usage",
        "response_attrs",
        "_ended",
        "_token",
    )

    def __init__(self, tracer: trace.Tracer, operation: str, model: str | None, attrs: dict[str, Any]) -> None:
        self.start_ns = time.time_ns()
        attrs[A.GEN_AI_OPERATION_NAME] = operation
        if model:
            attrs[A.GEN_AI_REQUEST_MODEL] = model
        attrs.update(owner_attributes())
        self.span: Span = tracer.start_span(
            f"{operation} {model}" if model else operation,
            kind=SpanKind.CLIENT,
            attributes=attrs,
            start_time=self.start_ns,
        )
        self.retries = 0
        self.first_chunk_ns: int | None = None
        self.usage: dict[str, int] = {}
        self.response_attrs: dict[str, Any] = {}
        self._ended = False
        self._token: object | None = None

    # --- context: the span is current while the SDK runs, so HTTP-client spans become its children -------------
    def activate(self) -> None:
        self._token = (context.attach(trace.set_span_in_context(self.span)), CURRENT_CALL.set(self))

    def deactivate(self) -> None:
        token = self._token
        if token is None:
            return
        self._token = None
        ctx_token, call_token = token
        CURRENT_CALL.reset(call_token)
        context.detach(ctx_token)

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
        """Record usage in semconv meaning (input includes cache tokens, output includes reasoning)."""
        usage = self.usage
        for key, value in (
            (A.GEN_AI_USAGE_INPUT_TOKENS, input_tokens),
            (A.GEN_AI_USAGE_OUTPUT_TOKENS, output_tokens),
            (A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, cache_read),
            (A.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, cache_write),
            (A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, reasoning),
        ):
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                usage[key] = value

    # --- the end, exactly once ------------------------------------------------------------------------------------
    def end(self, error: BaseException | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        span = self.span
        try:
            attrs: dict[str, Any] = {**self.response_attrs, **self.usage}
            if self.retries:
                attrs[A.HTTP_REQUEST_RESEND_COUNT] = self.retries
            if self.first_chunk_ns is not None:
                attrs[A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = (self.first_chunk_ns - self.start_ns) / 1e9
            if error is not None and isinstance(error, Exception):
                attrs[A.ERROR_TYPE] = error_type(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            span.set_attributes(attrs)
        except Exception:
            swallow("recording the end of an LLM call")
        try:
            span.end()
        except Exception:
            swallow("ending an LLM call span")



def count_retry(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    """Wrapper of an SDK's `_sleep_for_retry`: it runs once before each retry and never on the happy path,
    so counting there costs nothing for calls that succeed at the first attempt."""
    call = CURRENT_CALL.get()
    if call is not None:
        call.retries += 1
    return wrapped(*args, **kwargs)


async def acount_retry(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    call = CURRENT_CALL.get()
    if call is not None:
        call.retries += 1
    return await wrapped(*args, **kwargs)
