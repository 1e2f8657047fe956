"""The stored reconciliation on SQLite and the real PostgreSQL: a run replaces its days in one transaction, a
failing run leaves the stored one whole, a bad report stores nothing, and the chargeback's reader sums per owner."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from costline.processor.clock import system_clock
from costline.processor.config.core import parse_config
from costline.processor.ledger import Ledger
from costline.processor.ledger.reconciliation import ReconciliationStore, StoreError
from costline.processor.reports.reconcile.compare import OwnerRef, Row
from costline.processor.reports.reconcile.render import render
from costline.processor.reports.reconcile.run import reconcile
from costline.processor.reports.reconcile.store import save
from tests.processor.clock import now_s
from tests.processor.conftest import at, make_call
from tests.processor.reports.reconcile.admin_server import Served, openai_usage_buckets

CONFIG = parse_config({
    "orgs": [{"name": "acme", "teams": [{"name": "search"}, {"name": "billing"}]}],
    "reconcile": {"identities": [{"provider": "openai", "project_id": "proj_s", "team": "search"},
                                 {"provider": "openai", "project_id": "proj_b", "team": "billing"}]},
})
START, END = date(2026, 11, 1), date(2026, 12, 1)


def _usage_file(tmp_path, calls, name="usage.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"object": "page", "data": openai_usage_buckets(calls, START, END),
                                "has_more": False, "next_page": None}))
    return path


@pytest.fixture
def ledger(db_url):
    from costline.processor.model import Entry, Owner, call_keys

    ledger = Ledger(db_url)
    call = make_call(1, team="search", start=at(2026, 11, 10), input_tokens=1000, output=100)
    owner = Owner("acme", "search", "", "", "", "", "", "")
    ledger.record([Entry(call, owner, 1000 * 150_000 + 100 * 600_000, call_keys(call))], now=now_s())
    yield ledger
    ledger.close()


CALLS = [Served(date(2026, 11, 10), "gpt-4o-mini-2024-07-18", "key_1", "proj_s", 1000, 0, 0, 100),
         Served(date(2026, 11, 12), "gpt-4o-mini-2024-07-18", "key_2", "proj_b", 2000, 0, 0, 10)]


def test_a_run_is_stored_and_a_second_run_replaces_its_days(ledger, tmp_path):
    store = ReconciliationStore(ledger.engine)
    result = reconcile(CONFIG, ledger, store, "openai", START, END, files=[_usage_file(tmp_path, CALLS)], clock=system_clock)
    search = [r for r in result.rows if r.owner.name == "search"][0]
    assert search.drift_pico == 0 and search.untracked_pico == 0  # gpt-4o-mini list price: the ledger's cost
    stored = store.rows("openai", START, END)
    assert [(r["day"], r["owner"], r["untracked_pico_usd"] > 0) for r in stored] == [
        ("2026-11-10", "search", False), ("2026-11-12", "billing", True)]
    reconcile(CONFIG, ledger, store, "openai", START, END, files=[_usage_file(tmp_path, CALLS[:1])], clock=system_clock)
    assert [r["owner"] for r in store.rows("openai", START, END)] == ["search"]
    assert store.untracked_spend(START, END) == []


def test_a_failing_write_leaves_the_stored_run_whole(ledger, tmp_path):
    store = ReconciliationStore(ledger.engine)
    first = reconcile(CONFIG, ledger, store, "openai", START, END, files=[_usage_file(tmp_path, CALLS)], clock=system_clock)
    before = store.rows("openai", START, END)
    # Two rows with the same identity violate the table's unique key on the last insert of the transaction.
    twin = Row("openai", date(2026, 11, 20), "gpt-4o", OwnerRef("team", "billing", "acme", "billing"), "",
               provider_cost_pico=5)
    first.rows += [twin, Row(**{**twin.__dict__})]
    with pytest.raises(StoreError, match="nothing written"):
        save(store, first, now=now_s())
    assert store.rows("openai", START, END) == before


def test_a_model_without_a_price_is_reported_unpriced_and_the_rest_is_stored(ledger, tmp_path):
    """A provider row of a model the price table does not know used to abort the whole run ("nothing was
    stored"): it is reported as unpriced (its tokens, no amount: never $0) and every other row is stored."""
    store = ReconciliationStore(ledger.engine)
    bad = [*CALLS, Served(date(2026, 11, 15), "gpt-9-turbo-imaginary", "key_1", "proj_s", 10, 0, 0, 1)]
    result = reconcile(CONFIG, ledger, store, "openai", START, END, files=[_usage_file(tmp_path, bad)], clock=system_clock)
    assert [(u.day, u.model, u.identity, sum(u.tokens)) for u in result.unpriced] == [
        (date(2026, 11, 15), "gpt-9-turbo-imaginary", "project_id:proj_s", 11)]
    assert "gpt-9-turbo-imaginary" not in {r.model for r in result.rows}
    stored = store.rows("openai", START, END)
    assert [(r["day"], r["owner"]) for r in stored] == [("2026-11-10", "search"), ("2026-11-12", "billing")]
    doc = json.loads(render(result, "json"))
    assert doc["unpriced"] == [{"day": "2026-11-15", "model": "gpt-9-turbo-imaginary", "identity":
                                "project_id:proj_s", "requests": 1, "uncached_input_tokens": 10,
                                "cache_read_tokens": 0, "cache_write_tokens": 0, "output_tokens": 1}]
    assert "'gpt-9-turbo-imaginary' not in the price table, not compared and not stored" in render(result, "table")


def test_untracked_spend_per_owner_and_period(ledger, tmp_path):
    store = ReconciliationStore(ledger.engine)
    reconcile(CONFIG, ledger, store, "openai", START, END, files=[_usage_file(tmp_path, CALLS)], clock=system_clock)
    expected = Decimal(2000) * Decimal("0.15") / 10**6 + Decimal(10) * Decimal("0.60") / 10**6
    assert store.untracked_spend(START, END) == [{"provider": "openai", "owner_kind": "team", "owner": "billing",
                                                  "org": "acme", "team": "billing", "untracked_usd": expected}]
    assert store.untracked_spend(date(2026, 11, 13), END) == []
    assert store.untracked_spend(START, END, provider="anthropic") == []
    totals = {(t.owner, t.untracked_pico) for t in store.latest_totals()}
    assert totals == {("search", 0), ("billing", int(expected * 10**12))}
