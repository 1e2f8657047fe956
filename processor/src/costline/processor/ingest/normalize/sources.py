"""The normalisation table: one row per instrumentation whose spans the processor understands.

A row says how to recognise the source's spans (instrumentation scope, marker attributes) and, for every `LLMCall`
field, which attributes carry it, in order of preference. The walker (`span.py`) decodes only the attributes some row
names, so adding a source is adding a row here — nothing else.

Cache semantics differ per source and are the reason this table exists: the processor bills *uncached* input, so it
must know whether a source's input count already contains the cache-read and cache-write tokens (then they are
subtracted) or not (then input is used as is). Facts checked against the installed packages' source where available:

* Costline, semconv, the official `opentelemetry-instrumentation-genai-openai`: semconv meaning, input includes cache.
* anthropic SDK (`anthropic/lib/_tracing/_response.py`): `gen_ai.usage.input_tokens` = input + cache read + cache
  write (semconv meaning); only spans with `gen_ai.operation.name` are model calls (it tags every API call with
  `gen_ai.provider.name`, `count_tokens` and session calls included).
* OpenLLMetry (`opentelemetry-instrumentation-openai` 0.62): input = openai `prompt_tokens`, which includes cached
  tokens; its anthropic instrumentation sums input + cache read + cache creation. Includes cache.
* OpenLIT 1.45 (`instrumentation/anthropic/utils.py`): input = anthropic's raw `input_tokens`, which **excludes**
  cache read and creation; for openai it is `prompt_tokens` (includes cached). So: excludes for anthropic only.
* OpenInference: `llm.token_count.prompt` includes the `prompt_details.cache_*` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from costline import attributes as A

Field = Literal[
    "provider", "request_model", "response_model", "operation", "input", "output", "cache_read", "cache_write",
    "reasoning", "total", "ttft", "stream", "response_id", "error_type", "server_address", "kind", "request_type",
    "request_params", "retries",
]

# How a field's value is decoded (compared by identity on the hot path).
STR, TOKENS, BOOL, FLOAT, OWNER, MARKER, COUNT = "str", "tokens", "bool", "float", "owner", "marker", "count"
TOKEN_FIELDS: tuple[Field, ...] = ("input", "output", "cache_read", "cache_write", "reasoning", "total")
DECODER: dict[str, str] = {name: STR for name in Field.__args__}  # type: ignore[attr-defined]
DECODER.update({name: TOKENS for name in TOKEN_FIELDS})
DECODER.update({"stream": BOOL, "ttft": FLOAT, "retries": COUNT})

# --- attribute names used by peers (not part of Costline's contract, so not in costline.attributes) -----------------
OPENLLMETRY_PROMPT_TOKENS = "gen_ai.usage.prompt_tokens"
OPENLLMETRY_COMPLETION_TOKENS = "gen_ai.usage.completion_tokens"
OPENLLMETRY_CACHE_READ = "gen_ai.usage.cache_read_input_tokens"
OPENLLMETRY_CACHE_CREATION = "gen_ai.usage.cache_creation_input_tokens"
OPENLLMETRY_REASONING = "gen_ai.usage.reasoning_tokens"
OPENLLMETRY_LLM_REASONING = "llm.usage.reasoning_tokens"
OPENLLMETRY_TOTAL = "llm.usage.total_tokens"
GEN_AI_TOTAL = "gen_ai.usage.total_tokens"
OPENLLMETRY_REQUEST_TYPE = "llm.request.type"
OPENLLMETRY_IS_STREAMING = "llm.is_streaming"
GEN_AI_IS_STREAMING = "gen_ai.is_streaming"

OPENLIT_TTFT = "gen_ai.server.time_to_first_token"
OPENLIT_COST = "gen_ai.usage.cost"
OPENLIT_REASONING_DETAIL = "gen_ai.usage.completion_tokens_details.reasoning_tokens"
OPENLIT_CACHE_READ_DETAIL = "gen_ai.usage.prompt_tokens_details.cached_tokens"
OPENLIT_CACHE_WRITE_DETAIL = "gen_ai.usage.prompt_tokens_details.cache_creation_tokens"
TELEMETRY_SDK_NAME = "telemetry.sdk.name"  # OpenLIT stamps `openlit` on its spans

OI_SPAN_KIND = "openinference.span.kind"
OI_MODEL_NAME = "llm.model_name"
OI_EMBEDDING_MODEL_NAME = "embedding.model_name"
OI_PROVIDER = "llm.provider"
OI_SYSTEM = "llm.system"
OI_PROMPT = "llm.token_count.prompt"
OI_COMPLETION = "llm.token_count.completion"
OI_TOTAL = "llm.token_count.total"
OI_CACHE_READ = "llm.token_count.prompt_details.cache_read"
OI_CACHE_WRITE = "llm.token_count.prompt_details.cache_write"
OI_REASONING = "llm.token_count.completion_details.reasoning"
OI_INVOCATION_PARAMETERS = "llm.invocation_parameters"  # JSON of the request parameters, incl. "model"
OI_EMBEDDING_INVOCATION_PARAMETERS = "embedding.invocation_parameters"

# --- the semconv base every GenAI-style row starts from --------------------------------------------------------------
SEMCONV: dict[Field, tuple[str, ...]] = {
    "provider": (A.GEN_AI_PROVIDER_NAME, A.GEN_AI_SYSTEM),
    "request_model": (A.GEN_AI_REQUEST_MODEL,),
    "response_model": (A.GEN_AI_RESPONSE_MODEL,),
    "operation": (A.GEN_AI_OPERATION_NAME,),
    "input": (A.GEN_AI_USAGE_INPUT_TOKENS,),
    "output": (A.GEN_AI_USAGE_OUTPUT_TOKENS,),
    "cache_read": (A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,),
    "cache_write": (A.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS, A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS),
    "reasoning": (A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,),
    "total": (GEN_AI_TOTAL,),
    "ttft": (A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,),
    "stream": (A.GEN_AI_REQUEST_STREAM, GEN_AI_IS_STREAMING),
    "response_id": (A.GEN_AI_RESPONSE_ID,),
    "error_type": (A.ERROR_TYPE,),
    "server_address": (A.SERVER_ADDRESS,),
    # Retries the SDK made before this call's answer. Costline's spans carry it; a peer that sets the semconv HTTP
    # attribute on its LLM span means the same; spans without it made no retry anyone counted (0).
    "retries": (A.HTTP_REQUEST_RESEND_COUNT,),
}


def _extend(base: dict[Field, tuple[str, ...]], **more: tuple[str, ...]) -> dict[Field, tuple[str, ...]]:
    """`base` with extra keys appended per field (base keys keep precedence: they are the current names)."""
    merged = dict(base)
    for name, keys in more.items():
        merged[name] = merged.get(name, ()) + keys  # type: ignore[index,operator]
    return merged


Gate = Literal["operation", "genai", "openinference"]
"""What makes a span of this source an LLM call:
`operation`: `gen_ai.operation.name` present (the source also tags non-LLM API calls with a provider);
`genai`: a provider/operation key and a model or usage; `openinference`: span kind LLM or EMBEDDING."""


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    fields: dict[Field, tuple[str, ...]]
    gate: Gate
    scopes: tuple[str, ...] = ()
    """Scope-name prefixes that identify the source outright."""
    markers: tuple[str, ...] = ()
    """Attribute keys only this source writes: identify it when the scope is not a known one."""
    marker_values: dict[str, str] = field(default_factory=dict)
    """Attribute key -> value that identifies the source (OpenLIT's `telemetry.sdk.name=openlit`)."""
    cache_excluded_for: frozenset[str] = frozenset()
    """Providers for which this source's input count does NOT include cache tokens (everything else: includes)."""
    default_provider: str | None = None
    ttft_streams_only: bool = False
    """The source writes a "time to first token" on non-streamed calls too (the whole latency): keep it for streams."""
    keymap: dict[str, tuple[str, int, str]] = field(init=False, repr=False, compare=False)
    """attribute key -> (field, priority, decoder) for the one-pass decoding in `span.py` (0 = preferred key)."""

    def __post_init__(self) -> None:
        keymap: dict[str, tuple[str, int, str]] = {}
        for name, keys in self.fields.items():
            for priority, key in enumerate(keys):
                keymap.setdefault(key, (name, priority, DECODER[name]))
        for key in (*self.markers, *self.marker_values):
            keymap.setdefault(key, ("marker", 0, MARKER))
        for key in A.OWNER_KEYS:
            keymap[key] = ("owner", 0, OWNER)
        keymap[A.COSTLINE_API_KEY_FINGERPRINT] = ("fingerprint", 0, STR)
        object.__setattr__(self, "keymap", keymap)


OPENLLMETRY_FIELDS = _extend(
    SEMCONV,
    input=(OPENLLMETRY_PROMPT_TOKENS,),
    output=(OPENLLMETRY_COMPLETION_TOKENS,),
    cache_read=(OPENLLMETRY_CACHE_READ,),
    cache_write=(OPENLLMETRY_CACHE_CREATION,),
    reasoning=(OPENLLMETRY_REASONING, OPENLLMETRY_LLM_REASONING),
    total=(OPENLLMETRY_TOTAL,),
    stream=(OPENLLMETRY_IS_STREAMING,),
    request_type=(OPENLLMETRY_REQUEST_TYPE,),
)

OPENLIT_FIELDS = _extend(
    SEMCONV,
    cache_read=(OPENLIT_CACHE_READ_DETAIL, OPENLLMETRY_CACHE_READ),
    cache_write=(OPENLIT_CACHE_WRITE_DETAIL, OPENLLMETRY_CACHE_CREATION),
    reasoning=(OPENLLMETRY_REASONING, OPENLIT_REASONING_DETAIL),
    ttft=(OPENLIT_TTFT,),
)

OPENINFERENCE_FIELDS: dict[Field, tuple[str, ...]] = {
    "provider": (OI_PROVIDER, OI_SYSTEM, A.GEN_AI_PROVIDER_NAME, A.GEN_AI_SYSTEM),
    # OpenInference has one model attribute, set from the response when the response names it: what was billed.
    "response_model": (OI_MODEL_NAME, OI_EMBEDDING_MODEL_NAME),
    "input": (OI_PROMPT,),
    "output": (OI_COMPLETION,),
    "cache_read": (OI_CACHE_READ,),
    "cache_write": (OI_CACHE_WRITE,),
    "reasoning": (OI_REASONING,),
    "total": (OI_TOTAL,),
    "error_type": (A.ERROR_TYPE,),
    "server_address": (A.SERVER_ADDRESS,),
    "kind": (OI_SPAN_KIND,),
    # The requested model only exists inside this JSON; read when needed (a failed call has no llm.model_name).
    "request_params": (OI_INVOCATION_PARAMETERS, OI_EMBEDDING_INVOCATION_PARAMETERS),
}

# Order matters: the first row whose scope or markers match wins; `semconv` is the catch-all.
SOURCES: tuple[Source, ...] = (
    Source("costline", SEMCONV, "genai", scopes=(A.INSTRUMENTATION_SCOPE,)),
    Source("anthropic-sdk", SEMCONV, "operation", scopes=("com.anthropic.sdk",), default_provider="anthropic"),
    Source("otel-genai", SEMCONV, "genai", scopes=("opentelemetry.instrumentation.genai", "opentelemetry.util.genai")),
    Source(
        "openllmetry", OPENLLMETRY_FIELDS, "genai",
        # `opentelemetry.instrumentation.openai.v1`, `.anthropic`, ... but not the official `openai_v2` (semconv).
        scopes=("opentelemetry.instrumentation.openai.", "opentelemetry.instrumentation.anthropic",
                "opentelemetry.instrumentation.bedrock", "opentelemetry.instrumentation.mistralai",
                "opentelemetry.instrumentation.groq", "opentelemetry.instrumentation.together",
                "opentelemetry.instrumentation.cohere", "opentelemetry.instrumentation.ollama",
                "opentelemetry.instrumentation.vertexai", "opentelemetry.instrumentation.google_generativeai"),
        markers=(OPENLLMETRY_REQUEST_TYPE, OPENLLMETRY_PROMPT_TOKENS, OPENLLMETRY_TOTAL),
    ),
    Source(
        "openlit", OPENLIT_FIELDS, "genai", scopes=("openlit",),
        markers=(OPENLIT_TTFT, OPENLIT_COST), marker_values={TELEMETRY_SDK_NAME: "openlit"},
        cache_excluded_for=frozenset({A.PROVIDER_ANTHROPIC}), ttft_streams_only=True,
    ),
    Source("openinference", OPENINFERENCE_FIELDS, "openinference", scopes=("openinference.",), markers=(OI_SPAN_KIND,)),
    Source("semconv", SEMCONV, "genai"),
)

SEMCONV_SOURCE = SOURCES[-1]

NON_CALL_OPERATIONS = frozenset({"execute_tool", "invoke_workflow", "create_agent"})
"""Semconv operations that are not a model API call: never billed (an agent's tool run, a workflow)."""
