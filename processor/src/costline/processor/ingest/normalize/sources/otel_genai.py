"""The official OpenTelemetry GenAI instrumentations (`opentelemetry-instrumentation-genai-*`,
`opentelemetry-util-genai`): plain semconv, input including the cache.

Note: `opentelemetry-instrumentation-openai-v2` (scope `opentelemetry.instrumentation.openai_v2`) is official too
but not matched by scope here: it is read as plain semconv (`semconv.py`), which is the same thing.
"""

from costline.processor.ingest.normalize.sources.base import SEMCONV, Source, SourceDoc

SOURCE = Source(
    "otel-genai", SEMCONV, "genai", precedence=20,
    scopes=("opentelemetry.instrumentation.genai", "opentelemetry.util.genai"),
    doc=SourceDoc(
        tested="opentelemetry-instrumentation-genai-openai 1.3b0",
        reports="semconv usage with cache read, streams, embeddings",
        reading="semconv: input includes the cache",
    ),
)
