"""Issue 21, items 1-4: a month of three teams, one self-hosted model and two customers. The fleet's cost is
allocated by largest remainder over the teams' tokens (or their calls' durations) and reproduced by hand here; seats
and margins likewise; the daily Parquet export read by DuckDB, the statement, its FOCUS export and `costline usage`
agree to the cent; fleet-priced calls are not unpriced; the fleet's live rate follows the clock."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import duckdb
import pytest
from prometheus_client.registry import CollectorRegistry
from prometheus_client.exposition import generate_latest

from costline.cli import main
from costline.processor.config.core import ConfigError, parse_config
from costline.processor.metrics.chargeback_gauges import ChargebackCollector, ChargebackTotals
from costline.processor.model import Counts, LLMCall, Outcome, counts_of
from costline.processor.reports.chargeback.report import chargeback_document
from costline.processor.reports.chargeback.statement import Period
from costline.processor.service import build_pipeline
from tests.processor.conftest import at, make_call
from tests.processor.reports.chargeback.test_html import CHROMIUM_FLAGS, tool

CONFIG = """
prices:
  - {provider: openai, model: gpt-4o, input_per_mtok: 2.00, output_per_mtok: 8.00}
fleets:
  - {name: gpu-pool, models: [llama-3.1-70b], provider: vllm, cost: {monthly_usd: 100.00}}
  - {name: idle, models: [qwen-idle], cost: {gpu_hours: 3, usd_per_gpu_hour: 1.115}}
chargeback:
  default: {markup_pct: 10}
  teams:
    support: {seat_usd: 2.00, markup_pct: 0}
    research: {seat_usd: 3.00}
  customers:
    revenue:
      currency: USD
      per_outcome_usd: {report: 0.75}
      per_customer_usd: {acme-corp: 100}
    budgets_usd: {globex-inc: 0.01}
"""
GPT = D("0.0028")
"""One gpt-4o call of 1,000 input and 100 output tokens: 1000 x $2/Mtok + 100 x $8/Mtok."""


def month():
    out, n = [], 0

    def add(count, team, model="gpt-4o", provider="openai", input_tokens=1000, output=100, **owner):
        nonlocal n
        for _ in range(count):
            n += 1
            call = make_call(n, model=model, provider=provider, team=team, input_tokens=input_tokens,
                             output=output, start=at(2026, 11, 3 + n % 20), **owner)
            call.end_time_unix_nano = call.start_time_unix_nano + n * 250_000_000  # n quarter-seconds
            out.append(call)

    add(3, "engineering", user="alice", customer="acme-corp")
    add(1, "engineering", user="bob", customer="globex-inc")
    add(2, "support", user="carol", customer="acme-corp")
    add(1, "support", user="dave")
    add(1, "support", user="erin", customer="globex-inc")
    add(1, "research")                                                   # no user: nobody's seat
    # The self-hosted model: 1,100 tokens a call, 1 call each: 3 equal shares of $100.00.
    add(1, "engineering", model="llama-3.1-70b", provider="vllm", user="alice", customer="acme-corp")
    add(1, "support", model="llama-3.1-70b", provider="vllm", user="carol", customer="globex-inc")
    add(1, "research", model="llama-3.1-70b", provider="vllm", customer="globex-inc")
    return out


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("finance")
    (tmp / "c.yaml").write_text(CONFIG)
    pipeline = build_pipeline(str(tmp / "c.yaml"), f"sqlite:///{tmp / 'ledger.db'}")
    pipeline.ingest_calls(month())
    pipeline.ingest_outcomes([Outcome("report", 10, {"costline.customer": "acme-corp", "costline.team": "support",
                                                     "costline.org": "acme"}, start_time_unix_nano=at(2026, 11, 5),
                                      key="a" * 48),
                              Outcome("report", 3, {"costline.customer": "globex-inc", "costline.team": "support",
                                                    "costline.org": "acme"}, start_time_unix_nano=at(2026, 11, 6),
                                      key="b" * 48)])
    yield tmp, pipeline
    pipeline.close()


def document(pipeline, fmt):
    return chargeback_document(pipeline.config, pipeline.ledger, Period(2026, 11), None, fmt,
                               clock=lambda: datetime(2026, 12, 15, tzinfo=timezone.utc))[1]


def run(capfdbinary, *args):
    assert main(list(args)) == 0
    return capfdbinary.readouterr().out


def test_the_fleet_seats_statement_focus_and_usage_agree_by_hand(ledger, capfdbinary):
    tmp, pipeline = ledger
    statement = json.loads(document(pipeline, "json"))
    teams = {t["name"]: {(x["component"], x["name"]): x for x in t["lines"]} for t in statement["teams"]}
    # The fleet: $100.00 over three equal consumptions, the odd cent to the first in statement order.
    assert {name: lines[("fleet", "gpu-pool")]["amount_usd"] for name, lines in teams.items()} == {
        "engineering": "33.34", "research": "33.33", "support": "33.33"}
    assert teams["engineering"][("fleet", "gpu-pool")]["quantity"] == 1100
    assert statement["components"]["fleet"] == "100.00"
    fleets = {f["name"]: f for f in statement["fleets"]}
    assert (fleets["gpu-pool"]["allocated_usd"], fleets["gpu-pool"]["unallocated_usd"]) == ("100.00", "0.00")
    # Nobody used the idle fleet: its 3 x 1.115 = 3.345 -> 3.35 stays unallocated, divided by nothing.
    assert fleets["idle"] == {"name": "idle", "cost_usd": "3.35", "cost_basis": "3 GPU-hours x $1.115 = $3.35",
                              "allocate_by": "tokens", "consumption": 0, "allocated_usd": "0.00",
                              "unallocated_usd": "3.35", "effective_usd_per_unit": None}
    # Seats: support's three users with a call at $2.00; research's calls name no user: 0 seats, shown.
    assert (teams["support"][("seats", "")]["quantity"], teams["support"][("seats", "")]["amount_usd"]) == (3, "6.00")
    assert (teams["research"][("seats", "")]["quantity"], teams["research"][("seats", "")]["amount_usd"]) == (
        0, "0.00")
    assert "no user with a call" in teams["research"][("seats", "")]["detail"]
    assert ("seats", "") not in teams["engineering"]  # no seat rate: no line
    # Token cost and markup by hand: engineering 4 calls + 10 %, support 4 at cost, research 1 + 10 %.
    hand = {"engineering": 4 * GPT * D("1.1") + D("33.34"), "support": 4 * GPT + D("33.33") + D("6.00"),
            "research": 1 * GPT * D("1.1") + D("33.33")}
    # Exact 33.35232, 39.3412, 33.33308: the total 106.0266 -> 106.03 is one cent more than the floors, which goes
    # to the largest remainder (research's 0.308 of a cent): the statement's rule.
    assert {k: str(v) for k, v in hand.items()} == {"engineering": "33.35232", "support": "39.3412",
                                                     "research": "33.33308"}
    assert {t["name"]: t["total_usd"] for t in statement["teams"]} == {
        "engineering": "33.35", "support": "39.34", "research": "33.34"}
    assert statement["total_usd"] == str(sum(hand.values()).quantize(D("0.01"))) == "106.03"

    # `costline usage`: the self-hosted model's calls are priced at $0 marginal, never unpriced.
    usage = json.loads(run(capfdbinary, "usage", "--config", str(tmp / "c.yaml"), "--db",
                           f"sqlite:///{tmp / 'ledger.db'}", "--group-by", "team,model", "--format", "json",
                           "--from", "2026-11-01", "--to", "2026-11-30"))["rows"]
    llama = [r for r in usage if r["model"] == "llama-3.1-70b"]
    assert sum(r["requests"] for r in llama) == 3 and all(r["unpriced_requests"] == 0 for r in llama)
    assert all(D(r["cost_usd"]) == 0 for r in llama)
    token_cost = sum(D(r["cost_usd"]) for r in usage)
    assert token_cost == 9 * GPT
    assert D(statement["components"]["token_cost"]) == round(token_cost, 2)

    # FOCUS: the usage rows bill what `costline usage` says, the chargeback rows what the statement says.
    rows = list(csv.DictReader(io.StringIO(document(pipeline, "focus").decode())))
    assert sum(D(r["BilledCost"]) for r in rows if r["ChargeCategory"] == "Usage") == token_cost
    fleet_rows = [r for r in rows if r["x_ChargebackComponent"] == "fleet"]
    assert sorted(D(r["x_ChargebackAmount"]) for r in fleet_rows) == [D("33.33"), D("33.33"), D("33.34")]
    assert all(r["x_ChargebackLine"] == "gpu-pool" for r in fleet_rows)
    by_component: dict[str, D] = {}
    for r in rows:
        if r["ChargeCategory"] == "Adjustment":
            by_component[r["x_ChargebackComponent"]] = by_component.get(r["x_ChargebackComponent"], D(0)) + D(
                r["x_ChargebackAmount"])
    assert {k: D(v) for k, v in statement["components"].items() if D(v)} == {k: v for k, v in by_component.items()
                                                                               if v}

    # The daily Parquet export of the month, read back by DuckDB: per team the exact money and counts of `costline
    # usage`, its FOCUS usage rows the CSV's, and so the statement's token cost to the cent.
    out = tmp / "export"
    run(capfdbinary, "export", "--config", str(tmp / "c.yaml"), "--db", f"sqlite:///{tmp / 'ledger.db'}", "--dir",
        str(out), "--from", "2026-11-01", "--to", "2026-11-30")
    db = duckdb.connect()
    parquet = f"read_parquet('{out}/usage/*/*.parquet', hive_partitioning = true)"
    by_team = {r[0]: r[1:] for r in db.execute(
        f"SELECT team, sum(cost_usd), sum(requests), sum(input_tokens), sum(output_tokens), sum(unpriced_requests), "
        f"sum(request_milliseconds) FROM {parquet} GROUP BY team").fetchall()}
    per_team = json.loads(run(capfdbinary, "usage", "--config", str(tmp / "c.yaml"), "--db",
                              f"sqlite:///{tmp / 'ledger.db'}", "--group-by", "team", "--format", "json",
                              "--from", "2026-11-01", "--to", "2026-11-30"))["rows"]
    assert by_team == {r["team"]: (D(r["cost_usd"]), r["requests"], r["input_tokens"], r["output_tokens"],
                                   r["unpriced_requests"], r["request_milliseconds"]) for r in per_team}
    assert sum(v[0] for v in by_team.values()) == token_cost
    assert sum(v[5] for v in by_team.values()) == sum(n * 250 for n in range(1, 13))  # every call's duration
    focus = f"read_parquet('{out}/focus/*/*.parquet', hive_partitioning = true)"
    # Every day's file has one schema, the empty days' included (else DuckDB unifies DECIMAL money into text).
    schemas = {tuple(db.execute(f"DESCRIBE SELECT * FROM '{path}'").fetchall())
               for path in sorted((out / "focus").glob("*/*.parquet"))}
    assert len(schemas) == 1
    [(billed, llama_billed, llama_quantity)] = db.execute(
        f"SELECT sum(BilledCost), sum(BilledCost) FILTER (WHERE x_Model = 'llama-3.1-70b'), "
        f"sum(ConsumedQuantity) FILTER (WHERE x_Model = 'llama-3.1-70b') FROM {focus}").fetchall()
    assert billed == token_cost == sum(D(r["BilledCost"]) for r in rows if r["ChargeCategory"] == "Usage")
    assert (llama_billed, llama_quantity) == (0, 3 * 1100)  # fleet-priced: its tokens, billed 0 (the fleet lines)
    assert round(billed, 2) == D(statement["components"]["token_cost"])


def test_customers_cost_revenue_and_margin_by_hand(ledger, capfdbinary):
    tmp, pipeline = ledger
    body = run(capfdbinary, "customers", "--config", str(tmp / "c.yaml"), "--db", f"sqlite:///{tmp / 'ledger.db'}",
               "--period", "2026-11", "--format", "json")
    assert run(capfdbinary, "chargeback", "--by", "customer", "--config", str(tmp / "c.yaml"), "--db",
               f"sqlite:///{tmp / 'ledger.db'}", "--period", "2026-11", "--format", "json") == body
    doc = json.loads(body)
    customers = {c["customer"]: c for c in doc["customers"]}
    assert set(customers) == {"", "acme-corp", "globex-inc"}
    # Token cost: acme-corp 5 gpt-4o calls, globex-inc 2, none 2; exact $0.014 / 0.0056 / 0.0056, total $0.0252
    # -> $0.03 spread by largest remainder: 0.01 + 0.00 + 0.00 floors, remainders .4 .56 .56 -> the two .56s.
    assert {k: c["token_cost_usd"] for k, c in customers.items()} == {"": "0.01", "acme-corp": "0.01",
                                                                      "globex-inc": "0.01"}
    # The fleet over the customers' tokens: acme-corp 1,100, globex-inc 2,200 of 3,300: 33.33 and 66.67 (the
    # larger remainder).
    assert customers["acme-corp"]["fleet_usd"] == {"gpu-pool": "33.33"}
    assert customers["globex-inc"]["fleet_usd"] == {"gpu-pool": "66.67"}
    # Revenue: acme-corp $100 a month + 10 reports x 0.75; globex-inc 3 x 0.75.
    acme, globex = customers["acme-corp"], customers["globex-inc"]
    assert (acme["cost_usd"], acme["revenue_usd"], acme["margin_usd"]) == ("33.34", "107.50", "74.16")
    assert (globex["cost_usd"], globex["revenue_usd"], globex["margin_usd"]) == ("66.68", "2.25", "-64.43")
    assert acme["outcomes"] == [{"name": "report", "count": 10, "revenue_usd": "7.50", "cost_usd": "33.34",
                                 "margin_usd": "-25.84"}]
    assert (globex["budget_usd"], globex["over_budget"], acme["over_budget"]) == ("0.01", True, False)
    assert doc["margin_usd"] == str(D(acme["margin_usd"]) + D(globex["margin_usd"]) + D(customers[""]["margin_usd"]))

    # The same figures as gauges, and the fleet's month-to-date effective rate per token.
    registry = CollectorRegistry()
    halfway = datetime(2026, 11, 16, tzinfo=timezone.utc)  # 15 of 30 days: half of $100.00 accrued
    totals = ChargebackTotals(pipeline.ledger, lambda: pipeline.config, lambda: halfway)
    totals.refresh()
    registry.register(ChargebackCollector(totals.snapshot, lambda: halfway))
    text = generate_latest(registry).decode()
    assert 'costline_customer_margin_usd{customer="acme-corp"} 74.16' in text
    assert 'costline_customer_margin_usd{customer="globex-inc"} -64.43' in text
    assert 'costline_customer_budget_usd{customer="globex-inc"} 0.01' in text
    assert f'costline_fleet_effective_usd_per_token{{fleet="gpu-pool"}} {50 / 3300!r}' in text
    assert 'fleet="idle"' not in text  # no tokens served: no rate, never a division by zero


def test_the_html_statement_shows_the_fleet_and_seat_lines_in_chromium(ledger):
    tmp, pipeline = ledger
    chromium = tool("chromium")
    (tmp / "statement.html").write_bytes(document(pipeline, "html"))
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}", "--dump-dom",
                          (tmp / "statement.html").as_uri()], capture_output=True, timeout=120)
    assert dom.returncode == 0, dom.stderr.decode()[-2000:]
    sections = dict(re.findall(r'<section class="page" data-team="([^"]*)"(.*?)</section>', dom.stdout.decode(),
                               re.S))
    statement = json.loads(document(pipeline, "json"))
    for team in statement["teams"]:
        shown = re.findall(r'data-component="(fleet|seats)" data-name="([^"]*)">.*?<td class="detail">([^<]*)<.*?'
                           r'data-amount="([^"]*)"', sections[team["team"]], re.S)
        assert shown == [(x["component"], x["name"], x["detail"], x["amount_usd"]) for x in team["lines"]
                         if x["component"] in ("fleet", "seats")]
    assert "3 active members x $2.00" in sections["acme/support"]
    assert "0 active members x $3.00 (no user with a call this month)" in sections["acme/research"]


@pytest.mark.parametrize(("section", "expected"), [
    ({"chargeback": {"customers": {"revenue": {"currency": "EUR"}}}},
     "chargeback.customers.revenue.currency: must be the config's currency, USD, not 'EUR'"),
    ({"fleets": [{"name": "a", "models": ["m"], "cost": {"monthly_usd": 1}},
                 {"name": "b", "models": ["M"], "cost": {"monthly_usd": 1}}]},
     "fleets[1].models: 'M' is already served by fleets[0]"),
    ({"fleets": [{"name": "a", "models": ["m"], "cost": {"monthly_usd": 1, "gpu_hours": 2}}]},
     "fleets[0].cost: give either monthly_usd or gpu_hours with usd_per_gpu_hour, not both"),
    ({"fleets": [{"name": "a", "models": ["m"], "cost": {"monthly_usd": 1}, "allocate_by": "gpus"}]},
     "fleets[0].allocate_by: must be tokens or request_seconds, not 'gpus'"),
    ({"fleets": [{"name": "a", "models": ["gpt-4o"], "provider": "openai", "cost": {"monthly_usd": 1}}],
      "prices": [{"provider": "openai", "model": "gpt-4o", "input_per_mtok": 1, "output_per_mtok": 1}]},
     "prices[0].model: openai/gpt-4o is fleet-priced by fleets[0] (a)"),
    ({"chargeback": {"teams": {"x": {"seat_usd": "1.005"}}}},
     "chargeback.teams.x.seat_usd: Decimal input should have no more than 2 decimal places"),
])
def test_bad_finance_config_is_refused_naming_key_and_rule(section, expected):
    with pytest.raises(ConfigError) as refused:
        parse_config(section)
    assert any(expected in e for e in refused.value.errors), refused.value.errors


def test_the_fleet_rate_follows_the_clock_on_an_idle_processor(ledger):
    """The chargeback gauges remake nothing while the ledger is unchanged; the fleet's accrued cost still grows with
    the month, so its rate per token is read against the clock at each scrape."""
    _, pipeline = ledger
    now = [datetime(2026, 11, 16, tzinfo=timezone.utc)]  # 15 of 30 days
    totals = ChargebackTotals(pipeline.ledger, lambda: pipeline.config, lambda: now[0], min_gap_s=0, duty=0)
    registry = CollectorRegistry()
    registry.register(ChargebackCollector(totals.snapshot, lambda: now[0]))
    rate = lambda: registry.get_sample_value("costline_fleet_effective_usd_per_token",  # noqa: E731
                                             {"fleet": "gpu-pool"})
    totals.refresh()
    assert (totals.builds, rate()) == (1, 50 / 3300)
    now[0] += timedelta(days=6)  # 21 of 30 days, no new call: the same digest, no remake, a higher rate
    totals.refresh()
    assert totals.builds == 1
    assert rate() == float(D(100) * 21 / 30 / 3300)
    now[0] = datetime(2026, 11, 30, 23, 59, 59, tzinfo=timezone.utc) + timedelta(seconds=1)  # the month is over
    assert rate() == float(D(100) / 3300)  # the whole month's cost, never more


def test_counts_of_fills_the_call_duration_in_milliseconds():
    start = at(2026, 11, 3)
    call = LLMCall(provider="vllm", request_model="llama", response_model="llama", operation="chat",
                   input_tokens=10, output_tokens=5, has_usage=True, start_time_unix_nano=start)
    for end, ms in ((start + 1_234_500_000, 1235), (start + 999_999, 1), (start + 400_000, 0), (0, 0),
                    (start - 10**9, 0)):
        call.end_time_unix_nano = end
        call.reported_cost_usd = None
        for counts in (counts_of(call, 7), counts_of(call, None), counts_of(call, 7, ("input",))):
            assert len(counts) == len(Counts) and counts[Counts.REQUEST_MILLISECONDS] == ms, (end, counts)
        call.reported_cost_usd = 0.5
        assert counts_of(call, 7)[Counts.REQUEST_MILLISECONDS] == ms
    call.start_time_unix_nano, call.end_time_unix_nano = 0, 10**9  # no start: no duration
    assert counts_of(call, 7)[Counts.REQUEST_MILLISECONDS] == 0


DURATION_CONFIG = """
fleets:
  - {name: pool, models: [llama-3.1-70b], provider: vllm, cost: {monthly_usd: 100.00}, allocate_by: request_seconds}
chargeback:
  default: {markup_pct: 10}
"""


def test_request_seconds_allocate_the_fleet_by_the_calls_durations_by_hand(tmp_path, capfdbinary):
    (tmp_path / "c.yaml").write_text(DURATION_CONFIG)
    calls = []

    def add(team, customer, tokens, ns):
        call = make_call(len(calls) + 1, model="llama-3.1-70b", provider="vllm", team=team, customer=customer,
                         input_tokens=tokens, output=0, start=at(2026, 11, 4 + len(calls)))
        call.end_time_unix_nano = call.start_time_unix_nano + ns if ns is not None else 0
        calls.append(call)

    # Tokens the other way round from durations: a token split would give alpha the most.
    add("alpha", "x", 90_000, 1_000_000_000)
    add("beta", "x", 5_000, 500_400_000)      # 500 ms (rounded per call)...
    add("beta", "x", 5_000, 1_499_600_000)    # ...+ 1,500 ms
    add("gamma", "y", 100, 4_000_000_000)
    add("gamma", "y", 10**6, None)            # no end time: 0 ms, no share
    pipeline = build_pipeline(str(tmp_path / "c.yaml"), f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        pipeline.ingest_calls(calls)
        statement = json.loads(document(pipeline, "json"))
    finally:
        pipeline.close()
    # $100.00 = 10,000 cents over 1,000 / 2,000 / 4,000 ms: 1428.57 + 2857.14 + 5714.29 cents exact, floors 1428 +
    # 2857 + 5714 = 9,999; the last cent to the largest remainder (alpha's .571).
    lines = {t["name"]: [x for x in t["lines"] if x["component"] == "fleet"] for t in statement["teams"]}
    assert {team: (x["amount_usd"], x["quantity"]) for team, [x] in lines.items()} == {
        "alpha": ("14.29", 1000), "beta": ("28.57", 2000), "gamma": ("57.14", 4000)}
    assert lines["beta"][0]["detail"] == "2,000 of 7,000 ms of requests of $100.00 per month"
    [fleet] = statement["fleets"]
    assert (fleet["allocate_by"], fleet["consumption"], fleet["allocated_usd"], fleet["unallocated_usd"],
            fleet["effective_usd_per_unit"]) == ("request_seconds", 7000, "100.00", "0.00", "14.285714285714")
    # `costline usage` shows the durations it was split by.
    usage = json.loads(run(capfdbinary, "usage", "--config", str(tmp_path / "c.yaml"), "--db",
                           f"sqlite:///{tmp_path / 'ledger.db'}", "--group-by", "team", "--format", "json",
                           "--from", "2026-11-01", "--to", "2026-11-30"))["rows"]
    assert {r["team"]: r["request_milliseconds"] for r in usage} == {"alpha": 1000, "beta": 2000, "gamma": 4000}
    # The customers' shares follow the same rule: x 3,000 ms, y 4,000 ms: 4285.71 + 5714.29 -> 42.86 + 57.14.
    customers = json.loads(run(capfdbinary, "customers", "--config", str(tmp_path / "c.yaml"), "--db",
                               f"sqlite:///{tmp_path / 'ledger.db'}", "--period", "2026-11", "--format", "json"))
    assert {c["customer"]: c["fleet_usd"] for c in customers["customers"]} == {"x": {"pool": "42.86"},
                                                                               "y": {"pool": "57.14"}}
