"""The processor's internal data model: what `normalize` makes of a span and what the rest of the pipeline consumes.

`LLMCall` is the seam between span decoding (`costline.processor.normalize`) and pricing, ownership, aggregation
and the ledger. Token fields use *billing* semantics, which differ from the semconv attributes on purpose:
`input_tokens` here is **uncached** input, so that the five token types are disjoint and sum to the total.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

MAX_LABEL_LENGTH = 255
"""The longest label value (provider, model, operation, service, owner values) a call carries into the series and the
ledger, in characters: the ledger's column width. Longer values are not names anyone typed."""

MAX_TOKENS = 10**12
"""No token count of one call comes anywhere near this; larger is impossible, not just implausible (the configurable
`limits.max_tokens_per_call` is the plausibility bound)."""


@dataclass(slots=True)
class LLMCall:
    """One LLM API call, as normalised from one span of any supported instrumentation."""

    provider: str
    """Semconv provider name (`openai`, `anthropic`, `azure.ai.openai`, ...); `unknown` when no source says."""
    request_model: str | None
    response_model: str | None
    operation: str
    """`chat`, `text_completion`, `embeddings`, ... (semconv `gen_ai.operation.name`)."""

    input_tokens: int = 0
    """Uncached input tokens: semconv input minus cache read minus cache write. Never negative."""
    output_tokens: int = 0
    """All output tokens, including reasoning (reasoning is billed at the output rate)."""
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    """Subset of `output_tokens`; reported separately, never billed twice."""
    has_usage: bool = False
    """True when the span reported any token count; a failed call without usage bills nothing."""

    error_type: str | None = None
    """`error.type`, or `_OTHER` when the span status is ERROR without one. None on success."""
    time_to_first_token_s: float | None = None
    stream: bool = False
    retries: int = 0
    """Retries the SDK made for this call (`http.request.resend_count`; the first attempt is not one)."""

    response_id: str | None = None
    trace_id: bytes = b""
    span_id: bytes = b""
    parent_span_id: bytes = b""
    start_time_unix_nano: int = 0
    end_time_unix_nano: int = 0
    source: str = "semconv"
    """Which instrumentation produced the span (`costline`, `otel-genai`, `anthropic-sdk`, `openllmetry`, `openlit`,
    `openinference`, `semconv`): the key of the row in the normalisation table that matched."""
    server_address: str | None = None

    owner: dict[str, str] = field(default_factory=dict)
    """Ownership keys found on the span then the resource (`costline.team` -> `search`), span winning per key."""
    api_key_fingerprint: str | None = None
    environment: str | None = None
    service_name: str | None = None

    adjusted: tuple[tuple[str, str], ...] = ()
    """(field, action) for each value normalisation had to bound (`normalize.bounds`): `truncated` or `sanitised`
    label values, `clamped` token counts. Counted, so that no bound is applied silently."""

    @property
    def model(self) -> str | None:
        """The model to price: the response model (what was billed) when present, else the requested one."""
        return self.response_model or self.request_model

    @property
    def total_input_tokens(self) -> int:
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens


class Counts(IntEnum):
    """Named slots of one counter vector: what every call adds to the totals kept per owner and model.

    Slot numbers index a vector (or a column per slot), so code that adds calls up reads `Counts.ERRORS` rather than
    a bare 7."""

    COST_PICO = 0
    """Priced cost in pico-dollars: integer sums stay exact however many calls are added."""
    INPUT_TOKENS = 1
    OUTPUT_TOKENS = 2
    CACHE_READ_TOKENS = 3
    CACHE_WRITE_TOKENS = 4
    REASONING_TOKENS = 5
    SUCCESS = 6
    ERRORS = 7
    UNPRICED = 8
    """Calls whose model could not be priced (their cost is unknown, never $0)."""
    PRICED = 9
    RETRIES = 10


TOKEN_COUNTS = (Counts.INPUT_TOKENS, Counts.OUTPUT_TOKENS, Counts.CACHE_READ_TOKENS, Counts.CACHE_WRITE_TOKENS,
                Counts.REASONING_TOKENS)
"""The token slots, in the order of the token types (input, output, cache_read, cache_write, reasoning)."""

