"""The official OpenTelemetry JS instrumentation for openai (`@opentelemetry/instrumentation-openai`, recorded from
0.21.0, the last release for Node 18 and 20; 0.22 needs Node 22.15 and writes the same attributes): plain semconv
(`gen_ai.system`, `gen_ai.usage.input_tokens` = `prompt_tokens`, cache included), streams read from the usage chunk
when `stream_options.include_usage` is set, embeddings with their input tokens.

It writes no cached-token count at all (streamed or not), so OpenAI cache reads are billed at the full input rate:
an over-count Costline cannot see, written down as the source's limit.
"""

from costline.processor.ingest.normalize.sources.base import SEMCONV, Source, SourceDoc

SOURCE = Source(
    "otel-openai-js", SEMCONV, "operation", precedence=20, scopes=("@opentelemetry/instrumentation-openai",),
    default_provider="openai",
    doc=SourceDoc(
        tested="@opentelemetry/instrumentation-openai 0.21.0 on openai 6.30.1 (recorded, Node 20)",
        reports="semconv usage (input, output), streams (with `include_usage`), embeddings; no cached-token count",
        reading="semconv: input includes the cache; spans with `gen_ai.operation.name` are calls",
        limits="no cache-read count on any span: cached input billed at the full input rate; a stream without "
               "`stream_options.include_usage` has no usage (counted as usage missing)",
    ),
)
