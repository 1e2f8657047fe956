"""Costline's own instrumentation (`costline-instrumentation`): semconv names, input including the cache."""

from costline import attributes as A
from costline.processor.ingest.normalize.sources.base import SEMCONV, Source, SourceDoc

SOURCE = Source(
    "costline", SEMCONV, "genai", precedence=0, scopes=(A.INSTRUMENTATION_SCOPE,),
    doc=SourceDoc(
        tested="costline-instrumentation (this repository) on openai 3.x, anthropic 2.x",
        reports="every billable unit Costline knows, service tier, retries, TTFT, owner keys, key fingerprint",
        reading="semconv: input includes cache read and write",
    ),
)
