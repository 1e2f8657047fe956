"""OpenAI's and Anthropic's admin usage and cost reports, as documented, built from the calls a provider "served".

The same envelopes the real APIs answer (`object: "page"` / `data` / `has_more` / `next_page`), daily buckets (empty
ones included) and result objects: `tests/processor/reports/reconcile/admin_server.py` serves them with faults for the
reconciliation tests, and `FakeProviderServer` serves the OpenAI usage report of the calls it answered (the demo's
`costline reconcile`). Stdlib only.
"""

from __future__ import annotations

import base64
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

OPENAI_USAGE_PATH = "/v1/organization/usage/completions"


@dataclass(frozen=True)
class Served:
    """One call as the provider billed it."""

    day: date
    model: str
    api_key_id: str
    scope_id: str | None  # OpenAI project_id / Anthropic workspace_id (None: the default workspace)
    uncached: int
    cache_read: int
    cache_write: int
    output: int
    cost_usd: Decimal = Decimal(0)


def _unix(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())


def _iso(day: date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days)]


def openai_usage_buckets(calls: list[Served], start: date, end: date) -> list[dict[str, Any]]:
    sums: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for c in calls:
        acc = sums[(c.day, c.scope_id, c.api_key_id, c.model)]
        acc[0] += c.uncached + c.cache_read
        acc[1] += c.cache_read
        acc[2] += c.output
        acc[3] += 1
    return [{"object": "bucket", "start_time": _unix(d), "end_time": _unix(d + timedelta(days=1)), "results": [
        {"object": "organization.usage.completions.result", "input_tokens": v[0], "output_tokens": v[2],
         "input_cached_tokens": v[1], "input_audio_tokens": 0, "output_audio_tokens": 0,
         "num_model_requests": v[3], "project_id": k[1], "user_id": None, "api_key_id": k[2], "model": k[3],
         "batch": None, "service_tier": None}
        for k, v in sorted(sums.items(), key=str) if k[0] == d]} for d in _days(start, end)]


def openai_cost_buckets(calls: list[Served], start: date, end: date) -> list[dict[str, Any]]:
    sums: dict[tuple, Decimal] = defaultdict(Decimal)
    for c in calls:
        sums[(c.day, c.scope_id)] += c.cost_usd
    return [{"object": "bucket", "start_time": _unix(d), "end_time": _unix(d + timedelta(days=1)), "results": [
        {"object": "organization.costs.result", "amount": {"value": v, "currency": "usd"}, "line_item": None,
         "project_id": k[1]} for k, v in sorted(sums.items(), key=str) if k[0] == d]} for d in _days(start, end)]


def anthropic_usage_buckets(calls: list[Served], start: date, end: date) -> list[dict[str, Any]]:
    sums: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for c in calls:
        acc = sums[(c.day, c.api_key_id, c.scope_id, c.model)]
        for i, v in enumerate((c.uncached, c.cache_read, c.cache_write, c.output)):
            acc[i] += v
    return [{"starting_at": _iso(d), "ending_at": _iso(d + timedelta(days=1)), "results": [
        {"uncached_input_tokens": v[0], "cache_read_input_tokens": v[1],
         "cache_creation": {"ephemeral_5m_input_tokens": v[2], "ephemeral_1h_input_tokens": 0},
         "output_tokens": v[3], "server_tool_use": {"web_search_requests": 0}, "api_key_id": k[1],
         "workspace_id": k[2], "model": k[3], "service_tier": None, "context_window": None}
        for k, v in sorted(sums.items(), key=str) if k[0] == d]} for d in _days(start, end)]


def anthropic_cost_buckets(calls: list[Served], start: date, end: date) -> list[dict[str, Any]]:
    sums: dict[tuple, Decimal] = defaultdict(Decimal)
    for c in calls:
        sums[(c.day, c.scope_id)] += c.cost_usd
    return [{"starting_at": _iso(d), "ending_at": _iso(d + timedelta(days=1)), "results": [
        {"currency": "USD", "amount": str(v * 100), "workspace_id": k[1], "description": None, "cost_type": None,
         "context_window": None, "model": None, "service_tier": None, "token_type": None}
        for k, v in sorted(sums.items(), key=str) if k[0] == d]} for d in _days(start, end)]


def page(buckets: list[dict[str, Any]], query: dict[str, list[str]], *, default_limit: int = 7) -> dict[str, Any]:
    """The page of `buckets` a request's `limit` and `page` (an opaque cursor, here a base64 offset) ask for."""
    limit = int(query.get("limit", [str(default_limit)])[0])
    offset = int(base64.b64decode(query["page"][0]).decode()) if "page" in query else 0
    more = offset + limit < len(buckets)
    return {"data": buckets[offset : offset + limit], "has_more": more,
            "next_page": base64.b64encode(str(offset + limit).encode()).decode() if more else None}


def page_number(query: dict[str, list[str]], *, default_limit: int = 7) -> int:
    """1 for the first page `page` would answer, 2 for the next, ..."""
    limit = int(query.get("limit", [str(default_limit)])[0])
    offset = int(base64.b64decode(query["page"][0]).decode()) if "page" in query else 0
    return offset // limit + 1


def day_of_unix(value: str) -> date:
    return datetime.fromtimestamp(int(value), tz=timezone.utc).date()
