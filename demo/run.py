"""`make demo`: the main job on embedded defaults — no Docker, no network.

1. starts a fake OpenAI/Anthropic provider on 127.0.0.1 (`costline.testing.fake_provider`);
2. starts `costline serve` with `demo/costline.yaml`, a SQLite ledger and the bundled genai-prices data;
3. runs three demo services (`demo/workload.py`: search, support, research) under `opentelemetry-instrument`,
   exporting OTLP/gRPC to the processor, while printing live spend;
4. prints the report: spend per team and model, budget burn with the most restrictive budget per key, unpriced
   models, and where to find `/metrics` and the CSV export;
5. governance: runs one small app (`demo/governance.py`) twice — unguarded, and with `COSTLINE_GUARD=block` — and
   shows the guard's refusals (nothing sent) and the processor's `costline_policy_violations_total`;
6. reconciliation: a cron job and a notebook call the provider directly (no instrumentation); `costline reconcile`
   reads the fake provider's usage report (OpenAI's admin Usage API) and shows drift and untracked spend.
7. delegated administration: the search team's admin (a `team-admin` token) adds a user and registers a key with
   budgets through the admin API, and is held to the team's budget; the guard refuses a model the org allows only
   on approval (`demo/frontier.py`), the team admin asks for it, the org admin approves it for a week, and the
   same app's call goes out; the audit log shows each step.
Exits 0 when everything worked. The API is read with the demo's `finance` token (demo/costline.yaml).

    .venv/bin/python demo/run.py [--duration 20] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from costline.testing.fake_provider import FakeProviderServer
from costline.testing.local import free_port, http_get

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
SERVICES = {
    # service: (team, API key, what it does)
    "search": ("search", "sk-demo-alice-laptop", "gpt-4o / gpt-4o-mini chat, streams, prompt-cache hits"),
    "support": ("support", "sk-demo-support-bot", "claude-haiku-4-5 message streams with cache reads/writes"),
    "research": ("research", "sk-demo-research-batch",
                 "o4-mini reasoning, a self-hosted model nobody priced, streams read without usage"),
}


FINANCE_TOKEN = "costline-demo-finance"
"""The demo's read-only API token (its hash is under `api.tokens` in demo/costline.yaml): every /api/v1 request
needs a token once tokens are configured."""
GUARD_TOKEN = "costline-demo-guard"
"""The demo's token for the guard's policy endpoint."""


def get_json(url: str):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {FINANCE_TOKEN}"})
    with urllib.request.urlopen(request, timeout=5.0) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def wait_ready(url: str, processor: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if processor.poll() is not None:
            raise SystemExit(f"costline serve exited with {processor.returncode} before it was ready")
        try:
            http_get(url)
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    raise SystemExit(f"costline serve not ready after {timeout:.0f}s ({url})")


def money(value: str | Decimal) -> str:
    """USD as the API gives it (an exact decimal string), rounded to four places for the report."""
    value = Decimal(value)
    return f"-${-value:,.4f}" if value < 0 else f"${value:,.4f}"


def spend_by(api: str, group_by: str) -> list[dict]:
    return get_json(f"{api}/api/v1/usage?group_by={group_by}&format=json")["rows"]


def print_progress(api: str, started: float) -> None:
    rows = spend_by(api, "team")
    parts = ", ".join(f"{r['team']} {money(r['cost_usd'])}" for r in sorted(rows, key=lambda r: r["team"]))
    unpriced = sum(r["unpriced_requests"] for r in rows)
    missing = sum(r["usage_missing_requests"] for r in rows)  # answered, but no usage reported: cost unknown
    refused = sum(r["errors"] for r in rows)  # refused by the guard, or failed: nothing billed
    priced = sum(r["requests"] for r in rows) - unpriced - missing - refused
    print(f"  t+{time.monotonic() - started:4.0f}s  {priced:5d} calls priced, {unpriced} unpriced, {missing} without "
          f"usage, {refused} refused or failed   {parts}", flush=True)


def settle(api: str, timeout: float = 15.0) -> None:
    """Wait until the ledger stops changing: the services' exporters flush as they exit."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        current = json.dumps(spend_by(api, "team"), sort_keys=True)
        if current == last:
            return
        last = current
        time.sleep(1.0)


def report(api: str, metrics_url: str, db_url: str, config: Path) -> None:
    line = "─" * 96
    print(f"\n{line}\nCostline demo report (from the ledger: exact, not Prometheus extrapolation)\n{line}")

    rows = spend_by(api, "team,model")
    # `calls` are the answered calls; an attempt the guard refused (or that failed) is counted apart, not as one.
    print(f"\nSpend per team and model\n  {'team':<12}{'model':<28}{'calls':>9}{'refused':>9}{'tokens in':>12}"
          f"{'tokens out':>12}{'cost':>14}")
    total = Decimal(0)
    for r in sorted(rows, key=lambda r: (r["team"], -Decimal(r["cost_usd"]))):
        total += Decimal(r["cost_usd"])
        answered = r["requests"] - r["errors"]
        # A cost nobody knows is never shown as $0: unpriced models, and calls whose spans reported no usage.
        cost = ("UNPRICED" if r.get("unpriced_requests") else "NO USAGE" if r["usage_missing_requests"] == answered
                else money(r["cost_usd"]) + (" + ?" if r["usage_missing_requests"] else ""))
        tokens_in = r["input_tokens"] + r["cache_read_tokens"] + r["cache_write_tokens"]
        print(f"  {r['team']:<12}{r['model']:<28}{r['requests'] - r['errors']:>9}{r['errors']:>9}{tokens_in:>12}"
              f"{r['output_tokens']:>12}{cost:>14}")
    print(f"  {'total':<40}{'':>9}{'':>9}{'':>12}{'':>12}{money(total):>14}")

    budgets = get_json(f"{api}/api/v1/budgets")
    print("\nBudget burn (each budget's current period; soft budgets only warn)")
    print(f"  {'scope':<12}{'owner':<34}{'period/mode':<16}{'spent':>14}{'limit':>14}{'used':>8}")
    for b in budgets["budgets"]:
        used = b["used_ratio"] or 0.0
        flag = "  OVER BUDGET" if used >= 1 else ("  ≥ 80 %" if used >= 0.8 else "")
        unit = b.get("unit", "usd")
        shown = money if unit == "usd" else (lambda n: f"{n:,} tok")
        period = f"{b['period']}/{b.get('mode', 'hard')}"
        print(f"  {b['scope']:<12}{b['owner']:<34}{period:<16}"
              f"{shown(b[f'spent_{unit}']):>14}{shown(b[f'limit_{unit}']):>14}{used:>7.0%}{flag}")
    # The API's `effective` rows: what the guard's policy answers for the same caller (one computation).
    print("\nMost restrictive budget per user and key (the minimum over every hard budget above it wins)")
    for e in sorted(budgets.get("effective", []), key=lambda e: (e["user"], e.get("project", ""), e["scope"] == "key",
                                                                 e.get("key", ""))):
        if e.get("remaining_usd") is None:
            continue
        who = f"key {e['key']}" if e["scope"] == "key" else f"user {e['user']}"
        if e.get("project"):
            who += f" in {e['project']}"
        print(f"  {who:<38} remaining {money(e['remaining_usd']):>12}  bound by {e['bound_by']}")

    unpriced = [r for r in rows if r.get("unpriced_requests")]
    print("\nUnpriced models (counted, never billed as $0 — add a price to the config and run `costline reprice`)")
    for r in unpriced or []:
        print(f"  {r['team']:<12}{r['model']:<28}{r['unpriced_requests']:>6} requests, "
              f"{r['input_tokens'] + r['output_tokens']} tokens waiting for a price")
    if not unpriced:
        print("  none")
    missing = [r for r in rows if r.get("usage_missing_requests")]
    print("\nCalls without usage (answered, but their spans reported no tokens: cost unknown, never billed as $0 — "
          "make the app report usage, docs/sources.md)")
    for r in missing:
        print(f"  {r['team']:<12}{r['model']:<28}{r['usage_missing_requests']:>6} requests without usage")
    if not missing:
        print("  none")

    print(f"\nWhere to look next\n  Prometheus metrics : {metrics_url}\n"
          f"  CSV export (API)   : {api}/api/v1/usage?group_by=team,project,model&format=csv\n"
          f"  CSV export (CLI)   : costline usage --db {db_url} --group-by team,model --format csv\n"
          f"  Budgets (JSON)     : {api}/api/v1/budgets\n  Config             : {config}\n{line}")


# --- daily exports: what a warehouse loads ------------------------------------------------------------------------
def report_export(db_url: str, config: Path, workdir: Path) -> None:
    """Today's usage and FOCUS partitions as Parquet (`costline export`, docs/exports.md)."""
    out = workdir / "export"
    run = subprocess.run([str(BIN / "costline"), "export", "--db", db_url, "--config", str(config), "--dir",
                          str(out), "--day", datetime.now(timezone.utc).date().isoformat()],
                         capture_output=True, text=True, timeout=120)
    print("\nDaily export (docs/exports.md; `costline export`, `serve --export-dir`): Parquet, money as DECIMAL(38,12)")
    for row in (run.stdout + run.stderr).strip().splitlines():
        print(f"  {row}")
    review = workdir / "review.html"
    run = subprocess.run([str(BIN / "costline"), "review", "--db", db_url, "--config", str(config), "--period", "1d",
                          "--out", str(review)], capture_output=True, text=True, timeout=120)
    print("\nCost review (docs/chargeback.md; `costline review`, `serve --review-every`): spend, trend, budget, "
          "anomalies, cheaper models")
    for row in (run.stdout + run.stderr).strip().splitlines():
        print(f"  {row}")


# --- chargeback: what each team is billed ------------------------------------------------------------------------
def get_text(url: str) -> str:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {FINANCE_TOKEN}"})
    with urllib.request.urlopen(request, timeout=10.0) as response:  # noqa: S310 - loopback
        return response.read().decode()


def report_chargeback(api: str, workdir: Path) -> None:
    """This month's statement from the API, as finance would bill it; the printable pages beside it."""
    line = "─" * 96
    print("\nChargeback this month (docs/chargeback.md; `costline chargeback`, GET /api/v1/chargeback)")
    for row in get_text(f"{api}/api/v1/chargeback?format=table").splitlines():
        print(f"  {row}" if row else "")
    html = workdir / "chargeback.html"
    html.write_text(get_text(f"{api}/api/v1/chargeback?format=html"), "utf-8")
    print(f"  one printable page per team: {html}")
    print(line)



# --- governance: the guard in the application, the violation counter in the processor --------------------------------
GOVERNED_KEYS = {"OPENAI_API_KEY": "sk-demo-research-batch", "ANTHROPIC_API_KEY": "sk-demo-support-bot"}
"""demo/governance.py calls o4-mini with the research team's key (its budget is blown by then) and a model the
support team may not use with the support team's key."""


def run_governance(api: str, base_env: dict[str, str], workdir: Path) -> dict:
    """demo/governance.py unguarded (against the demo's provider) and guarded (against a provider of its own, so
    what the guarded run sent is counted alone), at the same time. Returns what each call did."""
    env = {**base_env, **GOVERNED_KEYS, "OTEL_SERVICE_NAME": "demo-governance",
           "OTEL_RESOURCE_ATTRIBUTES": "costline.org=acme,deployment.environment.name=demo"}
    with FakeProviderServer() as guarded_provider:
        runs = {
            "unguarded": {**env, "COSTLINE_GUARD": "off"},
            # A loaded machine may take more than the default 2 s to answer the guard's first policy request.
            "guarded": {**env, "COSTLINE_GUARD": "block", "COSTLINE_GUARD_URL": api, "COSTLINE_GUARD_TOKEN": GUARD_TOKEN,
                        "COSTLINE_GUARD_TIMEOUT": "10", "OPENAI_BASE_URL": guarded_provider.openai_base_url,
                        "ANTHROPIC_BASE_URL": guarded_provider.anthropic_base_url},
        }
        processes = {
            name: subprocess.Popen(
                [str(BIN / "opentelemetry-instrument"), sys.executable, str(HERE / "governance.py")],
                env=run_env, stdout=subprocess.PIPE, stderr=open(workdir / f"governance-{name}.log", "w"),  # noqa: SIM115
                text=True)
            for name, run_env in runs.items()
        }
        outcomes = {}
        for name, process in processes.items():
            out, _ = process.communicate(timeout=120)
            if process.returncode != 0:
                raise SystemExit(f"demo/governance.py ({name}) failed: see {workdir / f'governance-{name}.log'}")
            outcomes[name] = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        sent_when_guarded = len(guarded_provider.requests)
    return {"outcomes": outcomes, "sent_when_guarded": sent_when_guarded}


def policy_violations(metrics_url: str) -> list[str]:
    text = http_get(metrics_url).decode()
    return [line for line in text.splitlines() if line.startswith("costline_policy_violations_total{")]


def wait_for_violations(metrics_url: str, timeout: float = 15.0) -> list[str]:
    """The unguarded run's spans reach the ledger after the app exits: poll until the counter shows them."""
    deadline = time.monotonic() + timeout
    while not (lines := policy_violations(metrics_url)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return lines


def report_governance(governance: dict, violations: list[str]) -> None:
    line = "─" * 96
    print(f"\nGovernance (docs/governance.md): one app, run unguarded and with COSTLINE_GUARD=block\n"
          f"  {'run':<11}{'call':<31}outcome")
    for run, calls in governance["outcomes"].items():
        for call in calls:
            what = "sent" if call.get("sent") else f"refused: {call['refused']} ({call['rule']})"
            print(f"  {run:<11}{call['provider'] + '/' + call['model']:<31}{what}")
    print(f"  the provider received {governance['sent_when_guarded']} requests from the guarded run")
    print("\nPolicy violations counted by the processor (every app, guarded or not; a guarded attempt counts too)")
    for violation in violations or ["  none"]:
        print(f"  {violation}")
    print(line)


# --- delegated administration and an approval: a team admin at work, a frontier model asked for and granted ----------
ORG_ADMIN_TOKEN = "costline-demo-org-admin"
"""The demo's org admin of acme (`org-admin:acme` in demo/costline.yaml): approves what a team asks for."""
TEAM_ADMIN_TOKEN = "costline-demo-search-admin"
"""The demo's team admin of acme/search (`team-admin:acme/search`): manages the team's users and keys."""
BOB_KEY = "sk-demo-bob-laptop"
"""The key the team admin registers (by fingerprint: the clear key never reaches the processor)."""


def admin_call(api: str, token: str, kind: str, body: dict, version: int | None = None) -> tuple[int, dict]:
    """One change through the admin API (`POST /api/v1/admin/<kind>`, what `costline admin` sends)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    if version is not None:
        headers["If-Match"] = f'"{version}"'  # the version read: a concurrent change is a 409, not lost
    request = urllib.request.Request(f"{api}/api/v1/admin/{kind}", json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def run_frontier(base_env: dict[str, str], api: str, provider: FakeProviderServer, workdir: Path, name: str) -> dict:
    """demo/frontier.py under the guard (block), with the key the team admin registered."""
    env = {**base_env, "OPENAI_API_KEY": BOB_KEY, "OPENAI_BASE_URL": provider.openai_base_url,
           "OTEL_SERVICE_NAME": "demo-frontier", "OTEL_RESOURCE_ATTRIBUTES": "costline.org=acme,costline.team=search",
           "COSTLINE_GUARD": "block", "COSTLINE_GUARD_URL": api, "COSTLINE_GUARD_TOKEN": GUARD_TOKEN,
           "COSTLINE_GUARD_TIMEOUT": "10"}
    with open(workdir / f"frontier-{name}.log", "w") as log:
        done = subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, str(HERE / "frontier.py")],
                              env=env, stdout=subprocess.PIPE, stderr=log, text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"demo/frontier.py failed: see {workdir / f'frontier-{name}.log'}")
    return next(json.loads(line) for line in done.stdout.splitlines() if line.startswith("{"))


def run_delegation(api: str, base_env: dict[str, str], workdir: Path) -> list[tuple[str, str]]:
    """The team admin adds a user and a key with budgets, and is held to the team's budget; the guard refuses a
    frontier model; the team admin asks for it, the org admin approves it for a week, and the guard lets it through.
    Returns (step, what happened) in order."""
    from costline.fingerprint import fingerprint

    steps: list[tuple[str, str]] = []

    def change(who: str, token: str, kind: str, body: dict, version: int | None = None) -> dict:
        status, answer = admin_call(api, token, kind, body, version)
        what = f"{status} " + (answer.get("error") or f"{answer.get('object')} version {answer.get('version')}")
        steps.append((f"{who}: {body['action']} {kind[:-1]} {body.get('name') or body.get('model')}", what))
        return answer

    change("team admin", TEAM_ADMIN_TOKEN, "users", {"action": "create", "name": "bob", "team": "search",
                                                     "budget": {"weekly_usd": 2}})
    change("team admin", TEAM_ADMIN_TOKEN, "keys", {"action": "create", "name": "bob-laptop", "user": "bob",
                                                    "fingerprint": fingerprint(BOB_KEY), "budget": {"daily_usd": 0.5}})
    # Within the level above: the team's budget is $20 a month, so a user cannot be given $50.
    change("team admin", TEAM_ADMIN_TOKEN, "users", {"action": "update", "name": "bob",
                                                     "budget": {"monthly_usd": 50}}, version=1)
    with FakeProviderServer() as provider:  # its own provider: the reconciliation above is about the main one
        before = run_frontier(base_env, api, provider, workdir, "before")
        steps.append(("guard: bob-laptop calls openai/o3-mini",
                      f"refused: {before['refused']} ({before['rule']})" if "refused" in before else "sent"))
        asked = {"scope": "acme/search", "provider": "openai", "model": "o3-mini"}
        change("team admin", TEAM_ADMIN_TOKEN, "approvals", {"action": "request", **asked,
                                                             "reason": "evaluate o3-mini for query rewriting"})
        expires = (datetime.now(timezone.utc) + timedelta(days=7)).replace(microsecond=0)
        change("org admin", ORG_ADMIN_TOKEN, "approvals", {"action": "approve", **asked,
                                                           "expires": expires.isoformat()}, version=1)
        after = run_frontier(base_env, api, provider, workdir, "after")
        steps.append(("guard: bob-laptop calls openai/o3-mini",
                      f"refused: {after['refused']} ({after['rule']})" if "refused" in after else
                      f"sent (until {expires:%Y-%m-%d %H:%M} UTC); the provider received {len(provider.requests)}"))
    request = urllib.request.Request(f"{api}/api/v1/admin/audit", headers={"Authorization": f"Bearer {FINANCE_TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        audit = json.loads(response.read())["changes"]
    steps.extend(("audit", f"{c['actor'].split(' ')[0]:<18} {c['action']:<8} {c['object']}") for c in audit)
    return steps


def report_delegation(steps: list[tuple[str, str]]) -> None:
    line = "─" * 96
    print("\nDelegated administration and an approval (docs/governance.md; the admin API, what `costline admin` "
          "calls)")
    for step, what in steps:
        print(f"  {step:<50}{what}" if step != "audit" else f"  audit log  {what}")
    print(line)


# --- reconciliation: the provider's own usage report against the ledger ----------------------------------------------
DIRECT_CALLS = (
    # (API key, model, calls): traffic no span sees
    ("sk-demo-search-cron", "gpt-4o-mini", 3),  # the search team's nightly job, with curl (mapped to team search)
    ("sk-demo-notebook", "gpt-4o", 2),  # someone's notebook (its key is mapped to nobody)
)
ADMIN_KEY_ENV = "DEMO_OPENAI_ADMIN_KEY"


def call_directly(provider: FakeProviderServer) -> None:
    """Plain HTTP calls, as curl would make them: no SDK, no instrumentation, no span."""
    for key, model, count in DIRECT_CALLS:
        for _ in range(count):
            request = urllib.request.Request(
                f"{provider.openai_base_url}/chat/completions", method="POST",
                data=json.dumps({"model": model, "messages": [{"role": "user", "content": "nightly digest"}]}).encode(),
                headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                         "x-fake-usage": json.dumps({"input": 20000, "output": 2000})})
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
                response.read()


def run_reconcile(provider: FakeProviderServer, db_url: str, config: Path) -> str:
    """`costline reconcile` against the fake provider's admin Usage API, for today (UTC); its table."""
    today = datetime.now(timezone.utc).date()
    result = subprocess.run(
        [str(BIN / "costline"), "reconcile", "--provider", "openai", "--from", str(today),
         "--to", str(today), "--api-base", provider.url, "--admin-key-env", ADMIN_KEY_ENV,
         "--no-costs", "--config", str(config), "--db", db_url],
        env={**os.environ, ADMIN_KEY_ENV: "sk-admin-demo"}, capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise SystemExit(f"costline reconcile failed:\n{result.stderr}")
    return result.stdout


def report_reconciliation(table: str) -> None:
    line = "─" * 96
    print("\nReconciliation (docs/reconciliation.md): the provider's usage report against the ledger\n"
          "  instrumented keys: ~0 drift, but research's streams without usage: drift (billed by the provider, "
          "unknown to the spans);\n  the cron job's calls: untracked spend of team search; the notebook's: untracked; "
          "the self-hosted model's calls\n  (key `none`, not the provider's) have no provider side")
    for row in table.rstrip().splitlines():
        print(f"  {row}")
    print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the Costline demo.")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of demo traffic (default 20)")
    parser.add_argument("--keep", action="store_true", help="keep the processor running after the report")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="costline-demo-"))
    db_url = f"sqlite:///{workdir / 'costline.db'}"
    config = HERE / "costline.yaml"
    http_port, otlp_http_port, otlp_grpc_port = free_port(), free_port(), free_port()
    api = f"http://127.0.0.1:{http_port}"
    processes: list[subprocess.Popen] = []

    # The self-hosted model is served apart: it is not the provider's, and not on its usage report.
    with FakeProviderServer() as provider, FakeProviderServer() as self_hosted:
        print(f"fake provider       {provider.url}")
        processor = subprocess.Popen(
            [str(BIN / "costline"), "serve", "--config", str(config), "--db", db_url,
             "--otlp-http", f"127.0.0.1:{otlp_http_port}", "--otlp-grpc", f"127.0.0.1:{otlp_grpc_port}",
             "--http", f"127.0.0.1:{http_port}"],
            stdout=open(workdir / "processor.log", "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
        )
        processes.append(processor)
        try:
            wait_ready(f"{api}/readyz", processor)
            print(f"costline processor  {api}  (OTLP gRPC :{otlp_grpc_port}, HTTP :{otlp_http_port}; "
                  f"ledger {db_url})")
            base_env = {
                **os.environ,
                "OPENAI_BASE_URL": provider.openai_base_url,
                "ANTHROPIC_BASE_URL": provider.anthropic_base_url,
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_METRICS_EXPORTER": "none",
                "OTEL_LOGS_EXPORTER": "none",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_grpc_port}",
                "OTEL_BSP_SCHEDULE_DELAY": "500",
                # Peer instrumentations installed in the dev venv also register `openai`: only Costline here.
                "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai,openai_v2,anthropic",
            }
            print(f"\n{len(SERVICES)} demo services under opentelemetry-instrument for {args.duration:.0f}s:")
            started = time.monotonic()
            for service, (team, key, what) in SERVICES.items():
                print(f"  {service:<9} team={team:<9} {what}")
                env = {
                    **base_env,
                    "OPENAI_API_KEY": key,
                    "ANTHROPIC_API_KEY": key,
                    "OTEL_SERVICE_NAME": f"demo-{service}",
                    "OTEL_RESOURCE_ATTRIBUTES": f"costline.org=acme,costline.team={team},"
                                                f"deployment.environment.name=demo",
                    # research's streams reach the provider as the app wrote them, without asking for usage.
                    **({"COSTLINE_OPENAI_STREAM_USAGE": "false"} if service == "research" else {}),
                }
                processes.append(subprocess.Popen(
                    [str(BIN / "opentelemetry-instrument"), sys.executable, str(HERE / "workload.py"),
                     "--service", service, "--duration", str(args.duration),
                     "--self-hosted-url", self_hosted.openai_base_url],
                    env=env, stdout=subprocess.DEVNULL, stderr=open(workdir / f"{service}.log", "w"),  # noqa: SIM115
                ))
            print("\nlive spend (from the processor's ledger):")
            services = processes[1:]
            while any(p.poll() is None for p in services):
                time.sleep(2.0)
                print_progress(api, started)
            failed = [p for p in services if p.returncode != 0]
            if failed:
                raise SystemExit(f"{len(failed)} demo service(s) failed: see the logs in {workdir}")
            print("\ngovernance: demo/governance.py unguarded and with COSTLINE_GUARD=block; direct calls to the "
                  "provider", flush=True)
            governance = run_governance(api, base_env, workdir)
            call_directly(provider)
            violations = wait_for_violations(f"{api}/metrics")
            settle(api)
            report(api, f"{api}/metrics", db_url, config)
            report_chargeback(api, workdir)
            report_governance(governance, violations)
            report_reconciliation(run_reconcile(provider, db_url, config))
            report_export(db_url, config, workdir)
            report_delegation(run_delegation(api, base_env, workdir))
            if args.keep:
                print("\n--keep: processor still running; Ctrl-C to stop")
                processor.wait()
        finally:
            for p in processes:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in processes:
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
