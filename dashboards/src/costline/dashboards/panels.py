"""Shared panel defaults: every dashboard builds its panels through these, so units, legends, colours and the data
source look the same everywhere and a style change is one edit."""

from __future__ import annotations

from grafana_foundation_sdk.builders import bargauge, dashboard, piechart, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import piechart as piechart_model
from grafana_foundation_sdk.models import prometheus as prometheus_model

DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="${datasource}")
"""Every panel queries the data source the `$datasource` variable selects."""

USD = "currencyUSD"
USD_PER_HOUR = "currencyUSD"  # Grafana has no "$/h" unit: titles say "per hour"
PERCENT = "percentunit"
SECONDS = "s"
DAYS = "d"
COUNT = "short"

DASHED_LINE = model.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]})
"""Override property for reference lines (an ideal pace, an alert threshold) drawn beside the real series."""


def thresholds(*steps: tuple[str, float | None]) -> dashboard.ThresholdsConfig:
    return (
        dashboard.ThresholdsConfig()
        .mode(model.ThresholdsMode.ABSOLUTE)
        .steps([model.Threshold(value=value, color=color) for color, value in steps])
    )


def query(expr: str, legend: str = "", *, instant: bool = False, table_format: bool = False) -> prometheus.Dataquery:
    """A Prometheus target. Instant queries are for stats, tables and bar gauges (one value per series)."""
    target = prometheus.Dataquery().expr(expr).legend_format(legend or "__auto")
    if instant:
        target = target.instant()
    else:
        target = target.range()
    if table_format:
        target = target.format(prometheus_model.PromQueryFormat.TABLE)
    return target


def _with_targets(panel, targets: tuple[prometheus.Dataquery, ...]):
    # Stable refIds (A, B, ...) so regenerating a dashboard produces the same JSON.
    for index, target in enumerate(targets):
        panel = panel.with_target(target.ref_id(chr(ord("A") + index)))
    return panel


def timeseries_panel(
    title: str, description: str, unit: str, *targets: prometheus.Dataquery, stacked: bool = False
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .line_width(1)
        .fill_opacity(20 if stacked else 5)
        .show_points(common.VisibilityMode.NEVER)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.RIGHT)
            .show_legend(True)
            .calcs(["mean", "lastNotNull"])
        )
        .tooltip(
            common_builders.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING)
        )
        .span(12)
        .height(8)
    )
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    return _with_targets(panel, targets)


def stat_panel(
    title: str,
    description: str,
    unit: str,
    *targets: prometheus.Dataquery,
    steps: tuple[tuple[str, float | None], ...] = (("blue", None),),
) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .thresholds(thresholds(*steps))
        .color_mode(common.BigValueColorMode.VALUE)
        .graph_mode(common.BigValueGraphMode.NONE)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .span(4)
        .height(4)
    )
    return _with_targets(panel, targets)


def bargauge_panel(
    title: str,
    description: str,
    unit: str,
    *targets: prometheus.Dataquery,
    steps: tuple[tuple[str, float | None], ...] = (("blue", None),),
    maximum: float | None = None,
) -> bargauge.Panel:
    panel = (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .min(0)
        .thresholds(thresholds(*steps))
        .display_mode(common.BarGaugeDisplayMode.GRADIENT)
        .orientation(common.VizOrientation.HORIZONTAL)
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .show_unfilled(True)
        .span(12)
        .height(8)
    )
    if maximum is not None:
        panel = panel.max(maximum)
    return _with_targets(panel, targets)


def table_panel(
    title: str,
    description: str,
    *targets: prometheus.Dataquery,
    columns: dict[str, str] | None = None,
    sort_by: str | None = None,
    units: dict[str, str] | None = None,
) -> table.Panel:
    """A table of instant queries joined on their labels.

    `columns` renames the value columns (`Value #A` -> "Spent"); every other value column keeps its name, and the
    `Time` and `job` columns are hidden.
    """
    renames = dict(columns or {})
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_transformation(model.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            model.DataTransformerConfig(
                id_val="organize",
                options={"excludeByName": {"Time": True, "job": True}, "renameByName": renames, "indexByName": {}},
            )
        )
        .span(12)
        .height(8)
    )
    if sort_by:
        panel = panel.sort_by([common_builders.TableSortByFieldState().display_name(sort_by).desc(True)])
    for column, unit in (units or {}).items():
        panel = panel.override_by_name(column, [model.DynamicConfigValue(id_val="unit", value=unit)])
    return _with_targets(panel, tuple(t.format(prometheus_model.PromQueryFormat.TABLE) for t in targets))


def piechart_panel(title: str, description: str, unit: str, *targets: prometheus.Dataquery) -> piechart.Panel:
    panel = (
        piechart.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .pie_type(piechart_model.PieChartType.DONUT)
        .display_labels([piechart_model.PieChartLabels.PERCENT])
        .reduce_options(common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
        .span(12)
        .height(8)
    )
    return _with_targets(panel, targets)


def row(title: str) -> dashboard.Row:
    return dashboard.Row(title)
