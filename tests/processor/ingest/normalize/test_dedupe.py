"""`dedupe_calls` on hand-made calls: which spans are one API call, which survives, what it inherits."""

from __future__ import annotations

from costline.processor.ingest.normalize import dedupe_calls
from costline.processor.model import LLMCall

T1, T2 = b"\x01" * 16, b"\x02" * 16


def call(span: int, *, parent: int = 0, trace: bytes = T1, source: str = "costline", response_id: str | None = None,
         model: str | None = "gpt-4o", provider: str = "openai", usage: bool = True, owner: dict | None = None,
         fingerprint: str | None = None, start: int = 100, end: int = 200) -> LLMCall:
    return LLMCall(provider=provider, request_model=model, response_model=None, operation="chat",
                   input_tokens=10 if usage else 0, has_usage=usage, response_id=response_id, trace_id=trace,
                   span_id=span.to_bytes(8, "big"), parent_span_id=parent.to_bytes(8, "big") if parent else b"",
                   source=source, owner=dict(owner or {}), api_key_fingerprint=fingerprint,
                   start_time_unix_nano=start, end_time_unix_nano=end)


def test_distinct_calls_untouched() -> None:
    assert len(dedupe_calls([call(1, response_id="a"), call(2, response_id="b")])) == 2
    assert len(dedupe_calls([call(1, response_id="a"), call(2, trace=T2, response_id="a")])) == 2  # same source
    assert dedupe_calls([]) == [] and len(dedupe_calls([call(1)])) == 1


def test_same_response_id_in_trace_keeps_costline_and_merges_owner() -> None:
    peer = call(1, source="openllmetry", response_id="r", owner={"costline.team": "search", "costline.user": "u"})
    ours = call(2, source="costline", response_id="r", owner={"costline.team": "other"}, fingerprint="f" * 16)
    (kept,) = dedupe_calls([peer, ours])
    assert kept is ours
    assert kept.owner == {"costline.team": "other", "costline.user": "u"}  # own keys win, missing ones filled
    assert kept.api_key_fingerprint == "f" * 16


def test_wrapper_parent_merged_into_child() -> None:
    outer = call(1, source="openllmetry", fingerprint=None, owner={"costline.project": "p"})
    inner = call(2, parent=1, source="costline", fingerprint="a" * 16)
    (kept,) = dedupe_calls([outer, inner])
    assert kept is inner and kept.owner == {"costline.project": "p"}


def test_prefers_usage_then_innermost_between_peers() -> None:
    outer = call(1, source="openllmetry", usage=False, fingerprint="b" * 16)
    inner = call(2, parent=1, source="openinference", usage=True)
    (kept,) = dedupe_calls([outer, inner])
    assert kept is inner and kept.api_key_fingerprint == "b" * 16
    outer = call(1, source="openllmetry")
    inner = call(2, parent=1, source="openinference")
    assert dedupe_calls([outer, inner]) == [inner]


def test_parent_of_other_model_or_provider_is_not_a_wrapper() -> None:
    assert len(dedupe_calls([call(1), call(2, parent=1, model="gpt-4o-mini")])) == 2
    assert len(dedupe_calls([call(1), call(2, parent=1, provider="anthropic")])) == 2


def test_aggregate_parent_dropped_children_kept() -> None:
    agent = call(1, source="semconv", owner={"costline.team": "t"})
    kids = [call(2, parent=1), call(3, parent=1)]
    kept = dedupe_calls([agent, *kids])
    assert kept == kids and all(k.owner == {"costline.team": "t"} for k in kids)


def test_cross_trace_same_response_from_two_sources() -> None:
    ours = call(1, trace=T1, response_id="resp_1", source="costline")
    peer = call(2, trace=T2, response_id="resp_1", source="openllmetry", owner={"costline.team": "x"})
    (kept,) = dedupe_calls([peer, ours])
    assert kept is ours and kept.owner == {"costline.team": "x"}


def test_cross_trace_needs_overlap_and_unique_id_per_source() -> None:
    ours = call(1, trace=T1, response_id="resp_1", source="costline")
    later = call(2, trace=T2, response_id="resp_1", source="openllmetry", start=500, end=600)
    assert len(dedupe_calls([ours, later])) == 2
    # a provider that answers every call with the same id: many calls of one source, never merged across traces
    fake = [call(i, trace=bytes([0x10 + i]) * 16, response_id="chatcmpl-fake123") for i in range(1, 6)]
    peer = call(9, trace=T2, response_id="chatcmpl-fake123", source="openllmetry")
    assert len(dedupe_calls([*fake, peer])) == 6


def test_one_source_spans_sharing_a_response_id_are_distinct_calls() -> None:
    # Issue 17: two spans of one instrumentation with different span ids are two calls, even with the same trace,
    # response id, usage and start second (the old expectation here, one call, was the bug). Two sources' spans of
    # one response are still one call.
    assert len(dedupe_calls([call(1, response_id="x"), call(2, response_id="x")])) == 2
    five = [call(i, response_id="x") for i in range(1, 6)]
    assert len(dedupe_calls(five)) == 5
    assert len(dedupe_calls([call(1, response_id="x"), call(2, response_id="x", source="openllmetry")])) == 1


def test_two_sources_of_five_calls_sharing_a_response_id_bill_five() -> None:
    ours = [call(i, response_id="x", start=100 + i) for i in range(1, 6)]
    theirs = [call(10 + i, response_id="x", source="openllmetry", start=100 + i + 2) for i in range(1, 6)]
    kept = dedupe_calls([*theirs, *ours])
    assert sorted(id(k) for k in kept) == sorted(id(c) for c in ours)


def test_the_same_span_twice_in_a_request_is_one_call() -> None:
    assert len(dedupe_calls([call(1, response_id="x"), call(1, response_id="x")])) == 1


def test_usage_less_span_of_the_same_source_is_another_call() -> None:
    assert len(dedupe_calls([call(1, response_id="r"), call(2, response_id="r", usage=False)])) == 2
    assert len(dedupe_calls([call(1, response_id="r"), call(2, response_id="r", usage=False, source="openllmetry")])) == 1


def test_same_source_parent_of_the_same_shape_is_a_call_of_its_own() -> None:
    # Whether a span is a call is decided by the span (`span._is_call`), not by a child in the same batch.
    assert len(dedupe_calls([call(1), call(2, parent=1)])) == 2


def test_span_without_response_id_pairs_with_another_sources_by_usage_and_time() -> None:
    """OpenInference's anthropic stream span (no response id, its own trace) and the anthropic SDK's span of the
    same call: one call; two such calls, two; a third source-less twin more than a second away, its own call."""
    second = 1_000_000_000
    sdk = [call(i, trace=T1, response_id=f"msg_{i}", source="anthropic-sdk", provider="anthropic",
                start=10 * second + i, end=11 * second) for i in range(1, 3)]
    oi = [call(10 + i, trace=T2, source="openinference", provider="anthropic", start=10 * second + 1000 + i,
               end=11 * second) for i in range(1, 3)]
    late = call(20, trace=T2, source="openinference", provider="anthropic", start=13 * second, end=14 * second)
    kept = dedupe_calls([*oi, *sdk, late])
    assert len(kept) == 3 and late in kept
    other_model = call(30, trace=T2, source="openinference", provider="anthropic", model="claude-x",
                       start=10 * second, end=11 * second)
    assert len(dedupe_calls([sdk[0], other_model])) == 2
