"""Prometheus rules: valid for promtool, named `level:metric:operations`, every alert annotated and unit-tested
(firing and not firing) with `promtool test rules`."""

from __future__ import annotations

import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from costline.dashboards import build

from .conftest import GENERATED, PROMTOOL_TESTS

pytestmark = pytest.mark.prometheus

RULE_FILES = [GENERATED / build.RECORDING_RULES, GENERATED / build.ALERTING_RULES]
ALERTS = {
    "CostlineBudgetWarning",
    "CostlineBudgetExceeded",
    "CostlineBudgetForecastOverrun",
    "CostlineSpendAnomaly",
    "CostlineUnpricedModel",
    "CostlineErrorRateSpike",
    "CostlineUnattributedSpend",
    "CostlineSpansDropped",
    "CostlinePolicyViolation",
    "CostlineApprovalRequested",
    "CostlineProcessorDown",
    "CostlineReconciliationDrift",
    "CostlineCallsWithoutUsage",
    "CostlineReportedCostDisagrees",
    "CostlineCustomerOverBudget",
}
RECORD_NAME = re.compile(r"^[a-z_]+:[a-z_]+:[a-z0-9_]+$")


def _rules(path):
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def test_promtool_check_rules(promtool):
    result = subprocess.run([promtool, "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    # Lint findings (duplicate rules) exit 0 but print FAILED.
    assert "FAILED" not in result.stdout + result.stderr, result.stdout + result.stderr


def test_promtool_unit_tests(promtool):
    files = sorted(PROMTOOL_TESTS.glob("*.test.yaml"))
    assert files
    # One promtool per file, side by side: the month-long forecast test dominates the run time.
    with ThreadPoolExecutor(len(files)) as pool:
        results = list(
            pool.map(
                lambda f: subprocess.run(
                    [promtool, "test", "rules", f.name], cwd=f.parent, capture_output=True, text=True
                ),
                files,
            )
        )
    failures = [r.stdout + r.stderr for r in results if r.returncode != 0]
    assert not failures, "\n".join(failures)


def test_promtool_tests_evaluate_recording_groups_before_alerts():
    # Without `group_eval_order` promtool evaluates one timestamp's groups in map order: an alert then reads the
    # previous minute's recorded value now and then, and fires a minute late. CI failed on exactly that once.
    groups = [[g["name"] for g in yaml.safe_load(path.read_text())["groups"]] for path in RULE_FILES]
    for path in sorted(PROMTOOL_TESTS.glob("*.test.yaml")):
        assert yaml.safe_load(path.read_text()).get("group_eval_order") == groups[0] + groups[1], path.name


def test_recording_rules_are_named_level_metric_operations():
    names = [rule["record"] for rule in _rules(RULE_FILES[0])]
    assert len(names) == len(set(names))
    for name in names:
        assert RECORD_NAME.match(name), name
        assert not name.split(":")[1].endswith("_total"), f"{name}: drop `_total` from a rated counter's name"


def test_every_alert_with_severity_and_annotations():
    alerts = {rule["alert"]: rule for rule in _rules(RULE_FILES[1])}
    assert set(alerts) == ALERTS
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("warning", "critical"), name
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "dashboard_url", "runbook_url"}, name
        assert "{{" in annotations["description"], f"{name}: the description names the owner and figures"
        assert annotations["runbook_url"].endswith("#" + name.lower())


def test_every_alert_has_firing_and_quiet_unit_tests():
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in PROMTOOL_TESTS.glob("*.test.yaml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert firing == ALERTS, f"alerts without a firing test: {ALERTS - firing}"
    assert quiet == ALERTS, f"alerts without a not-firing test: {ALERTS - quiet}"


def test_alert_runbook_anchors_exist_in_the_docs():
    from .conftest import REPO

    docs = (REPO / "docs" / "dashboards.md").read_text("utf-8")
    headings = {line.lstrip("#").strip().lower() for line in docs.splitlines() if line.startswith("#")}
    assert {name.lower() for name in ALERTS} <= headings


def test_every_config_field_is_documented():
    import dataclasses

    from costline.dashboards.config import MixinConfig

    from .conftest import REPO

    docs = (REPO / "docs" / "dashboards.md").read_text("utf-8")
    missing = [f.name for f in dataclasses.fields(MixinConfig) if f"`{f.name}`" not in docs]
    assert not missing, f"docs/dashboards.md does not describe {missing}"


PER_SCOPE_TEST = """
rule_files: [costline-recording-rules.yaml, costline-alerts.yaml]
evaluation_interval: 1m
group_eval_order: [costline.cost.rules, costline.requests.rules, costline.budgets.rules, costline.budget.alerts,
                   costline.spend.alerts, costline.processor.alerts]
tests:
  # search warns at 50 % (its own ratio), support at the default 80 %: both at 60 %, only search warns.
  - interval: 1m
    input_series:
      - series: 'costline_budget_spent_usd{job="costline", scope="team", period="monthly", org="acme", team="search"}'
        values: '6x30'
      - series: 'costline_budget_limit_usd{job="costline", scope="team", period="monthly", org="acme", team="search"}'
        values: '10x30'
      - series: 'costline_budget_spent_usd{job="costline", scope="team", period="monthly", org="acme", team="support"}'
        values: '30x30'
      - series: 'costline_budget_limit_usd{job="costline", scope="team", period="monthly", org="acme", team="support"}'
        values: '50x30'
    alert_rule_test:
      - eval_time: 20m
        alertname: CostlineBudgetWarning
        exp_alerts:
          - exp_labels: {severity: warning, job: costline, scope: team, period: monthly, org: acme, team: search,
                         owner: acme/search}
            exp_annotations:
              summary: team acme/search has used 60% of its monthly budget.
              description: team acme/search has spent $6.00 of its monthly budget of $10.00 (60%; warning at 50%).
              dashboard_url: http://localhost:3000/d/costline-budget-burn?orgId=1&var-org=acme&var-team=search
              runbook_url: https://github.com/costline/costline/blob/main/docs/dashboards.md#costlinebudgetwarning
"""


def test_a_team_can_warn_at_50_percent_while_the_others_keep_80(promtool, tmp_path):
    from costline.dashboards.config import DEFAULT_CONFIG

    config = DEFAULT_CONFIG.replace(budget_warning_ratios={"team acme/search": 0.5})
    files = build.render(config)
    for relative in (build.RECORDING_RULES, build.ALERTING_RULES):
        (tmp_path / relative.split("/")[-1]).write_text(files[relative], "utf-8")
    (tmp_path / "per_scope.test.yaml").write_text(PER_SCOPE_TEST, "utf-8")
    result = subprocess.run([promtool, "test", "rules", "per_scope.test.yaml"], cwd=tmp_path, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("ratios", "message"),
    [
        ({"acme/search": 0.5}, "budget_warning_ratios['acme/search']: key must be '<scope> <owner>'"),
        ({"squad acme/search": 0.5}, "budget_warning_ratios['squad acme/search']: key must be"),
        ({"team acme/search": 1.2}, "budget_warning_ratios['team acme/search']: 1.2 must be above 0 and below"),
    ],
)
def test_per_scope_ratio_errors_name_the_key_and_the_rule(ratios, message):
    from costline.dashboards.config import DEFAULT_CONFIG

    with pytest.raises(ValueError, match=re.escape(message)):
        DEFAULT_CONFIG.replace(budget_warning_ratios=ratios)
