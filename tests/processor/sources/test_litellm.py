"""LiteLLM's otel callback (recorded from litellm 1.110.2, `scripts/record-spans/python/litellm_sdk.py`): its cache
split, only in `metadata.usage_object`, is billed at the cache rate, and its embeddings (empty `gen_ai.system`) are
priced. LiteLLM is too heavy for the test environment: recorded only."""

from __future__ import annotations

from decimal import Decimal

from tests.processor.sources.recorded import (
    FIXTURES,
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


def test_litellm_workload_is_billed_once_each_at_its_list_price(tmp_path):
    fixture = load(FIXTURES / "litellm" / "sdk.json")
    billed, ledger = bill(fixture, f"sqlite:///{tmp_path}/ledger.db")
    ledger.close()
    assert billed_units(billed) == expected_rows(fixture)
    chat = (1000 * GPT_4O["input"] + 50 * GPT_4O["output"]) / M
    cached = (500 * GPT_4O["input"] + 1500 * GPT_4O["cache_read"] + 80 * GPT_4O["output"]) / M  # was 2000 at input
    stream = (1200 * GPT_4O["input"] + 60 * GPT_4O["output"]) / M
    embeddings = 16 * EMBED_3_SMALL / M
    claude = (250 * SONNET_4_5["input"] + 1000 * SONNET_4_5["cache_read"] + 200 * SONNET_4_5["cache_write"]
              + 80 * SONNET_4_5["output"]) / M
    want = {("openai", "gpt-4o-2024-08-06", "chat"): chat + cached,
            ("openai", "gpt-4o", "chat"): stream,
            ("openai", "text-embedding-3-small", "embeddings"): embeddings,
            ("anthropic", "claude-sonnet-4-5", "chat"): claude}
    assert {key: row["unpriced"] for key, row in billed.items()} == dict.fromkeys(want, 0)
    assert_costs_within_a_nano_dollar(billed, want)


def test_the_raw_request_child_is_no_call_and_the_usage_object_is_read_as_a_literal():
    from costline.processor.http.otlp_http import decode_json
    from costline.processor.ingest.normalize import normalize_span, resource_attributes

    fixture = load(FIXTURES / "litellm" / "sdk.json")
    request = decode_json(fixture.requests[2])  # the cached chat
    resource_spans = request.resource_spans[0]
    scope_spans = resource_spans.scope_spans[0]
    resource = resource_attributes(resource_spans.resource)
    calls = [normalize_span(span, resource, scope_spans.scope.name) for span in scope_spans.spans]
    assert [(s.name, c is not None) for s, c in zip(scope_spans.spans, calls, strict=True)] == [
        ("litellm_request", True), ("raw_gen_ai_request", False)]
    call = calls[0]
    assert (call.input_tokens, call.cache_read_tokens, call.output_tokens) == (500, 1500, 80)
    assert call.reported_cost_usd is not None and call.reported_cost_usd > 0  # LiteLLM's own, kept beside
