"""`normalize_span`: one OTLP span of any supported instrumentation → `LLMCall`, or None for a span that is no call.

Hot path: the processor calls this for every span of every trace, and most spans (HTTP, DB, app) are not LLM calls.
Spans are read through the view (`otlp.py`): a span's attributes are their `KeyValue` encodings, decoded through a
memo of whole attributes (`read.py`) without a Python message per attribute. When the scope names a known LLM
instrumentation, that row reads the span. Otherwise (most spans) one C-level pass over the span's keys asks whether
any is LLM-indicative; a span with none is dropped right there, the rest (peers detected by marker attributes,
generic semconv) are read by the row their markers name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google.protobuf.message import Message
from opentelemetry.proto.trace.v1.trace_pb2 import Status

from costline import attributes as A
from costline.processor.model import LLMCall
from costline.processor.normalize.bounds import CLAMPED, bound_labels, clamp_cache
from costline.processor.normalize.providers import UNKNOWN, canonical_provider
from costline.processor.normalize.read import decoded, read
from costline.processor.normalize.resource import resource_attributes, shared
from costline.processor.normalize.sources import (
    NON_CALL_OPERATIONS,
    SEMCONV_SOURCE,
    SOURCES,
    Source,
)
from costline.processor.normalize.values import InvalidSpan
from costline.processor.otlp import ViewSpan

__all__ = ["normalize_span", "resource_attributes"]

_LLM_PREFIXES = ("gen_ai.", "llm.", "openinference.", "embedding.")


def _llm_hints() -> frozenset[str]:
    """The keys whose presence hints at an LLM span (owner keys, markers of a source's values alone do not)."""
    return frozenset(key for source in SOURCES for key in source.keymap if key.startswith(_LLM_PREFIXES))


LLM_HINTS: frozenset[str] = _llm_hints()

_SCOPE_ROWS: dict[str, Source | None] = {}
_SCOPE_CACHE_LIMIT = 4096  # scope names come from the wire: bound the memo

_REQUEST_TYPE_OPERATION = {  # OpenLLMetry's llm.request.type
    "chat": A.OPERATION_CHAT,
    "completion": A.OPERATION_TEXT_COMPLETION,
    "embedding": A.OPERATION_EMBEDDINGS,
    "rerank": "rerank",
}
_OI_KIND_OPERATION = {"LLM": A.OPERATION_CHAT, "EMBEDDING": A.OPERATION_EMBEDDINGS}

_CACHE_OUTSIDE_INPUT: frozenset[str] = frozenset().union(*(source.cache_excluded_for for source in SOURCES))
"""Providers whose own API counts input without the cache (Anthropic): on their spans cache counts above the input
are normal whatever the source, so they are never clamped to it (the uncached input is clamped to 0 instead)."""

_STATUS_ERROR = Status.STATUS_CODE_ERROR
_OTHER_ERROR = "_OTHER"


def _row_for_scope(scope_name: str) -> Source | None:
    try:
        return _SCOPE_ROWS[scope_name]
    except KeyError:
        pass
    found = None
    for source in SOURCES:
        if source.scopes and scope_name.startswith(source.scopes):
            found = source
            break
    if len(_SCOPE_ROWS) < _SCOPE_CACHE_LIMIT:
        _SCOPE_ROWS[scope_name] = found
    return found


def _row_for_markers(attributes: Mapping[str, object]) -> Source:
    for source in SOURCES:
        for key in source.markers:
            if key in attributes:
                return source
        for key, expected in source.marker_values.items():
            if attributes.get(key) == expected:
                return source
    return SEMCONV_SOURCE


def normalize_span(span: Message, resource_attrs: Mapping[str, object], scope_name: str) -> LLMCall | None:
    """The call `span` describes, or None when it describes none. Raises `InvalidSpan` for impossible token counts.

    `span` is a view span (`otlp.ViewSpan`); an official `Span` (tests, forwarding) is read through the view first.
    """
    if type(span) is not ViewSpan:
        span = ViewSpan.FromString(span.SerializeToString())
    attributes = decoded(span.attributes)  # type: ignore[attr-defined]
    source = _row_for_scope(scope_name)
    if source is None:  # unknown scope, usually not an LLM span at all: is any of its keys LLM-indicative?
        if LLM_HINTS.isdisjoint(attributes[0]):
            return None
        source = _row_for_markers(attributes[0])
    values, owner, invalid = read(source, attributes)
    return _build(source, values, owner, invalid, span, resource_attrs)


def _build(source: Source, values: dict[str, object], span_owner: dict[str, str], invalid: InvalidSpan | None,
           span: Any, resource: Mapping[str, object]) -> LLMCall | None:
    get = values.get
    operation: str | None = get("operation")  # type: ignore[assignment]
    request_model: str | None = get("request_model")  # type: ignore[assignment]
    response_model: str | None = get("response_model")  # type: ignore[assignment]

    # --- is this an LLM call at all? Decided before any token count can reject it.
    kind: str | None = None
    gate = source.gate
    if gate == "openinference":
        kind = get("kind")  # type: ignore[assignment]
        if kind is None or kind.upper() not in _OI_KIND_OPERATION:
            return None
    elif gate == "operation":
        if operation is None:
            return None
    elif operation is None and get("provider") is None and get("request_type") is None:
        return None
    if operation in NON_CALL_OPERATIONS:
        return None

    input_raw: int | None = get("input")  # type: ignore[assignment]
    output: int | None = get("output")  # type: ignore[assignment]
    cache_read: int | None = get("cache_read")  # type: ignore[assignment]
    cache_write: int | None = get("cache_write")  # type: ignore[assignment]
    total: int | None = get("total")  # type: ignore[assignment]
    has_usage = not (input_raw is None and output is None and cache_read is None and cache_write is None
                     and total is None)
    if gate == "genai" and not has_usage and request_model is None and response_model is None:
        if invalid is None:
            return None  # a provider tag alone (e.g. on an HTTP span) is not a call
    if invalid is not None:
        raise invalid

    if request_model is None and get("request_params") is not None:
        request_model = _model_from_params(get("request_params"))  # type: ignore[arg-type]
    raw_provider: str | None = get("provider")  # type: ignore[assignment]
    provider = canonical_provider(raw_provider) if raw_provider else (source.default_provider or UNKNOWN)
    if operation is None:
        operation = _derive_operation(get("request_type"), kind)  # type: ignore[arg-type]

    cache_read = cache_read or 0
    cache_write = cache_write or 0
    output = output or 0
    if input_raw is None and total is not None:
        input_raw = max(total - output, 0)  # only a total and an output: the rest is input (same cache semantics)
    input_uncached = input_raw or 0
    adjusted: tuple[tuple[str, str], ...] = ()
    if provider not in source.cache_excluded_for:
        if input_raw is not None and provider not in _CACHE_OUTSIDE_INPUT:  # the input includes the cache: bounds it
            cache_read, cache_write, adjusted = clamp_cache(input_raw, cache_read, cache_write)
        input_uncached = max(input_uncached - cache_read - cache_write, 0)  # cache is billed at its own rates
    reasoning: int = get("reasoning") or 0  # type: ignore[assignment]
    if reasoning > output and output:
        reasoning = output  # a subset of output by definition; never report more than was billed
        adjusted += (("reasoning_tokens", CLAMPED),)

    error_type: str | None = get("error_type")  # type: ignore[assignment]
    if error_type is None and span.status.code == _STATUS_ERROR:
        error_type = _OTHER_ERROR
    stream = get("stream") is True
    ttft: float | None = get("ttft")  # type: ignore[assignment]
    if source.ttft_streams_only and not stream:
        ttft = None

    retries: int = get("retries") or 0  # type: ignore[assignment]

    res = shared(resource)
    owner = {**res.owner, **span_owner} if span_owner else dict(res.owner)  # span wins; each call owns its dict

    return bound_labels(LLMCall(
        provider=provider, request_model=request_model, response_model=response_model, operation=operation,
        input_tokens=input_uncached, output_tokens=output, cache_read_tokens=cache_read,
        cache_write_tokens=cache_write, reasoning_tokens=reasoning, has_usage=has_usage,
        error_type=error_type, time_to_first_token_s=ttft, stream=stream, retries=retries,
        response_id=get("response_id"), trace_id=span.trace_id, span_id=span.span_id,  # type: ignore[arg-type]
        parent_span_id=span.parent_span_id, start_time_unix_nano=span.start_time_unix_nano,
        end_time_unix_nano=span.end_time_unix_nano, source=source.name,
        server_address=get("server_address"), owner=owner,  # type: ignore[arg-type]
        api_key_fingerprint=get("fingerprint"),  # type: ignore[arg-type]
         environment=res.environment, service_name=res.service_name,
        adjusted=adjusted,
    ))


_MAX_PARAMS_JSON = 16_384  # invocation parameters are small; don't parse a huge blob on the hot path


def _model_from_params(text: str | None) -> str | None:
    if text is None or len(text) > _MAX_PARAMS_JSON:
        return None
    try:
        params = json.loads(text)
    except ValueError:
        return None
    model = params.get("model") if isinstance(params, dict) else None
    return model if isinstance(model, str) and model else None


def _derive_operation(request_type: str | None, kind: str | None) -> str:
    if request_type is not None:
        derived = _REQUEST_TYPE_OPERATION.get(request_type.lower())
        if derived is not None:
            return derived
    if kind is not None:
        return _OI_KIND_OPERATION.get(kind.upper(), A.OPERATION_CHAT)
    return A.OPERATION_CHAT
