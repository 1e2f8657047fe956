"""Ledger-backed period gauges: what waits for a price and what was spent this month, on both ledger backends.

Reprices run through a second ledger on the same database, as `costline reprice` does from its own process.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry

from costline.processor.config.core import parse_config
from costline.processor.ledger import Ledger
from costline.processor.metrics.period_gauges import PeriodCollector, PeriodTotals
from costline.processor.pricing import Pricer
from costline.processor.reports.reprice import reprice
from costline.processor.service import assemble_pipeline
from tests.processor.conftest import at, make_call

NOW = datetime(2026, 11, 20, 15, tzinfo=timezone.utc)
NOV1 = datetime(2026, 11, 1, tzinfo=timezone.utc)
PRICED = {"prices": [{"provider": "openai", "model": "gpt-4o", "input_per_mtok": 2, "output_per_mtok": 8}]}
IN_HOUSE = {"provider": "vllm", "model": "in-house-70b", "input_per_mtok": 1, "output_per_mtok": 1}


def registry_for(totals: PeriodTotals) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(PeriodCollector(totals.snapshot))
    return registry


def labels(model="in-house-70b", provider="vllm", team="search", project="") -> dict[str, str]:
    return dict(provider=provider, model=model, org="acme", team=team, project=project)


def test_unpriced_calls_show_until_a_reprice_from_another_process_prices_them(db_url):
    pipeline = assemble_pipeline(parse_config(PRICED), Ledger(db_url), clock=lambda: NOW)
    totals = PeriodTotals(pipeline.ledger, lambda: pipeline.config, clock=lambda: NOW)
    registry = registry_for(totals)
    pipeline.ingest_calls([
        make_call(1, model="gpt-4o", input_tokens=1_000_000, output=0, start=at(2026, 11, 10)),
        make_call(2, model="in-house-70b", provider="vllm", input_tokens=500, output=50, cache_read=20,
                  start=at(2026, 11, 10)),
    ])
    assert registry.get_sample_value("costline_period_unpriced_requests", labels()) is None  # not read yet
    totals.refresh()
    assert registry.get_sample_value("costline_period_unpriced_requests", labels()) == 1
    assert registry.get_sample_value("costline_period_unpriced_tokens", {**labels(), "type": "input"}) == 500
    assert registry.get_sample_value("costline_period_unpriced_tokens", {**labels(), "type": "output"}) == 50
    assert registry.get_sample_value("costline_period_unpriced_tokens", {**labels(), "type": "cache_read"}) == 20
    # Unpriced is never $0: the in-house series has no cost yet; the priced one has its exact cost.
    assert registry.get_sample_value("costline_period_cost_usd", labels()) is None
    assert registry.get_sample_value("costline_period_cost_usd", labels("gpt-4o", "openai")) == 2.0
    assert registry.get_sample_value("costline_period_unpriced_requests", labels("gpt-4o", "openai")) == 0
    assert registry.get_sample_value("costline_period_start_timestamp_seconds") == NOV1.timestamp()

    repricer = Ledger(db_url)
    assert reprice(repricer, Pricer(parse_config({"prices": [*PRICED["prices"], IN_HOUSE]}).prices), NOV1) == 1
    repricer.close()
    totals.refresh()
    assert registry.get_sample_value("costline_period_unpriced_requests", labels()) == 0  # a drop, not a gap
    assert registry.get_sample_value("costline_period_unpriced_tokens", {**labels(), "type": "input"}) == 0
    assert registry.get_sample_value("costline_period_cost_usd", labels()) == (500 + 20 + 50) / 1e6
    pipeline.close()


def test_the_period_is_the_calendar_month_in_the_configured_time_zone(db_url):
    # 2026-11-30 23:30 UTC is already December in Berlin: November's calls are no longer in the period there.
    late = datetime(2026, 11, 30, 23, 30, tzinfo=timezone.utc)
    config = parse_config({**PRICED, "timezone": "Europe/Berlin"})
    pipeline = assemble_pipeline(config, Ledger(db_url), clock=lambda: late)
    pipeline.ingest_calls([make_call(1, model="in-house-70b", provider="vllm", start=at(2026, 11, 20))])
    berlin = PeriodTotals(pipeline.ledger, lambda: pipeline.config, clock=lambda: late)
    assert berlin.refresh().rows == {}
    assert berlin.snapshot().period_start == datetime(2026, 11, 30, 23, tzinfo=timezone.utc)
    utc = PeriodTotals(pipeline.ledger, lambda: parse_config(PRICED), clock=lambda: late)
    assert sum(sums[1] for sums in utc.refresh().rows.values()) == 1
    pipeline.close()


def test_cardinality_limit_folds_the_smallest_owners_into_overflow_keeping_totals(db_url):
    config = parse_config({**PRICED, "metrics": {"cardinality_limits": {"team": 2}}})
    pipeline = assemble_pipeline(config, Ledger(db_url), clock=lambda: NOW)
    pipeline.ingest_calls([make_call(i, model="gpt-4o", team=f"team{i}", input_tokens=1_000_000 * i, output=0,
                                     start=at(2026, 11, 10)) for i in range(1, 5)])
    totals = PeriodTotals(pipeline.ledger, lambda: pipeline.config, clock=lambda: NOW)
    totals.refresh()
    registry = registry_for(totals)
    cost = {team: registry.get_sample_value("costline_period_cost_usd", labels("gpt-4o", "openai", team))
            for team in ("team4", "team3", "__overflow__", "team1", "team2")}
    assert cost == {"team4": 8.0, "team3": 6.0, "__overflow__": 6.0, "team1": None, "team2": None}
    pipeline.close()


def test_the_background_reader_follows_commits_without_a_scrape(db_url):
    pipeline = assemble_pipeline(parse_config(PRICED), Ledger(db_url), clock=lambda: NOW)
    totals = PeriodTotals(pipeline.ledger, lambda: pipeline.config, clock=lambda: NOW, interval_s=3600,
                          min_gap_s=0.01)
    reads = []
    real_refresh = totals.refresh
    read = threading.Event()

    def counting_refresh():
        snapshot = real_refresh()
        reads.append(snapshot)
        read.set()
        return snapshot

    totals.refresh = counting_refresh  # type: ignore[method-assign]
    pipeline.on_commit.append(totals.changed)
    totals.start()
    try:
        assert read.wait(10)  # the first read, at start
        read.clear()
        pipeline.ingest_calls([make_call(1, model="in-house-70b", provider="vllm", start=at(2026, 11, 10))])
        assert read.wait(10), "a commit did not wake the reader (its timer is an hour)"
        assert sum(s[1] for s in totals.snapshot().rows.values()) == 1
    finally:
        totals.stop()
        pipeline.close()
