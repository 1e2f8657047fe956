"""Logfire's `instrument_openai` / `instrument_anthropic` (recorded from logfire 5.4.0,
`scripts/record-spans/python/logfire_llm.py`): a stream's request span (no usage) and its log span (usage, response
id) are one request, not two; every call at its list price. Live: the same workload against the fake provider."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tests.processor.sources.live import live_fixture
from tests.processor.sources.recorded import (
    FIXTURES,
    Fixture,
    assert_costs_within_a_nano_dollar,
    bill,
    billed_units,
    expected_rows,
    load,
)

M = Decimal(1_000_000)
# List prices (USD per million tokens), genai-prices 0.2.5 = the providers' pages:
GPT_4O = {"input": Decimal("2.5"), "cache_read": Decimal("1.25"), "output": Decimal(10)}
EMBED_3_SMALL = Decimal("0.02")
SONNET_4_5 = {"input": Decimal(3), "cache_read": Decimal("0.3"), "cache_write": Decimal("3.75"),
              "output": Decimal(15)}


def _check(fixture: Fixture, tmp_path: Path) -> None:
    billed, ledger = bill(fixture, f"sqlite:///{tmp_path}/ledger.db")
    ledger.close()
    assert billed_units(billed) == expected_rows(fixture)
    chat = (1000 * GPT_4O["input"] + 50 * GPT_4O["output"]) / M
    stream = (1200 * GPT_4O["input"] + 60 * GPT_4O["output"]) / M
    cached = (500 * GPT_4O["input"] + 1500 * GPT_4O["cache_read"] + 80 * GPT_4O["output"]) / M
    claude = (250 * SONNET_4_5["input"] + 1000 * SONNET_4_5["cache_read"] + 200 * SONNET_4_5["cache_write"]
              + 80 * SONNET_4_5["output"]) / M
    want = {("openai", "gpt-4o-2024-08-06", "chat"): chat + stream + cached,
            ("openai", "text-embedding-3-small", "embeddings"): 16 * EMBED_3_SMALL / M,
            ("anthropic", "claude-sonnet-4-5", "chat"): 2 * claude}  # a message and a stream
    assert {key: (row["requests"], row["unpriced"]) for key, row in billed.items()} == {
        ("openai", "gpt-4o-2024-08-06", "chat"): (3, 0), ("openai", "text-embedding-3-small", "embeddings"): (1, 0),
        ("anthropic", "claude-sonnet-4-5", "chat"): (2, 0)}
    assert_costs_within_a_nano_dollar(billed, want)


def test_logfire_recorded_workload_is_one_request_per_call_at_list_price(tmp_path):
    _check(load(FIXTURES / "logfire" / "openai_anthropic.json"), tmp_path)


def test_logfire_live_workload_is_one_request_per_call_at_list_price(tmp_path):
    pytest.importorskip("logfire")
    _check(live_fixture("logfire_llm", "logfire", "s.url", tmp_path), tmp_path)


def _logfire_spans(scope_prefix: str = "logfire.openai"):
    from costline.processor.http.otlp_http import decode_json
    from costline.processor.ingest.normalize import resource_attributes

    fixture = load(FIXTURES / "logfire" / "openai_anthropic.json")
    request = decode_json(fixture.requests[1])  # the openai stream: request span, then log span
    resource_spans = request.resource_spans[0]
    scope_spans = resource_spans.scope_spans[0]
    assert scope_spans.scope.name.startswith(scope_prefix)
    return list(scope_spans.spans), resource_attributes(resource_spans.resource), scope_spans.scope.name


def test_a_stream_request_span_is_no_call_but_a_failed_request_span_is():
    from opentelemetry.proto.trace.v1.trace_pb2 import Status

    from costline.processor.ingest.normalize import normalize_span

    spans, resource, scope = _logfire_spans()
    request_span, log_span = spans
    assert normalize_span(request_span, resource, scope) is None  # no usage, no error: its log span is the call
    call = normalize_span(log_span, resource, scope)
    assert (call.source, call.input_tokens, call.output_tokens, call.response_id) == (
        "logfire", 1200, 60, "chatcmpl-fake123")
    request_span.status.code = Status.STATUS_CODE_ERROR  # the request itself failed: a call, billed without usage
    failed = normalize_span(request_span, resource, scope)
    assert (failed.source, failed.error_type, failed.has_usage) == ("logfire", "_OTHER", False)
