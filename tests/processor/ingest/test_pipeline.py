"""The pipeline after normalisation: price, attribute, commit, then count — on both ledger backends.

`ingest_calls` is `ingest` minus span decoding; the OTLP test at the bottom runs the whole `ingest` once the
normaliser (`costline.processor.ingest.normalize`, owned elsewhere) is importable.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text

from costline.processor.config.core import load_config, parse_config
from costline.processor.ingest.pipeline import LedgerUnavailable, Pipeline
from costline.processor.ledger import Ledger
from costline.processor.reports.reprice import reprice
from costline.processor.service import assemble_pipeline
from tests.processor.conftest import EXAMPLE_CONFIG, at, make_call

NOW = datetime(2026, 11, 20, 15, tzinfo=timezone.utc)
NOV1 = datetime(2026, 11, 1, tzinfo=timezone.utc)
DEC1 = datetime(2026, 12, 1, tzinfo=timezone.utc)
ALICE_KEY = "b3180bc5c5db03d7"


def pipeline_for(db_url: str, config=None) -> Pipeline:
    return assemble_pipeline(config or load_config(EXAMPLE_CONFIG), Ledger(db_url), clock=lambda: NOW)


def sample(pipeline: Pipeline, name: str, **labels: str) -> float | None:
    registry = CollectorRegistry()
    registry.register(pipeline.collector)
    return registry.get_sample_value(name, labels)


def test_list_price_lands_exactly_in_ledger_and_metrics(db_url):
    pipeline = pipeline_for(db_url, parse_config({}))
    pipeline.ingest_calls([make_call(1, model="gpt-4o", input_tokens=1_000_000, output=0, start=at(2026, 11, 10))])
    [row] = pipeline.ledger.usage(NOV1, DEC1, ["team", "model"])
    assert (row["team"], row["model"], row["cost_usd"]) == ("search", "gpt-4o", Decimal("2.5"))
    labels = dict(provider="openai", model="gpt-4o", operation="chat", org="acme", team="search", project="",
                  feature="", cost_center="", environment="")
    assert sample(pipeline, "costline_cost_usd_total", **labels) == 2.5
    assert sample(pipeline, "costline_requests_total", outcome="success", **labels) == 1
    pipeline.close()


def test_override_from_config_and_unpriced_model_never_zero(db_url):
    pipeline = pipeline_for(db_url)
    pipeline.ingest_calls([
        make_call(1, model="gpt-4o-2024-08-06", input_tokens=1_000_000, output=1_000_000),  # override 2 + 8
        make_call(2, model="in-house-70b", provider="vllm", input_tokens=500, output=50),
    ])
    rows = {r["model"]: r for r in pipeline.ledger.usage(NOV1, DEC1, ["model"])}
    assert rows["gpt-4o-2024-08-06"]["cost_usd"] == Decimal("10")
    unpriced = rows["in-house-70b"]
    assert (unpriced["unpriced_requests"], unpriced["unpriced_input_tokens"], unpriced["cost_usd"]) == (1, 500, 0)
    labels = dict(provider="vllm", model="in-house-70b", operation="chat", org="acme", team="search", project="",
                  feature="", cost_center="", environment="")
    assert sample(pipeline, "costline_unpriced_requests_total", **labels) == 1
    assert sample(pipeline, "costline_cost_usd_total", **labels) is None  # no cost at all, not $0
    pipeline.close()


def test_retried_batch_and_duplicates_within_a_batch_bill_once(db_url):
    pipeline = pipeline_for(db_url)
    batch = [make_call(i, model="gpt-4o-mini") for i in range(5)]
    # Its own usage: spans of other sources with the same usage in the same second would pair with it by usage
    # (docs/sources.md, "Two spans, one call": the usage family's failure mode).
    ours, peers = (make_call(n, model="gpt-4o-mini", response_id="resp_1", input_tokens=2000) for n in (9, 10))
    ours.source, peers.source = "costline", "openllmetry"  # two instrumentations' spans of one API call
    batch += [make_call(0, model="gpt-4o-mini"),  # the same span twice in one request
              ours, peers]
    assert len(pipeline.ingest_calls(batch)) == 6
    assert pipeline.ingest_calls(batch) == []  # the exporter's retry
    assert pipeline.ledger.usage(NOV1, DEC1, [])[0]["requests"] == 6
    assert sample(pipeline, "costline_spans_received_total", result="billed") == 6
    assert sample(pipeline, "costline_spans_received_total", result="duplicate") == 10
    pipeline.close()


def test_failed_commit_raises_and_leaves_metrics_untouched(db_url):
    pipeline = pipeline_for(db_url)
    pipeline.ingest_calls([make_call(1, model="gpt-4o-mini")])
    before = sample(pipeline, "costline_requests_total", provider="openai", model="gpt-4o-mini", operation="chat",
                    org="acme", team="search", project="", feature="", cost_center="", environment="",
                    outcome="success")
    with pipeline.ledger.engine.begin() as conn:  # the database loses its table: every write now fails
        conn.execute(text("DROP TABLE costline_usage_hourly"))
    with pytest.raises(LedgerUnavailable):
        pipeline.ingest_calls([make_call(2, model="gpt-4o-mini"), make_call(3, model="gpt-4o", team="new")])
    assert before == 1
    assert sample(pipeline, "costline_requests_total", provider="openai", model="gpt-4o-mini", operation="chat",
                  org="acme", team="search", project="", feature="", cost_center="", environment="",
                  outcome="success") == 1
    assert sample(pipeline, "costline_tokens_total", provider="openai", model="gpt-4o", operation="chat", org="acme",
                  team="new", project="", feature="", cost_center="", environment="", type="input") is None
    pipeline.close()


def test_budgets_are_right_after_a_restart(db_url):
    first = pipeline_for(db_url)
    # alice's key: 1M gpt-4o output at the override (8) today, and 1M input (2) earlier this month.
    first.ingest_calls([make_call(1, model="gpt-4o", input_tokens=0, output=1_000_000, fingerprint=ALICE_KEY,
                                  start=at(2026, 11, 20, 10)),
                        make_call(2, model="gpt-4o", input_tokens=1_000_000, output=0, fingerprint=ALICE_KEY,
                                  start=at(2026, 11, 2, 10))])
    expected = first.budgets_snapshot()
    first.close()
    second = pipeline_for(db_url)
    snapshot = second.budgets_snapshot()
    assert snapshot == expected
    by_scope = {(b["scope"], b["period"], b["owner"]): b for b in snapshot["budgets"]}
    assert by_scope[("key", "monthly", "acme/engineering/alice/alice-laptop")]["spent_usd"] == Decimal("10")
    assert by_scope[("key", "daily", "acme/engineering/alice/alice-laptop")]["spent_usd"] == Decimal("8")
    assert by_scope[("team", "monthly", "acme/engineering")]["spent_usd"] == Decimal("10")
    assert by_scope[("team", "monthly", "acme/marketing")]["spent_usd"] == Decimal("0")
    assert by_scope[("org", "monthly", "acme")]["remaining_usd"] == Decimal("2990")
    effective = {(e["scope"], e.get("key")): e for e in snapshot["effective"]}
    assert effective[("key", "alice-laptop")]["remaining_usd"] == Decimal("-3")  # daily 5 - 8: the binding one
    assert sample(second, "costline_budget_remaining_usd", scope="key", period="monthly", org="acme",
                  team="engineering", user="alice", key="alice-laptop", project="", mode="hard", feature="",
                  environment="", customer="", model="") == 40
    second.close()


def test_reload_swaps_prices_and_reprice_bills_what_was_unpriced(db_url):
    pipeline = pipeline_for(db_url, parse_config({}))
    pipeline.ingest_calls([make_call(1, model="in-house-70b", provider="vllm", input_tokens=2_000_000, output=0)])
    assert reprice(pipeline.ledger, pipeline.pricer, NOV1) == 0  # still no price
    pipeline.reload(parse_config({"prices": [{"provider": "vllm", "model": "in-house-70b",
                                              "input_per_mtok": "0.25", "output_per_mtok": "1"}]}))
    pipeline.ingest_calls([make_call(2, model="in-house-70b", provider="vllm", input_tokens=1_000_000, output=0)])
    assert reprice(pipeline.ledger, pipeline.pricer, NOV1) == 1
    [row] = pipeline.ledger.usage(NOV1, DEC1, ["model"])
    assert (row["cost_usd"], row["unpriced_requests"], row["requests"]) == (Decimal("0.75"), 0, 2)
    pipeline.close()


def test_concurrent_ingests_sum_exactly(db_url):
    pipeline = pipeline_for(db_url)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for batch in range(5):
                pipeline.ingest_calls([make_call(worker * 10_000 + batch * 100 + i, model="gpt-4o-mini")
                                       for i in range(20)])
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert pipeline.ledger.usage(NOV1, DEC1, [])[0]["requests"] == 400
    assert sample(pipeline, "costline_spans_received_total", result="billed") == 400
    pipeline.close()


def otlp_request(spans: list[dict], resource: dict[str, str]):
    """An OTLP request of Costline-plugin-style chat spans (attribute names from the contract)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    from costline import attributes as A

    def kv(key, value):
        if isinstance(value, bool):
            return KeyValue(key=key, value=AnyValue(bool_value=value))
        if isinstance(value, int):
            return KeyValue(key=key, value=AnyValue(int_value=value))
        return KeyValue(key=key, value=AnyValue(string_value=value))

    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    rs.resource.attributes.extend(kv(k, v) for k, v in resource.items())
    ss = rs.scope_spans.add()
    ss.scope.name = A.INSTRUMENTATION_SCOPE
    for i, attrs in enumerate(spans):
        span = ss.spans.add(trace_id=b"\x07" * 16, span_id=(i + 1).to_bytes(8, "big"), name="chat", kind=3,
                            start_time_unix_nano=at(2026, 11, 20, 9), end_time_unix_nano=at(2026, 11, 20, 9) + 10**9)
        base = {A.GEN_AI_OPERATION_NAME: "chat", A.GEN_AI_PROVIDER_NAME: "openai"}
        span.attributes.extend(kv(k, v) for k, v in {**base, **attrs}.items())
    non_llm = ss.spans.add(trace_id=b"\x07" * 16, span_id=b"\xff" * 8, name="GET /")
    non_llm.attributes.append(kv("http.request.method", "GET"))
    return request


def test_whole_ingest_from_otlp_spans(db_url):
    pytest.importorskip("costline.processor.ingest.normalize")
    from costline import attributes as A

    pipeline = pipeline_for(db_url)
    chat = {A.GEN_AI_REQUEST_MODEL: "gpt-4o", A.GEN_AI_RESPONSE_MODEL: "gpt-4o-2024-08-06",
            A.GEN_AI_USAGE_INPUT_TOKENS: 1_500_000, A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: 1_000_000,
            A.GEN_AI_USAGE_OUTPUT_TOKENS: 250_000, A.GEN_AI_RESPONSE_ID: "chatcmpl-1"}
    keyed = {A.GEN_AI_REQUEST_MODEL: "gpt-4o-mini", A.GEN_AI_USAGE_INPUT_TOKENS: 10,
             A.GEN_AI_USAGE_OUTPUT_TOKENS: 1, A.COSTLINE_API_KEY_FINGERPRINT: ALICE_KEY, A.COSTLINE_TEAM: "marketing"}
    request = otlp_request([chat, keyed], {A.SERVICE_NAME: "search-api", A.COSTLINE_TEAM: "marketing"})
    result = pipeline.ingest(request)
    assert (result.accepted_spans, result.rejected_spans) == (3, 0)
    assert pipeline.ingest(request).accepted_spans == 3  # the retry is accepted, and not billed again
    rows = {r["model"]: r for r in pipeline.ledger.usage(NOV1, DEC1, ["team", "user", "model"])}
    # override for gpt-4o covers the dated snapshot: 0.5M uncached * 2 + 1M cached * 1 + 0.25M * 8 = 4
    big = rows["gpt-4o-2024-08-06"]
    assert (big["team"], big["cost_usd"], big["requests"], big["cache_read_tokens"]) == (
        "marketing", Decimal("4"), 1, 1_000_000)
    assert (rows["gpt-4o-mini"]["team"], rows["gpt-4o-mini"]["user"]) == ("engineering", "alice")  # the key won
    assert sample(pipeline, "costline_ownership_conflicts_total") == 1
    pipeline.close()
