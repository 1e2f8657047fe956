"""The exact ledger: a store of hourly rows per owner × call dimensions, in SQLite (WAL) or PostgreSQL.

Finance's numbers come from here, never from Prometheus. The ledger stores what it is given — entries already
priced and attributed (`model.Entry`) — and answers queries; it prices nothing and imports nothing from pricing,
ownership or normalisation (a test checks it), so reports and other tools open it without the rest of the
processor.

* `engine` — connecting (every wait bounded) and bringing an older schema up to date in place;
* `writer.LedgerWriter` — a batch's rows and identity keys in one transaction;
* `reader.LedgerReader` — usage reports, budget sums, period totals, rows waiting for a price;
* `runs` — cost per agent run (trace), conversation and session: its rows written with the batch, its queries;
* `schema` — the tables, derived from `model`;
* the stores beside them in the same database, each with its tables (`store.Store`: created when first opened):
  `outcomes.OutcomeStore`, `periods.PeriodStore` (closed periods), `reconciliation.ReconciliationStore`,
  `admin.AdminStore` (delegated administration: the changes and their audit log).

`Ledger` opens one database and holds one of each (the stores opened when first asked for).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from costline.processor.config.settings import DEFAULT_LEDGER_TIMEOUT_S
from costline.processor.ledger.admin import AdminStore
from costline.processor.ledger.engine import (
    LedgerUnavailable,
    LedgerUrlError,
    check_url,
    migrate,
    open_engine,
    redact_url,
)
from costline.processor.ledger.outcomes import OutcomeStore
from costline.processor.ledger.periods import PeriodStore
from costline.processor.ledger.reader import UTC, LedgerReader
from costline.processor.ledger.reconciliation import ReconciliationStore
from costline.processor.ledger.runs import DEFAULT_RUN_POLICY, RunPolicy, run_rows, top_runs
from costline.processor.ledger.schema import GROUP_BY
from costline.processor.ledger.store import DEFAULT_RETENTION_HOURS
from costline.processor.ledger.writer import LedgerWriter
from costline.processor.model import Entry

__all__ = ["GROUP_BY", "Ledger", "LedgerReader", "LedgerUnavailable", "LedgerUrlError", "LedgerWriter", "check_url",
           "redact_url"]


class Ledger:
    """One ledger database: its engine, a writer and a reader. Thread-safe: one writer at a time, readers in
    parallel."""

    def __init__(self, url: str, *, timeout_s: float = DEFAULT_LEDGER_TIMEOUT_S, create: bool = True) -> None:
        """Open (and create or migrate) the ledger at `url`; `timeout_s` bounds every wait on the database (locks,
        connecting). Without `create`, a SQLite ledger must already exist (the commands that read one).
        Raises `LedgerUrlError` for a URL that cannot name a ledger (`check_url`), `LedgerUnavailable` naming the
        URL (without its password) when the database does not answer."""
        check_url(url, existing=not create)
        try:
            self.engine = open_engine(url, timeout_s)
            migrate(self.engine)
            self.writer = LedgerWriter(self.engine, timeout_s)  # reads whether an earlier release's text keys are there
        except SQLAlchemyError as err:
            raise LedgerUnavailable(f"cannot open the ledger at {redact_url(url)}: {err}") from err
        self.reader = LedgerReader(self.engine)

    # The stores open (and create their tables) when first asked for, then once per ledger. Two threads asking at
    # the same moment may each open one; `create_tables` is safe against that and either store serves.
    @cached_property
    def outcomes(self) -> OutcomeStore:
        """Outcome counts, written through the writer's bounded transaction."""
        return OutcomeStore(self.engine, self.writer.transaction)

    @cached_property
    def periods(self) -> PeriodStore:
        return PeriodStore(self.engine)

    @cached_property
    def reconciliation(self) -> ReconciliationStore:
        return ReconciliationStore(self.engine)

    @cached_property
    def admin(self) -> AdminStore:
        return AdminStore(self.engine)

    def record(self, entries: Sequence[Entry], *, now: int, retention_hours: int = DEFAULT_RETENTION_HOURS,
               runs: RunPolicy | None = DEFAULT_RUN_POLICY) -> list[Entry]:
        """`LedgerWriter.record`: write a batch (and add its calls to their runs), return the entries that were
        new."""
        return self.writer.record(entries, now=now, retention_hours=retention_hours, runs=runs)

    def usage(self, start: datetime, end: datetime, group_by: Sequence[str], *, tz: ZoneInfo = UTC,
              limit: int | None = None, offset: int = 0) -> list[dict[str, Any]]:
        """`LedgerReader.usage`: totals grouped by `group_by` (`day` and `month` in `tz`)."""
        return self.reader.usage(start, end, group_by, tz=tz, limit=limit, offset=offset)

    def top_runs(self, start: datetime, end: datetime, *, kind: str | None = None,
                 scope: Mapping[str, str] | None = None, limit: int = 20) -> list[dict[str, Any]]:
        """`runs.top_runs`: the period's runs, most expensive first."""
        return top_runs(self.engine, start, end, kind=kind, scope=scope, limit=limit)

    def run(self, kind: str, run_id: str, *, scope: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """`runs.run_rows`: one run's rows, one per owner."""
        return run_rows(self.engine, kind, run_id, scope=scope)

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
            return True
        except SQLAlchemyError:
            return False

    def close(self) -> None:
        self.engine.dispose()
