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


def test_repeated_fake_ids_in_one_trace_merge() -> None:
    # same trace + same response id is one call by definition (the ledger uses the same key)
    assert len(dedupe_calls([call(1, response_id="x"), call(2, response_id="x")])) == 1
