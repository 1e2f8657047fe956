"""The processor's layers import downward only: the ledger is a store that knows nothing of pricing, ownership or
normalisation; money and time units are spelled in one module."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[3] / "processor" / "src" / "costline" / "processor"


def test_the_ledger_loads_no_pricing_ownership_or_normalisation():
    probe = (
        "import sys, costline.processor.ledger\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('costline.processor.') or m == 'genai_prices')))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert "costline.processor.ledger" in loaded
    forbidden = ("costline.processor.pricing", "costline.processor.ownership", "costline.processor.normalize",
                 "costline.processor.config", "costline.processor.pipeline", "genai_prices")
    assert [m for m in loaded if m.startswith(forbidden)] == []


MONEY_AND_TIME_LITERALS = re.compile(r"1e12|1e-12|10 ?\*\* ?12|1_000_000_000_000|3_600_000_000_000|3600 ?\* ?10 ?\*\* ?9")
BOUNDS_THAT_ARE_NOT_UNITS = ("MAX_TOKENS = ", "MAX_BUDGET_USD = ", "MAX_AMOUNT_USD = ")
"""A trillion tokens per call, a trillion dollars per budget or chargeback amount: limits that happen to be 10^12,
not the money unit."""


def test_money_and_time_units_are_spelled_once():
    found = [f"{path.relative_to(SOURCE)}:{n}: {line.strip()}"
             for path in sorted(SOURCE.rglob("*.py")) if path.name != "units.py"
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if MONEY_AND_TIME_LITERALS.search(line) and not any(name in line for name in BOUNDS_THAT_ARE_NOT_UNITS)]
    assert found == []
