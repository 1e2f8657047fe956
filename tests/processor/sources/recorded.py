"""Recorded span fixtures: what a real instrumentation package exported, replayed through a real pipeline.

A fixture is one JSON file under `tests/fixtures/spans/<source>/<scenario>.json`, written by the script that recorded
it (named in the file, so anyone can re-record it against a newer release):

    {
      "source": "litellm",                      # the `LLMCall.source` its calls must carry
      "package": "litellm", "version": "1.77.0",  # what produced the spans (several: "package": "a + b")
      "runtime": "python 3.11.7",                # or "node v20.x"
      "recorded_by": "scripts/record-spans/python/litellm_sdk.py",
      "workload": "chat, stream, cached chat, embeddings against costline.testing.fake_provider",
      "requests": [ <OTLP/JSON ExportTraceServiceRequest>, ... ],   # each as one export, in the order sent
      "expected": [ {"provider": "openai", "model": "gpt-4o-2024-08-06", "operation": "chat",
                     "input_tokens": 600, "cache_read_tokens": 400, "output_tokens": 50, ...}, ... ]
    }

A fixture may also carry `"known_failure": "why"`: a workload Costline does not bill exactly yet (the replay test
expects it to fail, strictly, so the note goes the day it passes).

`expected` holds one entry per API call the workload made (billing semantics: `input_tokens` is the uncached input;
any `model.BILLABLE_UNITS` attribute may be given, absent ones are 0; `"usage_missing": true` for a call whose spans
carry no usage). `bill` replays the requests (each its own export, through `Pipeline.ingest`, the OTLP receivers' own
entry point) into a fresh ledger and returns what the ledger billed per (provider, model, operation); `expected_rows`
folds the expectation the same way, so a test compares the two and then checks the cost by hand.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from costline.processor.config.core import parse_config
from costline.processor.http.otlp_http import decode_json
from costline.processor.ledger import Ledger
from costline.processor.model import BILLABLE_UNITS
from costline.processor.service import assemble_pipeline

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "spans"
UNITS = tuple(unit.attribute for unit in BILLABLE_UNITS)
KEY = ("provider", "model", "operation")


@dataclass(frozen=True)
class Fixture:
    path: Path
    meta: dict[str, Any]
    requests: list[bytes]
    """Each export's body, as OTLP/JSON."""

    @property
    def expected(self) -> list[dict[str, Any]]:
        return self.meta["expected"]

    @property
    def last_end(self) -> datetime:
        ends = [int(span.get("endTimeUnixNano", 0)) for body in self.requests for rs in json.loads(body)["resourceSpans"]
                for ss in rs.get("scopeSpans", []) for span in ss.get("spans", [])]
        return datetime.fromtimestamp(max(ends) / 1e9, tz=timezone.utc)


def load(path: Path) -> Fixture:
    document = json.loads(path.read_text())
    for key in ("source", "package", "version", "recorded_by", "requests", "expected"):
        if key not in document:
            raise ValueError(f"{path}: fixture lacks {key!r}")
    return Fixture(path, document, [json.dumps(r).encode() for r in document["requests"]])


def every_fixture() -> list[Path]:
    return sorted(FIXTURES.glob("*/*.json"))


def bill(fixture: Fixture, db_url: str, *, config: dict | None = None,
         order: Iterable[int] | None = None) -> tuple[dict[tuple[str, str, str], dict[str, int]], Ledger]:
    """Replay the fixture's exports (in `order`, default as recorded) into a fresh pipeline on `db_url`; the ledger's
    rows folded per (provider, model, operation): requests, usage missing, unpriced, each unit, cost (pico)."""
    now = fixture.last_end + timedelta(minutes=1)
    ledger = Ledger(db_url)
    pipeline = assemble_pipeline(parse_config(config or {}), ledger, clock=lambda: now)
    try:
        for i in (order if order is not None else range(len(fixture.requests))):
            pipeline.ingest(decode_json(fixture.requests[i]))
    finally:
        pipeline.close()
    rows = ledger.usage(now - timedelta(days=40), now + timedelta(hours=2), list(KEY))
    folded: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        target = folded[tuple(row[k] for k in KEY)]
        target["requests"] += row["requests"]
        target["usage_missing"] += row["usage_missing_requests"]
        target["unpriced"] += row["unpriced_requests"]
        target["cost_pico"] += int(row["cost_usd"] * 10**12)
        for unit in BILLABLE_UNITS:
            target[unit.attribute] += row[unit.slot.column]
    return {k: dict(v) for k, v in folded.items()}, ledger


def expected_rows(fixture: Fixture) -> dict[tuple[str, str, str], dict[str, int]]:
    folded: dict[tuple[str, str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for call in fixture.expected:
        unknown = set(call) - {*KEY, *UNITS, "usage_missing", "note"}
        if unknown:
            raise ValueError(f"{fixture.path}: unknown expected keys {sorted(unknown)}")
        target = folded[tuple(call[k] for k in KEY)]
        target["requests"] += 1
        target["usage_missing"] += 1 if call.get("usage_missing") else 0
        for unit in UNITS:
            target[unit] += call.get(unit, 0)
    return {k: dict(v) for k, v in folded.items()}


def billed_units(billed: dict[tuple[str, str, str], dict[str, int]]) -> dict[tuple[str, str, str], dict[str, int]]:
    """`bill`'s result without cost and unpriced (compared with `expected_rows`)."""
    return {k: {n: v for n, v in row.items() if n not in ("cost_pico", "unpriced")} for k, row in billed.items()}


def assert_costs_within_a_nano_dollar(billed: dict[tuple[str, str, str], dict[str, int]],
                                      want: dict[tuple[str, str, str], object]) -> None:
    """Each (provider, model, operation)'s billed cost within 1e-9 USD of the hand computation `want` (USD)."""
    from decimal import Decimal

    for key, usd in want.items():
        assert abs(Decimal(billed[key]["cost_pico"]) / 10**12 - Decimal(usd)) <= Decimal("1e-9"), key

