"""The official `@opentelemetry/instrumentation-openai` 0.21 spans, recorded from the npm package: semconv usage,
streams read from the usage chunk, embeddings; no cached-token count on any span (the cached call's input is billed
at the full rate, a limit of the source written down in docs/sources.md)."""

from __future__ import annotations

from tests.processor.sources.node_workload import EMBEDDING, GPT, billed, cost_nano, nano


def test_chat_stream_cached_and_embeddings(tmp_path):
    rows = billed("otel-openai-js", tmp_path)
    assert set(rows) == {GPT, EMBEDDING}
    assert rows[GPT]["requests"] == 3 and rows[GPT]["cache_read_tokens"] == 0
    assert cost_nano(rows[GPT]) == (nano(GPT, input=1000, output=50) + nano(GPT, input=800, output=40)
                                    + nano(GPT, input=2000, output=30)) == 642_000
    assert cost_nano(rows[EMBEDDING]) == nano(EMBEDDING, input=64) == 1280
    assert all(row["usage_missing"] == 0 and row["unpriced"] == 0 for row in rows.values())
