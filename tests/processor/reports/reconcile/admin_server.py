"""A local server speaking OpenAI's and Anthropic's admin report APIs as documented: the same paths, query
parameters, envelopes (`object: "page"` / `data` / `has_more` / `next_page`), daily buckets (empty ones included),
result objects and auth headers. Built from a list of calls the provider "served", so the report is the
provider's own book of what happened.

Faults for the tests: answer some statuses first (`fail_first=[429]`), always fail (`always=503`), or cut one page's
body short (`truncate_page=2`).
"""

from __future__ import annotations

import json
import threading
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from costline.testing.admin_reports import (  # noqa: F401 - Served and the builders are the tests' vocabulary too
    Served,
    anthropic_cost_buckets,
    anthropic_usage_buckets,
    openai_cost_buckets,
    openai_usage_buckets,
    page,
    page_number,
)

OPENAI_KEY = "sk-admin-test-openai"
ANTHROPIC_KEY = "sk-ant-admin01-test"


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
        answer = page(self.server.buckets[(provider, kind)], query)
        if provider == "openai":
            answer = {"object": "page", **answer}
        body = json.dumps(answer, default=_number).encode()
        self._send(200, body, cut=self.server.truncate_page == page_number(query))


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
