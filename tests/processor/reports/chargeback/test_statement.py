"""The statement engine: exact amounts, one rounding to the cent, totals that add up exactly."""

from __future__ import annotations

import random
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from costline.processor.config.core import load_config, parse_config
from costline.processor.reports.chargeback.statement import (
    Period,
    StatementError,
    TeamUsage,
    allocate,
    build_statement,
    round_to_total,
)

ISSUE = load_config(Path(__file__).with_name("issue.yaml")).chargeback
UTC = ZoneInfo("UTC")
D = Decimal


def usage(org, team, tokens, cost, **kw) -> TeamUsage:
    return TeamUsage(org, team, requests=kw.pop("requests", 10), tokens=tokens, cost=D(cost), **kw)


HAND = [
    usage("acme", "engineering", 12_000_000, "800.004"),
    usage("acme", "marketing", 2_000_000, "100.002"),
    usage("acme", "support", 500_000, "99.994", outcomes={"ticket_resolved": 37, "other": 5}),
    usage("unattributed", "unattributed", 40_000, "10.005"),
]


def lines(team) -> dict[str, str]:
    return {f"{line.component}:{line.name}" if line.name else line.component: str(line.amount) for line in team.lines}


def test_the_specified_config_by_hand():
    """Every figure below is worked out by hand in docs/chargeback.md ("Worked example")."""
    s = build_statement(ISSUE, Period(2026, 11), UTC, HAND)
    eng, mkt, sup = s.teams
    assert [t.key for t in s.teams] == ["acme/engineering", "acme/marketing", "acme/support"]
    # engineering: 12 Mtok is tier 2 (10-100 Mtok), 20 %: 800.004 x 0.2 = 160.0008.
    assert (eng.markup_pct, eng.markup_source) == (20, "tier 2: 10-100 Mtok")
    # platform-infra 1200 by token cost 800.004 : 100.002 : 99.994 = 960.0048, 120.0024, 119.9928 -> the left-over
    # cent to the largest remainder (engineering). Unattributed 10.005 -> 10.01, same weights: 8.01, 1.00, 1.00.
    # Team total exact 3928.0248, grand exact 5688.5168 -> 5688.52; the cent left over goes to engineering, and
    # within it to the token cost line (remainder 0.4 cents, the largest of its lines).
    assert lines(eng) == {"token_cost": "800.01", "markup": "160.00", "platform_fee": "200.00",
                          "shared_cost:platform-infra": "960.01", "shared_cost:reserved-capacity": "1800.00",
                          "unattributed": "8.01"}
    assert eng.total == D("3928.03")
    # marketing: at cost, no fee (its own override beats default and tiers).
    assert (mkt.markup_pct, mkt.markup_source) == (0, "team")
    assert lines(mkt) == {"token_cost": "100.00", "markup": "0.00", "platform_fee": "0.00",
                          "shared_cost:platform-infra": "120.00", "shared_cost:reserved-capacity": "1200.00",
                          "unattributed": "1.00"}
    assert mkt.total == D("1421.00")
    # support: value-based, 37 tickets x 0.50; tokens not charged, the default fee is; outcomes without a rate are
    # not charged either.
    assert sup.model == "value-based"
    assert lines(sup) == {"token_cost": "0.00", "markup": "0.00", "platform_fee": "200.00",
                          "value_based:ticket_resolved": "18.50", "shared_cost:platform-infra": "119.99",
                          "shared_cost:reserved-capacity": "0.00", "unattributed": "1.00"}
    assert sup.total == D("339.49")
    assert s.total == D("5688.52")
    assert s.components == {"token_cost": D("900.01"), "markup": D("160.00"), "platform_fee": D("400.00"),
                            "value_based": D("18.50"), "shared_cost": D("4200.00"), "unattributed": D("10.01"),
                            "untracked": D("0.00"), "correction": D("0.00")}


def check_sums(s) -> None:
    assert sum(t.total for t in s.teams) == s.total
    assert sum(s.components.values()) == s.total
    for t in s.teams:
        assert sum(line.amount for line in t.lines) == t.total
        for line in t.lines:
            assert line.amount == line.amount.quantize(D("0.01"))
            assert abs(line.amount - line.exact) < D("0.01")
    exact = sum(line.exact for t in s.teams for line in t.lines)
    assert abs(s.total - exact) <= D("0.005")


@pytest.mark.parametrize("seed", range(40))
def test_totals_add_up_exactly_whatever_the_amounts(seed):
    """Random ledgers (pico-dollar costs, many teams, every split rule): team totals add up to the grand total,
    lines to their team's, components to the grand total, each within a cent of its exact value."""
    rng = random.Random(seed)
    teams = [usage(f"org{rng.randrange(3)}", f"team{i}", rng.randrange(0, 200_000_000),
                   D(rng.randrange(0, 10**15)) / 10**12, outcomes={"ticket_resolved": rng.randrange(100)})
             for i in range(rng.randrange(1, 12))]
    if rng.random() < 0.7:
        teams.append(usage("unattributed", "unattributed", 5, D(rng.randrange(1, 10**14)) / 10**12))
    config = parse_config({"chargeback": {
        "default": {"markup_pct": rng.choice(["15", "12.5", "33.333"]), "platform_fee_usd": "199.99"},
        "tiers": [{"up_to_mtok": 10, "markup_pct": 50}, {"up_to_mtok": 100, "markup_pct": "7.77"},
                  {"markup_pct": 10}] if rng.random() < 0.5 else [],
        "teams": {"team1": {"per_outcome_usd": {"ticket_resolved": "0.333"}}, "team2": {"markup_pct": 0}},
        "shared_costs": [{"name": "a", "monthly_usd": "1000.01", "split": "proportional"},
                         {"name": "b", "monthly_usd": "0.07", "split": "even"},
                         {"name": "c", "monthly_usd": "333.33", "split": {"team0": "33.3", "team1": "66.7"}}],
        "unattributed": rng.choice(["proportional", "even", {"team": "team0"}]),
    }}).chargeback
    check_sums(build_statement(config, Period(2026, 11), UTC, teams))


def test_tiers_bound_exclusive_and_the_default_without_tiers():
    config = ISSUE
    at = {n: build_statement(config, Period(2026, 11), UTC, [usage("a", "t", n, "1")]).teams[0].markup_pct
          for n in (0, 9_999_999, 10_000_000, 99_999_999, 100_000_000)}
    assert at == {0: 50, 9_999_999: 50, 10_000_000: 20, 99_999_999: 20, 100_000_000: 10}
    flat = parse_config({"chargeback": {"default": {"markup_pct": 15}}}).chargeback
    team = build_statement(flat, Period(2026, 11), UTC, [usage("a", "t", 10**9, "100")]).teams[0]
    assert (team.markup_pct, team.markup_source) == (15, "default")
    assert lines(team)["markup"] == "15.00"


def test_a_team_a_fixed_split_names_is_charged_without_usage():
    s = build_statement(ISSUE, Period(2026, 11), UTC, [usage("acme", "marketing", 1, "1")],
                        team_orgs={"engineering": "acme"})
    assert [t.key for t in s.teams] == ["acme/engineering", "acme/marketing"]
    assert lines(s.teams[0])["shared_cost:reserved-capacity"] == "1800.00"
    check_sums(s)


def test_a_bare_name_in_two_orgs_must_be_qualified():
    with pytest.raises(StatementError, match="team 'engineering' exists in several orgs .* write it as org/team"):
        build_statement(ISSUE, Period(2026, 11), UTC, [usage("a", "engineering", 1, "1"),
                                                       usage("b", "engineering", 1, "1")])


def test_unattributed_to_a_named_team_and_nobody_to_spread_onto():
    config = parse_config({"chargeback": {"unattributed": {"team": "acme/platform"}}}).chargeback
    s = build_statement(config, Period(2026, 11), UTC, [usage("acme", "search", 1, "5"),
                                                        usage("unattributed", "unattributed", 1, "2.499")])
    assert {t.key: lines(t)["unattributed"] for t in s.teams} == {"acme/platform": "2.50", "acme/search": "0.00"}
    alone = build_statement(ISSUE, Period(2026, 11), UTC, [usage("unattributed", "unattributed", 1, "2.499")])
    # The fixed split names them; with no org known for them (no hierarchy, no usage), they are under
    # `unattributed` as the ledger files a team whose calls named no org.
    assert [t.key for t in alone.teams] == ["unattributed/engineering", "unattributed/marketing"]
    check_sums(alone)
    nobody = parse_config({"chargeback": {"shared_costs": [{"name": "x", "monthly_usd": 5, "split": "even"}]}})
    s = build_statement(nobody.chargeback, Period(2026, 11), UTC, [usage("unattributed", "unattributed", 1, "1")])
    assert [t.key for t in s.teams] == ["unattributed/unattributed"] and s.total == D("6.00")


def test_no_chargeback_section_is_a_clear_error():
    with pytest.raises(StatementError, match="no `chargeback:` section"):
        build_statement(None, Period(2026, 11), UTC, [])


def test_allocation_and_rounding_helpers():
    assert allocate(100, [D(1), D(1), D(1)]) == [34, 33, 33]
    assert allocate(5, [D("0.5"), D("0.25"), D("0.25")]) == [3, 1, 1]
    assert round_to_total([D("0.333"), D("0.333"), D("0.334")], D("1.00")) == [D("0.33"), D("0.33"), D("0.34")]
    assert round_to_total([D("-0.335"), D("1.005")], D("0.67")) == [D("-0.33"), D("1.00")]  # tie: first


def test_periods_are_calendar_months_in_the_zone():
    berlin = ZoneInfo("Europe/Berlin")
    p = Period.parse("2026-11")
    assert p.start(berlin).isoformat() == "2026-11-01T00:00:00+01:00"
    assert p.end(berlin).isoformat() == "2026-12-01T00:00:00+01:00"
    assert (Period(2026, 12).next(), Period(2026, 1).previous()) == (Period(2027, 1), Period(2025, 12))
    for bad in ("2026-13", "2026-1", "November", "1969-12"):
        with pytest.raises(StatementError, match="expected a calendar month as YYYY-MM"):
            Period.parse(bad)
