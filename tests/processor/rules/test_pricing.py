"""Prices come from genai-prices (raw calc_price is the oracle) or the config's overrides; unknown is unpriced."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from genai_prices import Usage, calc_price

from costline.processor.config.core import PriceOverride
from costline.processor.pricing import Pricer
from tests.processor.conftest import at, make_call

NOV = at(2026, 11, 10)


@pytest.mark.parametrize(
    ("provider", "gp_provider", "model", "tokens"),
    [
        ("openai", "openai", "gpt-4o-mini-2024-07-18", dict(input_tokens=6000, cache_read=4000, output=300)),
        ("openai", "openai", "gpt-4o-2024-08-06", dict(input_tokens=1500, cache_read=500, output=100)),
        ("openai", "openai", "o4-mini", dict(input_tokens=12000, output=2500)),
        ("anthropic", "anthropic", "claude-haiku-4-5", dict(input_tokens=250, cache_read=1000, cache_write=200, output=80)),
        ("anthropic", "anthropic", "claude-sonnet-4-5", dict(input_tokens=5000, cache_read=0, output=900)),
        ("openai", "openai", "text-embedding-3-small", dict(input_tokens=4096, output=0)),
        ("gcp.gemini", "google", "gemini-2.5-pro", dict(input_tokens=150_000, output=2000)),
        ("gcp.gemini", "google", "gemini-2.5-pro", dict(input_tokens=250_000, output=2000)),  # above the tier cliff
    ],
)
def test_list_price_matches_genai_prices_exactly(provider, gp_provider, model, tokens):
    call = make_call(model=model, provider=provider, start=NOV, **tokens)
    rates = Pricer([]).rates(provider, model, NOV)
    assert rates is not None and rates.source == "genai-prices"
    expected = calc_price(
        Usage(input_tokens=call.total_input_tokens, cache_read_tokens=call.cache_read_tokens,
              cache_write_tokens=call.cache_write_tokens, output_tokens=call.output_tokens),
        model, provider_id=gp_provider, genai_request_timestamp=datetime(2026, 11, 10, 12, tzinfo=timezone.utc),
    ).total_price
    assert rates.cost(call) == expected


def test_one_million_gpt4o_input_tokens_cost_list_price():
    call = make_call(model="gpt-4o", input_tokens=1_000_000, output=0)
    assert Pricer([]).rates("openai", "gpt-4o", NOV).cost(call) == Decimal("2.5")


OVERRIDE = PriceOverride(provider="openai", model="gpt-4o", input_per_mtok=Decimal("2.00"),
                         cache_read_per_mtok=Decimal("1.00"), output_per_mtok=Decimal("8.00"))


def test_override_covers_dated_snapshots_but_not_other_models():
    pricer = Pricer([OVERRIDE])
    assert pricer.rates("openai", "gpt-4o", NOV).source == "override"
    assert pricer.rates("openai", "gpt-4o-2024-08-06", NOV).source == "override"
    assert pricer.rates("openai", "gpt-4o-mini", NOV).source == "genai-prices"
    assert pricer.rates("openai", "gpt-4o-mini-2024-07-18", NOV).source == "genai-prices"
    assert pricer.rates("azure.ai.openai", "gpt-4o", NOV).source == "genai-prices"  # another provider
    call = make_call(model="gpt-4o-2024-08-06", input_tokens=1500, cache_read=500, output=100)
    assert pricer.rates("openai", call.model, NOV).cost(call) == Decimal("0.0043")  # (1500*2 + 500*1 + 100*8) per M


def test_unknown_and_self_hosted_models_are_unpriced_not_free():
    pricer = Pricer([])
    assert pricer.rates("openai", "acme-llama-70b", NOV) is None
    assert pricer.rates("vllm", "llama-3.1-70b", NOV) is None
    assert pricer.rates("openai", None, NOV) is None
    self_hosted = PriceOverride(provider="vllm", model="llama-3.1-70b", input_per_mtok=Decimal("0.2"),
                                output_per_mtok=Decimal("0.2"))
    assert Pricer([self_hosted]).rates("vllm", "llama-3.1-70b", NOV).source == "override"


def test_azure_falls_back_to_openai_list_prices():
    rates = Pricer([]).rates("azure.ai.openai", "gpt-4o-mini", NOV)
    assert rates is not None and rates.flat.input == Decimal("0.15")


def test_cached_tokens_never_billed_at_full_input_price_when_a_cache_price_exists():
    rates = Pricer([]).rates("openai", "gpt-4o-mini", NOV)
    all_cached = make_call(input_tokens=0, cache_read=1_000_000, output=0)
    assert rates.cost(all_cached) == Decimal("0.075")


def test_lookup_is_cached_per_model_and_validity_interval():
    """A model priced the same all day is looked up once per UTC day (prices and overrides start on days)."""
    pricer = Pricer([])
    first = pricer.rates("openai", "gpt-4o-mini", NOV)
    assert pricer.rates("openai", "gpt-4o-mini", NOV + 59 * 60 * 10**9) is first
    assert pricer.rates("openai", "gpt-4o-mini", NOV + 11 * 3600 * 10**9) is first  # 23:00, the same day
    assert pricer.rates("openai", "gpt-4o-mini", NOV + 12 * 3600 * 10**9) is not first  # the next day


@pytest.mark.parametrize("hour", [0, 16])
def test_a_price_that_changes_on_the_half_hour_is_the_one_at_the_calls_instant(hour):
    """deepseek-chat's off-peak price starts at 16:30 and ends at 00:30 UTC (genai-prices). The first call of the
    hour fills the cache; a call in the same hour after the change is still priced at its own instant."""
    pricer = Pricer([])
    for minute in (15, 45):
        when = datetime(2026, 11, 20, hour, minute, tzinfo=timezone.utc)
        call = make_call(model="deepseek-chat", provider="deepseek", input_tokens=1_000_000, output=1_000_000,
                         start=int(when.timestamp()) * 10**9)
        rates = pricer.rates("deepseek", "deepseek-chat", call.start_time_unix_nano)
        expected = calc_price(Usage(input_tokens=1_000_000, output_tokens=1_000_000), "deepseek-chat",
                              provider_id="deepseek", genai_request_timestamp=when).total_price
        assert rates.cost(call) == expected, (hour, minute)
    peak, off_peak = (Decimal("1.37"), Decimal("0.685"))  # genai-prices 0.2.5's figures, for the reader
    assert {rates.cost(call)} <= {peak, off_peak}


@pytest.mark.parametrize("total_input", [199_999, 200_000, 200_001, 1_000_000])
def test_tier_cliff_matches_genai_prices_on_both_sides(total_input):
    """Tiered rates are precomputed per interval; genai-prices' own per-call calculation is the oracle."""
    call = make_call(model="claude-sonnet-4-5", provider="anthropic", input_tokens=total_input - 30_000,
                     cache_read=20_000, cache_write=10_000, output=5_000, start=NOV)
    rates = Pricer([]).rates("anthropic", "claude-sonnet-4-5", NOV)
    assert rates.tiered
    expected = calc_price(
        Usage(input_tokens=total_input, cache_read_tokens=20_000, cache_write_tokens=10_000, output_tokens=5_000),
        "claude-sonnet-4-5", provider_id="anthropic",
        genai_request_timestamp=datetime(2026, 11, 10, 12, tzinfo=timezone.utc),
    ).total_price
    assert rates.cost(call) == expected


def test_override_finer_than_a_pico_dollar_per_token_is_rounded_once_per_call():
    fine = PriceOverride(provider="vllm", model="m", input_per_mtok=Decimal("0.0000001234567"),
                         output_per_mtok=Decimal("0.1"))
    rates = Pricer([fine]).rates("vllm", "m", NOV)
    call = make_call(model="m", provider="vllm", input_tokens=3, output=1)
    # 3 * 0.1234567 + 1 * 100000 pico-dollars = 100000.3703701 -> 100000
    assert rates.cost_pico(call) == 100_000
