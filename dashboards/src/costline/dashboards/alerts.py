"""Alerting rules. Every alert carries `severity`, a `summary` and a `description` that name the owner and the
figures, a `dashboard_url` that opens the right dashboard with its variables set, and a `runbook_url`."""

from __future__ import annotations

from costline.dashboards import links, metrics
from costline.dashboards.config import MixinConfig
from costline.dashboards.promql import by, increase_with_births, seconds, selector, without_replicas
from costline.dashboards.recording_rules import ANOMALY_LEVELS, ELAPSED_DAYS_OF_MONTH, RuleNames, with_interval

OWNER = "{{ $labels.scope }} {{ $labels.owner }}"
"""Names a budget's owner from its labels: `team acme/marketing`, `key acme/engineering/alice/alice-laptop`,
`project campaigns`."""

SAME_SERIES = (
    '{{ $selector := "" }}{{ range $label, $labelValue := $labels }}{{ if ne $label "__name__" }}'
    '{{ $selector = printf "%s%s=%q," $selector $label $labelValue }}{{ end }}{{ end }}'
)
"""Builds `$selector`, a label matcher for exactly the alerting series, so a template can query a sibling
recording rule of the same budget (the limit of the budget whose utilization fired)."""


def _usd_of(series: str, decimals: int = 2) -> str:
    """Template text printing the USD value of the sibling `series` of the alerting budget (needs SAME_SERIES)."""
    return (
        f'{{{{ with printf "{series}{{%s}}" $selector | query }}}}'
        f'${{{{ . | first | value | printf "%.{decimals}f" }}}}{{{{ end }}}}'
    )


def _percent_of(series: str) -> str:
    """Template text printing the sibling `series` of the alerting budget as a percentage (needs SAME_SERIES)."""
    return f'{{{{ with printf "{series}{{%s}}" $selector | query }}}}{{{{ . | first | value | humanizePercentage }}}}{{{{ end }}}}'


def _alert(config: MixinConfig, name: str, expr: str, summary: str, description: str, dashboard: str) -> dict:
    return {
        "alert": name,
        "expr": expr,
        "for": config.alert_for[name],
        "labels": {"severity": config.alert_severity[name]},
        "annotations": {
            "summary": summary,
            "description": description,
            "dashboard_url": dashboard,
            "runbook_url": links.runbook_url(config, name),
        },
    }


def _budget_dashboard(config: MixinConfig) -> str:
    return links.alert_dashboard_url(config, links.BUDGET_BURN_UID, "org", "team", "project")


def budget_warning(config: MixinConfig, names: RuleNames) -> dict:
    # Each budget against its own warning ratio (per-scope overrides in `budget_warning_ratios`); stops below the
    # exceeded ratio, so one budget is either "warning" or "exceeded", never paged twice.
    expr = f"{names.budget_utilization} >= {names.budget_warning_threshold} < {config.budget_exceeded_ratio}"
    return _alert(
        config,
        "CostlineBudgetWarning",
        expr,
        f"{OWNER} has used {{{{ $value | humanizePercentage }}}} of its {{{{ $labels.period }}}} budget.",
        SAME_SERIES + f"{OWNER} has spent {_usd_of(names.budget_spent)} of its {{{{ $labels.period }}}} budget of "
        f"{_usd_of(names.budget_limit)} ({{{{ $value | humanizePercentage }}}}; warning at "
        f"{_percent_of(names.budget_warning_threshold)}).",
        _budget_dashboard(config),
    )


def budget_exceeded(config: MixinConfig, names: RuleNames) -> dict:
    return _alert(
        config,
        "CostlineBudgetExceeded",
        f"{names.budget_utilization} >= {config.budget_exceeded_ratio}",
        f"{OWNER} is over its {{{{ $labels.period }}}} budget ({{{{ $value | humanizePercentage }}}}).",
        SAME_SERIES + f"{OWNER} has spent {_usd_of(names.budget_spent)} against a {{{{ $labels.period }}}} budget of "
        f"{_usd_of(names.budget_limit)} ({{{{ $value | humanizePercentage }}}}). "
        # The processor never blocks; an app running the guard in block mode is refused calls against a spent hard
        # budget (a series without `mode`, from an earlier release, is a hard one), never against a soft one.
        '{{ if eq $labels.mode "soft" }}A soft budget: calls are not blocked, only warned about.{{ else }}Apps '
        "running the guard in block mode are refused further calls against it.{{ end }} Decide whether to raise "
        "the budget or stop the spend.",
        _budget_dashboard(config),
    )


def budget_forecast_overrun(config: MixinConfig, names: RuleNames) -> dict:
    exceeded = f"({names.budget_utilization} >= {config.budget_exceeded_ratio})"  # already paged as exceeded
    min_s = int(config.forecast_min_elapsed_days * 86400)
    expr = (
        f"({names.budget_forecast_ratio} > 1) unless {exceeded}"
        f" and on (period) ({names.budget_period_elapsed} >= {min_s})"
        # A processor of an earlier release reports no period gauges: its monthly budgets, on the UTC month.
        f" or ({names.budget_forecast_ratio}{{period=\"monthly\"}} > 1) unless {exceeded}"
        f" unless on (period) {names.budget_period_elapsed}"
        f" and on () ({ELAPSED_DAYS_OF_MONTH} >= {config.forecast_min_elapsed_days})"
    )
    period = "{{ $labels.period }}"
    return _alert(
        config,
        "CostlineBudgetForecastOverrun",
        expr,
        f"{OWNER} is on track to exceed its {period} budget.",
        SAME_SERIES
        + f"At its pace so far {OWNER} will spend about {_usd_of(names.budget_forecast_period_end, 0)} by the end "
        f"of the {period} period, {{{{ $value | humanizePercentage }}}} of its {period} budget of "
        f"{_usd_of(names.budget_limit)} (spent so far: {_usd_of(names.budget_spent)}).",
        _budget_dashboard(config),
    )


def spend_anomaly(config: MixinConfig, names: RuleNames) -> list[dict]:
    """One rule per level of `ANOMALY_LEVELS` (team; feature and environment of a team), one alert name: the
    labels say which level fired, and routes and silences that match on org and team catch all of them."""
    return [_spend_anomaly(config, names, level, labels) for level, labels in ANOMALY_LEVELS.items()]


def _spend_anomaly(config: MixinConfig, names: RuleNames, level: str, labels: tuple[str, ...]) -> dict:
    recent = names.cost_rate(level, config.anomaly_window)
    baseline = names.cost_rate(level, config.anomaly_baseline_window)
    expr = (
        f"{recent} > {config.anomaly_factor} * {baseline}"
        f" and {recent} * 3600 >= {config.anomaly_min_usd_per_hour}"
        # Only owners that already spent a baseline window ago: a brand-new one has no baseline to be far above
        # (its rate over a day is its first hour's spend / 24, which would always look like a 24x jump).
        f" and {baseline} offset {config.anomaly_baseline_window}"
    )
    matchers = ",".join(f"{label}=%q" for label in labels)
    values = " ".join(f"$labels.{label}" for label in labels)

    def per_hour(series: str) -> str:
        # Templates cannot multiply, so the per-hour figure is a query of its own.
        return (
            f'{{{{ with printf "{series}{{{matchers}}} * 3600" {values} | query }}}}'
            '${{ . | first | value | printf "%.2f" }}/h{{ end }}'
        )

    who = "Team {{ $labels.org }}/{{ $labels.team }}"
    if len(labels) > 2:
        who = f"{labels[-1].capitalize()} {{{{ $labels.{labels[-1]} }}}} of team {{{{ $labels.org }}}}/{{{{ $labels.team }}}}"
    rule = _alert(
        config,
        "CostlineSpendAnomaly",
        expr,
        f"{who} is spending far above its usual rate.",
        f"{who} spent {per_hour(recent)} over the last {config.anomaly_window}, more than "
        f"{config.anomaly_factor:g}x its {config.anomaly_baseline_window} average of {per_hour(baseline)}.",
        links.alert_dashboard_url(config, links.TEAM_DRILLDOWN_UID, "org", "team"),
    )
    # `level` tells the three rules of one alert name apart (promtool flags same-name rules with equal labels).
    rule["labels"] = {**rule["labels"], "level": labels[-1]}
    return rule


def unpriced_model(config: MixinConfig, names: RuleNames) -> dict:
    # The ledger-backed gauge: one unpriced call makes it 1 at the next read, whenever it was scraped first, and it
    # stays until `costline reprice` prices the call (then 0, and the alert resolves).
    callers = (
        f'{{{{ range $i, $caller := printf "sum by (org, team) ('
        f'{_escape(without_replicas(config, metrics.PERIOD_UNPRICED_REQUESTS + "{%s, provider=%q, model=%q}"))}) > 0" '
        f'"{_escape(config.costline_selector)}" $labels.provider $labels.model | query | sortByLabel "team" }}}}'
        "{{ if $i }}, {{ end }}{{ $caller.Labels.org }}/{{ $caller.Labels.team }}{{ end }}"
    )
    return _alert(
        config,
        "CostlineUnpricedModel",
        f"{names.model_unpriced} > 0",
        "Calls to {{ $labels.provider }}/{{ $labels.model }} cannot be priced.",
        '{{ $value | printf "%.0f" }} requests to {{ $labels.provider }}/{{ $labels.model }} this month have no '
        f"price yet (called by {callers}). Their cost is missing from every total and budget: add a price override "
        "for the model to the processor config, then run `costline reprice`.",
        links.alert_dashboard_url(config, links.SPEND_OVERVIEW_UID, "model"),
    )


def error_rate_spike(config: MixinConfig, names: RuleNames) -> dict:
    window = config.short_rate_window
    expr = (
        f"{names.model_error_ratio} >= {config.error_ratio_threshold}"
        f" and on (provider, model) sum {by('provider', 'model')} ({names.model_requests_rate}) * {seconds(window)}"
        f" >= {config.error_min_requests}"
    )
    return _alert(
        config,
        "CostlineErrorRateSpike",
        expr,
        "{{ $value | humanizePercentage }} of calls to {{ $labels.provider }}/{{ $labels.model }} fail.",
        f"{{{{ $value | humanizePercentage }}}} of the calls to {{{{ $labels.provider }}}}/{{{{ $labels.model }}}} "
        f"failed over the last {window} (alert at {config.error_ratio_threshold:.0%}). Failed calls still cost: "
        "providers bill the input of many failed and cut-off calls, and every retry sends the prompt again.",
        links.alert_dashboard_url(config, links.PERFORMANCE_UID, "model"),
    )


def unattributed_spend(config: MixinConfig, names: RuleNames) -> dict:
    window = config.unattributed_window
    cost = metrics.COST + selector(config)
    unattributed = metrics.COST + selector(config, 'team="unattributed"')
    spent = f"sum({increase_with_births(unattributed, window)})"
    expr = (
        f"{spent} / sum({increase_with_births(cost, window)}) > {config.unattributed_max_share}"
        f" and {spent} >= {config.unattributed_min_usd}"
    )
    return _alert(
        config,
        "CostlineUnattributedSpend",
        expr,
        "{{ $value | humanizePercentage }} of LLM spend has no team.",
        f"{{{{ $value | humanizePercentage }}}} of the spend in the last {window} is `unattributed` (over "
        f"{config.unattributed_max_share:.0%}): calls without a team, from an unregistered API key or a service "
        "that sets no `costline.team`. Chargeback cannot bill it to anyone.",
        links.alert_dashboard_url(config, links.SPEND_OVERVIEW_UID),
    )


SPAN_DROPS = (
    ("receiver", metrics.RECEIVER_SPANS, 'outcome="rejected"'),
    ("receiver", metrics.RECEIVER_REQUESTS, 'outcome!="accepted"'),
    ("forward", metrics.FORWARD_SPANS, 'outcome=~"dropped|failed"'),
)
"""Where the processor loses or refuses telemetry: spans rejected inside accepted exports (OTLP partial success),
whole export requests refused (bad token, too large, undecodable, ledger unavailable: their spans are unbilled
unless the exporter retries), and spans it could not forward downstream."""


def spans_dropped(config: MixinConfig, names: RuleNames) -> dict:
    window = config.span_drop_window
    parts = []
    for stage, counter, matcher in SPAN_DROPS:
        unit = "requests" if counter == metrics.RECEIVER_REQUESTS else "spans"
        grouped = f"sum {by('instance', 'outcome')} {increase_with_births(counter + selector(config, matcher), window)}"
        parts.append(f'label_replace({grouped}, "what", "{stage} {unit}", "", "") > 0')
    return _alert(
        config,
        "CostlineSpansDropped",
        " or ".join(f"({part})" for part in parts),
        "The Costline processor is dropping or refusing {{ $labels.what }} ({{ $labels.outcome }}).",
        '{{ $value | printf "%.0f" }} {{ $labels.what }} {{ $labels.outcome }} '
        "{{ with $labels.instance }}at {{ . }} {{ end }}"
        f"in the last {window}. Rejected spans and refused exports are not billed; dropped forwards only miss the "
        "downstream tracing backend.",
        links.alert_dashboard_url(config, links.PERFORMANCE_UID),
    )


def policy_violation(config: MixinConfig, names: RuleNames) -> dict:
    window = config.policy_violation_window
    violations = metrics.POLICY_VIOLATIONS + selector(config)
    return _alert(
        config,
        "CostlinePolicyViolation",
        f"sum {by('org', 'team', 'model', 'rule')} {increase_with_births(violations, window)} > 0",
        "Team {{ $labels.org }}/{{ $labels.team }} called {{ $labels.model }}, which its model rules refuse.",
        '{{ $value | printf "%.0f" }} calls by team {{ $labels.org }}/{{ $labels.team }} to {{ $labels.model }} '
        f"in the last {window} went against the rule `{{{{ $labels.rule }}}}`. Apps without the guard "
        "(`COSTLINE_GUARD=block`) send such calls; calls a guard refused are counted too, but cost nothing.",
        links.alert_dashboard_url(config, links.TEAM_DRILLDOWN_UID, "org", "team"),
    )


def calls_without_usage(config: MixinConfig, names: RuleNames) -> dict:
    window = config.calls_without_usage_window
    missing = metrics.CALLS_WITHOUT_USAGE + selector(config)
    return _alert(
        config,
        "CostlineCallsWithoutUsage",
        f"sum {by('source', 'provider', 'model')} {increase_with_births(missing, window)} > 0",
        "Calls to {{ $labels.provider }}/{{ $labels.model }} arrive without usage: their cost is unknown.",
        '{{ $value | printf "%.0f" }} successful calls to {{ $labels.provider }}/{{ $labels.model }} from '
        f"`{{{{ $labels.source }}}}` spans in the last {window} reported no token counts, so Costline cannot price "
        "them: they are in no total, budget or statement (shown as without usage, never $0). Make the "
        "instrumentation report usage, e.g. `stream_options.include_usage` on OpenAI streams "
        "(docs/sources.md, usage missing).",
        links.alert_dashboard_url(config, links.SPEND_OVERVIEW_UID, "model"),
    )


def reported_cost_disagrees(config: MixinConfig, names: RuleNames) -> dict:
    window = config.cost_disagreement_window

    def per_model(counter: str) -> str:
        return f"sum {by('provider', 'model')} {increase_with_births(counter + selector(config), window)}"

    disagreeing = per_model(metrics.COST_DISAGREEMENTS)
    expr = (
        f"{disagreeing} / {per_model(metrics.REPORTED_COST_REQUESTS)} > {config.cost_disagreement_max_share:g}"
        f" and {disagreeing} >= {config.cost_disagreement_min_calls}"
    )
    return _alert(
        config,
        "CostlineReportedCostDisagrees",
        expr,
        "The cost reported for {{ $labels.provider }}/{{ $labels.model }} calls disagrees with Costline's price.",
        "{{ $value | humanizePercentage }} of the calls to {{ $labels.provider }}/{{ $labels.model }} whose spans "
        f"carried a cost of their own (a provider's, a gateway's or an instrumentation's) in the last {window} "
        f"differ from Costline's price by more than 1 % (alert at {config.cost_disagreement_max_share:.0%}). "
        "Costline's price stays the bill: check the model's price or override against the provider's invoice "
        "(`costline usage --group-by model` has `reported_cost_usd` beside `priced_cost_of_reported_usd`).",
        links.alert_dashboard_url(config, links.SPEND_OVERVIEW_UID, "model"),
    )


def approval_requested(config: MixinConfig, names: RuleNames) -> dict:
    pending = metrics.APPROVAL_REQUESTS_PENDING + selector(config)
    return _alert(
        config,
        "CostlineApprovalRequested",
        # One alert per request, whichever processor reports it (several share one ledger): `max by` the request.
        f"max {by('org', 'team', 'user', 'provider', 'model', 'approver')} ({pending}) > 0",
        "{{ $labels.org }}/{{ $labels.team }} asks to use {{ $labels.provider }} {{ $labels.model }}.",
        "A request for {{ $labels.provider }} {{ $labels.model }} (a model its rules allow on approval only) for "
        "{{ $labels.org }}/{{ $labels.team }}{{ with $labels.user }}/{{ . }}{{ end }} waits for "
        "{{ $labels.approver }}. Read the reason with `costline admin state --kind approval`, then `costline admin "
        "approve` with an expiry or `deny` (docs/governance.md, Approvals).",
        links.alert_dashboard_url(config, links.TEAM_DRILLDOWN_UID, "org", "team"),
    )


def processor_down(config: MixinConfig, names: RuleNames) -> dict:
    up = "up" + selector(config)
    return _alert(
        config,
        "CostlineProcessorDown",
        f"{up} == 0 or absent({up})",
        "The Costline processor is down or not scraped.",
        "Prometheus cannot scrape the Costline processor {{ with $labels.instance }}at {{ . }} {{ end }}"
        f"(selector {config.costline_selector}). Spend and budget series stop updating and no budget alert "
        "can fire until it is back; spans sent meanwhile are retried by exporters or lost.",
        links.alert_dashboard_url(config, links.PERFORMANCE_UID),
    )


def reconciliation_drift(config: MixinConfig, names: RuleNames) -> dict:
    replicas = ", ".join(config.replica_labels)

    def per_provider(metric: str, absolute: bool = False) -> str:
        # Every replica reads the same stored reconciliation: one figure per owner, not their sum.
        series = f"max without ({replicas}) ({metric}{selector(config)})"
        return f"sum by (provider) ({f'abs({series})' if absolute else series})"

    drift, provider = per_provider(metrics.RECONCILIATION_DRIFT, True), per_provider(metrics.RECONCILIATION_PROVIDER)
    return _alert(
        config,
        "CostlineReconciliationDrift",
        f"{drift} / {provider} > {config.reconciliation_drift_share:g}",
        "Costline's ledger and {{ $labels.provider }}'s usage report disagree.",
        "For the last reconciled window, the ledger differs from {{ $labels.provider }}'s own usage report by "
        '{{ $value | humanizePercentage }} of the reported cost (threshold '
        f"{config.reconciliation_drift_share:.0%}). Run `costline reconcile --provider {{{{ $labels.provider }}}}` "
        "for the rows: instrumentation that misses calls, spans dropped, or a price that differs.",
        links.alert_dashboard_url(config, links.SPEND_OVERVIEW_UID),
    )


def customer_over_budget(config: MixinConfig, names: RuleNames) -> dict:
    # Ledger-backed gauges: every replica serves the same figure, so one of them per customer, never their sum.
    cost = without_replicas(config, metrics.CUSTOMER_COST + selector(config))
    budget = without_replicas(config, metrics.CUSTOMER_BUDGET + selector(config))
    return _alert(
        config,
        "CostlineCustomerOverBudget",
        f"{cost} > {budget}",
        "Customer {{ $labels.customer }} costs more than its monthly budget.",
        "This month's cost of customer {{ $labels.customer }} so far (token cost and share of self-hosted fleets) "
        "is ${{ $value | printf \"%.2f\" }}, over its budget in `chargeback.customers.budgets_usd`. "
        "`costline customers` has its cost, revenue and margin.",
        links.alert_dashboard_url(config, links.CHARGEBACK_UID),
    )


def _escape(text: str) -> str:
    """Escape double quotes for a string literal inside a Go template action."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def alert_rule_groups(config: MixinConfig) -> list[dict[str, object]]:
    names = RuleNames(config)
    budget = [budget_warning(config, names), budget_exceeded(config, names), budget_forecast_overrun(config, names)]
    spend = [
        *spend_anomaly(config, names),
        unpriced_model(config, names),
        unattributed_spend(config, names),
        error_rate_spike(config, names),
        policy_violation(config, names),
        calls_without_usage(config, names),
        reported_cost_disagrees(config, names),
        approval_requested(config, names),
    ]
    spend.append(customer_over_budget(config, names))
    processor = [processor_down(config, names), spans_dropped(config, names)]
    groups: list[dict[str, object]] = [
        {"name": "costline.budget.alerts", "rules": budget},
        {"name": "costline.spend.alerts", "rules": spend},
        {"name": "costline.processor.alerts", "rules": processor},
        {"name": "costline.reconciliation.alerts", "rules": [reconciliation_drift(config, names)]},
    ]
    return [with_interval(config, group) for group in groups]
