"""The open period's statement as gauges: the same cents as `costline chargeback`, per team and component."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from prometheus_client import CollectorRegistry

from costline import attributes as a
from costline.processor.clock import system_clock
from costline.processor.config.core import parse_config
from costline.processor.ledger import Ledger
from costline.processor.metrics.chargeback_gauges import ChargebackCollector, ChargebackTotals
from costline.processor.model import Outcome
from costline.processor.reports.chargeback.report import statement_for
from costline.processor.reports.chargeback.statement import Period
from costline.processor.service import assemble_pipeline
from tests.processor.conftest import at, make_call
from tests.processor.reports.chargeback.test_command import CONFIG, calls

NOW = datetime(2026, 11, 20, 15, tzinfo=timezone.utc)


def gauges(registry: CollectorRegistry, name: str) -> dict[tuple[str, ...], float]:
    return {tuple(s.labels.values()): s.value for m in registry.collect() for s in m.samples if s.name == name}


def test_gauges_are_the_open_statement_per_team_and_component_and_last_months_totals(tmp_path):
    import yaml

    pipeline = assemble_pipeline(parse_config(yaml.safe_load(CONFIG)), Ledger(f"sqlite:///{tmp_path / 'l.db'}"),
                        clock=lambda: NOW)
    pipeline.ingest_calls([*calls(), make_call(900, team="engineering", start=at(2026, 10, 5))])
    pipeline.ingest_outcomes([Outcome("ticket_resolved", 7, {a.COSTLINE_ORG: "acme", a.COSTLINE_TEAM: "support"}, None,
                                      at(2026, 11, 12), "ab" * 16)])
    totals = ChargebackTotals(pipeline.ledger, lambda: pipeline.config, clock=lambda: NOW)
    registry = CollectorRegistry()
    registry.register(ChargebackCollector(totals.snapshot, totals.clock))
    assert not gauges(registry, "costline_chargeback_usd")  # not made yet: no zeros that look like "free"
    totals.refresh()

    charged = gauges(registry, "costline_chargeback_usd")
    november = statement_for(pipeline.config, pipeline.ledger, Period(2026, 11), clock=system_clock)
    for team in november.teams:
        mine = {k[2]: v for k, v in charged.items() if k[:2] == (team.org, team.team)}
        assert set(mine) == {line.component for line in team.lines}
        for component, value in mine.items():
            assert Decimal(str(value)) == sum(x.amount for x in team.lines if x.component == component)
    assert Decimal(str(round(sum(charged.values()), 2))) == november.total
    assert charged[("acme", "support", "value_based")] == 3.5  # 7 tickets x $0.50
    october = statement_for(pipeline.config, pipeline.ledger, Period(2026, 10), clock=system_clock)
    last = gauges(registry, "costline_chargeback_last_period_usd")
    assert last == {**{(t.org, t.team): 0.0 for t in november.teams}, **{(t.org, t.team): float(t.total)
                                                                           for t in october.teams}}
    assert last[("acme", "engineering")] > 0 and last[("acme", "support")] == 0
    assert gauges(registry, "costline_chargeback_period_start_timestamp_seconds") == {
        (): datetime(2026, 11, 1, tzinfo=timezone.utc).timestamp() - 3600}  # Europe/Berlin midnight
    pipeline.close()


def test_no_chargeback_section_no_family(tmp_path):
    pipeline = assemble_pipeline(parse_config({}), Ledger(f"sqlite:///{tmp_path / 'l.db'}"), clock=lambda: NOW)
    pipeline.ingest_calls([make_call(1, start=at(2026, 11, 10))])
    totals = ChargebackTotals(pipeline.ledger, lambda: pipeline.config, clock=lambda: NOW)
    registry = CollectorRegistry()
    registry.register(ChargebackCollector(totals.snapshot, totals.clock))
    assert totals.refresh() is None
    assert not [m for m in registry.collect() if m.name.startswith("costline_chargeback")]
    pipeline.close()


def test_teams_past_the_cardinality_limit_are_summed_under_overflow_and_still_add_up(tmp_path):
    import yaml

    document = yaml.safe_load(CONFIG)
    document["metrics"] = {"cardinality_limits": {"team": 2}}
    pipeline = assemble_pipeline(parse_config(document), Ledger(f"sqlite:///{tmp_path / 'l.db'}"), clock=lambda: NOW)
    pipeline.ingest_calls([*calls(), make_call(900, team="engineering", start=at(2026, 11, 5))])
    totals = ChargebackTotals(pipeline.ledger, lambda: pipeline.config, clock=lambda: NOW)
    registry = CollectorRegistry()
    registry.register(ChargebackCollector(totals.snapshot, totals.clock))
    totals.refresh()

    charged = gauges(registry, "costline_chargeback_usd")
    november = statement_for(pipeline.config, pipeline.ledger, Period(2026, 11), clock=system_clock)
    assert len({t.team for t in november.teams}) > 2
    teams = {key[1] for key in charged}
    assert len(teams - {"__overflow__"}) == 2 and "__overflow__" in teams
    by_total = sorted(november.teams, key=lambda t: t.total, reverse=True)
    assert by_total[0].team in teams  # the biggest spender keeps its name
    assert Decimal(str(round(sum(charged.values()), 2))) == november.total  # nothing lost in the fold
    assert {key[1] for key in gauges(registry, "costline_chargeback_last_period_usd")} <= teams
    pipeline.close()
