"""OpenAI's organization Usage API and Costs API (admin key), as documented in the API reference:

* `GET /v1/organization/usage/completions?start_time&end_time&bucket_width=1d&group_by=...&limit&page` — a page
  (`object: "page"`, `data`, `has_more`, `next_page`) of buckets (`object: "bucket"`, `start_time`, `end_time` in
  unix seconds, `results`) of `organization.usage.completions.result`: `input_tokens` (cached included),
  `input_cached_tokens`, `output_tokens`, `num_model_requests`, and the grouped-by `project_id`, `api_key_id`,
  `model` (null when not grouped by).
* `GET /v1/organization/costs?start_time&end_time&bucket_width=1d&group_by=project_id&limit&page` — the same page and
  buckets of `organization.costs.result`: `amount: {value, currency}` (a JSON number; read as Decimal, never a float),
  `line_item`, `project_id`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from costline.processor.reports.reconcile.providers._fields import Fields
from costline.processor.reports.reconcile.report import BilledRow, ReportError, UsageRow

NAME = "openai"
DEFAULT_API_BASE = "https://api.openai.com"
USAGE_PATH = "/v1/organization/usage/completions"
COST_PATH = "/v1/organization/costs"
USAGE_RESULT = "organization.usage.completions.result"
COST_RESULT = "organization.costs.result"
GROUP_BY = ("project_id", "api_key_id", "model")
COST_GROUP_BY = ("project_id",)
GROUP_BY_PARAM = "group_by"
PAGE_LIMIT = 31
"""Daily buckets per page: the API's maximum for `bucket_width=1d`."""
BUCKET_BOUNDS = ("start_time", "end_time")
"""The period's bounds, in the query and in each bucket."""
bucket_day = Fields.unix_day
"""How a bucket's bounds are written: unix seconds."""


def headers(admin_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_key}"}


query_time = str
"""An instant as the query writes it: unix seconds, like the buckets' bounds."""


def is_cost_result(result: Any) -> bool:
    return isinstance(result, dict) and (result.get("object") == COST_RESULT or "amount" in result)


def usage_result(day: date, result: Fields) -> UsageRow:
    kind = result.string("object", optional=True)
    if kind is not None and kind != USAGE_RESULT:
        raise ReportError(f"{result.path}.object: expected {USAGE_RESULT!r}, got {kind!r}")
    model = result.string("model", nullable=True)
    if not model:
        raise ReportError(f"{result.path}.model: is null; fetch the report grouped by model")
    total_input = result.integer("input_tokens")
    cached = result.integer("input_cached_tokens", optional=True, default=0)
    assert total_input is not None and cached is not None
    if cached > total_input:
        raise ReportError(f"{result.path}: input_cached_tokens ({cached}) exceeds input_tokens ({total_input}), "
                          "which includes them")
    identities = tuple((k, v) for k in ("api_key_id", "project_id")
                       if (v := result.string(k, nullable=True, optional=True)))
    return UsageRow(day=day, model=model, identities=identities, uncached_input=total_input - cached,
                    cache_read=cached, cache_write=0, output=result.integer("output_tokens") or 0,
                    requests=result.integer("num_model_requests"))


def cost_result(day: date, result: Fields) -> BilledRow:
    kind = result.string("object", optional=True)
    if kind is not None and kind != COST_RESULT:
        raise ReportError(f"{result.path}.object: expected {COST_RESULT!r}, got {kind!r}")
    amount = result.object("amount")
    currency = amount.string("currency")
    if (currency or "").lower() != "usd":
        raise ReportError(f"{amount.path}.currency: only USD is reconciled, got {currency!r}")
    return BilledRow(day=day, scope_kind="project_id", scope_id=result.string("project_id", nullable=True,
                                                                              optional=True) or "",
                     amount_usd=amount.decimal("value"),
                     description=result.string("line_item", nullable=True, optional=True) or "")


CSV_USAGE_COLUMNS = ("start_time", "model", "input_tokens", "output_tokens", "num_model_requests")
"""Required columns of a usage CSV: the API's field names (see docs/reconciliation.md); `input_cached_tokens`,
`api_key_id`, `project_id` are optional."""
CSV_COST_COLUMNS = ("start_time", "amount_value", "amount_currency")


def csv_usage_result(day: date, row: Fields) -> UsageRow:
    return usage_result(day, row)


def csv_cost_result(day: date, row: Fields) -> BilledRow:
    nested = Fields({"amount": {"value": row.obj.get("amount_value"), "currency": row.obj.get("amount_currency")},
                     **{k: row.obj.get(k) for k in ("project_id", "line_item")}}, row.path)
    return cost_result(day, nested)

CSV_INTEGERS = ("input_tokens", "input_cached_tokens", "output_tokens", "num_model_requests")
