"""Recording rules, named `level:metric:operations`, for what both dashboards and alerts reuse.

Levels: `team` = by (org, team), `team_model` = by (org, team, provider, model), `project` = by (org, project),
`model` = by (provider, model), `scope` = one series per budget (its `scope`, `period`, `mode` and owner labels).
"""

from __future__ import annotations

from dataclasses import dataclass

from costline.dashboards import metrics
from costline.dashboards.config import MixinConfig
from costline.dashboards.promql import (
    by,
    increase_with_births,
    owner_label,
    rate_with_births,
    selector,
    without,
    without_replicas,
)

ELAPSED_DAYS_OF_MONTH = "(day_of_month() - 1 + (time() % 86400) / 86400)"
"""Days since the start of the (UTC) month, with the fraction of today; PromQL's calendar functions are UTC."""


ANOMALY_LEVELS: dict[str, tuple[str, ...]] = {
    "team": ("org", "team"),
    "team_feature": ("org", "team", "feature"),
    "team_environment": ("org", "team", "environment"),
}
"""Where `CostlineSpendAnomaly` compares spend with its own baseline: each team, each feature and each environment
of a team (features and environments are the processor's optional metric labels, on by default)."""


@dataclass(frozen=True)
class RuleNames:
    """The recorded series' names for one config (windows are part of the names)."""

    config: MixinConfig

    def team_cost_rate(self, window: str) -> str:
        return self.cost_rate("team", window)

    def cost_rate(self, level: str, window: str) -> str:
        return f"{level}:{metrics.without_total(metrics.COST)}:rate{window}"

    @property
    def team_model_cost_increase1h(self) -> str:
        return f"team_model:{metrics.without_total(metrics.COST)}:increase1h"

    @property
    def project_cost_rate(self) -> str:
        return f"project:{metrics.without_total(metrics.COST)}:rate{self.config.short_rate_window}"

    @property
    def model_cost_rate(self) -> str:
        return f"model:{metrics.without_total(metrics.COST)}:rate{self.config.short_rate_window}"

    @property
    def model_requests_rate(self) -> str:
        return f"model:{metrics.without_total(metrics.REQUESTS)}:rate{self.config.short_rate_window}"

    @property
    def model_error_ratio(self) -> str:
        return f"model:costline_request_errors:ratio_rate{self.config.short_rate_window}"

    @property
    def model_ttft_bucket_rate(self) -> str:
        return f"model:{metrics.TIME_TO_FIRST_TOKEN}_bucket:rate{self.config.short_rate_window}"

    @property
    def model_unpriced(self) -> str:
        return f"model:{metrics.PERIOD_UNPRICED_REQUESTS}:sum"

    @property
    def budget_warning_threshold(self) -> str:
        return "scope:costline_budget_warning:ratio"

    @property
    def budget_spent(self) -> str:
        return f"scope:{metrics.BUDGET_SPENT}:max"

    @property
    def budget_limit(self) -> str:
        return f"scope:{metrics.BUDGET_LIMIT}:max"

    @property
    def budget_remaining(self) -> str:
        return f"scope:{metrics.BUDGET_REMAINING}:max"

    @property
    def budget_effective_remaining(self) -> str:
        return f"scope:{metrics.BUDGET_EFFECTIVE_REMAINING}:max"

    @property
    def budget_utilization(self) -> str:
        return "scope:costline_budget_utilization:ratio"

    @property
    def budget_month_to_date(self) -> str:
        return f"scope:{metrics.BUDGET_SPENT}:month_to_date"

    @property
    def budget_forecast(self) -> str:
        return f"scope:{metrics.BUDGET_SPENT}:forecast_month_end"

    @property
    def budget_period_elapsed(self) -> str:
        return "period:costline_budget_period_elapsed:seconds"

    @property
    def budget_period_length(self) -> str:
        return "period:costline_budget_period_length:seconds"

    @property
    def budget_forecast_period_end(self) -> str:
        return f"scope:{metrics.BUDGET_SPENT}:forecast_period_end"

    @property
    def budget_tokens_utilization(self) -> str:
        return "scope:costline_budget_tokens_utilization:ratio"

    @property
    def budget_forecast_ratio(self) -> str:
        return "scope:costline_budget_forecast_utilization:ratio"

    @property
    def budget_burn_rate(self) -> str:
        return f"scope:{metrics.BUDGET_SPENT}:rate{self.config.burn_rate_window}"

    @property
    def budget_days_until_exhausted(self) -> str:
        return f"scope:costline_budget_days_until_exhausted:rate{self.config.burn_rate_window}"


def _record(name: str, expr: str) -> dict[str, str]:
    return {"record": name, "expr": expr}


def _cost_rules(config: MixinConfig, names: RuleNames) -> list[dict[str, str]]:
    cost = metrics.COST + selector(config)
    short = config.short_rate_window
    # Every rate and increase counts series born within its window in full (see promql.increase_with_births): a
    # new team's first burst is spend like any other. One rate per distinct window: the dashboards' short window,
    # the anomaly's recent window and its baseline; per team, and per feature and environment of a team for the
    # anomaly alert (series without that label are left out there: the team level has them).
    windows = dict.fromkeys((short, config.anomaly_window, config.anomaly_baseline_window))
    rules = [_record(names.team_cost_rate(w), f"sum {by('org', 'team')} {rate_with_births(cost, w)}") for w in windows]
    for level, labels in ANOMALY_LEVELS.items():
        if level == "team":
            continue
        labelled = metrics.COST + selector(config, f'{labels[-1]}!=""')
        for w in dict.fromkeys((config.anomaly_window, config.anomaly_baseline_window)):
            rules.append(_record(names.cost_rate(level, w), f"sum {by(*labels)} {rate_with_births(labelled, w)}"))
    rules += [
        _record(
            names.team_model_cost_increase1h,
            f"sum {by('org', 'team', 'provider', 'model')} {increase_with_births(cost, '1h')}",
        ),
        _record(names.project_cost_rate, f"sum {by('org', 'project')} {rate_with_births(cost, short)}"),
        _record(names.model_cost_rate, f"sum {by('provider', 'model')} {rate_with_births(cost, short)}"),
    ]
    return rules


def _request_rules(config: MixinConfig, names: RuleNames) -> list[dict[str, str]]:
    window = config.short_rate_window
    requests = metrics.REQUESTS + selector(config)
    errors = metrics.REQUESTS + selector(config, 'outcome="error"')
    model = by("provider", "model")
    requests_rate = f"sum {model} {rate_with_births(requests, window)}"
    return [
        _record(
            names.model_requests_rate, f"sum {by('provider', 'model', 'outcome')} {rate_with_births(requests, window)}"
        ),
        # `or ... * 0`: a model with requests but no error series yet has an error ratio of 0, not no ratio.
        _record(
            names.model_error_ratio,
            f"(sum {model} {rate_with_births(errors, window)} or {requests_rate} * 0) / {requests_rate}",
        ),
        _record(
            names.model_ttft_bucket_rate,
            f"sum {by('provider', 'model', 'le')} (rate({metrics.TIME_TO_FIRST_TOKEN}_bucket{selector(config)}[{window}]))",
        ),
        # From the ledger (the same on every replica): what waits for a price this month; 0 once repriced.
        _record(
            names.model_unpriced,
            f"sum {model} ({without_replicas(config, metrics.PERIOD_UNPRICED_REQUESTS + selector(config))})",
        ),
    ]


def _budget_rules(config: MixinConfig, names: RuleNames) -> list[dict[str, str]]:
    # The budget gauges come from the shared ledger: every replica reports the same figure, so take one of them.
    replicas = without(config.replica_labels)
    monthly = 'period="monthly"'
    return [
        # `owner` (e.g. "acme/marketing") gives legends and alert texts one label to print for any scope.
        _record(names.budget_spent, owner_label(f"max {replicas} ({metrics.BUDGET_SPENT}{selector(config)})")),
        _record(names.budget_limit, owner_label(f"max {replicas} ({metrics.BUDGET_LIMIT}{selector(config)})")),
        _record(names.budget_remaining, owner_label(f"max {replicas} ({metrics.BUDGET_REMAINING}{selector(config)})")),
        _record(
            names.budget_effective_remaining,
            owner_label(f"max {replicas} ({metrics.BUDGET_EFFECTIVE_REMAINING}{selector(config)})"),
        ),
        # Token budgets: their utilization, for the same warning and exceeded alerts.
        _record(
            names.budget_tokens_utilization,
            owner_label(f"max {replicas} ({metrics.BUDGET_SPENT_TOKENS}{selector(config)})")
            + " / "
            + owner_label(f"(max {replicas} ({metrics.BUDGET_LIMIT_TOKENS}{selector(config)}) > 0)"),
        ),
        # `> 0`: a zero limit means "no budget", and dividing by it would report +Inf utilization.
        # A token budget's utilization joins the USD ones with `unit="tokens"`, so warning and exceeded cover both.
        _record(
            names.budget_utilization,
            f"{names.budget_spent} / ({names.budget_limit} > 0)"
            f' or label_replace({names.budget_tokens_utilization}, "unit", "tokens", "", "")',
        ),
        # Each budget's warning ratio: its own from `budget_warning_ratios`, else the default (`or` keeps the left
        # side's series, so an override wins over the default for the same budget).
        _record(names.budget_warning_threshold, _warning_thresholds(config, names)),
        _record(names.budget_month_to_date, f"{names.budget_spent}{{{monthly}}}"),
        # Linear projection: month-to-date spend / elapsed days * days in the month. Elapsed time is clamped to one
        # hour so the first minutes of a month do not divide by ~0.
        _record(
            names.budget_forecast,
            f"{names.budget_month_to_date} * scalar(days_in_month() / clamp_min({ELAPSED_DAYS_OF_MONTH}, 1 / 24))",
        ),
        # Every calendar period's forecast: spend so far / the elapsed share of *that* period (daily, weekly,
        # monthly, quarterly, yearly), both from the processor, which knows the configured time zone (PromQL's
        # calendar is UTC); it reports at least an hour elapsed. A rolling window has no end to forecast. A
        # processor of an earlier release reports no period gauges: its monthly budgets keep the UTC projection.
        _record(names.budget_period_elapsed,
                f"max {by('period')} ({metrics.BUDGET_PERIOD_ELAPSED}{selector(config)})"),
        _record(names.budget_period_length,
                f"max {by('period')} ({metrics.BUDGET_PERIOD_LENGTH}{selector(config)})"),
        _record(
            names.budget_forecast_period_end,
            f"{names.budget_spent} * on (period) group_left () ({names.budget_period_length} / "
            f"clamp_min({names.budget_period_elapsed}, 3600)) or {names.budget_forecast}",
        ),
        _record(names.budget_forecast_ratio, f"{names.budget_forecast_period_end} / ({names.budget_limit} > 0)"),
        # rate() on the spent gauge is deliberate: it only grows within a period and drops to ~0 when the next one
        # starts, which is exactly a counter reset, so the period boundary does not produce a negative burn rate.
        _record(
            names.budget_burn_rate,
            owner_label(f"max {replicas} (rate({metrics.BUDGET_SPENT}{selector(config)}[{config.burn_rate_window}]))"),
        ),
        _record(
            names.budget_days_until_exhausted,
            f"clamp_min({names.budget_remaining}, 0) / ({names.budget_burn_rate} * 86400 > 0)",
        ),
    ]


def _warning_thresholds(config: MixinConfig, names: RuleNames) -> str:
    default = f"0 * {names.budget_utilization} + {config.budget_warning_ratio}"
    overrides = [
        f'0 * {names.budget_utilization}{{scope="{scope}", owner="{owner}"}} + {ratio}'
        for key, ratio in sorted(config.budget_warning_ratios.items())
        for scope, _, owner in [key.partition(" ")]
    ]
    return " or ".join(f"({part})" for part in (*overrides, default)) if overrides else default


def recording_rule_groups(config: MixinConfig) -> list[dict[str, object]]:
    names = RuleNames(config)
    groups: list[dict[str, object]] = [
        {"name": "costline.cost.rules", "rules": _cost_rules(config, names)},
        {"name": "costline.requests.rules", "rules": _request_rules(config, names)},
        {"name": "costline.budgets.rules", "rules": _budget_rules(config, names)},
    ]
    return [with_interval(config, group) for group in groups]


def with_interval(config: MixinConfig, group: dict[str, object]) -> dict[str, object]:
    """The group with the configured evaluation interval (name, interval, rules: the order people read them in)."""
    if not config.rule_evaluation_interval:
        return group
    return {"name": group["name"], "interval": config.rule_evaluation_interval, "rules": group["rules"]}
