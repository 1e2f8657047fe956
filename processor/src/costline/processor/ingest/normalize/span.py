"""`normalize_span`: one OTLP span of any supported instrumentation → `LLMCall`, or None for a span that is no call.

Hot path: the processor calls this for every span of every trace, and most spans (HTTP, DB, app) are not LLM calls.
When the scope names a known LLM instrumentation, the span's attributes are walked once and decoded straight into
fields through that row's `keymap`. Otherwise (most spans) one cheap walk keeps only the keys some row reads
(`WANTED`), undecoded; a span none of whose keys is LLM-indicative is dropped right there. Only the rest (peers
detected by marker attributes, generic semconv) pay a second pass over their few kept attributes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from costline import attributes as A
from costline.processor.ingest.normalize.bounds import CLAMPED, bound_labels, clamp_cache
from costline.processor.ingest.normalize.context import price_context
from costline.processor.ingest.normalize.providers import UNKNOWN, canonical_provider
from costline.processor.ingest.normalize.resource import resource_attributes, shared
from costline.processor.ingest.normalize.sources import (
    AGGREGATE_KINDS,
    BOOL,
    COUNT,
    FLOAT,
    NON_CALL_OPERATIONS,
    OWNER,
    SEMCONV_SOURCE,
    SOURCES,
    STR,
    TOKENS,
    Source,
)
from costline.processor.ingest.normalize.values import MAX_TOKENS, InvalidSpan, as_bool, as_count, as_float, as_tokens
from costline.processor.model import LLMCall

__all__ = ["normalize_span", "resource_attributes"]

_LLM_PREFIXES = ("gen_ai.", "llm.", "openinference.", "embedding.")


def _wanted() -> dict[str, bool]:
    """key -> whether its presence hints at an LLM span (owner keys alone do not)."""
    wanted: dict[str, bool] = {}
    for source in SOURCES:
        for key, (name, _, _) in source.keymap.items():
            # A source's marker keys are LLM-indicative whatever their prefix (`langfuse.observation.type`, `ai.*`).
            wanted[key] = (wanted.get(key, False) or key.startswith(_LLM_PREFIXES) or name == "marker"
                           or key in source.markers)  # a marker the row also reads as a field (`ai.model.provider`)
        for key in source.marker_values:
            wanted.setdefault(key, False)
    return wanted


WANTED: dict[str, bool] = _wanted()

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


def _row_for_markers(kept: list[KeyValue]) -> Source:
    for source in SOURCES:
        for kv in kept:
            key = kv.key
            if key in source.markers:
                return source
            expected = source.marker_values.get(key)
            if expected is not None and kv.value.string_value == expected:
                return source
    return SEMCONV_SOURCE


def normalize_span(span: Span, resource_attrs: Mapping[str, object], scope_name: str) -> LLMCall | None:
    """The call `span` describes, or None when it describes none. Raises `InvalidSpan` for impossible token counts."""
    source = _row_for_scope(scope_name)
    if source is not None:  # a known LLM scope: decode in the one walk
        return _build(source, _decode(source, span.attributes), span, resource_attrs)
    # Unknown scope, usually not an LLM span at all: one cheap walk keeping only wanted keys, nothing decoded.
    wanted = WANTED
    kept: list[KeyValue] = []
    llm = False
    for kv in span.attributes:
        hint = wanted.get(kv.key)
        if hint is not None:
            kept.append(kv)
            if hint:
                llm = True
    if not llm:
        return None
    source = _row_for_markers(kept)
    return _build(source, _decode(source, kept), span, resource_attrs)


class _Decoded:
    """One span's attributes as decoded by one row: field -> value (preferred key wins), owner keys, fingerprint."""

    __slots__ = ("values", "owner", "fingerprint", "invalid")

    def __init__(self) -> None:
        self.values: dict[str, object] = {}
        self.owner: dict[str, str] = {}
        self.fingerprint: str | None = None
        self.invalid: InvalidSpan | None = None
        """An impossible token count, raised only once the span is known to be an LLM call."""


def _decode(source: Source, attributes: Iterable[KeyValue]) -> _Decoded:
    keymap = source.keymap
    out = _Decoded()
    values = out.values
    priorities: dict[str, int] = {}
    for kv in attributes:
        key = kv.key
        spec = keymap.get(key)
        if spec is None:
            continue
        field, priority, decoder = spec
        value = kv.value
        decoded: object
        if decoder is STR:
            decoded = value.string_value or None  # any other type reads as "": ignored like an absent attribute
        elif decoder is TOKENS:
            decoded = value.int_value
            if not 0 < decoded <= MAX_TOKENS:  # type: ignore[operator]
                try:
                    decoded = as_tokens(value, key)  # zero, strings, doubles, and the impossible
                except InvalidSpan as err:
                    out.invalid = err
                    continue
        elif decoder is OWNER:
            if text := value.string_value:
                out.owner[key] = text
            continue
        elif decoder is BOOL:
            decoded = as_bool(value)
        elif decoder is FLOAT:
            decoded = as_float(value)
        elif decoder is COUNT:
            decoded = as_count(value)
        else:  # marker: only identifies the row
            continue
        if decoded is None:
            continue  # wrong type: a lower-priority key may still give the field
        if priority:  # an alias: only when the preferred key has not given the field (in any order)
            held = priorities.get(field)
            if held is not None and held <= priority:
                continue
            if held is None and field in values:
                continue  # the preferred key (priority 0) already did
            priorities[field] = priority
        values[field] = decoded
    if (fingerprint := values.pop("fingerprint", None)) is not None:
        out.fingerprint = fingerprint  # type: ignore[assignment]
    return out


def _build(source: Source, decoded: _Decoded, span: Span, resource: Mapping[str, object]) -> LLMCall | None:
    """The call, from a span's decoded fields: a recipe of one-concern steps. Hot path (every LLM span): a step is a
    function where it is more than a line or two; the rare fallbacks (a derived operation, a model read from the
    invocation parameters) are called only when needed, since a call costs more here than the test before it."""
    values = decoded.values
    if source.refine is not None:
        source.refine(values)
    if source.is_call is not None and "error_type" not in values and span.status.code == _STATUS_ERROR:
        values["error_type"] = _OTHER_ERROR  # a source's own call rule may tell failed calls apart (Logfire's)
    has_usage = not values.keys().isdisjoint(_USAGE_FIELDS)
    if not _is_call(source, decoded, has_usage):
        return None
    get = values.get
    request_model: str | None = get("request_model")  # type: ignore[assignment]
    if request_model is None and "request_params" in values:
        request_model = _model_from_params(get("request_params"))  # type: ignore[arg-type]
    operation: str | None = get("operation")  # type: ignore[assignment]
    if operation is None:
        operation = _derived_operation(values)
    raw_provider: str | None = get("provider")  # type: ignore[assignment]
    provider = canonical_provider(raw_provider) if raw_provider else (source.default_provider or UNKNOWN)
    input_uncached, output, cache_read, cache_write, reasoning, adjusted = _tokens(source, provider, values)
    error_type: str | None = get("error_type")  # type: ignore[assignment]
    if error_type is None and span.status.code == _STATUS_ERROR:
        error_type = _OTHER_ERROR
    stream = get("stream") is True
    # A source that writes its "time to first token" on non-streamed calls too means the whole latency there.
    ttft = None if source.ttft_streams_only and not stream else get("ttft")
    res = shared(resource)
    owner = {**res.owner, **decoded.owner} if decoded.owner else dict(res.owner)  # span wins; each call owns its dict
    call = bound_labels(LLMCall(
        provider=provider, request_model=request_model, response_model=get("response_model"),
        operation=operation, input_tokens=input_uncached, output_tokens=output,
        cache_read_tokens=cache_read, cache_write_tokens=cache_write, reasoning_tokens=reasoning,
        has_usage=has_usage, error_type=error_type, time_to_first_token_s=ttft,
        stream=stream, retries=get("retries") or 0, response_id=get("response_id"), trace_id=span.trace_id,
        span_id=span.span_id, parent_span_id=span.parent_span_id, start_time_unix_nano=span.start_time_unix_nano,
        end_time_unix_nano=span.end_time_unix_nano, source=source.name, server_address=get("server_address"),
        pairs_by_usage=source.pairs_by_usage, owner=owner, api_key_fingerprint=decoded.fingerprint, environment=res.environment,
        service_name=res.service_name, adjusted=adjusted,
        conversation_id=get("conversation_id"), session_id=get("session_id"),  # type: ignore[arg-type]
    ))
    if not values.keys().isdisjoint(_RARE_FIELDS):  # most spans carry none of these: one test spares them the step
        _rare(call, values)
    return call


_UNIT_FIELDS = ("cache_write_1h", "input_audio", "input_image", "input_video", "output_audio", "output_image",
                "output_video", "web_searches", "code_executions")
_RARE_FIELDS = frozenset({*_UNIT_FIELDS, "service_tier", "processing", "reported_cost"})


def _rare(call: LLMCall, values: Mapping[str, object]) -> None:
    """The billable units beyond the five token types, the price context and a reported cost: each bounded by what
    contains it (a part never exceeds its whole: audio input within the uncached input, 1 h writes within writes)."""
    get = values.get
    adjusted = list(call.adjusted)

    def part(name: str, whole: int) -> int:
        value: int = get(name) or 0  # type: ignore[assignment]
        if value > whole:
            adjusted.append((name, CLAMPED))
            return whole
        return value

    call.cache_write_1h_tokens = part("cache_write_1h", call.cache_write_tokens)
    room = call.input_tokens  # modalities share the uncached input: together they never exceed it
    for name in ("input_audio", "input_image", "input_video"):
        value = part(name, room)
        setattr(call, f"{name}_tokens", value)
        room -= value
    room = call.output_tokens
    for name in ("output_audio", "output_image", "output_video"):
        value = part(name, room)
        setattr(call, f"{name}_tokens", value)
        room -= value
    call.web_searches = get("web_searches") or 0  # type: ignore[assignment]
    call.code_executions = get("code_executions") or 0  # type: ignore[assignment]
    if call.web_searches or call.code_executions:
        call.has_usage = True
    call.service_tier, call.processing = price_context(get("service_tier"), get("processing"))  # type: ignore[arg-type]
    reported = get("reported_cost")
    if isinstance(reported, float) and 0 <= reported < _MAX_REPORTED_COST_USD:
        call.reported_cost_usd = reported
    call.adjusted = tuple(adjusted)
    call.rare = True


_MAX_REPORTED_COST_USD = 1_000_000.0
"""A reported cost for one call above this is not a cost (a unit mix-up): ignored, not compared."""


_USAGE_FIELDS = frozenset({"input", "output", "cache_read", "cache_write", "total", "web_searches",
                           "code_executions"})
"""A span reports usage when it gives any of these (`_Decoded.values` holds no None)."""


def _is_call(source: Source, decoded: _Decoded, has_usage: bool) -> bool:
    """Whether the span is an LLM call, by its row's gate: decided before an impossible token count (raised here,
    as `InvalidSpan`) can reject it, since a span that is no call is no invalid call either."""
    values = decoded.values
    operation = values.get("operation")
    gate = source.gate
    if source.is_call is not None:  # the source's own rule
        if not source.is_call(values):
            return False
    elif gate == "openinference":
        kind = values.get("kind")
        if kind is None or kind.upper() not in _OI_KIND_OPERATION:  # type: ignore[attr-defined]
            return False
    elif gate == "operation":
        if operation is None:
            return False
    elif operation is None and "provider" not in values and "request_type" not in values:
        return False
    if operation in NON_CALL_OPERATIONS:
        return False
    if "aggregate" in values and values["aggregate"] in AGGREGATE_KINDS:  # an agent run, workflow, outer SDK span
        return False
    if decoded.invalid is not None:
        raise decoded.invalid
    # A provider tag alone (e.g. on an HTTP span) is not a call: a "genai" row wants a model or usage too.
    return gate != "genai" or has_usage or "request_model" in values or "response_model" in values


def _tokens(source: Source, provider: str, values: Mapping[str, object]
            ) -> tuple[int, int, int, int, int, tuple[tuple[str, str], ...]]:
    """Uncached input, output, cache read, cache write and reasoning tokens as billed, and the bounds applied."""
    get = values.get
    input_raw: int | None = get("input")  # type: ignore[assignment]
    output: int = get("output") or 0  # type: ignore[assignment]
    cache_read: int = get("cache_read") or 0  # type: ignore[assignment]
    cache_write: int = get("cache_write") or 0  # type: ignore[assignment]
    if input_raw is None and (total := get("total")) is not None:
        input_raw = max(total - output, 0)  # type: ignore[operator]  # only a total and an output: the rest is input
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
    return input_uncached, output, cache_read, cache_write, reasoning, adjusted


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


def _derived_operation(values: Mapping[str, object]) -> str:
    """The operation of a span that names none, from its row's own words for it (OpenLLMetry's request type,
    OpenInference's span kind: only OpenInference's rows decode a kind); chat when neither does."""
    request_type: str | None = values.get("request_type")  # type: ignore[assignment]
    kind: str | None = values.get("kind")  # type: ignore[assignment]
    if request_type is not None:
        derived = _REQUEST_TYPE_OPERATION.get(request_type.lower())
        if derived is not None:
            return derived
    if kind is not None:
        return _OI_KIND_OPERATION.get(kind.upper(), A.OPERATION_CHAT)
    return A.OPERATION_CHAT
