"""Re-rating (SQLite and PostgreSQL): overrides with `effective_from` price calls before and after differently, at
ingest and at `reprice --all`; every changed cost is in the audit trail; a row is re-rated only as it was read."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from costline.processor.config.core import ConfigError, PriceOverride, parse_config
from costline.processor.ledger import Ledger
from costline.processor.model import Entry, Owner, call_keys
from costline.processor.pricing import Pricer
from costline.processor.reports.reprice import rerate
from costline.processor.units import usd_to_pico
from tests.processor.clock import now_s
from tests.processor.conftest import at, make_call

SEARCH = Owner("acme", "search", "", "", "", "", "", "prod")
NOV1 = datetime(2026, 11, 1, tzinfo=timezone.utc)
DEC1 = datetime(2026, 12, 1, tzinfo=timezone.utc)
MODEL = "gpt-4o-mini-2024-07-18"


def price(day: date | None, input_usd: str, output_usd: str) -> PriceOverride:
    return PriceOverride(provider="openai", model="gpt-4o-mini", input_per_mtok=Decimal(input_usd),
                         output_per_mtok=Decimal(output_usd), effective_from=day)


def entry(n: int, start: int, cost_pico: int | None) -> Entry:
    call = make_call(n, model=MODEL, input_tokens=1_000_000, output=1_000_000, start=start)
    return Entry(call, SEARCH, cost_pico, call_keys(call))


def cost_by_day(ledger: Ledger) -> dict[str, Decimal]:
    return {r["day"]: r["cost_usd"] for r in ledger.usage(NOV1, DEC1, ["day"])}


def test_an_override_applies_from_its_day_on_and_the_latest_in_effect_wins():
    pricer = Pricer([price(date(2026, 11, 20), "3", "4"), price(date(2026, 11, 15), "1", "2")])
    list_price = pricer.rates("openai", MODEL, at(2026, 11, 14, 23))
    assert list_price.source == "genai-prices"
    first = pricer.rates("openai", MODEL, at(2026, 11, 15, 0))  # 00:00 UTC of its day
    assert (first.source, first.flat.input) == ("override from 2026-11-15", Decimal(1))
    assert pricer.rates("openai", MODEL, at(2026, 11, 19, 23)).flat.input == Decimal(1)
    assert pricer.rates("openai", MODEL, at(2026, 11, 20, 0)).flat.input == Decimal(3)
    always = Pricer([price(None, "5", "6"), price(date(2026, 11, 15), "1", "2")])
    assert always.rates("openai", MODEL, at(2026, 11, 14)).flat.input == Decimal(5)
    assert always.rates("openai", MODEL, at(2026, 11, 15)).flat.input == Decimal(1)


def test_several_prices_of_one_model_need_distinct_dates():
    base = {"provider": "openai", "model": "gpt-4o", "input_per_mtok": 1, "output_per_mtok": 2}
    config = parse_config({"prices": [base, {**base, "effective_from": "2026-11-15"},
                                      {**base, "effective_from": "2026-12-01"}]})
    assert config.prices[1].effective_from == date(2026, 11, 15)
    with pytest.raises(ConfigError) as info:
        parse_config({"prices": [{**base, "effective_from": "2026-11-15"}, {**base, "effective_from": "2026-11-15"}]})
    assert "prices[1].effective_from: a price for openai/gpt-4o effective from 2026-11-15 is already configured" \
        in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_config({"prices": [base, base]})
    assert "prices[1].effective_from:" in str(info.value) and "without effective_from" in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_config({"prices": [{**base, "effective_from": "mid-November"}]})
    assert "prices[0].effective_from:" in str(info.value)


def test_reprice_all_rerates_priced_rows_at_the_price_of_their_hour_with_an_audit_trail(db_url):
    ledger = Ledger(db_url)
    wrong = usd_to_pico(Decimal("99"))  # billed at a wrong price: 1M input + 1M output tokens per call
    ledger.record([entry(1, at(2026, 11, 10), wrong), entry(2, at(2026, 11, 20), wrong),
                   entry(3, at(2026, 11, 20), None), entry(4, at(2026, 10, 30), wrong)], now=now_s())
    pricer = Pricer([price(date(2026, 11, 15), "1", "2")])
    list_price = pricer.rates("openai", MODEL, at(2026, 11, 10)).cost(entry(1, at(2026, 11, 10), 0).call)
    assert list_price == Decimal("0.75")  # gpt-4o-mini: $0.15 + $0.60

    assert rerate(ledger, pricer, NOV1, now=now_s()) == (2, 0)
    assert cost_by_day(ledger) == {"2026-11-10": list_price, "2026-11-20": Decimal(6)}  # two calls at $1 + $2
    assert ledger.usage(NOV1, DEC1, [])[0]["unpriced_requests"] == 0  # the unpriced call is priced too
    october = ledger.usage(datetime(2026, 10, 1, tzinfo=timezone.utc), NOV1, [])[0]
    assert october["cost_usd"] == Decimal(99)  # before --since: untouched
    trail = ledger.reader.cost_changes()
    assert [(c["hour"], c["old_cost_pico_usd"], c["new_cost_pico_usd"], c["price_source"]) for c in trail] == [
        (at(2026, 11, 10) // 10**9, wrong, usd_to_pico(list_price), "genai-prices openai/gpt-4o-mini"),
        (at(2026, 11, 20) // 10**9, wrong, usd_to_pico(Decimal(6)), "override from 2026-11-15 gpt-4o-mini"),
    ]
    assert all(c["model"] == MODEL and c["provider"] == "openai" and c["changed_at"] > 0 for c in trail)

    assert rerate(ledger, pricer, NOV1, now=now_s()) == (0, 0)  # at the same prices nothing changes, nothing is audited
    assert len(ledger.reader.cost_changes()) == 2
    ledger.close()


def test_a_row_that_gained_calls_since_it_was_read_is_left_for_the_next_rerate(db_url):
    ledger = Ledger(db_url)
    ledger.record([entry(1, at(2026, 11, 20), usd_to_pico(Decimal(1)))], now=now_s())
    [row] = ledger.reader.rows_since(NOV1)
    ledger.record([entry(2, at(2026, 11, 20), usd_to_pico(Decimal(1)))], now=now_s())  # the same hourly row
    assert ledger.writer.rerate_rows([(row, usd_to_pico(Decimal(3)), "override")], now=now_s()) == 0
    assert cost_by_day(ledger) == {"2026-11-20": Decimal(2)} and ledger.reader.cost_changes() == []
    assert rerate(ledger, Pricer([price(None, "1", "2")]), NOV1, now=now_s()) == (1, 0)
    assert cost_by_day(ledger) == {"2026-11-20": Decimal(6)}
    ledger.close()


def test_a_tiered_price_keeps_the_billed_cost_of_summed_calls(db_url):
    ledger = Ledger(db_url)
    calls = [make_call(i, model="claude-sonnet-4-5", provider="anthropic", input_tokens=250_000, output=0)
             for i in range(2)]  # each call over the 200k cliff, billed per call at ingest
    pricer = Pricer([])
    billed = [pricer.rates("anthropic", "claude-sonnet-4-5", c.start_time_unix_nano).cost_pico(c) for c in calls]
    ledger.record([Entry(c, SEARCH, cost, call_keys(c)) for c, cost in zip(calls, billed, strict=True)], now=now_s())
    assert rerate(ledger, pricer, NOV1, now=now_s()) == (0, 1)
    assert ledger.usage(NOV1, DEC1, [])[0]["cost_usd"] == Decimal(3)  # 500k at the long-context $6/MTok
    assert ledger.reader.cost_changes() == []
    ledger.close()
