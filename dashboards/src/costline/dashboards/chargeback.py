"""Chargeback: what each team will be charged for this month, from which components, against last month, and what
its business outcomes cost.

Charges come from the processor's ledger-backed gauges (`costline_chargeback_usd`: the open month's statement per
team and component, the same cents as `costline chargeback`; they exist only when a `chargeback:` section is
configured). Cost per outcome divides the token cost counter by the outcome counter over the dashboard's range, both
with births counted (`increase_with_births`): outcome and cost series are born with their first counts already in.
Outcomes carry org, team and feature only, so the project and model variables do not narrow these panels.
"""

from __future__ import annotations

from costline.dashboards import metrics
from costline.dashboards.config import MixinConfig
from costline.dashboards.layout import build_dashboard
from costline.dashboards.links import CHARGEBACK_UID
from costline.dashboards.panels import (
    DASHED_LINE,
    PERCENT,
    USD,
    bargauge_panel,
    query,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from costline.dashboards.promql import by, filtered, increase_with_births, selector, without_replicas

RANGE = "$__range"
RATE = "$__rate_interval"
TEAM = ("org", "team")
"""The labels every series of this dashboard has, and so the variables that filter it."""


def _charges(config: MixinConfig, gauge: str = metrics.CHARGEBACK) -> str:
    """A ledger-backed chargeback gauge for the selected teams, one series per figure across replicas."""
    return without_replicas(config, filtered(config, gauge, labels=TEAM))


def _per_outcome(config: MixinConfig, labels: tuple[str, ...]) -> str:
    """Token cost per outcome within the range, per `labels` and outcome name: the cost of the group's calls divided
    by each kind of outcome it reported (`on` the group's labels, one result per outcome name)."""
    cost = increase_with_births(filtered(config, metrics.COST, labels=TEAM), RANGE)
    outcomes = increase_with_births(filtered(config, metrics.OUTCOMES, labels=TEAM), RANGE)
    return (f"sum {by(*labels)} ({cost}) / on ({', '.join(labels)}) group_right () "
            f"(sum {by(*labels, 'name')} ({outcomes}) > 0)")


def month_to_date(config: MixinConfig):
    return stat_panel(
        "Month-to-date charges",
        "What the selected teams will be charged for this month so far (the processor's time zone): every component "
        "of the open statement, rounded to the cent as `costline chargeback` rounds it.",
        USD,
        query(f"sum({_charges(config)})", "charges", instant=True),
    ).time_from("now/M")


def last_month(config: MixinConfig):
    return stat_panel(
        "Last month",
        "The selected teams' statement total for the previous month (the frozen statement once it is closed).",
        USD,
        query(f"sum({_charges(config, metrics.CHARGEBACK_LAST_PERIOD)})", "last month", instant=True),
    )


def against_last_month(config: MixinConfig):
    return stat_panel(
        "Month-to-date against last month",
        "This month's charges so far as a share of last month's total: above 100 % before the month ends means the "
        "team is already charged more than last month. Empty when the teams were charged nothing last month.",
        PERCENT,
        query(f"sum({_charges(config)}) / (sum({_charges(config, metrics.CHARGEBACK_LAST_PERIOD)}) > 0)",
              "share", instant=True),
        steps=(("green", None), ("orange", 0.8), ("red", 1.0)),
    )


def components(config: MixinConfig):
    return table_panel(
        "Charges by team and component",
        "Each team's open statement, one row per component: token cost, markup, platform fee, value-based charges, "
        "shared costs, its share of untagged spend and corrections of closed months. A team's rows add up to its "
        "total.",
        query(f"sum {by('org', 'team', 'component')} ({_charges(config)})", instant=True),
        columns={"Value": "Charged"},
        units={"Charged": USD},
        sort_by="Charged",
    )


def charges_over_time(config: MixinConfig):
    return timeseries_panel(
        "Month-to-date charges against last month's total",
        "Each team's running charges this month, and (dashed) what it was charged for the whole of last month.",
        USD,
        query(f"sum {by(*TEAM)} ({_charges(config)})", "{{team}}"),
        query(f"sum {by(*TEAM)} ({_charges(config, metrics.CHARGEBACK_LAST_PERIOD)})", "last month: {{team}}"),
    ).override_by_regexp("^last month: .*", [DASHED_LINE])


def cost_per_outcome_by_team(config: MixinConfig):
    return bargauge_panel(
        "Cost per outcome by team",
        "Token cost of the team's calls within the time range divided by the outcomes it reported "
        "(`costline.outcome()`), per outcome name: what a resolved ticket costs in model calls.",
        USD,
        query(f"sort_desc({_per_outcome(config, TEAM)})", "{{team}} · {{name}}", instant=True),
    )


def cost_per_outcome_by_feature(config: MixinConfig):
    return table_panel(
        "Cost per outcome by feature",
        "The same per feature: the cost of the feature's calls divided by the outcomes reported for it. Needs the "
        "processor's `metrics.feature_label` (on by default); without it no cost series carries `feature`.",
        query(f"sort_desc({_per_outcome(config, (*TEAM, 'feature'))})", instant=True),
        columns={"Value": "Cost per outcome"},
        units={"Cost per outcome": USD},
        sort_by="Cost per outcome",
    )


def cost_per_outcome_over_time(config: MixinConfig):
    cost = f"sum {by(*TEAM)} (rate({filtered(config, metrics.COST, labels=TEAM)}[{RATE}]))"
    outcomes = f"sum {by(*TEAM, 'name')} (rate({filtered(config, metrics.OUTCOMES, labels=TEAM)}[{RATE}]))"
    return timeseries_panel(
        "Cost per outcome over time",
        "Token cost rate divided by outcome rate, per team and outcome name (a moving figure; the bar gauge has the "
        "exact one for the range).",
        USD,
        query(f"{cost} / on (org, team) group_right () ({outcomes} > 0)", "{{team}} · {{name}}"),
    )


def customer_margins(config: MixinConfig):
    return table_panel(
        "Customers: cost and margin this month",
        "Per customer (the `customer` owner), this month so far: cost (token cost and share of the self-hosted "
        "fleets) and margin (revenue from `chargeback.customers.revenue` less cost), the figures of `costline "
        "customers`. Empty without revenue or customers.",
        query(f"sum by (customer) ({without_replicas(config, metrics.CUSTOMER_COST + selector(config))})", "cost",
              instant=True),
        query(f"sum by (customer) ({without_replicas(config, metrics.CUSTOMER_MARGIN + selector(config))})",
              "margin", instant=True),
        columns={"Value #A": "Cost", "Value #B": "Margin"},
        units={"Cost": USD, "Margin": USD},
        sort_by="Margin",
    )


def dashboard(config: MixinConfig) -> dict[str, object]:
    return build_dashboard(
        config,
        uid=CHARGEBACK_UID,
        title="Costline / Chargeback",
        description="What each team is charged this month, by component, against last month, and what its business "
        "outcomes cost.",
        time_from="now/M",
        rows=[
            ("This month", [month_to_date(config), last_month(config), against_last_month(config)]),
            ("Components", [components(config), charges_over_time(config)]),
            (
                "Cost per outcome",
                [cost_per_outcome_by_team(config), cost_per_outcome_by_feature(config),
                 cost_per_outcome_over_time(config)],
            ),
            ("Customers", [customer_margins(config)]),
        ],
    )
