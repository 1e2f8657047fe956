"""OpenInference's anthropic instrumentation beside the anthropic SDK's own spans (recorded from
openinference-instrumentation-anthropic 3.1.0 on anthropic 2.17.0,
`scripts/record-spans/python/openinference_anthropic.py`): each span, on its own, is the exact call, cache included,
and OpenInference's alone are billed at the list price. (That the two spans of one `messages.stream()` call are billed
once is the dedupe's: the fixture's replay test names it as a known failure until then.) Live: the same workload."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from costline.processor.http.otlp_http import decode_json
from costline.processor.ingest.normalize import normalize_span, resource_attributes
from tests.processor.sources.live import live_fixture
from tests.processor.sources.recorded import FIXTURES, Fixture, bill, load

M = Decimal(1_000_000)
# claude-sonnet-4-5 list prices (USD per million tokens), genai-prices 0.2.5 = Anthropic's pricing page:
SONNET_4_5 = {"input": Decimal(3), "cache_read": Decimal("0.3"), "cache_write": Decimal("3.75"),
              "output": Decimal(15)}
# Each call as billed: uncached input, cache read, cache write, output (the fake provider's usage per step).
CALLS = [(1000, 0, 0, 50), (250, 1000, 200, 80), (300, 900, 0, 60), (400, 0, 300, 30)]
SCOPES = {"openinference": "openinference.instrumentation.anthropic", "anthropic-sdk": "com.anthropic.sdk.python"}


def _spans_of(fixture: Fixture, scope: str) -> list[tuple[int, str, object]]:
    """(export index, source, call) of every span of `scope`, normalised on its own."""
    found = []
    for index, body in enumerate(fixture.requests):
        request = decode_json(body)
        for resource_spans in request.resource_spans:
            resource = resource_attributes(resource_spans.resource)
            for scope_spans in resource_spans.scope_spans:
                if scope_spans.scope.name != scope:
                    continue
                for span in scope_spans.spans:
                    call = normalize_span(span, resource, scope_spans.scope.name)
                    found.append((index, call.source if call else None, call))
    return found


@pytest.mark.parametrize("source", sorted(SCOPES))
def test_each_instrumentation_span_alone_is_the_exact_call(source):
    fixture = load(FIXTURES / "openinference" / "anthropic_with_sdk.json")
    spans = _spans_of(fixture, SCOPES[source])
    assert [(i, s) for i, s, _ in spans] == [(i, source) for i in range(4)]
    for (_, _, call), want in zip(spans, CALLS, strict=True):
        assert (call.input_tokens, call.cache_read_tokens, call.cache_write_tokens, call.output_tokens) == want
        assert (call.provider, call.request_model, call.response_model) == (
            "anthropic", "claude-sonnet-4-5", "claude-sonnet-4-5")


def _only(fixture: Fixture, scope: str, path: Path) -> Fixture:
    requests = []
    for body in fixture.requests:
        document = json.loads(body)
        for resource_spans in document["resourceSpans"]:
            resource_spans["scopeSpans"] = [s for s in resource_spans["scopeSpans"] if s["scope"]["name"] == scope]
        requests.append(json.dumps(document).encode())
    return Fixture(path, fixture.meta, requests)


def _check_openinference_alone(fixture: Fixture, tmp_path: Path) -> None:
    billed, ledger = bill(_only(fixture, SCOPES["openinference"], tmp_path / "alone.json"),
                          f"sqlite:///{tmp_path}/ledger.db")
    ledger.close()
    row = billed[("anthropic", "claude-sonnet-4-5", "chat")]
    s = SONNET_4_5
    usd = sum((i * s["input"] + r * s["cache_read"] + w * s["cache_write"] + o * s["output"]) / M
              for i, r, w, o in CALLS)
    assert (row["requests"], row["unpriced"]) == (4, 0)
    assert abs(Decimal(row["cost_pico"]) / 10**12 - usd) <= Decimal("1e-9")


def test_openinference_anthropic_alone_is_billed_at_list_price(tmp_path):
    _check_openinference_alone(load(FIXTURES / "openinference" / "anthropic_with_sdk.json"), tmp_path)


def test_openinference_anthropic_live_alone_is_billed_at_list_price(tmp_path):
    pytest.importorskip("openinference.instrumentation.anthropic")
    _check_openinference_alone(live_fixture("openinference_anthropic", "openinference", "s.anthropic_base_url",
                                            tmp_path), tmp_path)
