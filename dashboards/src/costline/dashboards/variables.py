"""Dashboard variables: `$datasource`, then `org` -> `team` -> `project` -> `model`, each limited by the ones
before it (choose an org and the team list shows only its teams)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models import dashboard as model

from costline.dashboards import metrics
from costline.dashboards.config import MixinConfig
from costline.dashboards.panels import DATASOURCE
from costline.dashboards.promql import DASHBOARD_FILTER_LABELS, selector, variable_matchers

ALL = ".*"
"""Value of "All": a regex, so `team=~"$team"` also matches series without the label (project budgets)."""


def datasource_variable(config: MixinConfig) -> dashboard.DatasourceVariable:
    return (
        dashboard.DatasourceVariable("datasource")
        .label("Data source")
        .type("prometheus")
        .current(model.VariableOption(selected=True, text=config.datasource_uid, value=config.datasource_uid))
    )


def label_variable(config: MixinConfig, label: str, parents: tuple[str, ...]) -> dashboard.QueryVariable:
    """A multi-value variable listing `label`'s values among series matching the parent variables."""
    # Requests, not cost: every call is counted there, including unpriced models and failed calls.
    series = metrics.REQUESTS + selector(config, *variable_matchers(parents))
    return (
        dashboard.QueryVariable(label)
        .label(label.capitalize())
        .datasource(DATASOURCE)
        .query(f"label_values({series}, {label})")
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(model.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
        .multi(True)
        .include_all(True)
        .all_value(ALL)
        .current(model.VariableOption(selected=True, text="All", value="$__all"))
    )


def filter_variables(config: MixinConfig) -> list:
    """`$datasource` and the chained owner/model variables, in chain order."""
    chained = [
        label_variable(config, label, DASHBOARD_FILTER_LABELS[:position])
        for position, label in enumerate(DASHBOARD_FILTER_LABELS)
    ]
    return [datasource_variable(config), *chained]
