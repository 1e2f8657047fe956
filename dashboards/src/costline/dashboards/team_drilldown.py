"""Team drill-down: from `$team` down to its projects, users and API keys, which models it uses, and where a
cheaper model already used for the same kind of call would have cost less.

User and key break-downs need the processor's optional `user` and `key` metric labels (off by default, because
their values are unbounded): without them those panels show one row with an empty name, and the ledger
(`costline usage --group-by user,key`) has the exact split. Budgets per user and key are always shown.
"""

from __future__ import annotations

from costline.dashboards import metrics
from costline.dashboards.config import MixinConfig
from costline.dashboards.layout import build_dashboard
from costline.dashboards.links import TEAM_DRILLDOWN_UID
from costline.dashboards.panels import (
    COUNT,
    DASHED_LINE,
    PERCENT,
    USD,
    USD_PER_HOUR,
    bargauge_panel,
    piechart_panel,
    query,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from costline.dashboards.promql import BUDGET_FILTER_LABELS, by, filtered, increase_with_births, recorded
from costline.dashboards.recording_rules import RuleNames

RANGE = "$__range"
RATE = "$__rate_interval"
CALL_KIND = ("operation", "provider", "model")
"""What "the same kind of call" means for model comparisons: the same operation (chat, embeddings, ...)."""


def _cost(config: MixinConfig) -> str:
    return filtered(config, metrics.COST)


def _spent(config: MixinConfig, labels: tuple[str, ...]) -> str:
    return f"sum {by(*labels)} ({increase_with_births(_cost(config), RANGE)})"


def team_spend(config: MixinConfig):
    return stat_panel(
        "Team spend in selected range",
        "Cost of the selected team(s) within the time range.",
        USD,
        query(f"sum({increase_with_births(_cost(config), RANGE)})", "spend", instant=True),
    ).span(8)


def share_of_org(config: MixinConfig):
    org_cost = filtered(config, metrics.COST, labels=("org",))
    return stat_panel(
        "Share of org spend",
        "The selected team(s)' part of their organisation's spend within the time range.",
        PERCENT,
        query(
            f"sum({increase_with_births(_cost(config), RANGE)}) / sum({increase_with_births(org_cost, RANGE)})",
            "share",
            instant=True,
        ),
    ).span(8)


def team_requests(config: MixinConfig):
    return stat_panel(
        "Requests in selected range",
        "Calls made by the selected team(s).",
        COUNT,
        query(f"sum({increase_with_births(filtered(config, metrics.REQUESTS), RANGE)})", "requests", instant=True),
    ).span(8)


def hierarchy(config: MixinConfig):
    return table_panel(
        "Team → project → user → key",
        "Spend per team, project, user and API key within the time range (user and key need the processor's "
        "optional `user`/`key` metric labels; otherwise they are empty).",
        query(_spent(config, ("team", "project", "user", "key")), instant=True),
        columns={"Value": "Spend"},
        units={"Spend": USD},
        sort_by="Spend",
    )


def spend_by_project(config: MixinConfig):
    return timeseries_panel(
        "Spend by project (USD per hour)",
        "The team's spend rate per project, stacked.",
        USD_PER_HOUR,
        query(f"sum {by('team', 'project')} (rate({_cost(config)}[{RATE}])) * 3600", "{{team}} · {{project}}"),
        stacked=True,
    )


def spend_by_user(config: MixinConfig):
    return bargauge_panel(
        f"Top {config.top_n} users",
        "Users of the team who spent most within the time range (needs the optional `user` metric label).",
        USD,
        query(f"topk({config.top_n}, {_spent(config, ('user',))})", "{{user}}", instant=True),
    )


def spend_by_key(config: MixinConfig):
    return bargauge_panel(
        f"Top {config.top_n} API keys",
        "API key fingerprints (or their registered names) that spent most within the time range (needs the "
        "optional `key` metric label).",
        USD,
        query(f"topk({config.top_n}, {_spent(config, ('user', 'key'))})", "{{key}} ({{user}})", instant=True),
    )


def member_budgets(config: MixinConfig, names: RuleNames):
    return bargauge_panel(
        "User and key budgets",
        "Utilization of every user and key budget in the team (ledger figures, no optional labels needed).",
        PERCENT,
        query(
            "sort_desc(" + recorded(names.budget_utilization, 'scope=~"user|key"', labels=BUDGET_FILTER_LABELS) + ")",
            "{{scope}} {{owner}} ({{period}})",
            instant=True,
        ),
        steps=(("green", None), ("orange", config.budget_warning_ratio), ("red", config.budget_exceeded_ratio)),
        maximum=config.budget_exceeded_ratio,
    )


def model_mix_cost(config: MixinConfig):
    return piechart_panel(
        "Model mix by spend",
        "Which models the team's money went to within the time range.",
        USD,
        query(_spent(config, ("provider", "model")), "{{provider}}/{{model}}", instant=True),
    )


def model_mix_requests(config: MixinConfig):
    return piechart_panel(
        "Model mix by requests",
        "Which models the team calls most: a model with a large request share but a small spend share is cheap.",
        COUNT,
        query(
            f"sum {by('provider', 'model')} ({increase_with_births(filtered(config, metrics.REQUESTS), RANGE)})",
            "{{provider}}/{{model}}",
            instant=True,
        ),
    )


def cheaper_model_opportunities(config: MixinConfig):
    # Cost per token of every model the org uses, per operation; the cheapest one per operation is the candidate.
    org_cost = filtered(config, metrics.COST, labels=("org",))
    org_tokens = filtered(config, metrics.TOKENS, labels=("org",))
    per_kind = by(*CALL_KIND)
    org_cost_per_token = f"sum {per_kind} ({increase_with_births(org_cost, RANGE)}) / sum {per_kind} ({increase_with_births(org_tokens, RANGE)})"
    cheapest = (
        f'label_replace(bottomk by (operation) (1, {org_cost_per_token} > 0), "cheaper_model", "$1", "model", "(.*)")'
    )
    team_cost = f"sum {per_kind} ({increase_with_births(_cost(config), RANGE)})"
    team_tokens = f"sum {per_kind} ({increase_with_births(filtered(config, metrics.TOKENS), RANGE)})"
    # (team's cost per token - cheapest cost per token) x team's tokens: what the same tokens would have saved.
    saving = (
        f"(({team_cost} / {team_tokens}) - on (operation) group_left (cheaper_model) {cheapest})"
        f" * ignoring (cheaper_model) group_left {team_tokens} > 0"
    )
    return table_panel(
        "Cheaper-model opportunities",
        "For each model the team uses: what its tokens would have cost on the cheapest model the organisation "
        "already uses for the same operation, subtracted from what they did cost. An upper bound — a cheaper model "
        "is not always good enough — but a list of where to try one first.",
        query(f"sort_desc({saving})", instant=True),
        columns={"Value": "Potential saving", "cheaper_model": "Cheapest model for this operation"},
        units={"Potential saving": USD},
        sort_by="Potential saving",
    )


def spend_rate_vs_baseline(config: MixinConfig, names: RuleNames):
    # The same recorded series `CostlineSpendAnomaly` compares, so the panel shows what the alert sees.
    team = ("org", "team")
    recent = recorded(names.team_cost_rate(config.anomaly_window), labels=team)
    baseline = recorded(names.team_cost_rate(config.anomaly_baseline_window), labels=team)
    return timeseries_panel(
        "Spend rate vs its baseline (USD per hour)",
        f"The team's spend rate over the last {config.anomaly_window} against its {config.anomaly_baseline_window} "
        f"average; `CostlineSpendAnomaly` fires above {config.anomaly_factor:g}x the average (dashed) once the "
        f"team spends at least ${config.anomaly_min_usd_per_hour:g}/h.",
        USD_PER_HOUR,
        query(f"{recent} * 3600", "{{team}} last " + config.anomaly_window),
        query(f"{baseline} * 3600", "{{team}} " + config.anomaly_baseline_window + " average"),
        query(f"{config.anomaly_factor} * {baseline} * 3600", "alert above: {{team}}"),
    ).override_by_regexp("^alert above: .*", [DASHED_LINE])


def hourly_spend_by_model(config: MixinConfig, names: RuleNames):
    return timeseries_panel(
        "Hourly spend by model (recorded)",
        "Spend per hour per model from the `team_model` recording rule: cheap to draw over weeks.",
        USD,
        query(
            f"sum by (team, model) ({recorded(names.team_model_cost_increase1h, labels=('org', 'team', 'model'))})",
            "{{team}} · {{model}}",
        ),
        stacked=True,
    ).interval("1h")


def dashboard(config: MixinConfig) -> dict[str, object]:
    names = RuleNames(config)
    return build_dashboard(
        config,
        uid=TEAM_DRILLDOWN_UID,
        title="Costline / Team drill-down",
        description="One team's spend by project, user and API key, its model mix and cheaper-model opportunities.",
        time_from="now-7d",
        rows=[
            ("$team", [team_spend(config), share_of_org(config), team_requests(config)]),
            (
                "Who in the team",
                [hierarchy(config), spend_by_project(config), spend_by_user(config), spend_by_key(config)],
            ),
            ("Budgets and pace", [member_budgets(config, names), spend_rate_vs_baseline(config, names)]),
            (
                "Models",
                [
                    model_mix_cost(config),
                    model_mix_requests(config),
                    cheaper_model_opportunities(config),
                    hourly_spend_by_model(config, names),
                ],
            ),
        ],
    )
