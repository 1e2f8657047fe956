"""`opentelemetry-instrumentation-botocore`'s Bedrock spans (recorded from 0.66b2 on botocore 1.44.18,
`scripts/record-spans/python/botocore_bedrock.py`): Bedrock's input tokens EXCLUDE the cache, so the cache is billed
at its own rates and not clamped away. Live: the same workload, botocore against the script's local server speaking
Bedrock's Converse / ConverseStream / InvokeModel wire format."""

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
CLAUDE = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
TITAN = "amazon.titan-embed-text-v2:0"
# List prices on Bedrock (USD per million tokens), genai-prices 0.2.5 = AWS's pricing page:
SONNET_4_5 = {"input": Decimal(3), "cache_read": Decimal("0.3"), "cache_write": Decimal("3.75"),
              "output": Decimal(15)}
TITAN_EMBED_V2 = Decimal("0.02")


def _check(fixture: Fixture, tmp_path: Path) -> None:
    billed, ledger = bill(fixture, f"sqlite:///{tmp_path}/ledger.db")
    ledger.close()
    assert billed_units(billed) == expected_rows(fixture)
    s = SONNET_4_5
    chat = (1000 * s["input"] + 50 * s["output"]) / M
    stream = (1200 * s["input"] + 60 * s["output"]) / M
    # inputTokens 300 are uncached already: the 1500 read and 200 written come on top (clamped away before).
    cached = (300 * s["input"] + 1500 * s["cache_read"] + 200 * s["cache_write"] + 80 * s["output"]) / M
    cached_stream = (100 * s["input"] + 1700 * s["cache_read"] + 40 * s["output"]) / M
    want = {("aws.bedrock", CLAUDE, "chat"): chat + stream + cached + cached_stream,
            ("aws.bedrock", TITAN, "embeddings"): 16 * TITAN_EMBED_V2 / M}
    assert {key: row["unpriced"] for key, row in billed.items()} == dict.fromkeys(want, 0)
    assert_costs_within_a_nano_dollar(billed, want)


def test_bedrock_recorded_calls_bill_the_cache_beside_the_input(tmp_path):
    _check(load(FIXTURES / "botocore" / "bedrock.json"), tmp_path)


def test_bedrock_live_calls_bill_the_cache_beside_the_input(tmp_path):
    pytest.importorskip("opentelemetry.instrumentation.botocore")
    _check(live_fixture("botocore_bedrock", "botocore", "None", tmp_path), tmp_path)
