"""`formats`: money as text and JSON, cents, CSV cells and the one CSV writer."""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from costline.processor.formats import (
    cents_text,
    csv_cell,
    csv_text,
    decimal_text,
    json_default,
    json_value,
    usd_text,
)
from costline.processor.units import pico_to_usd


@pytest.mark.parametrize("pico, text", [(0, "0.000000000000"), (1, "0.000000000001"),
                                        (1_234_500_000, "0.001234500000"), (-7 * 10**12, "-7.000000000000")])
def test_usd_text_keeps_every_digit_and_never_an_exponent(pico, text):
    assert usd_text(pico_to_usd(pico)) == text
    assert usd_text(Decimal("1E-12")) == "0.000000000001"  # what str() would have written


def test_decimal_text_trims_and_cents_text_rounds_half_up():
    assert [decimal_text(Decimal(v)) for v in ("0.000123000", "15.00", "2.50", "1E+1")] == ["0.000123", "15", "2.5",
                                                                                          "10"]
    assert decimal_text(None) == ""
    assert [cents_text(Decimal(v)) for v in ("1234.505", "0.004", "-0.005", "1000000")] == [
        "1,234.51", "0.00", "-0.01", "1,000,000.00"]


def test_json_money_is_a_plain_decimal_string():
    doc = {"usd": Decimal("1E-12"), "day": date(2026, 11, 1), "at": datetime(2026, 11, 1, tzinfo=timezone.utc)}
    assert json.loads(json.dumps(doc, default=json_default)) == {
        "usd": "0.000000000001", "day": "2026-11-01", "at": "2026-11-01T00:00:00+00:00"}
    assert json_value(math.inf) is None and json_value(3) == 3
    with pytest.raises(TypeError):
        json.dumps({"x": object()}, default=json_default)


def test_csv_text_writes_each_cell_once_with_rfc_4180_lines():
    text = csv_text(("team", "cost"), [("a,b", Decimal("-1.5")), ('say "hi"', None), ("=cmd", 2)])
    assert text == 'team,cost\r\n"a,b",-1.5\r\n"say ""hi""",\r\n"\'=cmd",2\r\n'
    assert csv_text(("n",), [(Decimal("1E-12"),)]) == "n\r\n0.000000000001\r\n"
    assert csv_text(("n",), [(1,)], cell=lambda v: f"<{v}>") == "n\r\n<1>\r\n"
    assert csv_cell(Decimal("1E-12")) == "0.000000000001"


SOURCE = Path(__file__).resolve().parents[2] / "processor" / "src" / "costline" / "processor"
PICO_ARITHMETIC = re.compile(r"[/*]\s*PICO_PER_USD\b|\bPICO_PER_USD\s*(\*(?!\*)|/(?!/))")
"""Dividing or multiplying by the money unit: converting pico-dollars by hand instead of with `units`."""


def test_pico_dollars_are_converted_only_in_units():
    found = [f"{path.relative_to(SOURCE)}:{n}: {line.strip()}"
             for path in sorted(SOURCE.rglob("*.py")) if path.name != "units.py"
             for n, line in enumerate(path.read_text("utf-8").splitlines(), 1) if PICO_ARITHMETIC.search(line)]
    assert found == []
