"""`make demo`: the main job on embedded defaults — no Docker, no network.

1. starts a fake OpenAI/Anthropic provider on 127.0.0.1 (`costline.testing.fake_provider`);
2. starts `costline serve` with `demo/costline.yaml`, a SQLite ledger and the bundled genai-prices data;
3. runs three demo services (`demo/workload.py`: search, support, research) under `opentelemetry-instrument`,
   exporting OTLP/gRPC to the processor, while printing live spend;
4. prints the report: spend per team and model, budget burn with the most restrictive budget per key, unpriced
   models, and where to find `/metrics` and the CSV export. Exits 0 when everything worked.

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
    "research": ("research", "sk-demo-research-batch", "o4-mini reasoning + a self-hosted model nobody priced"),
}


def get_json(url: str):
    return json.loads(http_get(url))


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
    requests = sum(r["requests"] for r in rows)
    print(f"  t+{time.monotonic() - started:4.0f}s  {requests:5d} calls priced   {parts}", flush=True)


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
    print(f"\nSpend per team and model\n  {'team':<12}{'model':<28}{'requests':>9}{'tokens in':>12}"
          f"{'tokens out':>12}{'cost':>14}")
    total = Decimal(0)
    for r in sorted(rows, key=lambda r: (r["team"], -Decimal(r["cost_usd"]))):
        total += Decimal(r["cost_usd"])
        cost = money(r["cost_usd"]) if not r.get("unpriced_requests") else "UNPRICED"
        tokens_in = r["input_tokens"] + r["cache_read_tokens"] + r["cache_write_tokens"]
        print(f"  {r['team']:<12}{r['model']:<28}{r['requests']:>9}{tokens_in:>12}{r['output_tokens']:>12}{cost:>14}")
    print(f"  {'total':<40}{'':>9}{'':>12}{'':>12}{money(total):>14}")

    budgets = get_json(f"{api}/api/v1/budgets")
    print("\nBudget burn (month to date; daily where set)")
    print(f"  {'scope':<9}{'owner':<34}{'period':<9}{'spent':>12}{'limit':>12}{'used':>8}")
    for b in budgets["budgets"]:
        used = b["used_ratio"] or 0.0
        flag = "  OVER BUDGET" if used >= 1 else ("  ≥ 80 %" if used >= 0.8 else "")
        print(f"  {b['scope']:<9}{b['owner']:<34}{b['period']:<9}{money(b['spent_usd']):>12}"
              f"{money(b['limit_usd']):>12}{used:>7.0%}{flag}")
    print("\nMost restrictive budget per user and key (the minimum over every budget above it wins)")
    for e in sorted(budgets.get("effective", []), key=lambda e: (e["user"], e["scope"] == "key", e.get("key", ""))):
        who = f"key {e['key']}" if e["scope"] == "key" else f"user {e['user']}"
        print(f"  {who:<26} remaining {money(e['remaining_usd']):>12}  bound by {e['bound_by']}")

    unpriced = [r for r in rows if r.get("unpriced_requests")]
    print("\nUnpriced models (counted, never billed as $0 — add a price to the config and run `costline reprice`)")
    for r in unpriced or []:
        print(f"  {r['team']:<12}{r['model']:<28}{r['unpriced_requests']:>6} requests, "
              f"{r['input_tokens'] + r['output_tokens']} tokens waiting for a price")
    if not unpriced:
        print("  none")

    print(f"\nWhere to look next\n  Prometheus metrics : {metrics_url}\n"
          f"  CSV export (API)   : {api}/api/v1/usage?group_by=team,project,model&format=csv\n"
          f"  CSV export (CLI)   : costline usage --db {db_url} --group-by team,model --format csv\n"
          f"  Budgets (JSON)     : {api}/api/v1/budgets\n  Config             : {config}\n{line}")


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

    with FakeProviderServer() as provider:
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
                }
                processes.append(subprocess.Popen(
                    [str(BIN / "opentelemetry-instrument"), sys.executable, str(HERE / "workload.py"),
                     "--service", service, "--duration", str(args.duration),
                     "--self-hosted-url", provider.openai_base_url],
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
            settle(api)
            report(api, f"{api}/metrics", db_url, config)
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
