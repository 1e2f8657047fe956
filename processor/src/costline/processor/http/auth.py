"""Who may ask the `--http` API: bearer tokens from `api.tokens` in the config (and those made through the admin
API, `governance/`), each with one role and, for most roles, a scope.

| role | scope | may |
|---|---|---|
| `system-admin` (earlier `admin`) | everything | every route; every administrative change |
| `org-admin:<org>` | the org | read its usage, runs, budgets, chargeback pages and audit log; create, rename and retire its teams, their users, keys and tokens; set their budgets and model rules |
| `team-admin:<org>/<team>` | the team | read the team's usage, runs, budgets, chargeback page and audit log; manage its users, keys and member tokens |
| `member:<org>/<team>/<user>` | the user | read their own usage, runs, budgets and objects; register and retire their own keys |
| `finance` | everything, read-only | read everything: usage, runs, budgets, chargeback, customers, the re-rating and administrative audit logs |
| `guard` | — | `GET /api/v1/policy` only (the in-process guard of the instrumentation) |
| `metrics` | — | `GET /metrics` only (Prometheus' scrape credentials when `api.metrics_token_required`) |
| `team:<org>/<team>` (earlier) | the team, read-only | read that team's usage, runs, budgets, chargeback page and objects |

`ROUTES` below is the one table of which route takes which permission, and `PERMISSIONS` which roles hold it
(docs/governance.md prints both; a test asks every route with every role). A role that may not use a route is a 403
naming the role and the route; a request for an owner outside the token's scope is a 403 naming that scope (never an
empty answer). Tokens are stored as `sha256:<hex>` of the token (`costline hash-token` prints it), so the config
file holds no secret. A missing, unknown or expired token is a 401; the token of a retired user (team, org) a 403
naming it. With no tokens configured the API answers loopback clients only (as a system admin; 403 to anyone else)
and `costline serve` warns at start when it listens beyond loopback. `/healthz` and `/readyz` are always open, and
`/metrics` is open unless `api.metrics_token_required`: the series carry every team's spend, so a team token (or the
guard's) that could scrape them would read past its team.

The OTLP receivers take one shared token (`--token`), checked by `BearerAuth`; both read the header with the one
parser here, `bearer_token`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timezone
from http import HTTPStatus

from costline.processor.clock import Clock
from costline.processor.config.core import ApiConfig, ApiToken
from costline.processor.governance import scope
from costline.processor.http.server import Request, Response

ADMIN = scope.SYSTEM_ADMIN
FINANCE = scope.FINANCE
GUARD = scope.GUARD
SCRAPER = scope.METRICS
"""The role of Prometheus' token: `/metrics` and nothing else (`METRICS` below is the permission it grants)."""
TEAM_ROLE_PREFIX = "team:"

# What a route needs.
OPEN = "open"
METRICS = "metrics"
READ = "read"
"""Usage and budgets, narrowed to the token's scope."""
CHARGEBACK = "chargeback"
"""A team's statement page (every team's for system admins and finance)."""
AUDIT = "audit"
"""The re-rating audit trail, which names no owner: unscoped readers only."""
WRITE = "write"
POLICY = "policy"
ADMIN_READ = "admin-read"
"""The org chart's objects and the administrative audit log, narrowed to the token's scope."""
ADMIN_WRITE = "admin-write"
"""Administrative changes, each within the token's scope (`governance.scope.Role.may_change`)."""
EXPORT = "export"
"""The merged state as a config file: it holds every token's hash and every budget."""
CUSTOMERS = "customers"
"""Every customer's cost, revenue and margin: they cross every team, so unscoped readers only."""

_SCOPED_READERS = frozenset({scope.ORG_ADMIN, scope.TEAM_ADMIN, scope.MEMBER, scope.TEAM_VIEWER})
PERMISSIONS: dict[str, frozenset[str]] = {
    METRICS: frozenset({ADMIN, SCRAPER}),
    READ: frozenset({ADMIN, FINANCE}) | _SCOPED_READERS,
    CHARGEBACK: frozenset({ADMIN, FINANCE, scope.ORG_ADMIN, scope.TEAM_ADMIN, scope.TEAM_VIEWER}),
    AUDIT: frozenset({ADMIN, FINANCE}),
    WRITE: frozenset({ADMIN}),
    POLICY: frozenset({ADMIN, GUARD}),
    ADMIN_READ: frozenset({ADMIN, FINANCE}) | _SCOPED_READERS,
    ADMIN_WRITE: frozenset({ADMIN, scope.ORG_ADMIN, scope.TEAM_ADMIN, scope.MEMBER}),
    EXPORT: frozenset({ADMIN}),
    CUSTOMERS: frozenset({ADMIN, FINANCE}),
}
"""Permission -> the role kinds that hold it (`governance.scope`)."""

ADMIN_KINDS = ("orgs", "teams", "projects", "users", "keys", "tokens", "approvals")
"""`POST /api/v1/admin/<kind>`: the objects the admin API changes."""
RUN_ROUTE = "/api/v1/runs/<kind>/<id>"
"""One run's cost (`runs_api.py`): a path with parameters, matched by its prefix."""
ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/metrics"): METRICS,
    ("GET", "/healthz"): OPEN,
    ("GET", "/readyz"): OPEN,
    ("GET", "/api/v1/budgets"): READ,
    ("GET", "/api/v1/usage"): READ,
    ("GET", "/api/v1/runs"): READ,
    ("GET", RUN_ROUTE): READ,
    ("GET", "/api/v1/chargeback"): CHARGEBACK,
    ("GET", "/api/v1/customers"): CUSTOMERS,
    ("GET", "/api/v1/cost-changes"): AUDIT,
    ("POST", "/api/v1/reload"): WRITE,
    ("GET", "/api/v1/policy"): POLICY,
    ("GET", "/api/v1/admin/state"): ADMIN_READ,
    ("GET", "/api/v1/admin/audit"): ADMIN_READ,
    ("GET", "/api/v1/admin/export"): EXPORT,
    **{("POST", f"/api/v1/admin/{kind}"): ADMIN_WRITE for kind in ADMIN_KINDS},
}
"""Every route of the `--http` listener and the permission it takes: the one table (docs/governance.md)."""


BEARER = "bearer"


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` value, None when the value is absent, of another scheme or
    carries no token.

    The scheme name is matched case-insensitively (RFC 7235 section 2.1: `bearer`, `BEARER` are the same scheme) and
    may be followed by several spaces; the token is returned as sent, for the caller to compare exactly.
    """
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.lstrip(" ")
    return token if scheme.lower() == BEARER and token else None


class BearerAuth:
    """The OTLP receivers' check of their one token, in constant time so it cannot be guessed byte by byte."""

    def __init__(self, token: str | None) -> None:
        self._expected = token.encode() if token else None

    @property
    def enabled(self) -> bool:
        return self._expected is not None

    def allows(self, authorization: str | None) -> bool:
        if self._expected is None:
            return True
        token = bearer_token(authorization)
        # compare_digest takes time independent of where the first difference is (and of the length of a mismatch);
        # it runs whatever the scheme, so a wrong scheme answers no faster than a wrong token.
        token_matches = hmac.compare_digest((token or "").encode("utf-8", "replace"), self._expected)
        return token_matches and token is not None


def hash_token(token: str) -> str:
    """The config value for `token`: `sha256:` and the hex SHA-256 of its UTF-8 bytes."""
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: str

    @property
    def parsed(self) -> scope.Role:
        return scope.Role.parse(self.role) if self.role else scope.Role("")

    @property
    def team(self) -> tuple[str, str] | None:
        """(org, team) of a token scoped to one team or below, else None."""
        path = self.parsed.scope
        return (path[0], path[1]) if len(path) >= 2 else None

    def may(self, permission: str) -> bool:
        if permission == OPEN:
            return True
        return bool(self.role) and self.parsed.kind in PERMISSIONS[permission]


LOCAL = Principal("loopback", ADMIN)
"""Who a loopback client is while no tokens are configured (the API as it was before tokens)."""
ANYONE = Principal("anonymous", "")
"""Who asks an open route (health, readiness, unprotected metrics)."""


def is_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host == "localhost"
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def _error(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, json.dumps({"error": message}).encode(), "application/json", headers or [])


def _unauthorized(message: str) -> Response:
    return _error(HTTPStatus.UNAUTHORIZED, message, [("WWW-Authenticate", 'Bearer realm="costline"')])


class Access:
    """Authenticates a request and checks its role. `update` swaps the tokens on a config reload."""

    def __init__(self, api: ApiConfig, clock: Clock) -> None:
        """`clock` (the service's) decides when a token has expired."""
        self._clock = clock
        self.update(api)

    def update(self, api: ApiConfig, refused: Mapping[str, str] | None = None) -> None:
        """`refused`: `sha256:...` of tokens whose user, team or org is retired -> the reason (403)."""
        self._tokens: dict[str, ApiToken] = {t.sha256: t for t in api.tokens}
        self._refused = dict(refused or {})
        self._metrics_protected = api.metrics_token_required

    @property
    def open(self) -> bool:
        """No tokens configured: loopback clients are admins, everyone else is refused."""
        return not self._tokens

    def check(self, request: Request, permission: str) -> Principal | Response:
        """The principal allowed to make `request`, or the 401/403 to answer instead."""
        if permission == OPEN or (permission == METRICS and not self._metrics_protected):
            return ANYONE
        if not self._tokens:
            if is_loopback(request.client):
                return LOCAL
            return _error(HTTPStatus.FORBIDDEN, "no api.tokens are configured, so the API answers loopback "
                                                "clients only")
        token = bearer_token(request.header("Authorization"))
        if token is None:
            return _unauthorized("a bearer token is required (Authorization: Bearer <token>)")
        digest = hash_token(token)
        entry = self._tokens.get(digest)
        if entry is None and digest in self._refused:
            return _error(HTTPStatus.FORBIDDEN, self._refused[digest])
        if entry is None:
            return _unauthorized("invalid token")
        if entry.expires is not None:
            expires = entry.expires if entry.expires.tzinfo else entry.expires.replace(tzinfo=timezone.utc)
            if self._clock() >= expires:
                return _unauthorized("token expired")
        principal = Principal(entry.name, entry.role)
        if not principal.may(permission):
            return _error(HTTPStatus.FORBIDDEN, f"role {entry.role} may not use {request.method} {request.path} "
                                                f"(permission {permission}: roles "
                                                f"{', '.join(sorted(PERMISSIONS[permission]))})")
        return principal
