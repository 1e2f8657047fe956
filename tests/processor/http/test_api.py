"""The `--http` router: metrics exposition, health, readiness and the usage/budgets/reload API."""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
from datetime import datetime, timezone

import pytest
from prometheus_client import CollectorRegistry, Counter

from costline.processor.clock import system_clock
from costline.processor.http.api import AdminApi, ApiError, parse_usage_query, render_usage
from costline.processor.http.server import Request
from costline.processor.units import pico_to_usd

GROUPS = ("org", "team", "project", "user", "key", "model", "provider", "operation")


class Backend:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        Counter("costline_test", "a test counter", registry=self.registry).inc(3)
        self.is_ready = True
        self.calls: list = []
        self.reload_error: str | None = None

    def ready(self) -> bool:
        return self.is_ready

    def usage(self, start, end, group_by, *, limit=None, offset=0):
        self.calls.append((start, end, tuple(group_by)))
        # Money as the ledger's reader gives it: exact USD from pico-dollars (0.1 + 0.2 as a float would not be).
        return [{"team": "search", "model": "gpt-4o", "requests": 2, "cost_usd": pico_to_usd(300_000_000_000),
                 "input_tokens": 10},
                {"team": "support, \"tier 1\"", "model": "claude", "requests": 1, "cost_usd": pico_to_usd(100_000),
                 "input_tokens": 0}]

    def cost_changes(self, start, end, *, limit=None, offset=0):
        self.calls.append((start, end, "cost_changes"))
        changes = [{"changed_at": datetime(2026, 11, 21, 9, tzinfo=timezone.utc),
                    "hour": datetime(2026, 11, 20, 14, tzinfo=timezone.utc), "provider": "openai",
                    "model": "gpt-4o-mini", "old_cost_usd": pico_to_usd(99_000_000_000_000),
                    "new_cost_usd": pico_to_usd(1), "price_source": "override from 2026-11-15 gpt-4o-mini",
                    "row_id": row_id} for row_id in (7, 8, 9)]
        return changes[offset:][:limit]

    def budgets(self):
        return {"budgets": [{"scope": "team", "owner": "acme/search", "period": "monthly", "limit_usd": 10.0,
                             "spent_usd": 1.0}], "effective": []}

    def reload(self) -> str:
        if self.reload_error:
            raise ApiError(self.reload_error)
        return "config reloaded"


def get(api: AdminApi, path: str, headers: dict | None = None, method: str = "GET"):
    path, _, query = path.partition("?")
    from urllib.parse import parse_qs

    return api(Request(method, path, parse_qs(query), headers or {}))


@pytest.fixture
def backend() -> Backend:
    return Backend()


@pytest.fixture
def api(backend: Backend) -> AdminApi:
    return AdminApi(backend, GROUPS, clock=system_clock)


def test_metrics_text_openmetrics_and_gzip(api: AdminApi) -> None:
    response = get(api, "/metrics")
    assert response.status == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    assert b"costline_test_total 3.0" in b"".join(response.body)  # a stream of blocks
    response = get(api, "/metrics", {"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.content_type.startswith("application/openmetrics-text")
    assert response.body.endswith(b"# EOF\n")
    response = get(api, "/metrics", {"Accept-Encoding": "gzip"})
    assert ("Content-Encoding", "gzip") in response.headers
    assert b"costline_test_total 3.0" in gzip.decompress(b"".join(response.body))


def test_health_and_readiness(api: AdminApi, backend: Backend) -> None:
    assert get(api, "/healthz").status == 200
    assert get(api, "/readyz").status == 200
    backend.is_ready = False
    assert get(api, "/readyz").status == 503
    assert get(api, "/healthz").status == 200


def test_usage_json_and_csv(api: AdminApi, backend: Backend) -> None:
    response = get(api, "/api/v1/usage?from=2026-11-01&to=2026-11-30&group_by=team,model&format=json")
    assert response.status == 200 and response.content_type == "application/json"
    document = json.loads(response.body)
    assert document["group_by"] == ["team", "model"]
    assert document["rows"][0]["cost_usd"] == "0.300000000000"  # exact: money is a decimal string
    start, end, group_by = backend.calls[-1]
    assert start == datetime(2026, 11, 1, tzinfo=timezone.utc)
    assert end == datetime(2026, 12, 1, tzinfo=timezone.utc)  # a bare `to` date includes that whole day
    assert group_by == ("team", "model")

    response = get(api, "/api/v1/usage?from=2026-11-01T00:00:00Z&group_by=team,model&format=csv")
    assert response.content_type.startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.body.decode())))
    assert rows[0] == ["team", "model", "requests", "cost_usd", "input_tokens"]
    assert rows[1] == ["search", "gpt-4o", "2", "0.300000000000", "10"]  # every digit, not rounded
    assert rows[2][0] == 'support, "tier 1"'
    assert rows[2][3] == "0.000000100000"  # plain decimal, never 1E-7


def test_cost_changes_json_and_csv_with_exact_money_and_pages(api: AdminApi, backend: Backend) -> None:
    response = get(api, "/api/v1/cost-changes?from=2026-11-01&to=2026-11-30&limit=2")
    assert response.status == 200 and response.content_type == "application/json"
    document = json.loads(response.body)
    assert backend.calls[-1] == (datetime(2026, 11, 1, tzinfo=timezone.utc),
                                 datetime(2026, 12, 1, tzinfo=timezone.utc), "cost_changes")
    assert [row["row_id"] for row in document["rows"]] == [7, 8]
    assert document["rows"][0] == {
        "changed_at": "2026-11-21T09:00:00+00:00", "hour": "2026-11-20T14:00:00+00:00", "provider": "openai",
        "model": "gpt-4o-mini", "old_cost_usd": "99.000000000000", "new_cost_usd": "0.000000000001",
        "price_source": "override from 2026-11-15 gpt-4o-mini", "row_id": 7}  # money: exact, never 1E-12
    token = document["next_page_token"]
    assert ("Link", f'</api/v1/cost-changes?from=2026-11-01&to=2026-11-30&limit=2&page_token={token}>; '
                    'rel="next"') in response.headers
    last = json.loads(get(api, f"/api/v1/cost-changes?from=2026-11-01&to=2026-11-30&limit=2&page_token={token}").body)
    assert [row["row_id"] for row in last["rows"]] == [9] and last["next_page_token"] is None

    rows = list(csv.reader(io.StringIO(get(api, "/api/v1/cost-changes?format=csv").body.decode())))
    assert rows[0] == ["changed_at", "hour", "provider", "model", "old_cost_usd", "new_cost_usd", "price_source",
                       "row_id"]
    assert rows[1][4:6] == ["99.000000000000", "0.000000000001"] and len(rows) == 4
    assert get(api, "/api/v1/cost-changes?group_by=team").status == 400  # no grouping: one row per change


def test_usage_validation_names_the_parameter(api: AdminApi) -> None:
    for query, word in (("group_by=team,colour", "colour"), ("from=yesterday", "from"), ("format=xml", "format"),
                        ("from=2026-11-02&to=2026-11-01", "after"), ("group_by=team,team", "twice")):
        response = get(api, f"/api/v1/usage?{query}")
        assert response.status == 400, query
        assert word in json.loads(response.body)["error"]


def test_parse_usage_query_defaults() -> None:
    now = datetime(2026, 11, 22, 12, tzinfo=timezone.utc)
    query = parse_usage_query(lambda name: None, GROUPS, now=lambda: now)
    assert (query.start.year, query.end, query.group_by, query.format) == (1970, now, ("team", "model"), "json")
    content_type, body = render_usage(query, [])
    assert json.loads(body)["rows"] == []


def test_budgets_and_reload(api: AdminApi, backend: Backend) -> None:
    assert json.loads(get(api, "/api/v1/budgets").body)["budgets"][0]["owner"] == "acme/search"
    response = get(api, "/api/v1/reload", method="POST")
    assert response.status == 200 and json.loads(response.body)["status"] == "reloaded"
    backend.reload_error = "orgs[0].budget.monthly_usd: must be positive"
    response = get(api, "/api/v1/reload", method="POST")
    assert response.status == 400 and "monthly_usd" in json.loads(response.body)["error"]


def test_unknown_routes_and_methods(api: AdminApi) -> None:
    assert get(api, "/nope").status == 404
    response = get(api, "/api/v1/reload")
    assert response.status == 405 and response.headers == [("Allow", "POST")]


class LedgerBackend(Backend):
    """The router in front of a real (empty) SQLite ledger: offsets reach SQL as the service passes them."""

    def __init__(self, url: str) -> None:
        super().__init__()
        from costline.processor.ledger import Ledger

        self.ledger = Ledger(url)

    def usage(self, start, end, group_by, *, limit=None, offset=0):
        return self.ledger.usage(start, end, group_by, limit=limit, offset=offset)


def _unsigned_token(query: str, offset: int) -> str:
    """A token as a client can forge one: the document the server writes, with an offset of the client's choosing."""
    from urllib.parse import parse_qs

    from costline.processor.http.api import _query_digest

    params = {k: v[-1] for k, v in parse_qs(query).items()}
    parsed = parse_usage_query(params.get, GROUPS, now=system_clock)
    document = {"offset": offset, "end": parsed.end.isoformat(), "query": _query_digest(parsed)}
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


def test_page_tokens_are_signed_and_a_forged_one_is_a_400(api: AdminApi, tmp_path) -> None:
    query = "from=2026-11-01&to=2026-11-30&group_by=team&limit=1"
    first = json.loads(get(api, f"/api/v1/usage?{query}").body)
    token = first["next_page_token"]
    assert len(first["rows"]) == 1 and token
    second = get(api, f"/api/v1/usage?{query}&page_token={token}")
    assert second.status == 200 and len(json.loads(second.body)["rows"]) == 1

    payload, _, signature = token.partition(".")
    document = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    tampered = base64.urlsafe_b64encode(json.dumps({**document, "offset": 2**70}).encode()).decode().rstrip("=")
    ledger_api = AdminApi(LedgerBackend(f"sqlite:///{tmp_path / 'l.db'}"), GROUPS, clock=system_clock)
    for target, bad in ((api, _unsigned_token(query, 2**70)),  # forged: no signature
                        (api, f"{tampered}.{signature}"),  # the offset changed under a real signature
                        (api, token + "A" * 5000),  # oversized
                        (AdminApi(Backend(), GROUPS, clock=system_clock), token),  # another process (a restart) issued it
                        (ledger_api, _unsigned_token(query, 2**70))):  # a real ledger never sees the offset
        response = get(target, f"/api/v1/usage?{query}&page_token={bad}")
        assert response.status == 400, (bad[:40], response.body)
        assert json.loads(response.body)["error"].startswith("page_token:")
