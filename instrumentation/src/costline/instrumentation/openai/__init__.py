"""Patching of the openai SDK (3.x; it talks over httpx2).

All LLM endpoints funnel through `SyncAPIClient.request` / `AsyncAPIClient.request`: wrapping them once
(`choke_point.ChokePointPatcher`) covers `create`, `parse`, the `.stream()` helpers (which call `create`) and
`with_raw_response`, for `OpenAI`, `AzureOpenAI` and OpenAI-compatible servers alike. What is openai's own is here:
routing by path, the provider (Azure by class, compatible servers by host), asking chat and completions streams for
usage, and reading responses, raw responses and the two kinds of stream.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace

from costline import attributes as A
from costline.instrumentation.call_span import CallSpan
from costline.instrumentation.choke_point import ChokePointPatcher
from costline.instrumentation.environment_variables import COSTLINE_OPENAI_STREAM_USAGE
from costline.instrumentation.guard import swallow
from costline.instrumentation.openai.providers import provider_for
from costline.instrumentation.openai.usage import (
    ChunkStreamObserver,
    ResponsesStreamObserver,
    UsageEventStreamObserver,
    media_recorder,
    record_response,
    record_responses_response,
)
from costline.instrumentation.policy_guard import Guard
from costline.instrumentation.streams import StreamObserver

_USAGE_INJECTABLE = frozenset({"/chat/completions", "/completions"})
"""Endpoints whose streams report usage only when asked (`stream_options.include_usage`)."""

_DEFAULT_PORTS: Mapping[str, int] = {"https": 443, "http": 80}


class OpenAIPatcher(ChokePointPatcher):
    """Wraps and unwraps the openai SDK. One instance per `CostlineInstrumentor.instrument()`."""

    library = "openai"
    operations: Mapping[str, str] = {
        "/chat/completions": A.OPERATION_CHAT,
        "/responses": A.OPERATION_CHAT,
        "/embeddings": A.OPERATION_EMBEDDINGS,
        "/completions": A.OPERATION_TEXT_COMPLETION,
        # The audio and image endpoints whose token-billed models report usage (gpt-4o-transcribe, gpt-image-1):
        # semconv's operation for content other than chat.
        "/audio/transcriptions": A.OPERATION_GENERATE_CONTENT,
        "/audio/translations": A.OPERATION_GENERATE_CONTENT,
        "/images/generations": A.OPERATION_GENERATE_CONTENT,
        "/images/edits": A.OPERATION_GENERATE_CONTENT,
    }
    request_tier_attribute = A.OPENAI_REQUEST_SERVICE_TIER

    def __init__(self, tracer: trace.Tracer, tracer_provider: Any, guard: Guard | None = None,
                 billing: Any = None) -> None:
        super().__init__(tracer, tracer_provider, guard, billing)
        self._inject_usage = os.environ.get(COSTLINE_OPENAI_STREAM_USAGE, "true").strip().lower() != "false"

    def instrument(self) -> None:
        import openai

        self._azure_cls = getattr(openai, "AzureOpenAI", None)
        self._async_azure_cls = getattr(openai, "AsyncAzureOpenAI", None)
        self._raw_response_types = tuple(
            t
            for t in (
                getattr(openai, "_legacy_response", None) and openai._legacy_response.LegacyAPIResponse,
                getattr(openai, "_response", None) and openai._response.BaseAPIResponse,
            )
            if t
        )
        super().instrument()

    def provider(self, instance: Any, base_url: Any, is_async: bool) -> str:
        azure_cls = self._async_azure_cls if is_async else self._azure_cls
        is_azure = azure_cls is not None and isinstance(instance, azure_cls)
        return provider_for(base_url.host, base_url.port or _DEFAULT_PORTS.get(base_url.scheme), is_azure)

    def ask_stream_usage(self, options: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict, bool]:
        """Make a chat or completions stream report usage, on a copy of the request's options; the usage-only chunk
        this adds is hidden from the application."""
        try:
            if not self._inject_usage or getattr(options, "url", None) not in _USAGE_INJECTABLE:
                return args, kwargs, False
            body = options.json_data
            if not isinstance(body, Mapping):
                return args, kwargs, False
            stream_options = body.get("stream_options")
            if isinstance(stream_options, Mapping) and stream_options.get("include_usage") is True:
                return args, kwargs, False
            new_options = copy.copy(options)
            new_options.json_data = {**body, "stream_options": {**(stream_options or {}), "include_usage": True}}
            if len(args) > 1:
                return (args[0], new_options, *args[2:]), kwargs, True
            return args, {**kwargs, "options": new_options}, True
        except Exception:
            swallow("asking an openai stream for usage")
            return args, kwargs, False

    def read(self, call: CallSpan, options: Any, stream: bool, hide: bool, result: Any,
             is_async: bool) -> StreamObserver | None:
        raw = isinstance(result, self._raw_response_types)
        url = getattr(options, "url", None)
        if stream and not raw and hasattr(result, "__aiter__" if is_async else "__iter__"):
            if url == "/responses":
                return ResponsesStreamObserver(call)
            if url in _MEDIA_READERS:
                return UsageEventStreamObserver(call)
            return ChunkStreamObserver(call, hide)
        recorder = _READERS.get(url, record_response)  # type: ignore[arg-type]
        if not raw:
            recorder(call, result)
        elif not stream:
            # `with_raw_response`: parsing is cached by the SDK, so the application's own parse() is free.
            recorder(call, result.parse())
        return None


_MEDIA_READERS: Mapping[str, Any] = {
    "/audio/transcriptions": media_recorder(None),
    "/audio/translations": media_recorder(None),
    "/images/generations": media_recorder("image"),
    "/images/edits": media_recorder("image"),
}
_READERS: Mapping[str, Any] = {"/responses": record_responses_response, **_MEDIA_READERS}
"""Response readers by request path; the rest (chat, completions, embeddings) is `record_response`."""
