"""A ledger of many span-minted teams: the statement is bounded by the owner cardinality limits (the rest folded
into `__overflow__`, every dollar kept), the API answers it page by page, and the open month's gauges remake it only
when its inputs changed. Sizes and counts of work are asserted, never timings."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal

import pytest

from costline.processor.clock import system_clock
from costline.processor.config.settings import Address, Settings
from costline.processor.metrics.chargeback_gauges import ChargebackTotals
from costline.processor.reports.chargeback.report import statement_for
from costline.processor.reports.chargeback.statement import Period
from costline.processor.service import Service
from tests.processor.conftest import make_call
from tests.processor.reports.chargeback.test_boundaries import PRICE, ns

TEAMS, LIMIT = 240, 12
NOVEMBER = Period(2026, 11)
CONFIG = f"""timezone: UTC
{PRICE}metrics:
  cardinality_limits: {{team: {LIMIT}}}
orgs:
  - name: acme
    teams: [{{name: tiny}}]
chargeback:
  default: {{markup_pct: 10, platform_fee_usd: 5}}
  shared_costs:
    - {{name: infra, monthly_usd: 100, split: proportional}}
"""


def many_teams(first: int = 0) -> list:
    """`TEAMS` teams minted by spans in two orgs, each a different cost; and `tiny`, a configured team that spends
    least of all (it keeps its name: the config names it)."""
    calls = [make_call(first + i, model="one-dollar", input_tokens=1000 * (i + 1), output=0, team=f"t{i:03d}",
                       org=("acme", "globex")[i % 2], start=ns("2026-11-10T12:00:00+00:00")) for i in range(TEAMS)]
    calls.append(make_call(first + TEAMS, model="one-dollar", input_tokens=1, output=0, team="tiny", org="acme",
                           start=ns("2026-11-10T12:00:00+00:00")))
    return calls


@pytest.fixture
def service(tmp_path):
    (tmp_path / "costline.yaml").write_text(CONFIG)
    settings = Settings(config_path=tmp_path / "costline.yaml", db_url=f"sqlite:///{tmp_path / 'l.db'}",
                        otlp_http=None, otlp_grpc=None, http=Address("127.0.0.1", 0))
    service = Service(settings).start()
    service.pipeline.ingest_calls(many_teams())
    try:
        yield service
    finally:
        service.stop(1)


def test_the_statement_names_at_most_the_limit_and_folds_the_rest(service):
    pipeline = service.pipeline
    statement = statement_for(pipeline.config, pipeline.ledger, NOVEMBER, clock=system_clock)
    names = {t.team for t in statement.teams}
    # LIMIT team names (tiny, then the biggest spenders), and one overflow team per org.
    assert len(names - {"__overflow__"}) == LIMIT and "tiny" in names
    assert {t.key for t in statement.teams if t.team == "__overflow__"} == {"acme/__overflow__", "globex/__overflow__"}
    assert len(statement.teams) <= LIMIT + 2
    kept = sorted(range(TEAMS), reverse=True)[: LIMIT - 1]
    assert names - {"__overflow__", "tiny"} == {f"t{i:03d}" for i in kept}
    # Every dollar is on it: the token cost of all the teams' calls, exactly; one fee per team on the statement.
    spent = Decimal(sum(1000 * (i + 1) for i in range(TEAMS)) + 1) / 10**6
    assert sum((t.usage.cost for t in statement.teams), Decimal(0)) == spent
    assert statement.components["platform_fee"] == 5 * len(statement.teams)
    folded = [t for t in statement.teams if t.team == "__overflow__"]
    assert sum(t.usage.requests for t in folded) == TEAMS - (LIMIT - 1)


def get(url: str) -> tuple[bytes, dict[str, str]]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback
        return response.read(), dict(response.headers)


def test_the_api_answers_page_by_page(service):
    base = f"{service.admin.url}/api/v1/chargeback?period=2026-11"
    whole = json.loads(get(base)[0])  # fits one default page: the document as ever, no paging keys
    assert "next_page_token" not in whole and len(whole["teams"]) <= LIMIT + 2
    teams, url, pages = [], f"{base}&limit=5", 0
    while url:
        body, headers = get(url)
        page = json.loads(body)
        pages += 1
        assert len(page["teams"]) <= 5 and page["teams_in_statement"] == len(whole["teams"])
        assert page["total_usd"] == whole["total_usd"] and page["components"] == whole["components"]
        teams += page["teams"]
        token = page["next_page_token"]
        assert ("Link" in headers) == (token is not None)
        url = f"{base}&limit=5&page_token={token}" if token else None
    assert teams == whole["teams"] and pages == -(-len(whole["teams"]) // 5)
    # CSV pages put together: every team's rows once, the statement total once (on the last page).
    csv_rows, url = [], f"{base}&format=csv&limit=4"
    while url:
        body, headers = get(url)
        csv_rows += body.decode().split("\r\n")[1:-1]
        url = service.admin.url + headers["Link"].split(">")[0][1:] if "Link" in headers else None
    assert csv_rows == get(f"{base}&format=csv")[0].decode().split("\r\n")[1:-1]
    # HTML: one page of teams, each its own printable page.
    html = get(f"{base}&format=html&limit=3")[0].decode()
    assert html.count('<section class="page"') == 3
    for bad in ("0", "1001", "x", "\u00b2", "-1"):  # a limit out of range or not a number is named
        with pytest.raises(urllib.error.HTTPError) as err:
            get(f"{base}&limit={urllib.parse.quote(bad)}")
        assert err.value.code == 400 and b"limit=" in err.value.read()
    with pytest.raises(urllib.error.HTTPError) as err:
        get(f"{base}&page_token=bm90LWEtdG9rZW4")
    assert err.value.code == 400 and b"page_token: not a token this server issued" in err.value.read()
    # A token of another period is refused.
    token = json.loads(get(f"{base}&limit=5")[0])["next_page_token"]
    with pytest.raises(urllib.error.HTTPError) as err:
        get(f"{service.admin.url}/api/v1/chargeback?period=2026-10&limit=5&page_token={token}")
    assert err.value.code == 400


def test_the_open_month_gauges_remake_the_statement_only_when_its_inputs_change(service):
    pipeline = service.pipeline
    now = lambda: ns("2026-11-20T00:00:00+00:00") / 1e9  # noqa: E731
    from datetime import datetime, timezone

    clock = lambda: datetime.fromtimestamp(now(), timezone.utc)  # noqa: E731
    totals = ChargebackTotals(pipeline.ledger, lambda: pipeline.config, clock=clock, duty=0)
    totals.refresh()
    assert totals.builds == 1
    for _ in range(5):  # idle: the timer's refreshes find nothing changed
        totals.refresh()
    assert totals.builds == 1
    snapshot = totals.snapshot()
    assert len({key[1] for key in snapshot.components}) <= LIMIT + 1
    pipeline.ingest_calls([make_call(10_000, model="one-dollar", input_tokens=5, output=0, team="tiny", org="acme",
                                     start=ns("2026-11-11T12:00:00+00:00"))])
    totals.refresh()
    assert totals.builds == 2
    # A remake waits `duty` times as long as the last took: commits arriving meanwhile wait for the next wake-up.
    busy = ChargebackTotals(pipeline.ledger, lambda: pipeline.config, clock=clock, duty=10**6)
    busy.refresh()
    pipeline.ingest_calls([make_call(10_001, model="one-dollar", input_tokens=5, output=0, team="tiny", org="acme",
                                     start=ns("2026-11-11T13:00:00+00:00"))])
    busy.refresh()
    assert busy.builds == 1


def test_orgs_folded_past_the_limit_are_charged_like_the_others():
    """Orgs past the `org` limit become `__overflow__`; their usage is real, so their fee and shares are charged
    (the started orgs are those with data: the folded ones had some)."""
    from zoneinfo import ZoneInfo

    from costline.processor.config.chargeback import ChargebackConfig
    from costline.processor.reports.chargeback.statement import TeamUsage, build_statement, fold_usage

    usage = [TeamUsage(f"org{i}", "team", requests=1, tokens=10, cost=Decimal(i + 1)) for i in range(6)]
    folded = fold_usage(usage, (2, 100), set())
    assert [u.key for u in folded] == ["__overflow__/team", "org4/team", "org5/team"]
    assert folded[0].cost == 1 + 2 + 3 + 4 and folded[0].requests == 4
    config = ChargebackConfig.model_validate({"default": {"platform_fee_usd": 7}})
    statement = build_statement(config, NOVEMBER, ZoneInfo("UTC"), folded, started={f"org{i}" for i in range(6)})
    fees = {t.key: sum(x.amount for x in t.lines if x.component == "platform_fee") for t in statement.teams}
    assert fees == {"__overflow__/team": 7, "org4/team": 7, "org5/team": 7}
