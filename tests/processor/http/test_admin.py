"""Delegated administration end to end on PostgreSQL, with two real `costline serve` processes sharing the ledger:
an org admin creates a team and its admin; that team admin creates a user and registers a key; another team's
admin gets 403 on all of it; bad input is a 4xx naming the problem with nothing stored; the other processor sees
every change without a restart; the audit log shows every step; `costline admin export` round-trips through
`check-config` to a fresh processor that resolves the same owners."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

from costline.processor.http.auth import hash_token
from tests.polling import poll
from tests.processor.served import serve, stop

TOKENS = {"root": "tok-root", "acme": "tok-acme-admin", "search": "tok-search-admin", "fin": "tok-fin",
          "legacy": "tok-legacy-team", "guard": "tok-guard"}
SEARCH_KEY = "0123456789abcdef"
ERIN_KEY = "fedcba9876543210"
CLEAR_KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789"

CONFIG = f"""\
timezone: UTC
orgs:
  - name: acme
    budget: {{monthly_usd: 3000}}
    models: {{openai: {{deny: ["o3*"]}}}}
    teams:
      - name: search
        budget: {{monthly_usd: 1000}}
        users:
          - name: sam
            keys: [{{name: sam-ci, fingerprint: "{SEARCH_KEY}"}}]
api:
  tokens:
    - {{name: root, sha256: "{hash_token(TOKENS['root'])}", role: admin}}
    - {{name: acme-admin, sha256: "{hash_token(TOKENS['acme'])}", role: "org-admin:acme"}}
    - {{name: search-admin, sha256: "{hash_token(TOKENS['search'])}", role: "team-admin:acme/search", user: sam}}
    - {{name: fin, sha256: "{hash_token(TOKENS['fin'])}", role: finance}}
    - {{name: legacy, sha256: "{hash_token(TOKENS['legacy'])}", role: "team:acme/search"}}
    - {{name: app, sha256: "{hash_token(TOKENS['guard'])}", role: guard}}
"""


def call(url: str, token: str | None, method: str = "GET", body: dict | None = None,
         version: int | None = None) -> tuple[int, dict | str, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if version is not None:
        headers["If-Match"] = f'"{version}"'
    data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
    request = urllib.request.Request(url, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            status, raw, got = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as err:
        status, raw, got = err.code, err.read(), dict(err.headers)
    try:
        return status, json.loads(raw), got
    except ValueError:
        return status, raw.decode(), got


def post(api: str, token: str, kind: str, body: dict, version: int | None = None) -> tuple[int, dict | str]:
    status, answer, _ = call(f"{api}/api/v1/admin/{kind}", token, "POST", body, version)
    return status, answer


def owner_of(api: str, fingerprint: str) -> dict:
    return call(f"{api}/api/v1/policy?key={fingerprint}", TOKENS["guard"])[1]["owner"]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_delegated_administration_end_to_end(db_url, tmp_path, serving):
    (tmp_path / "costline.yaml").write_text(CONFIG)
    a = serve(tmp_path, db_url)
    serving.append(a)
    b = serve(tmp_path, db_url)  # a second processor on the same ledger and baseline
    serving.append(b)
    api = a.api_url
    dana_token, erin_token = "tok-dana-team-admin", "tok-erin-member"

    # The org admin creates a team, its admin (a user) and the admin's token.
    assert post(api, TOKENS["acme"], "teams", {"action": "create", "name": "discovery", "org": "acme",
                                                "budget": {"monthly_usd": 500}})[0] == 201
    assert post(api, TOKENS["acme"], "users", {"action": "create", "name": "dana", "team": "discovery"})[0] == 201
    assert post(api, TOKENS["acme"], "tokens", {"action": "create", "name": "dana-admin", "role":
                                                 "team-admin:acme/discovery", "user": "dana",
                                                 "sha256": hash_token(dana_token)})[0] == 201
    # That team admin creates a user, registers a key for them by fingerprint and gives them a token.
    assert post(api, dana_token, "users", {"action": "create", "name": "erin", "team": "discovery",
                                           "budget": {"monthly_usd": 100}})[0] == 201
    status, created = post(api, dana_token, "keys", {"action": "create", "name": "erin-laptop", "user": "erin",
                                                     "fingerprint": ERIN_KEY, "budget": {"monthly_usd": 20}})
    assert status == 201, created
    assert post(api, dana_token, "tokens", {"action": "create", "name": "erin", "role": "member:acme/discovery/erin",
                                            "sha256": hash_token(erin_token)})[0] == 201

    # Both processors resolve the key to its owner: B without a restart (its refresher reads the ledger).
    expected = {"org": "acme", "team": "discovery", "user": "erin", "key": "erin-laptop", "project": ""}
    assert owner_of(api, ERIN_KEY) == expected
    poll(lambda: owner_of(b.api_url, ERIN_KEY) == expected, 15, "processor B never saw the new key")

    # Another team's admin: 403 naming the scope on every part of it, and nothing stored.
    for kind, body in [("users", {"action": "create", "name": "mallory", "team": "discovery"}),
                       ("keys", {"action": "create", "name": "m", "user": "erin", "fingerprint": "aaaaaaaaaaaaaaaa"}),
                       ("users", {"action": "update", "name": "erin", "budget": {"monthly_usd": 1}}),
                       ("users", {"action": "retire", "name": "erin"}),
                       ("teams", {"action": "update", "name": "discovery", "budget": {"monthly_usd": 1}}),
                       ("tokens", {"action": "create", "name": "x", "role": "member:acme/discovery/erin",
                                   "sha256": hash_token("x")})]:
        status, answer = post(api, TOKENS["search"], kind, body, version=1)
        assert status == 403, (kind, body, answer)
        assert "acme/discovery" in answer["error"] and "scope" in answer["error"], answer
    status, answer, _ = call(f"{api}/api/v1/usage?team=discovery", TOKENS["search"])
    assert status == 403 and "scope team discovery" in answer["error"]
    status, state, _ = call(f"{api}/api/v1/admin/state", TOKENS["search"])
    assert status == 200 and not [o for o in state["objects"] if "discovery" in o["path"]]

    # Bounds of the level above, each a 422 naming the rule.
    status, answer = post(api, dana_token, "users", {"action": "update", "name": "erin",
                                                     "budget": {"monthly_usd": 600}}, version=1)
    assert status == 422 and "team acme/discovery" in answer["error"] and "500" in answer["error"], answer
    status, answer = post(api, dana_token, "users", {"action": "update", "name": "erin",
                                                     "models": {"openai": {"allow": ["o3-mini"]}}}, version=1)
    assert status == 422 and "org acme openai deny o3*" in answer["error"], answer
    # Bad input: unknown owner, unknown role, an expiry in the past, a clear key (refused and never logged).
    status, answer = post(api, dana_token, "users", {"action": "create", "name": "zed", "team": "nowhere"})
    assert status == 404 and "nowhere" in answer["error"]
    status, answer = post(api, dana_token, "tokens", {"action": "create", "name": "t", "role": "overlord",
                                                      "sha256": hash_token("t")})
    assert status == 422 and "overlord" in answer["error"]
    status, answer = post(api, dana_token, "tokens", {"action": "create", "name": "t", "role":
                                                      "member:acme/discovery/erin", "sha256": hash_token("t"),
                                                      "expires": "2020-01-01T00:00:00Z"})
    assert status == 422 and "in the past" in answer["error"]
    status, answer = post(api, dana_token, "keys", {"action": "create", "name": "leak", "user": "erin",
                                                    "fingerprint": CLEAR_KEY})
    assert status == 422 and "fingerprint only" in answer["error"] and CLEAR_KEY not in json.dumps(answer)
    # A change without the version read is refused; two changes from the same version: one wins, one is a 409.
    assert post(api, dana_token, "users", {"action": "update", "name": "erin", "budget": {"monthly_usd": 50}}
                )[0] == 428
    results: list[int] = []
    threads = [threading.Thread(target=lambda amount=amount: results.append(post(
        (a if amount == 40 else b).api_url, dana_token, "users",
        {"action": "update", "name": "erin", "budget": {"monthly_usd": amount}}, version=1)[0]))
        for amount in (40, 45)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200, 409], results
    status, answer = post(api, dana_token, "users", {"action": "update", "name": "erin",
                                                     "budget": {"monthly_usd": 30}}, version=1)
    assert status == 409 and "version 2" in answer["error"]

    # The member reads their own objects only; the legacy team token and finance change nothing.
    status, state, _ = call(f"{api}/api/v1/admin/state", erin_token)
    assert status == 200 and {o["object"] for o in state["objects"]} == {"user:erin", f"key:{ERIN_KEY}",
                                                                          "token:erin"}
    assert post(api, TOKENS["legacy"], "users", {"action": "create", "name": "q", "team": "search"})[0] == 403
    assert post(api, TOKENS["fin"], "users", {"action": "create", "name": "q", "team": "search"})[0] == 403

    # The audit log shows every step, who made it, before and after; the other team's admin sees none of it.
    _, audit, _ = call(f"{api}/api/v1/admin/audit", TOKENS["fin"])
    steps = [(c["actor"].split(" ")[0], c["action"], c["object"]) for c in audit["changes"]]
    assert steps == [("acme-admin", "create", "team:discovery"), ("acme-admin", "create", "user:dana"),
                     ("acme-admin", "create", "token:dana-admin"), ("dana-admin", "create", "user:erin"),
                     ("dana-admin", "create", f"key:{ERIN_KEY}"), ("dana-admin", "create", "token:erin"),
                     ("dana-admin", "update", "user:erin")]
    last = audit["changes"][-1]
    assert last["before"]["budget"] == {"monthly_usd": "100"} and last["after"]["budget"]["monthly_usd"] in ("40",
                                                                                                             "45")
    _, theirs, _ = call(f"{api}/api/v1/admin/audit", TOKENS["search"])
    assert theirs["changes"] == []
    assert CLEAR_KEY not in a.log.read_text() + b.log.read_text()

    # Export (the CLI over the API) -> check-config ok -> a fresh processor resolves the same owners.
    exported = tmp_path / "fresh" / "costline.yaml"
    exported.parent.mkdir()
    env = {**os.environ, "COSTLINE_TOKEN": TOKENS["root"]}
    done = subprocess.run([sys.executable, "-m", "costline.cli", "admin", "--url", api, "export", "-o",
                           str(exported)], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    checked = subprocess.run([sys.executable, "-m", "costline.cli", "check-config", str(exported)],
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    fresh = serve(exported.parent, f"sqlite:///{tmp_path / 'fresh.db'}")
    serving.append(fresh)
    for fingerprint in (ERIN_KEY, SEARCH_KEY):
        assert owner_of(fresh.api_url, fingerprint) == owner_of(api, fingerprint)

    # Retiring a user (its keys first) refuses the tokens that belong to it, naming the user.
    status, answer = post(api, dana_token, "users", {"action": "retire", "name": "erin"}, version=2)
    assert status == 422 and "erin-laptop" in answer["error"]  # its key first: nothing half-applied
    assert post(api, dana_token, "keys", {"action": "retire", "name": ERIN_KEY}, version=1)[0] == 200
    assert post(api, dana_token, "users", {"action": "retire", "name": "erin"}, version=2)[0] == 200
    status, answer, _ = call(f"{b.api_url}/api/v1/admin/state", erin_token)
    poll(lambda: call(f"{b.api_url}/api/v1/usage", erin_token)[0] == 403, 15, "B still takes erin's token")
    status, answer, _ = call(f"{api}/api/v1/usage", erin_token)
    assert status == 403 and "user acme/discovery/erin is retired" in answer["error"]
    for served in (a, b, fresh):
        assert stop(served) == 0, served.log.read_text()


def test_cli_admin_creates_a_token_shown_once(tmp_path, serving):
    """`costline admin create token` makes the token locally, sends only its hash, prints the token once."""
    (tmp_path / "costline.yaml").write_text(CONFIG)
    a = serve(tmp_path, f"sqlite:///{tmp_path / 'l.db'}")
    serving.append(a)
    env = {**os.environ, "COSTLINE_TOKEN": TOKENS["acme"]}
    done = subprocess.run([sys.executable, "-m", "costline.cli", "admin", "--url", a.api_url, "create", "token",
                           "search-bot", "--role", "member:acme/search/sam"], env=env, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    token = done.stderr.rsplit(": ", 1)[1].strip()
    assert token not in done.stdout and token not in a.log.read_text()
    status, _, _ = call(f"{a.api_url}/api/v1/admin/state", token)
    assert status == 200
    refused = subprocess.run([sys.executable, "-m", "costline.cli", "admin", "--url", a.api_url, "update", "team",
                              "search", "--budget", '{"monthly_usd": 5000}'], env=env, capture_output=True,
                             text=True, timeout=30)
    assert refused.returncode == 1 and "org acme" in refused.stderr and "3000" in refused.stderr, refused.stderr
    assert stop(a) == 0, a.log.read_text()


ROLES = {"system-admin": "root", "org-admin": "acme", "team-admin": "search", "finance": "fin", "team": "legacy",
         "guard": "guard"}
ALLOWED = {
    ("GET", "/api/v1/budgets"): {"system-admin", "org-admin", "team-admin", "finance", "team"},
    ("GET", "/api/v1/usage"): {"system-admin", "org-admin", "team-admin", "finance", "team"},
    ("GET", "/api/v1/runs"): {"system-admin", "org-admin", "team-admin", "finance", "team"},
    ("GET", "/api/v1/runs/<kind>/<id>"): {"system-admin", "org-admin", "team-admin", "finance", "team"},
    ("GET", "/api/v1/chargeback"): {"system-admin", "org-admin", "team-admin", "finance", "team"},
    ("GET", "/api/v1/customers"): {"system-admin", "finance"},
    ("GET", "/api/v1/cost-changes"): {"system-admin", "finance"},
    ("POST", "/api/v1/reload"): {"system-admin"},
    ("GET", "/api/v1/policy"): {"system-admin", "guard"},
    ("GET", "/api/v1/admin/state"): {"system-admin", "org-admin", "team-admin", "finance", "team"},
    ("GET", "/api/v1/admin/audit"): {"system-admin", "org-admin", "team-admin", "finance", "team"},
    ("GET", "/api/v1/admin/export"): {"system-admin"},
    **{("POST", f"/api/v1/admin/{kind}"): {"system-admin", "org-admin", "team-admin"}
       for kind in ("orgs", "teams", "projects", "users", "keys", "tokens", "approvals")},
}
"""Which roles may use which route (docs/governance.md's table), written out here rather than read from `auth`."""


def test_every_route_declares_its_roles():
    from costline.processor.http import auth

    assert {route for route, permission in auth.ROUTES.items() if permission not in (auth.OPEN, auth.METRICS)} == set(
        ALLOWED)
    for route, roles in ALLOWED.items():
        assert {r for r in ROLES if r in auth.PERMISSIONS[auth.ROUTES[route]]} == roles, route


@pytest.fixture(scope="module")
def one(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("routes")
    (workdir / "costline.yaml").write_text(CONFIG)
    served = serve(workdir, f"sqlite:///{workdir / 'l.db'}")
    yield served
    assert stop(served) == 0, served.log.read_text()


@pytest.mark.parametrize("route", sorted(ALLOWED))
def test_route_by_route(one, route):
    """Each role on each route: the allowed ones get past the role check, the others a 403 naming the role."""
    method, path = route
    query = "?team=search" if path.endswith("chargeback") else ""
    for role, token in ROLES.items():
        body = {} if method == "POST" and "/admin/" in path else None
        status, answer, _ = call(f"{one.api_url}{path}{query}", TOKENS[token], method, body)
        if role in ALLOWED[route]:
            assert status != 403 or "scope" in answer["error"], (role, route, answer)
        else:
            assert status == 403 and f"role {role}" in answer["error"].replace("role admin", "role system-admin"), (
                role, route, answer)


APPROVAL_CONFIG = CONFIG.replace('models: {openai: {deny: ["o3*"]}}',
                                 'models: {openai: {deny: ["o1*"], on_approval: ["o3*"]}}')


def _counter(api: str, family: str, **labels: str) -> float:
    text = call(f"{api}/metrics", None)[1]
    total = 0.0
    for line in text.splitlines():
        if line.startswith(family + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _send(served, model: str) -> None:
    import time

    from tests.processor.otlp import llm_span, request_of

    spans = [llm_span(model=model, team="search", start_ns=time.time_ns())]
    request = urllib.request.Request(served.otlp_url, request_of(spans).SerializeToString(),
                                     {"Content-Type": "application/x-protobuf"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        assert response.status == 200


def _guard_denies(api: str) -> list[str]:
    document = call(f"{api}/api/v1/policy?team=search", TOKENS["guard"])[1]
    return [p for rule in document["models"] for p in rule["deny"]]


def test_a_frontier_model_on_approval(tmp_path, serving):
    """Refused, requested, approved with an expiry, allowed (the guard's document and the processor's count), and
    refused again after the expiry; requests, decisions and the expiry in the audit log and as metrics."""
    from datetime import datetime, timedelta, timezone

    (tmp_path / "costline.yaml").write_text(APPROVAL_CONFIG)
    a = serve(tmp_path, f"sqlite:///{tmp_path / 'l.db'}")
    serving.append(a)
    api = a.api_url
    rule = "org acme openai on approval o3*"
    assert "o3*" in _guard_denies(api)
    # Which denied patterns wait for an approval: the guard names its refusal `rule`, as the violation is named.
    document = call(f"{api}/api/v1/policy?team=search", TOKENS["guard"])[1]
    assert [r.get("on_approval") for r in document["models"]] == [["o3*"]], document["models"]
    _send(a, "o3-pro")
    poll(lambda: _counter(api, "costline_policy_violations_total", rule=rule) == 1, 10, "no violation counted")

    request = {"action": "request", "scope": "acme/search", "provider": "openai", "model": "o3-pro"}
    status, answer = post(api, TOKENS["search"], "approvals", {**request, "model": "gpt-5-pro", "reason": "x"})
    assert status == 422 and "no rule allows openai/gpt-5-pro on approval" in answer["error"]
    assert post(api, TOKENS["search"], "approvals", request)[0] == 422  # no reason
    status, answer = post(api, TOKENS["search"], "approvals", {**request, "reason": "eval of long reasoning"})
    assert status == 201 and answer["object"] == "approval:acme/search|openai|o3*", answer
    assert _counter(api, "costline_approval_requests_pending", approver="org-admin:acme", team="search") == 1
    decide = {**request, "action": "approve"}
    status, answer = post(api, TOKENS["search"], "approvals", {**decide, "expires": "2999-01-01T00:00:00Z"}, 1)
    assert status == 403 and "org-admin:acme" in answer["error"]  # not the team admin: one level up
    status, answer = post(api, TOKENS["acme"], "approvals", {**decide, "expires": "2020-01-01T00:00:00Z"}, 1)
    assert status == 422 and "in the past" in answer["error"]
    expires = datetime.now(timezone.utc) + timedelta(seconds=4)
    status, answer = post(api, TOKENS["acme"], "approvals", {**decide, "expires": expires.isoformat()}, 1)
    assert status == 200 and answer["state"]["status"] == "approved", answer
    assert "o3*" not in _guard_denies(api) and "o1*" in _guard_denies(api)
    assert "on_approval" not in call(f"{api}/api/v1/policy?team=search", TOKENS["guard"])[1]["models"][0]
    assert _counter(api, "costline_approval_requests_pending") == 0
    _send(a, "o3-pro")
    poll(lambda: _counter(api, "costline_policy_approved_calls_total", rule=rule) == 1, 10, "not counted approved")
    assert _counter(api, "costline_policy_violations_total", rule=rule) == 1

    # Expired: the guard's document denies it again, the processor records the expiry once, and calls are violations.
    poll(lambda: "o3*" in _guard_denies(api), 15, "the approval never expired")
    _send(a, "o3-pro")
    poll(lambda: _counter(api, "costline_policy_violations_total", rule=rule) == 2, 10, "not refused again")
    _, audit, _ = call(f"{api}/api/v1/admin/audit?object=approval:acme/search|openai|o3*", TOKENS["fin"])
    poll(lambda: [c["action"] for c in call(f"{api}/api/v1/admin/audit", TOKENS["fin"])[1]["changes"]] == [
        "request", "approve", "expire"], 10, "the expiry is not in the audit log")
    assert _counter(api, "costline_approval_changes_total", action="expire") == 1
    assert stop(a) == 0, a.log.read_text()
