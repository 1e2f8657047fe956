"""Pydantic Logfire's `instrument_openai` / `instrument_anthropic` (`logfire/_internal/integrations/llm_providers`).

Semconv attributes, input including the cache (for anthropic too: it writes the semconv total, the raw usage beside
it in `gen_ai.usage.raw`). A non-streamed call is one span (`logfire.span_type=span`) with usage. A stream is two:
the request span, which ends when the stream is handed back and so carries no usage and no response id, and a log
span (`logfire.span_type=log`, "streaming response from ...") written when the stream is read to its end, with the
usage and the response id — in the request's parent context, so not a child of the request span. The log span is
the call; the request span of a stream is not. Its `operation.cost` is kept as the reported cost.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from costline.processor.ingest.normalize.sources.base import SEMCONV, Source, SourceDoc, extend

LOGFIRE_SCOPE = "logfire."
LOGFIRE_SPAN_TYPE = "logfire.span_type"
LOGFIRE_COST = "operation.cost"

_USAGE = ("input", "output", "cache_read", "cache_write", "total")


def _is_call(values: MutableMapping[str, object]) -> bool:
    if "operation" not in values:
        return False  # Logfire's other integrations (httpx, fastapi, ...) share the scope prefix
    span_type = values.get("span_type")
    if span_type == "pending_span":
        return False  # Logfire's start-of-span copy, re-sent complete when the span ends
    # A request span without usage and without an error is a stream's: its log span carries the call.
    return span_type != "span" or "error_type" in values or any(name in values for name in _USAGE)


SOURCE = Source(
    "logfire", extend(SEMCONV, reported_cost=(LOGFIRE_COST,)), "operation", precedence=35,
    scopes=(LOGFIRE_SCOPE,), is_call=_is_call, extra={"span_type": (LOGFIRE_SPAN_TYPE,)},
    doc=SourceDoc(
        tested="logfire 5.4.0 `instrument_openai` (openai 3.x) and `instrument_anthropic` (anthropic 2.x), recorded",
        reports="semconv usage with cache read and write, response id; a stream as a request span without usage "
                "plus a log span with usage and response id; its own cost (`operation.cost`)",
        reading="semconv: input includes the cache; a stream's request span (no usage, no error) is not a call, "
                "its log span is; its cost kept as reported",
        limits="a stream never read to its end leaves only the request span: not billed (its usage never reached "
               "the application either)",
    ),
)
