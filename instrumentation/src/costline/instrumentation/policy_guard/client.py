"""The guard's HTTP client of the processor's `GET /api/v1/policy` (stdlib only: nothing may be added to the
application's dependencies for it). Called from the refresher thread only, never on the call path."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

from costline.instrumentation.policy_guard.document import GarbageResponse

MAX_ANSWER_BYTES = 1024 * 1024


class PolicyClient:
    """Asks the policy endpoint with a query's parameters; returns the decoded JSON document or raises."""

    def __init__(self, url: str, token: str | None, timeout_s: float) -> None:
        self.url = url
        self._token = token
        self._timeout_s = timeout_s

    def __call__(self, query: dict[str, str]) -> Any:
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(f"{self.url}?{urlencode(query)}", headers=headers)
        with urllib.request.urlopen(request, timeout=self._timeout_s) as response:  # noqa: S310 - configured URL
            body = response.read(MAX_ANSWER_BYTES + 1)
        if len(body) > MAX_ANSWER_BYTES:
            raise GarbageResponse("answer larger than 1 MiB")
        try:
            return json.loads(body)
        except ValueError:
            raise GarbageResponse("not JSON") from None


def describe(err: BaseException) -> str:
    """Why a policy request failed, short enough for one log line and a `GuardUnavailable` rule."""
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code}"
    if isinstance(err, urllib.error.URLError):
        return str(err.reason)
    return f"{type(err).__name__}: {err}"
