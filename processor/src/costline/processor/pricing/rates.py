"""The rates of one model at one instant, and the cost of one call at those rates, in integer pico-dollars.

Prices are USD per million tokens, so one token at `p` $/MTok costs `p * 10**6` pico-dollars (`units`). For every
list price and any override with at most six decimals that is a whole number, so a call's cost is a handful of
integer multiplications: exact and several times cheaper than Decimal arithmetic. Finer overrides fall back to
Decimal and are rounded to the pico-dollar (half-even) once per call.

Tiered (long-context) prices follow genai-prices' cliff rule: once a request's total input tokens (cache
included) exceed a tier's start, that tier's rate applies to all of its tokens of that type. The tier is chosen per
call by bisecting the tier starts, and each interval has its own flat rates, precomputed.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from costline.processor.model import LLMCall
from costline.processor.units import PICO_PER_USD, TOKENS_PER_MTOK, pico_to_usd

PICO_PER_TOKEN_PER_MTOK = Decimal(PICO_PER_USD // TOKENS_PER_MTOK)
"""1 $/MTok = 10**6 pico-dollars per token."""

TOKEN_PRICES = ("input", "cache_read", "cache_write", "output")


def _per_token(price_per_mtok: Decimal) -> int | Decimal:
    pico = price_per_mtok * PICO_PER_TOKEN_PER_MTOK
    return int(pico) if pico == pico.to_integral_value() else pico


@dataclass(frozen=True, slots=True)
class FlatRates:
    """USD per million tokens. Without a cache price, cached tokens cost the input price: never free, never twice
    (genai-prices does the same)."""

    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None

    def pico_per_token(self) -> tuple[int | Decimal, int | Decimal, int | Decimal, int | Decimal]:
        cache_read = self.cache_read if self.cache_read is not None else self.input
        cache_write = self.cache_write if self.cache_write is not None else self.input
        return (_per_token(self.input), _per_token(cache_read), _per_token(cache_write), _per_token(self.output))


class Rates:
    """What a model costs at one instant: flat rates, or one set of flat rates per tier interval."""

    __slots__ = ("source", "model_id", "flat", "_tier_starts", "_per_tier")

    def __init__(self, source: str, model_id: str, flat: FlatRates,
                 tiers: tuple[tuple[int, FlatRates], ...] = ()) -> None:
        self.source = source
        """`genai-prices`, `override`, or `override from <day>` (an override with `effective_from`)."""
        self.model_id = model_id
        self.flat = flat
        """The base rates (below the first tier)."""
        self._tier_starts = [start for start, _ in tiers]
        self._per_tier = [flat.pico_per_token(), *(rates.pico_per_token() for _, rates in tiers)]

    @property
    def tiered(self) -> bool:
        return bool(self._tier_starts)

    def cost_pico(self, call: LLMCall) -> int:
        """The call's cost in pico-dollars (exact when the rates are whole pico-dollars per token)."""
        if self._tier_starts:
            # Number of tier starts the request's total input exceeds (strictly, as genai-prices compares).
            tier = bisect.bisect_left(self._tier_starts, call.input_tokens + call.cache_read_tokens
                                      + call.cache_write_tokens)
            rate_in, rate_read, rate_write, rate_out = self._per_tier[tier]
        else:
            rate_in, rate_read, rate_write, rate_out = self._per_tier[0]
        cost = (call.input_tokens * rate_in + call.cache_read_tokens * rate_read
                + call.cache_write_tokens * rate_write + call.output_tokens * rate_out)
        if type(cost) is int:
            return cost
        return int(cost.to_integral_value(rounding=ROUND_HALF_EVEN))

    def cost(self, call: LLMCall) -> Decimal:
        """The call's cost in USD."""
        return pico_to_usd(self.cost_pico(call))

    def __repr__(self) -> str:
        return f"Rates({self.source!r}, {self.model_id!r}, {self.flat!r}, tiers={self._tier_starts})"


def from_model_price(source: str, model_id: str, price: Any) -> Rates | None:
    """Rates from a genai-prices `ModelPrice`; None when it has no token prices (priced per request or image)."""
    from genai_prices.types import TieredPrices

    values = {name: getattr(price, f"{name}_mtok", None) for name in TOKEN_PRICES}
    if values["input"] is None and values["output"] is None:
        return None
    starts = sorted({tier.start for v in values.values() if isinstance(v, TieredPrices) for tier in v.tiers})

    def at(total_input: int) -> FlatRates:
        resolved: dict[str, Decimal | None] = {}
        for name, value in values.items():
            if isinstance(value, TieredPrices):
                chosen = value.base
                for tier in reversed(value.tiers):  # genai-prices' rule: the highest tier the total exceeds
                    if total_input > tier.start:
                        chosen = tier.price
                        break
                resolved[name] = chosen
            else:
                resolved[name] = value
        return FlatRates(resolved["input"] or Decimal(0), resolved["output"] or Decimal(0),
                         resolved["cache_read"], resolved["cache_write"])

    return Rates(source, model_id, at(0), tuple((start, at(start + 1)) for start in starts))
