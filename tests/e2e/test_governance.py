"""Issue 20's first done-when, end to end on PostgreSQL: two processors (`Service`, in this process so that their
clock can be moved on) share one ledger; an unmodified app runs under `opentelemetry-instrument` with
`COSTLINE_GUARD=block` against the fake provider server, its spans going to processor A while its guard asks
processor B.

An org admin (a token of the YAML baseline) creates a team through the API and, with `costline admin`, that team's
admin and the admin's token; the team admin creates a user and registers a key by fingerprint with a weekly budget.
B learns of the key and its budget from the ledger (the overlay refresher), not from a restart. The app's first run
spends the week's budget; the next is refused before anything is sent; once both processors' clock shows the next
ISO week the app's calls go out again. Another team's admin gets a 403 naming the scope on every step, and the audit
log shows each step with who made it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from costline.fingerprint import fingerprint
from costline.processor.config.settings import Address, Settings
from costline.processor.http.auth import hash_token
from costline.processor.service import Service
from costline.processor.units import period_ends, period_starts
from costline.testing.fake_provider import FakeProviderServer
from tests.e2e.test_guard import APP, run_app
from tests.polling import poll
from tests.postgres import fresh_database, require_postgres

KEY = "sk-e2e-governance-weekly-0004"
FINGERPRINT = fingerprint(KEY)
TOKENS = {"acme": "tok-gov-acme-admin", "search": "tok-gov-search-admin", "guard": "tok-gov-guard"}
ZONE = "Europe/Berlin"
CONFIG = f"""
timezone: {ZONE}
orgs:
  - name: acme
    budget: {{monthly_usd: 3000}}
    teams:
      - name: search
        users: [{{name: sam}}]
prices:
  - {{provider: openai, model: gpt-4o, input_per_mtok: 2.00, cache_read_per_mtok: 1.00, output_per_mtok: 8.00}}
api:
  tokens:
    - {{name: acme-admin, sha256: "{hash_token(TOKENS['acme'])}", role: "org-admin:acme"}}
    - {{name: search-admin, sha256: "{hash_token(TOKENS['search'])}", role: "team-admin:acme/search", user: sam}}
    - {{name: app, sha256: "{hash_token(TOKENS['guard'])}", role: guard}}
"""
RULE = "key acme/discovery/erin/erin-app weekly"


@pytest.fixture
def postgres_url():
    """A fresh database on the suite's PostgreSQL, dropped afterwards."""
    require_postgres()
    with fresh_database("costline_gov") as url:
        yield url

class Processor:
    """What `run_app` needs of a processor (its OTLP and API URLs), with the API URL the guard asks."""

    def __init__(self, otlp: Service, guard: Service) -> None:
        self.otlp_url = f"{otlp.otlp_http.url}/v1/traces"
        self.api_url = guard.admin.url


def call(url: str, token: str, method: str = "GET", body: dict | None = None,
         version: int | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"}
    if version is not None:
        headers["If-Match"] = f'"{version}"'
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def admin(api: str, token: str, kind: str, body: dict, version: int | None = None) -> tuple[int, dict]:
    return call(f"{api}/api/v1/admin/{kind}", token, "POST", body, version)


def cli(api: str, token: str, *args: str) -> subprocess.CompletedProcess:
    """`costline admin` over the API, the token in the environment as the CLI wants it."""
    return subprocess.run([sys.executable, "-m", "costline.cli", "admin", "--url", api, *args],
                          env={**os.environ, "COSTLINE_TOKEN": token}, capture_output=True, text=True, timeout=30)


def policy(api: str) -> dict:
    return call(f"{api}/api/v1/policy?key={FINGERPRINT}&org=acme&team=discovery", TOKENS["guard"])[1]


def remaining(api: str) -> Decimal:
    return Decimal(policy(api)["budget"]["remaining_usd"])


def test_team_admin_keys_a_weekly_budget_that_the_guard_enforces_on_both_processors(tmp_path, postgres_url):
    (tmp_path / "costline.yaml").write_text(CONFIG)
    # The app's spans are stamped by the system clock: the processors' injected clock starts there.
    now = [datetime.now(timezone.utc)]

    def start() -> Service:
        settings = Settings(config_path=tmp_path / "costline.yaml", db_url=postgres_url,
                            otlp_http=Address("127.0.0.1", 0), otlp_grpc=None, http=Address("127.0.0.1", 0))
        return Service(settings, clock=lambda: now[0]).start()

    running = set(threading.enumerate())
    a = start()
    b = start()
    try:
        api = a.admin.url
        # The org admin creates the team through the API, then its admin and the admin's token with the CLI.
        status, answer = admin(api, TOKENS["acme"], "teams", {"action": "create", "name": "discovery", "org": "acme",
                                                               "budget": {"monthly_usd": 500}})
        assert status == 201, answer
        done = cli(api, TOKENS["acme"], "create", "user", "dana", "--team", "discovery")
        assert done.returncode == 0, done.stderr
        done = cli(api, TOKENS["acme"], "create", "token", "dana-admin", "--role", "team-admin:acme/discovery",
                   "--user", "dana")
        assert done.returncode == 0, done.stderr
        dana = done.stderr.rsplit(": ", 1)[1].strip()  # shown once, on stderr

        # The team admin creates a user and registers the app's key by fingerprint with a weekly budget.
        status, answer = admin(api, dana, "users", {"action": "create", "name": "erin", "team": "discovery"})
        assert status == 201, answer
        status, answer = admin(api, dana, "keys", {"action": "create", "name": "erin-app", "user": "erin",
                                                   "fingerprint": FINGERPRINT, "budget": {"weekly_usd": 0.0001}})
        assert status == 201, answer

        # Both processors resolve the key and its weekly budget; B from the ledger, without a restart.
        owner = {"org": "acme", "team": "discovery", "user": "erin", "key": "erin-app", "project": ""}
        for served in (a, b):
            poll(lambda served=served: policy(served.admin.url).get("owner") == owner, 15,
                 lambda served=served: json.dumps(policy(served.admin.url)))
            assert policy(served.admin.url)["budget"]["bound_by"] == RULE

        # Another team's admin: a 403 naming the scope on every step of it, and nothing stored.
        for kind, body in [("teams", {"action": "update", "name": "discovery", "budget": {"monthly_usd": 1}}),
                           ("users", {"action": "create", "name": "mallory", "team": "discovery"}),
                           ("users", {"action": "update", "name": "erin", "budget": {"weekly_usd": 1}}),
                           ("keys", {"action": "create", "name": "m", "user": "erin",
                                     "fingerprint": "aaaaaaaaaaaaaaaa"}),
                           ("keys", {"action": "update", "name": FINGERPRINT, "budget": {"weekly_usd": 1}}),
                           ("keys", {"action": "retire", "name": FINGERPRINT}),
                           ("tokens", {"action": "create", "name": "x", "role": "team-admin:acme/discovery",
                                       "sha256": hash_token("x")})]:
            status, answer = admin(api, TOKENS["search"], kind, body, version=1)
            assert status == 403, (kind, body, answer)
            assert "acme/discovery" in answer["error"] and "scope" in answer["error"], answer
        status, answer = call(f"{b.admin.url}/api/v1/budgets?team=discovery", TOKENS["search"])
        assert status == 403 and "scope team discovery" in answer["error"], answer

        # The week's budget: the first run spends it (spans to A), the next is refused by the guard asking B.
        processor = Processor(a, b)
        guard = {"COSTLINE_GUARD": "block", "COSTLINE_GUARD_URL": b.admin.url, "COSTLINE_GUARD_TOKEN":
                 TOKENS["guard"], "OPENAI_API_KEY": KEY,
                 "OTEL_RESOURCE_ATTRIBUTES": "costline.org=acme,costline.team=discovery"}
        with FakeProviderServer() as provider:
            first = {outcome["call"]: outcome for outcome in run_app(processor, provider, APP, **guard)}
            assert first["chat"]["ok"], first
            poll(lambda: remaining(b.admin.url) <= 0, 30, lambda: str(remaining(b.admin.url)), interval=0.1)
            sent = len(provider.requests)
            second = run_app(processor, provider, APP, **guard)
            assert len(provider.requests) == sent  # refused before anything was sent
            for outcome in second:
                if outcome["call"] != "denied":  # o3-mini has no price: only priced calls are budget-checked
                    assert outcome["error"] == "costline._errors.BudgetExceeded", outcome
                    assert outcome["rule"] == RULE, outcome

            # The next ISO week (Monday 00:00 in the configured zone) on both processors' clock: allowed again.
            zone = ZoneInfo(ZONE)
            monday = period_ends(period_starts(now[0], zone), zone)["weekly"]
            assert monday.weekday() == 0 and (monday.hour, monday.minute) == (0, 0)
            now[0] = monday + timedelta(minutes=5)
            poll(lambda: remaining(b.admin.url) > 0, 30, lambda: str(remaining(b.admin.url)), interval=0.1)
            third = {outcome["call"]: outcome for outcome in run_app(processor, provider, APP, **guard)}
            assert third["chat"]["ok"], third
            assert len(provider.requests) > sent

        # The audit log (read on B: the ledger's) shows every step and who made it; the other team's admin none.
        status, audit = call(f"{b.admin.url}/api/v1/admin/audit", TOKENS["acme"])
        assert status == 200, audit
        steps = [(c["actor"].split(" ")[0], c["action"], c["object"]) for c in audit["changes"]]
        assert steps == [("acme-admin", "create", "team:discovery"), ("acme-admin", "create", "user:dana"),
                         ("acme-admin", "create", "token:dana-admin"), ("dana-admin", "create", "user:erin"),
                         ("dana-admin", "create", f"key:{FINGERPRINT}")], steps
        assert audit["changes"][-1]["after"]["budget"] == {"weekly_usd": "0.0001"}, audit["changes"][-1]
        assert call(f"{api}/api/v1/admin/audit", TOKENS["search"])[1]["changes"] == []
    finally:
        a.stop(1)
        b.stop(1)
    # A stopped processor reads its ledger no more (the database is dropped next).
    assert not [t for t in set(threading.enumerate()) - running if t.name == "costline-budgets"]
