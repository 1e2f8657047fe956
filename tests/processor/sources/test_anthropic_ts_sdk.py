"""The Anthropic TypeScript SDK's own spans (`@anthropic-ai/sdk` 1.17, scope `com.anthropic.sdk.typescript`),
recorded from the npm package and read by the `anthropic-sdk` source: exact, cache included in the input."""

from __future__ import annotations

from tests.processor.sources.node_workload import CLAUDE, billed, cost_nano, nano


def test_cached_chat_and_stream_cost_the_list_price(tmp_path):
    rows = billed("anthropic-sdk", tmp_path, "node-anthropic-ts-sdk")
    assert set(rows) == {CLAUDE}
    row = rows[CLAUDE]
    assert (row["requests"], row["input_tokens"], row["cache_read_tokens"], row["cache_write_tokens"],
            row["output_tokens"]) == (2, 1200, 2000, 500, 80)
    assert cost_nano(row) == (nano(CLAUDE, input=500, cache_read=2000, cache_write=500, output=60)
                              + nano(CLAUDE, input=700, output=20)) == 2_425_000
