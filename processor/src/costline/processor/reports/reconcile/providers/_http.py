"""Fetching a paginated admin report: one GET per page, following `has_more` / `next_page` as both providers do.

429 and 5xx (and connection failures) are retried with exponential backoff and jitter, honouring `retry-after`;
when the attempts are spent the error says what the last answer was. Any other status is a clear error at once.
The admin key travels only in the request header: it is never part of a message, a log line or an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import httpx2
import tenacity

from costline.processor.reports.reconcile.providers._fields import Fields, load_json
from costline.processor.reports.reconcile.report import ReportError

log = logging.getLogger("costline.processor.reports.reconcile")

MAX_PAGES = 10_000
"""A server that keeps answering `has_more: true` is a bug, not a report: stop there."""
DEFAULT_ATTEMPTS = 5
DEFAULT_BACKOFF_S = (0.5, 30.0)
"""First and longest wait between attempts (doubling, with jitter)."""
DEFAULT_TIMEOUT_S = 30.0


class _Retryable(Exception):
    def __init__(self, detail: str, retry_after_s: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class Fetcher:
    """One provider's HTTP client settings: base URL, auth headers, retry policy. `sleep` is injectable for tests."""

    def __init__(self, api_base: str, headers: Mapping[str, str], *, attempts: int = DEFAULT_ATTEMPTS,
                 backoff_s: tuple[float, float] = DEFAULT_BACKOFF_S, timeout_s: float = DEFAULT_TIMEOUT_S,
                 sleep: Callable[[float], None] | None = None, transport: Any = None) -> None:
        self.api_base = api_base.rstrip("/")
        self._headers = dict(headers)
        self._attempts = attempts
        self._backoff = backoff_s
        self._timeout = timeout_s
        self._sleep = sleep
        self._transport = transport

    def pages(self, path: str, params: Sequence[tuple[str, str]]) -> Iterator[tuple[str, Fields]]:
        """(where, page) for every page of `path`, the first without `page`, the next ones with `page=next_page`."""
        url = self.api_base + path
        token: str | None = None
        with httpx2.Client(timeout=self._timeout, transport=self._transport) as client:
            for number in range(1, MAX_PAGES + 1):
                where = f"{path} page {number}"
                query = [*params, *([("page", token)] if token is not None else [])]
                page = Fields(load_json(self._get(client, url, query, where), where), where)
                yield where, page
                if not page.boolean("has_more"):
                    return
                token = page.string("next_page", nullable=True)
                if not token:
                    raise ReportError(f"{where}: has_more is true but next_page is {token!r}: the report is "
                                      "incomplete")
        raise ReportError(f"{path}: more than {MAX_PAGES} pages; narrow the period")

    def _get(self, client: httpx2.Client, url: str, query: list[tuple[str, str]], where: str) -> bytes:
        first, longest = self._backoff
        exponential = tenacity.wait_exponential(multiplier=first, max=longest) + tenacity.wait_random(0, first)

        def wait(state: tenacity.RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome is not None else None
            asked = getattr(error, "retry_after_s", None)
            return min(longest, asked) if asked is not None else exponential(state)

        def log_retry(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome is not None else None
            log.warning("%s: %s (attempt %d of %d); retrying in %.1f s", where, error, state.attempt_number,
                        self._attempts, state.next_action.sleep if state.next_action else 0.0)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable), wait=wait,
            stop=tenacity.stop_after_attempt(self._attempts), before_sleep=log_retry,
            **({"sleep": self._sleep} if self._sleep is not None else {}),
        )
        try:
            return retrying(self._once, client, url, query)
        except tenacity.RetryError as err:
            last = err.last_attempt.exception()
            raise ReportError(f"{where}: gave up after {self._attempts} attempts: {last}") from None

    def _once(self, client: httpx2.Client, url: str, query: list[tuple[str, str]]) -> bytes:
        try:
            response = client.get(url, params=query, headers=self._headers)
        except httpx2.TransportError as err:
            raise _Retryable(f"{type(err).__name__}: {err}") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Retryable(f"HTTP {status}{_detail(response)}", _retry_after(response))
        if status != 200:
            hint = " (is the admin key right?)" if status in (401, 403) else ""
            raise ReportError(f"{url}: HTTP {status}{_detail(response)}{hint}")
        return response.content


def _retry_after(response: httpx2.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the backoff decides


def _detail(response: httpx2.Response) -> str:
    """The provider's error message, short: both wrap it as {"error": {"message": ...}}."""
    try:
        body = response.json()
        message = body["error"]["message"]
    except Exception:
        return ""
    return f": {str(message)[:200]}"
