"""OpenLIT (`openlit` 1.45, `instrumentation/anthropic/utils.py`).

Input = anthropic's raw `input_tokens`, which **excludes** cache read and creation; for openai it is `prompt_tokens`
(includes cached). So: the cache is outside the input for anthropic only. Its `gen_ai.server.time_to_first_token` is
the whole latency on non-streamed calls (kept for streams only). Its `gen_ai.usage.cost` is kept beside Costline's
price as the reported cost.
"""

from costline import attributes as A
from costline.processor.ingest.normalize.sources.base import SEMCONV, Source, SourceDoc, extend
from costline.processor.ingest.normalize.sources.openllmetry import (
    OPENLLMETRY_CACHE_CREATION,
    OPENLLMETRY_CACHE_READ,
    OPENLLMETRY_REASONING,
)

OPENLIT_TTFT = "gen_ai.server.time_to_first_token"
OPENLIT_COST = "gen_ai.usage.cost"
OPENLIT_REASONING_DETAIL = "gen_ai.usage.completion_tokens_details.reasoning_tokens"
OPENLIT_CACHE_READ_DETAIL = "gen_ai.usage.prompt_tokens_details.cached_tokens"
OPENLIT_CACHE_WRITE_DETAIL = "gen_ai.usage.prompt_tokens_details.cache_creation_tokens"
TELEMETRY_SDK_NAME = "telemetry.sdk.name"  # OpenLIT stamps `openlit` on its spans

FIELDS = extend(
    SEMCONV,
    cache_read=(OPENLIT_CACHE_READ_DETAIL, OPENLLMETRY_CACHE_READ),
    cache_write=(OPENLIT_CACHE_WRITE_DETAIL, OPENLLMETRY_CACHE_CREATION),
    reasoning=(OPENLLMETRY_REASONING, OPENLIT_REASONING_DETAIL),
    ttft=(OPENLIT_TTFT,),
    reported_cost=(OPENLIT_COST,),
)

SOURCE = Source(
    "openlit", FIELDS, "genai", precedence=40, scopes=("openlit",),
    markers=(OPENLIT_TTFT, OPENLIT_COST), marker_values={TELEMETRY_SDK_NAME: "openlit"},
    cache_excluded_for=frozenset({A.PROVIDER_ANTHROPIC}), ttft_streams_only=True,
    doc=SourceDoc(
        tested="spec: openlit 1.45's source (it requires openai<3 and anthropic<1, so it is not installed)",
        reports="usage with cache details, reasoning, its own cost (`gen_ai.usage.cost`)",
        reading="input excludes the cache for anthropic only; TTFT kept for streams only; its cost kept as reported",
    ),
)
