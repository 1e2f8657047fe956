"""Spans without trace or span ids (not valid OTLP, but hand-written OTLP/JSON senders omit them): billed, never a
batch that answers 503 for ever; an exporter's retry of one that carries its times is billed once.

Through the real OTLP/HTTP receiver, on SQLite and on the real PostgreSQL server.
"""

from __future__ import annotations

from decimal import Decimal

from costline.processor.ledger import Ledger
from costline.processor.model import Entry, Owner, call_keys
from tests.processor.clock import now_s
from tests.processor.conftest import make_call
from tests.processor.otlp import llm_span, otlp_json, request_of

from .ingesting import Ingest

# The span, as a hand-written OTLP/JSON sender posts it: no traceId, no spanId, no times.
BARE = {"resourceSpans": [{"scopeSpans": [{"spans": [{
    "name": "chat gpt-4o",
    "attributes": [
        {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
        {"key": "gen_ai.request.model", "value": {"stringValue": "gpt-4o"}},
        {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "1000"}},
        {"key": "costline.team", "value": {"stringValue": "engineering"}},
    ],
}]}]}]}


def engineering(ingest: Ingest) -> dict:
    (row,) = [r for r in ingest.usage() if r["team"] == "engineering"]
    return row


def test_a_span_without_ids_is_billed_not_refused(ingest: Ingest) -> None:
    ingest.export_json(BARE)
    row = engineering(ingest)
    assert (row["requests"], row["input_tokens"], row["unpriced_requests"]) == (1, 1000, 0)
    assert Decimal(row["cost_usd"]) > 0  # gpt-4o at list price (no provider: not the config's openai override)
    # Nothing tells a second copy without ids or times from a second call: it is billed again, not dropped.
    ingest.export_json(BARE)
    assert engineering(ingest)["requests"] == 2
    assert ingest.sample("costline_spans_received_total", result="billed") == 2


def test_an_id_less_span_in_a_retried_batch(ingest: Ingest) -> None:
    with_ids = llm_span(team="engineering")
    without = llm_span(team="engineering", input_tokens=3000)
    without.ClearField("trace_id")
    without.ClearField("span_id")
    batch = otlp_json(request_of([with_ids, without]))
    del batch["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["traceId"]
    del batch["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["spanId"]
    ingest.export_json(batch)
    ingest.export_json(batch)  # the exporter's retry: the span with ids is already billed, the other one too
    ingest.export(request_of([with_ids, without]))  # the same batch again, as protobuf
    assert engineering(ingest)["requests"] == 2
    assert ingest.sample("costline_spans_received_total", result="duplicate") == 4


def test_ledger_records_a_batch_of_only_id_less_calls(db_url: str) -> None:
    ledger = Ledger(db_url)
    owner = Owner("acme", "search", "", "", "", "", "", "")
    bare = make_call(1, trace=b"")
    bare.span_id = b""
    bare.start_time_unix_nano = 0  # no times either: no identity at all
    timed = make_call(2, trace=b"")
    try:
        assert len(ledger.record([Entry(bare, owner, 1, call_keys(bare))], now=now_s())) == 1
        assert len(ledger.record([Entry(timed, owner, 1, call_keys(timed))], now=now_s())) == 1
        assert ledger.record([Entry(timed, owner, 1, call_keys(timed))], now=now_s()) == []  # its retry
    finally:
        ledger.close()
