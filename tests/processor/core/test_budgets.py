"""Budgets from the ledger: exact, per calendar period in the configured zone, most restrictive wins."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from costline.processor.budgets import Budgets
from costline.processor.config import load_config, parse_config
from costline.processor.ledger import Ledger
from costline.processor.model import Entry, call_keys
from costline.processor.ownership import Hierarchy
from costline.processor.units import usd_to_pico

from .conftest import EXAMPLE_CONFIG, at, make_call

NOW = datetime(2026, 11, 20, 15, tzinfo=timezone.utc)


def spend(ledger, config, n, cost, start, fingerprint=None, **owner):
    call = make_call(n, start=start, fingerprint=fingerprint, **owner)
    resolved, _ = Hierarchy(config).resolve(call.owner, fingerprint, None)
    ledger.record([Entry(call, resolved, usd_to_pico(Decimal(cost)), call_keys(call))])


def states(snapshot):
    return {(s.scope, s.period, s.owner_name): s for s in snapshot.states}


def test_budgets_per_scope_and_period_with_effective_minimum(tmp_path):
    config = load_config(EXAMPLE_CONFIG)
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    spend(ledger, config, 1, "3.50", at(2026, 11, 20, 9), fingerprint="b3180bc5c5db03d7")  # alice's key, today
    spend(ledger, config, 2, "40", at(2026, 11, 2), fingerprint="b3180bc5c5db03d7")  # earlier this month
    spend(ledger, config, 3, "450", at(2026, 11, 5), team="marketing", project="campaigns")
    spend(ledger, config, 4, "999", at(2026, 10, 31), team="marketing")  # last month: not counted
    snap = Budgets(config, ledger, clock=lambda: NOW).snapshot()
    s = states(snap)
    assert s[("key", "daily", "acme/engineering/alice/alice-laptop")].spent_usd == Decimal("3.5")
    assert s[("key", "monthly", "acme/engineering/alice/alice-laptop")].spent_usd == Decimal("43.5")
    assert s[("user", "monthly", "acme/engineering/alice")].spent_usd == Decimal("43.5")
    assert s[("team", "monthly", "acme/marketing")].spent_usd == Decimal("450")
    assert s[("team", "monthly", "acme/marketing")].remaining_usd == Decimal("50")
    assert s[("org", "monthly", "acme")].spent_usd == Decimal("493.5")
    assert s[("project", "monthly", "campaigns")].spent_usd == Decimal("450")
    effective = {e.owner: e for e in snap.effective}
    key = effective[(("org", "acme"), ("team", "engineering"), ("user", "alice"), ("key", "alice-laptop"))]
    # key monthly 50-43.5=6.5, key daily 5-3.5=1.5, user 100-43.5, team 2000-43.5, org 3000-493.5: daily key wins
    assert key.remaining_usd == Decimal("1.5")
    assert key.bound_by == "key acme/engineering/alice/alice-laptop daily"
    user = effective[(("org", "acme"), ("team", "engineering"), ("user", "alice"))]
    assert user.remaining_usd == Decimal("56.5")


def test_restart_restores_budgets(tmp_path):
    config = load_config(EXAMPLE_CONFIG)
    url = f"sqlite:///{tmp_path / 'l.db'}"
    ledger = Ledger(url)
    spend(ledger, config, 1, "12.25", at(2026, 11, 20, 9), team="marketing")
    ledger.close()
    snap = Budgets(config, Ledger(url), clock=lambda: NOW).snapshot()
    assert states(snap)[("team", "monthly", "acme/marketing")].spent_usd == Decimal("12.25")


def test_calendar_periods_follow_the_configured_time_zone(tmp_path):
    config = parse_config({"timezone": "America/New_York", "orgs": [{"name": "acme", "budget": {"daily_usd": 10},
                                                                     "teams": [{"name": "t"}]}]})
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    # 03:00 UTC on Nov 20 is still Nov 19 in New York: not part of "today" at 15:00 UTC (10:00 New York)
    spend(ledger, config, 1, "4", at(2026, 11, 20, 3), team="t")
    spend(ledger, config, 2, "1", at(2026, 11, 20, 13), team="t")
    snap = Budgets(config, ledger, clock=lambda: NOW).snapshot()
    assert states(snap)[("org", "daily", "acme")].spent_usd == Decimal("1")
