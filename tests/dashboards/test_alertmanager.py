"""The example alertmanager.yml: valid for amtool, routes each team's alerts to that team, and — with an unmodified
app under `opentelemetry-instrument`, the real processor, Prometheus and Alertmanager — a team going over budget
reaches exactly that team's webhook."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from costline.dashboards import build
from costline.dashboards.alertmanager import (
    DEFAULT_RECEIVER,
    EXAMPLES,
    alertmanager_config,
    approver_receiver,
    receiver_name,
)
from costline.dashboards.config import DEFAULT_CONFIG
from costline.testing.fake_provider import FakeProviderServer
from costline.testing.local import free_port, http_get, stop_process

from .conftest import GENERATED
from .stack import start_alertmanager, start_processor, start_prometheus, wait_until
from .test_queries import _write_rules
from .workload import ORG, PROCESSOR_CONFIG

BURST_APP = Path(__file__).parents[1] / "e2e" / "apps" / "burst_app.py"
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.prometheus

SHIPPED = GENERATED / build.ALERTMANAGER


def test_amtool_check_config(amtool):
    result = subprocess.run([amtool, "check-config", str(SHIPPED)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 receivers" in result.stdout


def test_the_commented_slack_and_email_examples_are_valid(amtool, tmp_path):
    commented = EXAMPLES.split("# receivers:\n", 1)[1]
    examples = yaml.safe_load("\n".join(line.removeprefix("#").removeprefix(" ") for line in commented.splitlines()))
    config = yaml.safe_load(SHIPPED.read_text("utf-8"))
    config["receivers"] += examples
    path = tmp_path / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config), "utf-8")
    result = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {"slack_configs", "email_configs"} <= {key for receiver in examples for key in receiver}


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        ({"alertname": "CostlineBudgetExceeded", "scope": "team", "owner": "acme/search", "org": "acme",
          "team": "search"}, receiver_name("acme/search")),
        ({"alertname": "CostlineBudgetWarning", "scope": "key", "owner": "acme/search/alice/alice-laptop",
          "org": "acme", "team": "search", "user": "alice", "key": "alice-laptop"}, receiver_name("acme/search")),
        ({"alertname": "CostlineBudgetExceeded", "scope": "team", "owner": "acme/research", "org": "acme",
          "team": "research"}, receiver_name("acme/research")),
        ({"alertname": "CostlineSpendAnomaly", "org": "acme", "team": "support", "feature": "summarize"},
         receiver_name("acme/support")),
        ({"alertname": "CostlineBudgetExceeded", "scope": "org", "owner": "acme", "org": "acme"}, DEFAULT_RECEIVER),
        ({"alertname": "CostlineBudgetWarning", "scope": "project", "owner": "ranking", "project": "ranking"},
         DEFAULT_RECEIVER),
        ({"alertname": "CostlineBudgetExceeded", "scope": "team", "owner": "other/search", "org": "other",
          "team": "search"}, DEFAULT_RECEIVER),
        ({"alertname": "CostlineUnpricedModel", "provider": "vllm", "model": "acme-llama-70b"}, DEFAULT_RECEIVER),
        # A request for a model allowed on approval goes to its approver, not to the team that asks.
        ({"alertname": "CostlineApprovalRequested", "org": "acme", "team": "search", "provider": "openai",
          "model": "o3*", "approver": "org-admin:acme"}, approver_receiver("org-admin:acme")),
        ({"alertname": "CostlineApprovalRequested", "org": "acme", "team": "search", "user": "bob",
          "provider": "openai", "model": "o3*", "approver": "team-admin:acme/search"},
         approver_receiver("team-admin:acme/search")),
        ({"alertname": "CostlineApprovalRequested", "org": "other", "team": "x", "provider": "openai",
          "model": "o3*", "approver": "org-admin:other"}, DEFAULT_RECEIVER),
    ],
    ids=["team", "key-of-team", "other-team", "anomaly", "org", "project", "same-team-name-other-org", "unpriced",
         "approval-org-admin", "approval-team-admin", "approval-no-approver-route"],
)
def test_amtool_routes(amtool, labels, receiver):
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={SHIPPED}", *(f"{k}={v}" for k, v in labels.items())],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


# --- end to end: real processor, Prometheus, Alertmanager and a webhook --------------------------------------------


class Webhooks:
    """A local webhook receiver: every notification Alertmanager posts, by path."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        self._changed = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer._changed:
                    outer.received.append((self.path, body))
                    outer._changed.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def alerts(self, path: str) -> list[dict]:
        with self._changed:
            return [alert for p, body in self.received if p == path for alert in body["alerts"]]

    def wait_for(self, path: str, check, timeout: float = 60.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                alerts = [alert for p, body in self.received if p == path for alert in body["alerts"]]
                if any(check(alert) for alert in alerts):
                    return alerts
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no matching notification at {path} within {timeout:.0f}s: {self.received}")
                self._changed.wait(remaining)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhooks():
    hooks = Webhooks()
    yield hooks
    hooks.close()


def _alertmanager_yaml(webhooks: Webhooks) -> str:
    config = DEFAULT_CONFIG.replace(
        alertmanager_team_webhooks={team: f"{webhooks.url}/{team}" for team in ("acme/search", "acme/research")},
        alertmanager_default_webhook=f"{webhooks.url}/finops",
        alertmanager_group_wait="1s",
        alertmanager_group_interval="1s",
        alertmanager_repeat_interval="1h",
    )
    return yaml.safe_dump(alertmanager_config(config))


def test_a_team_over_budget_reaches_exactly_that_teams_webhook(
    prometheus_binary, alertmanager_binary, webhooks, tmp_path
):
    alertmanager = start_alertmanager(alertmanager_binary, tmp_path, _alertmanager_yaml(webhooks))
    processor = start_processor(tmp_path, PROCESSOR_CONFIG)
    rules = tmp_path / "rules"
    rules.mkdir()
    prometheus = start_prometheus(
        prometheus_binary, tmp_path, processor.metrics_address, _write_rules(rules), "1s", alertmanager.address
    )
    try:
        # An unmodified app's burst: research ($1 budget) spends ~$1.20 on Claude, and calls a self-hosted model
        # nobody priced; then it exits (its exporter flushes on exit) and the processor has every span.
        with FakeProviderServer() as provider:
            env = {
                **os.environ,
                "ANTHROPIC_API_KEY": "sk-ant-research-batch", "ANTHROPIC_BASE_URL": provider.anthropic_base_url,
                "OPENAI_API_KEY": "sk-research-batch", "SELF_HOSTED_BASE_URL": provider.openai_base_url,
                "OTEL_SERVICE_NAME": "research-batch",
                "OTEL_RESOURCE_ATTRIBUTES": f"costline.org={ORG},costline.team=research,costline.project=evals",
                "OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": processor.otlp_http_url,
                "OTEL_PYTHON_DISABLED_INSTRUMENTATIONS": "openai,openai_v2,anthropic",
            }
            app = subprocess.run([str(BIN / "opentelemetry-instrument"), sys.executable, str(BURST_APP)], env=env,
                                 capture_output=True, text=True, timeout=120)
        assert app.returncode == 0, app.stderr

        def research_exceeded(alert: dict) -> bool:
            labels = alert["labels"]
            return (alert["status"] == "firing" and labels["alertname"] == "CostlineBudgetExceeded"
                    and labels.get("scope") == "team" and labels.get("team") == "research")

        delivered = webhooks.wait_for("/acme/research", research_exceeded)
        assert {(a["labels"]["org"], a["labels"]["team"]) for a in delivered} == {(ORG, "research")}
        assert webhooks.alerts("/acme/search") == []  # search spent nothing: not a word to them
        assert not [a for a in webhooks.alerts("/finops") if a["labels"].get("team") == "research"]
        # Prometheus shows both alerts of the story firing; the unpriced one goes to the default receiver.
        assert prometheus.query('ALERTS{alertname="CostlineBudgetExceeded", team="research", alertstate="firing"}')
        # Its own rule group may be evaluated a little after the budget's: wait for it rather than race it.
        wait_until(lambda: prometheus.query('ALERTS{alertname="CostlineUnpricedModel", model="acme-llama-70b", '
                                            'alertstate="firing"}'),
                   "CostlineUnpricedModel firing", prometheus.process, tmp_path / "prometheus.log")
        webhooks.wait_for("/finops", lambda a: a["labels"]["alertname"] == "CostlineUnpricedModel")
    finally:
        stop_process(prometheus.process)
        stop_process(processor.process)
        stop_process(alertmanager.process)


def test_an_exceeded_budget_silences_the_warning_of_the_same_owner(alertmanager_binary, webhooks, tmp_path):
    alertmanager = start_alertmanager(alertmanager_binary, tmp_path, _alertmanager_yaml(webhooks))
    try:
        search = {"scope": "team", "owner": "acme/search", "org": "acme", "team": "search"}
        research = {"scope": "team", "owner": "acme/research", "org": "acme", "team": "research"}
        alerts = [
            {"labels": {"alertname": "CostlineBudgetExceeded", "period": "daily", **search}},
            {"labels": {"alertname": "CostlineBudgetWarning", "period": "monthly", **search}},
            {"labels": {"alertname": "CostlineBudgetWarning", "period": "monthly", **research}},
        ]
        post = urllib.request.Request(f"{alertmanager.url}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                      headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(post, timeout=10) as response:
            assert response.status == 200
        webhooks.wait_for("/acme/research", lambda a: a["labels"]["alertname"] == "CostlineBudgetWarning")
        webhooks.wait_for("/acme/search", lambda a: a["labels"]["alertname"] == "CostlineBudgetExceeded")
        states = json.loads(http_get(f"{alertmanager.url}/api/v2/alerts"))
        by_owner = {(a["labels"]["alertname"], a["labels"]["owner"]): a["status"] for a in states}
        assert by_owner[("CostlineBudgetWarning", "acme/search")]["state"] == "suppressed"
        assert by_owner[("CostlineBudgetWarning", "acme/search")]["inhibitedBy"]
        assert by_owner[("CostlineBudgetWarning", "acme/research")]["state"] == "active"
        assert [a["labels"]["alertname"] for a in webhooks.alerts("/acme/search")] == ["CostlineBudgetExceeded"]
    finally:
        stop_process(alertmanager.process)


APPROVAL_PROCESSOR_CONFIG = """\
orgs:
  - name: acme
    models: {{openai: {{on_approval: ["o3*"]}}}}
    teams: [{{name: search}}]
api:
  tokens:
    - {{name: search-admin, sha256: "{sha256}", role: "team-admin:acme/search"}}
"""


def test_a_model_request_reaches_the_approvers_webhook(prometheus_binary, alertmanager_binary, webhooks, tmp_path):
    """A team admin asks the processor for a frontier model; Prometheus' CostlineApprovalRequested reaches the
    org admin's webhook (the approver), not the team's."""
    from costline.processor.http.auth import hash_token

    token = "tok-search-admin"
    config_text = APPROVAL_PROCESSOR_CONFIG.format(sha256=hash_token(token))
    config = DEFAULT_CONFIG.replace(
        alertmanager_team_webhooks={"acme/search": f"{webhooks.url}/acme/search"},
        alertmanager_approver_webhooks={"org-admin:acme": f"{webhooks.url}/approvers/acme"},
        alertmanager_default_webhook=f"{webhooks.url}/finops",
        alertmanager_group_wait="1s", alertmanager_group_interval="1s", alertmanager_repeat_interval="1h")
    alertmanager = start_alertmanager(alertmanager_binary, tmp_path, yaml.safe_dump(alertmanager_config(config)))
    processor = start_processor(tmp_path, config_text)
    rules = tmp_path / "rules"
    rules.mkdir()
    prometheus = start_prometheus(
        prometheus_binary, tmp_path, processor.metrics_address, _write_rules(rules), "1s", alertmanager.address
    )
    try:
        body = {"action": "request", "scope": "acme/search", "provider": "openai", "model": "o3-pro",
                "reason": "long-horizon evals"}
        request = urllib.request.Request(f"{processor.http_url}/api/v1/admin/approvals", json.dumps(body).encode(),
                                         {"Authorization": f"Bearer {token}"}, method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            assert response.status == 201
        delivered = webhooks.wait_for("/approvers/acme",
                                      lambda a: a["labels"]["alertname"] == "CostlineApprovalRequested")
        labels = next(a["labels"] for a in delivered if a["labels"]["alertname"] == "CostlineApprovalRequested")
        assert (labels["approver"], labels["team"], labels["model"]) == ("org-admin:acme", "search", "o3*")
        assert webhooks.alerts("/acme/search") == []
    finally:
        stop_process(prometheus.process)
        stop_process(processor.process)
        stop_process(alertmanager.process)
