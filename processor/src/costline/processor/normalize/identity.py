"""`call_keys`: the identity of a call, shared by `dedupe_calls` (within a batch) and the ledger (across batches and
processors), so that both tell "the same call described twice" from "two calls" by one rule.

* **A call with a response id** is that response within its trace, *for calls that agree on usage and start within
  `RESPONSE_WINDOW_NS` of each other*. A response id alone is no proof: OpenAI-compatible servers reuse ids
  (Ollama answers `chatcmpl-<0..999>`, test doubles a constant), so two calls of a long agent trace can share one.
  Two spans describing one call (two instrumentations on one SDK) report the same usage and start within
  milliseconds; two calls that happen to share an id differ in usage or start later. The time test is in keys, so
  that the ledger can apply it in one indexed lookup: a call is written under its start's window and the next
  one, so two starts less than a window apart always share a key, and starts two windows or more apart never do.
* **A call with trace and span ids but no response id** is its span: an exporter's retry resends the same ids.
* **A call without a trace id or span id** (not valid OTLP; hand-written JSON senders omit them) is its content:
  start and end time, provider, models, operation, tokens, response id, owner and service. A retry resends the same
  content; two calls differ at least in their nanosecond times. Without a start time nothing tells a retry from a
  new call, so such a span has no key: every copy is billed (billing twice is visible, dropping a call would not be).

Every key is a pure function of the span, so a retried batch gets the same keys on any processor that shares the
ledger, whatever else its batch holds.
"""

from __future__ import annotations

import hashlib

from costline.processor.model import LLMCall

RESPONSE_WINDOW_NS = 1_000_000_000
"""Spans of one call start within milliseconds of each other; distinct calls that reuse a response id seconds
apart (each call takes that long). One second: starts < 1 s apart are one call, >= 2 s apart are two."""

_MAX_RESPONSE_ID_IN_KEY = 100
"""Keys are at most 200 characters (the ledger's column); response ids are far shorter in practice."""


def call_keys(call: LLMCall) -> tuple[str, ...]:
    """The keys the call is remembered under; a call that shares any key with a billed one is that call."""
    trace = call.trace_id
    if trace and call.response_id:
        usage = f"{call.total_input_tokens}.{call.output_tokens}" if call.has_usage else "-"
        prefix = f"r:{trace.hex()}:{call.response_id[:_MAX_RESPONSE_ID_IN_KEY]}:{usage}:"
        window = call.start_time_unix_nano // RESPONSE_WINDOW_NS
        return (f"{prefix}{window}", f"{prefix}{window + 1}")
    if trace and call.span_id:
        return (f"s:{trace.hex()}{call.span_id.hex()}",)
    if call.start_time_unix_nano:
        return (f"c:{_content_digest(call)}",)
    return ()


def _content_digest(call: LLMCall) -> str:
    content = (
        call.trace_id.hex(), call.span_id.hex(), call.start_time_unix_nano, call.end_time_unix_nano, call.provider,
        call.request_model, call.response_model, call.operation, call.input_tokens, call.output_tokens,
        call.cache_read_tokens, call.cache_write_tokens, call.reasoning_tokens, call.response_id,
        sorted(call.owner.items()), call.api_key_fingerprint, call.service_name, call.source,
    )
    return hashlib.blake2b(repr(content).encode(), digest_size=20).hexdigest()
