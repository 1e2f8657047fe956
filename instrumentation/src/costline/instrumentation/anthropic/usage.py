"""Reading usage off anthropic SDK objects.

Anthropic's `usage.input_tokens` excludes cache reads and writes; the semconv `gen_ai.usage.input_tokens` (and
Costline's contract) includes them, so the sum is recorded. Streams report input and cache counts in
`message_start` and the final, cumulative `output_tokens` (sometimes with input and cache fields) in `message_delta`.
"""

from __future__ import annotations

from typing import Any

from costline import attributes as A
from costline.instrumentation.call_span import CallSpan
from costline.instrumentation.streams import StreamObserver


def _int(obj: Any, name: str) -> int | None:
    value = getattr(obj, name, None)
    return value if isinstance(value, int) else None


class UsageTotals:
    """Anthropic usage fields, merged from the events of a stream (later, cumulative values win)."""

    __slots__ = ("input", "cache_read", "cache_write", "output", "reasoning")

    def __init__(self) -> None:
        self.input: int | None = None
        self.cache_read: int | None = None
        self.cache_write: int | None = None
        self.output: int | None = None
        self.reasoning: int | None = None

    def merge(self, usage: Any) -> None:
        if usage is None:
            return
        for field, name in (
            ("input", "input_tokens"),
            ("cache_read", "cache_read_input_tokens"),
            ("cache_write", "cache_creation_input_tokens"),
            ("output", "output_tokens"),
        ):
            value = _int(usage, name)
            if value is not None:
                setattr(self, field, value)
        reasoning = _int(getattr(usage, "output_tokens_details", None), "thinking_tokens")
        if reasoning is not None:
            self.reasoning = reasoning

    def record(self, call: CallSpan) -> None:
        if self.input is None and self.output is None:
            return
        total_input = None
        if self.input is not None:
            total_input = self.input + (self.cache_read or 0) + (self.cache_write or 0)
        call.set_usage(
            input_tokens=total_input,
            output_tokens=self.output,
            cache_read=self.cache_read,
            cache_write=self.cache_write,
            reasoning=self.reasoning,
        )


def record_message(call: CallSpan, message: Any) -> None:
    """Id, model, service tier and usage of a complete `Message`."""
    _record_meta(call, message)
    totals = UsageTotals()
    totals.merge(getattr(message, "usage", None))
    totals.record(call)


def _record_meta(call: CallSpan, message: Any) -> None:
    # Anthropic reports the service tier inside the usage.
    call.set_response(getattr(message, "model", None), getattr(message, "id", None), A.ANTHROPIC_RESPONSE_SERVICE_TIER,
                      getattr(getattr(message, "usage", None), "service_tier", None))


class MessageStreamObserver(StreamObserver):
    """Raw message stream events (`message_start`, `message_delta`, ...)."""

    __slots__ = ("totals",)

    def __init__(self, call: CallSpan) -> None:
        super().__init__(call)
        self.totals = UsageTotals()

    def observe(self, event: Any) -> bool:
        kind = getattr(event, "type", None)
        if kind == "message_start":
            message = getattr(event, "message", None)
            _record_meta(self.call, message)
            self.totals.merge(getattr(message, "usage", None))
        elif kind == "message_delta":
            self.totals.merge(getattr(event, "usage", None))
        return True

    def finish(self) -> None:
        self.totals.record(self.call)
