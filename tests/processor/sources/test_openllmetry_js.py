"""OpenLLMetry-JS (`@traceloop/node-server-sdk` 0.27) spans, recorded from the npm packages: Anthropic input
excludes the cache; OpenAI streams carry js-tiktoken estimates (billed as given: nothing marks them); OpenAI cache
reads are not reported; embeddings are not instrumented (the workload makes none)."""

from __future__ import annotations

import json

from tests.processor.sources.node_workload import CLAUDE, GPT, billed, cost_nano, nano
from tests.processor.sources.recorded import FIXTURES, Fixture, bill, load


def test_anthropic_cache_outside_the_input_and_openai_as_reported(tmp_path):
    rows = billed("openllmetry-js", tmp_path)
    assert set(rows) == {GPT, CLAUDE}
    # Anthropic: input_tokens 500 beside 2000 read and 500 written (not 500 - 2500 clamped to 0), and a 700/20 stream
    assert rows[CLAUDE]["requests"] == 2
    assert (rows[CLAUDE]["input_tokens"], rows[CLAUDE]["cache_read_tokens"], rows[CLAUDE]["cache_write_tokens"]) == (
        1200, 2000, 500)
    assert cost_nano(rows[CLAUDE]) == (nano(CLAUDE, input=500, cache_read=2000, cache_write=500, output=60)
                                       + nano(CLAUDE, input=700, output=20)) == 2_425_000
    # OpenAI: chat 1000/50; the stream's estimate 4/6 (the provider billed 800/40); the cached call's 2000 input
    # with no cached count, all at the input rate
    assert rows[GPT]["requests"] == 3 and rows[GPT]["usage_missing"] == 0
    assert cost_nano(rows[GPT]) == (nano(GPT, input=1000, output=50) + nano(GPT, input=4, output=6)
                                    + nano(GPT, input=2000, output=30)) == 502_200


# OpenLLMetry-JS's Anthropic span wraps the Anthropic SDK's own (on by default in @anthropic-ai/sdk): two sources on
# one call, parent and child. OpenLLMetry's span has no response id, so only the in-batch wrapper rule joins them.
TRANSITION_REQUESTS = 3
"""Two calls, each described twice: the first billed twice (the transition), the second once."""
PAIRS = FIXTURES.parent / "spans-cross-export" / "openllmetry-js" / "node-with-anthropic-sdk-spans.json"


def _pairs_billed(tmp_path, one_export: bool) -> dict:
    pairs = load(PAIRS)
    bodies = pairs.requests
    if one_export:
        bodies = [json.dumps({"resourceSpans": [rs for body in bodies for rs in json.loads(body)["resourceSpans"]]})
                  .encode()]
    rows, ledger = bill(Fixture(pairs.path, pairs.meta, bodies), f"sqlite:///{tmp_path}/ledger.db")
    ledger.close()
    return rows


def test_its_span_and_the_anthropic_sdks_in_one_export_are_one_call(tmp_path):
    rows = _pairs_billed(tmp_path, one_export=True)
    assert rows[CLAUDE]["requests"] == 2
    assert cost_nano(rows[CLAUDE]) == 2_425_000


def test_its_span_and_the_anthropic_sdks_in_separate_exports_are_one_call_once_the_ledger_pairs_by_usage(tmp_path):
    """OpenLLMetry-JS's span has no response id: exported apart from the SDK's, the pair is joined by the usage family
    (provider, model, usage, start), which a ledger keeps once it has billed a span of a source without response ids
    (docs/sources.md, "Two spans, one call"). Here a Node OpenInference span (no response id) was billed before."""
    url = f"sqlite:///{tmp_path}/ledger.db"
    _, warm = bill(load(FIXTURES / "openinference" / "node-openai-js.json"), url)
    warm.close()
    rows, ledger = bill(load(PAIRS), url)
    ledger.close()
    assert rows[CLAUDE]["requests"] == 2
    assert cost_nano(rows[CLAUDE]) == 2_425_000


def test_on_a_ledger_that_never_saw_a_source_without_response_ids_the_first_pair_bills_twice(tmp_path):
    """The documented transition: the SDK's span (with a response id) of the first call was billed before the ledger
    knew to keep the usage family; the next calls pair."""
    rows = _pairs_billed(tmp_path, one_export=False)
    assert rows[CLAUDE]["requests"] == TRANSITION_REQUESTS
