"""The rates of one model at one instant, and the cost of one call at those rates, in integer pico-dollars.

Every billable unit of a call (`model.BILLABLE_UNITS`) is priced as genai-prices prices it (`ModelPrice.calc_price`):
a count is billed at the price of its nearest *priced* ancestor-or-self in genai-prices' unit registry
(`genai_prices.units`), so an audio input token is billed at `input_audio_mtok` where the model has one and at
`input_mtok` where it has not, and a one-hour cache write at `cache_write_1h_mtok`, else `cache_write_mtok`, else
`input_mtok`. That decomposition is linear in the counts, so it is done once per rate set, not per call: genai-prices'
own `compute_leaf_values` is run on one unit of each of Costline's leaves (uncached text input, audio / image / video
input, cache read, 5-minute and 1-hour cache write, text output, reasoning, audio / image / video output, a web
search, a code execution), which gives each leaf's price. A call's cost is then a handful of integer multiplications
of its `LLMCall` fields by those prices (the parts priced like their whole add nothing), plus the model's per-request
price (`requests_kcount`) once per successful call.

Prices are USD per `per` units (a million tokens, a thousand searches), so one token at `p` $/MTok costs `p * 10**6`
pico-dollars (`units`) and one search at `p` $/K `p * 10**9`. For every list price and any override with at most six
decimals that is a whole number, so the cost is exact and several times cheaper than Decimal arithmetic. Finer
overrides fall back to Decimal and are rounded to the pico-dollar (half-even) once per call.

Tiered (long-context) prices follow genai-prices' cliff rule: once a request's total input tokens (cache included)
exceed a tier's start, that tier's rate applies to all of its units. The tier is chosen per call by bisecting the
tier starts, and each interval has its own leaf prices, precomputed.

A unit the model has no price for at all (no priced ancestor-or-self: web searches of a model without a search price,
output tokens of an embeddings model) is not billed at $0 silently: `Rates.price` names it, the call's other units
are billed, and its count goes to the unit's unpriced slot (`Counts.UNPRICED_*`) for a reprice to bill once a price
exists. A call whose every used unit is such a unit, of a model without a per-request price, is unpriced as a whole.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from operator import attrgetter
from types import MappingProxyType
from typing import Any

from costline.processor.model import BILLABLE_UNITS, LLMCall
from costline.processor.units import pico_per_unit, pico_to_usd

_ZERO = Decimal(0)

LEAVES: tuple[tuple[str, dict[str, int]], ...] = (
    ("input", {"input_tokens": 1}),
    ("input_audio", {"input_tokens": 1, "input_audio_tokens": 1}),
    ("input_image", {"input_tokens": 1, "input_image_tokens": 1}),
    ("input_video", {"input_tokens": 1, "input_video_tokens": 1}),
    ("cache_read", {"cache_read_tokens": 1}),
    ("cache_write", {"cache_write_tokens": 1}),
    ("cache_write_1h", {"cache_write_tokens": 1, "cache_write_1h_tokens": 1}),
    ("output", {"output_tokens": 1}),
    ("reasoning", {"output_tokens": 1, "reasoning_tokens": 1}),
    ("output_audio", {"output_tokens": 1, "output_audio_tokens": 1}),
    ("output_image", {"output_tokens": 1, "output_image_tokens": 1}),
    ("output_video", {"output_tokens": 1, "output_video_tokens": 1}),
    ("web_search", {"web_searches": 1}),
    ("code_execution", {"code_executions": 1}),
)
"""Costline's leaves, each as the `LLMCall` fields of one unit of it: a part (audio input) is counted in its whole
(`input_tokens`) too, as on the call. A unit's leaf is its count minus its parts (uncached text input is the input
that is not audio, image or video; a 5-minute write is a write that is not a one-hour one)."""

_PART_OF = {unit.name: unit.part_of for unit in BILLABLE_UNITS}
_ATTRIBUTE = {unit.name: unit.attribute for unit in BILLABLE_UNITS}
_BASE = ("input", "cache_read", "cache_write", "output")
"""Leaves whose price is the coefficient of their whole field (`input_tokens`, ...): every call pays these four."""


def usage_of(call: LLMCall) -> Any:
    """The call as genai-prices' `Usage`: its counts under genai-prices' usage keys, where a count includes its parts
    (`input_tokens` is the total input, cache and audio included; `output_tokens` includes reasoning and audio).
    The one mapping between the two vectors: the rates are derived through it, and the tests compare with
    `calc_price` through it."""
    from genai_prices import Usage

    values = {
        "input_tokens": call.input_tokens + call.cache_read_tokens + call.cache_write_tokens,
        "cache_read_tokens": call.cache_read_tokens, "cache_write_tokens": call.cache_write_tokens,
        "cache_write_1h_tokens": call.cache_write_1h_tokens, "input_audio_tokens": call.input_audio_tokens,
        "input_image_tokens": call.input_image_tokens, "input_video_tokens": call.input_video_tokens,
        "output_tokens": call.output_tokens, "output_reasoning_tokens": call.reasoning_tokens,
        "output_audio_tokens": call.output_audio_tokens, "output_image_tokens": call.output_image_tokens,
        "output_video_tokens": call.output_video_tokens, "web_searches": call.web_searches,
        "code_executions": call.code_executions,
        # The modalities are parts of the *uncached* input: none of the cached tokens is audio, image or video.
        # Said explicitly, since genai-prices refuses to guess a count that two reported ones overlap in.
        **dict.fromkeys(_CACHED_MODALITIES, 0),
    }
    return Usage(**values)


_CACHED_MODALITIES = tuple(f"cache_{modality}_{kind}_tokens" for modality in ("audio", "image", "video")
                           for kind in ("read", "write", "write_5m", "write_1h"))


def _one(fields: Mapping[str, int]) -> LLMCall:
    return LLMCall(provider="", request_model=None, response_model=None, operation="chat", **fields)


@dataclass(frozen=True, slots=True)
class FlatRates:
    """A model's prices in one tier interval: genai-prices price key (`input_mtok`, `cache_write_1h_mtok`,
    `web_searches_kcount`, ...) -> USD per the unit's `per`. A key absent is no price: its units are billed at their
    nearest priced ancestor's (cached tokens at the input price: never free, never twice), or not at all."""

    prices: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prices", MappingProxyType(dict(self.prices)))

    @property
    def input(self) -> Decimal:
        """USD per million uncached text input tokens (0 when the model has no input price)."""
        return self.prices.get("input_mtok", _ZERO)

    @property
    def output(self) -> Decimal:
        return self.prices.get("output_mtok", _ZERO)

    @property
    def cache_read(self) -> Decimal | None:
        return self.prices.get("cache_read_mtok")

    @property
    def cache_write(self) -> Decimal | None:
        return self.prices.get("cache_write_mtok")


def _pico(value: Decimal) -> int | Decimal:
    return int(value) if value == value.to_integral_value() else value


class _Table:
    """One tier interval's prices as the coefficients of `LLMCall` fields, in pico-dollars per unit."""

    __slots__ = ("base", "extra", "request", "leaf", "unpriced")

    def __init__(self, flat: FlatRates) -> None:
        from genai_prices.decompose import compute_leaf_values
        from genai_prices.units import _get_registry  # genai-prices' own unit registry: the one definition of units
        from genai_prices.validation import validate_priced_units

        registry = _get_registry()
        units = [registry.unit_for_price_key(key) for key in flat.prices]
        validate_priced_units(units, registry)  # as calc_price does: a missing ancestor price is an error
        price = {unit.usage_key: flat.prices[unit.price_key] for unit in units}
        by_usage_key = {unit.usage_key: unit for unit in units if unit.usage_key != "requests"}
        leaf: dict[str, int | Decimal] = {}
        unpriced: list[str] = []
        for name, fields in LEAVES:
            counts = compute_leaf_values(set(by_usage_key), usage_of(_one(fields)), by_usage_key)
            if not any(counts.values()):  # no priced ancestor-or-self: genai-prices would bill it $0, silently
                unpriced.append(name)
            leaf[name] = _pico(sum((pico_per_unit(price[key], by_usage_key[key].per) * count
                                    for key, count in counts.items() if count), _ZERO))
        self.leaf = leaf
        self.base = tuple(leaf[name] for name in _BASE)
        # A part's coefficient is its price less its whole's (the whole's field counts it already): 0, and left out,
        # wherever the model prices the part like its whole, so most calls of most models add nothing here.
        extra = []
        for name, _ in LEAVES:
            if name in _BASE:
                continue
            whole = _PART_OF[name]
            delta = leaf[name] - (leaf[whole] if whole else 0)
            if delta:
                extra.append((_ATTRIBUTE[name], delta))
        self.extra = tuple(extra)
        requests = price.get("requests")
        self.request = _pico(pico_per_unit(requests, registry.units["requests"].per)) if requests is not None else 0
        self.unpriced = tuple(unpriced)


class Rates:
    """What a model costs at one instant, in one price context: one set of leaf prices, or one per tier interval."""

    __slots__ = ("source", "model_id", "flat", "_tier_starts", "_per_tier", "_rare", "_rare_counts", "gaps",
                 "_requests_priced")

    def __init__(self, source: str, model_id: str, flat: FlatRates,
                 tiers: tuple[tuple[int, FlatRates], ...] = ()) -> None:
        self.source = source
        """`genai-prices`, `override`, or `override from <day>` (an override with `effective_from`)."""
        self.model_id = model_id
        self.flat = flat
        """The base prices (below the first tier)."""
        self._tier_starts = [start for start, _ in tiers]
        tables = [_Table(flat), *(_Table(rates) for _, rates in tiers)]
        self._per_tier = [(*t.base, t.extra, t.request) for t in tables]
        self._requests_priced = "requests_kcount" in flat.prices
        unpriced = set(tables[0].unpriced)
        self.gaps: tuple[tuple[str, str], ...] = tuple(
            (unit.attribute, unit.name) for unit in BILLABLE_UNITS
            if unit.unpriced_slot is not None and unit.name in unpriced)
        """(`LLMCall` attribute, unit name) of the units the model has no price for at all (`price`)."""
        # `price`'s one pass over the fields most calls leave at 0, per tier: (attribute, price, None) for a part
        # priced apart from its whole, (attribute, 0, unit name) for a unit the model has no price for.
        attributes = list(dict.fromkeys(attribute for t in tables for attribute, _ in t.extra))
        self._rare = [tuple((dict(t.extra).get(attribute, 0), None) for attribute in attributes)
                      + tuple((0, name) for _, name in self.gaps) for t in tables]
        rare = [*attributes, *(attribute for attribute, _ in self.gaps)]
        # The rare fields' counts read in one C call (a tuple even for one field): most calls have none, and `any`
        # on that tuple spares them the loop.
        self._rare_counts = attrgetter(*rare, rare[0]) if rare else None

    @property
    def tiered(self) -> bool:
        return bool(self._tier_starts)

    @property
    def prices_requests(self) -> bool:
        """Whether the model has a per-request price (`requests_kcount`: perplexity's sonar models)."""
        return self._requests_priced

    def base(self) -> Rates:
        """The same prices without their tiers (the base tier everywhere): for rows that sum many calls."""
        return Rates(self.source, self.model_id, self.flat) if self._tier_starts else self

    def cost_pico(self, call: LLMCall, requests: int | None = None) -> int:
        """The call's cost in pico-dollars (exact when the prices are whole pico-dollars per unit). `requests`: how
        many requests the model's per-request price applies to (a ledger row's); default one, unless the call
        failed."""
        if self._tier_starts:
            # Number of tier starts the request's total input exceeds (strictly, as genai-prices compares).
            rate_in, rate_read, rate_write, rate_out, extra, request = self._per_tier[bisect.bisect_left(
                self._tier_starts, call.input_tokens + call.cache_read_tokens + call.cache_write_tokens)]
        else:
            rate_in, rate_read, rate_write, rate_out, extra, request = self._per_tier[0]
        cost = (call.input_tokens * rate_in + call.cache_read_tokens * rate_read
                + call.cache_write_tokens * rate_write + call.output_tokens * rate_out)
        for attribute, rate in extra:
            count = getattr(call, attribute)
            if count:
                cost += count * rate
        if request:
            cost += request * ((call.error_type is None) if requests is None else requests)
        if type(cost) is int:
            return cost
        return int(cost.to_integral_value(rounding=ROUND_HALF_EVEN))

    def price(self, call: LLMCall) -> tuple[int | None, tuple[str, ...]]:
        """(cost in pico-dollars, the units the call used that the model has no price for). Those units are billed
        nothing and named, for their unpriced slots; a call that used only such units, of a model without a
        per-request price, is unpriced as a whole: (None, ()). The ingest path's `cost_pico`, in one pass: a
        call's rare fields are read once, for their price or their lack of one."""
        if self._tier_starts:
            tier = bisect.bisect_left(self._tier_starts,
                                      call.input_tokens + call.cache_read_tokens + call.cache_write_tokens)
        else:
            tier = 0
        rate_in, rate_read, rate_write, rate_out, _, request = self._per_tier[tier]
        cost = (call.input_tokens * rate_in + call.cache_read_tokens * rate_read
                + call.cache_write_tokens * rate_write + call.output_tokens * rate_out)
        missing: tuple[str, ...] = ()
        rare = self._rare_counts
        counts = rare(call) if rare is not None else ()
        if any(counts):
            # the first field repeated last (a tuple even for one field) has no pair here: zip drops it
            for count, (rate, unpriced) in zip(counts, self._rare[tier], strict=False):
                if count:
                    if unpriced is None:
                        cost += count * rate
                    else:
                        missing += (unpriced,)
        if request and call.error_type is None:
            cost += request
        if missing and not self._requests_priced and not _priced_use(call, self.gaps):
            return None, ()
        if type(cost) is int:
            return cost, missing
        return int(cost.to_integral_value(rounding=ROUND_HALF_EVEN)), missing

    def cost(self, call: LLMCall) -> Decimal:
        """The call's cost in USD."""
        return pico_to_usd(self.cost_pico(call))

    def __repr__(self) -> str:
        return f"Rates({self.source!r}, {self.model_id!r}, {dict(self.flat.prices)!r}, tiers={self._tier_starts})"


def _priced_use(call: LLMCall, gaps: tuple[tuple[str, str], ...]) -> bool:
    """Whether the call used a unit the model prices (one not in `gaps`, or a part priced through its whole)."""
    unpriced = {attribute for attribute, _ in gaps}
    for unit in BILLABLE_UNITS:
        if unit.unpriced_slot is None or unit.attribute in unpriced:
            continue
        if getattr(call, unit.attribute):
            return True
    return False


def from_model_price(source: str, model_id: str, price: Any) -> Rates | None:
    """Rates from a genai-prices `ModelPrice`; None when it prices none of Costline's units (a model priced per
    audio hour, per character or per page only)."""
    from genai_prices.types import TieredPrices

    values = {key: value for key, value in vars(price).items() if not key.startswith("_") and value is not None}
    starts = sorted({tier.start for v in values.values() if isinstance(v, TieredPrices) for tier in v.tiers})

    def at(total_input: int) -> FlatRates:
        resolved: dict[str, Decimal] = {}
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
        return FlatRates(_known(resolved))

    try:
        rates = Rates(source, model_id, at(0), tuple((start, at(start + 1)) for start in starts))
    except ValueError:  # prices genai-prices' own validation refuses (its calc_price raises for them too)
        return None
    if len(rates.gaps) == len([u for u in BILLABLE_UNITS if u.unpriced_slot is not None]) \
            and not rates.prices_requests:
        return None
    return rates


def _known(prices: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """The prices of units genai-prices' registry knows (a newer data file's unknown key is left out, as
    `calc_price` leaves it out with a warning)."""
    from genai_prices.units import _get_registry

    known = _get_registry()._all_price_keys
    return {key: value for key, value in prices.items() if key in known}
