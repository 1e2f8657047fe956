"""OpenInference JS (`@arizeai/openinference-instrumentation-openai` 4.x) spans, recorded from the npm package and
read by the `openinference` source (the same `llm.*` attributes as the Python instrumentation): its stream and
embedding spans carry no token counts, so those two calls are counted as usage missing, never as $0 calls."""

from __future__ import annotations

from tests.processor.sources.node_workload import EMBEDDING, GPT, GPT_ALIAS, billed, cost_nano, nano

SCENARIO = "node-openai-js"


def test_chat_and_cached_chat_cost_the_list_price(tmp_path):
    rows = billed("openinference", tmp_path, SCENARIO)
    assert rows[GPT]["requests"] == 2 and rows[GPT]["usage_missing"] == 0
    assert cost_nano(rows[GPT]) == (nano(GPT, input=1000, output=50)
                                    + nano(GPT, input=500, cache_read=1500, output=30)) == 385_500


def test_the_stream_and_the_embeddings_are_flagged_usage_missing(tmp_path):
    rows = billed("openinference", tmp_path, SCENARIO)
    assert set(rows) == {GPT, GPT_ALIAS, EMBEDDING}
    for key in (GPT_ALIAS, EMBEDDING):  # the stream span names only the requested model
        assert rows[key]["requests"] == 1 and rows[key]["usage_missing"] == 1, key
        assert rows[key]["cost_pico"] == 0 and rows[key]["input_tokens"] == 0, key
