"""Names of the series the processor exposes, in one place so a rename upstream is one edit here.

Counters are listed with their `_total` suffix as scraped; recording rules drop it (`team:costline_cost_usd:rate5m`),
as Prometheus' naming conventions ask.
"""

from __future__ import annotations

COST = "costline_cost_usd_total"
TOKENS = "costline_tokens_total"  # label `type`: input (uncached), output, cache_read, cache_write, reasoning
REQUESTS = "costline_requests_total"  # label `outcome`: success, error
UNPRICED_REQUESTS = "costline_unpriced_requests_total"
TIME_TO_FIRST_TOKEN = "costline_time_to_first_token_seconds"  # histogram: _bucket, _sum, _count
OWNERSHIP_CONFLICTS = "costline_ownership_conflicts_total"
APPROVAL_REQUESTS_PENDING = "costline_approval_requests_pending"  # org, team, user, provider, model, approver
POLICY_VIOLATIONS = "costline_policy_violations_total"  # labels org, team, model, rule: calls `models:` refuses
CALLS_WITHOUT_USAGE = "costline_calls_without_usage_total"  # labels source, provider, model: cost unknown
TOOL_CALLS = "costline_tool_calls_total"  # label `type`: web_search, code_execution (only where not 0)
REPORTED_COST_REQUESTS = "costline_reported_cost_requests_total"  # calls with a cost others computed
REPORTED_COST = "costline_reported_cost_usd_total"  # that cost (Costline's price stays the bill)
COST_DISAGREEMENTS = "costline_cost_disagreements_total"  # of those, calls >1 % from Costline's price

BUDGET_LIMIT = "costline_budget_limit_usd"  # labels `scope`, `period`, `mode` and the scope's owner labels
BUDGET_SPENT = "costline_budget_spent_usd"
BUDGET_REMAINING = "costline_budget_remaining_usd"
BUDGET_EFFECTIVE_REMAINING = "costline_budget_effective_remaining_usd"  # per key and user: most restrictive wins
BUDGET_LIMIT_TOKENS = "costline_budget_limit_tokens"  # token budgets: the same labels as the USD ones
BUDGET_SPENT_TOKENS = "costline_budget_spent_tokens"
BUDGET_PERIOD_ELAPSED = "costline_budget_period_elapsed_seconds"  # label `period`: of each calendar period in use,
BUDGET_PERIOD_LENGTH = "costline_budget_period_length_seconds"  # in the processor's time zone (PromQL's is UTC)

PERIOD_COST = "costline_period_cost_usd"  # ledger-backed gauges of the current calendar month, per provider,
PERIOD_UNPRICED_REQUESTS = "costline_period_unpriced_requests"  # model, org, team, project: the same on every
PERIOD_UNPRICED_TOKENS = "costline_period_unpriced_tokens"  # replica; label `type` as on TOKENS

CHARGEBACK = "costline_chargeback_usd"  # labels org, team, component: the open month's statement, ledger-backed
CHARGEBACK_LAST_PERIOD = "costline_chargeback_last_period_usd"  # labels org, team: last month's statement total
CUSTOMER_COST = "costline_customer_cost_usd"  # label customer: this month's cost so far, ledger-backed
CUSTOMER_MARGIN = "costline_customer_margin_usd"  # label customer: revenue - cost this month so far
CUSTOMER_BUDGET = "costline_customer_budget_usd"  # label customer: `chargeback.customers.budgets_usd`
FLEET_EFFECTIVE_RATE = "costline_fleet_effective_usd_per_token"  # label fleet: month-to-date cost / tokens
OUTCOMES = "costline_outcomes_total"  # labels org, team, feature, name: business outcomes (`costline.outcome()`)

RECEIVER_REQUESTS = "costline_receiver_requests_total"  # labels `transport`, `outcome` (accepted, unavailable, ...)
RECEIVER_SPANS = "costline_receiver_spans_total"  # label `outcome`: accepted, rejected (OTLP partial success)
FORWARD_SPANS = "costline_forward_spans_total"  # label `outcome`: sent, failed, dropped

RECONCILIATION_PROVIDER = "costline_reconciliation_provider_usd"  # labels `provider`, `owner_kind`, `owner`
RECONCILIATION_DRIFT = "costline_reconciliation_drift_usd"
RECONCILIATION_UNTRACKED = "costline_reconciliation_untracked_usd"

OWNER_LABELS: tuple[str, ...] = ("org", "team", "user", "key", "project")
"""Labels that can name the owner of a budget, broadest first; a budget series carries those of its scope."""


def without_total(counter: str) -> str:
    """`costline_cost_usd_total` -> `costline_cost_usd`: the metric part of a recording rule's name."""
    return counter.removesuffix("_total")


RETRIES = "costline_retries_total"
"""Retries the SDKs made before their calls' answers (`http.request.resend_count`), labelled like requests without
`outcome` and present at 0 for every series with requests: the Performance dashboard's retries-per-request panel."""
