"""The stored reconciliation: its own tables beside the ledger's (same database), written one run at a time.

A run for one provider and days [start, end) replaces what an earlier run stored for those days, in one
transaction: readers see the old run or the new one, never a mixture, and a failure leaves the old one. Money is
integer pico-dollars (`units`), as in the ledger.

`ReconciliationStore.untracked_spend` is the reader the chargeback statement uses: untracked spend per owner for a
period (see docs/reconciliation.md).
"""

from __future__ import annotations

import time
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
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from costline.processor.ledger.engine import create_tables
from costline.processor.reports.reconcile.compare import Result
from costline.processor.units import pico_to_usd, usd_to_pico

metadata = MetaData()

SIDES = ("provider", "ledger")
TOKEN_COLUMNS = ("uncached_input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")

reconciliation = Table(
    "costline_reconciliation",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
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

reconciliation_billed = Table(
    "costline_reconciliation_billed",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
    Column("day", String(10), nullable=False),
    Column("scope_kind", String(32), nullable=False),  # project_id (OpenAI) or workspace_id (Anthropic)
    Column("scope_id", String(255), nullable=False),  # "" = not grouped, or Anthropic's default workspace
    Column("billed_pico_usd", BigInteger, nullable=False),
    Column("priced_pico_usd", BigInteger, nullable=False),
    Column("reconciled_at", BigInteger, nullable=False),
    UniqueConstraint("provider", "day", "scope_id", name="uq_costline_reconciliation_billed_row"),
)

reconciliation_runs = Table(
    "costline_reconciliation_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
    Column("start_day", String(10), nullable=False),
    Column("end_day", String(10), nullable=False),  # exclusive
    Column("reconciled_at", BigInteger, nullable=False),
    Column("sources", String(2000), nullable=False, default=""),
)


class StoreError(Exception):
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


class ReconciliationStore:
    """The reconciliation tables in the ledger's database (`engine` is the ledger's)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        try:
            # The chargeback gauges and the background reconciler open this store at the same time at start.
            create_tables(metadata, engine)
        except SQLAlchemyError as err:
            raise StoreError(f"cannot create the reconciliation tables: {err}") from err

    def save(self, result: Result, *, now: int | None = None) -> None:
        """Replace the provider's stored days [start, end) with `result`, in one transaction."""
        now = int(time.time()) if now is None else now
        first, last = result.start.isoformat(), result.end.isoformat()
        rows = [_row(r, now) for r in result.rows]
        billed = [{"provider": result.provider, "day": b.day.isoformat(), "scope_kind": b.scope_kind,
                   "scope_id": b.scope_id, "billed_pico_usd": usd_to_pico(b.billed_usd),
                   "priced_pico_usd": b.priced_pico, "reconciled_at": now} for b in result.billed or ()]
        try:
            with self.engine.begin() as conn:
                for table in (reconciliation, reconciliation_billed):
                    if table is reconciliation_billed and result.billed is None:
                        continue  # no cost report read this time: the stored billed rows stay
                    conn.execute(delete(table).where(and_(table.c.provider == result.provider,
                                                          table.c.day >= first, table.c.day < last)))
                if rows:
                    conn.execute(insert(reconciliation), rows)
                if billed:
                    conn.execute(insert(reconciliation_billed), billed)
                conn.execute(insert(reconciliation_runs).values(
                    provider=result.provider, start_day=first, end_day=last, reconciled_at=now,
                    sources=", ".join(result.sources)[:2000]))
        except SQLAlchemyError as err:
            raise StoreError(f"reconciliation not stored (nothing written): {type(err).__name__}: {err}") from err

    def rows(self, provider: str, start: date, end: date) -> list[dict[str, Any]]:
        query = (select(reconciliation).where(reconciliation.c.provider == provider)
                 .where(reconciliation.c.day >= start.isoformat()).where(reconciliation.c.day < end.isoformat())
                 .order_by(reconciliation.c.day, reconciliation.c.owner_kind, reconciliation.c.owner,
                           reconciliation.c.model, reconciliation.c.identity))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def untracked_spend(self, start: date, end: date, *, provider: str | None = None) -> list[dict[str, Any]]:
        """Untracked spend (billed by the provider, seen by no span) per provider and owner for UTC days
        [start, end): `{provider, owner_kind, owner, org, team, untracked_usd}` (Decimal, exact), owners with
        none left out. Owner `untracked`/`untracked` is spend under provider identities no config entry maps."""
        t = reconciliation
        query = (select(t.c.provider, t.c.owner_kind, t.c.owner, t.c.org, t.c.team,
                        func.sum(t.c.untracked_pico_usd).label("pico"))
                 .where(t.c.day >= start.isoformat()).where(t.c.day < end.isoformat())
                 .group_by(t.c.provider, t.c.owner_kind, t.c.owner, t.c.org, t.c.team)
                 .order_by(t.c.provider, t.c.owner_kind, t.c.owner, t.c.org, t.c.team))
        if provider is not None:
            query = query.where(t.c.provider == provider)
        with self.engine.connect() as conn:
            found = conn.execute(query).all()
        return [{"provider": p, "owner_kind": kind, "owner": owner, "org": org, "team": team,
                 "untracked_usd": pico_to_usd(int(pico))}
                for p, kind, owner, org, team, pico in found if pico]

    def latest_totals(self) -> list[OwnerTotals]:
        """Per provider and owner, the totals of the provider's latest run window (for the gauges)."""
        runs = reconciliation_runs
        t = reconciliation
        with self.engine.connect() as conn:
            latest = conn.execute(select(runs.c.provider, runs.c.start_day, runs.c.end_day)
                                  .where(runs.c.id.in_(select(func.max(runs.c.id)).group_by(runs.c.provider))))
            out: list[OwnerTotals] = []
            for provider, first, last in latest.all():
                query = (select(t.c.owner_kind, t.c.owner, t.c.org, t.c.team,
                                func.sum(t.c.provider_cost_pico_usd), func.sum(t.c.drift_pico_usd),
                                func.sum(t.c.untracked_pico_usd))
                         .where(t.c.provider == provider).where(t.c.day >= first).where(t.c.day < last)
                         .group_by(t.c.owner_kind, t.c.owner, t.c.org, t.c.team))
                for kind, owner, org, team, cost, drift, untracked in conn.execute(query):
                    out.append(OwnerTotals(provider, kind, owner, org, team, int(cost or 0), int(drift or 0),
                                           int(untracked or 0)))
        return out


def _row(r: Any, now: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "provider": r.provider, "day": r.day.isoformat(), "model": r.model, "owner_kind": r.owner.kind,
        "owner": r.owner.name, "org": r.owner.org, "team": r.owner.team, "identity": r.identity,
        "provider_requests": r.provider_requests, "ledger_requests": r.ledger_requests,
        "provider_cost_pico_usd": r.provider_cost_pico, "ledger_cost_pico_usd": r.ledger_cost_pico,
        "drift_pico_usd": r.drift_pico, "untracked_pico_usd": r.untracked_pico, "reconciled_at": now,
    }
    for side, tokens in (("provider", r.provider_tokens), ("ledger", r.ledger_tokens)):
        for name, value in zip(TOKEN_COLUMNS, tokens, strict=True):
            out[f"{side}_{name}"] = value
    return out
