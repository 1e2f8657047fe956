"""Who may ask the `--http` API: bearer tokens from `api.tokens` in the config, each with one role.

| role | may |
|---|---|
| `admin` | everything: read, `POST /api/v1/reload`, the policy endpoint |
| `finance` | read everything (usage, runs, budgets, the re-rating audit trail) |
| `team:<org>/<team>` | read that team's usage, runs and budgets only: other teams' rows are absent, not hidden; not the audit trail |
| `guard` | `GET /api/v1/policy` only (the in-process guard of the instrumentation) |
| `metrics` | `GET /metrics` only (Prometheus' scrape credentials when `api.metrics_token_required`) |

Tokens are stored as `sha256:<hex>` of the token (`costline hash-token` prints it), so the config file holds no
secret. A missing, unknown or expired token is a 401, a token whose role does not allow the route a 403; neither
carries data. With no tokens configured the API answers loopback clients only (403 to anyone else) and
`costline serve` warns at start when it listens beyond loopback. `/healthz` and `/readyz` are always open, and
`/metrics` is open unless `api.metrics_token_required`; then it takes a `metrics` or `admin` token only: the series
carry every team's spend, so a team token (or the guard's) that could scrape them would read past its team.

The OTLP receivers take one shared token (`--token`), checked by `BearerAuth`; both read the header with the one
parser here, `bearer_token`.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from dataclasses import dataclass
from datetime import timezone
from http import HTTPStatus

from costline.processor.clock import Clock
from costline.processor.config.core import ApiConfig, ApiToken
from costline.processor.http.server import Request, Response

ADMIN = "admin"
FINANCE = "finance"
GUARD = "guard"
SCRAPER = "metrics"
"""The role of Prometheus' token: `/metrics` and nothing else (`METRICS` below is the permission it grants)."""
TEAM_ROLE_PREFIX = "team:"

# What a route needs.
OPEN = "open"
METRICS = "metrics"
READ = "read"
WRITE = "write"
POLICY = "policy"

_ALLOWED: dict[str, frozenset[str]] = {
    METRICS: frozenset({ADMIN, SCRAPER}),
    READ: frozenset({ADMIN, FINANCE, TEAM_ROLE_PREFIX}),
    WRITE: frozenset({ADMIN}),
    POLICY: frozenset({ADMIN, GUARD}),
}
"""Permission -> roles (every `team:` role is `TEAM_ROLE_PREFIX` here)."""


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
    def team(self) -> tuple[str, str] | None:
        """(org, team) of a team token, else None (sees every team)."""
        if not self.role.startswith(TEAM_ROLE_PREFIX):
            return None
        org, _, team = self.role.removeprefix(TEAM_ROLE_PREFIX).partition("/")
        return org, team

    def may(self, permission: str) -> bool:
        if permission == OPEN:
            return True
        role = TEAM_ROLE_PREFIX if self.team is not None else self.role
        return role in _ALLOWED[permission]


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

    def update(self, api: ApiConfig) -> None:
        self._tokens: dict[str, ApiToken] = {t.sha256: t for t in api.tokens}
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
        entry = self._tokens.get(hash_token(token))
        if entry is None:
            return _unauthorized("invalid token")
        if entry.expires is not None:
            expires = entry.expires if entry.expires.tzinfo else entry.expires.replace(tzinfo=timezone.utc)
            if self._clock() >= expires:
                return _unauthorized("token expired")
        principal = Principal(entry.name, entry.role)
        if not principal.may(permission):
            return _error(HTTPStatus.FORBIDDEN, f"role {entry.role} may not use this route")
        return principal
