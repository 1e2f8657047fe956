"""The generated dashboards and rules: committed output equals a fresh build, and the dashboards follow the
mixin's conventions (stable uids, one data source variable, chained filters, every target a Prometheus query)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from costline.dashboards import build, links
from costline.dashboards.config import DEFAULT_CONFIG

from .conftest import GENERATED, REPO

DASHBOARD_FILES = sorted(f"{build.DASHBOARDS_DIR}/{name}" for name in build.DASHBOARDS)


def _dashboard(relative: str) -> dict:
    return json.loads((GENERATED / relative).read_text("utf-8"))


def test_committed_output_equals_a_fresh_build():
    stale = build.drift(GENERATED)
    assert not stale, f"generated files out of date, run `make dashboards`: {stale}"


def test_build_command_writes_what_render_returns(tmp_path):
    subprocess.run([sys.executable, "-m", "costline.dashboards", "build", "--out", str(tmp_path)], check=True, cwd=REPO)
    assert build.drift(tmp_path) == []
    check = subprocess.run([sys.executable, "-m", "costline.dashboards", "check", "--out", str(tmp_path)])
    assert check.returncode == 0


def test_check_command_reports_drift(tmp_path):
    build.write(tmp_path)
    (tmp_path / DASHBOARD_FILES[0]).write_text("{}", "utf-8")
    (tmp_path / "prometheus" / "leftover.yaml").write_text("groups: []\n", "utf-8")
    check = subprocess.run(
        [sys.executable, "-m", "costline.dashboards", "check", "--out", str(tmp_path)], capture_output=True, text=True
    )
    assert check.returncode == 1
    assert DASHBOARD_FILES[0] in check.stderr and "leftover.yaml" in check.stderr


def test_the_dashboards_have_stable_unique_uids():
    uids = {_dashboard(f)["uid"] for f in DASHBOARD_FILES}
    assert uids == {
        links.SPEND_OVERVIEW_UID,
        links.BUDGET_BURN_UID,
        links.TEAM_DRILLDOWN_UID,
        links.PERFORMANCE_UID,
        links.CHARGEBACK_UID,
    }


@pytest.mark.parametrize("relative", DASHBOARD_FILES)
def test_variables_datasource_then_chained_filters(relative):
    variables = _dashboard(relative)["templating"]["list"]
    assert [v["name"] for v in variables] == ["datasource", "org", "team", "project", "model"]
    assert variables[0]["type"] == "datasource" and variables[0]["query"] == "prometheus"
    queries = {v["name"]: v["query"] for v in variables[1:]}
    # Each variable's values are limited by every variable before it in the chain.
    assert '"$org"' not in queries["org"]
    assert 'org=~"$org"' in queries["team"]
    assert 'org=~"$org"' in queries["project"] and 'team=~"$team"' in queries["project"]
    assert all(f'{p}=~"${p}"' in queries["model"] for p in ("org", "team", "project"))
    for variable in variables[1:]:
        assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert variable["multi"] and variable["includeAll"] and variable["allValue"] == ".*"
        assert DEFAULT_CONFIG.costline_selector in variable["query"]


@pytest.mark.parametrize("relative", DASHBOARD_FILES)
def test_panels_query_the_datasource_variable_with_stable_ids(relative):
    panels = _dashboard(relative)["panels"]
    assert [p["id"] for p in panels] == list(range(1, len(panels) + 1))
    titles = [p["title"] for p in panels if p["type"] != "row"]
    assert len(titles) == len(set(titles)), "panel titles must be unique within a dashboard"
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel.get("description"), f"{panel['title']}: every panel explains itself"
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert ref_ids == [chr(ord("A") + i) for i in range(len(ref_ids))]
        assert all(t["expr"] for t in panel["targets"])


@pytest.mark.parametrize("relative", DASHBOARD_FILES)
def test_no_panel_hard_codes_an_owner(relative):
    """Owner filters come from the variables, never from a literal team name left in a query."""
    for panel in _dashboard(relative)["panels"]:
        for target in panel.get("targets", []):
            for label in ("org", "team", "project", "model"):
                assert not re.search(rf'\b{label}="[^$]', target["expr"]), (panel["title"], target["expr"])


def test_spend_overview_has_the_month_to_date_panel_pinned_to_the_month():
    panels = {p["title"]: p for p in _dashboard(f"{build.DASHBOARDS_DIR}/costline-spend-overview.json")["panels"]}
    assert panels["Month-to-date spend"]["timeFrom"] == "now/M"


def test_provisioning_points_grafana_at_the_generated_dashboards():
    import yaml

    datasources = yaml.safe_load((GENERATED / "grafana/provisioning/datasources/costline.yaml").read_text())
    providers = yaml.safe_load((GENERATED / "grafana/provisioning/dashboards/costline.yaml").read_text())
    (datasource,) = datasources["datasources"]
    assert datasource["uid"] == DEFAULT_CONFIG.datasource_uid and datasource["type"] == "prometheus"
    (provider,) = providers["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == DEFAULT_CONFIG.grafana_dashboards_path


@pytest.mark.parametrize("relative", DASHBOARD_FILES)
def test_panels_fit_the_grid_without_overlapping(relative):
    taken: set[tuple[int, int]] = set()
    for panel in _dashboard(relative)["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells
