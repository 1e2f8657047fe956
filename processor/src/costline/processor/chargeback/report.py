"""The statement of a month, read from the ledger through its public reader."""

from __future__ import annotations

from typing import Any

from costline.processor.chargeback.statement import Period, Statement, build_statement, team_orgs_of, team_usage

TEAM_GROUPS = ["org", "team"]


def statement_for(config: Any, ledger: Any, period: Period) -> Statement:
    """`config` is the processor's `CostlineConfig` (its `chargeback`, `timezone` and `orgs`); `ledger` offers
    `usage()` (and `outcomes()` where the ledger counts business outcomes)."""
    tz = config.zone
    start, end = period.start(tz), period.end(tz)
    rows = ledger.usage(start, end, TEAM_GROUPS, tz=tz)
    outcomes = ledger.outcomes(start, end, [*TEAM_GROUPS, "name"]) if hasattr(ledger, "outcomes") else []
    return build_statement(config.chargeback, period, tz, team_usage(rows, outcomes),
                           team_orgs=team_orgs_of(config.orgs))
