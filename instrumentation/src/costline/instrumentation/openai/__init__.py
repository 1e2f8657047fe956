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


class _Prepared:
    """What the request wrapper decided before calling the SDK."""

    __slots__ = ("call", "args", "kwargs", "stream", "hide_usage_chunk", "responses_api")

    def __init__(self, call: CallSpan, args: tuple, kwargs: dict, stream: bool, hide: bool, responses: bool) -> None:
        self.call = call
        self.args = args
        self.kwargs = kwargs
        self.stream = stream
        self.hide_usage_chunk = hide
        self.responses_api = responses


class OpenAIPatcher:
    """Wraps and unwraps the openai SDK. One instance per `CostlineInstrumentor.instrument()`."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer
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
    def _prepare(self, instance: Any, args: tuple, kwargs: dict, is_async: bool) -> _Prepared | None:
        """Start the span of an LLM call, or return None when this request is not one. Never raises."""
        try:
            options = args[1] if len(args) > 1 else kwargs.get("options")
            path = getattr(options, "url", None)
            operation = _OPERATIONS.get(path)  # type: ignore[arg-type]
            if operation is None:
                return None
            body = options.json_data
            if not isinstance(body, Mapping):
                body = {}
            stream = bool(kwargs.get("stream", False))
            base_url = instance.base_url
            host = base_url.host
            port = base_url.port or (443 if base_url.scheme == "https" else 80)
            azure_cls = self._async_azure_cls if is_async else self._azure_cls
            attrs: dict[str, Any] = {
                A.GEN_AI_PROVIDER_NAME: provider_for(host, port, azure_cls is not None and isinstance(instance, azure_cls)),
                A.SERVER_ADDRESS: host,
            }
            attrs[A.SERVER_PORT] = port
            if stream:
                attrs[A.GEN_AI_REQUEST_STREAM] = True
            api_key = getattr(instance, "api_key", None)
            if isinstance(api_key, str) and api_key:
                attrs[A.COSTLINE_API_KEY_FINGERPRINT] = fingerprint(api_key)
            model = body.get("model")
            call = CallSpan(self._tracer, operation, model if isinstance(model, str) else None, attrs)
        except Exception:
            swallow("starting an openai call span")
            return None

        hide = False
        try:
            if stream and self._inject_usage and path in _USAGE_INJECTABLE:
                stream_options = body.get("stream_options")
                if not (isinstance(stream_options, Mapping) and stream_options.get("include_usage") is True):
                    new_options = copy.copy(options)
                    new_options.json_data = {
                        **body,
                        "stream_options": {**(stream_options or {}), "include_usage": True},
                    }
                    args = (args[0], new_options, *args[2:]) if len(args) > 1 else args
                    if len(args) <= 1:
                        kwargs = {**kwargs, "options": new_options}
                    hide = True
        except Exception:
            swallow("asking an openai stream for usage")
        return _Prepared(call, args, kwargs, stream, hide, path == "/responses")

    def _observer(self, prepared: _Prepared) -> StreamObserver:
        if prepared.responses_api:
            return ResponsesStreamObserver(prepared.call)
        return ChunkStreamObserver(prepared.call, prepared.hide_usage_chunk)

    def _finish(self, prepared: _Prepared, result: Any, is_async: bool) -> Any:
        """Wrap a stream so it ends the span later; end the span now for anything else. Never raises."""
        call = prepared.call
        try:
            if prepared.stream and hasattr(result, "__aiter__" if is_async else "__iter__") and not isinstance(
                result, self._raw_response_types
            ):
                proxy_cls = AsyncStreamProxy if is_async else SyncStreamProxy
                return proxy_cls(result, self._observer(prepared))
            if isinstance(result, self._raw_response_types):
                if not prepared.stream:
                    # `with_raw_response`: parsing is cached by the SDK, so the application's own parse() is free.
                    record_response(call, result.parse())
            else:
                record_response(call, result)
        except Exception:
            swallow("reading an openai response")
        call.end()
        return result

    # --- the wrappers ---------------------------------------------------------------------------------------------
    def _request(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        prepared = self._prepare(instance, args, kwargs, is_async=False)
        if prepared is None:
            return wrapped(*args, **kwargs)
        call = prepared.call
        call.activate()
        try:
            result = wrapped(*prepared.args, **prepared.kwargs)
        except BaseException as exc:
            call.deactivate()
            call.end(exc)
            raise
        call.deactivate()
        return self._finish(prepared, result, is_async=False)

    async def _arequest(self, wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        prepared = self._prepare(instance, args, kwargs, is_async=True)
        if prepared is None:
            return await wrapped(*args, **kwargs)
        call = prepared.call
        call.activate()
        try:
            result = await wrapped(*prepared.args, **prepared.kwargs)
        except BaseException as exc:
            call.deactivate()
            call.end(exc)
            raise
        call.deactivate()
        return self._finish(prepared, result, is_async=True)
