"""Vercel AI SDK (`ai` 6.x, experimental_telemetry) spans, recorded from the npm packages, billed exactly once."""

from __future__ import annotations

import json

from tests.processor.sources.node_workload import CLAUDE, EMBEDDING, GPT, billed, cost_nano, fixture, nano
from tests.processor.sources.recorded import Fixture, bill


def test_chat_stream_cached_and_embeddings_cost_the_list_price(tmp_path):
    rows = billed("vercel-ai", tmp_path)
    assert set(rows) == {GPT, CLAUDE, EMBEDDING}
    # chat 1000/50, stream 800/40, cached 500 + 1500 cache read / 30: the cache split from inputTokenDetails
    assert rows[GPT]["requests"] == 3
    assert cost_nano(rows[GPT]) == (nano(GPT, input=1000, output=50) + nano(GPT, input=800, output=40)
                                    + nano(GPT, input=500, cache_read=1500, output=30)) == 529_500
    # anthropic: 500 uncached + 2000 read + 500 written / 60 out, and a 700/20 stream (input includes the cache)
    assert rows[CLAUDE]["requests"] == 2
    assert cost_nano(rows[CLAUDE]) == (nano(CLAUDE, input=500, cache_read=2000, cache_write=500, output=60)
                                       + nano(CLAUDE, input=700, output=20)) == 2_425_000
    # ai.embed.doEmbed: no gen_ai.* at all, its usage is ai.usage.tokens
    assert rows[EMBEDDING]["requests"] == 1 and cost_nano(rows[EMBEDDING]) == nano(EMBEDDING, input=64) == 1280
    assert all(row["usage_missing"] == 0 and row["unpriced"] == 0 for row in rows.values())


def test_the_outer_spans_alone_are_no_calls(tmp_path):
    """ai.generateText / ai.streamText / ai.embed sum their steps: exported without their children (another batch,
    another processor) they bill nothing rather than a second time."""
    document = fixture("vercel-ai")
    outer = []
    for body in document.meta["requests"]:
        spans = [s for rs in body["resourceSpans"] for ss in rs["scopeSpans"] for s in ss["spans"]]
        if all(not s.get("parentSpanId") for s in spans):
            outer.append(json.dumps(body).encode())
    assert len(outer) == 6  # generateText x3, streamText x2, embed
    rows, ledger = bill(Fixture(document.path, document.meta, outer), f"sqlite:///{tmp_path}/ledger.db")
    ledger.close()
    assert rows == {}
