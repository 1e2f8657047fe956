"""Stable dashboard uids and the URLs alerts link to.

The uids are part of the public surface: bookmarks, alert annotations and other dashboards' links use them, so they
never change with a title.
"""

from __future__ import annotations

from urllib.parse import quote

from costline.dashboards.config import MixinConfig

SPEND_OVERVIEW_UID = "costline-spend-overview"
BUDGET_BURN_UID = "costline-budget-burn"
TEAM_DRILLDOWN_UID = "costline-team-drilldown"
PERFORMANCE_UID = "costline-performance"
CHARGEBACK_UID = "costline-chargeback"


def alert_dashboard_url(config: MixinConfig, uid: str, *labels: str) -> str:
    """Dashboard URL for an alert annotation: each variable is set from the alert's label when it has one (a team
    budget has no `project`, and an empty `var-project=` would select nothing)."""
    presets = "".join(f"{{{{ with $labels.{label} }}}}&var-{label}={{{{ . }}}}{{{{ end }}}}" for label in labels)
    return f"{config.grafana_url.rstrip('/')}/d/{uid}?orgId=1{presets}"


def runbook_url(config: MixinConfig, alertname: str) -> str:
    """The alert's section in docs/dashboards.md (GitHub's anchors are the lower-cased heading)."""
    return f"{config.runbook_url}#{quote(alertname.lower())}"
