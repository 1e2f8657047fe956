"""Pricing LLM calls: genai-prices' bundled data, plus negotiated overrides from the config.

A raw `genai_prices.calc_price` costs ~70 µs, far too slow per span, so `Pricer` resolves a model's rates once per
interval in which they cannot change, and `Rates` prices each call with integer arithmetic in pico-dollars
(`rates.py`), tiered long-context prices included. Prices change at known instants: a genai-prices price or a
config override that starts on a (UTC) day, and genai-prices' time-of-day prices (deepseek's off-peak hours start
and end at 16:30 and 00:30 UTC). The interval is therefore the UTC day cut at the model's own time-of-day
boundaries (`_day_boundaries`): the rates of a call are those at its instant, never the neighbouring period's.

A call's price context, its service tier (`flex`, `priority`, ...) and processing (`batch`), selects genai-prices'
price variants (`ModelInfo.get_prices(when, price_context)`), and an override only for the context it names; the
cache is keyed by both. As `calc_price` does, the context applies to a model found under the call's own provider,
not to one genai-prices falls back to another provider for.

**Fleet-priced models.** A model a self-hosted fleet serves (`fleets:`, `config/chargeback.py`) has no price per
token: what it costs is the fleet's monthly cost, allocated at the statement by consumption. The rule, so that such a
call is neither unpriced (no unpriced alert, not waiting for a price) nor double-charged: the pricer answers rates of
$0 per token whose `source` is `fleet <name>` (`FLEET_SOURCE`). The call is recorded priced at $0 marginal, its
tokens counted as any priced call's; `reports/chargeback` adds the fleet's cost as `fleet` lines. A fleet takes
precedence over genai-prices (check-config refuses a `prices:` override of a fleet model).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from costline.processor.config.chargeback import Fleet
from costline.processor.config.core import PriceOverride
from costline.processor.pricing.providers import candidates
from costline.processor.pricing.rates import FlatRates, Rates, from_model_price
from costline.processor.units import NS_PER_S, S_PER_DAY

__all__ = ["FLEET_SOURCE", "FlatRates", "Pricer", "Rates", "fleet_of"]

FLEET_SOURCE = "fleet "
"""The start of the `Rates.source` of a fleet-priced model: `fleet gpu-pool`."""
_FREE = FlatRates({"input_mtok": Decimal(0), "output_mtok": Decimal(0)})
"""A fleet model's per-token price: every token unit at $0 (cached, audio... fall to input and output)."""


def fleet_of(fleets: Sequence[Fleet], provider: str, model: str) -> Fleet | None:
    """The fleet serving `provider`'s `model`, if any (check-config makes it at most one)."""
    return next((fleet for fleet in fleets if fleet.serves(provider, model)), None)


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


def _override_in_effect(overrides: list[PriceOverride], provider: str, model: str, day: date,
                        service_tier: str = "", processing: str = "") -> PriceOverride | None:
    """The override that prices `model` on `day` (UTC) in that price context: of those covering it and already in
    effect, the one that took effect last; one without `effective_from` has always been in effect. Among equals,
    the first configured. An override names the context it is for ("" being the standard tier, online): a
    negotiated standard price is no flex or batch price. None: no override yet, the list price applies."""
    best: PriceOverride | None = None
    for override in overrides:
        if override.provider != provider or not _override_matches(override, model):
            continue
        if override.service_tier != service_tier or override.processing != processing:
            continue
        start = override.effective_from or date.min
        if start <= day and (best is None or start > (best.effective_from or date.min)):
            best = override
    return best


class Pricer:
    """Thread-safe rate lookup, cached per (provider, model, service tier, processing, UTC day, segment of the day
    between the model's time-of-day price changes). Replace the object to reload prices."""

    def __init__(self, overrides: list[PriceOverride], fleets: Sequence[Fleet] = ()) -> None:
        self._overrides = overrides
        self._fleets = tuple(fleets)
        self._cache: dict[tuple[str, str, str, str, int, int], Rates | None] = {}
        self._boundaries: dict[tuple[str, str], tuple[int, ...]] = {}
        self._lock = threading.Lock()

    def rates(self, provider: str, model: str | None, when_unix_nano: int, service_tier: str = "",
              processing: str = "") -> Rates | None:
        """The rates for `model` at that time in that price context ("" for the standard tier and online
        processing, as `LLMCall` has them), or None when it cannot be priced (an unpriced model)."""
        if not model:
            return None
        day, second = divmod(when_unix_nano // NS_PER_S, S_PER_DAY)
        boundaries = self._boundaries.get((provider, model))
        if boundaries is None:
            boundaries = self._day_boundaries(provider, model)
        segment = bisect.bisect_right(boundaries, second) if boundaries else 0
        key = (provider, model, service_tier, processing, day, segment)
        try:
            return self._cache[key]
        except KeyError:
            pass
        start = day * S_PER_DAY + (boundaries[segment - 1] if segment else 0)  # the segment's first second
        rates = self._lookup(provider, model, datetime.fromtimestamp(start, tz=timezone.utc), service_tier,
                             processing)
        with self._lock:
            if len(self._cache) > 100_000:  # bounded: a flood of distinct model names cannot exhaust memory
                self._cache.clear()
                self._boundaries.clear()
            self._cache[key] = rates
        return rates

    def _day_boundaries(self, provider: str, model: str) -> tuple[int, ...]:
        """The seconds of the UTC day at which the model's genai-prices prices change (time-of-day prices), sorted;
        empty for a model priced the same all day (most)."""
        seconds: set[int] = set()
        for _, info in _found(provider, model):
            conditions = [*(info.prices if isinstance(info.prices, list) else ()), *(info.price_variants or ())]
            for condition in conditions:
                constraint = condition.constraint
                for moment in (getattr(constraint, "start_time", None), getattr(constraint, "end_time", None)):
                    if moment is not None:  # a naive time of day is UTC, as genai-prices reads it
                        utc = datetime.combine(date(1970, 1, 1), moment)
                        utc = utc.replace(tzinfo=timezone.utc) if utc.tzinfo is None else utc.astimezone(timezone.utc)
                        seconds.add((utc.hour * 60 + utc.minute) * 60 + utc.second)
        seconds.discard(0)
        boundaries = tuple(sorted(seconds))
        with self._lock:
            self._boundaries[(provider, model)] = boundaries
        return boundaries

    def _lookup(self, provider: str, model: str, when: datetime, service_tier: str,
                processing: str) -> Rates | None:
        fleet = fleet_of(self._fleets, provider, model)
        if fleet is not None:
            return Rates(FLEET_SOURCE + fleet.name, model, _FREE)
        override = _override_in_effect(self._overrides, provider, model, when.date(), service_tier, processing)
        if override is not None:
            source = f"override from {override.effective_from}" if override.effective_from else "override"
            return Rates(source, override.model, FlatRates(_completed(override.price_keys())))
        context = {key: value for key, value in (("service_tier", service_tier), ("processing", processing)) if value}
        for found_provider, info in _found(provider, model):
            # calc_price applies a context only to a model of the provider itself, not to a fallback provider's
            own = any(info is candidate for candidate in found_provider.models)
            price = info.get_prices(when, context or None) if own else info.get_prices(when)
            rates = from_model_price("genai-prices", f"{found_provider.id}/{info.id}", price)
            if rates is not None:
                return rates
        return None


def _completed(prices: dict[str, Decimal]) -> dict[str, Decimal]:
    """An override's prices as genai-prices requires a price set to be (`validate_priced_units`): a unit priced
    with its parents priced (a one-hour write without a write price: writes cost the input price, as they would
    unpriced), and two overlapping priced units with their overlap priced (audio input and cache reads: cached audio).
    An overlap gets the lower of the two prices; Costline's cached tokens carry no modality, so it bills nothing."""
    from genai_prices.units import _get_registry

    registry = _get_registry()
    prices = dict(prices)
    changed = True
    while changed:
        changed = False
        units = [registry.unit_for_price_key(key) for key in prices]
        for unit in units:
            for ancestor in sorted(registry.ancestor_usage_keys(unit.usage_key)):
                key = registry.units[ancestor].price_key
                if key not in prices:  # the nearest priced ancestor's price, as the unit would be billed without
                    prices[key] = _nearest_price(registry, ancestor, prices)
                    changed = True
        for i, first in enumerate(units):
            for second in units[i + 1:]:
                join = registry.find_join(first, second) if first.is_compatible_with(second) else None
                if join is not None and join.price_key not in prices:
                    prices[join.price_key] = min(prices[first.price_key], prices[second.price_key])
                    changed = True
    return prices


def _nearest_price(registry: Any, usage_key: str, prices: dict[str, Decimal]) -> Decimal:
    ancestors = sorted((registry.units[key] for key in registry.ancestor_usage_keys(usage_key)
                        if registry.units[key].price_key in prices), key=lambda unit: -len(unit.dimensions))
    return prices[ancestors[0].price_key] if ancestors else Decimal(0)


def _found(provider: str, model: str) -> Iterator[tuple[Any, Any]]:
    """genai-prices' (provider, model info) pairs for a call, under each provider id the call's provider may have
    there, in order of preference."""
    from genai_prices.data_snapshot import get_snapshot

    snapshot = get_snapshot()
    for provider_id in candidates(provider):
        try:
            yield snapshot.find_provider_model(model, None, provider_id, None)
        except LookupError:
            continue
