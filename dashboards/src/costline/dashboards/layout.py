"""Assembling a dashboard: shared settings, variables, rows of panels, links between the dashboards, and
stable panel ids, turned into the JSON Grafana imports."""

from __future__ import annotations

import json
from collections.abc import Sequence

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

from costline.dashboards.config import MixinConfig
from costline.dashboards.variables import filter_variables

Rows = Sequence[tuple[str, Sequence[object]]]


def _links(config: MixinConfig) -> dashboard.DashboardLink:
    # One drop-down listing every dashboard tagged like ours, carrying the time range and variables along.
    return (
        dashboard.DashboardLink("Costline")
        .type(model.DashboardLinkType.DASHBOARDS)
        .tags(list(config.dashboard_tags))
        .icon("external link")
        .as_dropdown(True)
        .include_vars(True)
        .keep_time(True)
    )


def build_dashboard(
    config: MixinConfig,
    *,
    uid: str,
    title: str,
    description: str,
    rows: Rows,
    time_from: str = "now-24h",
) -> dict[str, object]:
    builder = (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(list(config.dashboard_tags))
        .editable()
        .timezone(config.dashboard_timezone)
        .refresh(config.dashboard_refresh)
        .time(time_from, "now")
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .link(_links(config))
        .variables(filter_variables(config))
    )
    for row_title, panels in rows:
        builder = builder.with_row(dashboard.Row(row_title))
        for panel in panels:
            builder = builder.with_panel(panel)
    data = json.loads(json.dumps(builder.build(), cls=JSONEncoder, sort_keys=True))
    _number_panels(data)
    return data


def _number_panels(data: dict[str, object]) -> None:
    """Sequential panel ids in layout order: stable across builds, which Grafana needs for links to a panel."""
    for number, panel in enumerate(data.get("panels", []), start=1):  # type: ignore[union-attr]
        panel["id"] = number
    for variable in data.get("templating", {}).get("list", []):  # type: ignore[union-attr]
        # The SDK fills a placeholder uuid; Grafana identifies variables by name.
        variable.pop("id", None)
