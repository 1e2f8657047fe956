"""The chargeback statement from an unmodified company's calls: three services under `opentelemetry-instrument`
(engineering with a feature marketing owns, support reporting resolved tickets, a batch job nobody tagged) export to
`costline serve`; `costline chargeback --period <this month> --format json` must equal, to the cent, what a hand
computation from `costline usage` and the outcomes the apps reported gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from costline.testing.fake_provider import FakeProviderServer
from tests.processor.reports.chargeback.test_command import ISSUE, by_hand
from tests.processor.served import http_get, serve, stop

APP = Path(__file__).parent / "apps" / "chargeback_app.py"
BIN = Path(sys.executable).parent
CONFIG = """
timezone: UTC
orgs:
  - name: acme
    teams: [{name: engineering}, {name: marketing}, {name: support}]
prices:
  - {provider: openai, model: gpt-4o, input_per_mtok: 2.00, output_per_mtok: 8.00}
""" + ISSUE
ROLES = {"product": "costline.org=acme,costline.team=engineering", "support": "costline.org=acme,costline.team=support",
         "batch": ""}
TICKETS = 6  # support's app: four tickets one at a time, then two at once


@pytest.fixture(scope="module")
def company(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("chargeback")
    (workdir / "costline.yaml").write_text(CONFIG)
    db = f"sqlite:///{workdir / 'ledger.db'}"
    served = serve(workdir, db, grpc=True)
    try:
        with FakeProviderServer() as provider:
            apps = []
            for role, resource in ROLES.items():
                env = {**os.environ, "APP_ROLE": role, "OPENAI_API_KEY": f"sk-{role}",
                       "OPENAI_BASE_URL": provider.openai_base_url, "OTEL_SERVICE_NAME": f"{role}-service",
                       "OTEL_RESOURCE_ATTRIBUTES": resource, "OTEL_TRACES_EXPORTER": "otlp",
                       "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
                       "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                       "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{served.grpc_address}",
                       "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai,openai_v2,anthropic"}
                apps.append(subprocess.Popen([str(BIN / "opentelemetry-instrument"), sys.executable, str(APP)],
                                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            for app in apps:
                _, err = app.communicate(timeout=120)
                assert app.returncode == 0, err
        yield served, workdir / "costline.yaml", db
    finally:
        assert stop(served) == 0, served.log.read_text()


def cli(*args: str) -> bytes:
    run = subprocess.run([sys.executable, "-m", "costline.cli", *args], capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr.decode()
    return run.stdout


def test_the_statement_matches_a_hand_computation_to_the_cent(company):
    served, config, db = company
    period = datetime.now(timezone.utc).strftime("%Y-%m")
    statement = json.loads(cli("chargeback", "--config", str(config), "--db", db, "--period", period,
                               "--format", "json"))
    assert json.loads(http_get(f"{served.api_url}/api/v1/chargeback?period={period}")) == statement
    rows = json.loads(cli("usage", "--config", str(config), "--db", db, "--group-by", "org,team", "--format", "json",
                          "--from", f"{period}-01"))["rows"]
    assert {r["team"] for r in rows} == {"engineering", "marketing", "support", "unattributed"}
    hand = by_hand(rows, tickets=TICKETS)
    assert {t["team"]: Decimal(t["total_usd"]) for t in statement["teams"]} | {
        "total": Decimal(statement["total_usd"])} == hand
    support = next(t for t in statement["teams"] if t["team"] == "acme/support")
    assert support["usage"]["outcomes"] == {"escalated": 1, "ticket_resolved": TICKETS}
    assert [(line["quantity"], line["amount_usd"]) for line in support["lines"]
            if line["component"] == "value_based"] == [(TICKETS, "3.00")]


def test_outcomes_are_counted_in_prometheus(company):
    served, _, _ = company
    metrics = http_get(f"{served.api_url}/metrics").decode()
    assert 'costline_outcomes_total{feature="auto-reply",name="ticket_resolved",org="acme",team="support"} 6.0' \
        in metrics
    assert 'costline_outcomes_total{feature="",name="escalated",org="acme",team="support"} 1.0' in metrics
