"""Repricing: bill the ledger's unpriced calls once their model has a price (`costline reprice`), or re-rate every
row at the prices in effect now (`costline reprice --all`); and the audit trail of those re-rates as it is read
(`cost_changes`: `costline cost-changes`, `GET /api/v1/cost-changes`).

Above the ledger, which prices nothing: this reads rows (`LedgerReader.unpriced_rows` / `rows_since`), asks the
pricer for each row's model at that row's hour (so an override's `effective_from` applies hour by hour), and writes
the costs back (`LedgerWriter.price_rows` / `rerate_rows`, both leaving a row alone if calls were billed into it
since it was read; a re-rate also writes its audit trail, `costline_cost_changes`).

A ledger row sums the calls of one hour, owner, model and price context (service tier, processing), so a row is
priced at its summed units, in its own context. For flat prices that is exact: the sum of the calls' costs (a model's
per-request price applies to each successful call of the row: its requests less its errors). For tiered
(long-context) prices it is not, since each call's tier depends on that call's input alone: unpriced units are billed
at the base tier (never pushing summed calls over the cliff), and a re-rate leaves the cost already billed for a row
alone when its model's price there is tiered.

The unpriced slots hold the units of unpriced calls and, of priced calls, the units their model had no price for
(web searches of a model without a search price, say: `pricing.Rates.price`). A reprice bills whichever of them the
model prices now and leaves the others waiting; a re-rate leaves a row alone while its model still cannot price every
unit the row used (it could only bill them $0).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from costline.processor.ledger import Ledger
from costline.processor.ledger.reader import UNPRICED_COLUMNS
from costline.processor.model import BILLABLE_UNITS, LLMCall
from costline.processor.pricing import Pricer, Rates
from costline.processor.units import NS_PER_S, pico_to_usd

_UNITS = tuple(unit for unit in BILLABLE_UNITS if unit.unpriced_slot is not None)
"""The units a row keeps unpriced counts of (reasoning is part of output: no slot of its own)."""


def _units(row: dict[str, Any], *, unpriced: bool) -> LLMCall:
    """The row's units (its unpriced ones with `unpriced`) as one call's, for the rates to price."""
    counts = {unit.attribute: row[(unit.unpriced_slot if unpriced else unit.slot).column]  # type: ignore[union-attr]
              for unit in _UNITS}
    if not unpriced:
        counts["reasoning_tokens"] = row["reasoning_tokens"]
    return LLMCall(provider=row["provider"], request_model=row["model"], response_model=None,
                   operation=row["operation"], **counts)


def _rates(pricer: Pricer, row: dict[str, Any]) -> Rates | None:
    return pricer.rates(row["provider"], row["model"], row["hour"] * NS_PER_S, row["service_tier"] or "",
                        row["processing"] or "")


def _missing(rates: Rates, call: LLMCall) -> set[str]:
    """The units `call` used that `rates` has no price for."""
    return {name for attribute, name in rates.gaps if getattr(call, attribute)}


def _bill_unpriced(row: dict[str, Any], rates: Rates) -> tuple[int, dict[str, int], int] | None:
    """(row id, the unpriced counters it bills as read, their cost) for `LedgerWriter.price_rows`; None when the
    model still prices none of them. Units it has no price for stay in their slots."""
    rates = rates.base()  # the row sums many calls: its total input says nothing about any one call's tier
    call = _units(row, unpriced=True)
    requests = row["unpriced_requests"]
    missing = _missing(rates, call)
    billable = [unit for unit in _UNITS if getattr(call, unit.attribute) and unit.name not in missing]
    if not billable and not (requests and rates.prices_requests):
        return None
    kept = {UNITS_UNPRICED_COLUMN[name] for name in missing}
    return (row["id"], {column: row[column] for column in UNPRICED_COLUMNS if column not in kept},
            rates.cost_pico(call, requests))


UNITS_UNPRICED_COLUMN = {unit.name: unit.unpriced_slot.column for unit in _UNITS}  # type: ignore[union-attr]


def reprice_with(config: Any, ledger: Ledger, since: datetime, *, every_row: bool, now: int) -> tuple[int, int]:
    """`costline reprice [--all]` on an open ledger at `config`'s prices: `rerate` with `every_row`, else `reprice`.
    Returns (rows changed, rows with a tiered price whose billed cost was kept)."""
    pricer = Pricer(config.prices, config.fleets)
    if every_row:
        return rerate(ledger, pricer, since, now=now)
    return reprice(ledger, pricer, since), 0


def reprice(ledger: Ledger, pricer: Pricer, since: datetime) -> int:
    """Price the unpriced units of rows from `since`'s hour on whose model now has a price for them; returns rows
    changed."""
    priced = []
    for row in ledger.reader.unpriced_rows(since):
        rates = _rates(pricer, row)
        if rates is not None and (billed := _bill_unpriced(row, rates)) is not None:
            priced.append(billed)
    return ledger.writer.price_rows(priced) if priced else 0


def rerate(ledger: Ledger, pricer: Pricer, since: datetime, *, now: int) -> tuple[int, int]:
    """Re-rate every row from `since`'s hour on at the price in effect at its hour in its price context, priced rows
    included (after a price correction); each changed cost is recorded in the audit trail. Rows whose model has no
    price, or no price for a unit they used, are left alone; rows whose price is tiered only get their unpriced units
    billed, as `reprice` does (see the module). `now` (unix seconds, the caller's clock) stamps the audit rows.
    Returns (rows changed, rows with a tiered price whose billed cost was kept)."""
    rerated: list[tuple[dict[str, Any], int, str]] = []
    priced = []
    tiered = 0
    for row in ledger.reader.rows_since(since):
        rates = _rates(pricer, row)
        if rates is None:
            continue
        waiting = any(row[column] for column in UNPRICED_COLUMNS)
        if rates.tiered:
            tiered += 1
            if waiting and (billed := _bill_unpriced(row, rates)) is not None:
                priced.append(billed)
            continue
        call = _units(row, unpriced=False)
        if _missing(rates, call):
            continue
        cost = rates.cost_pico(call, row["requests"] - row["errors"])
        if cost != row["cost_pico_usd"] or waiting:
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
