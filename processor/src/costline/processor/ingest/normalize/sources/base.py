"""What a span source is: the `Source` row every module of this package defines, and the semconv base rows extend.

A source says how to recognise its spans (instrumentation scope, marker attributes) and, for every `LLMCall` field,
which attributes carry it, in order of preference. The walker (`span.py`) decodes only the attributes some source
names. A source whose spans need more than renaming (usage as JSON text, calls told apart by an operation id) adds a
`refine` step over the decoded values and, where its spans are calls by a rule of their own, an `is_call` gate.

Cache semantics differ per source and are the main reason sources exist: the processor bills *uncached* input, so it
must know whether a source's input count already contains the cache-read and cache-write tokens (then they are
subtracted) or not (then input is used as is): `cache_excluded_for`.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Literal

from costline import attributes as A

Field = Literal[
    "provider", "request_model", "response_model", "operation", "input", "output", "cache_read", "cache_write",
    "reasoning", "total", "ttft", "stream", "response_id", "error_type", "server_address", "kind", "request_type",
    "request_params", "retries",
    # billable units beyond the five token types (`model.BILLABLE_UNITS`)
    "cache_write_1h", "input_audio", "input_image", "input_video", "output_audio", "output_image", "output_video",
    "web_searches", "code_executions",
    # price context, a cost someone else computed, and what groups calls into runs
    "service_tier", "processing", "reported_cost", "conversation_id", "session_id",
    # what a framework calls a span that groups calls (an agent run, a workflow, an SDK's outer span)
    "aggregate",
]

# How a field's value is decoded (compared by identity on the hot path).
STR, TOKENS, BOOL, FLOAT, OWNER, MARKER, COUNT = "str", "tokens", "bool", "float", "owner", "marker", "count"
TOKEN_FIELDS: tuple[Field, ...] = ("input", "output", "cache_read", "cache_write", "reasoning", "total",
                                   "cache_write_1h", "input_audio", "input_image", "input_video", "output_audio",
                                   "output_image", "output_video", "web_searches", "code_executions")
DECODER: dict[str, str] = {name: STR for name in Field.__args__}  # type: ignore[attr-defined]
DECODER.update({name: TOKENS for name in TOKEN_FIELDS})
DECODER.update({"stream": BOOL, "ttft": FLOAT, "retries": COUNT, "reported_cost": FLOAT})

TRACELOOP_SPAN_KIND = "traceloop.span.kind"  # OpenLLMetry (Python and JS): workflow, task, agent, tool, llm
AI_OPERATION_ID = "ai.operationId"  # Vercel AI SDK: `ai.generateText` (outer) vs `ai.generateText.doGenerate` (call)
GEN_AI_TOTAL = "gen_ai.usage.total_tokens"  # not semconv, but written by several peers
GEN_AI_IS_STREAMING = "gen_ai.is_streaming"

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
    "cache_write_1h": (A.COSTLINE_USAGE_CACHE_WRITE_1H_TOKENS,),
    "input_audio": (A.GEN_AI_USAGE_AUDIO_INPUT_TOKENS,),
    "input_image": (A.GEN_AI_USAGE_IMAGE_INPUT_TOKENS,),
    "input_video": (A.GEN_AI_USAGE_VIDEO_INPUT_TOKENS,),
    "output_audio": (A.GEN_AI_USAGE_AUDIO_OUTPUT_TOKENS,),
    "output_image": (A.GEN_AI_USAGE_IMAGE_OUTPUT_TOKENS,),
    "output_video": (A.GEN_AI_USAGE_VIDEO_OUTPUT_TOKENS,),
    "web_searches": (A.COSTLINE_USAGE_WEB_SEARCHES,),
    "code_executions": (A.COSTLINE_USAGE_CODE_EXECUTIONS,),
    # The tier the provider billed (the response's), else the one asked for.
    "service_tier": (A.COSTLINE_SERVICE_TIER, A.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER,
                     A.ANTHROPIC_RESPONSE_SERVICE_TIER, A.OPENAI_REQUEST_SERVICE_TIER),
    "processing": (A.COSTLINE_REQUEST_PROCESSING,),
    "conversation_id": (A.GEN_AI_CONVERSATION_ID,),
    "session_id": (A.SESSION_ID,),
    "aggregate": (TRACELOOP_SPAN_KIND, AI_OPERATION_ID),
}


def extend(base: dict[Field, tuple[str, ...]], **more: tuple[str, ...]) -> dict[Field, tuple[str, ...]]:
    """`base` with extra keys appended per field (base keys keep precedence: they are the current names)."""
    merged = dict(base)
    for name, keys in more.items():
        merged[name] = merged.get(name, ()) + keys  # type: ignore[index,operator]
    return merged


Gate = Literal["operation", "genai", "openinference"]
"""What makes a span of this source an LLM call:
`operation`: `gen_ai.operation.name` present (the source also tags non-LLM API calls with a provider);
`genai`: a provider/operation key and a model or usage; `openinference`: span kind LLM or EMBEDDING."""


Refine = Callable[[MutableMapping[str, object]], None]
"""A source's own step over one span's decoded values (field -> value), before the call is built: parse a usage
object carried as JSON text, rename what the table cannot. Runs only on spans of that source."""


@dataclass(frozen=True, slots=True)
class SourceDoc:
    """A source's line in docs/sources.md's table (generated: `python -m costline.processor.ingest.normalize.sources`)."""

    tested: str
    """Package(s) and version(s) the spans were recorded from, or "spec" when built from a written format."""
    reports: str
    """What the source's spans carry (usage, cache, streams, embeddings...)."""
    reading: str
    """How Costline reads them (cache semantics, which spans are calls)."""
    limits: str = ""
    """What it cannot tell Costline (billed as usage missing, say)."""


@dataclass(frozen=True, slots=True)
class Source:
    name: str
    fields: dict[Field, tuple[str, ...]]
    gate: Gate
    precedence: int = 50
    """Sources are tried in this order (lower first) when telling which one a span is from; the catch-all `semconv`
    is last (1000). Sources recognised by their scope alone do not depend on it."""
    scopes: tuple[str, ...] = ()
    """Scope-name prefixes that identify the source outright."""
    markers: tuple[str, ...] = ()
    """Attribute keys only this source writes: identify it when the scope is not a known one."""
    marker_values: dict[str, str] = field(default_factory=dict)
    """Attribute key -> value that identifies the source (OpenLIT's `telemetry.sdk.name=openlit`)."""
    cache_excluded_for: frozenset[str] = frozenset()
    """Providers for which this source's input count does NOT include cache tokens (everything else: includes)."""
    default_provider: str | None = None
    pairs_by_usage: bool = False
    """The source records no response id on (some of) its calls: its spans without one are paired with another
    source's span of the same call by usage (`model.call_families`, the usage family), and the first such span turns
    that pairing on for the ledger. Other sources' spans without a response id (an embeddings call) are not paired."""
    ttft_streams_only: bool = False
    """The source writes a "time to first token" on non-streamed calls too (the whole latency): keep it for streams."""
    refine: Refine | None = None
    is_call: Callable[[MutableMapping[str, object]], bool] | None = None
    """The source's own rule for which of its spans are calls (over the decoded values), instead of `gate`."""
    extra: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Source-specific values `refine` or `is_call` reads (name -> attribute keys), decoded as text."""
    doc: SourceDoc | None = None
    keymap: dict[str, tuple[str, int, str]] = field(init=False, repr=False, compare=False)
    """attribute key -> (field, priority, decoder) for the one-pass decoding in `span.py` (0 = preferred key)."""

    def __post_init__(self) -> None:
        keymap: dict[str, tuple[str, int, str]] = {}
        for name, keys in (*self.fields.items(), *self.extra.items()):
            for priority, key in enumerate(keys):
                keymap.setdefault(key, (name, priority, DECODER.get(name, STR)))
        for key in (*self.markers, *self.marker_values):
            keymap.setdefault(key, ("marker", 0, MARKER))
        for key in A.OWNER_KEYS:
            keymap[key] = ("owner", 0, OWNER)
        keymap[A.COSTLINE_API_KEY_FINGERPRINT] = ("fingerprint", 0, STR)
        object.__setattr__(self, "keymap", keymap)


NON_CALL_OPERATIONS = frozenset({"execute_tool", "invoke_workflow", "create_agent", "invoke_agent", "agent",
                                 "workflow", "task", "chain"})
"""Operations that are not a model API call: never billed, whatever usage they carry and whatever else arrives with
them (an agent's tool run; an agent run or workflow, whose usage is the sum of its calls': semconv `invoke_agent`,
pydantic-ai's agent run span, which writes it)."""

AGGREGATE_KINDS = frozenset({
    # OpenLLMetry's `traceloop.span.kind` (Python and JS): only `llm` spans (and those without a kind) are calls.
    "workflow", "task", "agent", "tool",
    # Vercel AI SDK's outer spans (`ai.operationId`): the calls are their `.doGenerate`, `.doStream`, `.doEmbed`.
    "ai.generateText", "ai.streamText", "ai.generateObject", "ai.streamObject", "ai.embed", "ai.embedMany",
})
"""Values of a span's `aggregate` field (`TRACELOOP_SPAN_KIND`, `AI_OPERATION_ID`) that make it a span grouping
calls, never a call: decided by the span alone, so a parent exported after its children is still not billed."""
