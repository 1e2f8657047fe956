"""Every PromQL expression the mixin ships, with Grafana's variables substituted the way Grafana would."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

GRAFANA_VARIABLES = {
    # Long enough to span the whole workload (which runs for well under a minute), short enough to show its rate.
    "$__rate_interval": "15s",
    "$__interval": "5s",
    "$__range": "5m",
}
ALL = ".*"  # what the org/team/project/model variables send when "All" is selected (their allValue)


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    expr: str
    instant: bool

    def __str__(self) -> str:
        return f"{self.dashboard} / {self.panel} / {self.ref_id}"


@dataclass(frozen=True)
class VariableQuery:
    dashboard: str
    name: str
    selector: str  # label_values(<selector>, <label>), Grafana variables left in: substitute() at use
    label: str


def substitute(expr: str, variables: dict[str, str] | None = None) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    values = variables or {}
    # $org, ${org}: the dashboard's own variables, "All" unless given.
    return re.sub(r"\$\{?(\w+)\}?", lambda m: values.get(m.group(1), ALL), expr)


def panel_queries(dashboard_files: list[Path]) -> list[PanelQuery]:
    queries = []
    for path in dashboard_files:
        dashboard = json.loads(path.read_text("utf-8"))
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                queries.append(
                    PanelQuery(
                        dashboard["title"],
                        panel["title"],
                        target["refId"],
                        substitute(target["expr"]),
                        bool(target.get("instant")),
                    )
                )
    return queries


def variable_queries(dashboard_files: list[Path]) -> list[VariableQuery]:
    queries = []
    for path in dashboard_files:
        dashboard = json.loads(path.read_text("utf-8"))
        for variable in dashboard["templating"]["list"]:
            if variable["type"] != "query":
                continue
            match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["query"])
            assert match, f"{dashboard['title']}: ${variable['name']} is not label_values(selector, label)"
            queries.append(
                VariableQuery(dashboard["title"], variable["name"], match.group(1), match.group(2))
            )
    return queries


def rule_expressions(rule_files: list[Path]) -> dict[str, str]:
    """Rule name -> expression, for every recording and alerting rule."""
    expressions = {}
    for path in rule_files:
        for group in yaml.safe_load(path.read_text("utf-8"))["groups"]:
            for rule in group["rules"]:
                expressions[rule.get("record") or rule["alert"]] = rule["expr"]
    return expressions
