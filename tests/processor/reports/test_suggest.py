"""`costline budgets suggest`: next period's budgets from the ledger's history, by hand: the complete months, this
month's forecast at its pace, the least-squares trend one month on, headroom, rounded up to two significant figures;
the YAML fragment passes `check-config` and holds the table's figures, keeping the config's other budgets."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal

import yaml

from costline.cli import main
from costline.processor.config.core import load_config, parse_config
from costline.processor.ledger import Ledger
from costline.processor.reports.suggest import _nice_up, suggest_budgets
from costline.processor.service import assemble_pipeline
from tests.processor.conftest import at, db_url, make_call  # noqa: F401 - db_url: the fixture

NOW = datetime(2026, 12, 11, 0, tzinfo=timezone.utc)  # 10 of December's 31 days have passed
FP = "b3180bc5c5db03d7"
CONFIG = f"""
timezone: UTC
prices:
  - {{provider: openai, model: gpt-4o, input_per_mtok: 1.00, output_per_mtok: 0}}
orgs:
  - name: acme
    budget: {{monthly_usd: 500}}
    teams:
      - name: search
        budget: {{monthly_usd: 40, daily_usd: 3}}
        users:
          - name: alice
            keys:
              - {{name: alice-laptop, fingerprint: {FP}, budget: {{daily_usd: 1}}}}
      - name: idle
        budget: {{monthly_usd: 75}}
projects:
  - {{name: ranking}}
"""


def spend(n, usd, day, team="search", user="", fingerprint=None, project=""):
    """A call of exactly `usd` ($1 per million input tokens)."""
    call = make_call(n, model="gpt-4o", team=team, input_tokens=int(usd * 10**6), output=0, start=day,
                     fingerprint=fingerprint, **({"user": user} if user else {}), **({"project": project} if project
                                                                                      else {}))
    return call


def ledger_with_history(url, tmp_path):
    (tmp_path / "c.yaml").write_text(CONFIG)
    config = load_config(tmp_path / "c.yaml")
    ledger = Ledger(url)
    pipeline = assemble_pipeline(config, ledger, clock=lambda: NOW)
    calls = [
        # search (alice's key): September $10, October $20, November $30, December so far $12
        spend(1, 10, at(2026, 9, 5), user="alice", fingerprint=FP),
        spend(2, 20, at(2026, 10, 5), user="alice", fingerprint=FP),
        spend(3, 30, at(2026, 11, 5), user="alice", fingerprint=FP),
        spend(4, 12, at(2026, 12, 3), user="alice", fingerprint=FP),
        # ads (not in the config): only November, $100; project ranking: $7 in October
        spend(5, 100, at(2026, 11, 20), team="ads"),
        spend(6, 7, at(2026, 10, 9), team="ads", project="ranking"),
        spend(7, 1, at(2026, 8, 31, 23)),  # before the window: not read
    ]
    pipeline.ingest_calls(calls)
    return config, ledger, pipeline


def test_each_scope_by_hand(db_url, tmp_path):  # noqa: F811
    config, ledger, pipeline = ledger_with_history(db_url, tmp_path)
    got = {(s.scope, s.owner_name): s for s in suggest_budgets(config, ledger, NOW)}
    search = got[("team", "acme/search")]
    assert search.history_usd == (Decimal(10), Decimal(20), Decimal(30))
    assert search.to_date_usd == Decimal(12)
    # December at its pace: $12 in 10 of 31 days -> 37.20; the line through 10, 20, 30, 37.20 one month on:
    # mean x 1.5, mean y 24.30, slope (−1.5·−14.3 −0.5·−4.3 +0.5·5.7 +1.5·12.9)/5 = 45.8/5 = 9.16
    # -> 24.30 + 9.16·2.5 = 47.20
    assert search.forecast_usd == Decimal("37.20")
    assert search.trend_usd == Decimal("47.20")
    # 47.20 × 1.2 = 56.64 -> up to two significant figures: 57
    assert search.suggested_usd == Decimal("57.00")
    assert search.current_usd == Decimal(40)
    # The same figures at user and key level (alice's key is the only spender), and the org sums the teams.
    assert got[("user", "acme/search/alice")].suggested_usd == Decimal("57.00")
    assert got[("key", "acme/search/alice/alice-laptop")].suggested_usd == Decimal("57.00")
    org = got[("org", "acme")]
    assert org.history_usd == (Decimal(10), Decimal(27), Decimal(130))
    # ads: 0, 0, 100, then 0 so far in December (forecast 0): the trend line through 0, 7, 100, 0 -> ...
    ads = got[("team", "acme/ads")]
    assert ads.history_usd == (Decimal(0), Decimal(7), Decimal(100)) and ads.current_usd is None
    # mean y 26.75, slope (−1.5·−26.75 −0.5·−19.75 +0.5·73.25 +1.5·−26.75)/5 = 46.5/5 = 9.3 -> 26.75 + 9.3·2.5 = 50
    assert ads.trend_usd == Decimal("50.00") and ads.suggested_usd == Decimal("60.00")
    # A budgeted team with no spend at all is listed (its budget may be too high): suggested 0.
    idle = got[("team", "acme/idle")]
    assert idle.current_usd == Decimal(75) and idle.suggested_usd == Decimal("0.00")
    assert got[("project", "ranking")].history_usd == (Decimal(0), Decimal(7), Decimal(0))
    pipeline.close()


def test_nice_rounding_never_goes_below():
    for value, want in (("123.4", "130"), ("5.01", "5.1"), ("0.0734", "0.08"), ("100", "100"), ("99.01", "100")):
        assert _nice_up(Decimal(value)) == Decimal(want), value


def test_the_yaml_fragment_passes_check_config_and_keeps_other_budgets(db_url, tmp_path, capsys):  # noqa: F811
    config, ledger, pipeline = ledger_with_history(db_url, tmp_path)
    pipeline.close()
    import costline.processor.cli as cli

    cli.CLOCK = lambda: NOW
    try:
        assert main(["budgets", "suggest", "--config", str(tmp_path / "c.yaml"), "--db", db_url,
                     "--format", "yaml"]) == 0
        text = capsys.readouterr().out
        assert main(["budgets", "suggest", "--config", str(tmp_path / "c.yaml"), "--db", db_url,
                     "--format", "json"]) == 0
        table = json.loads(capsys.readouterr().out)["suggestions"]
        assert main(["budgets", "suggest", "--config", str(tmp_path / "c.yaml"), "--db", db_url]) == 0
        assert "acme/search" in capsys.readouterr().out
    finally:
        cli.CLOCK = cli.system_clock
    (tmp_path / "fragment.yaml").write_text(text)
    check = subprocess.run([sys.executable, "-m", "costline.cli", "check-config", str(tmp_path / "fragment.yaml")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    suggested = parse_config(yaml.safe_load(text))
    [acme] = suggested.orgs
    search = {t.name: t for t in acme.teams}["search"]
    assert search.budget.monthly_usd == Decimal("57") and search.budget.daily_usd == Decimal(3)  # daily kept
    [alice] = search.users
    [key] = alice.keys
    assert key.name == "alice-laptop" and key.fingerprint == FP
    assert key.budget.daily_usd == Decimal(1) and key.budget.monthly_usd == Decimal("57")
    assert {t.name for t in acme.teams} == {"search", "idle", "ads"}
    want = {r["owner"]: Decimal(r["suggested_usd"]) for r in table}
    assert acme.budget.monthly_usd == want["acme"]
    assert {t.name: t.budget.monthly_usd for t in acme.teams} == {
        "search": want["acme/search"], "idle": want["acme/idle"], "ads": want["acme/ads"]}
    assert [(p.name, p.budget.monthly_usd) for p in suggested.projects] == [("ranking", want["ranking"])]


def test_bad_arguments_name_the_flag(db_url, tmp_path, capsys):  # noqa: F811
    ledger_with_history(db_url, tmp_path)[2].close()
    assert main(["budgets", "suggest", "--config", str(tmp_path / "c.yaml"), "--db", db_url,
                 "--headroom", "lots"]) == 2
    assert "--headroom 'lots'" in capsys.readouterr().err
    assert main(["budgets", "suggest", "--config", str(tmp_path / "c.yaml"), "--db", db_url, "--history", "0"]) == 2
    assert "history 0" in capsys.readouterr().err


def test_weekly_and_quarterly_windows_for_suggestions():
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    from costline.processor.reports.suggest import window

    now, zone = datetime(2026, 11, 20, 15, tzinfo=timezone.utc), ZoneInfo("Europe/Berlin")
    weekly = window("weekly", now, zone, 2)
    assert weekly.labels == ("2026-W45", "2026-W46", "2026-W47")
    assert weekly.current == (datetime(2026, 11, 16, tzinfo=zone), datetime(2026, 11, 23, tzinfo=zone))
    assert weekly.complete[0] == (datetime(2026, 11, 2, tzinfo=zone), datetime(2026, 11, 9, tzinfo=zone))
    quarterly = window("quarterly", now, zone, 4)
    assert quarterly.labels == ("2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4")
    assert quarterly.complete[-1] == (datetime(2026, 7, 1, tzinfo=zone), datetime(2026, 10, 1, tzinfo=zone))
    assert window("monthly", now, zone, 1).labels == ("2026-10", "2026-11")
