"""Label bombs: a megabyte model name, control characters in provider, operation, service and response id. The call
is still billed (unpriced when its bounded model has no price), every label and ledger value is bounded, the scrape
stays small, and what was cut is counted. Through the real OTLP/HTTP receiver, on SQLite and real PostgreSQL.
"""

from __future__ import annotations

import re

from costline.processor.ingest.normalize import normalize_span
from costline.processor.ingest.normalize.bounds import bounded_label
from costline.processor.model import MAX_LABEL_LENGTH
from tests.processor.otlp import attributes, llm_span, request_of

from .ingesting import Ingest

MEGABYTE_MODEL = "gpt-4o-" + "A" * 1_000_000


def bomb(**extra: str):
    span = llm_span(team="engineering", model=MEGABYTE_MODEL)
    kept = [kv for kv in span.attributes if kv.key not in extra]
    del span.attributes[:]
    span.attributes.extend(kept + attributes(extra))
    return span


def label_values(metrics: str) -> list[str]:
    return re.findall(r'="((?:[^"\\]|\\.)*)"', metrics)


def test_a_megabyte_model_name_is_billed_bounded_and_counted(ingest: Ingest) -> None:
    ingest.export(request_of([llm_span(team="engineering")]))  # a reference call
    baseline = len(ingest.metrics())
    for _ in range(3):  # three bombs: they must not add three megabytes each to every scrape
        ingest.export(request_of([bomb()]))
    metrics = ingest.metrics()
    assert len(metrics) < baseline + 20_000
    assert max(len(value) for value in label_values(metrics)) <= MAX_LABEL_LENGTH
    rows = {r["model"]: r for r in ingest.usage("model")}
    (cut,) = [model for model in rows if model != "gpt-4o"]
    assert cut == MEGABYTE_MODEL[:MAX_LABEL_LENGTH]
    assert rows[cut]["requests"] == 3 and rows[cut]["input_tokens"] == 3000  # billed: kept, not dropped
    assert rows[cut]["unpriced_requests"] == 3  # no price for that name: unpriced, never $0
    assert ingest.sample("costline_span_values_bounded_total", field="request_model", action="truncated") == 3
    assert ingest.sample("costline_span_values_bounded_total", field="response_model", action="truncated") == 3
    assert ingest.sample("costline_spans_received_total", result="billed") == 4


def test_control_characters_are_replaced_everywhere(ingest: Ingest) -> None:
    span = bomb(**{"gen_ai.request.model": "gpt-4o\r\n# HELP fake", "gen_ai.response.model": "gpt-4o\x1b[31m",
                   "gen_ai.provider.name": "open\x00ai", "gen_ai.operation.name": "chat\r",
                   "gen_ai.response.id": "chatcmpl-\x00nul"})
    request = request_of([span], resource={"service.name": "search\x00api\n"})
    ingest.export(request)
    ingest.export(request)  # a retry: the bounded response id is a usable dedup key on PostgreSQL too
    (row,) = ingest.usage("provider,model,operation,service")
    assert row == {**row, "provider": "open\ufffdai", "model": "gpt-4o\ufffd[31m", "operation": "chat\ufffd",
                   "service": "search\ufffdapi\ufffd", "requests": 1}
    metrics = ingest.metrics()
    for value in label_values(metrics):
        assert value.isprintable() and "\\n" not in value, value
    for field in ("request_model", "response_model", "provider", "operation", "service_name", "response_id"):
        # per span received, like costline_spans_received_total: the retry's copy too
        assert ingest.sample("costline_span_values_bounded_total", field=field, action="sanitised") == 2, field


def test_the_rule_is_one_definition() -> None:
    assert bounded_label("gpt-4o-2024-08-06") == ("gpt-4o-2024-08-06", ())
    assert bounded_label("x" * (MAX_LABEL_LENGTH + 1)) == ("x" * MAX_LABEL_LENGTH, ("truncated",))
    assert bounded_label("a\x00" + "b" * 300) == ("a\ufffd" + "b" * (MAX_LABEL_LENGTH - 2), ("truncated", "sanitised"))
    assert bounded_label("\ud800") == ("\ufffd", ("sanitised",))  # a lone surrogate from JSON cannot be UTF-8
    call = normalize_span(bomb(), {}, "costline.instrumentation")
    assert call is not None and len(call.request_model) == MAX_LABEL_LENGTH
    assert ("request_model", "truncated") in call.adjusted
