"""The catch-all: any other span with a `gen_ai.*` key, read by the GenAI semantic conventions (input includes the
cache). Tried last."""

from costline.processor.ingest.normalize.sources.base import SEMCONV, Source, SourceDoc

SOURCE = Source(
    "semconv", SEMCONV, "genai", precedence=1000,
    doc=SourceDoc(
        tested="opentelemetry-instrumentation-openai-v2, pydantic-ai (semconv spans)",
        reports="whatever semconv attributes the producer writes",
        reading="semconv: input includes the cache; a call needs a provider or operation and a model or usage",
    ),
)
