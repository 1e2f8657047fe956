"""Langfuse's Python SDK v3+ (OpenTelemetry based; `langfuse.openai`, the OpenAI drop-in, and `@observe`,
`start_observation(as_type="generation")`).

Its observations carry `langfuse.observation.*` attributes and no `gen_ai.*` at all: the type (`generation`,
`embedding`, or one that is no model call: `span`, `event`, `agent`, `tool`, ...), the model (the response's, as
Langfuse records it) and the usage as JSON text (`usage_details`: the SDK's usage object for the OpenAI drop-in, in
Chat Completions or Responses shape; `{"input": n}` for embeddings; whatever keys a hand-made generation gives).
The spans name no provider and no response id. The provider is then OpenAI's: what the drop-in wraps (Azure OpenAI
included, which bills OpenAI's list prices), and what genai-prices cannot infer from the model alone for
embeddings models. Its `cost_details.total`, when given, is kept as the reported cost.
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
    if isinstance(kind, str) and kind in _CALL_TYPES:
        values.setdefault("operation", _CALL_TYPES[kind])
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
    doc=SourceDoc(
        tested="langfuse 5.2.0, `langfuse.openai` on openai 3.x (recorded: chat, stream, cached chat, Responses, "
               "embeddings)",
        reports="`langfuse.observation.*` only: type, model, usage as JSON text (`usage_details`), cost details; "
                "no provider, no response id",
        reading="observations of type `generation` (chat) and `embedding` are calls; usage from `usage_details` in "
                "the OpenAI Chat, Responses or Anthropic shape, input including the cache; a completion start time "
                "marks a stream",
        limits="no provider on its spans: read as `openai` (its drop-in's), so a generation logged by hand for "
               "another provider is priced only when it carries `gen_ai.provider.name`; no response id, so "
               "Costline's own span of the same call is matched only by the dedupe rules that need none",
    ),
)
