"""OpenLLMetry-JS (`@traceloop/node-server-sdk` and its `@traceloop/instrumentation-*` packages; recorded from 0.27).

Semconv names, but unlike its Python sibling its Anthropic instrumentation writes Anthropic's own `input_tokens`,
which EXCLUDE the cache read and creation tokens (`gen_ai.usage.cache_read.input_tokens`,
`gen_ai.usage.cache_creation.input_tokens` beside it): the cache is outside the input for Anthropic. Its OpenAI input
is `prompt_tokens` (cache included), but it writes no cached-token count, so OpenAI cache reads are billed as input.

OpenAI streams: the span never reads the usage chunk; with `TRACELOOP_ENRICH_TOKENS` (on by default) it carries
js-tiktoken estimates of the message texts, and nothing on the span says it was a stream. Costline bills the
estimate as it is (there is no way to tell it from a count), and says so (docs/sources.md). With enrichment off the
stream span has no usage and is counted as usage missing. Embeddings are not instrumented (no span).
"""

from costline import attributes as A
from costline.processor.ingest.normalize.sources.base import SEMCONV, Source, SourceDoc

SOURCE = Source(
    "openllmetry-js", SEMCONV, "operation", precedence=30, scopes=("@traceloop/instrumentation-",),
    cache_excluded_for=frozenset({A.PROVIDER_ANTHROPIC}),
    pairs_by_usage=True,  # records no response id on (some of) its calls
    doc=SourceDoc(
        tested="@traceloop/node-server-sdk 0.27.0 (instrumentation-openai, -anthropic 0.27.0; recorded, Node 20)",
        reports="semconv usage; Anthropic cache read and creation; no OpenAI cached count; OpenAI streams carry "
                "js-tiktoken estimates, not the usage chunk; no embeddings spans",
        reading="input excludes the cache for Anthropic only; spans with `gen_ai.operation.name` are calls",
        limits="OpenAI cache reads billed as input; OpenAI stream tokens are estimates (billed as given; usage "
               "missing when `TRACELOOP_ENRICH_TOKENS=false`); embeddings unseen",
    ),
)
