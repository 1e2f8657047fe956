"""Anthropic's Admin API usage and cost reports (admin key, `anthropic-version: 2023-06-01`), as documented:

* `GET /v1/organizations/usage_report/messages?starting_at&ending_at&bucket_width=1d&group_by[]=...&limit&page` —
  `{data, has_more, next_page}`; each bucket has `starting_at`, `ending_at` (RFC 3339) and `results` with
  `uncached_input_tokens`, `cache_read_input_tokens`, `cache_creation: {ephemeral_5m_input_tokens,
  ephemeral_1h_input_tokens}`, `output_tokens`, `server_tool_use`, and the grouped-by `api_key_id`,
  `workspace_id`, `model`, `service_tier`, `context_window` (null when not grouped by).
* `GET /v1/organizations/cost_report?starting_at&ending_at&group_by[]=workspace_id&limit&page` — the same envelope;
  results carry `amount`, a decimal string in the currency's lowest unit ("123.45" USD is $1.23), `currency`,
  `workspace_id` (null for the default workspace), `description`, `cost_type`, `model`, `token_type`, ...
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from costline.processor.reports.reconcile.providers._fields import Fields
from costline.processor.reports.reconcile.report import BilledRow, ReportError, UsageRow

NAME = "anthropic"
DEFAULT_API_BASE = "https://api.anthropic.com"
USAGE_PATH = "/v1/organizations/usage_report/messages"
COST_PATH = "/v1/organizations/cost_report"
API_VERSION = "2023-06-01"
GROUP_BY = ("api_key_id", "workspace_id", "model")
COST_GROUP_BY = ("workspace_id",)
GROUP_BY_PARAM = "group_by[]"
PAGE_LIMIT = 31
"""Daily buckets per page: the API's maximum for `bucket_width=1d`."""
BUCKET_BOUNDS = ("starting_at", "ending_at")
"""The period's bounds, in the query and in each bucket."""
bucket_day = Fields.rfc3339_day
"""How a bucket's bounds are written: RFC 3339 timestamps."""
CENTS_PER_USD = Decimal(100)


def headers(admin_key: str) -> dict[str, str]:
    return {"x-api-key": admin_key, "anthropic-version": API_VERSION}


def query_time(seconds: int) -> str:
    """An instant as the query writes it: RFC 3339, like the buckets' bounds."""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_cost_result(result: Any) -> bool:
    return isinstance(result, dict) and "amount" in result


def usage_result(day: date, result: Fields) -> UsageRow:
    model = result.string("model", nullable=True)
    if not model:
        raise ReportError(f"{result.path}.model: is null; fetch the report grouped by model")
    creation = result.object("cache_creation")
    cache_write = (creation.integer("ephemeral_5m_input_tokens") or 0) + (
        creation.integer("ephemeral_1h_input_tokens") or 0)
    identities = tuple((k, v) for k in ("api_key_id", "workspace_id")
                       if (v := result.string(k, nullable=True, optional=True)))
    return UsageRow(day=day, model=model, identities=identities,
                    uncached_input=result.integer("uncached_input_tokens") or 0,
                    cache_read=result.integer("cache_read_input_tokens") or 0, cache_write=cache_write,
                    output=result.integer("output_tokens") or 0)


def cost_result(day: date, result: Fields) -> BilledRow:
    currency = result.string("currency")
    if currency != "USD":
        raise ReportError(f"{result.path}.currency: only USD is reconciled, got {currency!r}")
    if not isinstance(result.obj.get("amount"), str):
        raise ReportError(f"{result.path}.amount: must be a decimal string (lowest currency units), got "
                          f"{result.obj.get('amount')!r}")
    cents = result.decimal("amount")
    return BilledRow(day=day, scope_kind="workspace_id",
                     scope_id=result.string("workspace_id", nullable=True, optional=True) or "",
                     amount_usd=cents / CENTS_PER_USD,
                     description=result.string("description", nullable=True, optional=True) or "")


CSV_USAGE_COLUMNS = ("starting_at", "model", "uncached_input_tokens", "cache_read_input_tokens",
                     "cache_creation_5m_input_tokens", "cache_creation_1h_input_tokens", "output_tokens")
"""Required columns of a usage CSV, flattened from the API's fields (see docs/reconciliation.md); `api_key_id`,
`workspace_id` are optional."""
CSV_COST_COLUMNS = ("starting_at", "amount", "currency")


def csv_usage_result(day: date, row: Fields) -> UsageRow:
    nested = dict(row.obj)
    nested["cache_creation"] = {"ephemeral_5m_input_tokens": nested.pop("cache_creation_5m_input_tokens", None),
                                "ephemeral_1h_input_tokens": nested.pop("cache_creation_1h_input_tokens", None)}
    return usage_result(day, Fields(nested, row.path))


def csv_cost_result(day: date, row: Fields) -> BilledRow:
    return cost_result(day, row)

CSV_INTEGERS = ("uncached_input_tokens", "cache_read_input_tokens", "cache_creation_5m_input_tokens",
                "cache_creation_1h_input_tokens", "output_tokens")
