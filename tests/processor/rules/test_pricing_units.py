"""Every billable unit and the price context (issue 17): genai-prices' `calc_price` with the same usage and
`price_context` is the oracle, and each case also has its hand computation from the list price, written out."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from genai_prices import calc_price
from genai_prices.data_snapshot import get_snapshot

from costline.processor.config.core import ConfigError, PriceOverride, parse_config
from costline.processor.model import Counts, LLMCall, counts_of
from costline.processor.pricing import Pricer
from costline.processor.pricing.providers import GENAI_PRICES_PROVIDER
from costline.processor.pricing.rates import usage_of
from tests.processor.conftest import at

WHEN = datetime(2026, 11, 10, 12, tzinfo=timezone.utc)
NOV = at(2026, 11, 10)
PICO = Decimal(10) ** -12


def call_of(model: str, provider: str, **fields: object) -> LLMCall:
    return LLMCall(provider=provider, request_model=model, response_model=model, operation="chat", has_usage=True,
                   start_time_unix_nano=NOV, **fields)  # type: ignore[arg-type]


def oracle(call: LLMCall, gp_provider: str, context: dict[str, str] | None = None) -> Decimal:
    return calc_price(usage_of(call), call.model, provider_id=gp_provider, genai_request_timestamp=WHEN,
                      price_context=context).total_price


GPT5 = dict(input_tokens=8000, cache_read_tokens=2000, output_tokens=1000, reasoning_tokens=400)


@pytest.mark.parametrize(("tier", "processing", "per_mtok"), [
    ("", "", (Decimal("1.25"), Decimal("0.125"), Decimal(10))),
    ("flex", "", (Decimal("0.625"), Decimal("0.0625"), Decimal(5))),
    ("priority", "", (Decimal("2.5"), Decimal("0.25"), Decimal(20))),
    ("", "batch", (Decimal("0.625"), Decimal("0.0625"), Decimal(5))),
])
def test_service_tier_and_batch_are_priced_as_calc_price_prices_that_context(tier, processing, per_mtok):
    call = call_of("gpt-5", "openai", service_tier=tier, processing=processing, **GPT5)
    rates = Pricer([]).rates("openai", "gpt-5", NOV, call.service_tier, call.processing)
    context = {k: v for k, v in (("service_tier", tier), ("processing", processing)) if v} or None
    assert abs(rates.cost(call) - oracle(call, "openai", context)) <= PICO
    input_, cache_read, output = per_mtok  # genai-prices 0.2.5's list prices, for the reader
    assert rates.cost(call) == (8000 * input_ + 2000 * cache_read + 1000 * output) / 10**6


def test_the_price_context_is_part_of_the_cache_key():
    pricer = Pricer([])
    standard, flex = pricer.rates("openai", "gpt-5", NOV), pricer.rates("openai", "gpt-5", NOV, "flex")
    assert pricer.rates("openai", "gpt-5", NOV) is standard and standard is not flex
    assert flex.flat.input == Decimal("0.625") and standard.flat.input == Decimal("1.25")


def test_a_one_hour_cache_write_is_priced_at_its_own_rate():
    call = call_of("claude-sonnet-4-5", "anthropic", input_tokens=1000, cache_write_tokens=10_000,
                   cache_write_1h_tokens=4000, output_tokens=200)
    cost = Pricer([]).rates("anthropic", "claude-sonnet-4-5", NOV).cost(call)
    assert cost == oracle(call, "anthropic")
    # $3 input, $3.75 5-minute write, $6 one-hour write, $15 output per MTok
    assert cost == (1000 * 3 + 6000 * Decimal("3.75") + 4000 * 6 + 200 * 15) / Decimal(10**6) == Decimal("0.0525")


def test_audio_and_image_tokens_are_priced_at_their_own_rates():
    call = call_of("gpt-realtime", "openai", input_tokens=1000, input_audio_tokens=600, input_image_tokens=100,
                   output_tokens=500, output_audio_tokens=300)
    cost = Pricer([]).rates("openai", "gpt-realtime", NOV).cost(call)
    assert cost == oracle(call, "openai")
    # text in $4, audio in $32, image in $5, text out $16, audio out $64 per MTok
    assert cost == (300 * 4 + 600 * 32 + 100 * 5 + 200 * 16 + 300 * 64) / Decimal(10**6) == Decimal("0.0433")
    # gpt-4o-audio-preview has no audio price in genai-prices 0.2.5: its audio is billed as input and output are
    preview = call_of("gpt-4o-audio-preview", "openai", input_tokens=1000, input_audio_tokens=600,
                      output_tokens=500, output_audio_tokens=300)
    assert Pricer([]).rates("openai", "gpt-4o-audio-preview", NOV).cost(preview) == oracle(preview, "openai") == (
        1000 * Decimal("2.5") + 500 * 10) / Decimal(10**6)


def test_web_searches_are_priced_per_search():
    call = call_of("claude-sonnet-4-5", "anthropic", input_tokens=2000, output_tokens=300, web_searches=3)
    cost = Pricer([]).rates("anthropic", "claude-sonnet-4-5", NOV).cost(call)
    assert cost == oracle(call, "anthropic")
    # $3 input, $15 output per MTok, $10 per thousand searches
    assert cost == (2000 * 3 + 300 * 15) / Decimal(10**6) + 3 * Decimal(10) / 1000 == Decimal("0.0405")


def test_a_per_request_price_applies_once_per_successful_call():
    call = call_of("sonar", "perplexity", input_tokens=1000, output_tokens=200)
    rates = Pricer([]).rates("perplexity", "sonar", NOV)
    assert rates.cost(call) == oracle(call, "perplexity") == (1000 + 200) / Decimal(10**6) + Decimal(12) / 1000
    failed = call_of("sonar", "perplexity", error_type="500")
    assert rates.cost(failed) == 0


def test_a_unit_the_model_cannot_price_is_counted_unpriced_never_free():
    """gpt-4o-mini has no code-execution price: the call's tokens are billed, its code executions are named and go
    to their unpriced slot (for a reprice); an embeddings model asked for output tokens likewise."""
    rates = Pricer([]).rates("openai", "gpt-4o-mini", NOV)
    call = call_of("gpt-4o-mini", "openai", input_tokens=1_000_000, output_tokens=0, code_executions=2)
    cost, unpriced = rates.price(call)
    assert (cost, unpriced) == (150_000_000_000, ("code_execution",))
    counts = counts_of(call, cost, unpriced)
    assert (counts[Counts.UNPRICED_REQUESTS], counts[Counts.CODE_EXECUTIONS], counts[Counts.UNPRICED_CODE_EXECUTIONS],
            counts[Counts.UNPRICED_INPUT_TOKENS], counts[Counts.COST_PICO_USD]) == (0, 2, 2, 0, cost)
    embeddings = Pricer([]).rates("openai", "text-embedding-3-small", NOV)
    assert embeddings.price(call_of("text-embedding-3-small", "openai", input_tokens=10, output_tokens=5)) == (
        200_000, ("output",))
    # A call of nothing but units its model cannot price is unpriced as a whole, not $0.
    assert rates.price(call_of("gpt-4o-mini", "openai", code_executions=1)) == (None, ())
    assert Pricer([]).rates("groq", "whisper-large-v3", NOV) is None  # priced per hour of audio only


def test_an_override_names_its_service_tier_and_prices_the_new_units():
    flex = PriceOverride(provider="openai", model="gpt-5", service_tier="flex", input_per_mtok=Decimal("0.5"),
                         output_per_mtok=Decimal(4), web_search_per_k=Decimal(8), code_execution_per_k=Decimal(30))
    pricer = Pricer([flex])
    call = call_of("gpt-5", "openai", input_tokens=1000, output_tokens=100, web_searches=2, code_executions=1,
                   service_tier="flex")
    rates = pricer.rates("openai", "gpt-5", NOV, "flex")
    assert rates.source == "override"
    assert rates.price(call) == ((1000 * 500_000 + 100 * 4_000_000) + 2 * 8_000_000_000 + 30_000_000_000, ())
    assert pricer.rates("openai", "gpt-5", NOV).source == "genai-prices"  # the standard tier: the list price
    assert pricer.rates("openai", "gpt-5", NOV, "priority").flat.input == Decimal("2.5")
    one_hour = PriceOverride(provider="anthropic", model="claude-haiku-4-5", input_per_mtok=Decimal(1),
                             output_per_mtok=Decimal(5), cache_write_1h_per_mtok=Decimal(2),
                             input_audio_per_mtok=Decimal(7))
    cached = call_of("claude-haiku-4-5", "anthropic", input_tokens=100, input_audio_tokens=40,
                     cache_write_tokens=1000, cache_write_1h_tokens=600)
    # 60 text + 40 audio input, 400 5-minute writes at the input price (no write price given), 600 at $2
    assert Pricer([one_hour]).rates("anthropic", "claude-haiku-4-5", NOV).cost_pico(cached) == (
        60 * 1_000_000 + 40 * 7_000_000 + 400 * 1_000_000 + 600 * 2_000_000)


@pytest.mark.parametrize(("entry", "message"), [
    ({"service_tier": "default"}, "prices[0].service_tier: "),
    ({"service_tier": "batch"}, "use processing: batch"),
    ({"processing": "offline"}, "prices[0].processing: "),
    ({"web_search_per_k": -1}, "prices[0].web_search_per_k: "),
])
def test_bad_override_context_or_unit_price_names_key_and_rule(entry, message):
    base = {"provider": "openai", "model": "gpt-5", "input_per_mtok": 1, "output_per_mtok": 2}
    with pytest.raises(ConfigError) as info:
        parse_config({"prices": [{**base, **entry}]})
    assert message in str(info.value)
    # one price per model and context: flex beside the standard price is fine
    assert len(parse_config({"prices": [base, {**base, "service_tier": "flex"}]}).prices) == 2


# --- the property: Rates.cost_pico == calc_price for random usage over many models ----------------------------------

_SEMCONV = {gp: semconv for semconv, gp in reversed(GENAI_PRICES_PROVIDER.items())}


def _random_call(rng: random.Random, model: str, provider: str, context: dict[str, str]) -> LLMCall:
    uncached = rng.choice([0, 1, 17, 1000, rng.randrange(1, 400_000)])
    output = rng.choice([0, 3, 900, rng.randrange(1, 50_000)])
    write = rng.choice([0, 0, rng.randrange(1, 300_000)])
    audio_in = rng.randrange(0, uncached + 1) if rng.random() < 0.4 else 0
    image_in = rng.randrange(0, uncached - audio_in + 1) if rng.random() < 0.3 else 0
    video_in = rng.randrange(0, uncached - audio_in - image_in + 1) if rng.random() < 0.2 else 0
    audio_out = rng.randrange(0, output + 1) if rng.random() < 0.4 else 0
    image_out = rng.randrange(0, output - audio_out + 1) if rng.random() < 0.2 else 0
    reasoning = rng.randrange(0, output - audio_out - image_out + 1) if rng.random() < 0.5 else 0
    return call_of(model, provider, input_tokens=uncached, cache_read_tokens=rng.choice([0, rng.randrange(1, 10**6)]),
                   cache_write_tokens=write, cache_write_1h_tokens=rng.randrange(0, write + 1) if write else 0,
                   input_audio_tokens=audio_in, input_image_tokens=image_in, input_video_tokens=video_in,
                   output_tokens=output, output_audio_tokens=audio_out, output_image_tokens=image_out,
                   reasoning_tokens=reasoning, web_searches=rng.choice([0, 0, 1, 7]),
                   code_executions=rng.choice([0, 0, 2]), service_tier=context.get("service_tier", ""),
                   processing=context.get("processing", ""))


def test_rates_equal_calc_price_for_random_usage_over_many_models():
    rng = random.Random(17)
    pricer = Pricer([])
    checked = 0
    for gp_provider in ("openai", "anthropic", "google", "deepseek", "mistral", "x-ai", "perplexity", "aws",
                        "groq", "openrouter"):
        provider = next(p for p in get_snapshot().providers if p.id == gp_provider)
        for info in provider.models[::2] if gp_provider == "openrouter" else provider.models:
            contexts = [{}] + [dict(v.when) for v in info.price_variants or ()
                               if set(v.when) <= {"service_tier", "processing"}]
            for context in contexts:
                for _ in range(3):
                    call = _random_call(rng, info.id, _SEMCONV[gp_provider], context)
                    try:
                        expected = oracle(call, gp_provider, context or None)
                    except (ValueError, LookupError):
                        continue  # genai-prices cannot price it either (a model found under another id, say)
                    rates = pricer.rates(call.provider, info.id, NOV, call.service_tier, call.processing)
                    got = Decimal(0) if rates is None else Decimal(rates.cost_pico(call))
                    assert abs(got - expected * 10**12) < 1, (gp_provider, info.id, context, call)
                    if rates is not None:  # the ingest path's one-pass twin agrees, and names what it skipped
                        cost, unpriced = rates.price(call)
                        assert cost in (None, int(got)), (info.id, call)
                        if cost is not None:
                            assert set(unpriced) == {n for a, n in rates.gaps if getattr(call, a)}, (info.id, call)
                    checked += 1
    assert checked > 1500
