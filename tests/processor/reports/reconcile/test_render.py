"""The reconciliation as JSON and CSV: money as plain decimals, every cell quoted once (through `formats`)."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal

from costline.processor.reports.reconcile.compare import BilledCheck, OwnerRef, Result, Row
from costline.processor.reports.reconcile.render import render


def _result(owner: OwnerRef, *, provider_pico: int, ledger_pico: int) -> Result:
    row = Row("openai", date(2026, 11, 3), "gpt-4o", owner, "", ledger_requests=1,
              provider_cost_pico=provider_pico, ledger_cost_pico=ledger_pico)
    billed = [BilledCheck(date(2026, 11, 3), "project_id", "p", Decimal("0.0000001"), 1)]
    return Result("openai", date(2026, 11, 1), date(2026, 12, 1), [row], billed, ["file"])


def test_one_pico_dollar_is_written_as_a_plain_decimal_never_in_exponent_form():
    # `str(Decimal(1) / 10**12)` is `1E-12`: a reader takes that for a float or for text, not for money.
    text = render(_result(OwnerRef("team", "search", "acme", "search"), provider_pico=2, ledger_pico=1), "json")
    assert "E-" not in text and "e-" not in text
    doc = json.loads(text)
    row = doc["rows"][0]
    assert row["drift_usd"] == "0.000000000001" and row["ledger_cost_usd"] == "0.000000000001"
    assert doc["totals"]["drift_usd"] == "0.000000000001"
    assert doc["billed"][0]["billed_usd"] == "0.0000001"
    assert Decimal(doc["billed"][0]["difference_usd"]) == Decimal("0.0000001") - Decimal("1e-12")
    csv_text = render(_result(OwnerRef("team", "search", "acme", "search"), provider_pico=2, ledger_pico=1), "csv")
    assert "E-" not in csv_text


def test_a_cell_with_a_comma_is_quoted_once():
    text = render(_result(OwnerRef("team", "a,b", "acme", "a,b"), provider_pico=5, ledger_pico=5), "csv")
    assert '"""' not in text
    assert ',"a,b",acme,"a,b",' in text
    header, row = csv.reader(io.StringIO(text, newline=""))
    assert dict(zip(header, row, strict=True))["owner"] == "a,b"
    assert text.endswith("\r\n") and text.count("\r\n") == 2  # RFC 4180 lines, as every CSV the processor writes


def test_a_formula_in_a_reconciliation_cell_is_neutralised_once():
    text = render(_result(OwnerRef("team", "=1+1", "acme", "=1+1"), provider_pico=5, ledger_pico=5), "csv")
    header, row = csv.reader(io.StringIO(text, newline=""))
    assert dict(zip(header, row, strict=True))["owner"] == "'=1+1"
