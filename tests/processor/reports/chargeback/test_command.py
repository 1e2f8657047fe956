"""`costline chargeback` and `GET /api/v1/chargeback` on a real ledger (SQLite and PostgreSQL): the same document,
the month in the configured zone, and totals a hand computation from `costline usage` reproduces to the cent."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from costline.processor.config.settings import Address, Settings
from costline.processor.formats import csv_cell
from costline.processor.ledger import Ledger
from costline.processor.service import Service
from tests.processor.conftest import at, db_url, make_call  # noqa: F401 - db_url: the fixture
from tests.processor.served import http_get

ISSUE = Path(__file__).with_name("issue.yaml").read_text()
CONFIG = "timezone: Europe/Berlin\nprices:\n" \
         "  - {provider: openai, model: gpt-4o, input_per_mtok: 2.00, output_per_mtok: 8.00}\n" + ISSUE
COSTLINE = [sys.executable, "-m", "costline.cli"]


def calls():
    """Three teams, an unattributed service, a team that only appears in another org, and calls just outside the
    month in Berlin time (Nov 30 23:30 UTC is December there; Oct 31 23:30 UTC is November)."""
    out, n = [], 0

    def add(count, team, org="acme", input_tokens=1000, output=100, start=None, model="gpt-4o"):
        nonlocal n
        for _ in range(count):
            n += 1
            out.append(make_call(n, model=model, team=team, org=org, input_tokens=input_tokens, output=output,
                                 start=start or at(2026, 11, 10)))

    add(12, "engineering", input_tokens=900_001, output=100_003)      # 12.0 Mtok: tier 2, 20 %
    add(3, "marketing", input_tokens=333_333, output=7)               # at cost, no fee
    add(5, "support", input_tokens=20_001, output=1_999)              # value-based
    add(2, "research", org="globex", input_tokens=1_234, output=567)  # tier 1, 50 %
    add(4, "", org="", input_tokens=5_555, output=55)                 # no owner: unattributed
    add(1, "research", org="globex", input_tokens=10**6, output=0, start=at(2026, 11, 30, 23) + 30 * 60 * 10**9)
    add(1, "research", org="globex", input_tokens=7, output=7, start=at(2026, 10, 31, 23) + 30 * 60 * 10**9)
    add(1, "marketing", model="no-such-model")                        # unpriced: waiting for a price
    return out


@pytest.fixture
def served(tmp_path, db_url):  # noqa: F811
    (tmp_path / "costline.yaml").write_text(CONFIG)
    settings = Settings(config_path=tmp_path / "costline.yaml", db_url=db_url, otlp_http=None, otlp_grpc=None,
                        http=Address("127.0.0.1", 0))
    service = Service(settings).start()
    service.pipeline.ingest_calls(calls())
    try:
        yield service, tmp_path / "costline.yaml", db_url
    finally:
        service.stop(1)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*COSTLINE, *args], capture_output=True, timeout=120)


def by_hand(usage_rows: list[dict], tickets: int) -> dict[str, Decimal]:
    """The issue's rules, worked the long way round from `costline usage` rows (org, team, tokens, cost_usd)."""
    teams, pool = {}, Fraction(0)
    for r in usage_rows:
        cost = Fraction(Decimal(r["cost_usd"]))
        if r["team"] == "unattributed":
            pool += cost
            continue
        tokens = r["input_tokens"] + r["output_tokens"] + r["cache_read_tokens"] + r["cache_write_tokens"]
        teams[f"{r['org']}/{r['team']}"] = (tokens, cost)
    order = sorted(teams)

    def split(cents: int, weights: list[Fraction]) -> list[int]:
        shares = [Fraction(cents) * w / sum(weights) for w in weights]
        floors = [s.numerator // s.denominator for s in shares]
        for i in sorted(range(len(shares)), key=lambda i: -(shares[i] - floors[i]))[: cents - sum(floors)]:
            floors[i] += 1
        return floors

    exact = {}
    costs = [teams[k][1] for k in order]
    infra = split(120000, costs)
    reserved = split(300000, [Fraction(60) if k == "acme/engineering" else Fraction(40) if k == "acme/marketing"
                              else Fraction(0) for k in order])
    unattributed = split(int((pool * 100 + Fraction(1, 2)) // 1), costs)
    for i, key in enumerate(order):
        tokens, cost = teams[key]
        if key == "acme/support":
            charge = Fraction(200) + Fraction(1, 2) * tickets
        elif key == "acme/marketing":
            charge = cost
        else:
            pct = 50 if tokens < 10**7 else 20 if tokens < 10**8 else 10
            charge = cost * (100 + pct) / 100 + 200
        exact[key] = charge + Fraction(infra[i] + reserved[i] + unattributed[i], 100)
    total_cents = int((sum(exact.values()) * 100 + Fraction(1, 2)) // 1)
    # Largest remainder over the team totals themselves (not proportional shares).
    floors = {k: (v * 100).numerator // (v * 100).denominator for k, v in exact.items()}
    for k in sorted(order, key=lambda k: -(exact[k] * 100 - floors[k]))[: total_cents - sum(floors.values())]:
        floors[k] += 1
    out = {k: Decimal(v) / 100 for k, v in floors.items()}
    out["total"] = Decimal(total_cents) / 100
    return out


def test_cli_and_api_give_the_same_statement_and_the_hand_computation_agrees(served):
    service, config, db = served
    url = f"{service.admin.url}/api/v1/chargeback?period=2026-11"
    from_api = http_get(url + "&format=json")
    run = cli("chargeback", "--config", str(config), "--db", db, "--period", "2026-11", "--format", "json")
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout == from_api
    statement = json.loads(from_api)
    assert (statement["period"], statement["from"], statement["to"]) == (
        "2026-11", "2026-11-01T00:00:00+01:00", "2026-12-01T00:00:00+01:00")

    usage = cli("usage", "--config", str(config), "--db", db, "--group-by", "org,team", "--format", "json",
                "--from", "2026-10-31T23:00:00Z", "--to", "2026-11-30T23:00:00Z")
    assert usage.returncode == 0, usage.stderr.decode()
    hand = by_hand(json.loads(usage.stdout)["rows"], tickets=0)
    assert {t["team"]: Decimal(t["total_usd"]) for t in statement["teams"]} | {
        "total": Decimal(statement["total_usd"])} == hand
    assert sum(Decimal(v) for v in statement["components"].values()) == Decimal(statement["total_usd"])
    research = next(t for t in statement["teams"] if t["team"] == "globex/research")
    # Two calls in the month: the one at Oct 31 23:30 UTC (November in Berlin) counts, Nov 30 23:30 UTC does not.
    assert research["usage"]["requests"] == 3 and research["markup_source"] == "tier 1: 0-10 Mtok"
    marketing = next(t for t in statement["teams"] if t["team"] == "acme/marketing")
    assert (marketing["usage"]["unpriced_requests"], marketing["usage"]["unpriced_tokens"]) == (1, 1100)


def test_team_filter_csv_and_table(served):
    service, config, db = served
    base = f"{service.admin.url}/api/v1/chargeback?period=2026-11"
    one = json.loads(http_get(base + "&team=engineering"))
    assert [t["team"] for t in one["teams"]] == ["acme/engineering"]
    assert one["total_usd"] == one["teams"][0]["total_usd"]
    csv_text = http_get(base + "&format=csv").decode()
    rows = csv_text.split("\r\n")
    assert rows[0] == "period,team,org,team_name,component,line,quantity,amount_usd,exact_usd,detail"
    full = json.loads(http_get(base))
    assert rows[-2] == f"2026-11,,,,total,,,{full['total_usd']},,statement total"
    for team in full["teams"]:
        for line in team["lines"]:
            assert ",".join(csv_cell(v) for v in ("2026-11", team["team"], team["org"], team["name"],
                                                 line["component"], line["name"], line.get("quantity"),
                                                 Decimal(line["amount_usd"]), Decimal(line["exact_usd"]),
                                                 line["detail"])) in rows
    run = cli("chargeback", "--config", str(config), "--db", db, "--period", "2026-11", "--team", "globex/research")
    assert run.returncode == 0, run.stderr.decode()
    table = run.stdout.decode()
    assert "globex/research  [cost-plus, markup 50 % from tier 1: 0-10 Mtok]" in table
    assert table.rstrip().endswith(next(t["total_usd"] for t in full["teams"] if t["team"] == "globex/research"))


def test_bad_requests_are_named(served):
    service, config, db = served
    base = f"{service.admin.url}/api/v1/chargeback"
    for query, message in (("?period=2026-13", "expected a calendar month as YYYY-MM"),
                           ("?period=2026-11&team=nobody", "team 'nobody' has no charges in 2026-11"),
                           ("?format=xml", "format='xml': use one of table, csv, json")):
        with pytest.raises(urllib.error.HTTPError) as err:
            http_get(base + query)
        assert err.value.code == 400 and message in json.loads(err.value.read())["error"]
    run = cli("chargeback", "--config", str(config), "--db", db, "--period", "11/2026")
    assert run.returncode == 2 and b"expected a calendar month as YYYY-MM" in run.stderr


def test_without_a_chargeback_section(tmp_path):
    (tmp_path / "c.yaml").write_text("timezone: UTC\n")
    Ledger(f"sqlite:///{tmp_path / 'l.db'}").close()  # the command reads an existing ledger, never creates one
    run = cli("chargeback", "--config", str(tmp_path / "c.yaml"), "--db", f"sqlite:///{tmp_path / 'l.db'}")
    assert run.returncode == 2 and b"no `chargeback:` section in the config" in run.stderr
