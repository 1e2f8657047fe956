"""The one place to change what the mixin selects and when it pages (like kubernetes-mixin's config.libsonnet).

Dashboards, recording rules and alerts all read a `MixinConfig`; nothing else in this package hard-codes a selector,
a threshold or a window. Change a default here and run `make dashboards`, or build with overrides from Python:

    from costline.dashboards.config import DEFAULT_CONFIG
    config = DEFAULT_CONFIG.replace(costline_selector='job="llm-costs"', budget_warning_ratio=0.9)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class MixinConfig:
    # --- what to select ---------------------------------------------------------------------------------------------
    costline_selector: str = 'job="costline"'
    """Matchers that pick the processor's series out of everything Prometheus scrapes (the scrape job's name)."""

    replica_labels: tuple[str, ...] = ("instance", "pod")
    """Labels that differ between processor replicas. Budget gauges come from the shared ledger, so every replica
    reports the same figure: rules take `max without (these)` instead of summing them."""

    # --- budget thresholds ------------------------------------------------------------------------------------------
    budget_warning_ratio: float = 0.8
    """`CostlineBudgetWarning` fires at this share of a budget spent (and the "over 80 %" table lists these)."""

    budget_exceeded_ratio: float = 1.0
    """`CostlineBudgetExceeded` fires at this share; the warning stops there so one budget pages once."""

    budget_warning_ratios: dict[str, float] = dataclasses.field(default_factory=dict)
    """Warning ratios for particular budgets, keyed by scope and owner as the alerts name them:
    `{"team acme/search": 0.5, "project campaigns": 0.9}`. Every other budget warns at `budget_warning_ratio`."""

    forecast_min_elapsed_days: float = 2.0
    """`CostlineBudgetForecastOverrun` stays silent until this much of the month has passed: a projection from the
    first hours of a month extrapolates one busy morning to thirty days."""

    burn_rate_window: str = "6h"
    """Window for the spend rate behind "days until exhausted"."""

    # --- spend anomaly ----------------------------------------------------------------------------------------------
    anomaly_window: str = "1h"
    """Recent spend rate that is compared with the baseline."""

    anomaly_baseline_window: str = "1d"
    """The team's own baseline: its average spend rate over this window."""

    anomaly_factor: float = 3.0
    """`CostlineSpendAnomaly` fires when the recent rate exceeds the baseline by this factor ..."""

    anomaly_min_usd_per_hour: float = 1.0
    """... and the team spends at least this much per hour, so a team going from $0.01/h to $0.05/h stays quiet."""

    # --- other alerts -----------------------------------------------------------------------------------------------
    error_ratio_threshold: float = 0.1
    """`CostlineErrorRateSpike` fires when this share of a model's calls fail (over `short_rate_window`) ..."""

    error_min_requests: int = 10
    """... and it had at least this many calls in that window, so one failure out of two calls stays quiet."""

    unattributed_max_share: float = 0.05
    """`CostlineUnattributedSpend` fires when more than this share of an org's spend has no team (`unattributed`) ..."""

    unattributed_window: str = "1d"
    """... over this window ..."""

    unattributed_min_usd: float = 1.0
    """... and the unattributed spend is at least this much, so a test call in a quiet org does not page."""

    span_drop_window: str = "15m"
    """`CostlineSpansDropped` fires when spans were rejected, exports refused or forwarded spans dropped within this
    window."""

    reconciliation_drift_share: float = 0.05
    """`CostlineReconciliationDrift` fires when a provider's |drift| summed over owners exceeds this share of what
    its own usage report shows, for the last reconciled window (`costline reconcile`, `--reconcile-every`)."""
    calls_without_usage_window: str = "1h"
    """`CostlineCallsWithoutUsage` fires while an instrumentation sent successful calls without usage (their cost is
    unknown) within this window."""

    cost_disagreement_window: str = "1h"
    """`CostlineReportedCostDisagrees` looks at the calls with a reported cost within this window ..."""

    cost_disagreement_max_share: float = 0.05
    """... and fires when more than this share of a model's such calls differ from Costline's price by more than
    1 % ..."""

    cost_disagreement_min_calls: int = 5
    """... and at least this many did, so one odd gateway figure stays quiet."""

    policy_violation_window: str = "1h"
    """`CostlinePolicyViolation` fires while a team called a model its `models:` rules refuse within this window."""

    short_rate_window: str = "5m"
    """Window of the `:rate5m`-style recording rules the dashboards and the anomaly alert reuse."""

    alert_for: dict[str, str] = dataclasses.field(
        default_factory=lambda: {
            "CostlineBudgetWarning": "15m",
            "CostlineBudgetExceeded": "5m",
            "CostlineBudgetForecastOverrun": "1h",
            "CostlineSpendAnomaly": "30m",
            "CostlineUnpricedModel": "10m",
            "CostlineErrorRateSpike": "10m",
            "CostlineUnattributedSpend": "1h",
            "CostlineSpansDropped": "5m",
            "CostlinePolicyViolation": "0m",
            "CostlineApprovalRequested": "0m",
            "CostlineProcessorDown": "5m",
            "CostlineReconciliationDrift": "1h",
            "CostlineCustomerOverBudget": "5m",
            "CostlineCallsWithoutUsage": "5m",
            "CostlineReportedCostDisagrees": "30m",
        }
    )
    """How long each alert's condition must hold before it fires (the query tests set all of them to 0s)."""

    alert_severity: dict[str, str] = dataclasses.field(
        default_factory=lambda: {
            "CostlineBudgetWarning": "warning",
            "CostlineBudgetExceeded": "critical",
            "CostlineBudgetForecastOverrun": "warning",
            "CostlineSpendAnomaly": "warning",
            "CostlineUnpricedModel": "warning",
            "CostlineErrorRateSpike": "warning",
            "CostlineUnattributedSpend": "warning",
            "CostlineSpansDropped": "warning",
            "CostlinePolicyViolation": "warning",
            "CostlineApprovalRequested": "warning",
            "CostlineProcessorDown": "critical",
            "CostlineReconciliationDrift": "warning",
            "CostlineCustomerOverBudget": "warning",
            "CostlineCallsWithoutUsage": "warning",
            "CostlineReportedCostDisagrees": "warning",
        }
    )

    rule_evaluation_interval: str = "1m"
    """`interval` of the generated rule groups (empty string: Prometheus' global evaluation_interval)."""

    # --- links ------------------------------------------------------------------------------------------------------
    grafana_url: str = "http://localhost:3000"
    """Base of the `dashboard_url` annotation on every alert."""

    runbook_url: str = "https://github.com/costline/costline/blob/main/docs/dashboards.md"
    """Base of the `runbook_url` annotation; the alert's name is appended as an anchor (`#costlinebudgetwarning`)."""

    # --- Alertmanager (the example alertmanager.yml) -----------------------------------------------------------------
    alertmanager_team_webhooks: dict[str, str] = dataclasses.field(
        default_factory=lambda: {
            "acme/search": "http://team-webhooks.example:8080/acme/search",
            "acme/support": "http://team-webhooks.example:8080/acme/support",
            "acme/research": "http://team-webhooks.example:8080/acme/research",
        }
    )
    """`org/team` -> the team's webhook. Alerts labelled with that org and team (its budgets, its users' and keys'
    budgets, its spend anomalies) go there; everything else goes to `alertmanager_default_webhook`."""

    alertmanager_approver_webhooks: dict[str, str] = dataclasses.field(
        default_factory=lambda: {
            "org-admin:acme": "http://team-webhooks.example:8080/approvers/acme",
            "team-admin:acme/search": "http://team-webhooks.example:8080/approvers/acme/search",
        }
    )
    """Approver (`org-admin:<org>` decides a team's requests, `team-admin:<org>/<team>` a member's) -> its webhook.
    `CostlineApprovalRequested` carries the `approver` label; a request whose approver has no webhook here goes to
    `alertmanager_default_webhook`."""

    alertmanager_default_webhook: str = "http://team-webhooks.example:8080/finops"
    """Receiver of every alert no team route takes (org and project budgets, processor and unpriced alerts)."""

    alertmanager_group_wait: str = "30s"
    alertmanager_group_interval: str = "5m"
    alertmanager_repeat_interval: str = "4h"
    """Alertmanager's batching: wait before the first notification of a group, between updates, and before
    repeating an unchanged one."""

    # --- dashboards -------------------------------------------------------------------------------------------------
    dashboard_tags: tuple[str, ...] = ("costline",)
    dashboard_refresh: str = "1m"
    dashboard_timezone: str = "utc"
    """UTC by default: budgets are calendar months in the processor's timezone (UTC unless configured)."""

    datasource_uid: str = "prometheus"
    """Uid of the provisioned Prometheus data source; the `$datasource` variable defaults to it."""

    prometheus_url: str = "http://prometheus:9090"
    """URL the provisioned data source points at (the compose stack's Prometheus)."""

    grafana_dashboards_path: str = "/var/lib/grafana/dashboards/costline"
    """Where the provisioned dashboard provider reads the JSON files (the compose stack mounts them there)."""

    scrape_interval: str = "15s"
    """The processor's scrape interval, told to Grafana so `$__rate_interval` covers at least four scrapes."""

    top_n: int = 10
    """How many rows "top spenders" style panels show."""

    def __post_init__(self) -> None:
        for key, ratio in self.budget_warning_ratios.items():
            scope, _, owner = key.partition(" ")
            if scope not in BUDGET_SCOPES or not owner:
                raise ValueError(
                    f"budget_warning_ratios[{key!r}]: key must be '<scope> <owner>' with a scope among "
                    f"{', '.join(BUDGET_SCOPES)}, e.g. 'team acme/search'"
                )
            if not 0 < ratio < self.budget_exceeded_ratio:
                raise ValueError(
                    f"budget_warning_ratios[{key!r}]: {ratio} must be above 0 and below "
                    f"budget_exceeded_ratio ({self.budget_exceeded_ratio})"
                )
        for approver in self.alertmanager_approver_webhooks:
            kind, _, where = approver.partition(":")
            if not (kind == "org-admin" and where and "/" not in where) and not (
                    kind == "team-admin" and where.count("/") == 1 and all(where.split("/"))):
                raise ValueError(f"alertmanager_approver_webhooks[{approver!r}]: key must be 'org-admin:<org>' or "
                                 "'team-admin:<org>/<team>'")
        for team in self.alertmanager_team_webhooks:
            org, _, name = team.partition("/")
            if not org or not name or "/" in name:
                raise ValueError(f"alertmanager_team_webhooks[{team!r}]: key must be '<org>/<team>'")

    def replace(self, **changes: object) -> MixinConfig:
        """A copy with some fields changed; `alert_for` may be given partially (merged with the defaults)."""
        if "alert_for" in changes:
            changes["alert_for"] = {**self.alert_for, **changes["alert_for"]}  # type: ignore[dict-item]
        if "alert_severity" in changes:
            changes["alert_severity"] = {**self.alert_severity, **changes["alert_severity"]}  # type: ignore[dict-item]
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


BUDGET_SCOPES = ("org", "team", "user", "key", "project", "feature", "environment", "customer", "model")
"""The processor's budget scopes (the `scope` label of the budget gauges)."""

DEFAULT_CONFIG = MixinConfig()
