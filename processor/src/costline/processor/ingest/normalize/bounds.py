"""What normalisation bounds, so that every consumer of an `LLMCall` (series, ledger, dedup keys, forwarding) gets
values it can hold. Each bound applied is recorded on the call (`LLMCall.adjusted`) and counted by the pipeline in
`costline_span_values_bounded_total{field, action}`: nothing is cut silently.

* **Label values** (`LABEL_FIELDS`: provider, models, operation, service, response id) are cut to
  `MAX_LABEL_LENGTH` characters (`truncated`), then every character that is not printable (control characters such
  as NUL, CR, LF, ESC, TAB; format and separator characters; lone surrogates) becomes U+FFFD (`sanitised`). The call
  is still billed: a call with an absurd model name is a real call, priced if its bounded model has a price and
  unpriced (its tokens kept in the ledger) otherwise. Owner values have their own, stricter rule
  (`ownership`: unusable values are treated as absent, so the call falls back to `unattributed`).
* **Cache counts** (`clamp_cache`): where the input count includes the cache (the semconv meaning), cache read plus
  cache write cannot exceed it; larger counts are cut to the input (`clamped`), so the call is billed for the input
  it reported, never for cache tokens it did not have.
* **Tokens per call** (`over_limit`): a call whose input (cache included) plus output exceeds the configured
  `limits.max_tokens_per_call` is rejected (not billed, counted as rejected, and named in the OTLP partial-success
  message so that the sender sees it); a producer reporting that many tokens is broken, and billing its number
  would put a fantasy into the finance ledger.
* **Start time** (`outside_window`): a span starting more than `limits.max_span_age_hours` (default
  `dedup_retention_hours`) before the processor's clock, or more than `limits.max_span_future_seconds` (default 300)
  after it, is rejected the same way. Billing it would put its cost in a month long closed or not yet begun — and a
  future one into today's budgets' sums until then.
"""

from __future__ import annotations

from datetime import datetime, timezone
from operator import attrgetter

from costline.processor.model import MAX_LABEL_LENGTH, LLMCall
from costline.processor.units import NS_PER_S

LABEL_FIELDS = ("provider", "request_model", "response_model", "operation", "service_name", "response_id")
"""The `LLMCall` fields that become metric labels, ledger columns or dedup keys; owner values are bounded by
`ownership`."""

TRUNCATED, SANITISED, CLAMPED, REJECTED = "truncated", "sanitised", "clamped", "rejected"
REPLACEMENT = "\ufffd"


def bounded_label(value: str) -> tuple[str, tuple[str, ...]]:
    """`value` within the label rule, and the actions that took (none for every name anyone typed)."""
    if len(value) <= MAX_LABEL_LENGTH and value.isprintable():
        return value, ()
    actions: tuple[str, ...] = ()
    if len(value) > MAX_LABEL_LENGTH:
        value = value[:MAX_LABEL_LENGTH]  # first: sanitising a megabyte character by character would cost
        actions = (TRUNCATED,)
    if not value.isprintable():
        value = "".join(c if c.isprintable() else REPLACEMENT for c in value)
        actions += (SANITISED,)
    return value, actions


_label_values = attrgetter(*LABEL_FIELDS)


def bound_labels(call: LLMCall) -> LLMCall:
    """`call` with every label field bounded (in place); the actions appended to `call.adjusted`."""
    # The usual call, in a few C calls: all its label values together are printable (a concatenation is printable
    # exactly when each part is) and no longer than one may be.
    joined = "".join(filter(None, _label_values(call)))
    if len(joined) <= MAX_LABEL_LENGTH and joined.isprintable():
        return call
    adjusted: list[tuple[str, str]] | None = None
    for field in LABEL_FIELDS:
        value = getattr(call, field)
        if value is None or (len(value) <= MAX_LABEL_LENGTH and value.isprintable()):
            continue  # the usual case, in two C calls
        value, actions = bounded_label(value)
        setattr(call, field, value)
        if adjusted is None:
            adjusted = list(call.adjusted)
        adjusted.extend((field, action) for action in actions)
    if adjusted is not None:
        call.adjusted = tuple(adjusted)
    return call


def clamp_cache(input_tokens: int, cache_read: int, cache_write: int
                ) -> tuple[int, int, tuple[tuple[str, str], ...]]:
    """Cache read and write within an input count that includes them; with the clamps applied."""
    if cache_read + cache_write <= input_tokens:
        return cache_read, cache_write, ()
    adjusted: list[tuple[str, str]] = []
    if cache_read > input_tokens:
        cache_read = input_tokens
        adjusted.append(("cache_read_tokens", CLAMPED))
    if cache_write > input_tokens - cache_read:
        cache_write = input_tokens - cache_read
        adjusted.append(("cache_write_tokens", CLAMPED))
    return cache_read, cache_write, tuple(adjusted)


def over_limit(call: LLMCall, max_tokens_per_call: int) -> str | None:
    """Why `call` is implausible under `limits.max_tokens_per_call`, or None when it is not."""
    tokens = call.total_input_tokens + call.output_tokens
    if tokens > max_tokens_per_call:
        return (f"{tokens} tokens in one call (input {call.total_input_tokens}, output {call.output_tokens}) exceed "
                f"limits.max_tokens_per_call ({max_tokens_per_call})")
    return None


def outside_window(start: int, now_ns: int, max_age_hours: int, max_future_s: int) -> str | None:
    """Why a span starting at `start` (unix ns: a call's or a business outcome's) is implausible against the
    processor's clock `now_ns`, or None when it is not. A span without a start time passes (it is counted in the
    hour it arrives)."""
    if not start:
        return None
    if start > now_ns + max_future_s * NS_PER_S:
        return (f"span start {_iso(start)} is more than {max_future_s} s after the processor's clock ({_iso(now_ns)}; "
                "limits.max_span_future_seconds)")
    if start < now_ns - max_age_hours * 3600 * NS_PER_S:
        return (f"span start {_iso(start)} is more than {max_age_hours} h before the processor's clock "
                f"({_iso(now_ns)}; limits.max_span_age_hours)")
    return None


def _iso(unix_ns: int) -> str:
    return datetime.fromtimestamp(unix_ns // NS_PER_S, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
