"""Month boundaries that fall inside a ledger hour (zones whose offset is not whole hours), and the months before a
ledger's first call or after today: what a statement bills there."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from costline.processor.chargeback.report import statement_for
from costline.processor.chargeback.statement import Period
from costline.processor.service import build_pipeline
from tests.processor.core.conftest import make_call

PRICE = "prices:\n  - {provider: openai, model: one-dollar, input_per_mtok: 1, output_per_mtok: 0}\n"
"""A million input tokens of `one-dollar` cost exactly $1."""


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp()) * 10**9


def one_dollar(n: int, when: str, team: str = "search", org: str = "acme"):
    return make_call(n, model="one-dollar", input_tokens=10**6, output=0, team=team, org=org, start=ns(when))


def pipeline_with(tmp_path, config: str, calls: list):
    (tmp_path / "costline.yaml").write_text(config)
    pipeline = build_pipeline(str(tmp_path / "costline.yaml"), f"sqlite:///{tmp_path / 'ledger.db'}")
    pipeline.ingest_calls(calls)
    return pipeline


def statement(pipeline, period: str):
    return statement_for(pipeline.config, pipeline.ledger, pipeline.outcomes, Period.parse(period))


@pytest.mark.parametrize(("zone", "instant"), [("Asia/Kolkata", "2026-10-31T18:45:00+00:00"),
                                               ("America/St_Johns", "2026-11-01T02:45:00+00:00")])
def test_an_hour_holding_the_month_boundary_is_billed_in_one_month(tmp_path, zone, instant):
    """Midnight of November 1st is 18:30 UTC in Kolkata and 02:30 UTC in St John's: the span's ledger hour holds
    the boundary. It is billed in exactly one month, and the two months add up to the dollar it cost."""
    pipeline = pipeline_with(tmp_path, f"timezone: {zone}\n{PRICE}chargeback:\n  default: {{markup_pct: 0}}\n",
                             [one_dollar(1, instant)])
    try:
        months = {p: statement(pipeline, p) for p in ("2026-10", "2026-11")}
    finally:
        pipeline.close()
    billed = {p: [t.key for t in s.teams] for p, s in months.items()}
    assert sorted(billed.values()) == [[], ["acme/search"]], billed
    # The rule: a month takes the UTC hours that start in it. Kolkata's 18:00 UTC hour starts on October 31st
    # (23:30 local), St John's 02:00 UTC hour too (23:30 local).
    assert billed["2026-10"] == ["acme/search"]
    assert sum(s.total for s in months.values()) == Decimal("1.00")
