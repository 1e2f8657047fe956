"""`make demo`, the main job, run for real (short): it must finish on its own, exit 0 and print every part of its
report from the ledger — the over-budget team, the most restrictive budget per key, the unpriced model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "demo" / "run.py"


def test_demo_runs_to_its_report():
    # Research's team budget ($0.25) is blown after ~11 of its o4-mini calls; on a loaded 2-core machine the
    # workload manages 2-3 a second, so 10 s leaves a margin that 4 s did not.
    result = subprocess.run([sys.executable, str(DEMO), "--duration", "10"], capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for section in ("Spend per team and model", "Budget burn", "Most restrictive budget per user and key",
                    "Unpriced models", "Where to look next"):
        assert section in out, f"report lacks {section!r}:\n{out}"
    report = out[out.index("Spend per team and model"):]
    assert "OVER BUDGET" in report  # the research team's budget is set to be blown
    assert "acme-llama-70b" in report and "UNPRICED" in report  # never shown as $0
    assert "key alice-laptop" in report and "bound by key acme/search/alice/alice-laptop daily" in report
    assert "$-" not in report  # negative remaining budgets read -$x
