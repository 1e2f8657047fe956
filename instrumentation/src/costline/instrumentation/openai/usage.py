"""Reading usage and response metadata off openai SDK objects (chat, responses, embeddings, completions).

Everything here is duck-typed with `getattr`, so a field an SDK version lacks sets nothing rather than failing;
`CallSpan.set_usage` decides which values to keep, so they are passed to it unchecked.
"""

from __future__ import annotations

from typing import Any

from costline import attributes as A
from costline.instrumentation.call_span import CallSpan
from costline.instrumentation.streams import StreamObserver


def record_usage(call: CallSpan, usage: Any) -> None:
    """Usage of chat completions / completions / embeddings (`prompt_tokens`) or Responses (`input_tokens`)."""
    if usage is None:
        return
    # Probe with a field the object has: a missing attribute on an SDK model takes pydantic's slow error path.
    fields = getattr(usage, "__dict__", None) or {}
    if "input_tokens" in fields:  # Responses API
        in_details = getattr(usage, "input_tokens_details", None)
        out_details = getattr(usage, "output_tokens_details", None)
        call.set_usage(
            input_tokens=getattr(usage, "input_tokens", None),
            output_tokens=getattr(usage, "output_tokens", None),
            cache_read=getattr(in_details, "cached_tokens", None),
            cache_write=getattr(in_details, "cache_write_tokens", None),
            reasoning=getattr(out_details, "reasoning_tokens", None),
        )
        return
    # OpenAI's prompt_tokens already include cached tokens: the semconv meaning of input.
    prompt_details = getattr(usage, "prompt_tokens_details", None)
    completion_details = getattr(usage, "completion_tokens_details", None)
    call.set_usage(
        input_tokens=getattr(usage, "prompt_tokens", None),
        output_tokens=getattr(usage, "completion_tokens", None),
        cache_read=getattr(prompt_details, "cached_tokens", None),
        cache_write=getattr(prompt_details, "cache_write_tokens", None),
        reasoning=getattr(completion_details, "reasoning_tokens", None),
    )


def record_response(call: CallSpan, response: Any) -> None:
    """Model, id, service tier and usage of a complete (non-streamed) response object."""
    call.set_response(getattr(response, "model", None), getattr(response, "id", None),
                      A.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER, getattr(response, "service_tier", None))
    record_usage(call, getattr(response, "usage", None))


class ChunkStreamObserver(StreamObserver):
    """Chat completion and legacy completion chunks. Hides the usage-only chunk Costline asked for."""

    __slots__ = ("hide_usage_chunk", "_seen_meta")

    def __init__(self, call: CallSpan, hide_usage_chunk: bool) -> None:
        super().__init__(call)
        self.hide_usage_chunk = hide_usage_chunk
        self._seen_meta = False

    def observe(self, chunk: Any) -> bool:
        if not self._seen_meta:
            self._seen_meta = True
            record_response(self.call, chunk)
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            record_usage(self.call, usage)
            # The final chunk of `include_usage` has no choices; the application did not ask for it.
            if self.hide_usage_chunk and not getattr(chunk, "choices", None):
                return False
        return True


class ResponsesStreamObserver(StreamObserver):
    """Responses API events: model and id from `response.created`, usage from the terminal event."""

    __slots__ = ()

    _TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})

    def observe(self, event: Any) -> bool:
        kind = getattr(event, "type", None)
        if kind == "response.created" or kind in self._TERMINAL:
            response = getattr(event, "response", None)
            if response is not None:
                record_response(self.call, response)
        return True
