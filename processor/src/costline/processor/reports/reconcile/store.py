"""Storing a reconciliation: a `Result` turned into the rows of the ledger's reconciliation tables
(`ledger.reconciliation`, which owns them and their readers).

A run for one provider and days [start, end) replaces what an earlier run stored for those days, in one
transaction: readers see the old run or the new one, never a mixture, and a failure (`StoreError`) leaves the old one.
"""

from __future__ import annotations

from typing import Any

from costline.processor.ledger.reconciliation import TOKEN_COLUMNS, ReconciliationStore, Run
from costline.processor.reports.reconcile.compare import Result
from costline.processor.units import usd_to_pico


def save(store: ReconciliationStore, result: Result, *, now: int) -> None:
    """Replace the provider's stored days [start, end) with `result`, in one transaction (`StoreError` if not);
    `now` (unix seconds, the caller's clock) stamps the run."""
    store.replace(run_of(result), now=now)


def run_of(result: Result) -> Run:
    """`result` as the rows the ledger stores."""
    billed = None if result.billed is None else [
        {"day": b.day.isoformat(), "scope_kind": b.scope_kind, "scope_id": b.scope_id,
         "billed_pico_usd": usd_to_pico(b.billed_usd), "priced_pico_usd": b.priced_pico} for b in result.billed]
    return Run(result.provider, result.start, result.end, [_row(r) for r in result.rows], billed,
               ", ".join(result.sources))


def _row(r: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "provider": r.provider, "day": r.day.isoformat(), "model": r.model, "owner_kind": r.owner.kind,
        "owner": r.owner.name, "org": r.owner.org, "team": r.owner.team, "identity": r.identity,
        "provider_requests": r.provider_requests, "ledger_requests": r.ledger_requests,
        "provider_cost_pico_usd": r.provider_cost_pico, "ledger_cost_pico_usd": r.ledger_cost_pico,
        "drift_pico_usd": r.drift_pico, "untracked_pico_usd": r.untracked_pico,
    }
    for side, tokens in (("provider", r.provider_tokens), ("ledger", r.ledger_tokens)):
        for name, value in zip(TOKEN_COLUMNS, tokens, strict=True):
            out[f"{side}_{name}"] = value
    return out
