"""Budgets from the ledger: exact, per calendar period in the configured zone, most restrictive wins."""

from __future__ import annotations

import gc
from datetime import datetime, timezone
from decimal import Decimal

from costline.processor.config.core import load_config, parse_config
from costline.processor.ledger import Ledger
from costline.processor.model import Entry, call_keys
from costline.processor.ownership import Hierarchy
from costline.processor.reports.budgets import Budgets
from costline.processor.units import usd_to_pico
from tests.polling import poll
from tests.processor.clock import now_s
from tests.processor.conftest import EXAMPLE_CONFIG, at, make_call

NOW = datetime(2026, 11, 20, 15, tzinfo=timezone.utc)


def spend(ledger, config, n, cost, start, fingerprint=None, **owner):
    call = make_call(n, start=start, fingerprint=fingerprint, **owner)
    resolved, _ = Hierarchy(config).resolve(call.owner, fingerprint, None)
    ledger.record([Entry(call, resolved, usd_to_pico(Decimal(cost)), call_keys(call))], now=now_s())


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


class CountingLedger(Ledger):
    """A real ledger that counts the budget reads made of it."""

    reads = 0

    def spend_since(self, since, scopes):
        self.reads += 1
        return super().spend_since(since, scopes)


def bill(ledger, config, n, cost, start, team):
    call = make_call(n, start=start, team=team)
    entry = Entry(call, Hierarchy(config).resolve(call.owner, None, None)[0], usd_to_pico(Decimal(cost)), call_keys(call))
    return ledger.record([entry], now=now_s())


def team_spent(snapshot, team="acme/marketing", period="monthly"):
    return states(snapshot)[("team", period, team)].spent_usd


def test_a_scrape_never_reads_the_ledger_and_a_commit_shows_soon(tmp_path):
    config = load_config(EXAMPLE_CONFIG)
    ledger = CountingLedger(f"sqlite:///{tmp_path / 'l.db'}")
    budgets = Budgets(config, ledger, clock=lambda: NOW, ttl=3600, min_interval=0)
    bill(ledger, config, 1, "1.25", at(2026, 11, 20, 9), "marketing")
    budgets.committed()
    poll(lambda: team_spent(budgets.snapshot()) == Decimal("1.25"))
    reads = ledger.reads
    for _ in range(20):  # scrapes
        assert team_spent(budgets.snapshot()) == Decimal("1.25")
    assert ledger.reads == reads


def test_the_api_reads_its_own_writes(tmp_path):
    config = load_config(EXAMPLE_CONFIG)
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    budgets = Budgets(config, ledger, clock=lambda: NOW, ttl=3600, min_interval=3600)  # the thread stays idle
    bill(ledger, config, 1, "2.50", at(2026, 11, 20, 9), "marketing")
    budgets.committed()
    assert team_spent(budgets.current()) == Decimal("2.50")
    assert budgets.current() == budgets.snapshot()


def test_what_other_processors_bill_shows_within_ttl(tmp_path):
    config = load_config(EXAMPLE_CONFIG)
    url = f"sqlite:///{tmp_path / 'l.db'}"
    ours = Budgets(config, Ledger(url), clock=lambda: NOW, ttl=0.05, min_interval=0)
    bill(Ledger(url), config, 1, "7", at(2026, 11, 20, 9), "marketing")  # another processor, same ledger
    poll(lambda: team_spent(ours.snapshot()) == Decimal("7"))  # no commit here, no scrape-time read


def test_period_rollover_follows_the_injected_clock(tmp_path):
    config = parse_config({"timezone": "Asia/Kolkata", "orgs": [{"name": "acme", "teams": [
        {"name": "t", "budget": {"daily_usd": 100, "monthly_usd": 1000}}]}]})
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    now = [datetime(2026, 11, 20, 18, 10, tzinfo=timezone.utc)]  # 23:40 on Nov 20 in Kolkata
    bill(ledger, config, 1, "4", at(2026, 11, 20, 9), "t")  # Nov 20 there
    bill(ledger, config, 2, "1", at(2026, 11, 20, 19), "t")  # 00:30 on Nov 21 there: dated ahead of the clock
    budgets = Budgets(config, ledger, clock=lambda: now[0], ttl=3600, min_interval=0)
    # The call dated ahead of the clock is tomorrow's spend (a period's sum ends where it ends), this month's too.
    assert (team_spent(budgets.snapshot(), "acme/t", "daily"), team_spent(budgets.snapshot(), "acme/t")) == \
        (Decimal("4"), Decimal("5"))
    now[0] = datetime(2026, 11, 20, 18, 45, tzinfo=timezone.utc)  # 00:15 on Nov 21 there
    poll(lambda: team_spent(budgets.snapshot(), "acme/t", "daily") == Decimal("1"))  # the scrape woke the thread
    assert team_spent(budgets.snapshot(), "acme/t") == Decimal("5")
    now[0] = datetime(2026, 11, 30, 18, 45, tzinfo=timezone.utc)  # December there
    poll(lambda: team_spent(budgets.snapshot(), "acme/t") == Decimal("0"))


def test_spend_dated_after_the_period_is_not_counted_in_it(tmp_path):
    """A call dated after the current day (clock skew, or a span from 2100 written before the span window existed)
    is spend of its own period: today's and this month's sums end where their periods end."""
    config = load_config(EXAMPLE_CONFIG)
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    spend(ledger, config, 1, "2", at(2026, 11, 20, 9), team="marketing")  # today
    spend(ledger, config, 2, "30", at(2026, 11, 21, 0), team="marketing")  # tomorrow, still this month
    spend(ledger, config, 3, "400", at(2100, 1, 1), team="marketing")  # the year 2100
    s = states(Budgets(config, ledger, clock=lambda: NOW).snapshot())
    assert s[("team", "monthly", "acme/marketing")].spent_usd == Decimal("32")
    ledger.close()


def test_a_boundary_hour_counts_in_the_month_the_statement_bills_it_in(tmp_path):
    """Kolkata's November starts at 18:30 UTC inside the 18:00 hour row. The statement bills that hour in October
    (the hours that start in a month: `Period.ledger_bounds`); the budgets follow the same rule, so October's $1 is
    not November's spend too."""
    config = parse_config({"timezone": "Asia/Kolkata", "orgs": [{"name": "acme", "budget": {"monthly_usd": 10},
                                                                 "teams": [{"name": "t"}]}]})
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    spend(ledger, config, 1, "1", int(datetime(2026, 10, 31, 18, 45, tzinfo=timezone.utc).timestamp() * 1e9), team="t")
    spend(ledger, config, 2, "2", at(2026, 11, 1, 19), team="t")
    november = lambda: datetime(2026, 11, 2, 12, tzinfo=timezone.utc)  # noqa: E731
    assert states(Budgets(config, ledger, clock=november).snapshot())[("org", "monthly", "acme")].spent_usd == 2
    ledger.close()


def test_budgets_dropped_on_a_reload_end_their_thread(tmp_path):
    """The refresher holds the budgets weakly: a reload that drops them stops their thread, nothing keeps them."""
    budgets = Budgets(load_config(EXAMPLE_CONFIG), Ledger(f"sqlite:///{tmp_path / 'l.db'}"), clock=lambda: NOW,
                      ttl=0.01, min_interval=0)
    thread = budgets._refresher._thread
    assert thread is not None and thread.is_alive()
    del budgets
    gc.collect()
    poll(lambda: not thread.is_alive(), 5, "the budgets' thread outlived them")


# --- every period, tokens, soft budgets, scopes beyond the hierarchy, one computation --------------------------------

def _budgets(tmp_path, config_data, calls, now=NOW):
    config = parse_config(config_data)
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    for n, (cost, start, owner) in enumerate(calls, 1):
        spend(ledger, config, n, cost, start, **owner)
    return config, ledger, Budgets(config, ledger, clock=lambda: now, ttl=3600, min_interval=3600)


def test_weekly_quarterly_yearly_and_rolling_windows(tmp_path):
    # NOW is Friday 2026-11-20 15:00 UTC: ISO week from Monday Nov 16, Q4 from Oct 1, the year from Jan 1; the
    # rolling 7 days are the 168 hours from Nov 13 16:00 to Nov 20 15:59.
    _, _, budgets = _budgets(tmp_path, {"orgs": [{"name": "acme", "teams": [{"name": "t", "budget": {
        "weekly_usd": 100, "quarterly_usd": 900, "yearly_usd": 5000, "rolling": [{"days": 7, "usd": 60}]}}]}]}, [
        ("1", at(2026, 11, 16, 0), {"team": "t"}),       # Monday: this week
        ("2", at(2026, 11, 15, 23), {"team": "t"}),      # Sunday: last week, within the rolling 7 days
        ("4", at(2026, 11, 13, 15), {"team": "t"}),      # the hour before the rolling window
        ("8", at(2026, 10, 1, 0), {"team": "t"}),        # first hour of Q4
        ("16", at(2026, 9, 30, 23), {"team": "t"}),      # Q3
        ("32", at(2026, 1, 1, 0), {"team": "t"}),        # this year
        ("64", at(2025, 12, 31, 23), {"team": "t"}),     # last year
    ])
    s = states(budgets.snapshot())
    assert s[("team", "weekly", "acme/t")].spent_usd == Decimal("1")
    assert s[("team", "rolling_7d", "acme/t")].spent_usd == Decimal("3")
    assert s[("team", "quarterly", "acme/t")].spent_usd == Decimal("15")
    assert s[("team", "yearly", "acme/t")].spent_usd == Decimal("63")


def test_the_week_follows_the_configured_zone_and_rolls_over_on_monday(tmp_path):
    now = [datetime(2026, 11, 22, 22, 30, tzinfo=timezone.utc)]  # Sunday 23:30 in Berlin
    config = parse_config({"timezone": "Europe/Berlin", "orgs": [{"name": "acme", "teams": [
        {"name": "t", "budget": {"weekly_usd": 10}}]}]})
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    spend(ledger, config, 1, "7", at(2026, 11, 22, 20), team="t")
    budgets = Budgets(config, ledger, clock=lambda: now[0], ttl=3600, min_interval=0)
    assert team_spent(budgets.snapshot(), "acme/t", "weekly") == Decimal("7")
    now[0] = datetime(2026, 11, 22, 23, 5, tzinfo=timezone.utc)  # Monday 00:05 in Berlin: a new ISO week
    poll(lambda: team_spent(budgets.snapshot(), "acme/t", "weekly") == Decimal("0"))


def test_token_budgets_count_each_billable_token_once(tmp_path):
    config = parse_config({"orgs": [{"name": "acme", "teams": [{"name": "t", "budget": {"monthly_tokens": 10_000}}]}]})
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    call = make_call(1, team="t", input_tokens=1000, output=200, cache_read=300, cache_write=40, start=at(2026, 11, 20))
    call.reasoning_tokens = 150  # part of the output: not counted twice
    unpriced = make_call(2, team="t", model="no-such-model", input_tokens=5, output=5, start=at(2026, 11, 20))
    for c, cost in ((call, 1), (unpriced, None)):
        ledger.record([Entry(c, Hierarchy(config).resolve(c.owner, None, None)[0],
                             None if cost is None else usd_to_pico(Decimal(cost)), call_keys(c))], now=now_s())
    snap = Budgets(config, ledger, clock=lambda: NOW).snapshot()
    [state] = snap.states
    assert (state.unit, state.limit, state.spent, state.remaining) == ("tokens", 10_000, 1550, 8450)
    assert state.as_dict()["spent_tokens"] == 1550 and "spent_usd" not in state.as_dict()
    assert snap.effective == ()  # no user or key under team t: nothing remains per user or key


def test_soft_budgets_are_reported_but_never_bind(tmp_path):
    _, _, budgets = _budgets(tmp_path, {"orgs": [{"name": "acme", "teams": [
        {"name": "t", "budget": {"weekly_usd": 10, "mode": "soft"}, "users": [
            {"name": "u", "budget": {"monthly_usd": 100}}]}]}]},
        [("12", at(2026, 11, 19), {"team": "t", "user": "u"})])
    snap = budgets.snapshot()
    s = states(snap)
    assert s[("team", "weekly", "acme/t")].mode == "soft"
    assert s[("team", "weekly", "acme/t")].remaining_usd == Decimal("-2")  # reported as spent
    [user] = snap.effective
    assert (user.remaining_usd, user.bound_by) == (Decimal("88"), "user acme/t/u monthly")  # the soft one never binds


def test_customer_feature_environment_and_model_budgets(tmp_path):
    _, _, budgets = _budgets(tmp_path, {"orgs": [{"name": "acme", "teams": [{"name": "t"}]}], "budgets": [
        {"scope": "customer", "name": "globex", "monthly_usd": 100},
        {"scope": "feature", "name": "search", "weekly_usd": 50, "mode": "soft"},
        {"scope": "model", "name": "gpt-4o-mini-2024-07-18", "monthly_usd": 30},
        {"scope": "model", "name": "gpt-5", "monthly_usd": 30}]},
        [("3", at(2026, 11, 19), {"team": "t", "customer": "globex", "feature": "search"}),
         ("4", at(2026, 11, 19), {"team": "t", "customer": "initech"})])
    s = states(budgets.snapshot())
    assert s[("customer", "monthly", "globex")].spent_usd == Decimal("3")
    assert s[("feature", "weekly", "search")].spent_usd == Decimal("3")
    assert s[("model", "monthly", "gpt-4o-mini-2024-07-18")].spent_usd == Decimal("7")
    assert s[("model", "monthly", "gpt-5")].spent_usd == Decimal("0")


def test_the_budgets_endpoint_and_the_guards_policy_compute_what_remains_alike(tmp_path):
    """The budgets endpoint's effective remaining applies project budgets as the guard's policy does (it ignored
    them): one computation, `budgets.applicable` / `effective_of`."""
    from costline.processor.http.policy_api import policy_document
    from costline.processor.policy import ModelPolicy
    from costline.processor.pricing import Pricer

    config = load_config(EXAMPLE_CONFIG)
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    spend(ledger, config, 1, "199", at(2026, 11, 5), team="marketing", project="campaigns")  # project: $1 left
    budgets = Budgets(config, ledger, clock=lambda: NOW)
    policy = policy_document(Hierarchy(config), ModelPolicy(config), budgets, Pricer(config.prices),
                             "b3180bc5c5db03d7", {"project": "campaigns"}, [], now_ns=0)
    assert policy["budget"] == {"remaining_usd": Decimal("1"), "bound_by": "project campaigns monthly"}
    rows = [e for e in budgets.current().as_dict()["effective"]
            if e.get("key") == "alice-laptop" and e.get("project") == "campaigns"]
    assert [(r["remaining_usd"], r["bound_by"]) for r in rows] == [(Decimal("1"), "project campaigns monthly")]
