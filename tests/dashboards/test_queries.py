"""Every PromQL expression of the mixin against a real Prometheus.

1. Parsing (no processor needed): each dashboard target (Grafana variables substituted) and each rule expression
   goes through `/api/v1/query` of a Prometheus that also loads the generated rules.
2. Data: the real processor (`costline serve`) receives a multi-team workload as OTLP/HTTP spans, a second
   Prometheus scrapes it every second and evaluates the rules every second (alerts built with `for: 0s`), and then
   every panel must return data, every variable must list the workload's owners, and the alerts the workload trips
   must be in `ALERTS`.
"""

from __future__ import annotations

import importlib.util
import json
import math
import time
from decimal import Decimal
from pathlib import Path

import pytest

from costline.dashboards import build
from costline.dashboards.alerts import alert_rule_groups
from costline.dashboards.config import DEFAULT_CONFIG
from costline.testing.local import http_get, stop_process
from tests.polling import poll

from .conftest import GENERATED
from .expressions import panel_queries, rule_expressions, substitute, variable_queries
from .stack import start_processor, start_prometheus
from .workload import BURST, ORG, PROCESSOR_CONFIG, Workload

pytestmark = pytest.mark.prometheus

DASHBOARD_FILES = sorted((GENERATED / build.DASHBOARDS_DIR).glob("*.json"))
RULE_FILES = [GENERATED / build.RECORDING_RULES, GENERATED / build.ALERTING_RULES]
PANEL_QUERIES = panel_queries(DASHBOARD_FILES)
RULE_EXPRESSIONS = rule_expressions(RULE_FILES)

TEST_CONFIG = DEFAULT_CONFIG.replace(
    alert_for={name: "0s" for name in DEFAULT_CONFIG.alert_for},
    rule_evaluation_interval="1s",
)
"""The shipped rules with every `for:` at 0s and a 1 s evaluation interval, so alerts fire within the test."""


def _write_rules(directory: Path) -> list[Path]:
    files = build.render(TEST_CONFIG)
    paths = []
    for relative in (build.RECORDING_RULES, build.ALERTING_RULES):
        path = directory / Path(relative).name
        path.write_text(files[relative], "utf-8")
        paths.append(path)
    return paths


# --- 1. every expression parses ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bare_prometheus(prometheus_binary, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("prometheus-parse")
    prometheus = start_prometheus(prometheus_binary, workdir, "127.0.0.1:1", RULE_FILES, "15s")
    yield prometheus
    stop_process(prometheus.process)


def test_the_dashboards_have_queries_to_test():
    assert len(DASHBOARD_FILES) == 5 and len(PANEL_QUERIES) > 40
    assert {q.dashboard for q in PANEL_QUERIES} == {
        "Costline / Spend overview",
        "Costline / Budget burn",
        "Costline / Team drill-down",
        "Costline / Performance",
        "Costline / Chargeback",
    }


@pytest.mark.parametrize("target", PANEL_QUERIES, ids=str)
def test_panel_query_parses(bare_prometheus, target):
    bare_prometheus.query(target.expr)  # raises with Prometheus' parse error


@pytest.mark.parametrize("name", sorted(RULE_EXPRESSIONS))
def test_rule_expression_parses(bare_prometheus, name):
    bare_prometheus.query(RULE_EXPRESSIONS[name])


def test_variable_selectors_parse(bare_prometheus):
    for variable in variable_queries(DASHBOARD_FILES):
        bare_prometheus.api("series", **{"match[]": substitute(variable.selector)})


def test_the_generated_rules_load_into_prometheus(bare_prometheus):
    groups = bare_prometheus.api("rules")["groups"]
    loaded = {rule["name"] for group in groups for rule in group["rules"]}
    assert loaded == set(RULE_EXPRESSIONS)


# --- 2. the workload's data in every panel ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def loaded_stack(prometheus_binary, tmp_path_factory):
    # Not a skip: the query tests are the processor's contract with the dashboards and must run in CI.
    missing = [name for name in PROCESSOR_MODULES if not _importable(name)]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not importable: the query tests need the real processor (`costline serve`, "
            "issue 3) to push the workload through. Install it with `make venv`."
        )
    workdir = tmp_path_factory.mktemp("stack")
    processor = start_processor(workdir, PROCESSOR_CONFIG)
    rules_dir = workdir / "rules"
    rules_dir.mkdir()
    prometheus = start_prometheus(prometheus_binary, workdir, processor.metrics_address, _write_rules(rules_dir), "1s")
    try:
        poll(lambda: prometheus.query('up{job="costline"} == 1'), 20, "Prometheus scraping the processor", interval=0.5)
        started = time.time()
        workload = Workload(processor.otlp_http_url)
        try:
            workload.run()
            workload.burst(BURST)
        finally:
            workload.shutdown()
        finished = time.time()
        # The workload blows budgets (the alert rules saw it), and Prometheus scraped twice since the last span.
        poll(lambda: prometheus.query('ALERTS{alertname="CostlineBudgetWarning", alertstate="firing"}'), 20,
             "CostlineBudgetWarning firing", interval=0.5)
        poll(lambda: prometheus.query(f'timestamp(up{{job="costline"}}) > {finished + 2:.3f}'), 20,
             "two scrapes after the workload", interval=0.5)
        yield prometheus, started, processor
    finally:
        stop_process(prometheus.process)
        stop_process(processor.process)


PROCESSOR_MODULES = ("costline.processor.cli", "costline.processor.ingest.pipeline")
"""What `costline serve` imports: the CLI, and the pipeline it builds lazily at start."""


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _has_values(result: list[dict]) -> bool:
    """Grafana draws nothing for NaN: a panel has data when at least one sample is a number."""
    for series in result:
        samples = series.get("values") or [series["value"]]
        if any(not math.isnan(float(value)) for _, value in samples):
            return True
    return False


@pytest.mark.parametrize("target", PANEL_QUERIES, ids=str)
def test_panel_returns_data_for_the_workload(loaded_stack, target):
    prometheus, started, _ = loaded_stack
    if target.instant:
        result = prometheus.query(target.expr)
    else:
        result = prometheus.query_range(target.expr, started - 5, time.time())
    assert _has_values(result), f"no data for {target}:\n{target.expr}"


def test_variables_list_the_workloads_owners_and_chain(loaded_stack):
    prometheus, _, _ = loaded_stack
    (spend,) = [v for v in variable_queries(DASHBOARD_FILES) if v.dashboard == "Costline / Spend overview"][:1]

    def values(label: str, **chosen: str) -> set[str]:
        (variable,) = [
            v for v in variable_queries(DASHBOARD_FILES) if v.dashboard == spend.dashboard and v.label == label
        ]
        return set(prometheus.api(f"label/{label}/values", **{"match[]": substitute(variable.selector, chosen)}))

    assert values("org") == {ORG}
    assert {"search", "support", "research"} <= values("team", org=ORG)
    assert values("project", org=ORG, team="search") == {"ranking", "autocomplete"}
    assert values("model", org=ORG, team="research", project=".*") == {"claude-3-5-haiku-20241022", "acme-llama-70b"}


def _firing(prometheus, alertname: str, **labels: str) -> list[dict]:
    matchers = "".join(f', {k}="{v}"' for k, v in labels.items())
    return prometheus.query(f'ALERTS{{alertname="{alertname}", alertstate="firing"{matchers}}}')


def test_team_over_80_percent_fires_the_budget_warning(loaded_stack):
    prometheus, _, _ = loaded_stack
    assert _firing(prometheus, "CostlineBudgetWarning", scope="team", team="search")
    assert not _firing(prometheus, "CostlineBudgetExceeded", scope="team", team="search")
    assert not _firing(prometheus, "CostlineBudgetWarning", scope="team", team="support")


def test_team_over_its_budget_fires_budget_exceeded(loaded_stack):
    prometheus, _, _ = loaded_stack
    assert _firing(prometheus, "CostlineBudgetExceeded", scope="team", team="research")


def test_unpriced_model_fires(loaded_stack):
    prometheus, _, _ = loaded_stack
    assert _firing(prometheus, "CostlineUnpricedModel", model="acme-llama-70b")
    assert not _firing(prometheus, "CostlineUnpricedModel", model="gpt-4o")


def test_a_call_without_usage_fires_calls_without_usage(loaded_stack):
    prometheus, _, _ = loaded_stack
    assert _firing(prometheus, "CostlineCallsWithoutUsage", model="gpt-4o-mini", source="costline")
    assert not _firing(prometheus, "CostlineCallsWithoutUsage", model="gpt-4o")


def test_processor_up_does_not_fire_processor_down(loaded_stack):
    prometheus, _, _ = loaded_stack
    assert not _firing(prometheus, "CostlineProcessorDown")


def test_alert_annotations_expand_against_real_series(loaded_stack):
    prometheus, _, _ = loaded_stack
    alerts = prometheus.api("alerts")["alerts"]
    assert alerts
    for alert in alerts:
        for name, text in alert["annotations"].items():
            assert "error expanding template" not in text and "<no value>" not in text, (alert["labels"], name, text)
    warning = next(a for a in alerts if a["labels"]["alertname"] == "CostlineBudgetWarning")
    assert warning["annotations"]["description"].startswith("team acme/search has spent $")


def test_test_config_only_changes_timing():
    """The loaded rules differ from the shipped ones only in `for:` and the evaluation interval."""
    shipped = alert_rule_groups(DEFAULT_CONFIG)
    tested = alert_rule_groups(TEST_CONFIG)
    strip = lambda groups: [  # noqa: E731
        [{k: v for k, v in rule.items() if k != "for"} for rule in group["rules"]] for group in groups
    ]
    assert strip(shipped) == strip(tested)


TOTAL_SPEND_PANELS = [
    ("Costline / Spend overview", "Month-to-date spend"),
    ("Costline / Spend overview", "Spend in selected range"),
    ("Costline / Team drill-down", "Team spend in selected range"),
]


def _raw_expr(dashboard_title: str, panel_title: str) -> str:
    for path in DASHBOARD_FILES:
        dashboard = json.loads(path.read_text("utf-8"))
        if dashboard["title"] == dashboard_title:
            (panel,) = [p for p in dashboard["panels"] if p["title"] == panel_title]
            (target,) = panel["targets"]
            return target["expr"]
    raise AssertionError(f"no dashboard {dashboard_title!r}")


@pytest.mark.parametrize(("dashboard", "panel"), TOTAL_SPEND_PANELS, ids=[p for _, p in TOTAL_SPEND_PANELS])
def test_total_spend_panels_equal_the_ledger_to_one_percent(loaded_stack, dashboard, panel):
    """Every series of the workload is born with calls already counted (the burst's all in one scrape), and the
    panels still show the ledger's total: no first-sample loss."""
    prometheus, started, processor = loaded_stack
    rows = json.loads(http_get(f"{processor.http_url}/api/v1/usage?group_by=org&format=json"))["rows"]
    ledger = float(sum(Decimal(row["cost_usd"]) for row in rows))
    assert ledger > 10  # the workload's ~$11 including the $5 burst
    # The dashboard's range: from just before the workload to now (what "Last N minutes" would show).
    expr = substitute(_raw_expr(dashboard, panel).replace("$__range", f"{int(time.time() - started) + 5}s"))

    def shown() -> float:
        result = prometheus.query(expr)
        return float(result[0]["value"][1]) if result else 0.0

    # The ledger gauges follow commits within about a second; the scrape interval is 1 s.
    poll(lambda: abs(shown() - ledger) <= 0.01 * ledger, 20, lambda: f"{panel}: {shown()} vs ledger {ledger}\n{expr}",
         interval=0.5)
    assert shown() == pytest.approx(ledger, rel=0.01), f"{panel}: {shown()} vs ledger {ledger}\n{expr}"


def test_month_to_date_charges_equal_the_statement(loaded_stack):
    """The Chargeback dashboard's total is the open statement's (`GET /api/v1/chargeback`), to the cent."""
    prometheus, _, processor = loaded_stack
    expr = substitute(_raw_expr("Costline / Chargeback", "Month-to-date charges"))

    def statement_total() -> str:
        return json.loads(http_get(f"{processor.http_url}/api/v1/chargeback?format=json"))["total_usd"]

    def shown() -> float | None:
        result = prometheus.query(expr)
        return round(float(result[0]["value"][1]), 2) if result else None

    # The gauges follow commits within a few seconds; the scrape interval is 1 s.
    poll(lambda: shown() == float(statement_total()), 20, lambda: f"{shown()} vs {statement_total()}: {expr}",
         interval=0.5)
    total = statement_total()
    assert Decimal(total) > 600  # three $200 fees, the $300 split, tokens, markups and tickets
    assert shown() == float(total), expr
