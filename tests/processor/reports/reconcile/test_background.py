"""`costline serve --reconcile-every`: a real processor reconciles the configured provider in the background, right
away and then every interval, and exposes the stored result as gauges per provider and owner; the admin key comes
from the environment and shows up in no log line."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from costline.processor.config.settings import SettingsError, resolve
from tests.polling import poll
from tests.processor.reports.reconcile.admin_server import OPENAI_KEY, AdminReportServer, Served
from tests.processor.served import serve, stop

CONFIG = """\
timezone: UTC
orgs:
  - name: acme
    teams:
      - name: billing
reconcile:
  lookback_days: 3
  providers:
    openai: {{admin_key_env: TEST_OPENAI_ADMIN_KEY, api_base: "{api_base}"}}
  identities:
    - {{provider: openai, project_id: proj_ops, team: billing}}
"""


def _gauge(text: str, name: str, owner: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and f'owner="{owner}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def test_serve_reconciles_in_the_background_and_exposes_gauges(tmp_path):
    yesterday = datetime.now(timezone.utc).date() - timedelta(days=1)
    calls = [Served(yesterday, "gpt-4o-mini-2024-07-18", "key_cron", "proj_ops", 1_000_000, 0, 0, 100_000),
             Served(yesterday, "gpt-4o-mini-2024-07-18", "key_lab", "proj_lab", 0, 0, 0, 1_000_000)]
    with AdminReportServer(calls, yesterday - timedelta(days=5), yesterday + timedelta(days=2),
                           provider="openai") as admin:
        (tmp_path / "costline.yaml").write_text(CONFIG.format(api_base=admin.url))
        served = serve(tmp_path, f"sqlite:///{tmp_path / 'l.db'}",
                       extra_env={"COSTLINE_RECONCILE_EVERY": "1h", "TEST_OPENAI_ADMIN_KEY": OPENAI_KEY})
        try:

            def reconciled() -> str | None:
                metrics = served.metrics()
                return metrics if _gauge(metrics, "costline_reconciliation_untracked_usd", "billing") is not None \
                    else None

            metrics = poll(reconciled, 30, served.log.read_text, interval=0.1)
        finally:
            assert stop(served) == 0
    # gpt-4o-mini at $0.15 / $0.60 per MTok: 1M input + 0.1M output for billing; 1M output for nobody mapped.
    assert _gauge(metrics, "costline_reconciliation_untracked_usd", "billing") == pytest.approx(0.21)
    assert _gauge(metrics, "costline_reconciliation_provider_usd", "billing") == pytest.approx(0.21)
    assert _gauge(metrics, "costline_reconciliation_untracked_usd", "untracked") == pytest.approx(0.60)
    assert _gauge(metrics, "costline_reconciliation_drift_usd", "billing") == 0
    log = served.log.read_text()
    assert "reconciled openai" in log and OPENAI_KEY not in log
    usage = [q for p, q, _ in admin.log if p.endswith("/usage/completions")]
    assert usage[0]["start_time"] == [str(int(datetime.combine(yesterday - timedelta(days=2), datetime.min.time(),
                                                                 tzinfo=timezone.utc).timestamp()))]


@pytest.mark.parametrize("value", ["6", "10s", "0h", "-1h", "infh", "soon"])
def test_reconcile_every_must_be_a_duration_of_a_minute_or_more(value):
    with pytest.raises(SettingsError, match=r"--reconcile-every=.*must be a duration such as 30m, 6h or 1d"):
        resolve({"reconcile_every": value}, env={})


def test_reconcile_every_units():
    assert resolve({"reconcile_every": "6h"}, env={}).reconcile_every_s == 6 * 3600
    assert resolve({}, env={"COSTLINE_RECONCILE_EVERY": "30m"}).reconcile_every_s == 1800
    assert resolve({}, env={}).reconcile_every_s is None


def test_ready_only_once_every_listener_listens(tmp_path, monkeypatch):
    # /readyz turning 200 invites exports at once: the OTLP listeners (and the reconciliation's tables, created
    # at start) must be up before readiness exists, or a quick exporter meets a refused connection.
    from costline.processor import service as composition

    seen = {}
    original = composition.LedgerReadiness.__init__

    def record(self, *args, **kwargs):
        seen["otlp_http"] = service.otlp_http is not None
        seen["reconcile"] = service.reconcile is not None
        original(self, *args, **kwargs)

    monkeypatch.setattr(composition.LedgerReadiness, "__init__", record)
    settings = resolve({"db": f"sqlite:///{tmp_path / 'l.db'}", "otlp_http": "127.0.0.1:0", "otlp_grpc": "off",
                        "http": "off", "config": ""}, env={})
    service = composition.Service(settings)
    try:
        service.start()
        assert seen == {"otlp_http": True, "reconcile": True}
        assert service.ready
    finally:
        service.stop(0)


def test_serve_gauges_pick_up_a_reconcile_run_from_the_command_line(tmp_path, monkeypatch):
    # `costline reconcile` writes the store from another process: serve's gauges must show it without a restart
    # or a background run of their own.
    import json
    import os
    import subprocess
    import sys

    from prometheus_client import generate_latest

    from costline.processor import service as composition
    from costline.processor.metrics import reconciliation as reconcile_service
    from tests.processor.reports.reconcile.admin_server import openai_usage_buckets

    monkeypatch.setattr(reconcile_service, "GAUGES_REFRESH_S", 0.1)
    db = f"sqlite:///{tmp_path / 'l.db'}"
    config = tmp_path / "costline.yaml"
    config.write_text("timezone: UTC\norgs: [{name: acme, teams: [{name: billing}]}]\nreconcile:\n  identities:\n"
                      "    - {provider: openai, project_id: proj_ops, team: billing}\n")
    settings = resolve({"db": db, "otlp_http": "off", "otlp_grpc": "off", "http": "off", "config": str(config)},
                       env={})
    service = composition.Service(settings).start()
    try:
        assert _gauge(generate_latest(service.registry).decode(), "costline_reconciliation_untracked_usd",
                      "billing") is None
        day = datetime(2026, 11, 3, tzinfo=timezone.utc).date()
        report = tmp_path / "usage.json"
        report.write_text(json.dumps({"object": "page", "has_more": False, "next_page": None,
                                      "data": openai_usage_buckets(
                                          [Served(day, "gpt-4o-mini", "key_cron", "proj_ops", 1_000_000, 0, 0, 0)],
                                          day, day + timedelta(days=1))}))
        result = subprocess.run([sys.executable, "-m", "costline.cli", "reconcile", "--provider", "openai",
                                 "--from", str(day), "--to", str(day), "--file", str(report),
                                 "--config", str(config), "--db", db],
                                capture_output=True, text=True, timeout=60, env=dict(os.environ))
        assert result.returncode == 0, result.stderr

        def untracked() -> float | None:
            return _gauge(generate_latest(service.registry).decode(), "costline_reconciliation_untracked_usd",
                          "billing")

        poll(lambda: untracked() is not None, 20, "the gauges never showed the command line's reconciliation")
        value = untracked()
        assert value == pytest.approx(0.15)  # 1M gpt-4o-mini input tokens at $0.15 / MTok
    finally:
        service.stop(0)
