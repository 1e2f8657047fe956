"""The anthropic Python SDK's own tracing (`anthropic/lib/_tracing/_response.py`) and the TypeScript SDK's
(`@anthropic-ai/sdk` 1.x `internal/tracing`, scope `com.anthropic.sdk.typescript`, recorded from 1.17.0): the same
attributes and meaning.

`gen_ai.usage.input_tokens` = input + cache read + cache write (semconv meaning). The SDK tags every API call with
`gen_ai.provider.name`, `count_tokens` and session calls included: only spans with `gen_ai.operation.name` are model
calls (gate `operation`).
"""

from costline.processor.ingest.normalize.sources.base import SEMCONV, Source, SourceDoc, extend

SDK_CACHE_WRITE_1H = "anthropic.usage.cache_creation.ephemeral_1h_input_tokens"
"""Of the cache writes, those with a one-hour lifetime, as the SDK's own span names them (`anthropic/_tracing.py`)."""

FIELDS = extend(SEMCONV, cache_write_1h=(SDK_CACHE_WRITE_1H,))

SOURCE = Source(
    "anthropic-sdk", FIELDS, "operation", precedence=10, scopes=("com.anthropic.sdk",), default_provider="anthropic",
    doc=SourceDoc(
        tested="anthropic 2.x (its own spans, with and without Costline's); @anthropic-ai/sdk 1.17.0 (Node, recorded)",
        reports="usage with cache read and write (1-hour writes apart), service tier, response id, streams",
        reading="semconv: input includes the cache; spans without `gen_ai.operation.name` are API calls but not model "
                "calls",
        limits="compaction iterations (`anthropic.usage.compaction.*`, beta) are outside its usage: not billed yet",
    ),
)
