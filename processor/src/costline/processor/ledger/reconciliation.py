"""Reconciliation in the ledger's database: the stored comparison of a provider's reports with the ledger, per day,
model and owner (`costline_reconciliation`), the provider's billed amounts per scope (`costline_reconciliation_billed`)
and the runs that wrote them (`costline_reconciliation_runs`).

The store keeps the rows it is handed: `reports.reconcile.store` turns a reconciliation `Result` into them. A run for
one provider and days [start, end) replaces what an earlier run stored for those days, in one transaction: readers
see the old run or the new one, never a mixture, and a failure leaves the old one. Money is integer pico-dollars
(`units`), as in the ledger.

`untracked_spend` is the reader the chargeback statement uses: untracked spend per owner for a period (see
docs/reconciliation.md); `latest_totals` the one the reconciliation gauges use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    and_,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.schema import SchemaItem

from costline.processor.ledger.engine import LedgerUnavailable
from costline.processor.ledger.store import Store
from costline.processor.units import pico_to_usd

metadata = MetaData()

SIDES = ("provider", "ledger")
TOKEN_COLUMNS = ("uncached_input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")


def _provider_table(name: str, *columns: SchemaItem) -> Table:
    """A table of one provider's runs: a row id, the provider, then `columns` and constraints (fresh ones: a column
    belongs to one table)."""
    return Table(name, metadata, Column("id", Integer, primary_key=True, autoincrement=True),
                 Column("provider", String(32), nullable=False), *columns)


reconciliation = _provider_table(
    "costline_reconciliation",
    Column("day", String(10), nullable=False),  # ISO date, UTC (the providers' buckets)
    Column("model", String(255), nullable=False),
    Column("owner_kind", String(16), nullable=False),  # key, user, team, or untracked
    Column("owner", String(255), nullable=False),
    Column("org", String(255), nullable=False, default=""),
    Column("team", String(255), nullable=False, default=""),
    Column("identity", String(1000), nullable=False, default=""),  # kind:id[,kind:id...]
    *(Column(f"{side}_{name}", BigInteger, nullable=False, default=0) for side in SIDES for name in TOKEN_COLUMNS),
    Column("provider_requests", BigInteger, nullable=True),  # Anthropic's usage report has no request count
    Column("ledger_requests", BigInteger, nullable=False, default=0),
    Column("provider_cost_pico_usd", BigInteger, nullable=False),
    Column("ledger_cost_pico_usd", BigInteger, nullable=False),
    Column("drift_pico_usd", BigInteger, nullable=False),
    Column("untracked_pico_usd", BigInteger, nullable=False),
    Column("reconciled_at", BigInteger, nullable=False),
    UniqueConstraint("provider", "day", "model", "owner_kind", "owner", "identity",
                     name="uq_costline_reconciliation_row"),
)
Index("ix_costline_reconciliation_day", reconciliation.c.day)

reconciliation_billed = _provider_table(
    "costline_reconciliation_billed",
    Column("day", String(10), nullable=False),
    Column("scope_kind", String(32), nullable=False),  # project_id (OpenAI) or workspace_id (Anthropic)
    Column("scope_id", String(255), nullable=False),  # "" = not grouped, or Anthropic's default workspace
    Column("billed_pico_usd", BigInteger, nullable=False),
    Column("priced_pico_usd", BigInteger, nullable=False),
    Column("reconciled_at", BigInteger, nullable=False),
    UniqueConstraint("provider", "day", "scope_id", name="uq_costline_reconciliation_billed_row"),
)

reconciliation_runs = _provider_table(
    "costline_reconciliation_runs",
    Column("start_day", String(10), nullable=False),
    Column("end_day", String(10), nullable=False),  # exclusive
    Column("reconciled_at", BigInteger, nullable=False),
    Column("sources", String(2000), nullable=False, default=""),
)


SOURCES_LENGTH = reconciliation_runs.c.sources.type.length


class StoreError(LedgerUnavailable):
    """The reconciliation could not be stored; nothing of this run was written."""


@dataclass(frozen=True)
class OwnerTotals:
    provider: str
    owner_kind: str
    owner: str
    org: str
    team: str
    provider_pico: int
    drift_pico: int
    untracked_pico: int


@dataclass(frozen=True)
class Run:
    """One provider's reconciliation of UTC days [start, end), as rows of the tables above (without
    `reconciled_at`, which `ReconciliationStore.replace` stamps)."""

    provider: str
    start: date
    end: date
    rows: Sequence[dict[str, Any]]
    billed: Sequence[dict[str, Any]] | None
    """None: no cost report was read this time, and the stored billed rows of those days stay."""
    sources: str


class ReconciliationStore(Store):
    """The reconciliation tables in the ledger's database."""

    metadata = metadata
    holds = "reconciliation"

    def replace(self, run: Run, *, now: int) -> None:
        """Replace the provider's stored days [start, end) with `run`, in one transaction."""
        first, last = run.start.isoformat(), run.end.isoformat()
        stamped = {"reconciled_at": now}
        try:
            with self.engine.begin() as conn:
                for table in (reconciliation, reconciliation_billed):
                    if table is reconciliation_billed and run.billed is None:
                        continue  # no cost report read this time: the stored billed rows stay
                    conn.execute(delete(table).where(and_(table.c.provider == run.provider,
                                                          table.c.day >= first, table.c.day < last)))
                if run.rows:
                    conn.execute(insert(reconciliation), [{**r, **stamped} for r in run.rows])
                if run.billed:
                    conn.execute(insert(reconciliation_billed),
                                 [{"provider": run.provider, **b, **stamped} for b in run.billed])
                conn.execute(insert(reconciliation_runs).values(
                    provider=run.provider, start_day=first, end_day=last, sources=run.sources[:SOURCES_LENGTH],
                    **stamped))
        except SQLAlchemyError as err:
            raise StoreError(f"reconciliation not stored (nothing written): {type(err).__name__}: {err}") from err

    def rows(self, provider: str, start: date, end: date) -> list[dict[str, Any]]:
        return self._read(select(reconciliation).where(reconciliation.c.provider == provider)
                          .where(reconciliation.c.day >= start.isoformat())
                          .where(reconciliation.c.day < end.isoformat())
                          .order_by(reconciliation.c.day, reconciliation.c.owner_kind, reconciliation.c.owner,
                                    reconciliation.c.model, reconciliation.c.identity))

    def untracked_spend(self, start: date, end: date, *, provider: str | None = None) -> list[dict[str, Any]]:
        """Untracked spend (billed by the provider, seen by no span) per provider and owner for UTC days
        [start, end): `{provider, owner_kind, owner, org, team, untracked_usd}` (Decimal, exact), owners with
        none left out. Owner `untracked`/`untracked` is spend under provider identities no config entry maps."""
        t = reconciliation
        owner = (t.c.provider, t.c.owner_kind, t.c.owner, t.c.org, t.c.team)
        query = (select(*owner, func.sum(t.c.untracked_pico_usd).label("pico"))
                 .where(t.c.day >= start.isoformat()).where(t.c.day < end.isoformat())
                 .group_by(*owner).order_by(*owner))
        if provider is not None:
            query = query.where(t.c.provider == provider)
        return [{**{k: r[k] for k in ("provider", "owner_kind", "owner", "org", "team")},
                 "untracked_usd": pico_to_usd(int(r["pico"]))} for r in self._read(query) if r["pico"]]

    def latest_totals(self) -> list[OwnerTotals]:
        """Per provider and owner, the totals of the provider's latest run window (for the gauges)."""
        runs = reconciliation_runs
        t = reconciliation
        out: list[OwnerTotals] = []
        latest = self._read(select(runs.c.provider, runs.c.start_day, runs.c.end_day)
                            .where(runs.c.id.in_(select(func.max(runs.c.id)).group_by(runs.c.provider))))
        for run in latest:
            query = (select(t.c.owner_kind, t.c.owner, t.c.org, t.c.team,
                            func.sum(t.c.provider_cost_pico_usd).label("cost"),
                            func.sum(t.c.drift_pico_usd).label("drift"),
                            func.sum(t.c.untracked_pico_usd).label("untracked"))
                     .where(t.c.provider == run["provider"]).where(t.c.day >= run["start_day"])
                     .where(t.c.day < run["end_day"]).group_by(t.c.owner_kind, t.c.owner, t.c.org, t.c.team))
            out.extend(OwnerTotals(run["provider"], r["owner_kind"], r["owner"], r["org"], r["team"],
                                   int(r["cost"] or 0), int(r["drift"] or 0), int(r["untracked"] or 0))
                       for r in self._read(query))
        return out
