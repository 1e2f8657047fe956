"""OpenInference (Arize's `openinference-instrumentation-*`): its own `llm.*` attributes, span kinds.

`llm.token_count.prompt` includes the `prompt_details.cache_*` tokens. Only spans of kind `LLM` or `EMBEDDING` are
calls (`CHAIN`, `TOOL`, `AGENT`, ... are not). The model is set from the response (what was billed); the requested
one is `llm.request.model_name` where the instrumentation writes it (anthropic 3.x), else only inside the
invocation-parameters JSON.
"""

from costline import attributes as A
from costline.processor.ingest.normalize.sources.base import Field, Source, SourceDoc

OI_SPAN_KIND = "openinference.span.kind"
OI_MODEL_NAME = "llm.model_name"
OI_REQUEST_MODEL_NAME = "llm.request.model_name"  # openinference-instrumentation-anthropic 3.x
OI_RESPONSE_MODEL_NAME = "llm.response.model_name"
OI_EMBEDDING_MODEL_NAME = "embedding.model_name"
OI_PROVIDER = "llm.provider"
OI_SYSTEM = "llm.system"
OI_PROMPT = "llm.token_count.prompt"
OI_COMPLETION = "llm.token_count.completion"
OI_TOTAL = "llm.token_count.total"
OI_CACHE_READ = "llm.token_count.prompt_details.cache_read"
OI_CACHE_WRITE = "llm.token_count.prompt_details.cache_write"
OI_AUDIO_INPUT = "llm.token_count.prompt_details.audio"
OI_AUDIO_OUTPUT = "llm.token_count.completion_details.audio"
OI_REASONING = "llm.token_count.completion_details.reasoning"
OI_INVOCATION_PARAMETERS = "llm.invocation_parameters"  # JSON of the request parameters, incl. "model"
OI_EMBEDDING_INVOCATION_PARAMETERS = "embedding.invocation_parameters"

FIELDS: dict[Field, tuple[str, ...]] = {
    "provider": (OI_PROVIDER, OI_SYSTEM, A.GEN_AI_PROVIDER_NAME, A.GEN_AI_SYSTEM),
    # OpenInference has one model attribute, set from the response when the response names it: what was billed.
    "response_model": (OI_MODEL_NAME, OI_RESPONSE_MODEL_NAME, OI_EMBEDDING_MODEL_NAME),
    # Newer instrumentations (anthropic 3.x) name the requested model too; older ones only in the parameters JSON.
    "request_model": (OI_REQUEST_MODEL_NAME,),
    "input": (OI_PROMPT,),
    "output": (OI_COMPLETION,),
    "cache_read": (OI_CACHE_READ,),
    "cache_write": (OI_CACHE_WRITE,),
    "reasoning": (OI_REASONING,),
    "input_audio": (OI_AUDIO_INPUT,),
    "output_audio": (OI_AUDIO_OUTPUT,),
    "total": (OI_TOTAL,),
    "error_type": (A.ERROR_TYPE,),
    "server_address": (A.SERVER_ADDRESS,),
    "kind": (OI_SPAN_KIND,),
    # The requested model only exists inside this JSON; read when needed (a failed call has no llm.model_name).
    "request_params": (OI_INVOCATION_PARAMETERS, OI_EMBEDDING_INVOCATION_PARAMETERS),
    "session_id": (A.SESSION_ID,),
}

SOURCE = Source(
    "openinference", FIELDS, "openinference", precedence=50, scopes=("openinference.", "@arizeai/openinference-"),
    markers=(OI_SPAN_KIND,),
    pairs_by_usage=True,  # records no response id on (some of) its calls
    doc=SourceDoc(
        tested="openinference-instrumentation-openai 0.1.66; openinference-instrumentation-anthropic 3.1.0 beside the "
               "anthropic SDK's own spans (both recorded); @arizeai/openinference-instrumentation-openai 4.2.7 "
               "(Node, recorded: the same attributes)",
        reports="usage with cache read and write, reasoning, audio; no response id; the Node instrumentation's "
                "streams and embeddings carry no token counts",
        reading="input includes the cache; only span kinds LLM and EMBEDDING are calls",
        limits="no response id: its anthropic `messages.stream()` span is in another trace than the SDK's own span "
               "of the same call, so the two are billed twice until matched by provider, model, usage and time; "
               "Node: streams (even with `include_usage`) and embeddings are counted as usage missing",
    ),
)
