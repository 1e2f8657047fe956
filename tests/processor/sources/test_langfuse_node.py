"""Langfuse JS v5 (`@langfuse/openai` over `@langfuse/tracing`) spans, recorded from the npm packages: only
`langfuse.observation.*`, usage as JSON text whose input excludes the cache; its embeddings carry no usage."""

from __future__ import annotations

import json

from tests.processor.sources.node_workload import EMBEDDING, GPT, GPT_ALIAS, billed, cost_nano, fixture, nano
from tests.processor.sources.recorded import Fixture, bill


def test_chat_stream_and_cached_chat_cost_the_list_price_and_embeddings_are_flagged(tmp_path):
    rows = billed("langfuse", tmp_path)
    assert set(rows) == {GPT, GPT_ALIAS, EMBEDDING}
    # chat 1000/50 and the cached call: usage_details input 500 (uncached) beside input_cached_tokens 1500
    assert rows[GPT]["requests"] == 2 and rows[GPT]["cache_read_tokens"] == 1500
    assert cost_nano(rows[GPT]) == (nano(GPT, input=1000, output=50)
                                    + nano(GPT, input=500, cache_read=1500, output=30)) == 385_500
    # the stream, with the usage chunk's 800/40, names the requested model
    assert cost_nano(rows[GPT_ALIAS]) == nano(GPT_ALIAS, input=800, output=40) == 144_000
    assert rows[EMBEDDING]["usage_missing"] == 1 and rows[EMBEDDING]["cost_pico"] == 0


def _with_usage_details(tmp_path, text: str) -> dict:
    """The recorded chat call with its usage_details replaced by `text`, billed."""
    document = fixture("langfuse")
    body = json.loads(json.dumps(document.meta["requests"][0]))
    for attribute in body["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["attributes"]:
        if attribute["key"] == "langfuse.observation.usage_details":
            attribute["value"] = {"stringValue": text}
    rows, ledger = bill(Fixture(document.path, document.meta, [json.dumps(body).encode()]),
                        f"sqlite:///{tmp_path}/ledger.db")
    ledger.close()
    return rows


def test_usage_details_that_are_no_usage_leave_the_call_usage_missing(tmp_path):
    for n, text in enumerate(['{"input": "many"}', "not json", "[1, 2]", '{"input": -5, "output": 1e30}']):
        folder = tmp_path / str(n)
        folder.mkdir()
        rows = _with_usage_details(folder, text)
        assert rows[GPT]["requests"] == 1 and rows[GPT]["usage_missing"] == 1 and rows[GPT]["cost_pico"] == 0, text


def test_anthropic_style_usage_keys_are_read_too(tmp_path):
    rows = _with_usage_details(tmp_path, json.dumps(
        {"input_tokens": 100, "cache_read_input_tokens": 900, "cache_creation_input_tokens": 0, "output_tokens": 10}))
    assert (rows[GPT]["input_tokens"], rows[GPT]["cache_read_tokens"], rows[GPT]["output_tokens"]) == (100, 900, 10)
