"""Patching of the openai SDK (3.x; it talks over httpx2).

All LLM endpoints funnel through `SyncAPIClient.request` / `AsyncAPIClient.request`: wrapping them once covers
`create`, `parse`, the `.stream()` helpers (which call `create`) and `with_raw_response`, for `OpenAI`,
`AzureOpenAI` and OpenAI-compatible servers alike. `_sleep_for_retry` is wrapped to count the retries the SDK makes inside one
call (it runs only before a retry, so the happy path pays nothing for it).
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from wrapt import wrap_function_wrapper

from costline import attributes as A
from costline.fingerprint import fingerprint
from costline.instrumentation.call_span import CallSpan, acount_retry, count_retry
from costline.instrumentation.environment_variables import COSTLINE_OPENAI_STREAM_USAGE
from costline.instrumentation.guard import swallow
from costline.instrumentation.openai.providers import provider_for
from costline.instrumentation.openai.usage import ChunkStreamObserver, ResponsesStreamObserver, record_response
from costline.instrumentation.policy_guard import Guard, judge
from costline.instrumentation.streams import AsyncStreamProxy, StreamObserver, SyncStreamProxy

_BASE_CLIENT = "openai._base_client"

_OPERATIONS: Mapping[str, str] = {
    "/chat/completions": A.OPERATION_CHAT,
    "/responses": A.OPERATION_CHAT,
    "/embeddings": A.OPERATION_EMBEDDINGS,
    "/completions": A.OPERATION_TEXT_COMPLETION,
}
"""Request path -> `gen_ai.operation.name`. Paths not listed (files, models, ...) are not LLM calls."""

_USAGE_INJECTABLE = frozenset({"/chat/completions", "/completions"})
"""Endpoints whose streams report usage only when asked (`stream_options.include_usage`)."""


_DEFAULT_PORTS: Mapping[str, int] = {"https": 443, "http": 80}

_STATIC = "_costline_static_attributes"
"""Attribute of an openai client holding the span attributes that depend only on the client: (api_key, base_url,
attributes). The key and URL are kept to notice an application that reassigns them."""


class OpenAIPatcher:
    """Wraps and unwraps the openai SDK. One instance per `CostlineInstrumentor.instrument()`."""

    def __init__(self, tracer: trace.Tracer, guard: Guard | None = None) -> None:
        self._tracer = tracer
        self._guard = guard
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
        wrap_function_wrapper(_BASE_CLIENT, "SyncAPIClient.request", self._request)
        wrap_function_wrapper(_BASE_CLIENT, "AsyncAPIClient.request", self._arequest)
        wrap_function_wrapper(_BASE_CLIENT, "SyncAPIClient._sleep_for_retry", count_retry)
        wrap_function_wrapper(_BASE_CLIENT, "AsyncAPIClient._sleep_for_retry", acount_retry)

    @staticmethod
    def uninstrument() -> None:
        import openai._base_client as base
        from opentelemetry.instrumentation.utils import unwrap

        unwrap(base.SyncAPIClient, "request")
        unwrap(base.AsyncAPIClient, "request")
        unwrap(base.SyncAPIClient, "_sleep_for_retry")
        unwrap(base.AsyncAPIClient, "_sleep_for_retry")

    # --- shared -------------------------------------------------------------------------------------------------
    def _client_attributes(self, instance: Any, is_async: bool) -> dict[str, Any]:
        """Provider, server address and port, and the API-key fingerprint of a client, worked out and cached on
        the client (`_STATIC`): they cost more to derive than the rest of the span's start. `_start` uses the cache
        while the client's key and base URL are the objects it was made from."""
        api_key = getattr(instance, "api_key", None)
        base_url = instance.base_url
        fields = getattr(instance, "__dict__", None)
        host = base_url.host
        port = base_url.port  # None when it is the scheme's default
        azure_cls = self._async_azure_cls if is_async else self._azure_cls
        is_azure = azure_cls is not None and isinstance(instance, azure_cls)
        attrs: dict[str, Any] = {
            A.GEN_AI_PROVIDER_NAME: provider_for(host, port or _DEFAULT_PORTS.get(base_url.scheme), is_azure),
            A.SERVER_ADDRESS: host,
        }
        if port is not None:
            attrs[A.SERVER_PORT] = port
        if isinstance(api_key, str) and api_key:
            attrs[A.COSTLINE_API_KEY_FINGERPRINT] = fingerprint(api_key)
        if fields is not None:
            fields[_STATIC] = (api_key, base_url, attrs)
        return attrs

    def _start(self, instance: Any, args: tuple, kwargs: dict, is_async: bool) -> CallSpan | None:
        """Start the span of an LLM call, or return None when this request is not one. Never raises."""
        try:
            options = args[1] if len(args) > 1 else kwargs.get("options")
            operation = _OPERATIONS.get(getattr(options, "url", None))  # type: ignore[arg-type]
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
            model = body.get("model") if isinstance(body, Mapping) else None
            return CallSpan(self._tracer, operation, model if isinstance(model, str) else None, attrs)
        except Exception:
            swallow("starting an openai call span")
            return None

    def _ask_stream_usage(self, args: tuple, kwargs: dict) -> tuple[tuple, dict, bool]:
        """Make a chat or completions stream report usage. Returns (args, kwargs, whether Costline asked, so the
        usage-only chunk it adds is hidden from the application). Never raises."""
        try:
            options = args[1] if len(args) > 1 else kwargs.get("options")
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

    def _finish(self, call: CallSpan, args: tuple, kwargs: dict, hide: bool, result: Any, is_async: bool) -> Any:
        """Wrap a stream so it ends the span later; end the span now for anything else. Never raises."""
        try:
            raw = isinstance(result, self._raw_response_types)
            stream = kwargs.get("stream")
            if stream and not raw and hasattr(result, "__aiter__" if is_async else "__iter__"):
                options = args[1] if len(args) > 1 else kwargs.get("options")
                observer: StreamObserver = (
                    ResponsesStreamObserver(call)
                    if getattr(options, "url", None) == "/responses"
                    else ChunkStreamObserver(call, hide)
                )
                return (AsyncStreamProxy if is_async else SyncStreamProxy)(result, observer)
            if not raw:
                record_response(call, result)
            elif not stream:
                # `with_raw_response`: parsing is cached by the SDK, so the application's own parse() is free.
                record_response(call, result.parse())
        except Exception:
            swallow("reading an openai response")
        call.end()
        return result

    # --- the wrappers ---------------------------------------------------------------------------------------------
    def _request(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        call = self._start(instance, args, kwargs, is_async=False)
        if call is None:
            return wrapped(*args, **kwargs)
        if self._guard is not None:
            judge(self._guard, call)  # raises a refusal in block mode: nothing is sent
        hide = False
        if kwargs.get("stream"):
            args, kwargs, hide = self._ask_stream_usage(args, kwargs)
        result = call.run(wrapped, args, kwargs)
        return self._finish(call, args, kwargs, hide, result, is_async=False)

    async def _arequest(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        call = self._start(instance, args, kwargs, is_async=True)
        if call is None:
            return await wrapped(*args, **kwargs)
        if self._guard is not None:
            judge(self._guard, call)
        hide = False
        if kwargs.get("stream"):
            args, kwargs, hide = self._ask_stream_usage(args, kwargs)
        result = await call.arun(wrapped, args, kwargs)
        return self._finish(call, args, kwargs, hide, result, is_async=True)
