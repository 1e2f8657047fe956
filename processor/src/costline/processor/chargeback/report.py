"""The statement of a month, read from the ledger through its public reader, and closing a month.

A closed month's statement is the stored one (`periods`). An open month's is made from the ledger, with a
`correction` line per team for every closed month whose first open successor it is and whose ledger rows changed
after it was closed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from costline.processor.chargeback.focus import USAGE_GROUPS, render_focus
from costline.processor.chargeback.html import TOP, TeamDetail, render_html
from costline.processor.chargeback.periods import (
    ClosedPeriod,
    ClosedPeriods,
    Rules,
    base_exact,
    billed_corrections,
)
from costline.processor.chargeback.render import CONTENT_TYPES, FORMATS, render
from costline.processor.chargeback.statement import (
    NO_CHARGEBACK,
    TOKEN_COLUMNS,
    Period,
    Statement,
    StatementError,
    build_statement,
    team_orgs_of,
    team_usage,
    untracked_by_team,
)
from costline.processor.reconcile.store import ReconciliationStore

TEAM_GROUPS = ["org", "team"]


def rules_of(config: Any) -> Rules:
    """The charging rules in the processor's `CostlineConfig` (its `chargeback`, `timezone` and `orgs`)."""
    if config.chargeback is None:
        raise StatementError(NO_CHARGEBACK)
    return Rules(config.chargeback, config.timezone, team_orgs_of(config.orgs))


def statement_for(config: Any, ledger: Any, outcomes: Any, period: Period) -> Statement:
    """`period`'s statement: the frozen one when it is closed, else made from the ledger with its corrections.
    `ledger` offers `engine` and `usage()`, `outcomes` (an `OutcomeStore`) `outcomes()`."""
    closed = ClosedPeriods(ledger.engine).all()
    if period in closed:
        return closed[period].statement
    return _made(rules_of(config), ledger, outcomes, period, corrections_for(period, closed, ledger, outcomes))


def close_period(config: Any, ledger: Any, outcomes: Any, period: Period, *,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> ClosedPeriod:
    """Freeze `period`'s statement as it is now. Refused (`StatementError`) for a month that has not ended yet in
    the configured zone, and for one already closed."""
    rules = rules_of(config)
    zone = ZoneInfo(rules.timezone)
    at = now().replace(microsecond=0)
    if at < period.end(zone):
        raise StatementError(f"period {period} has not ended yet (it ends {period.end(zone).isoformat()}): only a "
                             "past month can be closed")
    store = ClosedPeriods(ledger.engine)
    closed = store.all()
    if period in closed:
        raise StatementError(f"period {period} is already closed (at {closed[period].closed_at.isoformat()}, "
                             f"sha256 {closed[period].sha256})")
    statement = _made(rules, ledger, outcomes, period, corrections_for(period, closed, ledger, outcomes))
    return store.close(replace(statement, closed_at=at.astimezone(timezone.utc)), rules)


def corrections_for(period: Period, closed: dict[Period, ClosedPeriod], ledger: Any, outcomes: Any
                    ) -> dict[str, list[tuple[str, Decimal]]]:
    """`org/team` -> (closed month, exact USD) for the closed months whose first open month is `period`: the
    months right before it, back to the first open one."""
    out: dict[str, list[tuple[str, Decimal]]] = {}
    source = period.previous()
    while source in closed:
        frozen = closed[source]
        now = base_exact(_made(frozen.rules, ledger, outcomes, source, {}))
        then = base_exact(frozen.statement)
        billed: dict[str, Decimal] = {}
        for later, record in closed.items():
            if later > source:
                for (name, team), exact in billed_corrections(record.statement).items():
                    if name == str(source):
                        billed[team] = billed.get(team, Decimal(0)) + exact
        for team in sorted(set(now) | set(then) | set(billed)):
            delta = now.get(team, Decimal(0)) - then.get(team, Decimal(0)) - billed.get(team, Decimal(0))
            if delta:
                out.setdefault(team, []).append((str(source), delta))
        source = source.previous()
    return out


def _made(rules: Rules, ledger: Any, outcomes: Any, period: Period,
          corrections: dict[str, list[tuple[str, Decimal]]]) -> Statement:
    tz = ZoneInfo(rules.timezone)
    start, end = period.ledger_bounds(tz)
    rows = ledger.usage(start, end, TEAM_GROUPS, tz=tz)
    counted = outcomes.outcomes(start, end, [*TEAM_GROUPS, "name"])
    # Providers report UTC days: the month's untracked spend is that of its calendar days, UTC.
    untracked = ReconciliationStore(ledger.engine).untracked_spend(period.start(tz).date(), period.end(tz).date())
    return build_statement(rules.chargeback, period, tz, team_usage(rows, counted), team_orgs=rules.team_orgs,
                           corrections=corrections, untracked=untracked_by_team(untracked),
                           started=started_orgs(rules, ledger, period))


def started_orgs(rules: Rules, ledger: Any, period: Period, *,
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> set[str] | None:
    """The orgs whose fixed charges (platform fees, shared costs) apply in `period` (None: every org): none in a
    month after the current one; with `chargeback.start`, every org from that month on; else the orgs with ledger
    data by the end of the period (from their first month with data on)."""
    tz = ZoneInfo(rules.timezone)
    if period > Period.containing(now(), tz):
        return set()
    if rules.chargeback.start is not None:
        return None if period >= Period.parse(rules.chargeback.start) else set()
    return ledger.reader.values_before("org", period.ledger_bounds(tz)[1])


def chargeback_document(config: Any, ledger: Any, outcomes: Any, period: Period | None, team: str | None,
                        fmt: str, *, private: bool = False) -> tuple[str, bytes]:
    """(content type, body) of `costline chargeback` and `GET /api/v1/chargeback`: one function, the same bytes.
    `period` None is the current month in the configured zone. `private`: the caller may see `team` only (a team
    token): a month without its charges is an empty statement, not an error naming the teams that have some. A closed month's JSON is its stored document, byte
    for byte (its SHA-256 is the content hash printed when it was closed)."""
    if fmt not in FORMATS:
        raise StatementError(f"format={fmt!r}: use one of {', '.join(FORMATS)}")
    if period is None:
        zone = ZoneInfo(config.timezone)
        period = Period.containing(datetime.now(zone), zone)
    closed = ClosedPeriods(ledger.engine).get(period)
    if closed is not None and fmt == "json" and not team:
        return CONTENT_TYPES["json"], closed.document
    statement = statement_for(config, ledger, outcomes, period)
    if team:
        statement = statement.only(team, private=private)
    if fmt == "html":
        return CONTENT_TYPES[fmt], render_html(statement, _details(config, ledger, outcomes, statement))
    if fmt == "focus":
        zone = ZoneInfo(statement.timezone)
        usage = ledger.usage(*statement.period.ledger_bounds(zone), list(USAGE_GROUPS), tz=zone)
        return CONTENT_TYPES[fmt], render_focus(statement, usage, untagged=not team)
    return render(statement, fmt)



def _details(config: Any, ledger: Any, outcomes: Any, statement: Statement) -> dict[str, TeamDetail]:
    """Per team: its top models and features by cost in the month, and its total in the previous month."""
    zone = ZoneInfo(statement.timezone)
    tops: dict[str, dict[str, list[tuple[str, Decimal, int]]]] = {}
    for column in ("model", "feature"):
        for row in ledger.usage(*statement.period.ledger_bounds(zone), [*TEAM_GROUPS, column], tz=zone):
            listed = tops.setdefault(f"{row['org']}/{row['team']}", {}).setdefault(column, [])
            if len(listed) < TOP:  # rows come highest cost first
                listed.append((row[column], Decimal(row["cost_usd"]),
                               sum(int(row[c]) for c in TOKEN_COLUMNS)))
    previous = {t.key: t.total for t in statement_for(config, ledger, outcomes, statement.period.previous()).teams}
    return {t.key: TeamDetail(tops.get(t.key, {}).get("model", ()), tops.get(t.key, {}).get("feature", ()),
                              previous.get(t.key)) for t in statement.teams}
