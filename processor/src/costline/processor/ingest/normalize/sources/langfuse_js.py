"""Langfuse JS v4/v5 (`@langfuse/tracing`, `@langfuse/openai`'s `observeOpenAI`; scope `langfuse-sdk`; recorded from
5.11): only `langfuse.observation.*` attributes, no `gen_ai.*`.

A call is an observation of type `generation` or `embedding` (`span`, `agent`, `tool`, `chain`, ... are not). Its
usage is `langfuse.observation.usage_details`, JSON text whose `input` EXCLUDES the cache (Langfuse prices each usage
type on its own: `input_cached_tokens`, `input_cache_write_tokens` are beside it), so `refine` adds the cache back to
give the semconv input the rest of the pipeline expects. `langfuse.observation.cost_details.total` is kept as the
reported cost. Langfuse names no provider: it is read from the model name (OpenAI's, Anthropic's, Google's model
families), else unknown. An embeddings generation (`observeOpenAI` on `embeddings.create`) has no usage details: it
is counted as usage missing; its operation is read from the model name (`*embedding*`).
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping

from costline import attributes as A
from costline.processor.ingest.normalize.sources.base import Field, Source, SourceDoc
from costline.processor.model import MAX_TOKENS

OBSERVATION_TYPE = "langfuse.observation.type"
USAGE_DETAILS = "langfuse.observation.usage_details"
COST_DETAILS = "langfuse.observation.cost_details"
MODEL_NAME = "langfuse.observation.model.name"

CALL_TYPES = frozenset({"generation", "embedding"})

# usage_details keys (Langfuse's own integrations and the names users pass) -> field. `input` excludes the cache.
_USAGE_KEYS: dict[str, tuple[str, ...]] = {
    "input": ("input", "input_tokens", "prompt_tokens"),
    "output": ("output", "output_tokens", "completion_tokens"),
    "cache_read": ("input_cached_tokens", "cache_read_input_tokens", "input_cache_read"),
    "cache_write": ("input_cache_write_tokens", "cache_creation_input_tokens", "input_cache_creation"),
    "reasoning": ("output_reasoning_tokens", "reasoning_tokens"),
    "input_audio": ("input_audio_tokens",),
    "output_audio": ("output_audio_tokens",),
}
_MAX_JSON = 16_384  # usage and cost details are a few keys: don't parse a huge blob on the hot path

_MODEL_PROVIDERS = (("gpt-", "openai"), ("o1", "openai"), ("o3", "openai"), ("o4", "openai"),
                    ("text-embedding-", "openai"), ("chatgpt-", "openai"), ("claude-", "anthropic"),
                    ("gemini-", "gcp.gemini"), ("mistral-", "mistral_ai"))

FIELDS: dict[Field, tuple[str, ...]] = {
    "response_model": (MODEL_NAME,),
    "session_id": (A.SESSION_ID,),
}


def _json_object(text: object) -> dict | None:
    if not isinstance(text, str) or len(text) > _MAX_JSON:
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _count(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_TOKENS:
        return None  # a count that is no count is ignored like an absent key, never billed
    return int(value)


def refine(values: MutableMapping[str, object]) -> None:
    usage = _json_object(values.pop("langfuse_usage", None))
    if usage:
        for name, keys in _USAGE_KEYS.items():
            for key in keys:
                if (count := _count(usage.get(key))) is not None:
                    values[name] = count
                    break
        if "input" in values:  # Langfuse's input is the uncached part: the pipeline wants the semconv total
            values["input"] = values["input"] + values.get("cache_read", 0) + values.get("cache_write", 0)  # type: ignore[operator]
    cost = _json_object(values.pop("langfuse_cost", None))
    if cost and isinstance(total := cost.get("total"), (int, float)) and not isinstance(total, bool):
        values["reported_cost"] = float(total)
    model = values.get("response_model")
    if isinstance(model, str):
        lowered = model.lower()
        values.setdefault("provider", next((p for prefix, p in _MODEL_PROVIDERS if lowered.startswith(prefix)),
                                           "unknown"))
        embedding = values.get("langfuse_type") == "embedding" or "embedding" in lowered
        values["operation"] = A.OPERATION_EMBEDDINGS if embedding else A.OPERATION_CHAT


def is_call(values: MutableMapping[str, object]) -> bool:
    return values.get("langfuse_type") in CALL_TYPES


SOURCE = Source(
    "langfuse-js", FIELDS, "genai", precedence=45, scopes=("langfuse-sdk",), markers=(OBSERVATION_TYPE,),
    refine=refine, is_call=is_call,
    extra={"langfuse_type": (OBSERVATION_TYPE,), "langfuse_usage": (USAGE_DETAILS,), "langfuse_cost": (COST_DETAILS,)},
    doc=SourceDoc(
        tested="@langfuse/openai + @langfuse/tracing 5.11.1 on openai 6.30.1 (recorded, Node 20)",
        reports="`langfuse.observation.*` only: usage details as JSON text (input without the cache), model, "
                "cost details; streams with the usage chunk; no provider",
        reading="observations of type `generation` or `embedding` are calls; usage parsed from the JSON and the "
                "cache added back to the input; provider from the model name",
        limits="embeddings carry no usage (counted as usage missing); a stream's model is the requested alias",
    ),
)
