"""Budget burn: for every budget (org, team, user, key, project, customer, feature, environment, model; daily,
weekly, monthly, quarterly, yearly and rolling; in USD and tokens), how much is spent, where each period will end,
and when the money runs out. Figures come from the processor's ledger-backed budget gauges through
the `scope:*` recording rules, so they are exact and survive processor restarts."""

from __future__ import annotations

from costline.dashboards.config import MixinConfig
from costline.dashboards.layout import build_dashboard
from costline.dashboards.links import BUDGET_BURN_UID
from costline.dashboards.panels import (
    DASHED_LINE,
    DAYS,
    PERCENT,
    USD,
    bargauge_panel,
    query,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from costline.dashboards.promql import BUDGET_FILTER_LABELS, recorded
from costline.dashboards.recording_rules import ELAPSED_DAYS_OF_MONTH, RuleNames

BUDGET_LEGEND = "{{scope}} {{owner}} ({{period}})"
MONTHLY = 'period="monthly"'


def _series(name: str, *matchers: str) -> str:
    return recorded(name, *matchers, labels=BUDGET_FILTER_LABELS)


def _utilization_steps(config: MixinConfig) -> tuple[tuple[str, float | None], ...]:
    return (("green", None), ("orange", config.budget_warning_ratio), ("red", config.budget_exceeded_ratio))


def budgets_over_warning(config: MixinConfig, names: RuleNames):
    return stat_panel(
        f"Budgets at or over {config.budget_warning_ratio:.0%}",
        "How many budgets (any scope and period) have used at least the warning share of their limit.",
        "short",
        query(
            f"count({_series(names.budget_utilization)} >= {config.budget_warning_ratio}) or vector(0)",
            "budgets",
            instant=True,
        ),
        steps=(("green", None), ("orange", 1)),
    ).span(8)


def budgets_exceeded(config: MixinConfig, names: RuleNames):
    return stat_panel(
        "Budgets exceeded",
        "How many budgets (USD and tokens) have spent their whole limit. The guard blocks calls against a spent hard "
        "budget (`mode=\"hard\"`); a soft one is only reported.",
        "short",
        query(
            f"count({_series(names.budget_utilization)} >= {config.budget_exceeded_ratio}) or vector(0)",
            "budgets",
            instant=True,
        ),
        steps=(("green", None), ("red", 1)),
    ).span(8)


def month_elapsed(config: MixinConfig, names: RuleNames):
    return stat_panel(
        "Month elapsed",
        "Share of the (UTC) calendar month gone: compare it with each budget's utilization.",
        PERCENT,
        query(f"{ELAPSED_DAYS_OF_MONTH} / days_in_month()", "elapsed", instant=True),
    ).span(8)


def utilization(config: MixinConfig, names: RuleNames):
    return bargauge_panel(
        "Spent vs limit",
        "Each budget's spend as a share of its limit, now. Orange from the warning threshold, red from the limit.",
        PERCENT,
        query(f"sort_desc({_series(names.budget_utilization)})", BUDGET_LEGEND, instant=True),
        steps=_utilization_steps(config),
        maximum=config.budget_exceeded_ratio,
    ).height(10)


def over_warning_table(config: MixinConfig, names: RuleNames):
    over_warning = f"{_series(names.budget_utilization)} >= {config.budget_warning_ratio}"
    return table_panel(
        f"Who is over {config.budget_warning_ratio:.0%}",
        "Budgets at or above the warning threshold, with their figures.",
        query(over_warning, instant=True),
        query(f"{_series(names.budget_spent)} and {over_warning}", instant=True),
        query(f"{_series(names.budget_limit)} and {over_warning}", instant=True),
        columns={"Value #A": "Used", "Value #B": "Spent", "Value #C": "Limit"},
        units={"Used": PERCENT, "Spent": USD, "Limit": USD},
        sort_by="Used",
    ).height(10)


def burn_down(config: MixinConfig, names: RuleNames):
    # The ideal line: what would remain if the budget were spent evenly over the month.
    ideal = f"{_series(names.budget_limit, MONTHLY)} * (1 - scalar({ELAPSED_DAYS_OF_MONTH} / days_in_month()))"
    return timeseries_panel(
        "Burn-down to month end (monthly budgets)",
        "Remaining monthly budget (solid) against an even spend over the month (dashed: `ideal`). Below the "
        "dashed line means ahead of pace. Set the time range to 'This month' to see the whole month.",
        USD,
        query(_series(names.budget_remaining, MONTHLY), "{{scope}} {{owner}}"),
        query(ideal, "ideal {{scope}} {{owner}}"),
    ).override_by_regexp("^ideal .*", [DASHED_LINE])


def forecast(config: MixinConfig, names: RuleNames):
    return table_panel(
        "Forecast at period end",
        "Linear projection of each calendar budget (daily, weekly, monthly, quarterly, yearly): spend so far / the "
        "elapsed share of its own period, in the processor's time zone. Rolling windows have no end to forecast. "
        "`CostlineBudgetForecastOverrun` fires when the projection passes the limit.",
        query(_series(names.budget_spent), instant=True),
        query(_series(names.budget_forecast_period_end), instant=True),
        query(_series(names.budget_limit), instant=True),
        query(_series(names.budget_forecast_ratio), instant=True),
        columns={
            "Value #A": "Spent so far",
            "Value #B": "Forecast",
            "Value #C": "Limit",
            "Value #D": "Forecast / limit",
        },
        units={"Spent so far": USD, "Forecast": USD, "Limit": USD, "Forecast / limit": PERCENT},
        sort_by="Forecast / limit",
    )


def days_until_exhausted(config: MixinConfig, names: RuleNames):
    return bargauge_panel(
        "Days until exhausted",
        f"Remaining budget divided by the spend rate of the last {config.burn_rate_window}. Budgets that spent "
        "nothing in that window are not listed. Short bars first.",
        DAYS,
        query(f"sort({_series(names.budget_days_until_exhausted)})", BUDGET_LEGEND, instant=True),
        steps=(("red", None), ("orange", 3), ("green", 10)),
    )


def spent_over_time(config: MixinConfig, names: RuleNames):
    return timeseries_panel(
        "Spent over time",
        "Each budget's spend within its period: it drops back to zero when a new day, week, month, quarter or year "
        "starts (a rolling window's moves on the hour).",
        USD,
        query(_series(names.budget_spent), BUDGET_LEGEND),
    ).span(24)


def effective_remaining(config: MixinConfig, names: RuleNames):
    return bargauge_panel(
        "Effective remaining per user and key",
        "What a user or API key can still spend: the smallest remainder over every hard budget above it (key, user, "
        "team, org, and the project where one is declared; every period). The most restrictive budget wins.",
        USD,
        query(f"sort({_series(names.budget_effective_remaining)})", "{{owner}}", instant=True),
        steps=(("red", None), ("orange", 1), ("green", 10)),
    )


def dashboard(config: MixinConfig) -> dict[str, object]:
    names = RuleNames(config)
    return build_dashboard(
        config,
        uid=BUDGET_BURN_UID,
        title="Costline / Budget burn",
        description="Spent vs limit for every budget, burn-down, period-end forecast and days until exhausted.",
        time_from="now/M",
        rows=[
            (
                "Now",
                [
                    budgets_over_warning(config, names),
                    budgets_exceeded(config, names),
                    month_elapsed(config, names),
                    utilization(config, names),
                    over_warning_table(config, names),
                ],
            ),
            ("Where the period ends", [burn_down(config, names), forecast(config, names)]),
            (
                "Runway",
                [
                    days_until_exhausted(config, names),
                    effective_remaining(config, names),
                    spent_over_time(config, names),
                ],
            ),
        ],
    )
