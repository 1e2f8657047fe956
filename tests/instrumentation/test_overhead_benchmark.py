"""A smoke run of `benchmarks/instrumentation_overhead.py`, so the benchmark cannot rot.

It times nothing worth reading (two rounds of two calls): it checks that every variant, in both SDK setups, starts,
makes its calls through the real openai SDK and reports, and that the report names every ratio the docs quote.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).parents[2] / "benchmarks" / "instrumentation_overhead.py"

pytest.importorskip("opentelemetry.instrumentation.genai.openai", reason="peer instrumentations not installed")
pytest.importorskip("opentelemetry.instrumentation.openai", reason="peer instrumentations not installed")


def test_benchmark_reports_every_ratio_in_both_sdk_setups() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARK), "--rounds", "2", "--calls", "2", "--processes", "1"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for sdk in ("traces", "full"):
        assert f"SDK setup '{sdk}'" in result.stdout
        # Ratios are printed only when a peer added a positive cost, which two calls need not show; the overhead
        # line is always there.
        assert f"[{sdk}] Costline overhead relative to the bare call" in result.stdout
    for variant in ("baseline", "costline", "guarded", "official", "openllmetry", "sdk_span", "sampled_out"):
        assert sum(line.startswith(variant + " ") for line in lines) == 2, variant  # a row in each setup
