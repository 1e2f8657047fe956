"""Implausible usage is not billed as reported: a call over `limits.max_tokens_per_call` is rejected (the sender is
told, the rejection counted), cache counts above the input that includes them are clamped to it (counted). Through
the real OTLP/HTTP receiver, on SQLite and on the real PostgreSQL server.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from costline.processor.config.core import ConfigError, parse_config
from tests.processor.otlp import llm_span, request_of
from tests.processor.served import CONFIG

from .ingesting import Ingest, start

GOOD_COST = Decimal("0.0036")  # 1000 input at $2 + 200 output at $8 per MTok (the config's gpt-4o override)


def engineering(ingest: Ingest) -> dict | None:
    rows = [r for r in ingest.usage() if r["team"] == "engineering"]
    return rows[0] if rows else None


def test_a_trillion_tokens_are_rejected_and_counted(ingest: Ingest) -> None:
    good = llm_span(team="engineering")
    absurd = llm_span(team="engineering", input_tokens=10**11)  # would bill $200,000
    response = ingest.export(request_of([good, absurd]))
    assert response.partial_success.rejected_spans == 1
    assert "limits.max_tokens_per_call" in response.partial_success.error_message
    row = engineering(ingest)
    assert row is not None and row["requests"] == 1 and Decimal(row["cost_usd"]) == GOOD_COST
    assert ingest.sample("costline_spans_received_total", result="rejected") == 1
    assert ingest.sample("costline_span_values_bounded_total", field="tokens", action="rejected") == 1


def test_cache_read_above_the_input_is_clamped_and_counted(ingest: Ingest) -> None:
    ingest.export(request_of([llm_span(team="engineering", cache_read=100_000)]))  # on a 1000-token input
    row = engineering(ingest)
    assert row is not None
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"]) == (0, 1000, 200)
    assert Decimal(row["cost_usd"]) == Decimal("0.0026")  # 1000 cache read at $1 + 200 output at $8 per MTok
    assert ingest.sample("costline_span_values_bounded_total", field="cache_read_tokens", action="clamped") == 1


def test_anthropic_cache_above_its_uncached_input_is_normal() -> None:
    from costline.processor.ingest.normalize import normalize_span

    span = llm_span(provider="anthropic", model="claude-sonnet-4-5", input_tokens=50, cache_read=5000)
    call = normalize_span(span, {}, "costline.instrumentation")
    assert call is not None and call.cache_read_tokens == 5000 and call.adjusted == ()


def test_the_limit_is_configurable(tmp_path: Path) -> None:
    service = start(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}", CONFIG + "limits: {max_tokens_per_call: 1500}\n")
    try:
        ingest = Ingest(service)
        response = ingest.export(request_of([llm_span(team="engineering"),  # 1200 tokens
                                             llm_span(team="engineering", input_tokens=1400)]))
        assert response.partial_success.rejected_spans == 1
        assert "1600 tokens" in response.partial_success.error_message
        assert engineering(ingest)["requests"] == 1
    finally:
        service.stop(2)


@pytest.mark.parametrize(("value", "rule"), [(0, "greater than or equal to 1"),
                                             (10**12 + 1, "less than or equal to 1000000000000"),
                                             ("many", "valid integer")])
def test_config_errors_name_the_key_and_the_rule(value: object, rule: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"limits": {"max_tokens_per_call": value}})
    assert err.value.errors[0].startswith("limits.max_tokens_per_call: ") and rule in err.value.errors[0]
    with pytest.raises(ConfigError) as err:
        parse_config({"limits": {"max_tokens": 5}})
    assert err.value.errors == ["limits.max_tokens: unknown key (check the spelling against docs/configuration.md)"]
    assert parse_config({}).limits.max_tokens_per_call == 10_000_000
