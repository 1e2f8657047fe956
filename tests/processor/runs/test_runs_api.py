"""`GET /api/v1/runs` and `GET /api/v1/runs/<kind>/<id>` on a real service: the same role scoping as usage — a team
token reads its own team's runs and its own part of a run, another team's run is a 404 and asking for another team
a 403, never an empty answer — and bad queries are a 400 naming the parameter."""

from __future__ import annotations

import json
from decimal import Decimal
from urllib.parse import quote

import pytest

from costline.processor.config.settings import Address, Settings
from costline.processor.http.auth import hash_token
from costline.processor.service import Service
from tests.processor.reports.chargeback.test_team_tokens import get
from tests.processor.runs.test_runs import CONFIG, PER_CALL, calls_of, trace

TOKENS = {"finance": "tok-fin-22", "search": "tok-search-22", "billing": "tok-billing-22"}
API = """orgs:
  - name: acme
    teams: [{name: search}, {name: billing}]
api:
  tokens:
""" + "".join(f"    - {{name: {name}, sha256: \"{hash_token(token)}\", role: {role}}}\n" for name, token, role in (
    ("fin", TOKENS["finance"], "finance"), ("search", TOKENS["search"], '"team:acme/search"'),
    ("billing", TOKENS["billing"], '"team:acme/billing"')))
SHARED = trace(3)
"""A run whose calls belong to both teams: each team's token sees its own part."""


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("runs-api")
    (tmp_path / "costline.yaml").write_text(CONFIG + API)
    settings = Settings(config_path=tmp_path / "costline.yaml", db_url=f"sqlite:///{tmp_path / 'l.db'}",
                        otlp_http=None, otlp_grpc=None, http=Address("127.0.0.1", 0))
    service = Service(settings).start()
    service.pipeline.ingest_calls([
        *calls_of(3, 0, trace_no=1, team="search", conversation_id="chat/1 ü"),
        *calls_of(4, 10, trace_no=2, team="billing"),
        *calls_of(1, 20, trace_no=3, team="search"), *calls_of(2, 30, trace_no=3, team="billing"),
    ])
    try:
        yield f"{service.admin.url}/api/v1/runs"
    finally:
        service.stop(1)


def get_json(url: str, token: str) -> tuple[int, dict]:
    status, body = get(url, token)
    return status, json.loads(body)


def test_finance_reads_every_team_and_a_team_token_its_own(url):
    status, document = get_json(f"{url}?month=2026-11&kind=trace", TOKENS["finance"])
    assert status == 200, document
    assert [(r["run_id"], r["team"], r["requests"]) for r in document["runs"]] == [
        (trace(2).hex(), "billing", 4), (trace(1).hex(), "search", 3), (SHARED.hex(), "billing", 2),
        (SHARED.hex(), "search", 1)]

    status, document = get_json(f"{url}?month=2026-11&kind=trace", TOKENS["search"])
    assert status == 200
    assert document["scope"] == {"org": "acme", "team": "search"}
    assert [(r["run_id"], r["team"]) for r in document["runs"]] == [(trace(1).hex(), "search"),
                                                                      (SHARED.hex(), "search")]
    status, document = get_json(f"{url}?month=2026-11&team=search", TOKENS["search"])
    assert status == 200 and {r["team"] for r in document["runs"]} == {"search"}


def test_a_team_token_asking_for_another_team_is_refused(url):
    status, document = get_json(f"{url}?team=billing", TOKENS["search"])
    assert status == 403 and "acme/search" in document["error"]
    status, document = get_json(f"{url}/trace/{trace(2).hex()}?team=billing", TOKENS["search"])
    assert status == 403


def test_one_run_is_the_callers_part_of_it_and_another_teams_run_is_not_found(url):
    status, document = get_json(f"{url}/trace/{SHARED.hex()}", TOKENS["finance"])
    assert status == 200
    assert (document["requests"], Decimal(document["cost_usd"])) == (3, 3 * PER_CALL)
    assert [(o["team"], o["requests"]) for o in document["owners"]] == [("billing", 2), ("search", 1)]

    status, document = get_json(f"{url}/trace/{SHARED.hex()}", TOKENS["search"])
    assert status == 200
    assert (document["requests"], [o["team"] for o in document["owners"]]) == (1, ["search"])

    status, document = get_json(f"{url}/trace/{trace(2).hex()}", TOKENS["search"])
    assert status == 404 and "team search" in document["error"]
    assert get_json(f"{url}/trace/{trace(2).hex()}", TOKENS["billing"])[0] == 200

    # A conversation id with a slash and non-ASCII, percent-encoded in the path; CSV like usage.
    status, body = get(f"{url}/conversation/{quote('chat/1 ü', safe='')}?format=csv", TOKENS["search"])
    assert status == 200, body
    lines = body.decode().splitlines()
    assert lines[0].startswith("kind,run_id,org,team,project,user,first_seen")
    assert lines[1].startswith("conversation,chat/1 ü,acme,search,,,2026-11-10T12:00:00+00:00")


@pytest.mark.parametrize(("query", "message"), [
    ("?kind=agent", "kind='agent'"), ("?month=2026-13", "month"), ("?limit=0", "limit"),
    ("?format=xml", "format"), ("/trace/xyz", "32 hexadecimal digits"), ("/run/abc", "kind='run'"),
    ("?month=2026-11&from=2026-11-01", "either a month or from/to"), ("?from=2026-12-01&to=2026-11-01", "after"),
])
def test_bad_queries_are_a_400_naming_the_parameter(url, query, message):
    status, document = get_json(url + query, TOKENS["finance"])
    assert status == 400 and message in document["error"], document
