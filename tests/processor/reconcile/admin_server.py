"""A local server speaking OpenAI's and Anthropic's admin report APIs as documented: the same paths, query
parameters, envelopes (`object: "page"` / `data` / `has_more` / `next_page`), daily buckets (empty ones included),
result objects and auth headers. Built from a list of calls the provider "served", so the report is the
provider's own book of what happened.

Faults for the tests: answer some statuses first (`fail_first=[429]`), always fail (`always=503`), or cut one page's
body short (`truncate_page=2`).
"""

from __future__ import annotations

import base64
import json
import threading
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

OPENAI_KEY = "sk-admin-test-openai"
ANTHROPIC_KEY = "sk-ant-admin01-test"


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


ROUTES = {
    "/v1/organization/usage/completions": ("openai", "usage"),
    "/v1/organization/costs": ("openai", "cost"),
    "/v1/organizations/usage_report/messages": ("anthropic", "usage"),
    "/v1/organizations/cost_report": ("anthropic", "cost"),
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: AdminReportServer  # type: ignore[assignment]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None, cut: bool = False) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(body) // 2 if cut else len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if cut else body)

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        self.server.log.append((url.path, query, dict(self.headers.items())))
        route = ROUTES.get(url.path)
        if route is None:
            return self._send(404, b'{"error": {"message": "not found"}}')
        provider, kind = route
        if provider == "openai":
            ok = self.headers.get("authorization") == f"Bearer {OPENAI_KEY}"
        else:
            ok = self.headers.get("x-api-key") == ANTHROPIC_KEY and self.headers.get("anthropic-version")
        if not ok:
            return self._send(401, b'{"error": {"type": "authentication_error", "message": "invalid x-api-key"}}')
        with self.server.lock:
            status = self.server.fail_first.pop(0) if self.server.fail_first else self.server.always
        if status:
            return self._send(status, b'{"error": {"message": "overloaded"}}', {"retry-after": "0"})
        buckets = self.server.buckets[(provider, kind)]
        limit = int(query.get("limit", ["7"])[0])
        offset = int(base64.b64decode(query["page"][0]).decode()) if "page" in query else 0
        chunk = buckets[offset : offset + limit]
        more = offset + limit < len(buckets)
        page: dict[str, Any] = {"data": chunk, "has_more": more,
                                "next_page": base64.b64encode(str(offset + limit).encode()).decode() if more else None}
        if provider == "openai":
            page = {"object": "page", **page}
        body = json.dumps(page, default=_number).encode()
        number = offset // limit + 1
        self._send(200, body, cut=self.server.truncate_page == number)


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)  # OpenAI's amount.value is a JSON number: written as its shortest repr
    raise TypeError(type(value))


class AdminReportServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, calls: list[Served], start: date, end: date, *, provider: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.log: list[tuple[str, dict, dict]] = []
        self.fail_first: list[int] = []
        self.always = 0
        self.truncate_page = 0
        if provider == "openai":
            self.buckets = {("openai", "usage"): openai_usage_buckets(calls, start, end),
                            ("openai", "cost"): openai_cost_buckets(calls, start, end)}
        else:
            self.buckets = {("anthropic", "usage"): anthropic_usage_buckets(calls, start, end),
                            ("anthropic", "cost"): anthropic_cost_buckets(calls, start, end)}

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> AdminReportServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
