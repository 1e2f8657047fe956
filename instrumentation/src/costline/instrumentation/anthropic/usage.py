"""Reading usage off anthropic SDK objects.

Anthropic's `usage.input_tokens` excludes cache reads and writes; the semconv `gen_ai.usage.input_tokens` (and
Costline's contract) includes them, so the sum is recorded. Streams report input and cache counts in
`message_start` and the final, cumulative `output_tokens` (sometimes with input and cache fields, and the server tool
use) in `message_delta`. Cache writes are split by lifetime in `usage.cache_creation` (the 1-hour ones are billed at
twice the 5-minute rate); server-side web searches and code executions are counted in `usage.server_tool_use`.
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

    __slots__ = ("input", "cache_read", "cache_write", "output", "reasoning", "cache_write_1h", "web_searches",
                 "code_executions")

    def __init__(self) -> None:
        self.input: int | None = None
        self.cache_read: int | None = None
        self.cache_write: int | None = None
        self.output: int | None = None
        self.reasoning: int | None = None
        self.cache_write_1h: int | None = None
        self.web_searches: int | None = None
        self.code_executions: int | None = None

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
        # Both objects are absent unless the call used them: a call without pays two lookups.
        cache_creation = getattr(usage, "cache_creation", None)
        if cache_creation is not None:
            value = _int(cache_creation, "ephemeral_1h_input_tokens")
            if value is not None:
                self.cache_write_1h = value
        tools = getattr(usage, "server_tool_use", None)
        if tools is not None:
            for field, name in (("web_searches", "web_search_requests"), ("code_executions", "code_execution_requests")):
                value = _int(tools, name)
                if value is not None:
                    setattr(self, field, value)

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
        if self.cache_write_1h is not None:
            call.set_count(A.COSTLINE_USAGE_CACHE_WRITE_1H_TOKENS, self.cache_write_1h)
        if self.web_searches is not None:
            call.set_count(A.COSTLINE_USAGE_WEB_SEARCHES, self.web_searches)
        if self.code_executions is not None:
            call.set_count(A.COSTLINE_USAGE_CODE_EXECUTIONS, self.code_executions)


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
