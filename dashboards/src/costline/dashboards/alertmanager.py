"""An example Alertmanager configuration: each team's alerts to that team, the rest to FinOps, and a budget that is
exceeded silencing its own warning.

Routing is by label, as the alerts carry them: budget alerts of a team, of its users and of its keys have `org` and
`team`, and so do the team's spend anomalies; org and project budgets, unpriced models and processor alerts have no
team and go to the default receiver. A request for a model allowed on approval (`CostlineApprovalRequested`) goes to
its approver's receiver, by its `approver` label (`alertmanager_approver_webhooks`).
"""

from __future__ import annotations

from costline.dashboards.config import MixinConfig

DEFAULT_RECEIVER = "costline-default"
GROUP_BY = ("alertname", "scope", "owner")
"""One notification group per alert and budget (alerts without budget labels group by name alone)."""

EXAMPLES = """
# --- Slack and e-mail: examples ------------------------------------------------------------------------------------
# To notify a team on Slack or by e-mail instead of (or beside) its webhook, add a receiver like these under
# `receivers:` and name it in that team's route. Keep secrets in files, not here.
#
# receivers:
#   - name: team-acme-search-slack
#     slack_configs:
#       - api_url_file: /etc/alertmanager/secrets/slack-acme-search
#         channel: '#search-llm-costs'
#         send_resolved: true
#         title: '{{ .CommonAnnotations.summary }}'
#         text: '{{ range .Alerts }}{{ .Annotations.description }} <{{ .Annotations.dashboard_url }}|dashboard> <{{ .Annotations.runbook_url }}|runbook>{{ "\\n" }}{{ end }}'
#   - name: finops-email
#     email_configs:
#       - to: finops@example.com
#         from: alertmanager@example.com
#         smarthost: smtp.example.com:587
#         auth_username: alertmanager@example.com
#         auth_password: change-me
#         send_resolved: true
"""
"""Appended to the generated file as comments (YAML cannot carry them through a dump)."""


def receiver_name(team: str) -> str:
    """`acme/search` -> `team-acme-search`."""
    return "team-" + team.replace("/", "-")


def _webhook(name: str, url: str) -> dict[str, object]:
    return {"name": name, "webhook_configs": [{"url": url, "send_resolved": True}]}


def approver_receiver(approver: str) -> str:
    """`org-admin:acme` -> `approver-org-admin-acme`."""
    return "approver-" + approver.replace(":", "-").replace("/", "-")


def alertmanager_config(config: MixinConfig) -> dict[str, object]:
    # A request for a frontier model goes to its approver (the admin one level up), before any team route: the
    # request carries the team's labels too, but the team is the one asking.
    routes: list[dict[str, object]] = [
        {"receiver": approver_receiver(approver),
         "matchers": ['alertname="CostlineApprovalRequested"', f'approver="{approver}"'],
         "group_by": ["alertname", "approver", "org", "team", "user", "provider", "model"]}
        for approver in config.alertmanager_approver_webhooks]
    receivers = [_webhook(DEFAULT_RECEIVER, config.alertmanager_default_webhook)]
    receivers += [_webhook(approver_receiver(a), url) for a, url in config.alertmanager_approver_webhooks.items()]
    for team, url in config.alertmanager_team_webhooks.items():
        org, name = team.split("/")
        routes.append({"receiver": receiver_name(team), "matchers": [f'org="{org}"', f'team="{name}"']})
        receivers.append(_webhook(receiver_name(team), url))
    return {
        "route": {
            "receiver": DEFAULT_RECEIVER,
            "group_by": list(GROUP_BY),
            "group_wait": config.alertmanager_group_wait,
            "group_interval": config.alertmanager_group_interval,
            "repeat_interval": config.alertmanager_repeat_interval,
            "routes": routes,
        },
        "inhibit_rules": [
            {
                # An exceeded budget silences the warnings of the same owner (any period): one page, the worse one.
                "source_matchers": ['alertname="CostlineBudgetExceeded"'],
                "target_matchers": ['alertname="CostlineBudgetWarning"'],
                "equal": ["scope", "owner"],
            }
        ],
        "receivers": receivers,
    }
