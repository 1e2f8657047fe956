"""Repricing: bill the ledger's unpriced calls once their model has a price (`costline reprice`), or re-rate every
row at the prices in effect now (`costline reprice --all`); and the audit trail of those re-rates as it is read
(`cost_changes`: `costline cost-changes`, `GET /api/v1/cost-changes`).

Above the ledger, which prices nothing: this reads rows (`LedgerReader.unpriced_rows` / `rows_since`), asks the
pricer for each row's model at that row's hour (so an override's `effective_from` applies hour by hour), and writes
the costs back (`LedgerWriter.price_rows` / `rerate_rows`, both leaving a row alone if calls were billed into it
since it was read; a re-rate also writes its audit trail, `costline_cost_changes`).

A ledger row sums the calls of one hour, owner and model, so a row is priced at its summed tokens. For flat prices
that is exact: the sum of the calls' costs. For tiered (long-context) prices it is not, since each call's tier
depends on that call's input alone: unpriced tokens are billed at the base tier (never pushing summed calls over
the cliff), and a re-rate leaves the cost already billed for a row alone when its model's price there is tiered.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from costline.processor.ledger import Ledger
from costline.processor.ledger.reader import UNPRICED_COLUMNS
from costline.processor.model import LLMCall
from costline.processor.pricing import Pricer, Rates
from costline.processor.units import NS_PER_S, pico_to_usd


def _tokens(row: dict[str, Any], prefix: str) -> LLMCall:
    return LLMCall(
        provider=row["provider"], request_model=row["model"], response_model=None, operation=row["operation"],
        input_tokens=row[f"{prefix}input_tokens"], output_tokens=row[f"{prefix}output_tokens"],
        cache_read_tokens=row[f"{prefix}cache_read_tokens"], cache_write_tokens=row[f"{prefix}cache_write_tokens"],
    )


def reprice_with(config: Any, ledger: Ledger, since: datetime, *, every_row: bool, now: int) -> tuple[int, int]:
    """`costline reprice [--all]` on an open ledger at `config`'s prices: `rerate` with `every_row`, else `reprice`.
    Returns (rows changed, rows with a tiered price whose billed cost was kept)."""
    pricer = Pricer(config.prices, config.fleets)
    if every_row:
        return rerate(ledger, pricer, since, now=now)
    return reprice(ledger, pricer, since), 0


def reprice(ledger: Ledger, pricer: Pricer, since: datetime) -> int:
    """Price the unpriced tokens of rows from `since`'s hour on whose model now has a price; returns rows changed."""
    priced: list[tuple[int, dict[str, int], int]] = []
    for row in ledger.reader.unpriced_rows(since):
        rates = pricer.rates(row["provider"], row["model"], row["hour"] * NS_PER_S)
        if rates is None:
            continue
        if rates.tiered:
            # The row sums many calls, so its total input says nothing about any one call's tier: bill the base
            # tier rather than push every call over the long-context cliff.
            rates = Rates(rates.source, rates.model_id, rates.flat)
        priced.append((row["id"], {column: row[column] for column in UNPRICED_COLUMNS},
                       rates.cost_pico(_tokens(row, "unpriced_"))))
    return ledger.writer.price_rows(priced) if priced else 0


def rerate(ledger: Ledger, pricer: Pricer, since: datetime, *, now: int) -> tuple[int, int]:
    """Re-rate every row from `since`'s hour on at the price in effect at its hour, priced rows included (after a
    price correction); each changed cost is recorded in the audit trail. Rows whose model has no price are left
    alone; rows whose price is tiered only get their unpriced tokens billed, as `reprice` does (see the module).
    `now` (unix seconds, the caller's clock) stamps the audit rows. Returns (rows changed, rows with a tiered price
    whose billed cost was kept)."""
    rerated: list[tuple[dict[str, Any], int, str]] = []
    priced: list[tuple[int, dict[str, int], int]] = []
    tiered = 0
    for row in ledger.reader.rows_since(since):
        rates = pricer.rates(row["provider"], row["model"], row["hour"] * NS_PER_S)
        if rates is None:
            continue
        if rates.tiered:
            tiered += 1
            if row["unpriced_requests"]:
                base = Rates(rates.source, rates.model_id, rates.flat)
                priced.append((row["id"], {column: row[column] for column in UNPRICED_COLUMNS},
                               base.cost_pico(_tokens(row, "unpriced_"))))
            continue
        cost = rates.cost_pico(_tokens(row, ""))
        if cost != row["cost_pico_usd"] or row["unpriced_requests"]:
            rerated.append((row, cost, f"{rates.source} {rates.model_id}"))
    changed = ledger.writer.rerate_rows(rerated, now=now) if rerated else 0
    if priced:
        changed += ledger.writer.price_rows(priced)
    return changed, tiered


COST_CHANGE_COLUMNS = ("changed_at", "hour", "provider", "model", "old_cost_usd", "new_cost_usd", "price_source",
                       "row_id")
"""The audit trail as `costline cost-changes` and `GET /api/v1/cost-changes` give it, in this column order."""


def cost_changes(ledger: Ledger, start: datetime, end: datetime, *, limit: int | None = None,
                 offset: int = 0) -> list[dict[str, Any]]:
    """The re-rates made in [`start`, `end`), oldest first: when (`changed_at`), the ledger row's hour, provider and
    model, its cost before and after (exact `Decimal` USD), the price that made the new one, and the row's id."""
    return [{"changed_at": _instant(row["changed_at"]), "hour": _instant(row["hour"]), "provider": row["provider"],
             "model": row["model"], "old_cost_usd": pico_to_usd(row["old_cost_pico_usd"]),
             "new_cost_usd": pico_to_usd(row["new_cost_pico_usd"]), "price_source": row["price_source"],
             "row_id": row["row_id"]}
            for row in ledger.reader.cost_changes(start, end, limit=limit, offset=offset)]


def _instant(unix_s: int) -> datetime:
    return datetime.fromtimestamp(unix_s, timezone.utc)
