"""Governance on a real `costline serve`: API tokens and roles, team tokens that see their team only, the guard's
policy endpoint, and violations counted for every app (the spans here come from no guard at all)."""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

from costline.processor.http.auth import hash_token
from costline.testing.local import free_port
from tests.processor.otlp import llm_span, request_of
from tests.polling import poll
from tests.processor.served import Served, serve, stop

TOKENS = {"admin": "tok-admin-1", "finance": "tok-finance-1", "eng": "tok-eng-1", "mkt": "tok-mkt-1",
          "guard": "tok-guard-1", "expired": "tok-expired-1", "metrics": "tok-metrics-1"}
ALICE_KEY = "b3180bc5c5db03d7"

CONFIG = f"""\
timezone: UTC
orgs:
  - name: acme
    models: {{openai: {{deny: ["o3*"]}}}}
    teams:
      - name: engineering
        budget: {{monthly_usd: 2000}}
        users:
          - name: alice
            keys:
              - {{name: alice-laptop, fingerprint: {ALICE_KEY}, budget: {{daily_usd: 0.001}}}}
      - name: marketing
        budget: {{monthly_usd: 500}}
        models: {{openai: {{allow: ["gpt-4o-mini*"]}}}}
budgets:
  - {{scope: environment, name: staging, daily_usd: 0.5}}
prices:
  - {{provider: openai, model: gpt-4o, input_per_mtok: 2.00, cache_read_per_mtok: 1.00, output_per_mtok: 8.00}}
api:
  metrics_token_required: true
  tokens:
    - {{name: ops, sha256: "{hash_token(TOKENS['admin'])}", role: admin}}
    - {{name: fin, sha256: "{hash_token(TOKENS['finance'])}", role: finance}}
    - {{name: eng, sha256: "{hash_token(TOKENS['eng'])}", role: "team:acme/engineering"}}
    - {{name: mkt, sha256: "{hash_token(TOKENS['mkt'])}", role: "team:acme/marketing"}}
    - {{name: app, sha256: "{hash_token(TOKENS['guard'])}", role: guard}}
    - {{name: prometheus, sha256: "{hash_token(TOKENS['metrics'])}", role: metrics}}
    - {{name: old, sha256: "{hash_token(TOKENS['expired'])}", role: finance, expires: 2020-01-01T00:00:00Z}}
"""


def call(url: str, token: str | None = None, method: str = "GET") -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url, b"" if method == "POST" else None, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Served:
    workdir = tmp_path_factory.mktemp("governance")
    (workdir / "costline.yaml").write_text(CONFIG)
    served = serve(workdir, f"sqlite:///{workdir / 'l.db'}")
    now = time.time_ns()
    spans = [
        llm_span(team="engineering", start_ns=now),
        llm_span(team="engineering", start_ns=now, extra={"costline.api_key.fingerprint": ALICE_KEY}),
        llm_span(team="marketing", start_ns=now),  # gpt-4o: not on marketing's allow list
        llm_span(team="marketing", model="gpt-4o-mini", start_ns=now),
    ]
    request = urllib.request.Request(served.otlp_url, request_of(spans).SerializeToString(),
                                     {"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        assert response.status == 200
    # The budgets are re-read after the commit, in the background: wait until they count the four calls, so that
    # whichever test runs first (`-k` picks) sees them.
    poll(lambda: any(Decimal(b.get("spent_usd") or 0) > 0 for b in json.loads(
        call(f"{served.api_url}/api/v1/budgets", TOKENS["admin"])[1])["budgets"]), 15, "the spans were never billed")
    yield served
    assert stop(served) == 0, served.log.read_text()


@pytest.mark.parametrize(("token", "method", "path", "status"), [
    (None, "GET", "/api/v1/usage", 401),
    ("not-a-token", "GET", "/api/v1/usage", 401),
    (TOKENS["expired"], "GET", "/api/v1/usage", 401),
    (TOKENS["guard"], "GET", "/api/v1/usage", 403),
    (TOKENS["guard"], "GET", "/api/v1/budgets", 403),
    (TOKENS["finance"], "POST", "/api/v1/reload", 403),
    (TOKENS["eng"], "POST", "/api/v1/reload", 403),
    (TOKENS["eng"], "GET", "/api/v1/policy", 403),
    (TOKENS["finance"], "GET", "/api/v1/policy", 403),
    (None, "GET", "/metrics", 401),
    (TOKENS["eng"], "GET", "/api/v1/usage?team=marketing", 403),
    (TOKENS["eng"], "GET", "/api/v1/budgets?org=other", 403),
    (TOKENS["finance"], "GET", "/api/v1/usage", 200),
    (TOKENS["eng"], "GET", "/api/v1/usage?team=engineering", 200),
    (TOKENS["admin"], "POST", "/api/v1/reload", 200),
    (TOKENS["guard"], "GET", "/api/v1/policy", 200),
    # Scraping is the metrics role's (and admin's): the series carry every team's spend.
    (TOKENS["guard"], "GET", "/metrics", 403),
    (TOKENS["eng"], "GET", "/metrics", 403),
    (TOKENS["finance"], "GET", "/metrics", 403),
    (TOKENS["metrics"], "GET", "/metrics", 200),
    (TOKENS["admin"], "GET", "/metrics", 200),
    (TOKENS["metrics"], "GET", "/api/v1/usage", 403),
    (TOKENS["metrics"], "GET", "/api/v1/budgets", 403),
    (TOKENS["metrics"], "GET", "/api/v1/chargeback", 403),
    (TOKENS["metrics"], "GET", "/api/v1/policy", 403),
    # Customers span every team: never a team token's.
    (None, "GET", "/api/v1/customers", 401),
    (TOKENS["eng"], "GET", "/api/v1/customers", 403),
    (TOKENS["metrics"], "GET", "/api/v1/customers", 403),
    (TOKENS["finance"], "GET", "/api/v1/customers?format=json", 200),
    (TOKENS["admin"], "GET", "/api/v1/customers?format=table", 200),
    # The re-rating audit trail names no team: admin and finance only.
    (None, "GET", "/api/v1/cost-changes", 401),
    (TOKENS["eng"], "GET", "/api/v1/cost-changes", 403),
    (TOKENS["guard"], "GET", "/api/v1/cost-changes", 403),
    (TOKENS["metrics"], "GET", "/api/v1/cost-changes", 403),
    (TOKENS["finance"], "GET", "/api/v1/cost-changes", 200),
    (TOKENS["admin"], "GET", "/api/v1/cost-changes", 200),
    (None, "GET", "/healthz", 200),
    (None, "GET", "/readyz", 200),
])
def test_who_may_ask_what(served, token, method, path, status):
    got, body = call(served.api_url + path, token, method)
    assert got == status, body
    if status >= 400:
        assert set(json.loads(body)) == {"error"}, body  # no data with a refusal
        assert b"cost_usd" not in body and b"remaining" not in body


def test_a_team_token_reads_only_its_team(served):
    status, body = call(f"{served.api_url}/api/v1/usage?group_by=team,model", TOKENS["eng"])
    assert status == 200
    rows = json.loads(body)["rows"]
    assert {(r["team"], r["model"], r["requests"]) for r in rows} == {("engineering", "gpt-4o", 2)}
    # Without team in the grouping, the totals are still the team's own, not everyone's.
    _, body = call(f"{served.api_url}/api/v1/usage?group_by=model", TOKENS["mkt"])
    assert {(r["model"], r["requests"]) for r in json.loads(body)["rows"]} == {("gpt-4o", 1), ("gpt-4o-mini", 1)}
    assert all("team" not in r for r in json.loads(body)["rows"])
    _, body = call(f"{served.api_url}/api/v1/budgets", TOKENS["eng"])
    budgets = json.loads(body)
    assert {b["owner"] for b in budgets["budgets"]} == {"acme/engineering", "acme/engineering/alice/alice-laptop"}
    assert all(e["team"] == "engineering" for e in budgets["effective"])
    # Finance sees every team.
    _, body = call(f"{served.api_url}/api/v1/usage?group_by=team", TOKENS["finance"])
    assert {r["team"] for r in json.loads(body)["rows"]} == {"engineering", "marketing"}


def test_policy_endpoint_gives_the_guard_rules_budget_and_rates(served):
    status, body = call(f"{served.api_url}/api/v1/policy?key={ALICE_KEY}&team=marketing&models=openai/gpt-4o,"
                        "openai/no-such-model", TOKENS["guard"])
    assert status == 200
    document = json.loads(body)
    # The registered key wins over the declared team, as it does for billing.
    assert document["owner"] == {"org": "acme", "team": "engineering", "user": "alice", "key": "alice-laptop",
                                 "project": ""}
    assert document["models"] == [{"level": "org acme", "provider": "openai", "allow": None, "deny": ["o3*"]}]
    budget = document["budget"]
    assert budget["bound_by"] == "key acme/engineering/alice/alice-laptop daily"
    assert budget["remaining_usd"] == "-0.002600000000"  # exact: 0.001 budget - 0.0036 spent
    # Every budget the caller counts against, tightest first: the guard counts its local spend against each.
    assert document["budgets"] == [budget, {"remaining_usd": "1999.992800000000",
                                            "bound_by": "team acme/engineering monthly"}]
    assert document["rates"] == {"openai/gpt-4o": {"input_per_mtok": 2.0, "output_per_mtok": 8.0}}

    _, body = call(f"{served.api_url}/api/v1/policy?team=marketing", TOKENS["guard"])
    document = json.loads(body)
    assert [r["level"] for r in document["models"]] == ["org acme", "team acme/marketing"]
    assert document["budget"]["bound_by"] == "team acme/marketing monthly"


def test_policy_endpoint_applies_the_environment_the_guard_sends(served):
    """The guard sends its resource's `deployment.environment.name`: an environment budget binds its calls."""
    _, body = call(f"{served.api_url}/api/v1/policy?team=marketing&environment=staging", TOKENS["guard"])
    document = json.loads(body)
    assert {"bound_by": "environment staging daily", "unit": "usd", "mode": "hard",
            "remaining": "0.500000000000"} in document["limits"], document["limits"]
    assert document["budget"]["bound_by"] == "environment staging daily"
    _, body = call(f"{served.api_url}/api/v1/policy?team=marketing&environment=production", TOKENS["guard"])
    assert all(not limit["bound_by"].startswith("environment") for limit in json.loads(body)["limits"])


def test_violations_are_counted_for_unguarded_apps(served):
    status, body = call(f"{served.api_url}/metrics", TOKENS["metrics"])
    assert status == 200
    lines = [line for line in body.decode().splitlines() if line.startswith("costline_policy_violations_total")]
    assert lines == ['costline_policy_violations_total{model="gpt-4o",org="acme",rule="team acme/marketing '
                     'openai allow",team="marketing"} 1.0']


def test_without_tokens_only_loopback_clients_are_answered(tmp_path, caplog):
    from costline.processor.config.settings import Address, Settings
    from costline.processor.http.api import AdminApi
    from costline.processor.http.server import Request
    from costline.processor.service import Service

    settings = Settings(config_path=None, db_url=f"sqlite:///{tmp_path / 'l.db'}", otlp_http=None, otlp_grpc=None,
                        http=Address("0.0.0.0", free_port()))
    with caplog.at_level(logging.WARNING, logger="costline.processor"):
        service = Service(settings).start()
    try:
        assert any("no api.tokens configured" in r.getMessage() for r in caplog.records)
        api: AdminApi = service.admin.router
        remote = api(Request("GET", "/api/v1/usage", {}, {}, client="192.0.2.7"))
        assert remote.status == 403 and b"loopback" in remote.body
        assert api(Request("GET", "/api/v1/usage", {}, {}, client="::1")).status == 200
        assert api(Request("GET", "/metrics", {}, {}, client="192.0.2.7")).status == 200  # scrapes stay open
    finally:
        service.stop(1)


def test_a_token_value_in_config_is_refused(tmp_path: Path):
    from costline.processor.config.core import ConfigError, parse_config

    with pytest.raises(ConfigError) as err:
        parse_config({"api": {"tokens": [{"name": "x", "sha256": "tok-admin-1", "role": "admin"}]}})
    assert err.value.errors[0].startswith("api.tokens[0].sha256: must be 'sha256:'")
    with pytest.raises(ConfigError) as err:
        parse_config({"api": {"tokens": [{"name": "y", "sha256": hash_token("a"), "role": "team:acme/nope"}]}})
    assert err.value.errors == ["api.tokens[0].role: no team 'nope' in org 'acme' in this config"]


def test_hash_token_reads_the_token_from_stdin():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-m", "costline.cli", "hash-token"], input="tok-admin-1\n",
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == hash_token("tok-admin-1")
    assert result.stdout.startswith("sha256:") and len(result.stdout.strip()) == 7 + 64
