"""LiteLLM's OpenTelemetry callback (`litellm.callbacks = ["otel"]`, `litellm/integrations/opentelemetry.py`).

Per call it writes a `litellm_request` span (semconv usage, `gen_ai.operation.name`) and a `raw_gen_ai_request` child
(the provider's raw response, no operation): only the former is a call. The cache split is not among its
attributes: it is only inside `metadata.usage_object`, the OpenAI-shaped usage as a Python dict's repr, read here
(input includes the cache, as `prompt_tokens` does). Its embeddings spans carry an empty `gen_ai.system` and the
operation `embedding`: the provider is then the prefix of `litellm.provider.model` (`openai/text-embedding-3-small`).
Its own cost (`gen_ai.cost.total_cost`) is kept beside Costline's price as the reported cost.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from costline import attributes as A
from costline.processor.ingest.normalize.sources._usage import fill_usage
from costline.processor.ingest.normalize.sources.base import SEMCONV, Source, SourceDoc, extend

LITELLM_SCOPE = "litellm"
LITELLM_USAGE_OBJECT = "metadata.usage_object"
LITELLM_PROVIDER_MODEL = "litellm.provider.model"
LITELLM_TOTAL_COST = "gen_ai.cost.total_cost"

_OPERATIONS = {"embedding": A.OPERATION_EMBEDDINGS, "completion": A.OPERATION_CHAT,
               "acompletion": A.OPERATION_CHAT, "aembedding": A.OPERATION_EMBEDDINGS}


def _refine(values: MutableMapping[str, object]) -> None:
    fill_usage(values, values.pop("usage_object", None))
    operation = values.get("operation")
    if isinstance(operation, str):
        values["operation"] = _OPERATIONS.get(operation, operation)
    provider_model = values.pop("provider_model", None)
    if "provider" not in values and isinstance(provider_model, str) and "/" in provider_model:
        values["provider"] = provider_model.split("/", 1)[0]  # LiteLLM's own provider names: "openai", "bedrock"


def _is_call(values: MutableMapping[str, object]) -> bool:
    return "operation" in values  # `litellm_request`; its `raw_gen_ai_request` child names none


SOURCE = Source(
    "litellm", extend(SEMCONV, reported_cost=(LITELLM_TOTAL_COST,)), "operation", precedence=25,
    scopes=(LITELLM_SCOPE,), refine=_refine, is_call=_is_call,
    extra={"usage_object": (LITELLM_USAGE_OBJECT,), "provider_model": (LITELLM_PROVIDER_MODEL,)},
    doc=SourceDoc(
        tested="litellm 1.110.2 SDK, `callbacks=[\"otel\"]` (recorded: openai chat, stream, cached chat, "
               "embeddings; anthropic cached chat)",
        reports="semconv usage without the cache split; the split only in `metadata.usage_object` (a Python "
                "dict's repr); its own cost; a `raw_gen_ai_request` child per call",
        reading="cache read and write from `metadata.usage_object`, input including the cache; only "
                "`litellm_request` spans are calls; an empty `gen_ai.system` (embeddings) falls back to the "
                "`litellm.provider.model` prefix; `embedding` read as `embeddings`; its cost kept as reported",
        limits="a `litellm.provider.model` without a `provider/` prefix and no `gen_ai.system` leaves the provider "
               "`unknown` (priced by the model alone)",
    ),
)
