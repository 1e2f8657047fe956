"""Langfuse SDK v3+'s OpenAI drop-in (recorded from langfuse 5.2.0, `scripts/record-spans/python/langfuse_openai.py`):
its generations, which carry only `langfuse.observation.*` attributes and usage as JSON text, are seen and billed
once each at the list price. Live: the same workload with the installed langfuse."""

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
# List prices (USD per million tokens), genai-prices 0.2.5 = OpenAI's pricing page:
GPT_4O = {"input": Decimal("2.5"), "cache_read": Decimal("1.25"), "output": Decimal(10)}
O3 = {"input": Decimal(2), "cache_read": Decimal("0.5"), "output": Decimal(8)}  # since 2025-06-10
EMBED_3_SMALL = Decimal("0.02")


def _check(fixture: Fixture, tmp_path: Path) -> None:
    billed, ledger = bill(fixture, f"sqlite:///{tmp_path}/ledger.db")
    ledger.close()
    assert billed_units(billed) == expected_rows(fixture)
    chat = (1000 * GPT_4O["input"] + 50 * GPT_4O["output"]) / M
    stream = (1200 * GPT_4O["input"] + 60 * GPT_4O["output"]) / M
    cached = (500 * GPT_4O["input"] + 1500 * GPT_4O["cache_read"] + 80 * GPT_4O["output"]) / M
    responses = (1500 * O3["input"] + 500 * O3["cache_read"] + 300 * O3["output"]) / M  # 100 reasoning in output
    want = {("openai", "gpt-4o-2024-08-06", "chat"): chat + stream + cached,
            ("openai", "o3", "chat"): responses,
            ("openai", "text-embedding-3-small", "embeddings"): 16 * EMBED_3_SMALL / M}
    assert {key: row["unpriced"] for key, row in billed.items()} == dict.fromkeys(want, 0)
    assert_costs_within_a_nano_dollar(billed, want)


def test_langfuse_recorded_generations_are_billed_once_at_list_price(tmp_path):
    _check(load(FIXTURES / "langfuse" / "openai.json"), tmp_path)


def test_langfuse_live_generations_are_billed_once_at_list_price(tmp_path):
    pytest.importorskip("langfuse")
    _check(live_fixture("langfuse_openai", "langfuse", "s.openai_base_url", tmp_path), tmp_path)


@pytest.mark.parametrize(("usage_details", "want"), [
    # Anthropic's shape (a hand-made generation): input EXCLUDES the cache, so it is added to make it semconv's.
    ('{"input_tokens": 250, "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 200, '
     '"output_tokens": 80}', (250, 1000, 200, 80)),
    # Langfuse's own keys.
    ('{"input": 300, "output": 20, "total": 320}', (300, 0, 0, 20)),
    # Not JSON, not an object, a count of the wrong type or impossible: ignored like an attribute of the wrong type.
    ("not json", (0, 0, 0, 0)),
    ("[1, 2]", (0, 0, 0, 0)),
    ('{"input": -5, "output": "7", "total": true}', (0, 0, 0, 0)),
    ('{"input": 10, "output": 2, "pad": "' + "x" * 20_000 + '"}', (0, 0, 0, 0)),  # too long to parse
])
def test_usage_details_shapes_and_bad_text(usage_details, want):
    from costline.processor.http.otlp_http import decode_json
    from costline.processor.ingest.normalize import normalize_span, resource_attributes

    request = decode_json(load(FIXTURES / "langfuse" / "openai.json").requests[0])
    resource_spans = request.resource_spans[0]
    scope_spans = resource_spans.scope_spans[0]
    span = scope_spans.spans[0]
    for kv in span.attributes:
        if kv.key == "langfuse.observation.usage_details":
            kv.value.string_value = usage_details
    call = normalize_span(span, resource_attributes(resource_spans.resource), scope_spans.scope.name)
    assert (call.source, call.provider, call.operation) == ("langfuse", "openai", "chat")
    assert (call.input_tokens, call.cache_read_tokens, call.cache_write_tokens, call.output_tokens) == want


def test_observations_that_are_no_model_call_are_not_billed():
    from costline.processor.http.otlp_http import decode_json
    from costline.processor.ingest.normalize import normalize_span, resource_attributes

    request = decode_json(load(FIXTURES / "langfuse" / "openai.json").requests[0])
    resource_spans = request.resource_spans[0]
    scope_spans = resource_spans.scope_spans[0]
    span = scope_spans.spans[0]
    resource = resource_attributes(resource_spans.resource)
    assert normalize_span(span, resource, scope_spans.scope.name) is not None  # as recorded: a generation, a call
    for kind in ("span", "event", "agent", "tool"):
        for kv in span.attributes:
            if kv.key == "langfuse.observation.type":
                kv.value.string_value = kind
        assert normalize_span(span, resource, scope_spans.scope.name) is None
