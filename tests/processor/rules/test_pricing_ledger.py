"""The price context and the new units through the ledger (SQLite and PostgreSQL): a flex span through
`Pipeline.ingest` lands at the flex price and `costline usage --group-by service_tier` shows it; a unit its model
cannot price waits in its unpriced slot and a reprice bills it once there is a price, in the row's context."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal

from genai_prices import calc_price

from costline import attributes as A
from costline.cli import main
from costline.processor.config.core import PriceOverride, parse_config
from costline.processor.ledger import Ledger
from costline.processor.model import Entry, Owner, call_keys
from costline.processor.pricing import Pricer
from costline.processor.pricing.rates import usage_of
from costline.processor.reports.reprice import reprice, rerate
from costline.processor.service import assemble_pipeline
from tests.processor.clock import now_s
from tests.processor.conftest import at, make_call
from tests.processor.ingest.test_pipeline import otlp_request

NOW = datetime(2026, 11, 20, 15, tzinfo=timezone.utc)
NOV1 = datetime(2026, 11, 1, tzinfo=timezone.utc)
DEC1 = datetime(2026, 12, 1, tzinfo=timezone.utc)
SEARCH = Owner("acme", "search", "", "", "", "", "", "prod")


def test_a_flex_span_is_billed_at_the_flex_price_and_grouped_by_its_tier(db_url, tmp_path, capsys):
    pipeline = assemble_pipeline(parse_config({}), Ledger(db_url), clock=lambda: NOW)
    usage = {A.GEN_AI_REQUEST_MODEL: "gpt-5", A.GEN_AI_RESPONSE_MODEL: "gpt-5", A.GEN_AI_USAGE_INPUT_TOKENS: 1_000_000,
             A.GEN_AI_USAGE_OUTPUT_TOKENS: 100_000}
    request = otlp_request([{**usage, A.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER: "flex", A.GEN_AI_RESPONSE_ID: "r-1"},
                            {**usage, A.GEN_AI_OPENAI_RESPONSE_SERVICE_TIER: "default", A.GEN_AI_RESPONSE_ID: "r-2"}],
                           {A.SERVICE_NAME: "search-api", A.COSTLINE_TEAM: "search"})
    assert pipeline.ingest(request).rejected_spans == 0
    rows = {r["service_tier"]: r["cost_usd"] for r in pipeline.ledger.usage(NOV1, DEC1, ["service_tier"])}
    pipeline.close()
    when = datetime(2026, 11, 20, 9, tzinfo=timezone.utc)
    flex = calc_price(usage_of(make_call(model="gpt-5", input_tokens=1_000_000, output=100_000)), "gpt-5",
                      provider_id="openai", genai_request_timestamp=when, price_context={"service_tier": "flex"})
    # flex: $0.625 input, $5 output per MTok; standard: $1.25 and $10
    assert rows == {"flex": flex.total_price, "": Decimal("2.25")} and flex.total_price == Decimal("1.125")

    config = tmp_path / "costline.yaml"
    config.write_text("{}\n")
    assert main(["usage", "--from", "2026-11-01", "--to", "2026-12-01", "--group-by", "service_tier",
                 "--format", "json", "--config", str(config), "--db", db_url]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["group_by"] == ["service_tier"]
    assert {row["service_tier"]: Decimal(str(row["cost_usd"])) for row in report["rows"]} == {
        "flex": Decimal("1.125"), "": Decimal("2.25")}


def test_units_a_model_cannot_price_wait_for_a_reprice_in_the_rows_context(db_url):
    """gpt-5 has no code-execution price: the flex call's tokens are billed at ingest, its two code executions wait
    in their unpriced slot; an override for flex code executions prices them, and only them, on reprice."""
    ledger = Ledger(db_url)
    call = make_call(1, model="gpt-5", input_tokens=1000, output=100, start=at(2026, 11, 10))
    call.service_tier, call.code_executions = "flex", 2
    rates = Pricer([]).rates("openai", "gpt-5", call.start_time_unix_nano, "flex")
    cost, unpriced = rates.price(call)
    assert unpriced == ("code_execution",) and cost == 1000 * 625_000 + 100 * 5_000_000
    ledger.record([Entry(call, SEARCH, cost, call_keys(call), unpriced_units=unpriced)], now=now_s())
    [row] = ledger.usage(NOV1, DEC1, ["service_tier"])
    assert (row["unpriced_requests"], row["unpriced_code_executions"], row["code_executions"]) == (0, 2, 2)

    assert reprice(ledger, Pricer([]), NOV1) == 0  # still no price: left waiting, not billed $0
    assert rerate(ledger, Pricer([]), NOV1, now=now_s()) == (0, 0)  # a re-rate cannot bill the row whole either
    standard = PriceOverride(provider="openai", model="gpt-5", input_per_mtok=Decimal(1), output_per_mtok=Decimal(1),
                             code_execution_per_k=Decimal(100))
    assert reprice(ledger, Pricer([standard]), NOV1) == 0  # a standard-tier price is no flex price
    flex = standard.model_copy(update={"service_tier": "flex", "code_execution_per_k": Decimal(30)})
    assert reprice(ledger, Pricer([flex]), NOV1) == 1
    [row] = ledger.usage(NOV1, DEC1, ["service_tier"])
    assert (row["service_tier"], row["unpriced_code_executions"]) == ("flex", 0)
    assert row["cost_usd"] == Decimal(cost + 2 * 30_000_000_000) / 10**12
    ledger.close()
