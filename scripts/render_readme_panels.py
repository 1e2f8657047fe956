"""Renders two dashboard panels to PNG for the README from real data, where no Grafana server is at hand.

What runs is the demo's stack without Docker: the fake OpenAI/Anthropic provider, `costline serve` with
`demo/costline.yaml` (SQLite ledger), Prometheus (`/usr/bin/prometheus`) scraping it every 2 s with the mixin's
recording rules, and the three demo services of `demo/workload.py` under `opentelemetry-instrument` (research's
batch job joins `--stagger` seconds after search and support). Then the panels' own PromQL, taken from the
generated dashboard JSON with Grafana's variables substituted ("All" for org/team/project/model), is queried from
that Prometheus and drawn with matplotlib:

* `docs/img/spend-by-team.png`: Spend overview → "Spend by team (USD per hour)", over the run;
* `docs/img/budget-utilization.png`: Budget burn → "Spent vs limit", at the end of the run.

matplotlib is not a dependency of the project; install it into the venv for this one-off:

    .venv/bin/pip install matplotlib
    .venv/bin/python scripts/render_readme_panels.py [--duration 90] [--out docs/img]

The rules are built with a 2 s evaluation interval (the shipped ones use 1 m) so a short run has budget series;
the expressions are the shipped ones. Every process started here is stopped by its own pid at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from costline.testing.local import free_port, http_get, stop_process

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DASHBOARDS = REPO / "dashboards" / "generated" / "grafana" / "dashboards"
SCRAPE = "2s"
RATE_INTERVAL = "20s"  # what Grafana's $__rate_interval is for a 2 s scrape at this zoom: a few scrapes
SERVICES = {"search": "sk-demo-alice-laptop", "support": "sk-demo-support-bot", "research": "sk-demo-research-batch"}

# Grafana's dark theme, so the images sit beside screenshots of the real dashboards.
BACKGROUND, PANEL, TEXT, GRID = "#111217", "#181b1f", "#ccccdc", "#2c3235"
PALETTE = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2", "#b877d9"]
GREEN, ORANGE, RED = "#73bf69", "#ff9830", "#f2495c"


def wait(url: str, process: subprocess.Popen, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        try:
            http_get(url, timeout=10)
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"{what} not ready after {timeout:.0f}s")


def panel_expr(dashboard: str, title: str) -> str:
    """The panel's first target, with Grafana's variables substituted as Grafana would with "All" selected."""
    data = json.loads((DASHBOARDS / f"{dashboard}.json").read_text("utf-8"))
    (panel,) = [p for p in data["panels"] if p.get("title") == title]
    expr = panel["targets"][0]["expr"].replace("$__rate_interval", RATE_INTERVAL)
    for variable in ("org", "team", "project", "model"):
        expr = expr.replace(f"${variable}", ".*").replace(f"${{{variable}}}", ".*")
    assert "$" not in expr, expr
    return expr


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def api(self, path: str, **params: str) -> list[dict]:
        payload = json.loads(http_get(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}", timeout=10))
        assert payload["status"] == "success", payload
        return payload["data"]["result"]


def run_stack(workdir: Path, duration: float, stagger: float, processes: list) -> tuple[Prometheus, float, float]:
    """Starts everything (appended to `processes`, for `stop`), runs the workload, returns when it is done."""
    from costline.dashboards.build import write
    from costline.dashboards.config import DEFAULT_CONFIG
    from costline.testing.fake_provider import FakeProviderServer

    write(workdir / "mixin", DEFAULT_CONFIG.replace(rule_evaluation_interval=SCRAPE))
    provider = FakeProviderServer().start()
    processes.append(provider)
    http_port, otlp_port, prom_port = free_port(), free_port(), free_port()
    processes.append(subprocess.Popen(
        [str(BIN / "costline"), "serve", "--config", str(REPO / "demo" / "costline.yaml"),
         "--db", f"sqlite:///{workdir / 'costline.db'}", "--otlp-grpc", f"127.0.0.1:{otlp_port}",
         "--otlp-http", "off", "--http", f"127.0.0.1:{http_port}"],
        stdout=open(workdir / "processor.log", "w"), stderr=subprocess.STDOUT))  # noqa: SIM115
    wait(f"http://127.0.0.1:{http_port}/readyz", processes[-1], "costline serve")
    (workdir / "prometheus.yml").write_text(json.dumps({
        "global": {"scrape_interval": SCRAPE, "evaluation_interval": SCRAPE},
        "rule_files": [str(workdir / "mixin" / "prometheus" / "*.yaml")],
        "scrape_configs": [{"job_name": "costline", "static_configs": [{"targets": [f"127.0.0.1:{http_port}"]}]}],
    }), "utf-8")
    prometheus_binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    processes.append(subprocess.Popen(
        [prometheus_binary, f"--config.file={workdir / 'prometheus.yml'}",
         f"--storage.tsdb.path={workdir / 'prometheus-data'}", f"--web.listen-address=127.0.0.1:{prom_port}",
         "--log.level=warn"],
        stdout=open(workdir / "prometheus.log", "w"), stderr=subprocess.STDOUT))  # noqa: SIM115
    wait(f"http://127.0.0.1:{prom_port}/-/ready", processes[-1], "prometheus")

    env = {**os.environ, "OPENAI_BASE_URL": provider.openai_base_url, "ANTHROPIC_BASE_URL": provider.anthropic_base_url,
           "OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
           "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp_port}",
           "OTEL_BSP_SCHEDULE_DELAY": "500", "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai,openai_v2,anthropic"}
    start = time.time()
    workloads = []
    for service, key in SERVICES.items():
        if service == "research":
            time.sleep(stagger)
        length = duration - (stagger if service == "research" else 0)
        workloads.append(subprocess.Popen(
            [str(BIN / "opentelemetry-instrument"), sys.executable, str(REPO / "demo" / "workload.py"),
             "--service", service, "--duration", str(length), "--self-hosted-url", provider.openai_base_url],
            env={**env, "OPENAI_API_KEY": key, "ANTHROPIC_API_KEY": key, "OTEL_SERVICE_NAME": f"demo-{service}",
                 "OTEL_RESOURCE_ATTRIBUTES": f"costline.org=acme,costline.team={service},"
                                             "deployment.environment.name=demo"},
            stdout=subprocess.DEVNULL, stderr=open(workdir / f"{service}.log", "w")))  # noqa: SIM115
    processes.extend(workloads)
    for workload in workloads:
        if workload.wait() != 0:
            raise SystemExit(f"a demo service failed: see {workdir}")
    end = time.time()
    time.sleep(8)  # the exporters' last batches, two scrapes and two rule evaluations
    return Prometheus(f"http://127.0.0.1:{prom_port}"), start, end


def stop(processes: list) -> None:
    for process in processes:
        if isinstance(process, subprocess.Popen):
            stop_process(process)
        else:
            process.stop()


def style(ax, fig) -> None:
    fig.patch.set_facecolor(BACKGROUND)
    ax.set_facecolor(PANEL)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(colors=TEXT, labelsize=9)
    ax.grid(color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)


def plot_spend_by_team(prometheus: Prometheus, start: float, end: float, out: Path) -> None:
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    title = "Spend by team (USD per hour)"
    expr = panel_expr("costline-spend-overview", title)
    series = prometheus.api("query_range", query=expr, start=f"{start:.0f}", end=f"{end + 6:.0f}", step=SCRAPE)
    fig, ax = plt.subplots(figsize=(10, 3.8), dpi=110)
    style(ax, fig)
    for color, s in zip(PALETTE, sorted(series, key=lambda s: s["metric"].get("team", "")), strict=False):
        times = [datetime.fromtimestamp(float(t), tz=timezone.utc) for t, _ in s["values"]]
        values = [float(v) for _, v in s["values"]]
        ax.plot(times, values, color=color, linewidth=1.8, label=f"{s['metric']['org']}/{s['metric']['team']}")
        ax.fill_between(times, values, color=color, alpha=0.12)
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    ax.yaxis.set_major_formatter(lambda v, _: f"${v:,.0f}")
    ax.set_ylim(bottom=0)
    ax.set_title(title, color=TEXT, loc="left", fontsize=11)
    ax.legend(facecolor=PANEL, edgecolor=GRID, labelcolor=TEXT, fontsize=9, loc="upper left")
    fig.tight_layout()
    fig.savefig(out, facecolor=BACKGROUND)
    plt.close(fig)


def plot_budget_utilization(prometheus: Prometheus, at: float, out: Path) -> None:
    import matplotlib.pyplot as plt

    title = "Spent vs limit"
    expr = panel_expr("costline-budget-burn", title)
    rows = prometheus.api("query", query=expr, time=f"{at:.0f}")
    rows = [(f"{r['metric']['scope']} {r['metric']['owner']} ({r['metric']['period']})", float(r["value"][1]))
            for r in rows]
    rows.reverse()  # sort_desc from Prometheus; barh draws bottom-up
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(rows) + 1.0), dpi=110)
    style(ax, fig)
    colors = [RED if v >= 1.0 else ORANGE if v >= 0.8 else GREEN for _, v in rows]
    shown = [min(v, 1.5) for _, v in rows]  # a budget at 1000 % would flatten the others: cap the bar, print it
    ax.barh([name for name, _ in rows], shown, color=colors, height=0.65)
    for y, (_, value) in enumerate(rows):
        ax.text(min(value, 1.5) + 0.01, y, f"{value:.0%}", va="center", color=TEXT, fontsize=9)
    ax.axvline(0.8, color=ORANGE, linestyle="--", linewidth=1)
    ax.axvline(1.0, color=RED, linestyle="--", linewidth=1)
    ax.set_xlim(0, 1.7)
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    ax.grid(axis="y", visible=False)
    ax.set_title(f"{title} (budget utilization; bars capped at 150 %)", color=TEXT, loc="left", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, facecolor=BACKGROUND)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=90.0, help="seconds of demo traffic (default 90)")
    parser.add_argument("--stagger", type=float, default=30.0, help="research joins this many seconds in")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    args.out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="costline-panels-"))
    processes: list = []
    try:
        prometheus, start, end = run_stack(workdir, args.duration, args.stagger, processes)
        plot_spend_by_team(prometheus, start, end, args.out / "spend-by-team.png")
        plot_budget_utilization(prometheus, end + 6, args.out / "budget-utilization.png")
    finally:
        stop(processes)
    print(f"wrote {args.out / 'spend-by-team.png'} and {args.out / 'budget-utilization.png'} (logs in {workdir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
