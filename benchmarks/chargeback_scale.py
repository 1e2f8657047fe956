"""The chargeback statement at many span-minted teams: what bounds its work and size (docs/chargeback.md, "Many
teams"; issue 18 measured 159 MB of JSON in 19 s and the open-month gauges burning 82 % of a core while idle at 100k
teams).

A SQLite ledger gets `--teams` teams (one call each, each a different cost, in one org) through the pipeline. Then,
with the default limits (`metrics.cardinality_limit` 1000): the statement (`statement_for`, wall and CPU time, its
teams), its JSON as `costline chargeback` writes it (bytes), the first page of `GET /api/v1/chargeback` (bytes), and
the open-month gauges' refresh (`ChargebackTotals.refresh`) when the ledger changed and when it did not (the idle
timer's case: a digest of the inputs, no statement).

    .venv/bin/python benchmarks/chargeback_scale.py [--teams 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from costline.processor.clock import system_clock
from costline.processor.metrics.chargeback_gauges import ChargebackTotals
from costline.processor.model import LLMCall
from costline.processor.reports.chargeback.report import Page, chargeback_page, statement_for
from costline.processor.reports.chargeback.statement import Period
from costline.processor.service import build_pipeline

CONFIG = """timezone: UTC
prices:
  - {provider: openai, model: bench, input_per_mtok: 1, output_per_mtok: 0}
chargeback:
  default: {markup_pct: 15, platform_fee_usd: 10}
  shared_costs:
    - {name: infra, monthly_usd: 1000, split: proportional}
"""
NOVEMBER = Period(2026, 11)
START_NS = int(datetime(2026, 11, 10, 12, tzinfo=timezone.utc).timestamp()) * 10**9


def call(i: int) -> LLMCall:
    return LLMCall(provider="openai", request_model="bench", response_model="bench", operation="chat",
                   input_tokens=1000 + i, output_tokens=0, has_usage=True, trace_id=i.to_bytes(16, "big"),
                   span_id=i.to_bytes(8, "big"), start_time_unix_nano=START_NS,
                   owner={"costline.org": "acme", "costline.team": f"team-{i:06d}"})


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teams", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="costline-chargeback-bench-"))
    (work / "costline.yaml").write_text(CONFIG)
    pipeline = build_pipeline(str(work / "costline.yaml"), f"sqlite:///{work / 'ledger.db'}")
    for first in range(0, args.teams, 5000):
        pipeline.ingest_calls([call(i) for i in range(first, min(first + 5000, args.teams))])
    args_ = (pipeline.config, pipeline.ledger)
    statement, wall, cpu = timed(lambda: statement_for(*args_, NOVEMBER, clock=system_clock))
    print(f"{args.teams:,} teams in the ledger")
    print(f"statement_for          {wall:7.2f} s wall {cpu:7.2f} s CPU   {len(statement.teams):,} teams on it")
    (_, body, _), wall, cpu = timed(lambda: chargeback_page(*args_, NOVEMBER, None, "json", clock=system_clock))
    print(f"whole JSON (CLI)       {wall:7.2f} s wall {cpu:7.2f} s CPU   {len(body):,} bytes")
    (_, body, token), wall, cpu = timed(lambda: chargeback_page(*args_, NOVEMBER, None, "json", page=Page(), clock=system_clock))
    print(f"API JSON, first page   {wall:7.2f} s wall {cpu:7.2f} s CPU   {len(body):,} bytes, next page: "
          f"{token is not None}")
    (_, body, _), wall, cpu = timed(lambda: chargeback_page(*args_, NOVEMBER, None, "html", page=Page(), clock=system_clock))
    print(f"API HTML, first page   {wall:7.2f} s wall {cpu:7.2f} s CPU   {len(body):,} bytes")
    totals = ChargebackTotals(pipeline.ledger, lambda: pipeline.config,
                              clock=lambda: datetime(2026, 11, 20, tzinfo=timezone.utc), duty=0)
    _, wall, cpu = timed(totals.refresh)
    print(f"gauges, changed        {wall:7.2f} s wall {cpu:7.2f} s CPU   statements made: {totals.builds}")
    _, wall, cpu = timed(totals.refresh)
    print(f"gauges, unchanged      {wall:7.2f} s wall {cpu:7.2f} s CPU   statements made: {totals.builds}")
    pipeline.close()


if __name__ == "__main__":
    main()
