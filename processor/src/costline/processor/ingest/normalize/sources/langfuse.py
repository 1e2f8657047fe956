"""Langfuse's SDKs on OpenTelemetry: Python v3+ (`langfuse.openai`, the OpenAI drop-in, and `@observe`,
`start_observation(as_type="generation")`) and JS v4/v5 (`@langfuse/tracing`, `@langfuse/openai`'s
`observeOpenAI`). Both write scope `langfuse-sdk` and the same attributes: one source.

Its observations carry `langfuse.observation.*` attributes and no `gen_ai.*` at all: the type (`generation`,
`embedding`, or one that is no model call: `span`, `event`, `agent`, `tool`, ...), the model (the response's, as
Langfuse records it) and the usage as JSON text (`usage_details`: the SDK's usage object for the OpenAI drop-in, in
Chat Completions or Responses shape; `{"input": n}` for embeddings; whatever keys a hand-made generation gives).
The JS SDK writes Langfuse's canonical usage keys, whose `input` EXCLUDES the cache (`input_cached_tokens` beside it;
`_usage.py` adds it back). The spans name no provider and no response id: the provider is read from the model name
(`claude-*` is Anthropic's, `gemini-*` Google's, ...), else OpenAI's — what the drop-ins wrap (Azure OpenAI included,
which bills OpenAI's list prices), and what genai-prices cannot infer from the model alone for embeddings models. An
embedding observation, or a generation of an `*embedding*` model (JS `observeOpenAI` on `embeddings.create`), is
`embeddings`. Its `cost_details.total`, when given, is kept as the reported cost.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from costline import attributes as A
from costline.processor.ingest.normalize.sources._usage import fill_usage, parse_object
from costline.processor.ingest.normalize.sources.base import Field, Source, SourceDoc

LANGFUSE_SCOPE = "langfuse-sdk"
LANGFUSE_TYPE = "langfuse.observation.type"
LANGFUSE_MODEL = "langfuse.observation.model.name"
LANGFUSE_USAGE = "langfuse.observation.usage_details"
LANGFUSE_COST = "langfuse.observation.cost_details"
LANGFUSE_COMPLETION_START = "langfuse.observation.completion_start_time"
LANGFUSE_SESSION = "session.id"  # Langfuse v3 writes its session as `session.id` on the trace's spans

_CALL_TYPES = {"generation": A.OPERATION_CHAT, "embedding": A.OPERATION_EMBEDDINGS}
_MODEL_PROVIDERS = (("gpt-", A.PROVIDER_OPENAI), ("o1", A.PROVIDER_OPENAI), ("o3", A.PROVIDER_OPENAI),
                    ("o4", A.PROVIDER_OPENAI), ("text-embedding-", A.PROVIDER_OPENAI), ("chatgpt-", A.PROVIDER_OPENAI),
                    ("claude-", A.PROVIDER_ANTHROPIC), ("gemini-", "gcp.gemini"), ("mistral-", "mistral_ai"))

FIELDS: dict[Field, tuple[str, ...]] = {
    # Langfuse writes none; a generation made by hand may carry one, and then it wins over the default.
    "provider": (A.GEN_AI_PROVIDER_NAME, A.GEN_AI_SYSTEM),
    "response_model": (LANGFUSE_MODEL,),
    "kind": (LANGFUSE_TYPE,),
    "error_type": (A.ERROR_TYPE,),
    "session_id": (LANGFUSE_SESSION,),
}


def _refine(values: MutableMapping[str, object]) -> None:
    fill_usage(values, values.pop("usage_details", None))
    kind = values.get("kind")
    model = values.get("response_model")
    lowered = model.lower() if isinstance(model, str) else ""
    if isinstance(kind, str) and kind in _CALL_TYPES:
        embedding = kind == "embedding" or "embedding" in lowered
        values.setdefault("operation", A.OPERATION_EMBEDDINGS if embedding else _CALL_TYPES[kind])
    if "provider" not in values and lowered:
        values["provider"] = next((p for prefix, p in _MODEL_PROVIDERS if lowered.startswith(prefix)),
                                  A.PROVIDER_OPENAI)
    # Only streamed generations get a completion start time (the first chunk's).
    if values.pop("completion_start", None) is not None:
        values["stream"] = True
    costs = parse_object(values.pop("cost_details", None))
    total = costs.get("total") if costs is not None else None
    if isinstance(total, (int, float)) and not isinstance(total, bool):
        values["reported_cost"] = float(total)


def _is_call(values: MutableMapping[str, object]) -> bool:
    return values.get("kind") in _CALL_TYPES


SOURCE = Source(
    "langfuse", FIELDS, "genai", precedence=45, scopes=(LANGFUSE_SCOPE,), markers=(LANGFUSE_TYPE,),
    default_provider=A.PROVIDER_OPENAI,
    refine=_refine, is_call=_is_call,
    extra={"usage_details": (LANGFUSE_USAGE,), "cost_details": (LANGFUSE_COST,),
           "completion_start": (LANGFUSE_COMPLETION_START,)},
    pairs_by_usage=True,  # records no response id on (some of) its calls
    doc=SourceDoc(
        tested="langfuse 5.2.0 (Python), `langfuse.openai` on openai 3.x (recorded: chat, stream, cached chat, "
               "Responses, embeddings); @langfuse/openai + @langfuse/tracing 5.11.1 on openai 6.30.1 (Node 20, "
               "recorded)",
        reports="`langfuse.observation.*` only: type, model, usage as JSON text (`usage_details`: the SDK's usage "
                "object in Python, Langfuse's canonical keys in JS), cost details; no provider, no response id",
        reading="observations of type `generation` and `embedding` are calls; usage from `usage_details` in the "
                "OpenAI Chat, Responses, Anthropic or Langfuse shape, each brought to input including the cache; "
                "provider from the model name, else openai; a completion start time marks a stream",
        limits="no provider on its spans: a model whose name names no provider is read as `openai`; JS embeddings "
               "carry no usage (counted as usage missing); a JS stream's model is the requested alias; no response "
               "id, so Costline's own span of the same call is matched only by the dedupe rules that need none",
    ),
)
