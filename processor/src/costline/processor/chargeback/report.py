"""The statement of a month, read from the ledger through its public reader."""

from __future__ import annotations

from typing import Any

from costline.processor.chargeback.statement import Period, Statement, build_statement, team_orgs_of, team_usage

TEAM_GROUPS = ["org", "team"]


def statement_for(config: Any, ledger: Any, outcomes: Any, period: Period) -> Statement:
    """`config` is the processor's `CostlineConfig` (its `chargeback`, `timezone` and `orgs`); `ledger` offers
    `usage()`, `outcomes` (an `OutcomeStore`) `outcomes()`."""
    tz = config.zone
    start, end = period.start(tz), period.end(tz)
    rows = ledger.usage(start, end, TEAM_GROUPS, tz=tz)
    counted = outcomes.outcomes(start, end, [*TEAM_GROUPS, "name"])
    return build_statement(config.chargeback, period, tz, team_usage(rows, counted),
                           team_orgs=team_orgs_of(config.orgs))
