"""OpenLLMetry (traceloop's `opentelemetry-instrumentation-openai`, `-anthropic`, `-bedrock`, ...).

Input = openai `prompt_tokens`, which includes cached tokens; its anthropic instrumentation sums input + cache read +
cache creation: the input includes the cache for every provider. The official `openai_v2` scope is not this source.
"""

from costline.processor.ingest.normalize.sources.base import SEMCONV, Source, SourceDoc, extend

OPENLLMETRY_PROMPT_TOKENS = "gen_ai.usage.prompt_tokens"
OPENLLMETRY_COMPLETION_TOKENS = "gen_ai.usage.completion_tokens"
OPENLLMETRY_CACHE_READ = "gen_ai.usage.cache_read_input_tokens"
OPENLLMETRY_CACHE_CREATION = "gen_ai.usage.cache_creation_input_tokens"
OPENLLMETRY_REASONING = "gen_ai.usage.reasoning_tokens"
OPENLLMETRY_LLM_REASONING = "llm.usage.reasoning_tokens"
OPENLLMETRY_TOTAL = "llm.usage.total_tokens"
OPENLLMETRY_REQUEST_TYPE = "llm.request.type"
OPENLLMETRY_IS_STREAMING = "llm.is_streaming"

FIELDS = extend(
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

SOURCE = Source(
    "openllmetry", FIELDS, "genai", precedence=30,
    # `opentelemetry.instrumentation.openai.v1`, `.anthropic`, ... but not the official `openai_v2` (semconv).
    scopes=("opentelemetry.instrumentation.openai.", "opentelemetry.instrumentation.anthropic",
            "opentelemetry.instrumentation.bedrock", "opentelemetry.instrumentation.mistralai",
            "opentelemetry.instrumentation.groq", "opentelemetry.instrumentation.together",
            "opentelemetry.instrumentation.cohere", "opentelemetry.instrumentation.ollama",
            "opentelemetry.instrumentation.vertexai", "opentelemetry.instrumentation.google_generativeai"),
    markers=(OPENLLMETRY_REQUEST_TYPE, OPENLLMETRY_PROMPT_TOKENS, OPENLLMETRY_TOTAL),
    doc=SourceDoc(
        tested="opentelemetry-instrumentation-openai 0.62.4 (recorded); anthropic spans from its source",
        reports="usage with cache read and creation, reasoning, streams, embeddings",
        reading="input includes the cache (openai `prompt_tokens`; its anthropic sums input + cache)",
    ),
)
