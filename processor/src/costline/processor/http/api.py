"""The `--http` listener's router: `/metrics`, `/healthz`, `/readyz` and the JSON/CSV API under `/api/v1/`.

| route | answer |
|---|---|
| `GET /metrics` | Prometheus exposition of the injected registry (OpenMetrics when asked for, gzip when accepted) |
| `GET /healthz` | 200 while the process serves HTTP |
| `GET /readyz` | 200 once the ledger is open and while it answers, else 503 |
| `GET /api/v1/budgets` | budget state per scope and period, from the ledger (JSON) |
| `GET /api/v1/usage?from=&to=&group_by=team,model&format=csv\\|json&limit=&page_token=` | ledger rows summed per group, one page |
| `GET /api/v1/runs?month=2026-11\\|from=&to=&kind=trace\\|conversation\\|session&org=&team=&project=&user=&limit=&format=json\\|csv\\|table` | the runs that cost most in the period (their calls in its hours), one row per run and team (docs/processor.md) |
| `GET /api/v1/runs/<kind>/<id>?format=` | one run's cost: its total and a row per owner; 404 when the ledger holds none of it for the caller |
| `GET /api/v1/cost-changes?from=&to=&format=csv\\|json&limit=&page_token=` | the re-rating audit trail (`costline reprice --all`), oldest first, one page; admin and finance roles |
| `GET /api/v1/chargeback?period=2026-11&team=&format=json\\|csv\\|table\\|focus\\|html&limit=&page_token=` | the month's chargeback statement, one page of teams (docs/chargeback.md) |
| `GET /api/v1/customers?period=2026-11&customer=&format=json\\|table` | the month's cost, revenue and margin per customer (docs/chargeback.md); not for team tokens |
| `POST /api/v1/reload` | re-read the config and prices; 400 naming the key and the rule when the new config is invalid |
| `GET /api/v1/policy?key=<fingerprint>&org=&team=&project=&user=&customer=&feature=&models=` | the caller's model rules, effective remaining budget and rates, for the guard (`policy_api.py`) |
| `POST /api/v1/admin/{orgs,teams,projects,users,keys,tokens}` | one administrative change (`governance.changes`); `If-Match` the version read |
| `GET /api/v1/admin/state?kind=`, `GET /api/v1/admin/audit?object=` | the objects, and the audit log, in the token's scope |
| `GET /api/v1/admin/export` | the merged state as a config file (YAML) |

Who may ask which route is `auth.py`'s: `auth.ROUTES` names the permission of each route, and the router asks
`Access` before running it. A scoped token reads its own scope's rows only (`org`/`team`/`user` filters, forced for
it; asking outside it is a 403 naming the scope); `usage`, `budgets` and `runs` take the same filters for other roles; asking for one run reads that run's rows
of its own scope only, so another team's run is a 404 like a run never billed.

Usage (and cost-change) parsing and rendering live here as functions so `costline usage` (`costline cost-changes`)
gives byte-for-byte the same CSV as the API.
A ledger that cannot answer (`Unavailable` from the backend) is a 503 + Retry-After on every route.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, timezone
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import unquote, urlencode

from isal import isal_zlib
from prometheus_client import CollectorRegistry

from costline.processor.clock import Clock
from costline.processor.config.core import ApiConfig
from costline.processor.formats import CSV_TYPE, JSON_TYPE, csv_text, json_default, json_value
from costline.processor.governance.changes import AdminError
from costline.processor.http import auth
from costline.processor.http.server import BadBody, BodyTooLarge, Request, Response
from costline.processor.metrics.exposition import encoder_for, generate_chunks, generate_text
from costline.processor.reports.reprice import COST_CHANGE_COLUMNS
from costline.processor.units import EPOCH, LATEST

GZIP_WBITS = 16 + isal_zlib.MAX_WBITS
"""zlib's window bits for a gzip stream (header and CRC trailer) with the largest window."""


class ApiError(ValueError):
    """A client error: answered 400 with the message."""


class Forbidden(ApiError):
    """The caller's role may not see what it asked for: answered 403 with the message and no data."""


class Unavailable(Exception):
    """The ledger cannot answer now (not open yet, down, locked): answered 503 + Retry-After with the message,
    which says so in a few words. The backend logs the details (SQL, host), the client does not get them."""


class Backend(Protocol):
    """What the API needs from the running processor (cli.py adapts the pipeline to it)."""

    registry: CollectorRegistry

    def ready(self) -> bool: ...

    def usage(self, start: datetime, end: datetime, group_by: Sequence[str], *, limit: int | None = None,
              offset: int = 0) -> list[dict[str, Any]]:
        """Rows in the ledger's order (cost, highest first), `offset` rows skipped, at most `limit`."""
        ...

    def budgets(self) -> Mapping[str, Any]: ...

    def runs(self, start: datetime, end: datetime, *, kind: str | None, scope: Mapping[str, str],
             limit: int) -> list[dict[str, Any]]:
        """What runs cost in [start, end) within `scope`, most expensive first (`ledger.runs.top_runs`)."""
        ...

    def run(self, kind: str, run_id: str, *, scope: Mapping[str, str]) -> list[dict[str, Any]]:
        """One run's rows within `scope`, one per owner (`ledger.runs.run_rows`); empty when none."""
        ...

    def zone(self) -> Any:
        """The configured time zone (a `month` of the runs query is a month there)."""
        ...

    def cost_changes(self, start: datetime, end: datetime, *, limit: int | None = None,
                     offset: int = 0) -> list[dict[str, Any]]:
        """The re-rates made in [start, end), oldest first (`reports.reprice.cost_changes`)."""
        ...

    def chargeback(self, period: str | None, team: str | None, fmt: str, *, private: bool = False,
                   limit: str | None = None, page_token: str | None = None) -> tuple[str, bytes, str | None]:
        """(content type, body, next page token) of one page of the chargeback statement of `period` (`YYYY-MM`;
        None: the current month), restricted to `team` when given, in `fmt` (docs/chargeback.md), `limit` teams
        from `page_token` on. Raises `ApiError` when it cannot be made (no `chargeback:` section, a bad period,
        format, limit or token, an unknown team). `private`: the caller may see `team` only; its month without
        charges is an empty statement, and no other team is named."""
        ...

    def customers(self, period: str | None, customer: str | None, fmt: str) -> tuple[str, bytes]:
        """(content type, body) of the customers' cost and margin for `period` (`reports/chargeback/customers.py`).
        Raises `ApiError` for a bad period or format, or an unknown customer."""
        ...

    def reload(self) -> str:
        """Reload config and prices; returns a short description. Raises ApiError when the config is invalid."""
        ...

    def policy(self, fingerprint: str | None, declared: Mapping[str, str], models: Sequence[str]
               ) -> Mapping[str, Any]:
        """The guard's view of one caller (`policy_api.policy_document`)."""
        ...

    def admin_change(self, name: str, role: str, kind: str, body: Mapping[str, Any], if_match: str | None
                     ) -> dict[str, Any]:
        """One administrative change by the token `name` of `role` (`governance.changes.Administration.change`);
        raises `AdminError` with its status when refused."""
        ...

    def admin_state(self) -> Mapping[str, Any]:
        """`{objects: [{object, kind, name, path, version, ...}], conflicts: [...]}` of the merged state."""
        ...

    def admin_audit(self) -> list[dict[str, Any]]:
        """Every administrative change, oldest first: `{id, object, version, path, action, actor, at, before,
        after}`."""
        ...

    def admin_export(self) -> str:
        """The merged state as a config file (`governance.export`)."""
        ...


@dataclass(frozen=True, slots=True)
class UsageQuery:
    start: datetime
    end: datetime
    group_by: tuple[str, ...]
    format: str
    limit: int = 0
    """Rows per page (the API's `limit`); 0: no limit (`costline usage` exports everything)."""
    offset: int = 0
    """Rows before this page, from `page_token`."""


DEFAULT_GROUP_BY = ("team", "model")
MAX_PAGE_ROWS = 10_000
"""Most rows one `/api/v1/usage` answer holds (and the default `limit`): ~3 MB of CSV. A ledger with more groups
is read page by page (`next_page_token`, or the `Link: rel="next"` header), or whole with `costline usage`."""




def parse_instant(value: str, name: str, *, end_of_day: bool = False) -> datetime:
    """ISO date (`2026-11-01`) or datetime (`2026-11-01T12:00:00Z`), from 1970-01-01 to 9998-12-31 (`LATEST`);
    naive values are UTC. `ApiError` naming `name` otherwise.

    A bare date as `to` means the end of that day (`--to 2026-11-30` includes the 30th), which is what a finance
    user means by "from the 1st to the 30th". `costline reconcile --to` follows the same rule.
    """
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            instant = datetime.combine(day, time(), tzinfo=timezone.utc)
            instant = instant + timedelta(days=1) if end_of_day else instant
        else:
            instant = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            instant = instant if instant.tzinfo else instant.replace(tzinfo=timezone.utc)
    except ValueError:
        raise ApiError(f"{name}={value!r}: expected an ISO date (2026-11-01) or datetime (2026-11-01T12:00:00Z)"
                       ) from None
    except OverflowError:
        instant = LATEST + timedelta(days=1)  # out of range either way: the message below
    if not EPOCH <= instant <= LATEST:
        raise ApiError(f"{name}={value!r}: out of range; dates run from 1970-01-01 to 9998-12-31")
    return instant


def parse_usage_query(params: Callable[[str], str | None], allowed_group_by: Iterable[str], now: Clock, *,
                      pages: PageTokens | None = None, default_group_by: tuple[str, ...] = DEFAULT_GROUP_BY
                      ) -> UsageQuery:
    """Validate `from`, `to`, `group_by` and `format` (shared by the API and `costline usage`); with `pages`
    (the API's), `limit` and `page_token` too. The cost changes take the same, without a grouping
    (`allowed_group_by` and `default_group_by` empty). `now` (the caller's clock) ends a window without `to`."""
    page = pages.read(params("page_token") or "") if pages is not None and params("page_token") else None
    start_text, end_text = params("from"), params("to")
    start = parse_instant(start_text, "from") if start_text else EPOCH
    if end_text:
        end = parse_instant(end_text, "to", end_of_day=True)
    elif page is not None:
        # The first page's "now": later pages rank the same hours, not a window that moved meanwhile.
        end = page["end"]
    else:
        end = now()
    if end <= start:
        raise ApiError(f"to ({end.isoformat()}) must be after from ({start.isoformat()})")
    allowed = tuple(allowed_group_by)
    group_text = params("group_by")
    group_by = tuple(g.strip() for g in group_text.split(",") if g.strip()) if group_text else default_group_by
    unknown = [g for g in group_by if g not in allowed]
    if unknown:
        raise ApiError(f"group_by: unknown {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    if len(set(group_by)) != len(group_by):
        raise ApiError("group_by: a column appears twice")
    fmt = (params("format") or "json").lower()
    if fmt not in ("json", "csv"):
        raise ApiError(f"format={fmt!r}: use csv or json")
    if pages is None:
        return UsageQuery(start, end, group_by, fmt)
    limit_text = params("limit")
    try:
        limit = int(limit_text) if limit_text else MAX_PAGE_ROWS
    except ValueError:
        raise ApiError(f"limit={limit_text!r}: must be an integer") from None
    if not 1 <= limit <= MAX_PAGE_ROWS:
        raise ApiError(f"limit={limit_text!r}: must be between 1 and {MAX_PAGE_ROWS}")
    query = UsageQuery(start, end, group_by, fmt, limit)
    if page is None:
        return query
    if page["query"] != _query_digest(query):
        raise ApiError("page_token: issued for another from/to/group_by; start again without it")
    return UsageQuery(start, end, group_by, fmt, limit, page["offset"])


PAGE_TOKEN_MAX_CHARS = 512
"""Longest `page_token` read: the tokens issued are ~150 characters; anything much longer is not one of them."""


class PageTokens:
    """Issues and reads the API's `page_token`s: the offset of the next page, the end instant a default `to`
    resolved to, and a digest of the range and grouping so that a token cannot be applied to another query.

    Tokens are signed (HMAC-SHA256) with a key made when the API starts: the server trusts the offset in a token
    only because it wrote it, so a forged or edited token (a huge offset, say) is a 400 naming `page_token`, never
    a query. A token does not outlive the process that issued it: after a restart, or on another replica behind a
    load balancer, it is refused and the client starts again without it.
    """

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else secrets.token_bytes(32)

    def issue(self, query: UsageQuery, rows_returned: int) -> str:
        """The token of the page after `query`'s, which returned `rows_returned` rows."""
        document = {"offset": query.offset + rows_returned, "end": query.end.isoformat(),
                    "query": _query_digest(query)}
        payload = _b64(json.dumps(document, separators=(",", ":")).encode())
        return f"{payload}.{_b64(self._signature(payload))}"

    def read(self, token: str) -> dict[str, Any]:
        """`{offset, end, query}` of a token this object issued; `ApiError` naming `page_token` for anything else."""
        payload, _, signature = token.partition(".")
        try:
            if len(token) > PAGE_TOKEN_MAX_CHARS or not hmac.compare_digest(
                    base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)), self._signature(payload)):
                raise ValueError
            document = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            offset, end, digest = document["offset"], document["end"], document["query"]
            end = datetime.fromisoformat(end)
        except (ValueError, TypeError, KeyError, binascii.Error):
            raise ApiError("page_token: not a token this server issued (use next_page_token as given; tokens do "
                           "not outlive a restart: start again without it)") from None
        return {"offset": offset, "end": end, "query": digest}

    def _signature(self, payload: str) -> bytes:
        return hmac.new(self._key, payload.encode("ascii", "replace"), hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _query_digest(query: UsageQuery) -> str:
    text = f"{query.start.isoformat()}|{query.end.isoformat()}|{','.join(query.group_by)}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def render_usage(query: UsageQuery, rows: list[dict[str, Any]], next_page: str | None = None) -> tuple[str, bytes]:
    """(content type, body). CSV columns: the group_by columns, then every other column the ledger returned.
    JSON carries `next_page_token` (null on the last page) when the query is paged."""
    return _render_rows(query, {"group_by": list(query.group_by)}, query.group_by, rows, next_page)


def render_cost_changes(query: UsageQuery, rows: list[dict[str, Any]], next_page: str | None = None
                        ) -> tuple[str, bytes]:
    """(content type, body) of the re-rating audit trail, as `render_usage` writes usage (columns:
    `reprice.COST_CHANGE_COLUMNS`; money as exact decimal text)."""
    return _render_rows(query, {}, COST_CHANGE_COLUMNS, rows, next_page)


def _render_rows(query: UsageQuery, head: dict[str, Any], first_columns: Sequence[str], rows: list[dict[str, Any]],
                 next_page: str | None) -> tuple[str, bytes]:
    if query.format == "json":
        document: dict[str, Any] = {"from": query.start.isoformat(), "to": query.end.isoformat(), **head,
                                    "rows": [{k: json_value(v) for k, v in row.items()} for row in rows]}
        if query.limit:
            document["next_page_token"] = next_page
        return JSON_TYPE, json.dumps(document, separators=(",", ":")).encode()
    columns = list(first_columns)
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    return CSV_TYPE, csv_text(columns, ([row.get(c) for c in columns] for row in rows)).encode()


def _gzipped(blocks: Iterable[bytes]) -> Iterator[bytes]:
    """The blocks as one gzip stream, compressed as they come. ISA-L's deflate at level 1 (`isal`, zlib's interface
    and format): a 100k-series exposition shrinks ~38x, as with zlib's level 1, in ~0.09 s of CPU instead of
    0.8-1.4 s (docs/performance.md), so gzip costs a scrape a fifth of the writing instead of twice it."""
    compressor = isal_zlib.compressobj(1, isal_zlib.DEFLATED, GZIP_WBITS)
    for block in blocks:
        yield compressor.compress(block)
    yield compressor.flush()


def _json(status: int, document: Any) -> Response:
    return Response(status, json.dumps(document, separators=(",", ":"), default=json_default).encode(), JSON_TYPE)


RUN_PREFIX = "/api/v1/runs/"
OWNER_FILTERS = ("org", "team", "user")
"""Query parameters that narrow usage and budgets to one owner (forced to its own scope for a scoped token)."""


def _next_link(request: Request, token: str | None) -> list[tuple[str, str]]:
    """The `Link: rel="next"` header of a paged answer (none on the last page): the same query, the next token."""
    if token is None:
        return []
    params = {k: v[-1] for k, v in request.query.items() if k != "page_token"}
    return [("Link", f'<{request.path}?{urlencode({**params, "page_token": token})}>; rel="next"')]


class AdminApi:
    """Router for `--http`."""

    def __init__(self, backend: Backend, allowed_group_by: Iterable[str], *, clock: Clock, retry_after_s: int = 5,
                 access: auth.Access | None = None) -> None:
        """`clock` (the service's) ends a usage window asked without `to`."""
        self._backend = backend
        self._pages = PageTokens()
        self._retry_after = str(retry_after_s)
        self._allowed_group_by = tuple(allowed_group_by)
        self._clock = clock
        self.access = access or auth.Access(ApiConfig(), clock)
        handlers: dict[tuple[str, str], Callable[[Request, auth.Principal], Response]] = {
            ("GET", "/metrics"): self._metrics,
            ("GET", "/healthz"): lambda _r, _p: Response.text(HTTPStatus.OK, "ok\n"),
            ("GET", "/readyz"): self._readyz,
            ("GET", "/api/v1/budgets"): self._budgets,
            ("GET", "/api/v1/usage"): self._usage,
            ("GET", "/api/v1/runs"): self._runs,
            ("GET", "/api/v1/chargeback"): self._chargeback,
            ("GET", "/api/v1/customers"): self._customers,
            ("GET", "/api/v1/cost-changes"): self._cost_changes,
            ("POST", "/api/v1/reload"): self._reload,
            ("GET", "/api/v1/policy"): self._policy,
            ("GET", "/api/v1/admin/state"): self._admin_state,
            ("GET", "/api/v1/admin/audit"): self._admin_audit,
            ("GET", "/api/v1/admin/export"): self._admin_export,
            **{("POST", f"/api/v1/admin/{kind}"): self._admin_change for kind in auth.ADMIN_KINDS},
        }
        # Each route's permission is `auth.ROUTES`'s, the one table: a route missing there is a bug at start.
        self._routes = {route: (handler, auth.ROUTES[route]) for route, handler in handlers.items()}

    def __call__(self, request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        route = self._routes.get((method, request.path))
        if route is None and request.path.startswith(RUN_PREFIX):  # one run: /api/v1/runs/<kind>/<id>
            route = (self._run, auth.ROUTES[("GET", auth.RUN_ROUTE)]) if method == "GET" else None
            if route is None:
                return Response.text(HTTPStatus.METHOD_NOT_ALLOWED, "method not allowed\n", [("Allow", "GET")])
        if route is None:
            allowed = [m for (m, p) in self._routes if p == request.path]
            if allowed:
                return Response.text(HTTPStatus.METHOD_NOT_ALLOWED, "method not allowed\n",
                                     [("Allow", ", ".join(allowed))])
            return Response.text(HTTPStatus.NOT_FOUND, "not found\n")
        handler, permission = route
        principal = self.access.check(request, permission)
        if isinstance(principal, Response):
            return principal
        try:
            return handler(request, principal)
        except Forbidden as err:
            return _json(HTTPStatus.FORBIDDEN, {"error": str(err)})
        except AdminError as err:
            return _json(err.status, {"error": str(err)})
        except ApiError as err:
            return _json(HTTPStatus.BAD_REQUEST, {"error": str(err)})
        except Unavailable as err:
            return Response(HTTPStatus.SERVICE_UNAVAILABLE, json.dumps({"error": str(err)}).encode(), JSON_TYPE,
                            [("Retry-After", self._retry_after)])

    @staticmethod
    def _owner_filter(request: Request, principal: auth.Principal) -> dict[str, str]:
        """`{org, team, user}` values rows must have: what the query asks for, and for a scoped token its own scope
        (a request for an owner outside it is refused, naming the scope, not answered empty)."""
        wanted = {name: value for name in OWNER_FILTERS if (value := request.param(name))}
        role = principal.parsed
        if role.reads_everything or not role.scope:
            return wanted
        forced = dict(zip(OWNER_FILTERS, role.scope, strict=False))
        for name, value in forced.items():
            if wanted.get(name, value) != value:
                raise Forbidden(f"scope {name} {wanted[name]} is not within this token's scope "
                                f"({role.describe_scope()})")
        return {**wanted, **forced}

    def _metrics(self, request: Request, _: auth.Principal) -> Response:
        # Plain text through our own writer (same bytes as generate_latest, several times faster at many series),
        # streamed block by block as it is written: the text (350 MiB at 100k series) is never held whole.
        encoder, content_type = encoder_for(request.header("Accept") or "")
        registry = self._backend.registry
        body = generate_chunks(registry) if encoder is generate_text else encoder(registry)
        if "gzip" in (request.header("Accept-Encoding") or ""):
            return Response(HTTPStatus.OK, _gzipped([body] if isinstance(body, bytes) else body), content_type,
                            [("Content-Encoding", "gzip")])
        return Response(HTTPStatus.OK, body, content_type)

    def _readyz(self, _r: Request, _p: auth.Principal) -> Response:
        if self._backend.ready():
            return Response.text(HTTPStatus.OK, "ready\n")
        return Response.text(HTTPStatus.SERVICE_UNAVAILABLE, "ledger not reachable\n",
                             [("Retry-After", self._retry_after)])

    def _budgets(self, request: Request, principal: auth.Principal) -> Response:
        document = self._backend.budgets()
        only = self._owner_filter(request, principal)
        if only:
            document = {part: [row for row in rows if all(row.get(k) == v for k, v in only.items())]
                        for part, rows in document.items()}
        return _json(HTTPStatus.OK, document)

    def _usage(self, request: Request, principal: auth.Principal) -> Response:
        query = parse_usage_query(request.param, self._allowed_group_by, self._clock, pages=self._pages)
        only = self._owner_filter(request, principal)
        if only:
            # The ledger is asked per owner too and the other owners' rows dropped here: the rows that remain sum
            # exactly what the query groups, in the ledger's order, and are paged after filtering.
            extra = tuple(c for c in only if c not in query.group_by)
            rows = [row for row in self._backend.usage(query.start, query.end, (*query.group_by, *extra))
                    if all(row.get(k) == v for k, v in only.items())]
            rows = [{k: v for k, v in row.items() if k not in extra}
                    for row in rows[query.offset: query.offset + query.limit + 1]]
        else:
            # One row more than the page: whether there is a next page, without counting the groups.
            rows = self._backend.usage(query.start, query.end, query.group_by, limit=query.limit + 1,
                                       offset=query.offset)
        token = self._pages.issue(query, query.limit) if len(rows) > query.limit else None
        content_type, body = render_usage(query, rows[: query.limit], token)
        return Response(HTTPStatus.OK, body, content_type, _next_link(request, token))

    def _run_scope(self, request: Request, principal: auth.Principal) -> dict[str, str]:
        """The owner filters of a runs query: `org` and `team` as usage takes them (`_owner_filter`: a team token's
        own team, another one refused), `project` and `user` as asked."""
        return {**self._owner_filter(request, principal),
                **{name: value for name in ("project", "user") if (value := request.param(name))}}

    def _runs(self, request: Request, principal: auth.Principal) -> Response:
        from costline.processor.http.runs_api import RunsQueryError, parse_runs_query, render_top

        scope = self._run_scope(request, principal)
        try:
            query = parse_runs_query(request.param, self._clock, self._backend.zone())
        except RunsQueryError as err:
            raise ApiError(str(err)) from None
        rows = self._backend.runs(query.start, query.end, kind=query.kind, scope=scope, limit=query.limit)
        content_type, body = render_top(replace(query, scope=scope), rows)
        return Response(HTTPStatus.OK, body, content_type)

    def _run(self, request: Request, principal: auth.Principal) -> Response:
        from costline.processor.http.runs_api import RunsQueryError, parse_format, parse_run_id, render_run

        kind, _, quoted = request.path[len(RUN_PREFIX):].partition("/")
        kind = unquote(kind)
        scope = self._run_scope(request, principal)
        try:
            run_id = parse_run_id(kind, unquote(quoted))
            fmt = parse_format(request.param("format"))
        except RunsQueryError as err:
            raise ApiError(str(err)) from None
        rows = self._backend.run(kind, run_id, scope=scope)
        if not rows:
            within = f" among the calls of {', '.join(f'{k} {v}' for k, v in scope.items())}" if scope else ""
            return _json(HTTPStatus.NOT_FOUND, {"error": f"no {kind} {run_id!r} in the ledger{within} (never billed, "
                                                         "or older than runs.retention_days)"})
        content_type, body = render_run(kind, run_id, rows, fmt)
        return Response(HTTPStatus.OK, body, content_type)

    def _cost_changes(self, request: Request, principal: auth.Principal) -> Response:
        # The audit trail names no owner, so it cannot be narrowed to a scope: `auth.AUDIT` is unscoped readers'.
        query = parse_usage_query(request.param, (), self._clock, pages=self._pages, default_group_by=())
        rows = self._backend.cost_changes(query.start, query.end, limit=query.limit + 1, offset=query.offset)
        token = self._pages.issue(query, query.limit) if len(rows) > query.limit else None
        content_type, body = render_cost_changes(query, rows[: query.limit], token)
        return Response(HTTPStatus.OK, body, content_type, _next_link(request, token))

    def _chargeback(self, request: Request, principal: auth.Principal) -> Response:
        fmt = (request.param("format") or "json").lower()
        team = request.param("team")
        role = principal.parsed
        if len(role.scope) == 1:  # an org admin reads one of its teams' pages, never the others' lines
            org, _, name = (team or "").rpartition("/")
            if not team or (org or role.scope[0]) != role.scope[0]:
                raise Forbidden(f"scope {'team ' + team if team else 'every team'} is not within this token's "
                                f"scope ({role.describe_scope()}): ask for team=<team> of org {role.scope[0]}")
            team = f"{role.scope[0]}/{name}"
        elif principal.team is not None:  # a team token gets its own team's page, never the others' lines
            own = "/".join(principal.team)
            if team not in (None, own, principal.team[1]):
                raise Forbidden(f"scope team {team} is not within this token's scope ({role.describe_scope()})")
            team = own
        content_type, body, token = self._backend.chargeback(
            request.param("period"), team, fmt, private=bool(role.scope), limit=request.param("limit"),
            page_token=request.param("page_token"))
        return Response(HTTPStatus.OK, body, content_type, _next_link(request, token))

    def _customers(self, request: Request, principal: auth.Principal) -> Response:
        if principal.team is not None:  # customers span teams: a team token would read the others' spend
            raise Forbidden("a team token may not read the customers' report (it spans every team)")
        content_type, body = self._backend.customers(request.param("period"), request.param("customer"),
                                                     (request.param("format") or "json").lower())
        return Response(HTTPStatus.OK, body, content_type)

    def _reload(self, request: Request, _: auth.Principal) -> Response:
        try:
            request.read_body(64 * 1024)  # ignored; read so the connection can be kept alive
        except (BodyTooLarge, BadBody):
            pass  # the server closes the connection instead
        return _json(HTTPStatus.OK, {"status": "reloaded", "detail": self._backend.reload()})

    def _policy(self, request: Request, _: auth.Principal) -> Response:
        declared = {name: value for name in ("org", "team", "project", "user", "customer", "feature", "environment")
                    if (value := request.param(name))}
        models = [m for m in (request.param("models") or "").split(",") if m]
        return _json(HTTPStatus.OK, self._backend.policy(request.param("key"), declared, models))

    # -- delegated administration (`governance/`; docs/governance.md) ----------------------------------------------

    def _admin_change(self, request: Request, principal: auth.Principal) -> Response:
        kind = request.path.rsplit("/", 1)[1].removesuffix("s")
        try:
            raw = request.read_body(ADMIN_BODY_BYTES)
        except BodyTooLarge:
            raise ApiError(f"the body is over {ADMIN_BODY_BYTES} bytes") from None
        except BadBody:
            raise ApiError("the body could not be read") from None
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            raise ApiError("the body is not JSON") from None
        if not isinstance(body, dict):
            raise ApiError("the body must be a JSON object")
        result = self._backend.admin_change(principal.name, principal.role, kind, body, request.header("If-Match"))
        status = HTTPStatus.CREATED if result["action"] in ("create", "request") else HTTPStatus.OK
        response = _json(status, result)
        response.headers.append(("ETag", f'"{result["version"]}"'))
        return response

    def _admin_state(self, request: Request, principal: auth.Principal) -> Response:
        role = principal.parsed
        document = self._backend.admin_state()
        wanted = request.param("kind")
        objects = [o for o in document["objects"] if role.holds(tuple(o["path"])) and wanted in (None, o["kind"])]
        answer: dict[str, Any] = {"objects": objects}
        if role.reads_everything:
            answer["conflicts"] = document["conflicts"]
        return _json(HTTPStatus.OK, answer)

    def _admin_audit(self, request: Request, principal: auth.Principal) -> Response:
        role = principal.parsed
        wanted = request.param("object")
        rows = [row for row in self._backend.admin_audit()
                if role.holds(tuple(p for p in row["path"].split("/") if p)) and wanted in (None, row["object"])]
        return _json(HTTPStatus.OK, {"changes": rows})

    def _admin_export(self, _: Request, __: auth.Principal) -> Response:
        return Response(HTTPStatus.OK, self._backend.admin_export().encode(), "application/yaml")


ADMIN_BODY_BYTES = 64 * 1024
"""Largest administrative change read: an object's fields and model rules are a few hundred bytes."""
