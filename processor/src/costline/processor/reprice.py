"""Repricing: bill the ledger's unpriced calls once their model has a price (`costline reprice`).

Above the ledger, which prices nothing: this reads the rows still waiting for a price (`LedgerReader.unpriced_rows`),
asks the pricer for each row's model at that row's hour, and writes the costs back (`LedgerWriter.price_rows`,
which leaves a row alone if calls were billed into it since it was read).
"""

from __future__ import annotations

from datetime import datetime

from costline.processor.ledger import Ledger
from costline.processor.ledger.reader import UNPRICED_COLUMNS
from costline.processor.model import LLMCall
from costline.processor.pricing import Pricer, Rates
from costline.processor.units import NS_PER_S


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
        tokens = LLMCall(
            provider=row["provider"], request_model=row["model"], response_model=None, operation=row["operation"],
            input_tokens=row["unpriced_input_tokens"], output_tokens=row["unpriced_output_tokens"],
            cache_read_tokens=row["unpriced_cache_read_tokens"], cache_write_tokens=row["unpriced_cache_write_tokens"],
        )
        priced.append((row["id"], {column: row[column] for column in UNPRICED_COLUMNS}, rates.cost_pico(tokens)))
    return ledger.writer.price_rows(priced) if priced else 0
