"""Month boundaries that fall inside a ledger hour (zones whose offset is not whole hours), and the months before a
ledger's first call or after today: what a statement bills there."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from costline.processor.clock import system_clock
from costline.processor.reports.chargeback.report import statement_for
from costline.processor.reports.chargeback.statement import Period
from costline.processor.service import build_pipeline
from tests.processor.conftest import make_call

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
    return statement_for(pipeline.config, pipeline.ledger, Period.parse(period), clock=system_clock)


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


FIXED = """timezone: UTC
orgs:
  - name: acme
    teams: [{name: search}, {name: research}]
  - name: globex
    teams: [{name: labs}]
chargeback:
  default: {markup_pct: 0, platform_fee_usd: 100}
  shared_costs:
    - {name: infra, monthly_usd: 50, split: proportional}
    - {name: gpus, monthly_usd: 1000, split: {search: 60, labs: 40}}
"""


def test_fixed_charges_start_with_the_orgs_first_month_and_never_in_the_future(tmp_path):
    """acme's first call is in 2026-03, globex's in 2026-05: no month before an org's first is charged its fee or
    its share of the shared costs (a fixed split's share of an org not started yet is charged to no one), and no
    month after the current one is charged anything."""
    pipeline = pipeline_with(tmp_path, PRICE + FIXED, [one_dollar(1, "2026-03-10T12:00:00+00:00"),
                                                       one_dollar(2, "2026-05-10T12:00:00+00:00", "labs", "globex")])
    try:
        for period in ("1999-01", "2026-02", "2099-12"):
            nothing = statement(pipeline, period)
            assert (nothing.teams, nothing.total) == ((), Decimal("0.00")), period
        march = statement(pipeline, "2026-03")
        assert [t.key for t in march.teams] == ["acme/search"]
        # search's $1, its fee, all of infra, its 60 % of gpus; labs' 40 % is not charged before globex starts.
        assert march.total == Decimal("1.00") + 100 + 50 + 600
        april = statement(pipeline, "2026-04")  # acme has started: its fee and shares go on without calls
        assert [t.key for t in april.teams] == ["acme/search"] and april.total == 100 + 50 + 600
        may = statement(pipeline, "2026-05")
        # infra by token cost: labs made May's only call.
        assert {t.key: t.total for t in may.teams} == {"acme/search": 100 + 600, "globex/labs": 1 + 100 + 400 + 50}
        # The HTML trend of March has no month before it to compare with.
        from costline.processor.reports.chargeback.report import chargeback_document

        html = chargeback_document(pipeline.config, pipeline.ledger, Period(2026, 3), None,
                                   "html", clock=system_clock)[1].decode()
        assert "No charges in 2026-02." in html
    finally:
        pipeline.close()


def test_a_configured_start_month(tmp_path):
    config = PRICE + FIXED.replace("chargeback:\n", "chargeback:\n  start: 2026-04\n")
    pipeline = pipeline_with(tmp_path, config, [one_dollar(1, "2026-03-10T12:00:00+00:00")])
    try:
        march = statement(pipeline, "2026-03")  # data, but before the start: its cost only
        assert [t.key for t in march.teams] == ["acme/search"] and march.total == Decimal("1.00")
        april = statement(pipeline, "2026-04")  # every org from the start on, with data or not (infra: evenly)
        assert {t.key: t.total for t in april.teams} == {"acme/search": 100 + 600 + 25, "globex/labs": 100 + 400 + 25}
    finally:
        pipeline.close()
    from costline.processor.config.core import ConfigError, parse_config

    with pytest.raises(ConfigError) as err:
        parse_config({"chargeback": {"start": "2026-13"}})
    assert any(e.startswith("chargeback.start: must be a calendar month as YYYY-MM") for e in err.value.errors)


def test_a_top_model_without_a_price_is_shown_unpriced_not_at_zero(tmp_path):
    pipeline = pipeline_with(tmp_path, PRICE + "chargeback:\n  default: {markup_pct: 0}\n",
                             [one_dollar(1, "2026-03-10T12:00:00+00:00"),
                              make_call(2, model="no-price-anywhere", team="search", start=ns("2026-03-11T12:00:00+00:00"))])
    try:
        from costline.processor.reports.chargeback.report import chargeback_document

        html = chargeback_document(pipeline.config, pipeline.ledger, Period(2026, 3), None,
                                   "html", clock=system_clock)[1].decode()
    finally:
        pipeline.close()
    import re

    costs = dict(re.findall(r'data-model="([^"]*)">.*?data-cost="([^"]*)"', html, re.S))
    assert costs == {"one-dollar": "1.00", "no-price-anywhere": "unpriced"}
    (feature,) = re.findall(r'data-feature="[^"]*">.*?data-cost="([^"]*)"', html, re.S)
    assert feature == "1.00 + unpriced"  # one feature (none) with a priced call and an unpriced one
