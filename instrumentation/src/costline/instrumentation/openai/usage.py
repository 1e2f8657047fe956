"""Reading usage and response metadata off openai SDK objects (chat, responses, embeddings, completions).

Everything here is duck-typed with `getattr`, so a field an SDK version lacks sets nothing rather than failing;
`CallSpan.set_usage` decides which values to keep, so they are passed to it unchecked.
"""

from __future__ import annotations

from typing import Any

from costline import attributes as A
from costline.instrumentation.call_span import CallSpan
from costline.instrumentation.streams import StreamObserver


def _fields(obj: Any) -> dict:
    """An SDK object's fields as set, to probe for one it may lack: a missing attribute on an SDK model takes
    pydantic's slow error path."""
    return getattr(obj, "__dict__", None) or {}


def record_usage(call: CallSpan, usage: Any) -> None:
    """Usage of chat completions / completions / embeddings (`prompt_tokens`) or Responses (`input_tokens`)."""
    if usage is None:
        return
    fields = _fields(usage)
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
    # Audio (gpt-4o-audio, gpt-realtime) and image input are parts of prompt_tokens, audio output of
    # completion_tokens, each billed at its own rate. The SDK's details objects define these fields; they are 0 or
    # None on a text call, which is tested here so that such a call makes no method call for them (every call pays
    # this path, docs/performance.md).
    if prompt_details is not None:
        audio, image = getattr(prompt_details, "audio_tokens", None), getattr(prompt_details, "image_tokens", None)
        if audio:
            call.set_count(A.GEN_AI_USAGE_AUDIO_INPUT_TOKENS, audio)
        if image:
            call.set_count(A.GEN_AI_USAGE_IMAGE_INPUT_TOKENS, image)
    audio_out = getattr(completion_details, "audio_tokens", None) if completion_details is not None else None
    if audio_out:
        call.set_count(A.GEN_AI_USAGE_AUDIO_OUTPUT_TOKENS, audio_out)


def record_web_searches(call: CallSpan, response: Any) -> None:
    """A Responses object's web searches: OpenAI bills each `web_search_call` output item (the usage object does
    not count them)."""
    output = getattr(response, "output", None)
    if output:
        call.set_count(A.COSTLINE_USAGE_WEB_SEARCHES,
                       sum(1 for item in output if getattr(item, "type", None) == "web_search_call"))


def record_media_usage(call: CallSpan, usage: Any, output_modality: str | None) -> None:
    """Usage of the audio and image endpoints (`audio.transcriptions`/`translations` of the token-billed models,
    `images.generate`/`edit` of gpt-image-1): `input_tokens` with a per-modality split, `output_tokens` of the
    endpoint's `output_modality` (image tokens for images) unless the response splits them itself.

    A transcription billed by duration (`usage.type == "duration"`, whisper-1) has no tokens and records nothing:
    genai-prices prices no per-minute model, so it would be a count without a price."""
    if usage is None:
        return
    fields = _fields(usage)
    if "input_tokens" not in fields:
        return
    output = getattr(usage, "output_tokens", None)
    call.set_usage(input_tokens=getattr(usage, "input_tokens", None), output_tokens=output)
    # Transcriptions say `input_token_details`, images `input_tokens_details`.
    in_details = fields.get("input_tokens_details") or fields.get("input_token_details")
    if in_details is not None:
        call.set_count(A.GEN_AI_USAGE_AUDIO_INPUT_TOKENS, _fields(in_details).get("audio_tokens"))
        call.set_count(A.GEN_AI_USAGE_IMAGE_INPUT_TOKENS, _fields(in_details).get("image_tokens"))
    out_details = fields.get("output_tokens_details")
    if out_details is not None:
        call.set_count(A.GEN_AI_USAGE_IMAGE_OUTPUT_TOKENS, _fields(out_details).get("image_tokens"))
    elif output_modality == "image":
        # gpt-image-1's usage before the split was added: every output token is an image token.
        call.set_count(A.GEN_AI_USAGE_IMAGE_OUTPUT_TOKENS, output)


def record_response(call: CallSpan, response: Any) -> None:
    """Model, id, service tier and usage of a complete (non-streamed) response object."""
    call.set_response(getattr(response, "model", None), getattr(response, "id", None),
                      A.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER, getattr(response, "service_tier", None))
    record_usage(call, getattr(response, "usage", None))


def record_responses_response(call: CallSpan, response: Any) -> None:
    """A Responses object: `record_response` and the web searches its output items ran."""
    record_response(call, response)
    record_web_searches(call, response)


def media_recorder(output_modality: str | None) -> Any:
    """The reader of an audio or image endpoint's response (no model or id in its body: the request model stays)."""

    def record(call: CallSpan, response: Any) -> None:
        record_media_usage(call, getattr(response, "usage", None), output_modality)

    return record


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
                record_responses_response(self.call, response)
        return True


class UsageEventStreamObserver(StreamObserver):
    """Streams of the audio endpoints (`transcript.text.done` carries the usage): any event with a usage object."""

    __slots__ = ()

    def observe(self, event: Any) -> bool:
        usage = getattr(event, "usage", None)
        if usage is not None:
            record_media_usage(self.call, usage, None)
        return True
