"""The wall clock for tests that call the processor's modules directly: they are handed the time (`now`, a clock)
and never read it themselves, so a test that means "now" says so here."""

from __future__ import annotations

from costline.processor.clock import system_clock


def now_s() -> int:
    """Unix seconds now: what `Service` hands the ledger's writes."""
    return int(system_clock().timestamp())
