"""Pricing LLM calls: genai-prices' bundled data, plus negotiated overrides from the config.

A raw `genai_prices.calc_price` costs ~70 µs, far too slow per span, so `Pricer` resolves a model's rates once per
(provider, model, UTC hour) — prices in genai-prices, and overrides with an `effective_from` day, change at given
instants, and an hour bucket resolves them at every hour boundary for one lookup per model per hour — and `Rates` prices each call with integer arithmetic in
pico-dollars (`rates.py`), tiered long-context prices included.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timezone

from costline.processor.config.core import PriceOverride
from costline.processor.pricing.providers import candidates
from costline.processor.pricing.rates import FlatRates, Rates, from_model_price
from costline.processor.units import S_PER_HOUR, epoch_hour

__all__ = ["FlatRates", "Pricer", "Rates"]


def _override_matches(override: PriceOverride, model: str) -> bool:
    """`gpt-4o` covers `gpt-4o` and its dated snapshots (`gpt-4o-2024-08-06`), never `gpt-4o-mini`."""
    name = override.model.lower()
    model = model.lower()
    if model == name:
        return True
    if not model.startswith(name + "-"):
        return False
    suffix = model[len(name) + 1 :]
    # A snapshot suffix is a date: 2024-08-06, 20241022, or 2411 style.
    return suffix.replace("-", "").isdigit()


def _override_in_effect(overrides: list[PriceOverride], provider: str, model: str,
                        day: date) -> PriceOverride | None:
    """The override that prices `model` on `day` (UTC): of those covering it and already in effect, the one that
    took effect last; one without `effective_from` has always been in effect. Among equals, the first configured.
    None: no override yet, the list price applies."""
    best: PriceOverride | None = None
    for override in overrides:
        if override.provider != provider or not _override_matches(override, model):
            continue
        start = override.effective_from or date.min
        if start <= day and (best is None or start > (best.effective_from or date.min)):
            best = override
    return best


class Pricer:
    """Thread-safe rate lookup with a per-(provider, model, hour) cache. Replace the object to reload prices."""

    def __init__(self, overrides: list[PriceOverride]) -> None:
        self._overrides = overrides
        self._cache: dict[tuple[str, str, int], Rates | None] = {}
        self._lock = threading.Lock()

    def rates(self, provider: str, model: str | None, when_unix_nano: int) -> Rates | None:
        """The rates for `model` at that time, or None when it cannot be priced (an unpriced model)."""
        if not model:
            return None
        hour = epoch_hour(when_unix_nano)
        key = (provider, model, hour)
        try:
            return self._cache[key]
        except KeyError:
            pass
        rates = self._lookup(provider, model, hour)
        with self._lock:
            if len(self._cache) > 100_000:  # bounded: a flood of distinct model names cannot exhaust memory
                self._cache.clear()
            self._cache[key] = rates
        return rates

    def _lookup(self, provider: str, model: str, hour: int) -> Rates | None:
        when = datetime.fromtimestamp(hour * S_PER_HOUR, tz=timezone.utc)
        override = _override_in_effect(self._overrides, provider, model, when.date())
        if override is not None:
            source = f"override from {override.effective_from}" if override.effective_from else "override"
            return Rates(source, override.model, FlatRates(
                override.input_per_mtok, override.output_per_mtok, override.cache_read_per_mtok,
                override.cache_write_per_mtok))
        from genai_prices.data_snapshot import get_snapshot

        snapshot = get_snapshot()
        for provider_id in candidates(provider):
            try:
                found_provider, info = snapshot.find_provider_model(model, None, provider_id, None)
            except LookupError:
                continue
            rates = from_model_price("genai-prices", f"{found_provider.id}/{info.id}", info.get_prices(when))
            if rates is not None:
                return rates
        return None
